"""Azure Communication Services (Email and SMS) behind the MessageProvider port.

Both senders use the real SDK clients (``azure-communication-email`` 1.1.0, REST
api-version 2025-09-01; ``azure-communication-sms`` 1.1.0, api-version 2021-03-07)
and turn the port's idempotency key (the Messages ledger key) into the service's
own idempotency handle, so a retry after a crash never reaches the victim twice:

Email
    ``EmailClient.begin_send`` takes an ``operation_id`` keyword that the SDK sends
    as the ``Operation-Id`` header (see ``build_email_send_request``). We send
    ``uuid5(namespace, "email:" + key)``: a GUID, as the service requires, and the
    same one on every retry, so ACS treats the retry as the same operation. The
    message counts as handed over when the service answers 202; we do not poll the
    operation (``polling=False``), because delivery can take minutes and its outcome
    arrives later through Event Grid delivery reports. The receipt's ``provider_id``
    is the operation id. ACS does not document how long it remembers an Operation-Id;
    a repeat while the first is still running may get 409, retried later (see below).

SMS
    The public ``SmsClient.send`` puts a *fresh* ``uuid4()`` repeatability request id
    and the current time in every recipient, so two calls are two messages. In this
    API version the repeatability fields are not HTTP headers but fields of each
    recipient in the JSON body (``smsRecipients[].repeatabilityRequestId`` and
    ``repeatabilityFirstSent``, see the SDK's generated ``SmsRecipient`` model). We
    therefore build the ``SendMessageRequest`` ourselves and call the operation the
    public method wraps, ``SmsClient._sms_service_client.sms.send`` (the generated
    client; checked when the sender is built, and the SDK version is pinned), with
    ``uuid5(namespace, "sms:" + key)`` and the RFC 1123 time of the *first* attempt.
    The generated operation also gives us the per-recipient ``repeatabilityResult``
    that the public result type drops.

    ACS remembers a repeatable request only for a short window (documented as
    5 minutes): a retry whose first-sent time is older is refused with 412, because
    the service can no longer tell whether the first attempt went out. So the first
    attempt's time must be the same on every retry: ``send_sms`` takes
    ``first_sent_at``, which the caller reads from the Messages ledger (the pending
    entry written before the first call keeps ``first_attempt_at``); it defaults to
    now for a first attempt. A 412 raises ``RepeatabilityExpired`` (permanent): we
    would rather hand the message to a person than risk a second copy. A 429 means
    the request was not executed, so if no earlier attempt of that key can have
    reached ACS, the caller may give the next attempt a new first-sent time (and
    send_message does, recording it in the ledger first; see shared/domain/sending.py).

Failures
    - 429 → ``ProviderThrottled`` with the Retry-After value (the queue waits, not us:
      the retry policy never retries or sleeps on 429).
    - 5xx, 408 and connection errors are retried by azure-core's own ``RetryPolicy``
      a bounded number of times (``RetrySettings``; POST included, since both sends
      are idempotent), then raise ``ProviderUnavailable`` so that the queue retries.
      So do 401/403 (``ProviderAuthenticationFailed``: fix the configuration, and the
      waiting messages still go) and 409 (the same operation still in progress).
    - Any other 4xx, or a recipient result with ``successful: false``, raises
      ``ProviderRejected``: retrying the same request cannot succeed.

Nothing here logs an address, a phone number or a message body: log lines and
exception messages carry only the idempotency key, ids and HTTP statuses, and the
SDK's HTTP logging policy logs neither bodies nor un-allowlisted headers.
"""

from __future__ import annotations

import ipaddress
import logging
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime, parsedate_to_datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from azure.communication.email import EmailClient
from azure.communication.sms import SmsClient
from azure.communication.sms._generated.models import SendMessageRequest, SmsRecipient, SmsSendOptions
from azure.core.credentials import AzureKeyCredential, TokenCredential
from azure.core.exceptions import AzureError, HttpResponseError
from azure.core.pipeline import PipelineResponse
from azure.core.pipeline.policies import RetryPolicy

from shared import ports
from shared.domain.links import unsubscribe_headers
from shared.ports import EmailContent, OfficerMail, ProviderReceipt, ProviderThrottled

if TYPE_CHECKING:
    from shared.ports import MessageProvider, TaskNotifier

_LOG = logging.getLogger(__name__)

# Fixed forever: changing it would give every ledger key a new id, and a retry a second message.
IDEMPOTENCY_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "urn:victim-updates:acs-idempotency")
# When a 429 carries no Retry-After, come back after this long.
DEFAULT_THROTTLE_SECONDS = 60.0


class ProviderRejected(ports.ProviderRejected):
    """ACS refused this message for good (bad address, content, sender); retrying cannot help."""

    def __init__(self, channel: str, status: int | None, reason: str) -> None:
        super().__init__(f"ACS {channel} rejected the message (HTTP {status}): {reason}")
        self.channel = channel
        self.status = status
        self.reason = reason


class RepeatabilityExpired(ProviderRejected, ports.ProviderStatusUnknown):
    """The first attempt is too old for ACS to de-duplicate; sending again might send twice.

    Also ``ProviderStatusUnknown``: ACS refuses the repeat without saying whether the first
    attempt went out, so send_message records the message unknown, not refused, when an
    earlier attempt may have reached the service."""


class ProviderUnavailable(Exception):
    """ACS failed or could not be reached after the SDK's bounded retries; the queue retries later."""

    def __init__(self, channel: str, status: int | None, reason: str) -> None:
        super().__init__(f"ACS {channel} unavailable (HTTP {status}): {reason}")
        self.channel = channel
        self.status = status


class ProviderAuthenticationFailed(ProviderUnavailable):
    """ACS refused our credentials (401/403): a configuration fault, not the message's."""


@dataclass(frozen=True)
class RetrySettings:
    """How hard one send tries before it fails back to the queue.

    ``retries`` is the number of retries after the first attempt for 408/500/502/503/504
    and connection errors, with azure-core's exponential backoff (0, 2×factor, 4×factor …
    seconds, at most ``backoff_max``). A Retry-After longer than ``backoff_max`` is not
    waited for: the error goes back to the queue at once. ``total_timeout`` bounds the
    whole send, retries included.
    """

    retries: int = 3
    backoff_factor: float = 0.5
    backoff_max: float = 8.0
    total_timeout: float = 60.0
    connection_timeout: float = 10.0
    read_timeout: float = 30.0

    def client_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for an ACS SDK client: the retry policy and transport timeouts."""
        policy = _QueueFriendlyRetryPolicy(
            retry_total=self.retries,
            retry_connect=self.retries,
            retry_read=self.retries,
            retry_status=self.retries,
            retry_backoff_factor=self.backoff_factor,
            retry_backoff_max=self.backoff_max,
            timeout=self.total_timeout,
        )
        return {
            "retry_policy": policy,
            "connection_timeout": self.connection_timeout,
            "read_timeout": self.read_timeout,
        }


class _QueueFriendlyRetryPolicy(RetryPolicy):  # type: ignore[type-arg]
    """azure-core's RetryPolicy, except that it leaves long waits to the queue.

    - a 429 is never retried (the stock policy would sleep for its Retry-After, which
      ties up a Functions worker; ``ProviderThrottled`` lets the queue wait instead);
    - a 5xx whose Retry-After exceeds ``backoff_max`` is not retried either;
    - POST is retried like GET: both ACS sends carry an idempotency id, so a second
      attempt is the same operation, not a second message.
    """

    def configure_retries(self, options: dict[str, Any]) -> dict[str, Any]:
        settings = super().configure_retries(options)
        settings["methods"] = frozenset(settings["methods"]) | {"POST"}
        return settings

    def is_retry(self, settings: dict[str, Any], response: PipelineResponse[Any, Any]) -> bool:
        status = response.http_response.status_code
        if status == 429:
            return False
        retry_after = self.get_retry_after(response)
        if status >= 400 and retry_after is not None and retry_after > self.backoff_max:
            return False
        return bool(super().is_retry(settings, response))


# --- helpers -------------------------------------------------------------------------


def idempotency_uuid(channel: str, idempotency_key: str) -> str:
    """The GUID ACS sees for a ledger key: the same key always gives the same id."""
    return str(uuid.uuid5(IDEMPOTENCY_NAMESPACE, f"{channel}:{idempotency_key}"))


def rfc1123(moment: datetime) -> str:
    """An aware datetime as an IMF-fixdate (``Tue, 26 Mar 2019 16:06:51 GMT``)."""
    if moment.tzinfo is None:
        raise ValueError("first_sent_at must be timezone-aware")
    return format_datetime(moment.astimezone(UTC).replace(microsecond=0), usegmt=True)


def parse_connection_string(connection_string: str) -> tuple[str, str]:
    """``endpoint=https://…;accesskey=…`` → (endpoint URL, access key).

    Unlike the SDKs' own parser this keeps the scheme, so that plain http works for a
    stub on a loopback address (tests); anywhere else the endpoint must be https.
    """
    fields: dict[str, str] = {}
    for part in connection_string.split(";"):
        name, sep, value = part.partition("=")
        if sep:
            fields[name.strip().lower()] = value.strip()
    endpoint, key = fields.get("endpoint"), fields.get("accesskey")
    if not endpoint or not key:
        raise ValueError("an ACS connection string needs endpoint=…;accesskey=…")
    endpoint = endpoint.rstrip("/")
    if "://" not in endpoint:
        endpoint = "https://" + endpoint
    parts = urlsplit(endpoint)
    if parts.scheme != "https" and not (parts.scheme == "http" and _is_loopback(parts.hostname)):
        raise ValueError("an ACS endpoint must use https (plain http only for a loopback test stub)")
    return endpoint, key


def _is_loopback(host: str | None) -> bool:
    if host == "localhost":
        return True
    try:
        return host is not None and ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _retry_after_seconds(headers: Mapping[str, str]) -> float | None:
    """Retry-After (seconds or an HTTP date), or retry-after-ms, in seconds."""
    lowered = {name.lower(): value for name, value in headers.items()}
    value = lowered.get("retry-after")
    if value:
        try:
            return max(0.0, float(value))
        except ValueError:
            try:
                return max(0.0, (parsedate_to_datetime(value) - datetime.now(UTC)).total_seconds())
            except (TypeError, ValueError):
                return None
    for name in ("retry-after-ms", "x-ms-retry-after-ms"):
        if lowered.get(name):
            try:
                return max(0.0, float(lowered[name]) / 1000.0)
            except ValueError:
                return None
    return None


def _error_for(channel: str, error: HttpResponseError) -> Exception:
    """The port's or this module's exception for an SDK HTTP error.

    It keeps the status and the service's error code but not the SDK's message, which
    quotes the response body (an error may quote the address); callers raise it
    ``from None`` so the traceback does not carry that text either.
    """
    status = error.status_code
    headers: Mapping[str, str] = getattr(error.response, "headers", None) or {}
    code = getattr(error.error, "code", None) if error.error is not None else None
    reason = str(code or error.reason or "no reason given")
    if status == 429:
        retry_after = _retry_after_seconds(headers)
        return ProviderThrottled(DEFAULT_THROTTLE_SECONDS if retry_after is None else retry_after)
    if status in (401, 403):
        return ProviderAuthenticationFailed(channel, status, reason)
    if status == 412:
        return RepeatabilityExpired(channel, status, reason)
    if status is not None and 400 <= status < 500 and status not in (404, 408, 409):
        return ProviderRejected(channel, status, reason)
    return ProviderUnavailable(channel, status, reason)


# --- Email -------------------------------------------------------------------------------


class AcsEmailSender:
    """Sends email through ACS Email with a deterministic Operation-Id."""

    def __init__(
        self,
        endpoint: str,
        credential: TokenCredential | AzureKeyCredential,
        *,
        sender_address: str,
        clock: Callable[[], datetime],
        retry: RetrySettings | None = None,
        track_engagement: bool = False,
    ) -> None:
        self._client = EmailClient(endpoint, credential, **(retry or RetrySettings()).client_kwargs())
        self._sender = sender_address
        self._clock = clock
        self._track_engagement = track_engagement

    @classmethod
    def from_connection_string(
        cls,
        connection_string: str,
        *,
        sender_address: str,
        clock: Callable[[], datetime],
        retry: RetrySettings | None = None,
        track_engagement: bool = False,
    ) -> AcsEmailSender:
        """From ``endpoint=https://…;accesskey=…`` (HMAC-signed requests)."""
        endpoint, key = parse_connection_string(connection_string)
        return cls(
            endpoint,
            AzureKeyCredential(key),
            sender_address=sender_address,
            clock=clock,
            retry=retry,
            track_engagement=track_engagement,
        )

    def send_email(
        self, *, idempotency_key: str, to: str, content: EmailContent, metadata: Mapping[str, Any]
    ) -> ProviderReceipt:
        """Hand one email to ACS; the same key is the same operation, never a second email."""
        operation_id = idempotency_uuid("email", idempotency_key)
        message = {
            "senderAddress": self._sender,
            "recipients": {"to": [{"address": to}]},
            "content": {"subject": content.subject, "plainText": content.text, "html": content.html},
            # Victims' mail carries no tracking pixels or rewritten links unless asked for.
            "userEngagementTrackingDisabled": not self._track_engagement,
        }
        if content.unsubscribe_url:
            message["headers"] = unsubscribe_headers(content.unsubscribe_url)
        try:
            # polling=False: the 202 is the hand-over; delivery is reported later (Event Grid).
            poller = self._client.begin_send(message, operation_id=operation_id, polling=False)
            status = poller.result() or {}
        except HttpResponseError as error:
            raise _error_for("email", error) from None  # see _error_for: no response text
        except AzureError as error:
            raise ProviderUnavailable("email", None, type(error).__name__) from error
        provider_id = str(status.get("id") or operation_id)
        _LOG.info(
            "email handed to ACS: key=%s operation=%s status=%s",
            idempotency_key,
            provider_id,
            status.get("status"),
        )
        return ProviderReceipt(provider_id=provider_id, accepted_at=self._clock())

    def close(self) -> None:
        self._client.close()


# --- SMS ----------------------------------------------------------------------------------


class AcsSmsSender:
    """Sends SMS through ACS SMS with a deterministic repeatability request id."""

    def __init__(
        self,
        endpoint: str,
        credential: TokenCredential | AzureKeyCredential,
        *,
        sender: str,
        clock: Callable[[], datetime],
        retry: RetrySettings | None = None,
        delivery_reports: bool = True,
    ) -> None:
        self._client = SmsClient(endpoint, credential, **(retry or RetrySettings()).client_kwargs())
        generated = getattr(self._client, "_sms_service_client", None)
        if generated is None or not callable(getattr(getattr(generated, "sms", None), "send", None)):
            raise RuntimeError(
                "azure-communication-sms no longer exposes its generated sms.send operation; "
                "repeatable sends need it (see shared/adapters/acs.py)"
            )
        self._generated = generated
        self._operations = generated.sms
        self._sender = sender
        self._clock = clock
        self._delivery_reports = delivery_reports

    @classmethod
    def from_connection_string(
        cls,
        connection_string: str,
        *,
        sender: str,
        clock: Callable[[], datetime],
        retry: RetrySettings | None = None,
        delivery_reports: bool = True,
    ) -> AcsSmsSender:
        """From ``endpoint=https://…;accesskey=…`` (HMAC-signed requests)."""
        endpoint, key = parse_connection_string(connection_string)
        return cls(
            endpoint,
            AzureKeyCredential(key),
            sender=sender,
            clock=clock,
            retry=retry,
            delivery_reports=delivery_reports,
        )

    def send_sms(
        self,
        *,
        idempotency_key: str,
        to: str,
        text: str,
        metadata: Mapping[str, Any],
        first_sent_at: datetime | None = None,
    ) -> ProviderReceipt:
        """Hand one SMS to ACS; a retry must pass the first attempt's ``first_sent_at``."""
        request = SendMessageRequest(
            from_property=self._sender,
            sms_recipients=[
                SmsRecipient(
                    to=to,
                    repeatability_request_id=idempotency_uuid("sms", idempotency_key),
                    repeatability_first_sent=rfc1123(first_sent_at or self._clock()),
                )
            ],
            message=text,
            # The tag comes back in delivery reports: the ledger key, never personal data.
            sms_send_options=SmsSendOptions(
                enable_delivery_report=self._delivery_reports, tag=idempotency_key
            ),
        )
        try:
            response = self._operations.send(request)
        except HttpResponseError as error:
            raise _error_for("sms", error) from None  # see _error_for: no response text
        except AzureError as error:
            raise ProviderUnavailable("sms", None, type(error).__name__) from error
        results = list(response.value or [])
        if len(results) != 1:
            raise ProviderUnavailable("sms", 202, f"expected one recipient result, got {len(results)}")
        result = results[0]
        if not result.successful or not result.message_id:
            self._raise_for_recipient(result, to)
        _LOG.info(
            "sms handed to ACS: key=%s message=%s repeatability=%s",
            idempotency_key,
            result.message_id,
            result.repeatability_result,
        )
        return ProviderReceipt(provider_id=str(result.message_id), accepted_at=self._clock())

    @staticmethod
    def _raise_for_recipient(result: Any, to: str) -> None:
        """A recipient the service did not accept: throttled, failing, or refused."""
        status = result.http_status_code
        # The service's words, minus the number should it quote it.
        reason = str(result.error_message or "no reason given").replace(to, "<recipient>")
        if result.repeatability_result:
            reason += f" (repeatability {result.repeatability_result})"
        if status == 429:
            raise ProviderThrottled(DEFAULT_THROTTLE_SECONDS)
        if status == 412:
            raise RepeatabilityExpired("sms", status, reason)
        if status is None or status >= 500 or status in (408, 409):
            raise ProviderUnavailable("sms", status, reason)
        raise ProviderRejected("sms", status, reason)

    def close(self) -> None:
        self._generated.close()


# --- both ------------------------------------------------------------------------------------


class AcsProvider:
    """The MessageProvider port on ACS: email and SMS senders side by side."""

    def __init__(self, email: AcsEmailSender, sms: AcsSmsSender) -> None:
        self.email = email
        self.sms = sms

    def send_email(
        self, *, idempotency_key: str, to: str, content: EmailContent, metadata: Mapping[str, Any]
    ) -> ProviderReceipt:
        return self.email.send_email(
            idempotency_key=idempotency_key, to=to, content=content, metadata=metadata
        )

    def send_sms(
        self,
        *,
        idempotency_key: str,
        to: str,
        text: str,
        metadata: Mapping[str, Any],
        first_sent_at: datetime | None = None,
    ) -> ProviderReceipt:
        return self.sms.send_sms(
            idempotency_key=idempotency_key, to=to, text=text, metadata=metadata, first_sent_at=first_sent_at
        )

    def report_key(self, idempotency_key: str, channel: str) -> str:
        """An email's delivery reports carry its operation id as ``messageId``; an SMS's carry the
        ``tag`` the send sets, which is the key itself."""
        return idempotency_uuid("email", idempotency_key) if channel == "email" else idempotency_key

    def accepted(self, idempotency_key: str) -> ProviderReceipt | None:
        # ACS has no look-up by our key (an email operation can be polled only while the
        # service keeps it, an SMS not at all): say so rather than guess.
        raise ports.ProviderStatusUnknown("ACS cannot be asked whether it accepted a message by its key")

    def close(self) -> None:
        self.email.close()
        self.sms.close()


# --- officer mail ------------------------------------------------------------------------------


class AcsOfficerMail:
    """The TaskNotifier port on ACS Email: the victims' email sender, with its address and identity.

    Idempotent as a victim's email is, through the Operation-Id. The key is prefixed
    (``officer:``) before it becomes one, so an officer mail and a victim message never
    share an operation, whatever form their keys take.
    """

    def __init__(self, email: AcsEmailSender) -> None:
        self.email = email

    def send(self, *, idempotency_key: str, mail: OfficerMail) -> ProviderReceipt:
        return self.email.send_email(
            idempotency_key=f"officer:{idempotency_key}",
            to=mail.to,
            content=EmailContent(mail.subject, mail.text, mail.html),
            metadata={"task_id": mail.task_id, "crime_reference": mail.crime_reference, "kind": mail.kind},
        )


if TYPE_CHECKING:

    def _conforms(provider: AcsProvider) -> MessageProvider:
        return provider  # mypy checks here that AcsProvider satisfies the port

    def _notifies(notifier: AcsOfficerMail) -> TaskNotifier:
        return notifier  # and that AcsOfficerMail satisfies the TaskNotifier port
