"""What the compliance report says in words (shared/ops/compliance.py), and the update-request
categories of the policy it counts calls by (shared/domain/policy.py)."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from shared.adapters.policy_file import DEFAULT_POLICY_PATH, load_policy
from shared.domain.policy import Policy, PolicyError
from shared.ops.compliance import (
    DutyRow,
    TaskInfo,
    assignee_words,
    breach_reason,
    duty_type,
    duty_words,
    local_time,
)

LONDON = ZoneInfo("Europe/London")
DUE = datetime(2026, 10, 20, 22, 59, 59, tzinfo=UTC)  # 23:59:59 on Tuesday 20 October, London (BST)


@pytest.mark.parametrize(
    ("key", "template", "kind", "words"),
    [
        ("ack", "acknowledgement", "acknowledgement", "acknowledgement"),
        ("oic:482913", "officer_changed", "new officer in charge", "new officer in charge (employee 482913)"),
        (
            "m:M-881",
            "suspect_arrested",
            "update: the suspect was arrested",
            "update: the suspect was arrested (milestone M-881)",
        ),
        (
            "m:M-9",
            "decision_not_to_prosecute",
            "update: a decision was made not to prosecute",
            "update: a decision was made not to prosecute (milestone M-9)",
        ),
        ("m:M-10", "something_new", "update on the case", "update on the case (milestone M-10)"),
        (
            "outcome:18",
            "outcome",
            "outcome of the investigation",
            "outcome of the investigation (Home Office outcome 18)",
        ),
        ("checkin:2", "checkin", "check-in", "check-in 2"),
        (
            "attend:HU-20261020-0042:2026-10-21T14:45:00+00:00",
            "attendance",
            "officer's visit",
            "officer's visit at Wed 21 Oct 2026 15:45 (incident HU-20261020-0042)",
        ),
    ],
)
def test_duty_types_are_in_words(key: str, template: str, kind: str, words: str) -> None:
    assert duty_type(key, template) == kind
    assert duty_words(key, template, LONDON) == words


def test_times_are_london_wall_clock_times_either_side_of_the_change_of_the_clocks() -> None:
    assert local_time(DUE, LONDON) == "Tue 20 Oct 2026 23:59"
    # A week on, after the clocks went back, the same London time is an hour later in UTC.
    assert local_time(DUE + timedelta(days=7, hours=1), LONDON) == "Tue 27 Oct 2026 23:59"


def _row(
    status: str, reason: str | None = None, handed_at: datetime | None = None, role: str = "victim"
) -> DutyRow:
    return DutyRow(
        "HU/000101/26", "P-1", "ack", "acknowledgement", DUE - timedelta(days=6), DUE, handed_at,
        "breached", date(2026, 10, 20), role=role, status=status, reason=reason,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("row", "words"),
    [
        (
            _row("tasked", "excluded_crime:domestic_abuse"),
            "no contact with the victim was logged on the officer task by the deadline; the officer had it"
            " because automated messages are not allowed for this crime (domestic abuse)",
        ),
        (
            _row("tasked", "under_18_no_guardian"),
            "no contact with the victim was logged on the officer task by the deadline; the officer had it"
            " because the victim is under 18 and no guardian's contact details are recorded",
        ),
        (
            _row("sent", handed_at=DUE + timedelta(hours=9)),
            "the message was handed over after the deadline, at Wed 21 Oct 2026 08:59",
        ),
        (_row("queued"), "a message was still waiting to be sent at the deadline"),
        (
            _row("suppressed", "no_consent", role="caller"),
            "no message could be sent: the caller did not agree to be sent updates",
        ),
        (
            _row("suppressed", "delivery_failed"),
            "no message could be sent: the automatic message to the victim could not be delivered",
        ),
        (
            _row("discharged", "manual_contact"),
            "nothing reached the victim by the deadline; an officer logged contact with them afterwards",
        ),
        (_row("open"), "nothing had been decided for it by the deadline"),
    ],
)
def test_a_breach_says_why_in_words(row: DutyRow, words: str) -> None:
    assert breach_reason(row, Policy(), LONDON) == words


def test_an_assignee_is_an_officer_with_their_address_or_the_team_mailbox() -> None:
    policy = Policy()
    assert assignee_words(TaskInfo("482913", "jordan.lee@example.police.uk", False), policy) == (
        "officer 482913 jordan.lee@example.police.uk"
    )
    assert assignee_words(TaskInfo("482913", None, True), policy) == "officer 482913"
    assert (
        assignee_words(TaskInfo("team", None, False), policy) == f"team mailbox {policy.force.team_mailbox}"
    )
    assert assignee_words(None, policy) == ""


# --- the policy's update-request categories ----------------------------------------------------------------


def _with_storm(tmp_path: Path, **storm: object) -> Path:
    data = json.loads(DEFAULT_POLICY_PATH.read_text(encoding="utf-8"))
    data["storm"].update(storm)
    path = tmp_path / "journey-policy.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def test_the_shipped_update_request_categories_are_in_the_vocabulary() -> None:
    storm = load_policy().storm
    assert storm.update_request_categories == ["Update Request", "Caller Requesting Update"]
    assert set(storm.update_request_categories) <= set(storm.categories)
    assert storm.is_update_request("caller requesting update") and storm.is_update_request("UPDATE-REQUEST")
    assert not storm.is_update_request("Theft") and not storm.is_update_request(None)


@pytest.mark.parametrize(
    ("storm", "complaint"),
    [
        (
            {"update_request_categories": ["Update Requets"]},
            "field storm.update_request_categories.0: 'Update Requets' is not one of storm.categories"
            " (did you mean 'Update Request'?)",
        ),
        (
            {"update_request_categories": ["Update Request", "update request"]},
            "field storm.update_request_categories.1: 'update request' is listed twice (as 'Update Request')",
        ),
        # A force with its own vocabulary says which of its categories are update requests.
        (
            {"categories": ["Theft", "Progress Enquiry"]},
            "field storm.update_request_categories.0: 'Update Request' is not one of storm.categories",
        ),
    ],
)
def test_an_update_request_category_outside_the_vocabulary_fails_in_one_line(
    storm: dict[str, object], complaint: str, tmp_path: Path
) -> None:
    path = _with_storm(tmp_path, safeguarding_categories=[], **storm)
    with pytest.raises(PolicyError) as caught:
        load_policy(path)
    message = str(caught.value)
    assert message.startswith(f"journey policy {path}: ") and complaint in message
    assert "\n" not in message


def test_a_force_may_name_its_own_update_requests_or_none(tmp_path: Path) -> None:
    own = _with_storm(
        tmp_path,
        categories=["Theft", "Progress Enquiry"],
        safeguarding_categories=[],
        update_request_categories=["progress enquiry"],
    )
    assert load_policy(own).storm.is_update_request("Progress Enquiry")
    none = _with_storm(
        tmp_path, categories=["Theft"], safeguarding_categories=[], update_request_categories=[]
    )
    assert not load_policy(none).storm.is_update_request("Update Request")
