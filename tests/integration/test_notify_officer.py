"""notify_officer, its notices, its ledger and its notifiers (journey-rules.md §11).

At the step with embedded services (SQLite tables, the file notifier), the ACS notifier
through the real SDK against the stub, and the wiring. The same rules end to end through
the local host are in ``tests/e2e/test_officer_tasks.py``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from shared.adapters.acs import AcsEmailSender, AcsOfficerMail, RetrySettings, idempotency_uuid
from shared.adapters.file_officer_mail import FileOfficerMail
from shared.adapters.sqlite_queue import SqliteQueueBroker
from shared.adapters.table_layout import OFFICER_MAIL, TASKS, closed_task_entity, task_reminder
from shared.bootstrap import Services, queue_configs
from shared.contracts.messages import Officer, TaskNotice
from shared.domain.journey import Decision, Duty, Journey, OfficerTask
from shared.domain.policy import Policy
from shared.local.host import SimulatedClock
from shared.ports import Entity, OfficerMail, ProviderReceipt, ProviderThrottled
from shared.settings import load_settings
from shared.steps.decisions import record_decision
from shared.steps.notify_officer import notify_officer
from shared.steps.results import StepResult, apply
from tests.acs_stub import AcsStub, acs_stub  # noqa: F401  (fixture)
from tests.builders import OFFICER, embedded
from tests.conftest import read_jsonl

POLICY = Policy()
TEAM = POLICY.force.team_mailbox
SUPERVISORS = POLICY.force.supervisor_mailbox
OFFICER_EMAIL = str(OFFICER["email"])

DOMESTIC = "HU/000881/26"
# Due at the end of Monday 21 December 2026 (GMT): the task of a domestic abuse crime recorded the Friday before.
DUE = datetime(2026, 12, 21, 23, 59, 59, tzinfo=UTC)


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


# --- the step ------------------------------------------------------------------------------------------

NOW = datetime(2026, 12, 18, 10, 0, tzinfo=UTC)


@pytest.fixture
def services(tmp_path: Path) -> Iterator[Services]:
    built, broker = embedded(load_settings(LOCAL_DATA_DIR=tmp_path), SimulatedClock(NOW))
    yield built
    broker.close()


def _clock(services: Services) -> SimulatedClock:
    assert isinstance(services.clock, SimulatedClock)
    return services.clock


def _journey(officer: Officer | None = None) -> Journey:
    officer = officer or Officer.model_validate(OFFICER)
    duty = Duty(
        key="m:M-881", template="suspect_arrested", event_at=NOW, change_id="c-1", due_by=DUE, task_id="T-1"
    )
    return Journey(
        crime_reference=DOMESTIC, person_id="P-2201", role="victim", officer=officer, duties={duty.key: duty}
    )


def _task(**changes: Any) -> OfficerTask:
    fields: dict[str, Any] = {
        "task_id": "T-1",
        "crime_reference": DOMESTIC,
        "person_id": "P-2201",
        "duties": ["m:M-881"],
        "reason": "excluded_crime:domestic_abuse",
        "assignee": "104233",
        "assignee_email": OFFICER_EMAIL,  # the domain fills it from the directory (tests/unit/test_task_rules.py)
        "due_by": DUE,
        "created_at": NOW,
    }
    return OfficerTask(**(fields | changes))


def _record(services: Services, decision: Decision) -> StepResult:
    read = services.journeys.get(DOMESTIC, "P-2201")
    result = StepResult()
    record_decision(
        result,
        decision,
        read,
        "cause-1",
        now=services.clock.now(),
        journeys=services.journeys,
        tables=services.tables,
    )
    return apply(result, services)


def _notices(result: StepResult) -> dict[str, Any]:
    """The officer-tasks messages a step emitted, by message id."""
    return {e.message.message_id: e.message for e in result.emit if e.queue == "officer_tasks"}


def _mails(services: Services) -> list[dict[str, Any]]:
    path = services.settings.LOCAL_DATA_DIR / "officer-mail.jsonl"
    return read_jsonl(path) if path.exists() else []


def test_a_new_task_is_a_notice_now_and_a_reminder_at_its_due_time(services: Services) -> None:
    notices = _notices(_record(services, Decision(_journey(), tasks=[_task()])))

    assert set(notices) == {"T-1:task", "T-1:reminder"}
    assert notices["T-1:task"].scheduled_at is None
    assert notices["T-1:reminder"].scheduled_at == DUE
    notice = TaskNotice.model_validate_json(notices["T-1:task"].body)
    assert (notice.kind, notice.task.task_id, notice.role) == ("task", "T-1", "victim")
    assert notice.duty_templates == {"m:M-881": "suspect_arrested"}
    # The task's work address travels on the notice and is kept on the row.
    assert notice.task.assignee_email == OFFICER_EMAIL
    row = services.tables.get(TASKS, DOMESTIC, "T-1")
    assert row is not None and json.loads(row.properties["task"])["assignee_email"] == OFFICER_EMAIL


def test_a_task_without_a_due_time_gets_no_reminder(services: Services) -> None:
    notices = _notices(_record(services, Decision(_journey(), tasks=[_task(due_by=None)])))
    assert set(notices) == {"T-1:task"}


def test_a_task_for_the_team_keeps_no_address_and_goes_to_the_team_mailbox(services: Services) -> None:
    # The domain gives a team task no address (tests/unit/test_task_rules.py); it goes to the team mailbox.
    team = Officer(employee_id="team", display_name=POLICY.force.team_contact_name, generic=True)
    task = _task(assignee="team", assignee_email=None)
    notices = _notices(_record(services, Decision(_journey(team), tasks=[task])))
    notice = TaskNotice.model_validate_json(notices["T-1:task"].body)
    assert notice.task.assignee_email is None
    notify_officer(notices["T-1:task"].body, services)
    [mail] = _mails(services)
    assert mail["to"] == TEAM


def test_an_unusable_assignee_address_falls_back_to_the_team_mailbox(services: Services) -> None:
    notices = _notices(
        _record(services, Decision(_journey(), tasks=[_task(assignee_email="not an address")]))
    )
    notify_officer(notices["T-1:task"].body, services)
    assert [m["to"] for m in _mails(services)] == [TEAM]


def test_a_task_closed_before_its_due_time_gets_no_reminder(services: Services) -> None:
    notices = _notices(_record(services, Decision(_journey(), tasks=[_task()])))
    notify_officer(notices["T-1:task"].body, services)
    _clock(services).advance_to(NOW + timedelta(days=1))
    _record(
        services, Decision(_journey(), closed_tasks={"T-1": "victim_contacted"})
    )  # a logged contact closes it
    row = services.tables.get(TASKS, DOMESTIC, "T-1")
    assert row is not None
    assert (row.properties["closed_at"], row.properties["closed_reason"]) == (
        NOW + timedelta(days=1),
        "victim_contacted",
    )

    # Cancelled on the queue (test_closing_a_task_cancels_its_reminder_still_to_come); one that
    # came all the same finds the task closed.
    _clock(services).advance_to(DUE)
    notify_officer(notices["T-1:reminder"].body, services)

    assert [m["kind"] for m in _mails(services)] == ["task"]
    ledger = services.tables.get(OFFICER_MAIL, DOMESTIC, "T-1:reminder")
    assert ledger is not None
    assert (ledger.properties["status"], ledger.properties["reason"]) == ("not_sent", "task_closed")


def _delivered(services: Services, at: datetime) -> list[str]:
    """The ids of the officer-tasks messages the queue delivers by ``at`` (each completed)."""
    broker = services.publisher
    assert isinstance(broker, SqliteQueueBroker)
    queue = services.settings.OFFICER_TASKS_QUEUE
    ids: list[str] = []
    while (got := broker.receive(queue, receiver="test", now=at)) is not None:
        ids.append(got.message_id)
        broker.complete(got, now=at)
    return ids


def _made(services: Services) -> tuple[StepResult, Entity]:
    """A new task recorded (its notice sent, its reminder scheduled), and its Tasks row as stored."""
    made = _record(services, Decision(_journey(), tasks=[_task()]))
    row = services.tables.get(TASKS, DOMESTIC, "T-1")
    assert row is not None and row.etag is not None
    return made, row


def test_closing_a_task_cancels_its_reminder_still_to_come(services: Services) -> None:
    made, row = _made(services)
    reminder = task_reminder(row)
    assert reminder is not None and reminder[1] == DUE  # the row keeps the number the queue gave it
    assert set(_notices(made)) == {"T-1:task", "T-1:reminder"}

    _clock(services).advance_to(NOW + timedelta(days=1))
    closed = _record(services, Decision(_journey(), closed_tasks={"T-1": "victim_contacted"}))

    assert [(c.queue, c.sequence_number) for c in closed.cancel] == [("officer_tasks", reminder[0])]
    # At its due time the queue has only the task's own notice: the reminder is gone, not delivered.
    assert _delivered(services, DUE + timedelta(minutes=1)) == ["T-1:task"]


def test_a_redelivered_decision_keeps_the_first_reminder_number_and_closing_still_cancels_it(
    services: Services,
) -> None:
    _, first = _made(services)
    # Redelivered: the reminder is scheduled again (a duplicate the queue drops: its number names
    # no message) and the row, written once, keeps the number of the one that is scheduled.
    _record(services, Decision(_journey(), tasks=[_task()]))
    again = services.tables.get(TASKS, DOMESTIC, "T-1")
    assert first is not None and again is not None and task_reminder(again) == task_reminder(first)

    _clock(services).advance_to(NOW + timedelta(hours=2))
    _record(services, Decision(_journey(), closed_tasks={"T-1": "victim_contacted"}))
    assert _delivered(services, DUE + timedelta(minutes=1)) == ["T-1:task"]


def test_a_closing_decision_that_comes_again_cancels_a_reminder_the_first_left_scheduled(
    services: Services,
) -> None:
    # The first delivery closed the row and died (or was retried after a conflict) before its cancel.
    _, row = _made(services)
    assert row.etag is not None
    _clock(services).advance_to(NOW + timedelta(hours=2))
    services.tables.update(
        TASKS, closed_task_entity(row, NOW + timedelta(hours=2), "victim_contacted"), etag=row.etag
    )

    again = _record(services, Decision(_journey(), closed_tasks={"T-1": "victim_contacted"}))
    assert [w for w in again.writes if w.table == TASKS] == []  # its closing time stands
    assert len(again.cancel) == 1
    assert _delivered(services, DUE + timedelta(minutes=1)) == ["T-1:task"]
    # And once more: the reminder is gone, so the cancel finds nothing, and the step goes on.
    _record(services, Decision(_journey(), closed_tasks={"T-1": "victim_contacted"}))


def test_a_task_closed_after_its_reminder_fell_due_cancels_nothing(services: Services) -> None:
    _record(services, Decision(_journey(), tasks=[_task()]))
    _clock(services).advance_to(DUE + timedelta(hours=1))
    closed = _record(services, Decision(_journey(), closed_tasks={"T-1": "victim_contacted"}))
    assert closed.cancel == []
    assert sorted(_delivered(services, DUE + timedelta(hours=1))) == ["T-1:reminder", "T-1:task"]


def test_closing_a_task_again_keeps_the_first_closing_time(services: Services) -> None:
    _record(services, Decision(_journey(), tasks=[_task()]))
    _record(services, Decision(_journey(), closed_tasks={"T-1": "victim_contacted"}))
    _clock(services).advance_to(NOW + timedelta(hours=1))
    again = _record(
        services, Decision(_journey(), closed_tasks={"T-1": "victim_contacted"})
    )  # a redelivered decision
    assert [w for w in again.writes if w.table == TASKS] == []
    row = services.tables.get(TASKS, DOMESTIC, "T-1")
    assert row is not None and row.properties["closed_at"] == NOW
    assert json.loads(row.properties["task"])["task_id"] == "T-1"  # the task itself is kept


def test_a_task_closed_by_the_decision_that_made_it_is_recorded_closed_and_not_mailed(
    services: Services,
) -> None:
    result = _record(
        services, Decision(_journey(), tasks=[_task()], closed_tasks={"T-1": "victim_contacted"})
    )
    assert _notices(result) == {}
    row = services.tables.get(TASKS, DOMESTIC, "T-1")
    assert row is not None and row.properties["closed_reason"] == "victim_contacted"


def test_an_open_task_at_its_due_time_is_mailed_to_the_supervisor(services: Services) -> None:
    notices = _notices(_record(services, Decision(_journey(), tasks=[_task()])))
    _clock(services).advance_to(DUE)
    notify_officer(notices["T-1:reminder"].body, services)
    [mail] = _mails(services)
    assert (mail["kind"], mail["to"], _at(mail["sent_at"])) == ("reminder", SUPERVISORS, DUE)


WROTE = "He came back last night. Please ring me after 6pm, not before."


@pytest.mark.parametrize(
    ("reason", "note", "mail_says"),
    [
        ("victim_message:e-1", WROTE, WROTE),
        ("preferences_changed_on_page:e-2", "channel=sms, frequency_days=14", "updates by text message"),
    ],
)
def test_what_a_person_wrote_or_chose_goes_with_the_task_never_with_its_scheduled_reminder(
    services: Services, reason: str, note: str, mail_says: str
) -> None:
    """A reminder waits on the queue until the task is due, days later, where an erasure cannot
    reach it on Service Bus (journey-rules.md §16): it carries no note."""
    task = _task(duties=[], reason=reason, note=note)
    notices = _notices(_record(services, Decision(_journey(), tasks=[task])))

    assert TaskNotice.model_validate_json(notices["T-1:task"].body).task.note == note
    reminder = notices["T-1:reminder"]
    assert reminder.scheduled_at == DUE
    assert TaskNotice.model_validate_json(reminder.body).task.note is None
    assert note not in reminder.body and mail_says not in reminder.body
    notify_officer(notices["T-1:task"].body, services)
    _clock(services).advance_to(DUE)
    notify_officer(reminder.body, services)

    told, reminded = _mails(services)
    assert (told["kind"], reminded["kind"], reminded["to"]) == ("task", "reminder", SUPERVISORS)
    assert mail_says in told["body"] and mail_says not in reminded["body"]
    assert "in the mail that assigned the task; it is not repeated here." in reminded["body"]


def test_the_channels_a_failed_delivery_names_go_with_its_reminder_too(services: Services) -> None:
    # Not the person's data (journey-rules.md §12): the supervisor is told the same channels.
    task = _task(reason="delivery_failed", note="email,sms")
    notices = _notices(_record(services, Decision(_journey(), tasks=[task])))
    reminder = TaskNotice.model_validate_json(notices["T-1:reminder"].body)
    assert reminder.task.note == "email,sms"
    notify_officer(notices["T-1:task"].body, services)
    _clock(services).advance_to(DUE)
    notify_officer(notices["T-1:reminder"].body, services)
    told, reminded = _mails(services)
    words = "the email and the text message to the victim both failed"
    assert words in told["body"] and words in reminded["body"] and reminded["to"] == SUPERVISORS


def test_an_erasure_takes_what_they_wrote_from_their_tasks_and_leaves_the_channels_that_failed(
    services: Services,
) -> None:
    from shared.steps.retention import erase_in

    wrote = _task(task_id="T-1", duties=[], reason="victim_message:e-1", note=WROTE)
    failed = _task(task_id="T-2", reason="delivery_failed", note="sms")
    _record(services, Decision(_journey(), tasks=[wrote, failed]))
    done = erase_in(DOMESTIC, "P-2201", services, NOW, "request")
    notes = {
        row.row_key: json.loads(str(row.properties["task"]))["note"]
        for row in services.tables.query_partition(TASKS, DOMESTIC)
    }
    assert notes == {"T-1": None, "T-2": "sms"} and done.tasks == 1  # "1 task note": what they wrote


def test_nothing_is_mailed_for_a_person_erased_after_their_task_was_made(services: Services) -> None:
    """A task notice still on the queue (or sent there again from the dead letters, without what
    they wrote) and a scheduled reminder find the journey erased (journey-rules.md §16)."""
    from shared.steps.retention import erase_in

    task = _task(duties=[], reason="victim_message:e-1", note=WROTE)
    notices = _notices(_record(services, Decision(_journey(), tasks=[task])))
    assert services.journeys.get(DOMESTIC, "P-2201") is not None
    erase_in(DOMESTIC, "P-2201", services, NOW, "request")

    notify_officer(notices["T-1:task"].body, services)
    _clock(services).advance_to(DUE)
    notify_officer(notices["T-1:reminder"].body, services)

    assert _mails(services) == []
    for key in ("T-1:task", "T-1:reminder"):
        ledger = services.tables.get(OFFICER_MAIL, DOMESTIC, key)
        assert ledger is not None
        assert (ledger.properties["status"], ledger.properties["reason"]) == ("not_sent", "erased")


def test_a_notice_delivered_twice_mails_once(services: Services, caplog: pytest.LogCaptureFixture) -> None:
    notices = _notices(_record(services, Decision(_journey(), tasks=[_task()])))
    caplog.set_level(logging.INFO, logger="victim_updates.events")
    first = notify_officer(notices["T-1:task"].body, services)
    second = notify_officer(notices["T-1:task"].body, services)

    assert len(_mails(services)) == 1
    assert second.writes == [] and second.events == []  # the ledger ends a redelivery at once
    assert [name for name, _ in first.events] == ["OfficerNotified"]
    [event] = [r for r in caplog.records if r.getMessage() == "OfficerNotified"]
    assert (event.crime_reference, event.task_id, event.kind) == (DOMESTIC, "T-1", "task")  # type: ignore[attr-defined]
    assert OFFICER_EMAIL not in json.dumps(first.events)  # ids only, never an address


class _Crash(Exception):
    pass


class _CrashingNotifier:
    """Crashes once, before or after handing the mail to the real notifier."""

    def __init__(self, real: Any, after: bool) -> None:
        self.real, self.after, self.crashed = real, after, False

    def send(self, *, idempotency_key: str, mail: OfficerMail) -> ProviderReceipt:
        if self.crashed:
            return self.real.send(idempotency_key=idempotency_key, mail=mail)  # type: ignore[no-any-return]
        self.crashed = True
        if not self.after:
            raise _Crash("before the notifier")
        self.real.send(idempotency_key=idempotency_key, mail=mail)
        raise _Crash("after the notifier accepted")


@pytest.mark.parametrize("after", [False, True], ids=["crash-before-notifier", "crash-after-notifier"])
def test_a_crash_around_the_notifier_and_a_redelivery_mail_once(services: Services, after: bool) -> None:
    notices = _notices(_record(services, Decision(_journey(), tasks=[_task()])))
    services.notifier = _CrashingNotifier(services.notifier, after)
    with pytest.raises(_Crash):
        notify_officer(notices["T-1:task"].body, services)
    ledger = services.tables.get(OFFICER_MAIL, DOMESTIC, "T-1:task")
    assert ledger is not None and ledger.properties["status"] == "pending"  # claimed before the notifier

    notify_officer(notices["T-1:task"].body, services)  # Service Bus delivers it again
    notify_officer(notices["T-1:task"].body, services)  # and once more, after it finished

    assert len(_mails(services)) == 1
    ledger = services.tables.get(OFFICER_MAIL, DOMESTIC, "T-1:task")
    assert ledger is not None and ledger.properties["status"] == "sent"


def test_a_throttled_notifier_brings_the_notice_back_when_it_says(services: Services) -> None:
    notices = _notices(_record(services, Decision(_journey(), tasks=[_task()])))

    class Throttled:
        def send(self, *, idempotency_key: str, mail: OfficerMail) -> ProviderReceipt:
            raise ProviderThrottled(90)

    real, services.notifier = services.notifier, Throttled()
    result = notify_officer(notices["T-1:task"].body, services)
    [later] = _notices(result).values()
    assert later.scheduled_at == NOW + timedelta(seconds=90) and later.message_id.startswith("T-1:task@")
    services.notifier = real
    notify_officer(later.body, services)
    assert len(_mails(services)) == 1


def test_a_reminder_waits_for_a_task_just_made_then_drops_a_missing_one(
    services: Services, caplog: pytest.LogCaptureFixture
) -> None:
    # An overdue task's reminder is due at once, and can arrive before its Tasks row is written.
    overdue = _task(due_by=NOW - timedelta(days=2))
    notices = _notices(_record(services, Decision(_journey(), tasks=[overdue])))
    services.tables.delete(TASKS, DOMESTIC, "T-1")  # as if the row were not written yet
    waited = _notices(notify_officer(notices["T-1:reminder"].body, services))
    [again] = waited.values()
    assert again.scheduled_at == NOW + timedelta(seconds=30) and again.message_id.startswith(
        "T-1:reminder@wait:"
    )

    caplog.set_level(logging.WARNING)
    _clock(services).advance_to(NOW + timedelta(minutes=11))
    assert _notices(notify_officer(again.body, services)) == {}
    assert _mails(services) == []
    assert "T-1" in caplog.text and DOMESTIC in caplog.text and OFFICER_EMAIL not in caplog.text


def test_the_embedded_notifier_writes_the_design_fields_once_per_key_even_after_reopening(
    tmp_path: Path,
) -> None:
    path = tmp_path / "officer-mail.jsonl"
    mail = OfficerMail("T-1", DOMESTIC, "task", OFFICER_EMAIL, "Action needed", "Body", "<p>Body</p>")
    first = FileOfficerMail(path, lambda: NOW).send(idempotency_key="T-1:task", mail=mail)
    reopened = FileOfficerMail(path, lambda: NOW + timedelta(minutes=5))
    assert reopened.send(idempotency_key="T-1:task", mail=mail) == first
    reopened.send(idempotency_key="T-1:reminder", mail=OfficerMail(**(vars(mail) | {"kind": "reminder"})))

    lines = read_jsonl(path)
    assert [(line["task_id"], line["kind"]) for line in lines] == [("T-1", "task"), ("T-1", "reminder")]
    assert lines[0] == {
        "task_id": "T-1",
        "crime_reference": DOMESTIC,
        "to": OFFICER_EMAIL,
        "kind": "task",
        "subject": "Action needed",
        "body": "Body",
        "sent_at": "2026-12-18T10:00:00+00:00",
    }
    with pytest.raises(ValueError, match="<task id>:<kind>"):
        reopened.send(idempotency_key="another-key", mail=mail)


# --- the ACS notifier, through the real SDK against the stub -------------------------------------------

SENDER = "DoNotReply@updates.police.example"
FAST = RetrySettings(retries=1, backoff_factor=0.01, backoff_max=0.5, connection_timeout=2, read_timeout=5)


def _acs(stub: AcsStub, clock: Callable[[], datetime]) -> AcsOfficerMail:
    return AcsOfficerMail(
        AcsEmailSender.from_connection_string(
            stub.connection_string(), sender_address=SENDER, clock=clock, retry=FAST
        )
    )


def test_acs_sends_officer_mail_as_one_email_per_key_under_its_own_operation_id(
    acs_stub: AcsStub,  # noqa: F811
) -> None:
    mail = OfficerMail("T-1", DOMESTIC, "task", OFFICER_EMAIL, "Action needed", "Body", "<p>Body</p>")
    now = datetime.now(UTC)
    first = _acs(acs_stub, lambda: now).send(idempotency_key="T-1:task", mail=mail)
    second = _acs(acs_stub, lambda: now).send(idempotency_key="T-1:task", mail=mail)  # another worker

    requests = acs_stub.requests_to("email")
    assert len(requests) == 2 and len(acs_stub.accepted_emails) == 1 and first == second
    operation = idempotency_uuid("email", "officer:T-1:task")
    assert {r.header("operation-id") for r in requests} == {operation}
    assert operation != idempotency_uuid("email", "T-1:task")  # never a victim message's operation
    assert requests[0].body == {
        "senderAddress": SENDER,
        "recipients": {"to": [{"address": OFFICER_EMAIL}]},
        "content": {"subject": "Action needed", "plainText": "Body", "html": "<p>Body</p>"},
        "userEngagementTrackingDisabled": True,
    }


def test_notify_officer_through_acs_mails_once_across_a_redelivery(
    acs_stub: AcsStub,  # noqa: F811
    tmp_path: Path,
) -> None:
    # The stub checks request dates against the real clock, so the step runs near it.
    start = datetime.now(UTC).replace(microsecond=0)
    built, broker = embedded(load_settings(LOCAL_DATA_DIR=tmp_path), SimulatedClock(start))
    try:
        built.notifier = _acs(acs_stub, built.clock.now)
        journey = _journey()
        task = _task(created_at=start, due_by=start + timedelta(days=1))
        notices = _notices(_record(built, Decision(journey, tasks=[task])))
        notify_officer(notices["T-1:task"].body, built)
        notify_officer(notices["T-1:task"].body, built)
    finally:
        broker.close()

    [request] = acs_stub.requests_to("email")
    assert len(acs_stub.accepted_emails) == 1
    assert request.body["recipients"] == {"to": [{"address": OFFICER_EMAIL}]}
    content = request.body["content"]
    assert DOMESTIC in content["subject"] and "P-2201" in content["plainText"]
    assert "Alex" not in json.dumps(request.body) and "alex@example.org" not in json.dumps(request.body)
    assert not (tmp_path / "officer-mail.jsonl").exists()


# --- wiring ---------------------------------------------------------------------------------------------------


def test_bootstrap_sends_officer_mail_through_acs_when_configured_else_to_the_file(tmp_path: Path) -> None:
    from shared.adapters.acs import AcsProvider
    from shared.bootstrap import bootstrap

    embedded = bootstrap(load_settings(LOCAL_DATA_DIR=tmp_path))
    assert isinstance(embedded.notifier, FileOfficerMail)
    assert embedded.notifier.path == tmp_path / "officer-mail.jsonl"

    azure = bootstrap(
        load_settings(
            LOCAL_DATA_DIR=tmp_path / "azure",
            ACS_CONNECTION_STRING="endpoint=https://acs.example.communication.azure.com/;accesskey=c2VjcmV0",
            ACS_EMAIL_SENDER=SENDER,
            ACS_SMS_SENDER="HumbsPolice",
        )
    )
    assert isinstance(azure.notifier, AcsOfficerMail) and isinstance(azure.provider, AcsProvider)
    assert azure.notifier.email is azure.provider.email  # one sender address, one client, one identity


def test_the_service_bus_emulator_declares_every_queue_with_its_sessions() -> None:
    config = json.loads(
        (Path(__file__).parents[2] / "infra" / "servicebus-emulator" / "Config.json").read_text(
            encoding="utf-8"
        )
    )
    [namespace] = config["UserConfig"]["Namespaces"]
    declared = {q["Name"]: q["Properties"]["RequiresSession"] for q in namespace["Queues"]}
    assert declared == {q.name: q.sessions for q in queue_configs(load_settings())}
    assert declared["officer-tasks"] is False


def test_the_local_host_runs_notify_officer_on_the_officer_tasks_queue(tmp_path: Path) -> None:
    import function_app
    from shared.local.host import LocalHost

    settings = load_settings(LOCAL_DATA_DIR=tmp_path)
    built, broker = embedded(settings, SimulatedClock(NOW))
    try:
        host = LocalHost(function_app.app, broker, settings, built.clock.now)
        [target] = [q for q in host.queues if q.name == "notify_officer"]
        assert (target.queue, target.sessions) == ("officer-tasks", False)
    finally:
        broker.close()


def test_a_moved_visits_notice_and_reminder_carry_the_earlier_time(services: Services) -> None:
    # What the officer mail needs to say a visit moved travels with the notice: no table read.
    attend = "attend:HU-20261005-0001:2026-10-08T10:00:00+00:00"
    details = {"appointment": "2026-10-08T10:00:00+00:00", "replaces_task_for": "2026-10-07T10:30:00+00:00"}
    duty = Duty(key=attend, template="attendance_booked", event_at=NOW, change_id="c-2", details=details)
    journey = _journey()
    journey.duties[attend] = duty
    notices = _notices(_record(services, Decision(journey, tasks=[_task(duties=[attend])])))
    for key in ("T-1:task", "T-1:reminder"):
        notice = TaskNotice.model_validate_json(notices[key].body)
        assert notice.replaces_task_for == {attend: "2026-10-07T10:30:00+00:00"} and notice.moved_from == {}


def test_a_notice_and_a_task_row_hold_the_newer_fields_only_when_they_say_something(
    services: Services,
) -> None:
    # The version before forbids fields it does not know: rolled back to, it still reads every
    # notice (a reminder waits days on the queue) and Tasks row of an adult whose visit did not move.
    adult = _notices(_record(services, Decision(_journey(), tasks=[_task()])))
    for key in ("T-1:task", "T-1:reminder"):
        body = json.loads(adult[key].body)
        assert "via_guardian" not in body["task"] and not {"moved_from", "replaces_task_for"} & set(body)
    row = services.tables.get("Tasks", DOMESTIC, "T-1")
    assert row is not None and "via_guardian" not in json.loads(str(row.properties["task"]))
    child = _notices(_record(services, Decision(_journey(), tasks=[_task(task_id="T-2", via_guardian=True)])))
    assert json.loads(child["T-2:task"].body)["task"]["via_guardian"] is True
    assert TaskNotice.model_validate_json(child["T-2:reminder"].body).task.via_guardian
    row = services.tables.get("Tasks", DOMESTIC, "T-2")
    assert row is not None and json.loads(str(row.properties["task"]))["via_guardian"] is True
