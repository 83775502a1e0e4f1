"""The journey policy: every number and list of RULES.md, overridable by a force.

The shipped default lives in ``policy/journey-policy.json``; the app setting
``JOURNEY_POLICY_PATH`` points at another file. A malformed file fails at
start-up with the name of the bad field.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

DEFAULT_POLICY_PATH = Path(__file__).resolve().parents[2] / "policy" / "journey-policy.json"

NOTIFIABLE_MILESTONES = [
    "suspect_arrested",
    "suspect_interviewed",
    "suspect_bailed",
    "bail_conditions_changed",
    "bail_cancelled",
    "suspect_released_under_investigation",
    "suspect_released_no_further_action",
    "suspect_charged",
    "out_of_court_disposal",
    "decision_not_to_prosecute",
]


class _Policy(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ForcePolicy(_Policy):
    name: str = "Humberside Police"
    non_emergency_number: str = "101"
    preferences_url: str = "https://victim-updates.example.police.uk/preferences"
    team_contact_name: str = "your local policing team"
    victim_support: str = "Victim Support on 08 08 16 89 111"
    review_url: str = "https://victim-updates.example.police.uk/right-to-review"
    # Officer tasks (RULES.md §8): where a task goes when there is no named officer, where an
    # overdue one is sent again, and the link to the record ({crime_reference} is filled in).
    team_mailbox: str = "victim-updates-team@example.police.uk"
    supervisor_mailbox: str = "victim-updates-supervisors@example.police.uk"
    record_url: str = "https://niche.example.police.uk/occurrence/{crime_reference}"


class DeadlinePolicy(_Policy):
    working_days: Annotated[int, Field(ge=0, le=30)] = 5
    enhanced_working_days: Annotated[int, Field(ge=0, le=30)] = 1
    nation: Literal["england_and_wales", "scotland", "northern_ireland"] = "england_and_wales"
    timezone: str = "Europe/London"


class SafeguardingPolicy(_Policy):
    excluded_flags: list[str] = [
        "domestic_abuse",
        "sexual_offence",
        "stalking_harassment",
        "honour_based_abuse",
        "modern_slavery",
        "bereaved",
    ]
    enhanced_flags: list[str] = [
        "domestic_abuse",
        "sexual_offence",
        "hate_crime",
        "terrorism",
        "modern_slavery",
        "attempted_murder",
        "kidnap",
        "arson_endanger_life",
        "bereaved",
        "honour_based_abuse",
        "persistently_targeted",
    ]
    adult_age: Annotated[int, Field(ge=1, le=25)] = 18


class TimingPolicy(_Policy):
    quiet_hours_start: Annotated[int, Field(ge=0, le=23)] = 20
    quiet_hours_end: Annotated[int, Field(ge=0, le=23)] = 8
    coalesce_minutes: Annotated[int, Field(ge=0, le=1440)] = 10
    attendance_min_notice_minutes: Annotated[int, Field(ge=0, le=1440)] = 60
    sms_max_segments: Annotated[int, Field(ge=1, le=10)] = 2
    default_frequency_days: Annotated[int, Field(ge=1, le=365)] = 28


class StormPolicy(_Policy):
    """STORM incident categories: the force's vocabulary, and those that are safeguarding (RULES.md §7)."""

    categories: list[str] = [
        "Anti-Social Behaviour",
        "Burglary",
        "Child Protection",
        "Concern for Welfare",
        "Criminal Damage",
        "Domestic Incident",
        "Fraud",
        "Honour-Based Abuse",
        "Lost or Found Property",
        "Noise Nuisance",
        "Public Order",
        "Road Traffic Collision",
        "Robbery",
        "Sexual Offence",
        "Stalking/Harassment",
        "Suspicious Circumstances",
        "Theft",
        "Violence",
    ]
    safeguarding_categories: list[str] = [
        "Domestic Incident",
        "Sexual Offence",
        "Stalking/Harassment",
        "Child Protection",
        "Honour-Based Abuse",
    ]

    def safeguarding_category(self, category: str | None) -> str | None:
        """The policy's name of a safeguarding category, if ``category`` is one (spelling-tolerant)."""
        if not category:
            return None
        wanted = category_key(category)
        return next((name for name in self.safeguarding_categories if category_key(name) == wanted), None)


def category_key(category: str) -> str:
    """A STORM category compared as words: case, punctuation, "and" and "or" do not matter."""
    words = re.sub(r"[^0-9a-z]+", " ", category.casefold()).split()
    return "".join(word for word in words if word not in ("and", "or"))


class Policy(_Policy):
    """The whole journey policy."""

    force: ForcePolicy = ForcePolicy()
    deadlines: DeadlinePolicy = DeadlinePolicy()
    safeguarding: SafeguardingPolicy = SafeguardingPolicy()
    timing: TimingPolicy = TimingPolicy()
    storm: StormPolicy = StormPolicy()
    notifiable_milestones: list[str] = NOTIFIABLE_MILESTONES
    right_to_review_outcomes: list[str] = ["10", "15", "17", "21"]
    right_to_review_months: Annotated[int, Field(ge=1, le=24)] = 3
    right_to_review_milestones: list[str] = [
        "suspect_released_no_further_action",
        "decision_not_to_prosecute",
    ]
    languages: list[str] = ["en"]
    default_language: str = "en"


class PolicyError(ValueError):
    """The policy file is unreadable or malformed; the message names the bad field."""


def load_policy(path: Path | None = None) -> Policy:
    """Read and validate a policy file (the shipped default when ``path`` is None)."""
    source = path or DEFAULT_POLICY_PATH
    try:
        data = json.loads(source.read_text(encoding="utf-8"))
    except OSError as exc:
        raise PolicyError(f"cannot read journey policy {source}: {exc.strerror}") from exc
    except json.JSONDecodeError as exc:
        raise PolicyError(
            f"journey policy {source} is not valid JSON: {exc.msg} (line {exc.lineno})"
        ) from exc
    try:
        return Policy.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(part) for part in first["loc"]) or "(root)"
        raise PolicyError(f"journey policy {source}: field {field}: {first['msg']}") from exc
