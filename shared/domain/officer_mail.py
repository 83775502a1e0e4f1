"""Officer mail: what an officer, a team or a supervisor reads about an officer task (journey-rules.md §11).

A mail says at a glance which record it is about (the crime, or for a STORM caller the
incident), which person in it (by person id only), what they must be told (the duties
in words), why an officer has it (the reason in words), by when (Europe/London, with
its day and date) and where the record is. It never holds the victim's name, contact
details, date of birth, address or guardian: the notice it is made from has none.

The words for duties, reasons and flags are here, next to the keys they translate;
the templates in ``shared/templates/officer/`` (plain text, and HTML made from the
same paragraphs) are filled by ``shared/adapters/templates.py``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal
from urllib.parse import quote
from zoneinfo import ZoneInfo

from shared.contracts.messages import NoticeTask, TaskNotice
from shared.domain.journey.duties import DutyKind
from shared.domain.journey.tasks import DEADLINE_BREACHED, DELIVERY_FAILED, channels_in_note
from shared.domain.journey.telling import DELIVERY_UNKNOWN
from shared.domain.policy import Policy

_LONDON = ZoneInfo("Europe/London")

Recipient = Literal["assignee", "team", "supervisor"]

FLAG_WORDS = {
    "domestic_abuse": "domestic abuse",
    "sexual_offence": "a sexual offence",
    "stalking_harassment": "stalking or harassment",
    "honour_based_abuse": "honour-based abuse",
    "modern_slavery": "modern slavery",
    "bereaved": "a bereaved family",
    "hate_crime": "a hate crime",
    "terrorism": "terrorism",
    "attempted_murder": "attempted murder",
    "kidnap": "kidnap",
    "arson_endanger_life": "arson endangering life",
    "persistently_targeted": "a persistently targeted victim",
}

MILESTONE_WORDS = {
    "suspect_arrested": "the suspect was arrested",
    "suspect_interviewed": "the suspect was interviewed",
    "suspect_bailed": "the suspect was bailed",
    "bail_conditions_changed": "the suspect's bail conditions changed",
    "bail_cancelled": "the suspect's bail was cancelled",
    "suspect_released_under_investigation": "the suspect was released under investigation",
    "suspect_released_no_further_action": "the suspect was released with no further action",
    "suspect_charged": "the suspect was charged",
    "out_of_court_disposal": "the suspect was given an out-of-court disposal",
    "decision_not_to_prosecute": "a decision was made not to prosecute",
}


def london(moment: datetime) -> str:
    """``11:59pm on Tuesday 29 December 2026``: the time and date in Europe/London."""
    local = moment.astimezone(_LONDON)
    clock = f"{local.hour % 12 or 12}:{local:%M}{'am' if local.hour < 12 else 'pm'}"
    return f"{clock} on {local:%A} {local.day} {local:%B %Y}"


def london_day(moment: datetime) -> str:
    """``Friday 18 December 2026``."""
    local = moment.astimezone(_LONDON)
    return f"{local:%A} {local.day} {local:%B %Y}"


def flag_in_words(flag: str) -> str:
    return FLAG_WORDS.get(flag, flag.replace("_", " "))


def _review(policy: Policy) -> str:
    return (
        f" (the victim can ask for this decision to be reviewed within {policy.right_to_review_months}"
        " months: Victims' Right to Review)"
    )


def duty_in_words(
    key: str,
    template: str | None,
    policy: Policy,
    outcome_words: Mapping[str, str],
    moved_from: str | None = None,
    replaces_task_for: str | None = None,
) -> str:
    """What the person must be told, for a duty key (``m:M-881`` with the template ``suspect_arrested`` …);
    for a visit that moved, the earlier time they were told (``moved_from``) or that an officer's
    task, closed now, was to tell (``replaces_task_for``)."""
    rest = key.partition(":")[2]
    try:
        kind: DutyKind | None = DutyKind.of(key)
    except ValueError:
        kind = None  # a kind this version does not know: named by its key
    if kind is DutyKind.ACKNOWLEDGE:
        return "that their report has been recorded: the crime reference, who is dealing with it and what happens next"
    if kind is DutyKind.OFFICER and rest:
        # The first officer assigned or a new one, and often the very officer reading this.
        return f"who the officer in charge of their case is now, and how to reach them (employee {rest} in the record)"
    if kind is DutyKind.MILESTONE and rest:
        words = MILESTONE_WORDS.get(template or "")
        update = (
            f"a case update: {words} (milestone {rest})" if words else f"a case update (milestone {rest})"
        )
        return update + (_review(policy) if template in policy.right_to_review_milestones else "")
    if kind is DutyKind.OUTCOME and rest:
        words = outcome_words.get(rest, "the investigation has ended")
        review = _review(policy) if rest in policy.right_to_review_outcomes else ""
        return f"the outcome of the investigation: {words} (Home Office outcome {rest}){review}"
    if kind is DutyKind.CHECKIN and rest:
        return f"a regular check-in on how the case is going (check-in {rest})"
    if kind is DutyKind.ATTENDANCE and rest:
        incident, _, at = rest.partition(":")  # the time itself holds colons
        visit = f"when an officer will attend: at {_when(at, 'a time to confirm')} (incident {incident})"
        if replaces_task_for:
            earlier = _when(replaces_task_for, "an earlier time")
            visit = f"{visit}. The visit moved from {earlier}: the task to tell them that time is closed"
            if moved_from:  # and before that, a message had told them another time
                return f"{visit}; a message had told them {_when(moved_from, 'an earlier time')} before that"
            return visit
        if moved_from:
            return (
                f"{visit}. The visit moved from {_when(moved_from, 'an earlier time')}, which they were told"
            )
        return visit
    return f"duty {key}"


def _when(iso: str, unknown: str) -> str:
    """A time from a duty's key or details in London words, or ``unknown`` if it is not one."""
    try:
        return london(datetime.fromisoformat(iso))
    except ValueError:
        return unknown


def _category_name(slug: str, policy: Policy) -> str:
    """The policy's own name of a STORM category from its slug in a reason (``domestic_incident``)."""
    for name in policy.storm.safeguarding_categories:
        if "_".join(re.sub(r"[^0-9a-z]+", " ", name.casefold()).split()) == slug:
            return name
    return slug.replace("_", " ")


def reason_in_words(reason: str, person: str, policy: Policy) -> str:
    """Why the task is with an officer, for a reason code (``excluded_crime:domestic_abuse`` …)."""
    head, _, rest = reason.partition(":")
    if head == "excluded_crime":
        source, _, category = rest.partition(":")
        if source == "storm" and category:
            name = _category_name(category, policy)
            return f"automated messages are not allowed for this incident (STORM category {name})"
        return f"automated messages are not allowed for this crime ({flag_in_words(rest)})"
    words = {
        "no_safe_channel": f"there is no safe way to reach the {person} automatically: no email address"
        " or mobile number that is valid and safe to use",
        "under_18_no_guardian": f"the {person} is under 18 and no guardian's contact details are recorded",
        "victim_unknown": f"the {person} is not in the record, so how to contact them is unknown",
        "deadline_breached": f"the Victims' Code deadline passed before the {person} was told",
        "delivery_failed": f"the automatic message to the {person} could not be delivered",
        "delivery_unknown": f"the message service could not confirm that the automatic message reached"
        f" the {person}, and sending it again could send it twice",
        "preferences_changed_on_page": f"the {person} changed how we contact them on their own page;"
        " please update the record in Niche to match",
        "victim_message": f"the {person} sent a message to the officer from their own page",
    }
    return words.get(reason, words.get(head, "reason: " + reason.replace("_", " ").replace(":", ", ")))


_CHANNEL_WORDS = {"email": "by email", "sms": "by text message", "both": "by email and text message"}
_MESSAGE_WORDS = {"email": "the email", "sms": "the text message"}
_CONTACT_WORDS = {"email": "email address", "sms": "mobile number"}


def failed_channels_in_words(note: str | None) -> str | None:
    """The channels a delivery_failed task's note names (``email,sms``), as an officer reads them:
    "by email and by text message"; None for a note naming none it knows (a task from before)."""
    return _channels_in_words(channels_in_note(note))


def _channels_in_words(channels: list[str]) -> str | None:
    return " and ".join(_CHANNEL_WORDS[channel] for channel in channels) or None


def choices_in_words(note: str | None) -> str | None:
    """What a person chose on their page (``channel=sms, frequency_days=14``), as an officer reads it:
    "updates by text message; a check-in every 2 weeks when there is no news"."""
    if not note:
        return None
    words = []
    for pair in note.split(", "):
        name, _, value = pair.partition("=")
        if name == "channel":
            words.append(f"updates {_CHANNEL_WORDS.get(value, value)}")
        elif name == "frequency_days" and value.isdigit():
            days = int(value)
            every = f"{days // 7} weeks" if days % 7 == 0 else f"{days} days"
            words.append(f"a check-in every {every} when there is no news")
        elif name == "language":
            words.append(f"messages in {value}")
        elif name == "opted_out":
            words.append("no more updates" if value == "true" else "updates again")
        else:
            words.append(pair)
    return "; ".join(words)


def record_link(policy: Policy, reference: str) -> str:
    """The link to the record, the reference URL-encoded (``HU/004512/26`` → ``HU%2F004512%2F26``)."""
    return policy.force.record_url.format(crime_reference=quote(reference, safe=""))


def assignee_in_words(task: NoticeTask, policy: Policy) -> str:
    """Who a task was given to, as a supervisor reads it."""
    team = f"the team mailbox ({policy.force.team_mailbox})"
    if task.assignee in ("team", policy.force.team_contact_name):
        return team
    if task.assignee_email:
        return f"officer {task.assignee} ({task.assignee_email})"
    return f"officer {task.assignee}, sent to {team} as no work address was known"


# A task made from the recipient's page, by its reason: what the officer is given.
_FROM_PAGE = {"victim_message": "message", "preferences_changed_on_page": "choices"}


@dataclass(frozen=True)
class RenderedOfficerMail:
    subject: str
    text: str
    html: str


def mail_context(
    notice: TaskNotice, policy: Policy, recipient: Recipient, outcome_words: Mapping[str, str]
) -> dict[str, Any]:
    """Everything the officer-mail templates read (``outcome_words``: outcome code -> words)."""
    task = notice.task
    caller = notice.role == "caller"
    person = "caller" if caller else "victim"
    # A child's messages go to their parent or carer, so the officer is told to contact them too.
    guardian = task.via_guardian and not caller
    addressee = "victim's parent or carer" if guardian else person
    # A caller's task is keyed by the STORM incident; its link goes to the crime once there is one.
    linked = notice.linked_crime if caller else None
    # A message that did not reach them: by which channels (journey-rules.md §12).
    failed = channels_in_note(task.note) if task.reason == DELIVERY_FAILED else []
    failed_by = _channels_in_words(failed)
    return {
        "force_name": policy.force.name,
        "record": "incident" if caller else "crime",
        "reference": task.crime_reference,
        "linked_crime": linked,
        "person": person,
        "addressee": addressee,  # whom the messages went to, and whom to contact
        "guardian": guardian,
        "person_id": task.person_id,
        "duties": [
            duty_in_words(
                key,
                notice.duty_templates.get(key),
                policy,
                outcome_words,
                notice.moved_from.get(key),
                notice.replaces_task_for.get(key),
            )
            for key in task.duties
        ],
        "reason": _reason(task.reason, failed, addressee, policy, task.note),
        "escalation": task.reason == DEADLINE_BREACHED,
        # From the recipient's page: their message, or what they changed (journey-rules.md §13). A
        # reminder carries neither (it waits days on the queue): it says where they are instead.
        "from_page": _FROM_PAGE.get(task.reason.partition(":")[0]),
        "message": task.note if task.reason.startswith("victim_message") else None,
        "changed": choices_in_words(task.note)
        if task.reason.startswith("preferences_changed_on_page")
        else None,
        "excluded": task.reason.startswith("excluded_crime"),
        # A message that did not reach them, or may not have (journey-rules.md §9, §12).
        "delivery": task.reason if task.reason in (DELIVERY_FAILED, DELIVERY_UNKNOWN) else None,
        "failed_by": failed_by,
        # What to check in the record: the address or number the provider could not deliver to.
        "failed_contact": (
            ("parent or carer's " if guardian else "") + " or ".join(_CONTACT_WORDS[c] for c in failed)
            if failed
            else None
        ),
        "failed_both": len(failed) > 1,
        "due": london(task.due_by) if task.due_by is not None else None,
        "created": london_day(task.created_at),
        # Niche's record; an incident not linked to a crime has none there (its number is STORM's).
        "link": None if caller and not linked else record_link(policy, linked or task.crime_reference),
        "task_id": task.task_id,
        "assignee": task.assignee,
        "assigned_to": assignee_in_words(task, policy),
        "to_team": recipient == "team",
    }


def _reason(reason: str, failed: list[str], addressee: str, policy: Policy, note: str | None) -> str:
    """Why the task is with an officer, of the ``addressee`` (the victim, their parent or carer,
    the caller); for a failed delivery (``failed``: the channels its note names), which messages
    failed and why not another channel; for a deadline passed, why the duty was with an officer
    before (a safeguarding exclusion …: never through a parent or carer, tasks._through_guardian)."""
    if reason == DEADLINE_BREACHED and note:
        before = reason_in_words(note, addressee, policy)
        return f"{reason_in_words(reason, addressee, policy)}; it was with an officer because {before}"
    if not failed:
        return reason_in_words(reason, addressee, policy)
    # Shorter than the opening, which has just said "by email and by text message" (a reminder
    # has no opening, so the messages are named here too): why nothing automatic is left to send.
    messages = " and ".join(_MESSAGE_WORDS[channel] for channel in failed)
    if len(failed) > 1:
        return f"{messages} to the {addressee} both failed, and there is no other channel to try"
    return (
        f"{messages} to the {addressee} could not be delivered, and no other channel that is safe and"
        " valid is left to try"
    )


def paragraphs(text: str) -> list[list[str]]:
    """A mail's text as paragraphs of lines (blank lines split paragraphs)."""
    return [
        [line.strip() for line in block.splitlines() if line.strip()]
        for block in text.split("\n\n")
        if block.strip()
    ]
