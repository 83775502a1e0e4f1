"""The recipient's own page (journey-rules.md §13): where their case stands, how we contact them,
stop, and a message to their officer.

A link opens its crime and person only, while ``shared.domain.links.link_state`` says it is
open. The pages show the crime reference (a caller's incident number), what the person has
been told and when, with what the provider reported of its delivery, who has the case and how
to reach them, and when the next update is due: never the offence, a suspect, an address or
anyone else. What the person changes goes to ``evaluate_journey`` as an event in the crime's
session (``PreferencesChosen``, ``MessageToOfficer``), as every other change of a journey does.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from shared.adapters.repositories import TableJourneys, TableLinks
from shared.adapters.table_layout import MESSAGES, PAGE_CHOICES, ledger_from
from shared.contracts.messages import (
    FREQUENCIES,
    MESSAGE_TO_OFFICER_MAX,
    MessageToOfficer,
    PreferencesChosen,
)
from shared.domain.journey import Journey
from shared.domain.journey.safeguard import usable_channels
from shared.domain.ledger import LedgerStatus
from shared.domain.links import LinkState, link_state
from shared.domain.officer_mail import london_day
from shared.domain.policy import Policy
from shared.ports import Entity, OutgoingMessage
from shared.steps.dependencies import Committing
from shared.web.http import Request, Response, html
from shared.web.links import OpenLink, ResolveLink
from shared.web.site import FieldError, Handler, PageKit, Pages

# What the pages use of the worker's services: what every step needs to emit and write.
PageServices = Committing


def links_resolver(services: PageServices) -> ResolveLink:
    """Opens a link from the Links table while its journey says it is open (journey-rules.md §13)."""

    def resolve(link_id: str, now: datetime) -> OpenLink | None:
        link = TableLinks(services.tables).get(link_id)
        if link is None:
            return None
        stored = TableJourneys(services.tables).get(link.crime_reference, link.person_id)
        journey = stored.journey if stored is not None else None
        if link_state(link, journey, services.policy, now) is not LinkState.OPEN:
            return None
        return OpenLink(link.link_id, link.crime_reference, link.person_id)

    return resolve


# What each message said, in words that name no one and nothing of the offence.
TOLD = {
    "acknowledgement": "Your report was recorded",
    "officer_changed": "Who is dealing with your case",
    "checkin": "Your case is still open",
    "case_closed": "The outcome of your case",
    "attendance_booked": "When an officer will visit",
    "attendance_moved": "A visit was moved",
    "combined_update": "News about your case",
}
DELIVERY = {
    LedgerStatus.SENT: "sent",
    LedgerStatus.DELIVERED: "delivered",
    LedgerStatus.UNDELIVERED: "could not be delivered",
}
CHANNEL_WORDS = {"email": "Email", "sms": "Text message", "both": "Email and text message"}
FREQUENCY_WORDS = {14: "Every 2 weeks", 28: "Every 4 weeks", 56: "Every 8 weeks"}
LANGUAGE_WORDS = {"en": "English", "cy": "Cymraeg (Welsh)"}


@dataclass(frozen=True)
class Told:
    when: str
    what: str
    channel: str
    delivery: str


def told(journey: Journey, services: PageServices) -> list[Told]:
    """What the person was sent and when, newest first: one read of the crime's Messages ledger."""
    keys = {key for duty in journey.duties.values() for key in duty.message_keys}
    entries = [
        entry
        for entity in services.tables.query_partition(MESSAGES, journey.crime_reference)
        if entity.row_key in keys
        and (entry := ledger_from(entity)).status in DELIVERY
        and entry.sent_at is not None
    ]
    return [
        Told(
            when=london_day(e.sent_at),
            what=TOLD.get(e.template or "", "News about the investigation"),
            channel=CHANNEL_WORDS.get(e.channel or "", "Message"),
            delivery=DELIVERY[e.status],
        )
        for e in sorted(entries, key=lambda e: e.sent_at or datetime.min, reverse=True)
        if e.sent_at is not None
    ]


def _journey(link: OpenLink, services: PageServices) -> Journey | None:
    stored = TableJourneys(services.tables).get(link.crime_reference, link.person_id)
    return stored.journey if stored is not None else None


def _who(journey: Journey, policy: Policy) -> str:
    officer = journey.officer
    if officer is None or officer.generic or not officer.active:
        return policy.force.team_contact_name
    if officer.collar_number and officer.collar_number not in officer.display_name:
        return f"{officer.display_name}, {officer.collar_number}"
    return officer.display_name


def _next_update(journey: Journey) -> str | None:
    if journey.case_status == "finalised" or _stopped(journey):
        return None
    return london_day(journey.next_checkin_at) if journey.next_checkin_at is not None else None


def _stopped(journey: Journey) -> bool:
    if journey.role == "caller":
        return journey.caller is None or not journey.caller.consent_to_updates
    victim = journey.victim
    return victim is not None and (victim.preferences.opted_out or victim.preferences.channel == "none")


def _keep_choice(services: PageServices, event: PreferencesChosen) -> None:
    """The choice as the person made it, in its own table, before the journey hears of it."""
    chosen = event.model_dump(
        include={"channel", "frequency_days", "language", "opted_out"}, exclude_none=True
    )
    properties = {**chosen, "person_id": event.person_id, "event_id": event.event_id, "at": event.at}
    row = Entity(event.crime_reference, f"{event.person_id}:{event.event_id}", properties)
    services.tables.upsert(PAGE_CHOICES, row)


def _publish(services: PageServices, event: PreferencesChosen | MessageToOfficer) -> None:
    """To evaluate_journey, in the crime's session, as every change of a journey goes."""
    if isinstance(event, PreferencesChosen):
        _keep_choice(services, event)
    body = OutgoingMessage(event.model_dump_json(), event.event_id, session_id=event.crime_reference)
    services.publisher.send(services.settings.JOURNEY_EVENTS_QUEUE, [body])


def recipient_pages(services: PageServices) -> Pages:
    """The status, preferences, stop and message pages, over the worker's services."""
    pages = Pages()
    policy = services.policy

    def gone(page: PageKit) -> Response:  # the journey was erased between the link and the page
        return page.render("plain.html.j2", title="This link does not work", status=404, paragraphs=[])

    @pages.get("")
    def status(request: Request, link: OpenLink, page: PageKit) -> Response:
        journey = _journey(link, services)
        if journey is None:
            return gone(page)
        return page.render(
            "status.html.j2",
            title="Your case",
            reference=journey.crime_reference,
            caller=journey.role == "caller",
            told=told(journey, services),
            who=_who(journey, policy),
            next_update=_next_update(journey),
            finalised=journey.case_status == "finalised",
            stopped=_stopped(journey),
            can_choose=journey.role == "victim",
        )

    @pages.post("")
    def one_click(request: Request, link: OpenLink, page: PageKit) -> Response:
        """RFC 8058: a mail program's "unsubscribe" posts List-Unsubscribe=One-Click here."""
        _publish(services, _chosen(link, page.now, opted_out=True))
        return html(
            200, "<!DOCTYPE html><title>Unsubscribed</title><p>You will not be sent any more updates.</p>"
        )

    def preferences_form(
        page: PageKit, journey: Journey, form: dict[str, str], errors: list[FieldError]
    ) -> Response:
        usable = usable_channels(journey, policy)
        channels = [(c, CHANNEL_WORDS[c]) for c in ("email", "sms") if usable.get(c)]
        if len(channels) == 2:
            channels.append(("both", CHANNEL_WORDS["both"]))
        assert journey.victim is not None
        prefs = journey.victim.preferences
        return page.render(
            "preferences.html.j2",
            title="How we contact you",
            status=400 if errors else 200,
            errors=errors,
            channels=channels,
            frequencies=[(str(days), FREQUENCY_WORDS[days]) for days in FREQUENCIES],
            languages=[(code, LANGUAGE_WORDS.get(code, code)) for code in policy.languages],
            form=form
            or {
                "channel": prefs.channel,
                "frequency_days": str(prefs.frequency_days),
                "language": prefs.language,
            },
            stopped=_stopped(journey),
        )

    @pages.get("preferences")
    def preferences(request: Request, link: OpenLink, page: PageKit) -> Response:
        journey = _journey(link, services)
        if journey is None or journey.victim is None:
            return gone(page)
        return preferences_form(page, journey, {}, [])

    @pages.post("preferences")
    def save_preferences(request: Request, link: OpenLink, page: PageKit) -> Response:
        journey = _journey(link, services)
        if journey is None or journey.victim is None:
            return gone(page)
        form = {name: request.form.get(name, "") for name in ("channel", "frequency_days", "language")}
        usable = usable_channels(journey, policy)
        offered = {c for c in ("email", "sms") if usable.get(c)}
        if len(offered) == 2:
            offered.add("both")
        errors = []
        if form["channel"] not in offered:
            errors.append(FieldError("channel", "Select how we should contact you"))
        if form["frequency_days"] not in {str(days) for days in FREQUENCIES}:
            errors.append(FieldError("frequency_days", "Select how often we should check in with you"))
        if form["language"] not in policy.languages:
            errors.append(FieldError("language", "Select the language we should write in"))
        if errors:
            return preferences_form(page, journey, form, errors)
        chosen = _chosen(
            link,
            page.now,
            channel=form["channel"],
            frequency_days=int(form["frequency_days"]),
            language=form["language"],
            opted_out=False,  # choosing how to hear from us starts updates again
        )
        _publish(services, chosen)
        return page.redirect("preferences-saved")

    @pages.get("stop")
    def stop(request: Request, link: OpenLink, page: PageKit) -> Response:
        journey = _journey(link, services)
        caller = journey is not None and journey.role == "caller"
        return page.render("stop.html.j2", title="Stop updates", again=_start_again(caller, services))

    @pages.post("stop")
    def confirm_stop(request: Request, link: OpenLink, page: PageKit) -> Response:
        _publish(services, _chosen(link, page.now, opted_out=True))
        return page.redirect("stopped")

    def message_form(page: PageKit, text: str, errors: list[FieldError]) -> Response:
        return page.render(
            "message.html.j2",
            title="Send a message to your officer",
            status=400 if errors else 200,
            errors=errors,
            form={"message": text},
            max_length=MESSAGE_TO_OFFICER_MAX,
        )

    @pages.get("message")
    def message(request: Request, link: OpenLink, page: PageKit) -> Response:
        return message_form(page, "", [])

    @pages.post("message")
    def send_message(request: Request, link: OpenLink, page: PageKit) -> Response:
        text = request.form.get("message", "").strip()
        if not text:
            return message_form(page, text, [FieldError("message", "Enter your message")])
        if len(text) > MESSAGE_TO_OFFICER_MAX:
            words = f"Your message must be {MESSAGE_TO_OFFICER_MAX} characters or fewer"
            return message_form(page, text, [FieldError("message", words)])
        if not page.use("message"):
            return page.too_many()
        event = MessageToOfficer(
            event_id=uuid.uuid4().hex,
            crime_reference=link.crime_reference,
            person_id=link.person_id,
            text=text,
            at=page.now,
        )
        _publish(services, event)
        return page.redirect("message-sent")

    for name, (title, body) in CONFIRMATIONS.items():
        pages.add("GET", name, _confirmation(title, body, services))
    return pages


# The page each POST ends on (POST-redirect-GET): its panel's title and what it means for them.
CONFIRMATIONS = {
    "preferences-saved": (
        "Your choices are saved",
        "We will contact you as you have chosen from now on, for messages already waiting too.",
    ),
    "stopped": ("Updates stopped", "We will not send you any more updates. {again}"),
    "message-sent": (
        "Message sent",
        "Your officer has your message and will reply in a way that is safe for you.",
    ),
}


def _confirmation(title: str, body: str, services: PageServices) -> Handler:
    def confirm(request: Request, link: OpenLink, page: PageKit) -> Response:
        journey = _journey(link, services)
        caller = journey is not None and journey.role == "caller"
        return page.render(
            "done.html.j2", title=title, body=body.format(again=_start_again(caller, services))
        )

    return confirm


def _start_again(caller: bool, services: PageServices) -> str:
    """How to have updates again: a victim chooses on their page; a caller's consent is STORM's."""
    if caller:
        return f"To have them again, call {services.policy.force.non_emergency_number}."
    return "You can start them again from your page."


def _chosen(link: OpenLink, now: datetime, **choice: object) -> PreferencesChosen:
    return PreferencesChosen.model_validate(
        {
            "event_id": uuid.uuid4().hex,
            "crime_reference": link.crime_reference,
            "person_id": link.person_id,
            "at": now,
            **choice,
        }
    )
