"""The officer directory from Microsoft Entra ID, through Microsoft Graph.

``GraphOfficerDirectory.lookup`` asks Graph for the users whose employee id
attribute equals the id (an advanced query: ``ConsistencyLevel: eventual`` and
``$count=true``) and maps the one found to an ``Officer``. The caller
(resolve_officer) caches the result and falls back when this raises
``DirectoryUnavailable``; this module only talks to Graph.

Tokens come from a ``TokenProvider`` (``shared.adapters.entra``: msal client
credentials, managed identity, or any function returning a token);
``graph_scope`` names the scope to ask for. The HTTP plumbing (bounded retries
honouring ``Retry-After``, timeouts, URLs described without credentials) is
``shared.adapters.http``, shared with ``http_feed``.

Nothing here logs a name, an email address or a phone number: only employee
ids, status codes and error codes.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import quote

import requests

from shared.adapters.entra import TokenProvider
from shared.adapters.http import (
    RequestFailed,
    RetryPolicy,
    Timeout,
    error_code,
    require_secure_url,
    send_with_retries,
)
from shared.contracts.messages import Officer
from shared.ports import DirectoryUnavailable

logger = logging.getLogger(__name__)

GRAPH_URL = "https://graph.microsoft.com"


def graph_scope(graph_url: str = GRAPH_URL) -> str:
    """The ``.default`` scope of a Graph deployment (national clouds have their own)."""
    return f"{graph_url.rstrip('/')}/.default"


# --- The directory ------------------------------------------------------------------

_ATTRIBUTE = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,119}$")
_SELECT = ("id", "displayName", "jobTitle", "mail", "businessPhones", "mobilePhone", "accountEnabled")


def odata_string(value: str) -> str:
    """An OData string literal: quoted, with single quotes doubled."""
    return "'" + value.replace("'", "''") + "'"


def _text(value: object) -> str | None:
    if isinstance(value, str):
        return value.strip() or None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return None


class GraphOfficerDirectory:
    """An OfficerDirectory over Microsoft Graph (application permission ``User.Read.All``).

    - ``id_attribute``: the user attribute holding the Niche employee id,
      ``employeeId`` or a directory extension such as
      ``extension_<appid-without-dashes>_payrollNumber``.
    - ``collar_attribute``: the attribute holding the collar number (usually
      an extension attribute); None when the directory does not hold it.
    - rank is ``jobTitle``; phone is the first ``businessPhones`` entry, else
      ``mobilePhone`` (when ``phone_fallback_to_mobile``); active is
      ``accountEnabled`` (only an explicit true counts).

    Results: no user with the id (or a 404) gives None. Several users with
    the id: the one whose account is enabled; when none or more than one is
    enabled, None — the caller then uses the team contact rather than risk
    giving a victim the wrong officer's details. Graph's advanced queries are
    eventually consistent: a user created moments ago may not be found yet.

    Failures raise DirectoryUnavailable: Graph unreachable, timing out or
    answering 429/5xx after the bounded retries (``retry``, sleeping through
    ``sleep``), no token (a wrong secret fails at once, without retries), 401
    or 403 (the app lacks ``User.Read.All``), 400 (usually a misnamed
    attribute), or a body that is not a user list.
    """

    def __init__(
        self,
        tokens: TokenProvider,
        *,
        graph_url: str = GRAPH_URL,
        id_attribute: str = "employeeId",
        collar_attribute: str | None = None,
        phone_fallback_to_mobile: bool = True,
        timeout: Timeout = (5.0, 10.0),
        retry: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
        session: requests.Session | None = None,
    ) -> None:
        for name, attribute in (("id_attribute", id_attribute), ("collar_attribute", collar_attribute)):
            if attribute is not None and not _ATTRIBUTE.match(attribute):
                raise ValueError(f"{name} {attribute!r} is not a Graph attribute name")
        self.tokens = tokens
        self.users_url = require_secure_url(graph_url, "the Graph URL") + "/v1.0/users"
        self.id_attribute = id_attribute
        self.collar_attribute = collar_attribute
        self.phone_fallback_to_mobile = phone_fallback_to_mobile
        self.timeout = timeout
        self.retry = retry or RetryPolicy()
        self.sleep = sleep
        self.session = session or requests.Session()
        select = list(_SELECT)
        for attribute in (id_attribute, collar_attribute):
            if attribute is not None and attribute not in select:
                select.append(attribute)
        self._select = ",".join(select)

    def _query(self, employee_id: str) -> str:
        expression = f"{self.id_attribute} eq {odata_string(employee_id)}"
        return (
            f"$filter={quote(expression, safe='')}&$select={quote(self._select, safe=',')}&$count=true&$top=5"
        )

    def _headers(self) -> dict[str, str]:
        return {
            "Authorization": f"Bearer {self.tokens()}",
            "ConsistencyLevel": "eventual",
            "Accept": "application/json",
        }

    def lookup(self, employee_id: str) -> Officer | None:
        if not employee_id.strip():
            return None
        what = f"directory lookup of employee {employee_id!r}"
        try:
            response = send_with_retries(
                self.session,
                self.users_url,
                params=self._query(employee_id),
                headers=self._headers,
                timeout=self.timeout,
                retry=self.retry,
                sleep=self.sleep,
                what=what,
            )
        except RequestFailed as exc:
            logger.warning("%s", exc)
            raise DirectoryUnavailable(str(exc)) from exc
        with response:
            status = response.status_code
            if status == 404:
                return None
            if status != 200:
                code = error_code(response)
                message = f"{what}: Graph answered HTTP {status}" + (f" ({code})" if code else "")
                if status in (401, 403):
                    message += "; check the app registration has the User.Read.All application permission"
                elif status == 400:
                    message += f"; check the attribute names {self.id_attribute!r}/{self.collar_attribute!r}"
                logger.error("%s", message)
                raise DirectoryUnavailable(message)
            try:
                body = response.json()
            except ValueError:
                body = None
        users = body.get("value") if isinstance(body, dict) else None
        if not isinstance(users, list) or not all(isinstance(user, dict) for user in users):
            message = f"{what}: Graph's answer is not a user list"
            logger.error("%s", message)
            raise DirectoryUnavailable(message)
        return self._choose(employee_id, users)

    def _choose(self, employee_id: str, users: list[dict[str, Any]]) -> Officer | None:
        if not users:
            return None
        if len(users) > 1:
            enabled = [user for user in users if user.get("accountEnabled") is True]
            if len(enabled) != 1:
                logger.warning(
                    "employee %r matches %d directory users, %d of them enabled: treated as unknown",
                    employee_id,
                    len(users),
                    len(enabled),
                )
                return None
            users = enabled
        return self._officer(employee_id, users[0])

    def _officer(self, employee_id: str, user: Mapping[str, Any]) -> Officer | None:
        name = _text(user.get("displayName"))
        if name is None:
            logger.warning(
                "employee %r has no display name in the directory: treated as unknown", employee_id
            )
            return None
        phones = user.get("businessPhones")
        phone = next((p for p in map(_text, phones) if p), None) if isinstance(phones, list) else None
        if phone is None and self.phone_fallback_to_mobile:
            phone = _text(user.get("mobilePhone"))
        return Officer(
            employee_id=employee_id,
            collar_number=_text(user.get(self.collar_attribute)) if self.collar_attribute else None,
            display_name=name,
            rank=_text(user.get("jobTitle")),
            email=_text(user.get("mail")),
            phone=phone,
            active=user.get("accountEnabled") is True,
        )
