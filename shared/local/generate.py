"""Deterministic synthetic feeds for local runs, tests and benchmarks.

`generate` writes `niche.jsonl` and `storm.jsonl` (in the shapes of the feed contracts, schemas/),
`officers.json` (the officer directory), `delivery-reports.json` (what the embedded provider reports
for the few addresses that fail, for `run --delivery-reports`) and `synthetic.json` (a marker saying the feeds are
synthetic, with the arguments and the behaviour model below; `python -m shared.local run` copies it
into its out folder, and the compliance report says so). Each crime is simulated as a story of dated
steps — recorded, allocated, milestones one at a time, finalised — and every step becomes a
whole-state snapshot. Output depends only on the arguments: one `random.Random(seed)` drives every
choice and no clock, global random state or string hash is read; a second stream derived from the
seed draws the victims' calls for an update, so that adding them left every other record of a
seed as it was.

Victims phoning for an update (the behaviour model the repeat-contact figure is measured on).
While a crime is open (from its recording until its outcome, or the end of the feeds), each of
its victims may phone the control room asking for news, at most once a day, between 08:00 and
20:00 London time. The chance of a call on a day is a hazard that rises with the days ``g`` since
the last news the victim would have received:

    h(g) = CALL_HAZARD_FLOOR + (CALL_HAZARD_CEILING - CALL_HAZARD_FLOOR) * (1 - exp(-g / CALL_HAZARD_DAYS))

that is 0.2% a day just after news, about 1.9% after a week, 2.6% after a fortnight, towards 3%
after a long silence. News is what the service and the officer would tell them: the report
itself (the day it was recorded), an officer's logged contact, and, for a victim the journey rules
let the service message (the same ``route`` the service uses, on the crime's flags and the
victim's preferences as recorded), every message the rules would send — the acknowledgement, the
officer in charge, each notifiable milestone, and a check-in after ``frequency_days`` without
news. A victim who opted out, or whose updates are officer tasks, hears only what an officer
phones with. A call is news too (the call handler passes it on), so the clock restarts after
one. Each call is a STORM incident opened under an update-request category of the policy
(mostly ``Update Request``) and closed minutes later naming the crime reference; its caller is the
victim (or their guardian). The numbers are illustrative, chosen to make the instrument show
something, not fitted to any force's calls.
"""

from __future__ import annotations

import heapq
import json
import math
import time
import unicodedata
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from datetime import time as dt_time
from pathlib import Path
from random import Random
from typing import IO, Any
from zoneinfo import ZoneInfo

from shared.contracts.feeds import Victim
from shared.domain.addresses import uk_mobile_e164, valid_email
from shared.domain.journey import Journey, route
from shared.domain.policy import Policy

Json = dict[str, Any]

MINUTE = 60
HOUR = 60 * MINUTE
DAY = 24 * HOUR
# Niche and STORM number by the force's calendar day and year, not UTC's (journey-rules.md §7).
_LONDON = ZoneInfo("Europe/London")

DEFAULT_START = datetime(2026, 10, 5, 8, 0, tzinfo=UTC)
_POLICY = Policy()
_NOTIFIABLE = frozenset(str(milestone) for milestone in _POLICY.notifiable_milestones)


def _route_action(victim: Json, flags: list[str], recorded: int) -> str:
    """How this victim's updates would go, by the journey rules themselves: send, task or suppress."""
    journey = Journey(
        crime_reference="HU/000000/00",
        person_id=str(victim["person_id"]),
        role="victim",
        recorded_at=datetime.fromtimestamp(recorded, UTC),
        flags=flags,
        victim=Victim.model_validate(victim),
    )
    return route(journey, _POLICY).action


# --- victims phoning for an update (the behaviour model of the module docstring) ----------------

CALL_HAZARD_FLOOR = 0.002  # the chance a day of a call just after news
CALL_HAZARD_CEILING = 0.03  # … after a long silence
CALL_HAZARD_DAYS = 10.0  # how many days of silence it takes to rise most of the way (1 - 1/e)
CALL_HOURS = (8, 20)  # London hours in which a victim phones
# Calls are numbered in the day's STORM sequence from here, so that the other incidents of a seed
# keep the numbers they had before calls were generated.
CALL_NUMBER_BASE = 5000
CALL_CALLER_BASE = 9_000_000  # and their callers' person ids (C-9000001 …)
SYNTHETIC_MARKER = "synthetic.json"


def call_hazard(days_since_news: float) -> float:
    """The chance that a victim phones for an update on a day, ``days_since_news`` after their last news."""
    rise = 1.0 - math.exp(-max(0.0, days_since_news) / CALL_HAZARD_DAYS)
    return CALL_HAZARD_FLOOR + (CALL_HAZARD_CEILING - CALL_HAZARD_FLOOR) * rise


_CALL_WINDOWS: dict[date, int] = {}


def _calling_hours_start(day: date) -> int:
    """08:00 London time on a day, as a timestamp (cached: every victim's days are the same days)."""
    start = _CALL_WINDOWS.get(day)
    if start is None:
        start = _CALL_WINDOWS[day] = int(datetime.combine(day, dt_time(CALL_HOURS[0]), _LONDON).timestamp())
    return start


def victim_calls(
    rng: Random, *, opened: int, until: int, news: list[int], checkin_every: int | None
) -> list[int]:
    """When one victim phones for an update, from ``opened`` until ``until`` (timestamps).

    ``news`` are the times they are told something (any order); ``checkin_every`` (seconds), when
    the service messages them, is the check-in that follows a silence that long. Each London day
    one moment within calling hours is drawn and a call made there with the chance
    ``call_hazard(days since the last news)``; a call restarts the clock.
    """
    calls: list[int] = []
    told = sorted(news)
    pointer = 0
    last_told = opened  # the last news from the service or an officer (the check-in clock's)
    last = opened  # the last news as the victim knows it: a call of their own counts
    window = (CALL_HOURS[1] - CALL_HOURS[0]) * HOUR
    day = _london_day(opened)
    while (start := _calling_hours_start(day)) < until:
        day += timedelta(days=1)
        at = start + rng.randrange(window)
        if at <= opened or at >= until:
            continue
        while pointer < len(told) and told[pointer] <= at:
            last_told = max(last_told, told[pointer])
            pointer += 1
        if checkin_every is not None and at - last_told >= checkin_every:
            last_told += (at - last_told) // checkin_every * checkin_every  # the check-ins sent meanwhile
        last = max(last, last_told)
        if rng.random() < call_hazard((at - last) / DAY):
            calls.append(at)
            last = at
    return calls


# Every snapshot of a crime (and of its incidents) falls within this many seconds of its recording
# (its victims' calls for an update excepted: they go on while it is open, until the feeds end).
MAX_SPAN = 60 * DAY
# A linked or unrelated incident opens at most this long before the crime generated with it,
# which is what lets the writer flush everything older than that without looking ahead.
MAX_LEAD = 6 * HOUR

NICHE_SCHEMA = "niche.occurrence/1"
STORM_SCHEMA = "storm.incident/1"

MALFORMED_RATE = 0.01
# Employee ids from this range are deliberately left out of the directory, so the
# "OIC unknown" fallback is exercised; everyone else is listed.
UNLISTED_EMPLOYEE_IDS = range(900000, 1000000)
LISTED_EMPLOYEE_IDS = range(100000, 900000)


@dataclass(frozen=True)
class GenerationStats:
    """What one `generate` call wrote."""

    crimes: int
    niche_records: int  # lines in niche.jsonl, malformed ones included
    storm_records: int  # lines in storm.jsonl, malformed ones included
    malformed: int  # records deliberately malformed (both feeds)
    officers: int  # entries in officers.json
    addresses: int = 0  # distinct usable email addresses and mobiles in the feeds
    failing_addresses: int = 0  # of them, those delivery-reports.json reports failed
    update_calls: int = 0  # STORM incidents of a victim phoning for an update (the behaviour model)


@dataclass(frozen=True)
class _OffenceKind:
    code: str
    description: str
    category: str
    weight: float
    no_suspect: float  # chance that no suspect is ever identified
    storm_category: str
    online: float  # chance the crime was reported online, with no STORM incident


# Columns: code, description, category, weight (per mille), chance of no suspect, STORM category,
# chance reported online.
# fmt: off
_OFFENCE_ROWS = (
    ("46/00", "Shoplifting", "theft", 110, 0.35, "Theft", 0.3),
    ("49/00", "Other theft", "theft", 90, 0.55, "Theft", 0.35),
    ("39/00", "Theft from the person", "theft", 20, 0.6, "Theft", 0.1),
    ("44/00", "Theft of a pedal cycle", "theft", 25, 0.75, "Theft", 0.4),
    ("45/00", "Theft from a motor vehicle", "vehicle_offences", 45, 0.7, "Theft", 0.3),
    ("48/00", "Theft or unauthorised taking of a vehicle", "vehicle_offences", 20, 0.6, "Theft", 0.1),
    ("58A/00", "Criminal damage to a dwelling", "criminal_damage", 50, 0.45, "Criminal Damage", 0.1),
    ("58B/00", "Criminal damage to other buildings", "criminal_damage", 25, 0.55, "Criminal Damage", 0.1),
    ("58C/00", "Criminal damage to a vehicle", "criminal_damage", 55, 0.6, "Criminal Damage", 0.2),
    ("58D/00", "Other criminal damage", "criminal_damage", 20, 0.5, "Criminal Damage", 0.1),
    ("8N/00", "Assault occasioning actual bodily harm", "violence_with_injury", 110, 0.15, "Violence", 0.05),
    ("105A/00", "Common assault", "violence_without_injury", 120, 0.2, "Violence", 0.05),
    ("5D/00", "Wounding with intent to cause GBH", "violence_with_injury", 8, 0.2, "Violence", 0),
    ("3/01", "Threats to kill", "violence_without_injury", 6, 0.1, "Violence", 0.05),
    ("8L/00", "Harassment", "stalking_harassment", 30, 0.1, "Stalking/Harassment", 0.2),
    ("8Q/00", "Stalking", "stalking_harassment", 8, 0.05, "Stalking/Harassment", 0.1),
    ("8M/00", "Malicious communications", "stalking_harassment", 25, 0.3, "Stalking/Harassment", 0.3),
    ("9/01", "Public fear, alarm or distress", "public_order", 40, 0.3, "Public Order", 0.1),
    ("28E/00", "Burglary - residential", "burglary", 40, 0.55, "Burglary", 0.05),
    ("30C/00", "Burglary - business and community", "burglary", 15, 0.65, "Burglary", 0.2),
    ("34B/00", "Robbery of personal property", "robbery", 12, 0.3, "Robbery", 0.0),
    ("34A/00", "Robbery of business property", "robbery", 3, 0.35, "Robbery", 0.0),
    ("53A/00", "Fraud by false representation", "fraud", 30, 0.4, "Fraud", 0.6),
    ("17A/00", "Sexual assault on a female aged 13+", "sexual_offences", 9, 0.15, "Sexual Offence", 0.1),
    ("19C/00", "Rape of a female aged 16 or over", "sexual_offences", 5, 0.1, "Sexual Offence", 0.1),
    ("22B/00", "Exposure and voyeurism", "sexual_offences", 3, 0.4, "Sexual Offence", 0.1),
    ("2/00", "Attempted murder", "violence_with_injury", 0.5, 0.05, "Violence", 0.0),
    ("36/00", "Kidnapping", "violence_without_injury", 0.5, 0.05, "Violence", 0.0),
    ("56A/00", "Arson endangering life", "arson", 1, 0.4, "Criminal Damage", 0.0),
    ("106/00", "Modern slavery", "other_crimes_against_society", 0.3, 0.1, "Concern for Welfare", 0.0),
)
# fmt: on
_OFFENCES = tuple(_OffenceKind(*row) for row in _OFFENCE_ROWS)
# The chance of each flag by offence code; a few percent of crimes end up domestic abuse.
_OFFENCE_FLAGS: dict[str, tuple[tuple[str, float], ...]] = {
    "58A/00": (("domestic_abuse", 0.05), ("hate_crime", 0.02)),
    "58B/00": (("hate_crime", 0.03),),
    "8N/00": (("domestic_abuse", 0.12), ("hate_crime", 0.03)),
    "105A/00": (("domestic_abuse", 0.1), ("hate_crime", 0.05)),
    "5D/00": (("domestic_abuse", 0.1),),
    "3/01": (("domestic_abuse", 0.2),),
    "8L/00": (
        ("stalking_harassment", 1.0),
        ("domestic_abuse", 0.2),
        ("hate_crime", 0.05),
        ("persistently_targeted", 0.05),
    ),
    "8Q/00": (("stalking_harassment", 1.0), ("domestic_abuse", 0.4)),
    "8M/00": (("stalking_harassment", 1.0), ("domestic_abuse", 0.1)),
    "9/01": (("hate_crime", 0.25),),
    "17A/00": (("sexual_offence", 1.0), ("domestic_abuse", 0.2)),
    "19C/00": (("sexual_offence", 1.0), ("domestic_abuse", 0.3)),
    "22B/00": (("sexual_offence", 1.0),),
    "2/00": (("attempted_murder", 1.0), ("domestic_abuse", 0.2)),
    "36/00": (("kidnap", 1.0),),
    "56A/00": (("arson_endanger_life", 1.0),),
    "106/00": (("modern_slavery", 1.0),),
}
_OFFENCE_CUM_WEIGHTS = tuple(
    sum(kind.weight for kind in _OFFENCES[: index + 1]) for index in range(len(_OFFENCES))
)

# Flags that can turn up on any crime, rarely.
_RARE_FLAGS: tuple[tuple[str, float], ...] = (
    ("persistently_targeted", 0.005),
    ("bereaved", 0.001),
    ("honour_based_abuse", 0.0007),
    ("terrorism", 0.0002),
)

# Forenames with the titles that usually go with them.
_FEMALE = (
    "Olivia",
    "Amelia",
    "Isla",
    "Ava",
    "Mia",
    "Grace",
    "Sophie",
    "Emily",
    "Chloe",
    "Lucy",
    "Hannah",
    "Ellie",
    "Jessica",
    "Zara",
    "Aisha",
    "Priya",
    "Agnieszka",
    "Ioana",
    "Siân",
    "Ffion",
    "Megan",
    "Sarah",
    "Rachel",
    "Claire",
    "Karen",
    "Susan",
    "Margaret",
    "Zoë",
)
_MALE = (
    "Oliver",
    "George",
    "Harry",
    "Jack",
    "Noah",
    "Leo",
    "Thomas",
    "James",
    "William",
    "Daniel",
    "Mohammed",
    "Ahmed",
    "Tomasz",
    "Dafydd",
    "Rhys",
    "Owen",
    "Callum",
    "Connor",
    "Liam",
    "Ryan",
    "Kieran",
    "Nathan",
    "Joe",
    "Ben",
    "David",
    "Paul",
    "Mark",
    "Gary",
)
_NEUTRAL = ("Alex", "Sam", "Jamie", "Chris", "Jordan", "Taylor", "Charlie", "Robin")
_FORENAMES = _FEMALE + _MALE + _NEUTRAL
_TITLES = {
    "female": (("Ms", "Mrs", "Miss", "Dr"), (45, 30, 20, 5)),
    "male": (("Mr", "Dr"), (95, 5)),
    "neutral": (("Mx", "Mr", "Ms", "Dr"), (30, 30, 30, 10)),
}
_SURNAMES = (
    "Smith",
    "Jones",
    "Williams",
    "Taylor",
    "Brown",
    "Davies",
    "Evans",
    "Wilson",
    "Thomas",
    "Johnson",
    "Roberts",
    "Robinson",
    "Thompson",
    "Wright",
    "Walker",
    "White",
    "Edwards",
    "Hughes",
    "Green",
    "Hall",
    "Lewis",
    "Harris",
    "Clarke",
    "Patel",
    "Jackson",
    "Wood",
    "Turner",
    "Martin",
    "Cooper",
    "Hill",
    "Ward",
    "Morris",
    "Moore",
    "Clark",
    "Lee",
    "King",
    "Baker",
    "Harrison",
    "Morgan",
    "Allen",
    "O'Brien",
    "McDonald",
    "Khan",
    "Hussain",
    "Ali",
    "Kowalski",
    "Nowak",
    "Popescu",
    "Ap Rhys",
    "Smith-Jones",
    "Atkinson",
    "Dixon",
    "Holmes",
    "Barker",
    "Stephenson",
    "Fenwick",
)

_COURTS = (
    "Hull Magistrates' Court",
    "Hull Magistrates' Court",
    "Hull Magistrates' Court",
    "Beverley Magistrates' Court",
    "Grimsby Magistrates' Court",
    "Scunthorpe Magistrates' Court",
    "Bridlington Magistrates' Court",
)
# Out-of-court disposals and their Home Office outcome codes (journey-rules.md §6).
_DISPOSALS: tuple[tuple[str, str, float], ...] = (
    ("community resolution", "8", 55),
    ("adult caution", "3", 20),
    ("youth caution", "2", 5),
    ("penalty notice for disorder", "6", 5),
    ("diversionary activity", "22", 12),
    ("cannabis warning", "7", 3),
)
_NO_CRIME_CATEGORIES = (
    ("Concern for Welfare", "No crime - welfare check completed"),
    ("Suspicious Circumstances", "No crime - advice given"),
    ("Anti-Social Behaviour", "ASB - no crime"),
    ("Lost or Found Property", "Property recorded"),
    ("Road Traffic Collision", "Damage only - details exchanged"),
    ("Noise Nuisance", "Referred to partner agency"),
)
_RANKS = (
    ("Police Constable", "PC", 55),
    ("Detective Constable", "DC", 30),
    ("Police Sergeant", "PS", 10),
    ("Detective Sergeant", "DS", 5),
)
_HOUR_WEIGHTS = (3, 2, 2, 1, 1, 1, 2, 3, 5, 6, 7, 7, 7, 7, 7, 7, 7, 7, 7, 6, 6, 5, 4, 4)
_MAX_HOUR_WEIGHT = max(_HOUR_WEIGHTS)

# Each way a record is deliberately broken; the feeds' validation must reject all of them.
_NICHE_FAULTS = (
    "victims_not_a_list",
    "status_not_a_string",
    "missing_crime_reference",
    "impossible_recorded_date",
    "impossible_birth_date",
    "unknown_status",
    "outcome_code_out_of_range",
    "naive_timestamp",
    "truncated_json",
)
_STORM_FAULTS = (
    "status_not_a_string",
    "missing_incident_number",
    "impossible_opened_date",
    "attendance_not_an_object",
    "consent_not_a_boolean",
    "unknown_key",
    "empty_status",
    "truncated_json",
)


_dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, check_circular=False).encode


def _london_day(ts: int) -> date:
    return datetime.fromtimestamp(ts, _LONDON).date()


def _visiting_hours(ts: int) -> int:
    """An appointment on the quarter hour between 08:00 and 20:45 London time (the next morning if later)."""
    local = datetime.fromtimestamp(ts, _LONDON).replace(second=0, microsecond=0)
    local = local.replace(minute=local.minute // 15 * 15)
    if local.hour >= 21:
        local = datetime.combine(local.date() + timedelta(days=1), local.time(), _LONDON)
    if local.hour >= 21 or local.hour < 8:
        local = local.replace(hour=8 + local.hour % 4)
    return int(local.timestamp())


def _iso(ts: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


def _ascii(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in decomposed if ch.isascii() and ch.isalnum()).lower()


@dataclass(frozen=True)
class _Officer:
    employee_id: str
    collar_number: str | None
    display_name: str
    rank: str
    email: str
    phone: str
    active: bool

    def as_json(self) -> Json:
        return {
            "employee_id": self.employee_id,
            "collar_number": self.collar_number,
            "display_name": self.display_name,
            "rank": self.rank,
            "email": self.email,
            "phone": self.phone,
            "active": self.active,
        }


@dataclass(order=True)
class _Step:
    """One dated change in a crime's story; each becomes one Niche snapshot."""

    at: int
    order: int
    kind: str = field(compare=False)
    payload: Any = field(compare=False, default=None)


class _Story:
    """The dated steps of one crime, collected before they are replayed in time order."""

    def __init__(self) -> None:
        self.steps: list[_Step] = []

    def add(self, at: int, kind: str, payload: Any = None) -> None:
        self.steps.append(_Step(at, len(self.steps), kind, payload))

    def milestone(self, at: int, kind: str, details: Json | None = None) -> None:
        self.add(at, "milestone", (kind, details))

    def first(self, kind: str) -> int | None:
        return next((step.at for step in self.steps if step.kind == kind), None)


@dataclass
class _Case:
    """The mutable current state of one occurrence while its story is replayed."""

    number: int
    year: int
    recorded: int
    offence: Json
    flags: list[str]
    victims: list[Json]
    incidents: list[str] = field(default_factory=list)
    status: str = "recorded"
    outcome: Json | None = None
    oic: Json | None = None
    milestones: list[Json] = field(default_factory=list)
    _victims_json: str | None = None
    _fixed_json: tuple[str, str] | None = None
    _milestone_json: dict[str, str] = field(default_factory=dict)

    @property
    def crime_reference(self) -> str:
        return f"HU/{self.number:06d}/{self.year % 100:02d}"

    @property
    def occurrence_id(self) -> str:
        return f"HU-{self.year % 100:02d}-{self.number:06d}"

    def snapshot(self, modified: int) -> Json:
        return {
            "schema": NICHE_SCHEMA,
            "occurrence_id": self.occurrence_id,
            "crime_reference": self.crime_reference,
            "modified_at": _iso(modified),
            "recorded_at": _iso(self.recorded),
            "incident_numbers": list(self.incidents),
            "offence": self.offence,
            "flags": list(self.flags),
            "status": self.status,
            "outcome": self.outcome,
            "oic": self.oic,
            "milestones": list(self.milestones),
            "victims": list(self.victims),
        }

    def snapshot_line(self, modified: int) -> str:
        """`snapshot` as one JSON line, reusing the encoded victims and milestones between snapshots."""
        # Victims make up most of a line and rarely change, so encoding them once per change
        # rather than once per snapshot is most of the generator's speed.
        if self._victims_json is None:
            self._victims_json = _dumps(self.victims)
        milestones = []
        for milestone in self.milestones:
            encoded = self._milestone_json.get(milestone["id"])
            if encoded is None:
                encoded = self._milestone_json[milestone["id"]] = _dumps(milestone)
            milestones.append(encoded)
        if self._fixed_json is None:
            self._fixed_json = (
                f'"recorded_at":"{_iso(self.recorded)}"',
                f'"offence":{_dumps(self.offence)}',
            )
        recorded_at, offence = self._fixed_json
        return (
            f'{{"schema":"{NICHE_SCHEMA}","occurrence_id":"{self.occurrence_id}",'
            f'"crime_reference":"{self.crime_reference}","modified_at":"{_iso(modified)}",'
            f'{recorded_at},"incident_numbers":{_dumps(self.incidents)},'
            f'{offence},"flags":{_dumps(self.flags)},"status":"{self.status}",'
            f'"outcome":{_dumps(self.outcome)},"oic":{_dumps(self.oic)},'
            f'"milestones":[{",".join(milestones)}],"victims":{self._victims_json}}}'
        )

    def replace_victim(self, index: int, victim: Json) -> None:
        self.victims[index] = victim
        self._victims_json = None


class _Feed:
    """One output file, written in `modified_at` order through a bounded heap."""

    def __init__(self, handle: IO[str]) -> None:
        self._handle = handle
        self._heap: list[tuple[int, int, str]] = []
        self._seq = 0
        self.lines = 0

    def push(self, modified: int, line: str) -> None:
        self._seq += 1
        heapq.heappush(self._heap, (modified, self._seq, line))

    def flush_before(self, ts: int) -> None:
        heap = self._heap
        out: list[str] = []
        while heap and heap[0][0] < ts:
            out.append(heapq.heappop(heap)[2])
        if out:
            self._handle.write("\n".join(out) + "\n")
            self.lines += len(out)

    def flush_all(self) -> None:
        self.flush_before(2**62)


class _Generator:
    """Draws people, officers, crimes and incidents from one random stream and pushes their records."""

    def __init__(
        self, rng: Random, crimes: int, niche: _Feed, storm: _Feed, *, calls: Random, horizon: int
    ) -> None:
        self.rng = rng
        self.calls = calls  # the victims' calls for an update: a stream of their own
        self.horizon = horizon  # when the feeds end: an open crime's victims may phone until then
        self.update_calls = 0
        self._call_seq: dict[str, int] = {}
        self._caller_calls = 0
        self.niche = niche
        self.storm = storm
        self.malformed = 0
        self._person_seq = 1000
        self._caller_seq = 500
        self._milestone_seq = 100
        self._crime_seq: dict[int, int] = {}
        self._incident_seq: dict[str, int] = {}
        self.active, self.leavers, self.unlisted = self._officers(crimes // 25 + 20)
        self._oics_drawn = 0

    # --- officers -------------------------------------------------------------------------------

    def _officers(self, pool: int) -> tuple[list[_Officer], list[_Officer], list[str]]:
        rng = self.rng
        leavers = max(2, pool // 30)
        ids = rng.sample(LISTED_EMPLOYEE_IDS, pool + leavers)
        collars = rng.sample(range(1000, 9999), pool + leavers)
        officers: list[_Officer] = []
        for index, (employee, collar) in enumerate(zip(ids, collars, strict=True)):
            rank, prefix, _ = rng.choices(_RANKS, weights=[weight for *_, weight in _RANKS])[0]
            forename, surname = rng.choice(_FORENAMES), rng.choice(_SURNAMES)
            if rng.random() < 0.5:
                phone = f"101 ext {rng.randrange(1000, 10000)}"
            else:
                phone = f"+44 1482 000 {rng.randrange(1000):03d}"
            officers.append(
                _Officer(
                    employee_id=str(employee),
                    collar_number=f"{prefix} {collar}",
                    display_name=f"{forename} {surname}",
                    rank=rank,
                    email=f"{_ascii(forename)}.{_ascii(surname)}{collar}@example.police.uk",
                    phone=phone,
                    active=index < pool,
                )
            )
        unlisted = [str(employee) for employee in rng.sample(UNLISTED_EMPLOYEE_IDS, max(1, pool // 100))]
        return officers[:pool], officers[pool:], unlisted

    def directory(self) -> list[Json]:
        everyone = sorted(self.active + self.leavers, key=lambda officer: officer.employee_id)
        return [officer.as_json() for officer in everyone]

    def _oic(self, leaver: bool = False) -> Json:
        rng = self.rng
        self._oics_drawn += 1
        if self._oics_drawn % 100 == 37:
            # One OIC in a hundred is missing from the directory, so every sample exercises the fallback.
            return {"employee_id": rng.choice(self.unlisted), "collar_number": None}
        officer = rng.choice(self.leavers if leaver else self.active)
        # Niche does not always carry the collar number; the directory fills it in.
        collar = officer.collar_number if rng.random() < 0.95 else None
        return {"employee_id": officer.employee_id, "collar_number": collar}

    # --- people ---------------------------------------------------------------------------------

    def _forename(self) -> tuple[str, str]:
        """A forename and a title that fits it."""
        rng = self.rng
        group = rng.choices(("female", "male", "neutral"), weights=(48, 46, 6))[0]
        names = _FEMALE if group == "female" else _MALE if group == "male" else _NEUTRAL
        titles, weights = _TITLES[group]
        return rng.choice(names), rng.choices(titles, weights=weights)[0]

    def _mobile(self) -> str:
        rng = self.rng
        # Ofcom's drama range: never a real subscriber.
        digits = f"{rng.randrange(1000):03d}"
        style = rng.random()
        if style < 0.4:
            return f"07700 900{digits}"
        if style < 0.65:
            return f"+447700900{digits}"
        if style < 0.9:
            return f"07700900{digits}"
        return f"+44 7700 900{digits}"

    def _email(self, forename: str, surname: str, number: int) -> str:
        domain = "example.org" if self.rng.random() < 0.7 else "example.com"
        return f"{_ascii(forename)}.{_ascii(surname)}{number}@{domain}"

    def _contact(self, forename: str, surname: str, number: int) -> tuple[str | None, str | None]:
        rng = self.rng
        email = self._email(forename, surname, number) if rng.random() < 0.85 else None
        mobile = self._mobile() if rng.random() < 0.8 else None
        if rng.random() < 0.02:
            email = rng.choice(("not-an-email", f"{_ascii(forename)}@", f"{forename} {surname}@example.org"))
        if rng.random() < 0.02:
            mobile = rng.choice(("12345", "07700 9001", "n/a"))
        return email, mobile

    def _victim(self, recorded: date, domestic: bool) -> Json:
        rng = self.rng
        self._person_seq += 1
        number = self._person_seq
        forename, usual_title = self._forename()
        surname = rng.choice(_SURNAMES)
        title: str | None = None
        minor = rng.random() < 0.05
        if minor:
            # 10 to 17 years and ~10 months: under 18 on the day the crime was recorded.
            age_days = rng.randint(10 * 365, 17 * 365 + 300)
        else:
            age_days = rng.randint(18 * 365 + 10, 18 * 365 + 30) + int(rng.triangular(0, 70, 12) * 365)
            title = usual_title if rng.random() < 0.9 else None
        dob = recorded - timedelta(days=age_days)
        email, mobile = self._contact(forename, surname, number)

        roll = rng.random()
        channel = "email" if roll < 0.45 else "sms" if roll < 0.8 else "both" if roll < 0.95 else "none"
        roll = rng.random()
        frequency = 28 if roll < 0.8 else 14 if roll < 0.95 else 7
        roll = rng.random()
        language = "en" if roll < 0.92 else "cy" if roll < 0.995 else rng.choice(("pl", "ro", "ur", "ar"))

        unsafe = rng.random() < (0.3 if domestic else 0.05)
        safe = {"sms": True, "email": True}
        if unsafe:
            if domestic and rng.random() < 0.15:
                safe = {"sms": False, "email": False}
            else:
                safe[rng.choice(("sms", "email"))] = False

        rights = rng.choices(
            ([], ["vulnerable"], ["intimidated"], ["vulnerable", "intimidated"]), weights=(90, 6, 3, 1)
        )[0]

        guardian: Json | None = None
        if minor and rng.random() < 0.85:
            g_forename, g_title = self._forename()
            g_email, g_mobile = self._contact(g_forename, surname, number)
            guardian = {
                "name": {"title": g_title, "forename": g_forename, "surname": surname},
                "email": g_email,
                "mobile": g_mobile,
            }
        return {
            "person_id": f"P-{number}",
            "name": {"title": title, "forename": forename, "surname": surname},
            "date_of_birth": dob.isoformat(),
            "contact": {"email": email, "mobile": mobile},
            "preferences": {
                "channel": channel,
                "frequency_days": frequency,
                "language": language,
                "opted_out": rng.random() < 0.03,
            },
            "safe_contact": safe,
            "enhanced_rights": rights,
            "guardian": guardian,
        }

    def _changed_preferences(self, victim: Json) -> Json:
        rng = self.rng
        changed = dict(victim)
        preferences = dict(victim["preferences"])
        roll = rng.random()
        if roll < 0.4:
            preferences["opted_out"] = True
        elif roll < 0.7:
            preferences["channel"] = rng.choice(
                [c for c in ("email", "sms", "both") if c != preferences["channel"]]
            )
        elif roll < 0.9:
            changed["contact"] = {"email": victim["contact"]["email"], "mobile": self._mobile()}
        else:
            changed["safe_contact"] = {"sms": False, "email": victim["safe_contact"]["email"]}
        changed["preferences"] = preferences
        return changed

    def _caller(self, victim: Json | None) -> Json:
        rng = self.rng
        self._caller_seq += 1
        if victim is not None and victim["guardian"] is not None:
            name = victim["guardian"]["name"]
            email, mobile = victim["guardian"]["email"], victim["guardian"]["mobile"]
        elif victim is not None:
            name = victim["name"]
            email, mobile = victim["contact"]["email"], victim["contact"]["mobile"]
        else:
            forename, surname = rng.choice(_FORENAMES), rng.choice(_SURNAMES)
            name = {"forename": forename, "surname": surname}
            email, mobile = self._contact(forename, surname, self._caller_seq)
        return {
            "person_id": f"C-{self._caller_seq}",
            "name": {"forename": name["forename"], "surname": name["surname"]},
            # Callers give a phone number far more often than an email address.
            "contact": {"email": email if rng.random() < 0.4 else None, "mobile": mobile},
            "consent_to_updates": rng.random() < 0.85,
        }

    # --- STORM ----------------------------------------------------------------------------------

    def _incident_number(self, opened: int) -> str:
        day = f"{_london_day(opened):%Y%m%d}"
        self._incident_seq[day] = self._incident_seq.get(day, 0) + 1
        return f"HU-{day}-{self._incident_seq[day]:04d}"

    def _incident(
        self, number: str, opened: int, category: str, caller: Json | None, crime: _Case | None
    ) -> None:
        rng = self.rng
        state: Json = {
            "schema": STORM_SCHEMA,
            "incident_number": number,
            "modified_at": "",
            "opened_at": _iso(opened),
            "status": "open",
            "opening_category": category,
            "closing_category": None,
            "crime_reference": None,
            "attendance": None,
            "caller": caller,
        }
        last = opened - 1

        def emit(at: int) -> None:
            nonlocal last
            last = max(at, last + 1)
            self._emit_storm(state | {"modified_at": _iso(last)}, last)

        emit(opened + rng.randint(0, 3 * MINUTE))
        state["status"] = "resourced"
        emit(opened + rng.randint(5 * MINUTE, HOUR))
        roll = rng.random()
        if roll < 0.4:
            booked = last + rng.randint(5 * MINUTE, HOUR)
            # Appointments are on the quarter hour.
            scheduled = _visiting_hours(booked + rng.randint(2 * HOUR, 48 * HOUR))
            state["attendance"] = {"scheduled_for": _iso(scheduled), "attended_at": None}
            emit(booked)
            if rng.random() < 0.2 and scheduled - last > 2 * HOUR:
                moved_at = rng.randint(last + 30 * MINUTE, scheduled - HOUR)
                scheduled = _visiting_hours(scheduled + rng.randint(2 * HOUR, 24 * HOUR))
                state["attendance"] = {"scheduled_for": _iso(scheduled), "attended_at": None}
                emit(moved_at)
            attended = max(scheduled + rng.randint(-20 * MINUTE, HOUR), last + MINUTE)
            state["attendance"] = {"scheduled_for": _iso(scheduled), "attended_at": _iso(attended)}
            emit(attended + rng.randint(5 * MINUTE, 45 * MINUTE))
        elif roll < 0.75:
            attended = last + rng.randint(10 * MINUTE, 50 * MINUTE)
            state["attendance"] = {"scheduled_for": None, "attended_at": _iso(attended)}
            emit(attended + rng.randint(5 * MINUTE, 30 * MINUTE))

        state["status"] = "closed"
        close_at = max(last, crime.recorded if crime else opened) + rng.randint(30 * MINUTE, 12 * HOUR)
        if crime is None:
            state["closing_category"] = rng.choice(_NO_CRIME_CATEGORIES)[1]
            emit(close_at)
            return
        state["closing_category"] = "Crime recorded"
        link = rng.random()
        if link < 0.4:
            state["crime_reference"] = crime.crime_reference
            emit(close_at)
        else:
            emit(close_at)
            if link < 0.5:
                state["crime_reference"] = crime.crime_reference
                emit(close_at + rng.randint(HOUR, 3 * DAY))

    def _emit_storm(self, record: Json, modified: int, rng: Random | None = None) -> None:
        rng = rng or self.rng
        if rng.random() < MALFORMED_RATE:
            self.storm.push(modified, self._broken_storm(record, rng))
            self.malformed += 1
        self.storm.push(modified, _dumps(record))

    def _broken_storm(self, record: Json, rng: Random) -> str:
        broken = dict(record)
        fault = rng.choice(_STORM_FAULTS)
        if fault == "status_not_a_string":
            broken["status"] = 42
        elif fault == "missing_incident_number":
            del broken["incident_number"]
        elif fault == "impossible_opened_date":
            broken["opened_at"] = record["opened_at"][:4] + "-02-30" + record["opened_at"][10:]
        elif fault == "attendance_not_an_object":
            broken["attendance"] = "tomorrow afternoon"
        elif fault == "consent_not_a_boolean":
            broken["caller"] = {"person_id": f"C-{self._caller_seq}", "consent_to_updates": "maybe"}
        elif fault == "unknown_key":
            broken["priority"] = rng.choice(("P1", "P2", "P3"))
        elif fault == "empty_status":
            broken["status"] = ""
        line = _dumps(broken)
        if fault == "truncated_json":
            line = line[: rng.randint(10, len(line) - 2)]
        return line

    # --- Niche ----------------------------------------------------------------------------------

    def _crime_number(self, year: int) -> int:
        self._crime_seq[year] = self._crime_seq.get(year, 0) + 1
        return self._crime_seq[year]

    def _milestone(self, kind: str, at: int, details: Json | None = None) -> Json:
        self._milestone_seq += 1
        return {"id": f"M-{self._milestone_seq}", "type": kind, "at": _iso(at), "details": details or {}}

    def crime(self, recorded: int) -> None:
        """Simulate one crime from recording to finalisation and push every snapshot."""
        rng = self.rng
        kind = rng.choices(_OFFENCES, cum_weights=_OFFENCE_CUM_WEIGHTS)[0]
        flags = list(
            dict.fromkeys(
                flag
                for flag, chance in _OFFENCE_FLAGS.get(kind.code, ()) + _RARE_FLAGS
                if rng.random() < chance
            )
        )
        domestic = "domestic_abuse" in flags
        sensitive = domestic or "sexual_offence" in flags
        recorded_day = _london_day(recorded)  # a victim's age counts on the London day (journey-rules.md §7)
        year = recorded_day.year
        victims = [self._victim(recorded_day, domestic) for _ in range(2 if rng.random() < 0.1 else 1)]
        case = _Case(
            number=self._crime_number(year),
            year=year,
            recorded=recorded,
            offence={"code": kind.code, "description": kind.description, "category": kind.category},
            flags=[],
            victims=victims,
        )
        story = _Story()

        # Flags are usually known at recording; some (often domestic abuse) only emerge later.
        for flag in flags:
            if rng.random() < 0.15:
                story.add(recorded + rng.randint(2 * HOUR, 5 * DAY), "flag", flag)
            else:
                case.flags.append(flag)

        incidents: list[tuple[str, int]] = []
        if rng.random() >= kind.online:
            opened = recorded - rng.randint(5 * MINUTE, MAX_LEAD)
            incidents.append((self._incident_number(opened), opened))
            if rng.random() < 0.8:
                case.incidents.append(incidents[0][0])
            else:
                story.add(recorded + rng.randint(HOUR, 2 * DAY), "incident", incidents[0][0])
        if rng.random() < 0.04:
            # A repeat call about the same crime, linked when the OIC notices it.
            opened = recorded + rng.randint(DAY, 20 * DAY)
            incidents.append((self._incident_number(opened), opened))
            story.add(opened + rng.randint(HOUR, 3 * DAY), "incident", incidents[-1][0])

        suspect = rng.random() >= (0.03 if sensitive else kind.no_suspect)
        final = self._investigation(story, kind, recorded, sensitive=sensitive, suspect=suspect)
        end = final if final is not None else recorded + 50 * DAY
        # A crime the policy excludes from automated messages, or a victim no message can reach: the
        # officer tells the victim instead (the service's own routing decides which).
        as_recorded = list(victims)  # a later change of preferences replaces an entry of ``victims``
        routes = [_route_action(victim, flags, recorded) for victim in as_recorded]
        manual = "task" in routes
        self._asides(story, recorded, end, len(victims), manual=manual)

        self._replay(case, sorted(story.steps))
        for index, (number, opened) in enumerate(incidents):
            victim = case.victims[0] if index == 0 and rng.random() < 0.8 else None
            caller = self._caller(victim) if rng.random() < 0.97 else None
            category = "Domestic Incident" if domestic and index == 0 else kind.storm_category
            self._incident(number, opened, category, caller, case)
        self._update_calls(case, story, as_recorded, routes)

    def _update_calls(self, case: _Case, story: _Story, victims: list[Json], routes: list[str]) -> None:
        """Each victim's calls for an update while the crime is open (the module docstring's model)."""
        recorded = case.recorded
        # The feed tells the service only what it emitted: steps past the span never reached it.
        told = [step for step in story.steps if step.at <= recorded + MAX_SPAN]
        finalised = case.outcome is not None
        until = next(step.at for step in told if step.kind == "outcome") if finalised else self.horizon
        by_officer = [
            step.at for step in told if step.kind == "milestone" and step.payload[0] == "victim_contacted"
        ]
        by_message = [
            step.at
            for step in told
            if step.kind in ("allocate", "oic")
            or (step.kind == "milestone" and step.payload[0] in _NOTIFIABLE)
        ]
        for victim, how in zip(victims, routes, strict=True):
            messaged = how == "send"
            news = by_officer + by_message if messaged else by_officer
            every = victim["preferences"]["frequency_days"] * DAY if messaged else None
            for at in victim_calls(self.calls, opened=recorded, until=until, news=news, checkin_every=every):
                self._update_call(at, case, victim)

    def _update_call(self, opened: int, crime: _Case, victim: Json) -> None:
        """A victim (or their guardian) phoning for news: opened, then closed naming the crime."""
        rng = self.calls
        day = f"{_london_day(opened):%Y%m%d}"
        self._call_seq[day] = self._call_seq.get(day, 0) + 1
        self._caller_calls += 1
        person = victim["guardian"] or victim
        contact = victim["contact"] if victim["guardian"] is None else victim["guardian"]
        caller = {
            "person_id": f"C-{CALL_CALLER_BASE + self._caller_calls}",
            "name": {"forename": person["name"]["forename"], "surname": person["name"]["surname"]},
            "contact": {
                "email": contact["email"] if rng.random() < 0.4 else None,
                "mobile": contact["mobile"],
            },
            "consent_to_updates": rng.random() < 0.85,
        }
        category = "Update Request" if rng.random() < 0.9 else "Caller Requesting Update"
        state: Json = {
            "schema": STORM_SCHEMA,
            "incident_number": f"HU-{day}-{CALL_NUMBER_BASE + self._call_seq[day]:04d}",
            "modified_at": "",
            "opened_at": _iso(opened),
            "status": "open",
            "opening_category": category,
            "closing_category": None,
            "crime_reference": None,
            "attendance": None,
            "caller": caller,
        }
        first = opened + rng.randint(0, 2 * MINUTE)
        self._emit_storm(state | {"modified_at": _iso(first)}, first, rng)
        # The call handler takes the crime reference and passes the call to the officer in charge.
        state |= {"status": "closed", "crime_reference": crime.crime_reference}
        closed = first + rng.randint(3 * MINUTE, 20 * MINUTE)
        self._emit_storm(state | {"modified_at": _iso(closed)}, closed, rng)
        self.update_calls += 1

    def no_crime_incident(self, near: int) -> None:
        """An incident that never becomes a crime (welfare checks, advice, lost property)."""
        rng = self.rng
        opened = near - rng.randint(0, MAX_LEAD)
        caller = self._caller(None)
        category = rng.choice(_NO_CRIME_CATEGORIES)[0]
        self._incident(self._incident_number(opened), opened, category, caller, None)

    def _investigation(
        self, story: _Story, kind: _OffenceKind, recorded: int, *, sensitive: bool, suspect: bool
    ) -> int | None:
        """Lay out the investigation; return when it is finalised, or None if still open."""
        rng = self.rng
        if not suspect and rng.random() < 0.25:
            # Screened out at recording: no lines of enquiry, never allocated to an officer.
            final = recorded + rng.randint(DAY, 7 * DAY)
            story.add(final, "outcome", "19" if kind.category == "fraud" and rng.random() < 0.5 else "18")
            return final
        allocated = recorded + (
            rng.randint(30 * MINUTE, 8 * HOUR) if sensitive else rng.randint(HOUR, 2 * DAY)
        )
        story.add(allocated, "allocate", self._oic(leaver=rng.random() < 0.03))
        investigating = allocated + rng.randint(HOUR, 2 * DAY)
        story.add(investigating, "status", "under_investigation")
        if not suspect:
            final = investigating + rng.randint(5 * DAY, 45 * DAY)
            code = "18" if rng.random() < 0.85 else "14"
            if kind.category == "fraud" and rng.random() < 0.3:
                code = "19"
            story.add(final, "outcome", code)
            return final

        if rng.random() < (0.2 if sensitive else 0.1):
            # A suspect is named but the victim withdraws support before an arrest is made.
            final = investigating + rng.randint(2 * DAY, 30 * DAY)
            story.add(final, "outcome", "16")
            return final

        arrested = rng.random() < (0.85 if sensitive else 0.6)
        if arrested:
            delay = rng.randint(10 * MINUTE, 12 * HOUR) if sensitive else rng.randint(HOUR, 14 * DAY)
            arrest = investigating + delay
            story.milestone(arrest, "suspect_arrested")
            interview = arrest + rng.randint(2 * HOUR, 20 * HOUR)
        else:
            # Voluntary interview by appointment.
            interview = investigating + rng.randint(3 * DAY, 21 * DAY)
        story.milestone(interview, "suspect_interviewed")

        routes = ("charge", "bail", "rui", "nfa", "oocd", "withdrawn")
        weights = (15, 22, 25, 18, 10, 10) if arrested else (12, 0, 35, 25, 15, 13)
        then = rng.choices(routes, weights=weights)[0]
        t = interview + rng.randint(30 * MINUTE, 6 * HOUR)
        if then == "bail":
            story.milestone(t, "suspect_bailed")
            if rng.random() < 0.12:
                t += rng.randint(3 * DAY, 20 * DAY)
                story.milestone(t, "bail_conditions_changed")
            t += rng.randint(14 * DAY, 35 * DAY)
            then = rng.choices(("charge", "nfa", "ntp", "rui", "withdrawn"), weights=(45, 20, 15, 12, 8))[0]
            if then == "rui":
                story.milestone(t, "bail_cancelled")
                t += rng.randint(5 * MINUTE, HOUR)
        if then == "rui":
            story.milestone(t, "suspect_released_under_investigation")
            t += rng.randint(20 * DAY, 50 * DAY)
            then = rng.choices(("charge", "nfa", "oocd", "open"), weights=(30, 30, 15, 25))[0]
        if then == "charge":
            return self._charge(story, t)
        if then == "nfa":
            return self._no_further_action(story, t)
        if then == "oocd":
            return self._out_of_court(story, t)
        if then == "ntp":
            story.add(t, "status", "with_cps")
            t += rng.randint(5 * DAY, 25 * DAY)
            story.milestone(t, "decision_not_to_prosecute")
            final = t + rng.randint(HOUR, 3 * DAY)
            story.add(final, "outcome", "9" if rng.random() < 0.5 else "15")
            return final
        if then == "withdrawn":
            # The victim no longer supports a prosecution.
            final = t + rng.randint(3 * DAY, 20 * DAY)
            story.add(final, "outcome", "16")
            return final
        return None  # still under investigation when the feed ends

    def _charge(self, story: _Story, t: int) -> int:
        rng = self.rng
        if rng.random() < 0.7:
            story.add(t, "status", "with_cps")
            t += rng.randint(2 * HOUR, 30 * HOUR)
        # First hearings sit at 09:00 UTC, 1 to 28 days after charge.
        hearing_day = (t // DAY + rng.randint(1, 28)) * DAY
        hearing = {"court": rng.choice(_COURTS), "at": _iso(hearing_day + 9 * HOUR)}
        story.milestone(t, "suspect_charged", {"first_hearing": hearing})
        final = t + rng.randint(10 * MINUTE, 2 * DAY)
        story.add(final, "outcome", "1")
        return final

    def _no_further_action(self, story: _Story, t: int) -> int:
        rng = self.rng
        story.milestone(t, "suspect_released_no_further_action")
        final = t + rng.randint(HOUR, 5 * DAY)
        story.add(final, "outcome", rng.choices(("15", "10", "16", "21"), weights=(60, 15, 20, 5))[0])
        return final

    def _out_of_court(self, story: _Story, t: int) -> int:
        rng = self.rng
        disposal, code, _ = rng.choices(_DISPOSALS, weights=[weight for *_, weight in _DISPOSALS])[0]
        t += rng.randint(HOUR, 3 * DAY)
        story.milestone(t, "out_of_court_disposal", {"disposal": disposal})
        final = t + rng.randint(10 * MINUTE, 2 * DAY)
        story.add(final, "outcome", code)
        return final

    def _asides(self, story: _Story, recorded: int, end: int, victims: int, *, manual: bool) -> None:
        """Steps beside the investigation: manual contacts, a new OIC, changed preferences, mistakes."""
        rng = self.rng
        allocated = story.first("allocate")
        if manual:
            # No automated message may go, so each piece of news is an officer task; the officer
            # usually phones the victim within the day and logs it (which closes the task), now and
            # then days late, and sometimes never.
            news = [recorded] + [
                step.at
                for step in story.steps
                if step.kind in ("outcome", "flag", "allocate", "oic")
                or (step.kind == "milestone" and step.payload[0] != "victim_contacted")
            ]
            # And a call every two to four weeks while the case is open (the check-ins).
            at = recorded
            while (at := at + rng.randint(14 * DAY, 27 * DAY)) < end:
                news.append(at - 2 * HOUR)
            for at in news:
                roll = rng.random()
                if roll < 0.85:
                    story.milestone(at + rng.randint(2 * HOUR, 20 * HOUR), "victim_contacted")
                elif roll < 0.95:
                    story.milestone(at + rng.randint(2 * DAY, 5 * DAY), "victim_contacted")
        if allocated is not None:
            # Officers log manual updates far more often for domestic abuse and sexual offences.
            contacts = 0 if manual else int(rng.random() < 0.1)
            for _ in range(contacts):
                if end - allocated > DAY + HOUR:
                    story.milestone(rng.randint(allocated + DAY, end - HOUR), "victim_contacted")
            if rng.random() < 0.1 and end - allocated > 3 * DAY:
                first = next(step.payload for step in story.steps if step.kind == "allocate")
                second = self._oic()
                while second["employee_id"] == first["employee_id"]:
                    second = self._oic()
                story.add(rng.randint(allocated + 2 * DAY, end - DAY), "oic", second)
            if rng.random() < 0.01 and end - recorded > 3 * DAY:
                # A milestone recorded on the wrong occurrence and removed when noticed.
                wrong_at = rng.randint(recorded + DAY, min(end, recorded + 40 * DAY) - DAY)
                wrong = rng.choice(("suspect_arrested", "suspect_bailed", "suspect_interviewed"))
                story.add(wrong_at, "error", wrong)
                story.add(wrong_at + rng.randint(HOUR, 20 * HOUR), "withdraw")
        if rng.random() < 0.03 and end - recorded > 2 * DAY:
            story.add(rng.randint(recorded + DAY, end - HOUR), "preferences", rng.randrange(victims))

    def _replay(self, case: _Case, steps: list[_Step]) -> None:
        """Apply the steps in time order, pushing one snapshot per step until the span runs out."""
        rng = self.rng
        last = case.recorded + rng.randint(0, 10 * MINUTE)
        self._emit_niche(case, last)
        wrong: Json | None = None
        for step in steps:
            closing_call = step.kind == "milestone" and step.payload[0] == "victim_contacted"
            if case.status == "finalised" and not closing_call:
                continue  # after finalisation only the officer's call about the outcome is logged
            lag = (
                rng.randint(2 * MINUTE, 3 * HOUR)
                if step.kind in ("milestone", "error")
                else rng.randint(0, 20 * MINUTE)
            )
            modified = max(step.at + lag, last + MINUTE)
            if modified > case.recorded + MAX_SPAN:
                break
            if step.kind == "allocate":
                case.oic = step.payload
                case.status = "allocated"
            elif step.kind == "oic":
                case.oic = step.payload
            elif step.kind == "status":
                case.status = step.payload
            elif step.kind == "milestone":
                milestone_kind, details = step.payload
                case.milestones.append(self._milestone(milestone_kind, step.at, details))
            elif step.kind == "error":
                wrong = self._milestone(step.payload, step.at)
                case.milestones.append(wrong)
            elif step.kind == "withdraw":
                case.milestones = [m for m in case.milestones if m is not wrong]
            elif step.kind == "outcome":
                case.status = "finalised"
                case.outcome = {"code": step.payload, "decided_at": _iso(step.at)}
            elif step.kind == "flag":
                case.flags.append(step.payload)
            elif step.kind == "incident":
                case.incidents.append(step.payload)
            elif step.kind == "preferences":
                case.replace_victim(step.payload, self._changed_preferences(case.victims[step.payload]))
            self._emit_niche(case, modified)
            last = modified

    def _emit_niche(self, case: _Case, modified: int) -> None:
        if self.rng.random() < MALFORMED_RATE:
            self.niche.push(modified, self._broken_niche(case.snapshot(modified), modified))
            self.malformed += 1
        self.niche.push(modified, case.snapshot_line(modified))

    def _broken_niche(self, record: Json, modified: int) -> str:
        rng = self.rng
        broken = dict(record)
        fault = rng.choice(_NICHE_FAULTS)
        if fault == "victims_not_a_list":
            broken["victims"] = record["victims"][0]["person_id"] if record["victims"] else "P-1"
        elif fault == "status_not_a_string":
            broken["status"] = 42
        elif fault == "missing_crime_reference":
            del broken["crime_reference"]
        elif fault == "impossible_recorded_date":
            broken["recorded_at"] = record["recorded_at"][:4] + "-02-30" + record["recorded_at"][10:]
        elif fault == "impossible_birth_date":
            victim = dict(record["victims"][0])
            victim["date_of_birth"] = victim["date_of_birth"][:4] + "-02-30"
            broken["victims"] = [victim, *record["victims"][1:]]
        elif fault == "unknown_status":
            broken["status"] = rng.choice(("closed_pending", "pending_review", "archived"))
        elif fault == "outcome_code_out_of_range":
            broken["outcome"] = {"code": rng.choice(("0", "23", "99")), "decided_at": _iso(modified)}
        elif fault == "naive_timestamp":
            broken["modified_at"] = record["modified_at"].removesuffix("Z")
        line = _dumps(broken)
        if fault == "truncated_json":
            line = line[: rng.randint(10, len(line) - 2)]
        return line


def _recorded_times(rng: Random, start: int, crimes: int, days: int) -> list[int]:
    """Crime recording times across the window, busier by day than by night, in order."""
    times: list[int] = []
    while len(times) < crimes:
        ts = start + rng.randrange(days * DAY)
        if rng.random() * _MAX_HOUR_WEIGHT < _HOUR_WEIGHTS[time.gmtime(ts).tm_hour]:
            times.append(ts)
    times.sort()
    return times


def generate(
    out_dir: Path, *, crimes: int, days: int, seed: int, start: datetime | None = None
) -> GenerationStats:
    """Write niche.jsonl, storm.jsonl and officers.json under out_dir.

    Crimes are recorded across `days` from `start` (a naive `start` is taken as UTC); their
    follow-up snapshots run up to 60 days beyond. Both feeds are sorted by `modified_at`.
    """
    if crimes < 0 or days < 1:
        raise ValueError("crimes must be >= 0 and days >= 1")
    start = start or DEFAULT_START
    if start.tzinfo is None:
        start = start.replace(tzinfo=UTC)
    rng = Random(seed)
    out_dir.mkdir(parents=True, exist_ok=True)
    with (
        (out_dir / "niche.jsonl").open("w", encoding="utf-8", newline="\n") as niche_file,
        (out_dir / "storm.jsonl").open("w", encoding="utf-8", newline="\n") as storm_file,
    ):
        niche, storm = _Feed(niche_file), _Feed(storm_file)
        horizon = int(start.timestamp()) + days * DAY + MAX_SPAN
        generator = _Generator(
            rng, crimes, niche, storm, calls=Random(f"victim-calls:{seed}"), horizon=horizon
        )
        for recorded in _recorded_times(rng, int(start.timestamp()), crimes, days):
            # Nothing generated from here on can be older than this.
            niche.flush_before(recorded - MAX_LEAD)
            storm.flush_before(recorded - MAX_LEAD)
            generator.crime(recorded)
            if rng.random() < 0.2:
                generator.no_crime_incident(recorded)
        niche.flush_all()
        storm.flush_all()
    directory = generator.directory()
    (out_dir / "officers.json").write_text(
        json.dumps(directory, indent=2, ensure_ascii=False) + "\n", "utf-8"
    )
    addresses, failing = write_delivery_reports(out_dir, seed)
    stats = GenerationStats(
        crimes=crimes,
        niche_records=niche.lines,
        storm_records=storm.lines,
        malformed=generator.malformed,
        officers=len(directory),
        addresses=addresses,
        failing_addresses=failing,
        update_calls=generator.update_calls,
    )
    marker = synthetic_marker(crimes=crimes, days=days, seed=seed, start=start, stats=stats)
    (out_dir / SYNTHETIC_MARKER).write_text(json.dumps(marker, indent=2) + "\n", "utf-8")
    return stats


def synthetic_marker(*, crimes: int, days: int, seed: int, start: datetime, stats: GenerationStats) -> Json:
    """What ``synthetic.json`` says: these feeds are generated, how, and by which behaviour model."""
    return {
        "synthetic": True,
        "generator": "python -m shared.local generate",
        "arguments": {"crimes": crimes, "days": days, "seed": seed, "start": start.isoformat()},
        "update_calls": stats.update_calls,
        "behaviour_model": {
            "summary": (
                "While a crime is open each victim may phone for an update, at most once a day; the daily "
                "chance rises with the days since the last news they would have received (the service's "
                "messages, an officer's logged contact, or their own call)."
            ),
            "hazard": "floor + (ceiling - floor) * (1 - exp(-days_since_news / days))",
            "floor": CALL_HAZARD_FLOOR,
            "ceiling": CALL_HAZARD_CEILING,
            "days": CALL_HAZARD_DAYS,
            "calling_hours": f"{CALL_HOURS[0]:02d}:00-{CALL_HOURS[1]:02d}:00 Europe/London",
        },
    }


def copy_synthetic_marker(feeds: Path, out: Path) -> bool:
    """A run of generated feeds says so in its out folder (the compliance report reads it there).

    The marker is copied, never removed: once a folder's state holds synthetic data, it does.
    """
    marker = feeds / SYNTHETIC_MARKER
    if not marker.is_file():
        return False
    out.mkdir(parents=True, exist_ok=True)
    (out / SYNTHETIC_MARKER).write_bytes(marker.read_bytes())
    return True


# About this share of the addresses people gave fail: mailboxes that bounce or are full, numbers
# no longer in service. What the provider reports for each, and roughly after how long: only the
# statuses the file's contract names (DESIGN.md), so a test team's own tools can read what it wrote.
FAILING_ADDRESS_RATE = 0.03
_EMAIL_FAILURES = (("Bounced", 0.7), ("Suppressed", 0.15), ("Failed", 0.15))
_SMS_FAILURES = (("Failed", 0.8), ("Expired", 0.2))


def write_delivery_reports(out_dir: Path, seed: int) -> tuple[int, int]:
    """Write delivery-reports.json for the addresses in the feeds just written; (addresses, failing).

    Every valid address (the victims', guardians' and callers') is seen; a few, chosen by their
    own random stream so the feeds themselves do not change, are reported failed.
    """
    addresses: set[str] = set()
    for name in ("niche.jsonl", "storm.jsonl"):
        with (out_dir / name).open(encoding="utf-8") as lines:
            for line in lines:
                addresses.update(_addresses(line))
    rng = Random(f"{seed}:delivery-reports")
    plan: Json = {}
    for address in sorted(addresses):
        if rng.random() >= FAILING_ADDRESS_RATE:
            continue
        statuses = _EMAIL_FAILURES if "@" in address else _SMS_FAILURES
        status = rng.choices([s for s, _ in statuses], [w for _, w in statuses])[0]
        plan[address] = {"status": status, "after_seconds": rng.randint(5, 900)}
    (out_dir / "delivery-reports.json").write_text(json.dumps(plan, indent=2) + "\n", "utf-8")
    return len(addresses), len(plan)


def _addresses(line: str) -> set[str]:
    """The usable addresses in one feed line (a malformed line has none)."""
    try:
        record = json.loads(line)
    except ValueError:
        return set()
    people = [*(record.get("victims") or []), record.get("caller")] if isinstance(record, dict) else []
    contacts = []
    for person in people:
        if isinstance(person, dict):
            contacts.append(person.get("contact"))
            contacts.append(person.get("guardian"))
    found: set[str] = set()
    for contact in contacts:
        if isinstance(contact, dict):
            found.update(
                filter(None, (valid_email(contact.get("email")), uk_mobile_e164(contact.get("mobile"))))
            )
    return found
