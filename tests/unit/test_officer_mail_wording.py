"""Officer mail as an officer, a team or a supervisor reads it (journey-rules.md §11)."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import pytest

from shared.adapters.templates import render_officer_mail
from shared.contracts.messages import NoticeTask, TaskNotice
from shared.domain.officer_mail import Recipient, choices_in_words, failed_channels_in_words
from shared.domain.policy import Policy

POLICY = Policy()
# An arrest on Friday 18 December 2026, due by the end of Tuesday 29 December (journey-rules.md §2).
DUE = datetime(2026, 12, 29, 23, 59, 59, tzinfo=UTC)
CREATED = datetime(2026, 12, 18, 10, 0, tzinfo=UTC)


def notice(kind: str = "task", role: str = "victim", **task: Any) -> TaskNotice:
    fields: dict[str, Any] = {
        "task_id": "T-0123456789abcdef",
        "crime_reference": "HU/004512/26",
        "person_id": "P-2201",
        "duties": ["m:M-881"],
        "reason": "excluded_crime:domestic_abuse",
        "assignee": "104233",
        "assignee_email": "jo.bloggs@example.police.uk",
        "due_by": DUE,
        "created_at": CREATED,
    }
    templates = {"m:M-881": "suspect_arrested", "m:M-882": "decision_not_to_prosecute"}
    return TaskNotice.model_validate(
        {"kind": kind, "role": role, "task": NoticeTask(**(fields | task)), "duty_templates": templates}
    )


def render(item: TaskNotice, recipient: Recipient = "assignee") -> Any:
    return render_officer_mail(item, POLICY, recipient)


def test_a_task_mail_says_who_to_tell_what_why_by_when_and_where_the_record_is() -> None:
    mail = render(notice())
    assert mail.subject == (
        "Action needed: update victim P-2201 on crime HU/004512/26 by 11:59pm on Tuesday 29 December 2026"
    )
    assert mail.text == (
        "Victim Updates must not send this victim automatic updates, so an officer needs to contact them.\n"
        "\n"
        "Crime: HU/004512/26\n"
        "Victim: person P-2201 in the record\n"
        "\n"
        "Tell them:\n"
        "- a case update: the suspect was arrested (milestone M-881)\n"
        "\n"
        "Why an officer: automated messages are not allowed for this crime (domestic abuse).\n"
        "\n"
        "Due: by 11:59pm on Tuesday 29 December 2026.\n"
        "\n"
        "Open the record:\n"
        "https://niche.example.police.uk/occurrence/HU%2F004512%2F26\n"
        "\n"
        "Contact the victim only in a way that is safe for them. When you have, record a"
        ' "victim contacted" update in Niche: that closes this task.\n'
        "If it is still open when it is due, it goes to your supervisor.\n"
        "\n"
        "Task T-0123456789abcdef, assigned to officer 104233 (jo.bloggs@example.police.uk)."
        " Sent by Victim Updates, Humberside Police.\n"
    )


def test_a_reminder_says_it_is_overdue_when_it_was_due_and_who_had_it() -> None:
    mail = render(notice("reminder"), "supervisor")
    assert mail.subject == (
        "Overdue: victim P-2201 on crime HU/004512/26 was to be updated by 11:59pm on Tuesday 29 December 2026"
    )
    assert mail.text.startswith(
        "This officer task is overdue: it was due by 11:59pm on Tuesday 29 December 2026 and has not been"
        " closed.\n\nIt was assigned to officer 104233 (jo.bloggs@example.police.uk) on Friday 18 December"
        " 2026.\n"
    )
    assert (
        "They still need to be told:\n- a case update: the suspect was arrested (milestone M-881)\n"
        in mail.text
    )
    assert "https://niche.example.police.uk/occurrence/HU%2F004512%2F26" in mail.text


@pytest.mark.parametrize(
    ("reason", "where"),
    [
        (
            "victim_message:0123456789ab",
            "Why an officer: the victim sent a message to the officer from their own page.\n"
            "\n"
            "What they wrote is in the mail that assigned the task; it is not repeated here.\n",
        ),
        (
            "preferences_changed_on_page:0123456789ab",
            "Why an officer: the victim changed how we contact them on their own page; please update the"
            " record in Niche to match.\n"
            "\n"
            "What they chose is in the mail that assigned the task; it is not repeated here.\n",
        ),
    ],
)
def test_a_reminder_of_a_task_from_the_page_says_where_its_note_is_and_lists_no_empty_duties(
    reason: str, where: str
) -> None:
    """The reminder is scheduled without the note (what they wrote or chose: journey-rules.md §16),
    and such a task has no duties: the mail neither quotes the one nor heads an empty list."""
    mail = render(notice("reminder", duties=[], reason=reason, note=None), "supervisor")
    assert mail.text == (
        "This officer task is overdue: it was due by 11:59pm on Tuesday 29 December 2026 and has not been"
        " closed.\n"
        "\n"
        "It was assigned to officer 104233 (jo.bloggs@example.police.uk) on Friday 18 December 2026.\n"
        "\n"
        "Crime: HU/004512/26\n"
        "Victim: person P-2201 in the record\n"
        "\n" + where + "\n"
        "Open the record:\n"
        "https://niche.example.police.uk/occurrence/HU%2F004512%2F26\n"
        "\n"
        "Please make sure the victim is contacted now, in a way that is safe for them, and that a"
        ' "victim contacted" update is recorded in Niche: that closes the task.\n'
        "\n"
        "Task T-0123456789abcdef. Sent by Victim Updates, Humberside Police.\n"
    )
    assert "<p>What they" in mail.html and "<ul>" not in mail.html


def test_a_reminder_of_any_other_task_says_nothing_of_a_note() -> None:
    assert "not repeated here" not in render(notice("reminder"), "supervisor").text


@pytest.mark.parametrize(
    ("assignee", "email", "words"),
    [
        ("team", None, "the team mailbox (victim-updates-team@example.police.uk)"),
        ("your local policing team", None, "the team mailbox (victim-updates-team@example.police.uk)"),
        (
            "104233",
            None,
            "officer 104233, sent to the team mailbox (victim-updates-team@example.police.uk)"
            " as no work address was known",
        ),
    ],
)
def test_a_reminder_names_the_team_when_there_was_no_officer(
    assignee: str, email: str | None, words: str
) -> None:
    mail = render(notice("reminder", assignee=assignee, assignee_email=email), "supervisor")
    assert f"It was assigned to {words} on Friday 18 December 2026." in mail.text


def test_a_task_for_the_team_mailbox_asks_the_team_to_allocate_it() -> None:
    mail = render(notice(assignee="team", assignee_email=None), "team")
    assert (
        "This came to the team mailbox because no officer's work address is known for it: please allocate it."
        in (mail.text)
    )
    assert "assigned to the team mailbox (victim-updates-team@example.police.uk)" in mail.text
    assert "allocate" not in render(notice()).text


def test_a_storm_callers_task_speaks_of_the_incident_and_its_caller() -> None:
    attend = "attend:HU-20261120-0123:2026-11-20T16:00:00+00:00"
    mail = render(
        notice(
            role="caller",
            crime_reference="HU-20261120-0123",
            person_id="C-77",
            duties=[attend],
            reason="excluded_crime:storm:domestic_incident",  # as journey.excluded_reason gives it
            due_by=None,
        )
    )
    assert mail.subject == "Action needed: update caller C-77 on incident HU-20261120-0123"
    # A caller is not a Niche victim: their task closes when STORM records the visit.
    assert "The task closes when STORM records that an officer attended." in mail.text
    assert "Niche" not in mail.text
    assert "Incident: HU-20261120-0123\nCaller: person C-77 in the record\n" in mail.text
    assert (
        "- when an officer will attend: at 4:00pm on Friday 20 November 2026 (incident HU-20261120-0123)"
        in (mail.text)
    )
    assert (
        "automated messages are not allowed for this incident (STORM category Domestic Incident)" in mail.text
    )
    assert "Crime:" not in mail.text and "crime" not in mail.subject
    # Not linked to a crime: no Niche record to open (a Niche link with its number led nowhere).
    assert (
        "Open incident HU-20261120-0123 in STORM: it was not linked to a crime when this task was made."
        in mail.text
    )


def test_a_callers_incident_linked_to_a_crime_links_to_the_crime() -> None:
    item = notice(role="caller", crime_reference="HU-20261120-0123", person_id="C-77", due_by=None)
    linked = TaskNotice.model_validate(item.model_dump() | {"linked_crime": "HU/004512/26"})
    mail = render(linked)
    assert "Incident: HU-20261120-0123 (linked to crime HU/004512/26)\n" in mail.text
    assert "https://niche.example.police.uk/occurrence/HU%2F004512%2F26" in mail.text


@pytest.mark.parametrize(
    ("reason", "words"),
    [
        (
            "excluded_crime:domestic_abuse",
            "automated messages are not allowed for this crime (domestic abuse)",
        ),
        (
            "excluded_crime:sexual_offence",
            "automated messages are not allowed for this crime (a sexual offence)",
        ),
        (
            "excluded_crime:stalking_harassment",
            "automated messages are not allowed for this crime (stalking or harassment)",
        ),
        (
            "excluded_crime:honour_based_abuse",
            "automated messages are not allowed for this crime (honour-based abuse)",
        ),
        (
            "excluded_crime:modern_slavery",
            "automated messages are not allowed for this crime (modern slavery)",
        ),
        ("excluded_crime:bereaved", "automated messages are not allowed for this crime (a bereaved family)"),
        (
            "excluded_crime:storm:child_protection",
            "automated messages are not allowed for this incident (STORM category Child Protection)",
        ),
        (
            "no_safe_channel",
            "there is no safe way to reach the victim automatically: no email address or mobile number"
            " that is valid and safe to use",
        ),
        ("under_18_no_guardian", "the victim is under 18 and no guardian's contact details are recorded"),
        ("victim_unknown", "the victim is not in the record, so how to contact them is unknown"),
        ("deadline_breached", "the Victims' Code deadline passed before the victim was told"),
        ("delivery_failed", "the automatic message to the victim could not be delivered"),
        (
            "delivery_unknown",
            "the message service could not confirm that the automatic message reached the victim,"
            " and sending it again could send it twice",
        ),
        ("niche_update_needed", "reason: niche update needed"),
    ],
)
def test_every_reason_is_given_in_words(reason: str, words: str) -> None:
    assert f"Why an officer: {words}.\n" in render(notice(reason=reason)).text


@pytest.mark.parametrize(
    ("duty", "words"),
    [
        (
            "ack",
            "that their report has been recorded: the crime reference, who is dealing with it and what"
            " happens next",
        ),
        (
            "oic:104999",
            "who the officer in charge of their case is now, and how to reach them (employee 104999 in the"
            " record)",
        ),
        ("m:M-881", "a case update: the suspect was arrested (milestone M-881)"),
        (
            "m:M-882",
            "a case update: a decision was made not to prosecute (milestone M-882) (the victim can ask for"
            " this decision to be reviewed within 3 months: Victims' Right to Review)",
        ),
        ("m:M-999", "a case update (milestone M-999)"),
        (
            "outcome:18",
            "the outcome of the investigation: investigation complete and no suspect identified"
            " (Home Office outcome 18)",
        ),
        (
            "outcome:15",
            "the outcome of the investigation: investigation ended: a suspect was identified but there is not"
            " enough evidence (Home Office outcome 15) (the victim can ask for this decision to be reviewed"
            " within 3 months: Victims' Right to Review)",
        ),
        ("checkin:2", "a regular check-in on how the case is going (check-in 2)"),
        (
            "attend:HU-20260630-0007:2026-06-30T14:45:00+00:00",
            "when an officer will attend: at 3:45pm on Tuesday 30 June 2026 (incident HU-20260630-0007)",
        ),
    ],
)
def test_every_duty_is_given_in_words(duty: str, words: str) -> None:
    assert f"Tell them:\n- {words}\n" in render(notice(duties=[duty])).text


def test_several_duties_are_listed_one_a_line() -> None:
    text = render(notice(duties=["ack", "m:M-881"])).text
    assert "Tell them:\n- that their report has been recorded" in text
    assert "happens next\n- a case update: the suspect was arrested (milestone M-881)\n" in text


def test_a_due_time_in_summer_is_given_in_british_summer_time() -> None:
    mail = render(notice(due_by=datetime(2026, 6, 30, 22, 59, 59, tzinfo=UTC)))
    assert mail.subject.endswith("by 11:59pm on Tuesday 30 June 2026")


def test_a_task_without_a_deadline_says_so_and_promises_no_reminder() -> None:
    mail = render(notice(due_by=None))
    assert mail.subject == "Action needed: update victim P-2201 on crime HU/004512/26"
    assert "Due: no deadline is set.\n" in mail.text and "supervisor" not in mail.text


def test_an_escalation_says_the_deadline_was_missed() -> None:
    mail = render(notice(reason="deadline_breached"))
    assert mail.subject.startswith("Deadline missed: update victim P-2201 on crime HU/004512/26 by ")
    assert mail.text.startswith("The Victims' Code deadline to update this victim has passed")


def test_the_html_is_escaped_and_links_the_record() -> None:
    mail = render(notice(duties=["m:<b>M-1</b>"], crime_reference="HU/0045&12/26"))
    assert "<b>M-1</b>" not in mail.html and "&lt;b&gt;M-1&lt;/b&gt;" in mail.html
    link = "https://niche.example.police.uk/occurrence/HU%2F0045%2612%2F26"
    assert f'<a href="{link}">{link}</a>' in mail.html
    assert "<li>a case update (milestone &lt;b&gt;M-1&lt;/b&gt;)</li>" in mail.html
    assert "<title>Action needed: update victim P-2201 on crime HU/0045&amp;12/26" in mail.html


@pytest.mark.parametrize(
    ("note", "words"),
    [
        (
            "channel=sms, frequency_days=14",
            "updates by text message; a check-in every 2 weeks when there is no news",
        ),
        ("channel=both", "updates by email and text message"),
        ("opted_out=true", "no more updates"),
        ("language=cy, opted_out=false", "messages in cy; updates again"),
        ("frequency_days=10", "a check-in every 10 days when there is no news"),
    ],
)
def test_what_a_person_chose_on_their_page_reaches_the_officer_in_words(note: str, words: str) -> None:
    assert choices_in_words(note) == words


@pytest.mark.parametrize(
    ("reason", "opening"),
    [
        ("delivery_failed", "An automatic message to this victim could not be delivered, so an officer"),
        ("delivery_unknown", "Victim Updates cannot tell whether an automatic message reached this victim"),
    ],
)
def test_a_message_that_did_not_or_may_not_have_reached_them_is_not_told_as_no_automatic_updates(
    reason: str, opening: str
) -> None:
    text = render(notice(reason=reason)).text
    assert opening in text and "needs to tell them what it said" in text
    assert "send this victim automatic updates" not in text  # one message, not every update


@pytest.mark.parametrize(
    ("role", "note", "opening", "why"),
    [
        (
            "victim",
            "sms",
            "An automatic message to this victim by text message could not be delivered, so an officer"
            " needs to tell them what it said.",
            "Why an officer: the text message to the victim could not be delivered, and no other channel"
            " that is safe and valid is left to try.",
        ),
        (
            "victim",
            "email",
            "An automatic message to this victim by email could not be delivered,",
            "Why an officer: the email to the victim could not be delivered, and no other channel",
        ),
        (
            "victim",
            "email,sms",
            "Automatic messages to this victim by email and by text message could not be delivered, so an"
            " officer needs to tell them what the messages said.",
            "Why an officer: the email and the text message to the victim both failed, and there is no"
            " other channel to try.",
        ),
        (
            "caller",
            "email,sms",
            "Automatic messages to this caller by email and by text message could not be delivered,",
            "Why an officer: the email and the text message to the caller both failed,",
        ),
        # A task from before its note named the channels: the words it always had.
        (
            "victim",
            None,
            "An automatic message to this victim could not be delivered, so an officer needs to tell them"
            " what it said.",
            "Why an officer: the automatic message to the victim could not be delivered.",
        ),
    ],
)
def test_a_failed_delivery_names_the_channels_that_failed_and_no_address(
    role: str, note: str | None, opening: str, why: str
) -> None:
    mail = render(notice(role=role, reason="delivery_failed", note=note))
    assert mail.text.startswith(opening) and why in mail.text
    # The opening says by which channels; the reason why an officer does not say it all again.
    channels = failed_channels_in_words(note)
    assert channels is None or mail.text.count(channels) == 1
    assert opening.split(",")[0] in mail.html  # the HTML part says the same
    # The supervisor's reminder keeps the channels (they are not the person's): the same reason.
    reminder = render(notice(kind="reminder", role=role, reason="delivery_failed", note=note))
    assert why in reminder.text


def test_a_note_naming_no_channel_it_knows_reads_as_a_task_from_before() -> None:
    # Whatever a note holds, the officer reads channels only, and only the two there are.
    for note in ("", "fax", "email;sms", "<b>sms</b>"):
        assert failed_channels_in_words(note) is None, note
    assert failed_channels_in_words("sms,email") == "by text message and by email"


@pytest.mark.parametrize(
    ("because", "words"),
    [
        (
            "excluded_crime:domestic_abuse",
            "automated messages are not allowed for this crime (domestic abuse)",
        ),
        ("no_safe_channel", "there is no safe way to reach the victim automatically"),
        ("under_18_no_guardian", "the victim is under 18 and no guardian's contact details are recorded"),
        ("delivery_failed", "the automatic message to the victim could not be delivered"),
    ],
)
def test_an_escalation_says_why_the_duty_was_with_an_officer_and_so_does_its_reminder(
    because: str, words: str
) -> None:
    why = (
        "Why an officer: the Victims' Code deadline passed before the victim was told; it was with an"
        f" officer because {words}"
    )
    for kind in ("task", "reminder"):
        mail = render(notice(kind=kind, reason="deadline_breached", note=because))
        assert why in mail.text, kind
        assert why.split(";")[1].strip() in mail.html.replace("&#39;", "'"), kind


def test_an_escalation_of_a_duty_no_officer_had_says_only_that_the_deadline_passed() -> None:
    mail = render(notice(reason="deadline_breached"))
    assert "Why an officer: the Victims' Code deadline passed before the victim was told.\n" in mail.text


@pytest.mark.parametrize(
    ("reason", "note"),
    [
        ("no_safe_channel", None),
        ("delivery_failed", "email"),
        ("delivery_failed", "email,sms"),
        ("delivery_failed", None),  # a task from before its note named the channels
        ("delivery_unknown", None),
        ("victim_message:e-1", "Can someone call me back?"),
        ("preferences_changed_on_page", "channel=sms"),
        ("deadline_breached", "no_safe_channel"),
        ("deadline_breached", None),
    ],
)
def test_a_childs_task_names_the_parent_or_carer_the_messages_went_to(reason: str, note: str | None) -> None:
    # Seen in the demo: a task for a 14-year-old whose guardian's email bounced said "An automatic
    # message to this victim … could not be delivered … Contact the victim", so an officer would
    # reach for the child. When a child's messages go to their parent or carer (never for an
    # excluded crime or with no guardian to write to, nor an escalation of a duty tasked for either:
    # the domain does not mark those, test_task_rules), every line about whom a message went to, who
    # wrote, or whom to contact names the parent or carer; the deadline alone stays the victim's.
    child_victim = re.compile(r"\b(the|this) victim\b(?!'s parent or carer)", re.IGNORECASE)
    for kind in ("task", "reminder"):
        text = render(notice(kind=kind, reason=reason, note=note, via_guardian=True)).text
        assert (
            "Victim: person P-2201 in the record, under 18, so their updates go to their parent or carer"
            in text
        )
        lines = text.splitlines()
        if lines[0].startswith("The Victims' Code deadline to update this victim has passed"):
            assert lines[0].endswith("Please contact their parent or carer now.")
            lines = lines[1:]
        wrong = [line for line in lines if child_victim.search(line) and "victim contacted" not in line]
        assert not wrong, (kind, wrong)
        adult = render(notice(kind=kind, reason=reason, note=note)).text
        assert "parent or carer" not in adult and child_victim.search(adult)
    if reason == "delivery_failed" and note:
        task = render(notice(reason=reason, note=note, via_guardian=True)).text
        assert "to this victim's parent or carer by email" in task
        assert "If the parent or carer's email address" in task and "in Niche is wrong" in task


def test_a_callers_task_is_never_worded_for_a_parent_or_carer() -> None:
    text = render(notice(role="caller", reason="delivery_failed", note="sms", via_guardian=True)).text
    assert "parent or carer" not in text and "Caller: person P-2201 in the record\n" in text


@pytest.mark.parametrize(
    ("role", "note", "check"),
    [
        ("victim", "email", "If the email address in Niche is wrong, please correct it there"),
        ("victim", "sms", "If the mobile number in Niche is wrong"),
        ("victim", "email,sms", "If the email address or mobile number in Niche is wrong"),
        ("caller", "sms", "If the mobile number in STORM is wrong"),
    ],
)
def test_a_failed_delivery_asks_the_officer_to_correct_the_record_it_came_from(
    role: str, note: str, check: str
) -> None:
    # Seen in the demo: one victim's every email bounced for seven weeks, each a new task, and no
    # mail said the address in the record might be wrong. Later updates use what the record holds.
    assert check in render(notice(role=role, reason="delivery_failed", note=note)).text
    for other in ("excluded_crime:domestic_abuse", "delivery_unknown"):
        assert "please correct it there" not in render(notice(role=role, reason=other)).text


def test_a_callers_task_without_a_crime_points_to_storm_not_to_a_niche_record() -> None:
    # An incident not linked to a crime has no Niche record: its number in a Niche link led nowhere.
    unlinked = notice(role="caller", crime_reference="HU-20261030-0038", reason="no_safe_channel")
    for kind in ("task", "reminder"):
        mail = render(unlinked.model_copy(update={"kind": kind}))
        assert (
            "Open incident HU-20261030-0038 in STORM: it was not linked to a crime when this task was made."
            in mail.text
        )
        assert "niche.example.police.uk" not in mail.text + mail.html
    linked = unlinked.model_copy(update={"linked_crime": "HU/004512/26"})
    assert "https://niche.example.police.uk/occurrence/HU%2F004512%2F26" in render(linked).text


def test_a_moved_visits_task_says_from_when_and_whether_they_were_told_it() -> None:
    attend = "attend:HU-20261005-0001:2026-10-08T10:00:00+00:00"
    caller = {"role": "caller", "crime_reference": "HU-20261005-0001", "duties": [attend], "due_by": None}
    earlier = "2026-10-07T10:30:00+00:00"
    visit = "- when an officer will attend: at 11:00am on Thursday 8 October 2026 (incident HU-20261005-0001)"
    for kind in ("task", "reminder"):
        base = notice(kind=kind, **caller)
        tasked = base.model_copy(update={"replaces_task_for": {attend: earlier}})
        assert (
            f"{visit}. The visit moved from 11:30am on Wednesday 7 October 2026: the task to tell them that"
            " time is closed\n"
        ) in render(tasked).text
        told = base.model_copy(update={"moved_from": {attend: earlier}})
        assert (
            f"{visit}. The visit moved from 11:30am on Wednesday 7 October 2026, which they were told\n"
        ) in render(told).text
        assert f"{visit}\n" in render(base).text and "moved" not in render(base).text
        # Told one time by a message, then another by an officer's task, now a third: both said.
        both = base.model_copy(
            update={
                "moved_from": {attend: "2026-10-06T09:00:00+00:00"},
                "replaces_task_for": {attend: earlier},
            }
        )
        assert (
            "the task to tell them that time is closed; a message had told them 10:00am on Tuesday 6 October"
            " 2026 before that\n"
        ) in render(both).text
