"""The journey policy is checked as strictly as the code reads it: a mistake fails at load, in one line.

A typo in a policy must never quietly switch a rule off (a misspelt safeguarding flag
matches no crime, so domestic abuse victims would get texts) or leave every journey
event to dead-letter later (a time zone that does not exist).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from shared.adapters import policy_file as policy_module
from shared.adapters.policy_file import DEFAULT_POLICY_PATH, load_policy
from shared.contracts.feeds import Flag, MilestoneType
from shared.domain.journey import Journey, excluded_flag, has_enhanced_rights
from shared.domain.policy import (
    Policy,
    PolicyError,
    SafeguardingPolicy,
    StormPolicy,
    category_key,
)


def _policy_file(tmp_path: Path, section: str | None, key: str, value: Any) -> Path:
    """The shipped policy with one value changed, written to a file of its own."""
    data = json.loads(DEFAULT_POLICY_PATH.read_text(encoding="utf-8"))
    (data[section] if section else data)[key] = value
    path = tmp_path / "journey-policy.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def _refusal(tmp_path: Path, section: str | None, key: str, value: Any) -> str:
    path = _policy_file(tmp_path, section, key, value)
    with pytest.raises(PolicyError) as caught:
        load_policy(path)
    message = str(caught.value)
    assert "\n" not in message, "the error is one line"
    assert message.startswith(f"journey policy {path}: field "), message
    return message


# --- the shipped file ------------------------------------------------------------------------------


def test_the_shipped_policy_file_spells_out_every_default_of_the_model() -> None:
    on_disk = json.loads(DEFAULT_POLICY_PATH.read_text(encoding="utf-8"))
    assert on_disk == Policy().model_dump(mode="json"), "policy/journey-policy.json differs from the defaults"


def test_the_default_policy_passes_its_own_checks() -> None:
    """Defaults are not validated when the model is built; validating them here is what checks them."""
    defaults = Policy().model_dump(mode="json")
    assert Policy.model_validate_json(json.dumps(defaults)) == Policy()


# --- each mistake, named -------------------------------------------------------------------------


MISTAKES: list[tuple[str | None, str, Any, str, str]] = [
    # section, key, bad value, the field named, words the reason must hold
    ("safeguarding", "excluded_flags", ["domestic_abuce", "bereaved"], "safeguarding.excluded_flags.0",
     "'domestic_abuce' is not a crime flag (expected one of domestic_abuse, "),
    ("safeguarding", "enhanced_flags", ["hate_crime", "Hate_Crime"], "safeguarding.enhanced_flags.1",
     "'Hate_Crime' is not a crime flag"),
    ("safeguarding", "excluded_flags", ["bereaved", "bereaved"], "safeguarding.excluded_flags.1",
     "'bereaved' is listed twice"),
    ("safeguarding", "enhanced_flags", [5], "safeguarding.enhanced_flags.0", "Input should be"),
    (None, "notifiable_milestones", ["suspect_arrested", "victim_contacted"], "notifiable_milestones.1",
     "'victim_contacted' is not notifiable"),
    (None, "notifiable_milestones", ["suspect_arested"], "notifiable_milestones.0",
     "'suspect_arested' is not a milestone type (expected one of suspect_arrested, "),
    (None, "notifiable_milestones", ["bail_cancelled", "bail_cancelled"], "notifiable_milestones.1",
     "listed twice"),
    (None, "right_to_review_milestones", ["decision_not_to_prosecute", "no_further_action"],
     "right_to_review_milestones.1", "'no_further_action' is not a milestone type"),
    (None, "right_to_review_outcomes", ["10", "23"], "right_to_review_outcomes.1",
     "'23' is not a Home Office outcome code"),
    (None, "right_to_review_outcomes", ["0"], "right_to_review_outcomes.0", "not a Home Office outcome code"),
    (None, "right_to_review_outcomes", ["01"], "right_to_review_outcomes.0", "not a Home Office outcome code"),
    (None, "right_to_review_outcomes", [10], "right_to_review_outcomes.0", "valid string"),
    (None, "right_to_review_outcomes", ["15", "15"], "right_to_review_outcomes.1", "listed twice"),
    (None, "languages", ["en", "xx"], "languages.1", "'xx' has no template folder shared/templates/xx/"),
    (None, "languages", ["../en"], "languages.0", "not a language code"),
    (None, "languages", ["report"], "languages.0", "not a language code"),
    (None, "languages", [], "languages", "at least 1 item"),
    (None, "languages", ["en", "en"], "languages.1", "listed twice"),
    (None, "default_language", "cy", "default_language", "'cy' is not in languages (en)"),
    ("deadlines", "timezone", "Europe/Lundon", "deadlines.timezone", "'Europe/Lundon' is not an IANA time zone"),
    ("deadlines", "timezone", "../../../etc/passwd", "deadlines.timezone", "not an IANA time zone"),
    ("deadlines", "timezone", "", "deadlines.timezone", "at least 1 character"),
    ("deadlines", "nation", "wales", "deadlines.nation", "Input should be"),
    ("deadlines", "working_days", 31, "deadlines.working_days", "less than or equal to 30"),
    ("force", "link_base_url", "http://vu.example.police.uk", "force.link_base_url",
     "not an absolute https URL with a host"),
    ("force", "link_base_url", "https://victim-updates.example.police.uk", "force.link_base_url",
     "makes links of 52 characters: at most 40"),
    ("force", "link_base_url", "https://vu.example.police.uk/", "force.link_base_url",
     "must be just https:// and a host"),
    ("force", "link_base_url", "https://vu.police.uk/p?x=1", "force.link_base_url",
     "must be just https:// and a host"),
    ("force", "preferences_url", "https://vu.example.police.uk", "force.preferences_url",
     "Extra inputs are not permitted"),
    ("page", "days_after_finalised", -1, "page.days_after_finalised", "greater than or equal to 0"),
    ("force", "review_url", "/right-to-review", "force.review_url", "not an absolute https URL"),
    ("force", "review_url", "https:///right-to-review", "force.review_url", "not an absolute https URL"),
    ("force", "review_url", "https://example.police.uk/review me", "force.review_url", "not an absolute https URL"),
    ("force", "record_url", "https://niche.example.police.uk/occurrence/", "force.record_url",
     "does not contain the placeholder {crime_reference}"),
    ("force", "record_url", "https://niche.example.police.uk/{force}/{crime_reference}", "force.record_url",
     "has braces other than the placeholder {crime_reference}"),
    ("force", "record_url", "https://niche.example.police.uk/{crime_reference.__class__}", "force.record_url",
     "has braces other than the placeholder {crime_reference}"),
    ("force", "record_url", "https://niche.example.police.uk/{crime_reference}{", "force.record_url",
     "has braces other than the placeholder {crime_reference}"),
    ("force", "record_url", "https://niche.example.police.uk:99999/{crime_reference}", "force.record_url",
     "'https://niche.example.police.uk:99999/{crime_reference}' is not an absolute https URL"),
    ("force", "link_base_url", "https://[::1", "force.link_base_url", "not an absolute https URL"),
    ("force", "record_url", "niche.example.police.uk/occurrence/{crime_reference}", "force.record_url",
     "not an absolute https URL"),
    ("force", "team_mailbox", "victim-updates-team", "force.team_mailbox", "is not a valid email address"),
    ("force", "supervisor_mailbox", "supervisors@", "force.supervisor_mailbox", "is not a valid email address"),
    ("force", "non_emergency_number", "10l", "force.non_emergency_number", "'10l' is not a short phone number"),
    ("force", "non_emergency_number", "101 or 999", "force.non_emergency_number", "not a short phone number"),
    ("force", "name", "", "force.name", "at least 1 character"),
    ("storm", "safeguarding_categories", ["Domestic Incidnet", "Sexual Offence"], "storm.safeguarding_categories.0",
     "'Domestic Incidnet' is not one of storm.categories (did you mean 'Domestic Incident'?)"),
    ("storm", "safeguarding_categories", ["Domestic Incident", "domestic incident"],
     "storm.safeguarding_categories.1", "listed twice (as 'Domestic Incident')"),
    ("storm", "categories", ["Theft", "Burglary", "THEFT"], "storm.categories.2", "listed twice (as 'Theft')"),
    ("storm", "categories", ["Theft", " - "], "storm.categories.1", "has no words"),
    ("storm", "categories", [], "storm.categories", "at least 1 item"),
    ("timing", "quiet_hours_start", "20", "timing.quiet_hours_start", "valid integer"),
    ("timing", "quiet_hours_start", 20.5, "timing.quiet_hours_start", "valid integer"),
    ("timing", "sms_max_segments", 0, "timing.sms_max_segments", "greater than or equal to 1"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("section", "key", "value", "field", "reason"), MISTAKES, ids=[f"{m[3]}={m[2]!r:.30}" for m in MISTAKES]
)
def test_a_policy_mistake_fails_at_load_naming_the_field_and_what_is_wrong(
    tmp_path: Path, section: str | None, key: str, value: Any, field: str, reason: str
) -> None:
    message = _refusal(tmp_path, section, key, value)
    assert f": field {field}: " in message, message
    assert reason in message, message


def test_a_safeguarding_category_outside_a_custom_vocabulary_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "policy.json"
    path.write_text(
        json.dumps(
            {"storm": {"categories": ["Domestic", "Theft"], "safeguarding_categories": ["Domestic Abuse"]}}
        )
    )
    with pytest.raises(
        PolicyError, match=r"field storm\.safeguarding_categories\.0: 'Domestic Abuse' is not one of"
    ):
        load_policy(path)


# --- what is accepted ----------------------------------------------------------------------------


def test_every_crime_flag_of_the_feed_contract_is_accepted_in_both_flag_lists(tmp_path: Path) -> None:
    every = [flag.value for flag in Flag]
    path = tmp_path / "policy.json"
    path.write_text(json.dumps({"safeguarding": {"excluded_flags": every, "enhanced_flags": every}}))
    loaded = load_policy(path).safeguarding
    assert loaded.excluded_flags == list(Flag) and loaded.enhanced_flags == list(Flag)


def test_every_milestone_but_a_logged_contact_may_be_notifiable(tmp_path: Path) -> None:
    milestones = [kind.value for kind in MilestoneType if kind != MilestoneType.VICTIM_CONTACTED]
    path = tmp_path / "policy.json"
    path.write_text(
        json.dumps({"notifiable_milestones": milestones, "right_to_review_milestones": milestones})
    )
    assert load_policy(path).notifiable_milestones == milestones


def test_every_home_office_outcome_code_is_accepted(tmp_path: Path) -> None:
    codes = [str(code) for code in range(1, 23)]
    path = tmp_path / "policy.json"
    path.write_text(json.dumps({"right_to_review_outcomes": codes}))
    assert load_policy(path).right_to_review_outcomes == codes


@pytest.mark.parametrize("zone", ["Europe/London", "UTC", "Europe/Belfast", "America/Argentina/Buenos_Aires"])
def test_a_real_iana_time_zone_is_accepted(tmp_path: Path, zone: str) -> None:
    assert load_policy(_policy_file(tmp_path, "deadlines", "timezone", zone)).deadlines.timezone == zone


def test_a_force_s_own_addresses_and_number_are_accepted(tmp_path: Path) -> None:
    path = tmp_path / "policy.json"
    force = {
        "non_emergency_number": "01482 220 000",
        "link_base_url": "https://vu.humbs.police.uk",
        "review_url": "https://www.humberside.police.uk/vrr?from=sms",
        "record_url": "https://niche.humberside.police.uk:8443/occ?ref={crime_reference}",
        "team_mailbox": "victim.updates@humberside.police.uk",
        "supervisor_mailbox": "vu-supervisors@humberside.police.uk",
    }
    path.write_text(json.dumps({"force": force}))
    assert load_policy(path).force.model_dump(include=set(force)) == force


def test_a_policy_built_in_code_from_plain_strings_holds_the_contract_enums() -> None:
    built = SafeguardingPolicy(excluded_flags=["bereaved"], enhanced_flags=["kidnap"])  # type: ignore[list-item]
    assert built.excluded_flags == [Flag.BEREAVED] and built.enhanced_flags == [Flag.KIDNAP]


def test_code_comparing_flags_and_milestones_with_plain_strings_still_matches() -> None:
    """Journeys hold flags as plain strings; the policy holds the contract's StrEnums."""
    policy = load_policy()
    assert "domestic_abuse" in policy.safeguarding.excluded_flags
    assert "suspect_charged" in policy.notifiable_milestones
    assert "decision_not_to_prosecute" in policy.right_to_review_milestones
    journey = Journey(crime_reference="HU/000001/26", person_id="P-1", role="victim", flags=["hate_crime"])
    assert excluded_flag(journey, policy) is None and has_enhanced_rights(journey, policy)
    journey.flags = ["stalking_harassment"]
    flag = excluded_flag(journey, policy)
    assert flag == "stalking_harassment" and f"excluded_crime:{flag}" == "excluded_crime:stalking_harassment"
    assert json.dumps(flag) == '"stalking_harassment"'


def test_storm_safeguarding_categories_still_match_whatever_the_spelling() -> None:
    storm = StormPolicy()
    assert storm.safeguarding_category("DOMESTIC INCIDENT") == "Domestic Incident"
    assert storm.safeguarding_category("Stalking and Harassment") == "Stalking/Harassment"
    assert storm.safeguarding_category("Theft") is None
    assert category_key("Anti-Social Behaviour") == "antisocialbehaviour"


def test_each_policy_answers_from_its_own_category_lists_though_the_keys_are_worked_out_once() -> None:
    # The keys of category names are remembered across calls and policies (issue 16): a policy
    # with other lists must still get its own answers, each in its own spelling.
    default, custom = (
        StormPolicy(),
        StormPolicy(
            categories=["Domestic", "Theft", "Caller wants news"],
            safeguarding_categories=["domestic"],
            update_request_categories=["Caller Wants News"],
        ),
    )
    for _ in range(2):  # the second time from what was remembered
        assert default.safeguarding_category("domestic incident") == "Domestic Incident"
        assert custom.safeguarding_category("domestic incident") is None
        assert custom.safeguarding_category("DOMESTIC") == "domestic"
        assert default.safeguarding_category("Domestic") is None
        assert custom.is_update_request("caller wants news") and not default.is_update_request(
            "Caller wants news"
        )
        assert default.is_update_request("Caller requesting update") and not custom.is_update_request(
            "Update Request"
        )
        assert not default.is_update_request("") and default.safeguarding_category(None) is None


def test_every_storm_category_the_sample_generator_writes_is_in_the_default_vocabulary(
    tmp_path: Path,
) -> None:
    from shared.local.generate import generate

    generate(tmp_path, crimes=2000, days=30, seed=11)
    written: set[str] = set()
    for line in (tmp_path / "storm.jsonl").read_text(encoding="utf-8").splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue  # a line malformed on purpose
        if isinstance(record, dict):
            written |= {
                v for k in ("opening_category", "closing_category") if isinstance(v := record.get(k), str)
            }
    assert {"Domestic Incident", "Stalking/Harassment", "Crime recorded"} <= written, (
        "the sample is too small"
    )
    assert written - set(StormPolicy().categories) == set()


# --- languages: a template folder per language, as complete as en/ ---------------------------------------


@pytest.fixture
def templates(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the template folders with a Welsh one as complete as the English one."""
    root = tmp_path / "templates"
    shutil.copytree(policy_module.TEMPLATE_ROOT, root)
    shutil.copytree(root / "en", root / "cy")
    monkeypatch.setattr(policy_module, "TEMPLATE_ROOT", root)
    return root


def _bilingual(tmp_path: Path) -> Path:
    path = tmp_path / "bilingual.json"
    path.write_text(json.dumps({"languages": ["en", "cy"], "default_language": "cy"}))
    return path


def test_a_language_with_every_template_is_accepted(tmp_path: Path, templates: Path) -> None:
    loaded = load_policy(_bilingual(tmp_path))
    assert loaded.languages == ["en", "cy"] and loaded.default_language == "cy"


def test_a_language_missing_one_template_is_refused_naming_it(tmp_path: Path, templates: Path) -> None:
    (templates / "cy" / "updates" / "checkin.sms.j2").unlink()
    with pytest.raises(
        PolicyError, match=r"field languages\.1: 'cy' has no template updates/checkin\.sms\.j2 in"
    ):
        load_policy(_bilingual(tmp_path))


def test_the_templates_a_language_needs_are_whatever_the_english_folder_holds(
    tmp_path: Path, templates: Path
) -> None:
    (templates / "en" / "updates" / "victim_right_to_review.email.j2").write_text("new", encoding="utf-8")
    with pytest.raises(PolicyError, match=r"'cy' has no template updates/victim_right_to_review\.email\.j2"):
        load_policy(_bilingual(tmp_path))


# --- the Azure start-up ------------------------------------------------------------------------------------


def test_building_the_azure_services_with_a_bad_policy_raises_policy_error_naming_the_field(
    tmp_path: Path,
) -> None:
    from shared.bootstrap import bootstrap
    from shared.settings import load_settings

    path = _policy_file(tmp_path, "deadlines", "timezone", "Europe/Lundon")
    settings = load_settings(LOCAL_DATA_DIR=tmp_path / "data", JOURNEY_POLICY_PATH=path)
    with pytest.raises(
        PolicyError, match=r"field deadlines\.timezone: 'Europe/Lundon' is not an IANA time zone"
    ):
        bootstrap(settings)
    assert not (tmp_path / "data").exists(), "nothing is opened before the policy is read"


def test_the_embedded_services_with_a_bad_policy_open_no_queue(tmp_path: Path) -> None:
    from shared.settings import load_settings
    from tests.builders import embedded

    path = _policy_file(tmp_path, "safeguarding", "excluded_flags", ["domestic_abuce"])
    settings = load_settings(LOCAL_DATA_DIR=tmp_path / "data", JOURNEY_POLICY_PATH=path)
    with pytest.raises(PolicyError, match=r"safeguarding\.excluded_flags\.0"):
        embedded(settings)
    assert not (tmp_path / "data" / "queues.db").exists()
