"""The message catalogue: every message the service can send, on one page, for a force's
communications team to read before a victim does.

``python -m shared.ops.catalogue [--out DIR] [--policy FILE]`` (``make catalogue``) writes one
self-contained HTML page (no external CSS, scripts or fonts) and prints its path. It builds
``Journey`` and ``Duty`` objects directly and calls the real ``render_sms`` and
``render_email``, so what the page shows is what would be sent: every template, SMS and
email, for each reader (a victim, a victim with enhanced rights, the guardian of a victim under
18, a caller whose call is linked to a crime and one whose call is not), with a named officer
and with the team contact standing in, with realistic values and with the longest values the
contracts realistically allow; every outcome code, combined updates, and a moved visit. Each
SMS is shown with its characters and segments against its budget (``SMS_SEGMENT_BUDGET``).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from statistics import mean
from typing import Any, Literal

from shared.adapters.policy_file import load_policy
from shared.adapters.templates import TEMPLATE_ROOT, render_email, render_sms
from shared.cli import Parser, file_in_the_way
from shared.contracts.feeds import Caller, Victim
from shared.contracts.messages import Officer
from shared.domain.journey import Duty, Journey
from shared.domain.policy import Policy, PolicyError
from shared.domain.wording import SMS_SEGMENT_BUDGET, RenderedEmail, RenderedSms

DEFAULT_OUT = Path("out") / "catalogue"

Values = Literal["realistic", "longest"]
Reader = Literal["victim", "enhanced", "guardian", "caller_crime", "caller_no_crime"]
OfficerKind = Literal["named", "team"]

READERS: dict[Reader, str] = {
    "victim": "Victim",
    "enhanced": "Victim with enhanced rights",
    "guardian": "Guardian of a victim under 18",
    "caller_crime": "Caller whose call is linked to a crime",
    "caller_no_crime": "Caller whose call has no crime",
}
OFFICERS: dict[OfficerKind, str] = {"named": "named officer", "team": "team contact"}
VALUES: tuple[Values, ...] = ("realistic", "longest")

TITLES = {
    "acknowledgement": "Acknowledgement",
    "officer_changed": "A new officer",
    "suspect_arrested": "Suspect arrested",
    "suspect_interviewed": "Suspect interviewed",
    "suspect_bailed": "Suspect released on bail",
    "bail_conditions_changed": "Bail conditions changed",
    "bail_cancelled": "Bail cancelled",
    "suspect_released_under_investigation": "Suspect released under investigation",
    "suspect_released_no_further_action": "Suspect released with no further action (right to review)",
    "suspect_charged": "Suspect charged",
    "out_of_court_disposal": "Out-of-court disposal",
    "decision_not_to_prosecute": "Decision not to prosecute (right to review)",
    "case_closed": "Outcome: the case is finalised",
    "checkin": "Check-in",
    "attendance_booked": "Visit booked or moved",
    "combined_update": "Several updates in one message",
}

# What each Home Office outcome means (journey-rules.md §6), beside the words a reader gets.
OUTCOME_MEANINGS = {
    "1": "charged or summonsed",
    "2": "youth caution",
    "3": "adult caution",
    "4": "taken into consideration with another offence",
    "5": "the suspect has died",
    "6": "penalty notice for disorder",
    "7": "cannabis or khat warning",
    "8": "community resolution",
    "9": "the CPS decided a prosecution is not in the public interest",
    "10": "police decided a prosecution is not in the public interest (right to review)",
    "11": "prosecution not possible: the suspect is under the age of criminal responsibility",
    "12": "prosecution not possible: the suspect is too ill",
    "13": "prosecution not possible: the victim or a key witness has died or is too ill",
    "14": "no suspect identified and the victim does not support further action",
    "15": "a suspect identified but not enough evidence (right to review)",
    "16": "a suspect identified and the victim does not support further action",
    "17": "the time limit for prosecution has passed (right to review)",
    "18": "investigation complete, no suspect identified",
    "19": "filed by the National Fraud Intelligence Bureau",
    "20": "another organisation has taken over the investigation",
    "21": "police decided further investigation is not in the public interest (right to review)",
    "22": "diversionary, educational or intervention activity",
}

# Crime references and STORM incident numbers are ShortText in the feeds (up to 200
# characters), but real ones are 12 to 17 characters (HU/000133/26, HU-20261005-0123). The
# catalogue's longest values use 18 characters, one more than the longest seen, and SMS
# budgets are set against them.
LONGEST_REFERENCE_LENGTH = 18
# The personal link in every message (journey-rules.md §13): the policy's force.link_base_url, a
# slash and 11 letters and digits; at most 40 characters with https://.
LONGEST_LINK_LENGTH = 40

_T0 = datetime.fromisoformat("2026-10-05T09:00:00+01:00")  # Monday 5 October 2026, 9am


@dataclass(frozen=True)
class ValueSet:
    """One set of values the catalogue fills every message with."""

    crime_reference: str
    incident_number: str
    link: str
    officer: Officer
    victim_name: dict[str, str]
    child_name: dict[str, str]
    guardian_name: dict[str, str]
    caller_name: dict[str, str]
    court: str
    hearing_at: str
    appointment: str
    moved_from: str
    disposal: str


REALISTIC = ValueSet(
    crime_reference="HU/000133/26",
    incident_number="HU-20261005-0123",
    link="https://hu.police.uk/k7Qp2xZa9Lm",
    officer=Officer(
        employee_id="104233",
        collar_number="PC 8628",
        display_name="Sarah Ap Rhys",
        rank="Police Constable",
        email="sarah.aprhys8628@example.police.uk",
    ),
    victim_name={"title": "Mrs", "forename": "Jane", "surname": "Jackson"},
    child_name={"forename": "Ava", "surname": "Atkinson"},
    guardian_name={"title": "Mr", "forename": "Daniel", "surname": "Atkinson"},
    caller_name={"forename": "Jo", "surname": "Bloggs"},
    court="Hull Magistrates' Court",
    hearing_at="2026-11-18T09:30:00+00:00",
    appointment="2026-10-06T15:45:00+01:00",  # Tuesday 6 October at 3:45pm
    moved_from="2026-10-05T14:00:00+01:00",  # Monday 5 October at 2pm
    disposal="community resolution",
)
LONGEST = ValueSet(
    crime_reference="HU/0001234567/2026",
    incident_number="HU-20260930-001234",
    link="https://victims.humbs.police.uk/k7Qp2xZa",
    officer=Officer(
        employee_id="104234",
        collar_number="DC 123456",
        # The directory's display name sometimes carries the rank and collar number too.
        display_name="DC 123456 Christopher Montgomery-Richardson",
        rank="Detective Constable",
        email="christopher.montgomery-richardson.123456@humberside.police.uk",
    ),
    victim_name={"title": "Ms", "forename": "Alexandra", "surname": "Featherstonehaugh-Smythe"},
    child_name={"forename": "Anastasia-Rose", "surname": "Featherstonehaugh-Smythe"},
    guardian_name={"title": "Mr", "forename": "Maximilian", "surname": "Featherstonehaugh-Smythe"},
    caller_name={"forename": "Bartholomew", "surname": "Montgomery-Richardson"},
    court="Kingston upon Hull Combined Court Centre and Magistrates' Court",
    hearing_at="2026-09-30T09:45:00+01:00",
    appointment="2026-09-30T12:45:00+01:00",  # Wednesday 30 September at 12:45pm
    moved_from="2026-09-23T11:45:00+01:00",  # Wednesday 23 September at 11:45am
    disposal="youth conditional caution",
)
VALUE_SETS: dict[Values, ValueSet] = {"realistic": REALISTIC, "longest": LONGEST}


@dataclass(frozen=True)
class Variant:
    """One message to render: a reader, an officer, a set of values and the duties it carries."""

    key: str
    section: str
    title: str  # what the variant shows, e.g. 'Outcome 15' or 'Two updates'
    reader: Reader
    officer: OfficerKind
    values: Values
    journey: Journey
    duties: tuple[Duty, ...]
    link: str

    @property
    def label(self) -> str:
        return f"{READERS[self.reader]}, {OFFICERS[self.officer]}, {self.values} values"

    @property
    def audience(self) -> Literal["victim", "guardian", "caller"]:
        if self.reader in ("caller_crime", "caller_no_crime"):
            return "caller"
        return "guardian" if self.reader == "guardian" else "victim"

    @property
    def has_crime(self) -> bool:
        return self.reader != "caller_no_crime"


@dataclass(frozen=True)
class Rendered:
    variant: Variant
    sms: RenderedSms
    email: RenderedEmail


# --- building the variants ---------------------------------------------------------------------


def _journey(reader: Reader, officer: OfficerKind, values: ValueSet, policy: Policy) -> Journey:
    named = values.officer if officer == "named" else None
    team = Officer(employee_id="team", display_name=policy.force.team_contact_name, generic=True)
    common: dict[str, Any] = {"recorded_at": _T0, "officer": named or team}
    if reader in ("caller_crime", "caller_no_crime"):
        caller = Caller.model_validate(
            {
                "person_id": "C-1",
                "name": values.caller_name,
                "contact": {"mobile": "07700900123"},
                "consent_to_updates": True,
            }
        )
        return Journey(
            crime_reference=values.incident_number,
            incident_number=values.incident_number,
            linked_crime=values.crime_reference if reader == "caller_crime" else None,
            person_id="C-1",
            role="caller",
            caller=caller,
            **common,
        )
    person: dict[str, Any] = {
        "person_id": "P-1",
        "name": values.victim_name,
        "date_of_birth": "1984-03-12",
        "contact": {"email": "victim@example.org", "mobile": "07700900123"},
    }
    if reader == "enhanced":
        person["enhanced_rights"] = ["vulnerable"]
    if reader == "guardian":
        person |= {
            "name": values.child_name,
            "date_of_birth": "2013-04-02",
            "contact": {},
            "guardian": {
                "name": values.guardian_name,
                "email": "guardian@example.org",
                "mobile": "07700900456",
            },
        }
    return Journey(
        crime_reference=values.crime_reference,
        person_id="P-1",
        role="victim",
        victim=Victim.model_validate(person),
        **common,
    )


def _details(template: str, values: ValueSet) -> dict[str, str]:
    """The details a duty of this template carries in the journey (shared/domain/journey.py)."""
    if template == "officer_changed":
        return {"first_officer": "no"}
    if template == "attendance_booked":
        return {"appointment": values.appointment}
    if template == "case_closed":
        return {"outcome": "18"}
    details = {"milestone": template}
    if template == "suspect_charged":
        details |= {"court": values.court, "hearing_at": values.hearing_at}
    if template == "out_of_court_disposal":
        details["disposal"] = values.disposal
    return details


def _duty(template: str, at: datetime, details: dict[str, str]) -> Duty:
    return Duty(
        key=f"{template}@{at.isoformat()}", template=template, event_at=at, change_id="c", details=details
    )


def templates() -> list[str]:
    """Every update template, in the order a journey meets them."""
    found = {p.name.split(".")[0] for p in (TEMPLATE_ROOT / "en" / "updates").glob("*.sms.j2")}
    order = ["acknowledgement", "officer_changed", *Policy().notifiable_milestones, "case_closed"]
    order += ["checkin", "attendance_booked"]
    return [t for t in order if t in found] + sorted(found - set(order))


def readers_for(template: str) -> list[Reader]:
    """The readers a template is rendered for: a call with no crime has no suspect or outcome."""
    crime_free = {"acknowledgement", "officer_changed", "checkin", "attendance_booked"}
    everyone: list[Reader] = list(READERS)
    return everyone if template in crime_free else [r for r in everyone if r != "caller_no_crime"]


def _combinations(values: ValueSet) -> dict[str, tuple[str, list[tuple[str, dict[str, str]]]]]:
    """Combined updates: the duties in the order the feed gave them (not the order they happened)."""
    return {
        "two": (
            "Two updates, given out of order",
            [
                ("suspect_interviewed", {"milestone": "suspect_interviewed"}),
                ("suspect_arrested", {"milestone": "suspect_arrested"}),
            ],
        ),
        "several": (
            "Four updates",
            [
                ("suspect_bailed", {"milestone": "suspect_bailed"}),
                ("officer_changed", {"first_officer": "yes"}),
                ("suspect_arrested", {"milestone": "suspect_arrested"}),
                ("suspect_interviewed", {"milestone": "suspect_interviewed"}),
            ],
        ),
        "closure": (
            "Released with no further action, then the case closed (right to review)",
            [
                ("case_closed", {"outcome": "15"}),
                ("suspect_released_no_further_action", {"milestone": "suspect_released_no_further_action"}),
            ],
        ),
    }


_EVENT_ORDER = {
    # When each kind of update happened in a combination (minutes after _T0).
    "officer_changed": 0,
    "suspect_arrested": 1,
    "suspect_interviewed": 2,
    "suspect_bailed": 3,
    "suspect_released_no_further_action": 3,
    "case_closed": 4,
}


def variants(policy: Policy) -> Iterator[Variant]:
    """Every variant of every message, in the order of the page."""
    axes = [(officer, values) for values in VALUES for officer in OFFICERS]
    for template in templates():
        for reader in readers_for(template):
            for officer, values in axes:
                v = VALUE_SETS[values]
                journey = _journey(reader, officer, v, policy)
                link = v.link
                if template == "case_closed":
                    for code in (str(n) for n in range(1, 23)):
                        yield Variant(
                            f"case_closed/{code}/{reader}/{officer}/{values}",
                            "case_closed",
                            f"Outcome {code}, {OUTCOME_MEANINGS[code]}",
                            reader,
                            officer,
                            values,
                            journey,
                            (_duty(template, _T0, {"outcome": code}),),
                            link,
                        )
                    continue
                yield Variant(
                    f"{template}/{reader}/{officer}/{values}",
                    template,
                    _title(template),
                    reader,
                    officer,
                    values,
                    journey,
                    (_duty(template, _T0, _details(template, v)),),
                    link,
                )
                if template == "attendance_booked":
                    moved = {"appointment": v.appointment, "moved_from": v.moved_from}
                    yield Variant(
                        f"attendance_booked/moved/{reader}/{officer}/{values}",
                        template,
                        "The visit moved",
                        reader,
                        officer,
                        values,
                        journey,
                        (_duty(template, _T0, moved),),
                        link,
                    )
                if template == "officer_changed":
                    yield Variant(
                        f"officer_changed/first/{reader}/{officer}/{values}",
                        template,
                        "The first officer",
                        reader,
                        officer,
                        values,
                        journey,
                        (_duty(template, _T0, {"first_officer": "yes"}),),
                        link,
                    )
    for name in ("two", "several", "closure"):
        for reader in readers_for("case_closed"):
            for officer, values in axes:
                v = VALUE_SETS[values]
                title, parts = _combinations(v)[name]
                duties = tuple(
                    _duty(template, _T0 + timedelta(minutes=_EVENT_ORDER[template]), details)
                    for template, details in parts
                )
                yield Variant(
                    f"combined_update/{name}/{reader}/{officer}/{values}",
                    "combined_update",
                    title,
                    reader,
                    officer,
                    values,
                    _journey(reader, officer, v, policy),
                    duties,
                    v.link,
                )


def _title(template: str) -> str:
    return TITLES.get(template, template.replace("_", " ").capitalize())


def render(variant: Variant, policy: Policy) -> Rendered:
    duties = list(variant.duties)
    return Rendered(
        variant,
        render_sms(variant.journey, duties, policy, "en", link=variant.link),
        render_email(variant.journey, duties, policy, "en", link=variant.link),
    )


def render_all(policy: Policy) -> list[Rendered]:
    return [render(variant, policy) for variant in variants(policy)]


# --- the page ---------------------------------------------------------------------------------------


def _sections(rendered: list[Rendered]) -> list[dict[str, Any]]:
    sections: dict[str, list[Rendered]] = {}
    for item in rendered:
        sections.setdefault(item.variant.section, []).append(item)
    return [
        {
            "name": name,
            "title": _title(name),
            "sent_to": _SENT_TO.get(name, _VICTIMS_TODAY),
            "budget": SMS_SEGMENT_BUDGET.get(name),
            "items": items,
            "over": sum(item.sms.segments > item.sms.budget for item in items),
        }
        for name, items in sections.items()
    ]


_SENT_TO = {
    "attendance_booked": "callers who agreed to updates, when a visit is booked or moved",
    "combined_update": "anyone: updates that arrive within the coalescing window go as one message",
    "case_closed": "victims, or the guardian of a victim under 18, when Niche records an outcome",
}
_VICTIMS_TODAY = (
    "victims, or the guardian of a victim under 18 (shown for callers too, ready for when a"
    " caller's journey carries it)"
)


def write_catalogue(out: Path, policy: Policy, generated_at: datetime | None = None) -> Path:
    """Render every variant and write ``out/index.html``; returns its path."""
    from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

    rendered = render_all(policy)
    realistic = [item.sms.segments for item in rendered if item.variant.values == "realistic"]
    env = Environment(
        loader=FileSystemLoader(str(TEMPLATE_ROOT / "report")),
        undefined=StrictUndefined,
        autoescape=select_autoescape(enabled_extensions=("html.j2",), default=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    html = env.get_template("catalogue.html.j2").render(
        force=policy.force.name,
        policy=policy,
        sections=_sections(rendered),
        variants=len(rendered),
        realistic_mean=f"{mean(realistic):.2f}" if realistic else "-",
        realistic_single=sum(s == 1 for s in realistic),
        realistic_count=len(realistic),
        over=sum(item.sms.segments > item.sms.budget for item in rendered),
        budgets=[
            (name, budget or policy.timing.sms_max_segments) for name, budget in SMS_SEGMENT_BUDGET.items()
        ],
        values=VALUE_SETS,
        reference_length=LONGEST_REFERENCE_LENGTH,
        link_length=LONGEST_LINK_LENGTH,
        readers=READERS,
        generated_at=(generated_at or datetime.now().astimezone()).strftime("%Y-%m-%d %H:%M %Z"),
    )
    out.mkdir(parents=True, exist_ok=True)
    path = out / "index.html"
    path.write_text(html, encoding="utf-8")
    return path


def main(argv: list[str] | None = None) -> int:
    parser = Parser(
        prog="python -m shared.ops.catalogue",
        description="Write the message catalogue: every message, on one self-contained HTML page.",
    )
    parser.add_argument(
        "--out", type=Path, default=DEFAULT_OUT, help=f"output folder (default {DEFAULT_OUT})"
    )
    parser.add_argument("--policy", type=Path, help="journey policy file (default: the shipped policy)")
    args = parser.parse_args(argv)
    if args.out.exists() and not args.out.is_dir():
        return _error(f"--out is not a folder: {args.out}")
    if (above := file_in_the_way(args.out)) is not None:
        return _error(f"--out cannot be made under a file: {args.out} ({above} is a file)")
    try:
        policy = load_policy(args.policy)
    except PolicyError as exc:
        return _error(str(exc).splitlines()[0])
    try:
        path = write_catalogue(args.out, policy)
    except OSError as exc:
        return _error(f"cannot write to --out {args.out}: {exc.strerror}")
    print(path)
    return 0


def _error(message: str) -> int:
    print(f"python -m shared.ops.catalogue: error: {message}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
