"""Specifications of the synthetic feed generator (shared/local/generate.py)."""

from __future__ import annotations

import json
import re
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from itertools import pairwise
from pathlib import Path

import pytest
from pydantic import ValidationError

from shared.adapters.policy_file import load_policy
from shared.contracts.feeds import (
    FEED_MODELS,
    CaseStatus,
    Flag,
    MilestoneType,
    NicheOccurrence,
    StormIncident,
)
from shared.domain.policy import Policy
from shared.local.generate import DEFAULT_START, MAX_SPAN, UNLISTED_EMPLOYEE_IDS, GenerationStats, generate

CRIMES, DAYS, SEED = 300, 30, 7
STATUS_ORDER = list(CaseStatus)


@dataclass
class Feeds:
    out: Path
    stats: GenerationStats
    niche: list[NicheOccurrence]  # valid records, in file order
    storm: list[StormIncident]
    rejected: dict[str, list[str]]  # lines that failed validation, by feed
    lines: dict[str, list[str]]
    officers: list[dict[str, object]]

    def final_snapshots(self) -> dict[str, NicheOccurrence]:
        latest: dict[str, NicheOccurrence] = {}
        for record in self.niche:
            latest[record.crime_reference] = record
        return latest

    def snapshots_by_crime(self) -> dict[str, list[NicheOccurrence]]:
        by_crime: dict[str, list[NicheOccurrence]] = defaultdict(list)
        for record in self.niche:
            by_crime[record.crime_reference].append(record)
        return by_crime


def _load(out: Path, stats: GenerationStats) -> Feeds:
    lines = {feed: (out / f"{feed}.jsonl").read_text("utf-8").splitlines() for feed in FEED_MODELS}
    rejected: dict[str, list[str]] = {feed: [] for feed in FEED_MODELS}
    niche: list[NicheOccurrence] = []
    storm: list[StormIncident] = []
    for feed, model in FEED_MODELS.items():
        for line in lines[feed]:
            try:
                record = model.model_validate_json(line)
            except ValidationError:
                rejected[feed].append(line)
                continue
            if isinstance(record, NicheOccurrence):
                niche.append(record)
            elif not Policy().storm.is_update_request(record.opening_category):
                storm.append(record)  # victims' calls for an update: tests/unit/test_update_calls.py
    officers = json.loads((out / "officers.json").read_text("utf-8"))
    return Feeds(out, stats, niche, storm, rejected, lines, officers)


@pytest.fixture(scope="module")
def feeds(tmp_path_factory: pytest.TempPathFactory) -> Feeds:
    out = tmp_path_factory.mktemp("feeds")
    return _load(out, generate(out, crimes=CRIMES, days=DAYS, seed=SEED))


def _valid_niche(out: Path) -> list[NicheOccurrence]:
    valid = []
    for line in (out / "niche.jsonl").read_text("utf-8").splitlines():
        try:
            valid.append(NicheOccurrence.model_validate_json(line))
        except ValidationError:
            continue
    return valid


def _parse_time(text: str) -> datetime:
    parsed = datetime.fromisoformat(text)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _age_on(born: date, day: date) -> int:
    return day.year - born.year - ((day.month, day.day) < (born.month, born.day))


# --- determinism ---------------------------------------------------------------------------------


def test_same_seed_gives_byte_identical_files(tmp_path: Path) -> None:
    first = generate(tmp_path / "a", crimes=120, days=10, seed=42)
    second = generate(tmp_path / "b", crimes=120, days=10, seed=42)
    assert first == second
    for name in ("niche.jsonl", "storm.jsonl", "officers.json"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()


def test_different_seed_gives_different_files(tmp_path: Path) -> None:
    generate(tmp_path / "a", crimes=120, days=10, seed=42)
    generate(tmp_path / "b", crimes=120, days=10, seed=43)
    for name in ("niche.jsonl", "storm.jsonl", "officers.json"):
        assert (tmp_path / "a" / name).read_bytes() != (tmp_path / "b" / name).read_bytes()


def test_start_defaults_to_a_fixed_date_and_can_be_moved(tmp_path: Path) -> None:
    generate(tmp_path / "default", crimes=20, days=2, seed=1)
    later = datetime(2027, 3, 1, tzinfo=UTC)
    generate(tmp_path / "later", crimes=20, days=2, seed=1, start=later)
    for folder, start in (("default", DEFAULT_START), ("later", later)):
        recorded = [record.recorded_at for record in _valid_niche(tmp_path / folder)]
        assert min(recorded) >= start
        assert max(recorded) < start + timedelta(days=2)


def test_stats_count_what_was_written(feeds: Feeds) -> None:
    assert feeds.stats.crimes == CRIMES
    assert feeds.stats.niche_records == len(feeds.lines["niche"])
    assert feeds.stats.storm_records == len(feeds.lines["storm"])
    assert feeds.stats.officers == len(feeds.officers)
    assert len({record.crime_reference for record in feeds.niche}) == CRIMES


# --- contract and malformed records --------------------------------------------------------------


def test_every_line_validates_except_the_deliberately_malformed_ones(feeds: Feeds) -> None:
    rejected = len(feeds.rejected["niche"]) + len(feeds.rejected["storm"])
    assert rejected == feeds.stats.malformed
    for feed in ("niche", "storm"):
        share = len(feeds.rejected[feed]) / len(feeds.lines[feed])
        assert 0.005 <= share <= 0.02, (feed, share)


def test_malformed_records_come_in_varied_kinds(tmp_path: Path) -> None:
    generate(tmp_path, crimes=1500, days=30, seed=3)
    for feed, model in FEED_MODELS.items():
        kinds: Counter[str] = Counter()
        for line in (tmp_path / f"{feed}.jsonl").read_text("utf-8").splitlines():
            try:
                model.model_validate_json(line)
            except ValidationError as error:
                first = error.errors()[0]
                kinds[f"{first['type']}:{first['loc'][:1]}"] += 1
        assert "json_invalid:()" in kinds, kinds  # a truncated line
        assert any(kind.startswith("missing:") for kind in kinds), kinds
        assert len(kinds) >= 5, kinds


def test_crime_references_and_ids_follow_the_force_formats(feeds: Feeds) -> None:
    for record in feeds.niche:
        assert re.fullmatch(r"HU/\d{6}/\d{2}", record.crime_reference)
        number, year = record.crime_reference.split("/")[1:]
        assert record.occurrence_id == f"HU-{year}-{number}"
        for incident in record.incident_numbers:
            assert re.fullmatch(r"HU-\d{8}-\d{4}", incident)
        for victim in record.victims:
            assert re.fullmatch(r"P-\d+", victim.person_id)
    callers = [incident.caller for incident in feeds.storm if incident.caller]
    assert callers
    assert all(re.fullmatch(r"C-\d+", caller.person_id) for caller in callers)


def test_each_victim_belongs_to_one_crime(feeds: Feeds) -> None:
    owner: dict[str, str] = {}
    for record in feeds.niche:
        for victim in record.victims:
            assert owner.setdefault(victim.person_id, record.crime_reference) == record.crime_reference


def test_contact_details_use_only_reserved_fictional_ranges(feeds: Feeds) -> None:
    emails = {v.contact.email for r in feeds.niche for v in r.victims if v.contact.email}
    mobiles = {v.contact.mobile for r in feeds.niche for v in r.victims if v.contact.mobile}
    for email in emails:
        if "@" in email and "." in email.split("@")[-1]:
            assert email.split("@")[-1] in {"example.org", "example.com"}, email
    for mobile in mobiles:
        digits = re.sub(r"\D", "", mobile)
        if len(digits) >= 11:
            assert re.fullmatch(r"(44|0)7700900\d{3}", digits), mobile
    formats = {re.sub(r"\d", "9", mobile) for mobile in mobiles}
    assert {"99999 999999", "+999999999999", "99999999999"} <= formats
    assert {"not-an-email"} & emails or any(email.endswith("@") for email in emails)
    for officer in feeds.officers:
        assert str(officer["email"]).endswith("@example.police.uk")


# --- ordering ------------------------------------------------------------------------------------


def test_files_are_sorted_by_modified_at(feeds: Feeds) -> None:
    for feed in ("niche", "storm"):
        times = []
        for line in feeds.lines[feed]:
            match = re.search(r'"modified_at":"([^"]+)"', line)
            if match:
                try:
                    times.append(_parse_time(match.group(1)))
                except ValueError:
                    continue
        assert len(times) > 0.98 * len(feeds.lines[feed])
        assert times == sorted(times), feed


def test_a_crimes_records_span_at_most_sixty_days(feeds: Feeds) -> None:
    for snapshots in feeds.snapshots_by_crime().values():
        recorded = snapshots[0].recorded_at
        assert all(recorded <= s.modified_at <= recorded + timedelta(seconds=MAX_SPAN) for s in snapshots)


# --- the journey ---------------------------------------------------------------------------------


def test_status_never_goes_backwards(feeds: Feeds) -> None:
    for reference, snapshots in feeds.snapshots_by_crime().items():
        ranks = [STATUS_ORDER.index(snapshot.status) for snapshot in snapshots]
        assert ranks == sorted(ranks), reference
        assert snapshots[0].status is CaseStatus.RECORDED


def test_crimes_progress_through_several_snapshots(feeds: Feeds) -> None:
    by_crime = feeds.snapshots_by_crime()
    assert sum(len(s) for s in by_crime.values()) / len(by_crime) >= 3
    statuses = Counter(snapshot.status for snapshot in feeds.final_snapshots().values())
    assert statuses[CaseStatus.FINALISED] > 0.7 * CRIMES
    assert statuses[CaseStatus.UNDER_INVESTIGATION] > 0  # some investigations outlast the feed


def test_milestones_are_added_one_snapshot_at_a_time(feeds: Feeds) -> None:
    for snapshots in feeds.snapshots_by_crime().values():
        for before, after in pairwise(snapshots):
            added = {m.id for m in after.milestones} - {m.id for m in before.milestones}
            assert len(added) <= 1


def test_milestones_follow_a_realistic_order(feeds: Feeds) -> None:
    charged = 0
    for record in feeds.final_snapshots().values():
        first: dict[MilestoneType, datetime] = {}
        for milestone in record.milestones:
            first.setdefault(milestone.type, milestone.at)
        assert [m.at for m in record.milestones if m.type != MilestoneType.VICTIM_CONTACTED] == sorted(
            m.at for m in record.milestones if m.type != MilestoneType.VICTIM_CONTACTED
        )
        later = set(first) - {MilestoneType.SUSPECT_ARRESTED, MilestoneType.VICTIM_CONTACTED}
        if MilestoneType.SUSPECT_ARRESTED in first:
            assert all(first[MilestoneType.SUSPECT_ARRESTED] <= first[kind] for kind in later)
        if later - {MilestoneType.SUSPECT_INTERVIEWED}:
            assert MilestoneType.SUSPECT_INTERVIEWED in first
            assert all(first[MilestoneType.SUSPECT_INTERVIEWED] <= first[kind] for kind in later)
        for milestone in record.milestones:
            if milestone.type == MilestoneType.SUSPECT_CHARGED:
                charged += 1
                hearing = milestone.details["first_hearing"]
                assert hearing["court"].endswith("Magistrates' Court")
                assert _parse_time(hearing["at"]) > milestone.at
            if milestone.type == MilestoneType.OUT_OF_COURT_DISPOSAL:
                assert milestone.details["disposal"]
    assert charged > 0


def test_outcomes_match_the_milestones(feeds: Feeds) -> None:
    for record in feeds.final_snapshots().values():
        types = {m.type for m in record.milestones}
        if record.status is not CaseStatus.FINALISED:
            assert record.outcome is None
            continue
        assert record.outcome is not None
        assert record.outcome.decided_at <= record.modified_at
        code = record.outcome.code
        if MilestoneType.SUSPECT_CHARGED in types:
            assert code == "1"
        elif MilestoneType.SUSPECT_RELEASED_NO_FURTHER_ACTION in types:
            assert code in {"10", "15", "16", "21"}
        elif MilestoneType.DECISION_NOT_TO_PROSECUTE in types:
            assert code in {"9", "15"}
        elif MilestoneType.OUT_OF_COURT_DISPOSAL in types:
            assert code in {"2", "3", "6", "7", "8", "22"}
        elif not types - {MilestoneType.VICTIM_CONTACTED}:
            assert code in {"14", "16", "18", "19"}


def test_many_thefts_are_closed_with_no_suspect_identified(feeds: Feeds) -> None:
    thefts = [r for r in feeds.final_snapshots().values() if r.offence.category == "theft"]
    no_suspect = [r for r in thefts if r.outcome and r.outcome.code == "18"]
    assert 0.3 <= len(no_suspect) / len(thefts) <= 0.7


def test_some_milestones_are_withdrawn_in_a_later_snapshot(tmp_path: Path) -> None:
    generate(tmp_path, crimes=1500, days=30, seed=3)
    withdrawn = 0
    latest: dict[str, set[str]] = {}
    for record in _valid_niche(tmp_path):
        ids = {m.id for m in record.milestones}
        withdrawn += len(latest.get(record.crime_reference, set()) - ids)
        latest[record.crime_reference] = ids
    assert 1 <= withdrawn <= 0.03 * 1500


def test_some_cases_change_officer_in_charge(feeds: Feeds) -> None:
    changed = 0
    for snapshots in feeds.snapshots_by_crime().values():
        oics = list(dict.fromkeys(s.oic.employee_id for s in snapshots if s.oic))
        assert len(oics) <= 2
        changed += len(oics) == 2
    assert 0.03 * CRIMES <= changed <= 0.2 * CRIMES


def test_victims_preferences_sometimes_change_mid_case(tmp_path: Path) -> None:
    generate(tmp_path, crimes=1000, days=30, seed=5)
    first_seen: dict[str, str] = {}
    changed = 0
    for record in _valid_niche(tmp_path):
        for victim in record.victims:
            state = victim.model_dump_json(include={"preferences", "contact", "safe_contact"})
            if first_seen.setdefault(victim.person_id, state) != state:
                first_seen[victim.person_id] = state
                changed += 1
    assert changed >= 5


# --- the mix -------------------------------------------------------------------------------------


def test_mix_includes_the_cases_that_need_safeguarding(feeds: Feeds) -> None:
    finals = list(feeds.final_snapshots().values())
    flags = Counter(flag for record in finals for flag in record.flags)
    categories = Counter(record.offence.category for record in finals)
    assert 0.01 * CRIMES <= flags[Flag.DOMESTIC_ABUSE] <= 0.12 * CRIMES
    assert flags[Flag.SEXUAL_OFFENCE] <= 0.05 * CRIMES
    assert flags[Flag.HATE_CRIME] > 0 and flags[Flag.STALKING_HARASSMENT] > 0
    assert categories.most_common(1)[0][0] == "theft"
    assert {"criminal_damage", "violence_with_injury", "burglary"} <= set(categories)

    victims = [(record, victim) for record in finals for victim in record.victims]
    minors = [
        (r, v) for r, v in victims if v.date_of_birth and _age_on(v.date_of_birth, r.recorded_at.date()) < 18
    ]
    assert any(v.guardian and (v.guardian.email or v.guardian.mobile) for _, v in minors)
    assert any(v.guardian is None for _, v in minors)
    assert 0.01 <= len(minors) / len(victims) <= 0.1
    assert any(v.preferences.opted_out for _, v in victims)
    assert any(not (v.safe_contact.sms and v.safe_contact.email) for _, v in victims)
    assert any(v.enhanced_rights for _, v in victims)
    assert any(len(record.victims) == 2 for record in finals)

    channels = Counter(v.preferences.channel.value for _, v in victims)
    assert channels["email"] > channels["sms"] > channels["both"] > channels["none"] > 0
    languages = Counter(v.preferences.language for _, v in victims)
    assert languages.most_common(1)[0][0] == "en" and languages["cy"] > 0
    assert Counter(v.preferences.frequency_days for _, v in victims).most_common(1)[0][0] == 28


def test_officers_log_manual_contact_mostly_where_automated_messages_may_not_go(feeds: Feeds) -> None:
    # The sample models officers acting on their tasks: a crime the policy excludes from automated
    # messages (or a victim no message can reach) has its news told by phone and logged.
    def contacted_share(records: list[NicheOccurrence]) -> float:
        contacted = [
            r for r in records if any(m.type == MilestoneType.VICTIM_CONTACTED for m in r.milestones)
        ]
        return len(contacted) / len(records)

    excluded = set(load_policy().safeguarding.excluded_flags)
    finals = list(feeds.final_snapshots().values())
    sensitive = [r for r in finals if excluded & set(r.flags)]
    others = [r for r in finals if r not in sensitive]
    assert len(sensitive) >= 10
    assert contacted_share(sensitive) > 0.8 > 0.3 > contacted_share(others)


# --- STORM ---------------------------------------------------------------------------------------


def test_storm_incidents_link_to_crimes(feeds: Feeds) -> None:
    incidents = {incident.incident_number for incident in feeds.storm}
    listed = {number: r.crime_reference for r in feeds.niche for number in r.incident_numbers}
    assert set(listed) <= incidents
    assert len({listed[number] for number in listed}) > 0.7 * CRIMES

    references = {r.crime_reference for r in feeds.niche}
    latest: dict[str, StormIncident] = {}
    for incident in feeds.storm:
        assert incident.modified_at >= incident.opened_at
        latest[incident.incident_number] = incident
        if incident.crime_reference is not None:
            assert incident.crime_reference in references
            assert listed.get(incident.incident_number) in (None, incident.crime_reference)
    linked_by_storm = [i for i in latest.values() if i.crime_reference]
    crime_incidents = [i for i in latest.values() if i.incident_number in listed]
    assert 0.3 <= len(linked_by_storm) / len(crime_incidents) <= 0.7
    assert any(number not in listed for number in latest)  # incidents where no crime was recorded
    assert {i.status for i in latest.values()} == {"closed"}


def test_crime_reference_appears_in_storm_only_after_the_first_snapshot(feeds: Feeds) -> None:
    first: dict[str, StormIncident] = {}
    for incident in feeds.storm:
        first.setdefault(incident.incident_number, incident)
    assert all(incident.crime_reference is None for incident in first.values())


def test_some_incidents_book_an_attendance_that_is_sometimes_moved(feeds: Feeds) -> None:
    schedules: dict[str, list[datetime]] = defaultdict(list)
    attended: dict[str, datetime] = {}
    for incident in feeds.storm:
        attendance = incident.attendance
        if attendance and attendance.scheduled_for:
            times = schedules[incident.incident_number]
            if not times or times[-1] != attendance.scheduled_for:
                times.append(attendance.scheduled_for)
            if attendance.attended_at is None:
                assert attendance.scheduled_for > incident.modified_at
        if attendance and attendance.attended_at:
            attended[incident.incident_number] = attendance.attended_at
    numbers = {incident.incident_number for incident in feeds.storm}
    assert 0.25 <= len(schedules) / len(numbers) <= 0.55
    assert any(len(times) > 1 and times[1] > times[0] for times in schedules.values())
    assert all(number in attended for number in schedules)


def test_most_callers_consent_to_updates(feeds: Feeds) -> None:
    callers = {i.caller.person_id: i.caller for i in feeds.storm if i.caller}
    consenting = sum(caller.consent_to_updates for caller in callers.values())
    assert 0.7 <= consenting / len(callers) < 1


# --- officer directory ---------------------------------------------------------------------------


def test_every_oic_is_in_the_directory_except_a_deliberate_few(feeds: Feeds) -> None:
    directory = {str(officer["employee_id"]): officer for officer in feeds.officers}
    oics = {r.oic.employee_id for r in feeds.niche if r.oic}
    missing = oics - set(directory)
    assert missing, "some OIC must be missing so the directory fallback is exercised"
    assert all(int(employee) in UNLISTED_EMPLOYEE_IDS for employee in missing)
    assert len(missing) <= 0.03 * len(oics)
    crimes_with_missing_oic = {
        r.crime_reference for r in feeds.niche if r.oic and r.oic.employee_id in missing
    }
    assert len(crimes_with_missing_oic) <= 0.03 * CRIMES


def test_officer_directory_has_the_documented_shape_and_a_few_leavers(feeds: Feeds) -> None:
    keys = {"employee_id", "collar_number", "display_name", "rank", "email", "phone", "active"}
    assert all(set(officer) == keys for officer in feeds.officers)
    assert len(feeds.officers) >= CRIMES // 25 + 20
    assert len({officer["employee_id"] for officer in feeds.officers}) == len(feeds.officers)
    leavers = [officer for officer in feeds.officers if officer["active"] is False]
    assert 0 < len(leavers) < 0.1 * len(feeds.officers)
    for officer in feeds.officers:
        assert re.fullmatch(r"101 ext \d{4}|\+44 1482 000 \d{3}", str(officer["phone"]))
