"""Settings and the journey policy fail at start-up naming what is wrong."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from shared.adapters.policy_file import DEFAULT_POLICY_PATH, load_policy
from shared.domain.policy import Policy, PolicyError
from shared.settings import SettingsError, load_settings


def test_shipped_policy_file_holds_the_defaults_of_rules_md() -> None:
    policy = load_policy()
    assert policy == Policy()
    assert policy.deadlines.working_days == 5 and policy.deadlines.enhanced_working_days == 1
    assert policy.timing.quiet_hours_start == 20 and policy.timing.quiet_hours_end == 8
    assert policy.timing.coalesce_minutes == 10
    assert "domestic_abuse" in policy.safeguarding.excluded_flags


def test_a_malformed_policy_fails_naming_the_bad_field(tmp_path: Path) -> None:
    data = json.loads(DEFAULT_POLICY_PATH.read_text())
    data["timing"]["quiet_hours_start"] = "late"
    bad = tmp_path / "policy.json"
    bad.write_text(json.dumps(data))
    with pytest.raises(PolicyError, match=r"timing\.quiet_hours_start"):
        load_policy(bad)


def test_an_unknown_policy_field_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "policy.json"
    bad.write_text(json.dumps({"deadlines": {"working_dayz": 3}}))
    with pytest.raises(PolicyError, match=r"deadlines\.working_dayz"):
        load_policy(bad)


def test_policy_that_is_not_json_says_so(tmp_path: Path) -> None:
    bad = tmp_path / "policy.json"
    bad.write_text("{nope")
    with pytest.raises(PolicyError, match="not valid JSON"):
        load_policy(bad)


def test_broken_json_is_said_as_for_every_file_we_read_where_it_breaks(tmp_path: Path) -> None:
    """The policy, the officer directory and a feed record name a JSON fault the same way (the
    parser's reason, without its dangling "at", then where)."""
    bad = tmp_path / "policy.json"
    bad.write_text('{\n  "timing": {"quiet_hours_start: 20}}')
    with pytest.raises(PolicyError) as failed:
        load_policy(bad)
    assert str(failed.value).endswith("is not valid JSON: Unterminated string starting at line 2, column 14")


def test_journey_policy_path_setting_overrides_the_shipped_policy(tmp_path: Path) -> None:
    custom = tmp_path / "scotland.json"
    custom.write_text(json.dumps({"deadlines": {"nation": "scotland"}}))
    settings = load_settings(JOURNEY_POLICY_PATH=custom)
    assert load_policy(settings.JOURNEY_POLICY_PATH).deadlines.nation == "scotland"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("NICHE_POLL_SCHEDULE", "every five minutes"),
        ("STORM_POLL_SCHEDULE", "*/5 * * * *"),
        ("FEED_BATCH_SIZE", "0"),
        ("CASE_CHANGES_QUEUE", "bad queue name"),
        ("OFFICER_CACHE_TTL_HOURS", "soon"),
    ],
)
def test_a_bad_setting_fails_at_start_up_naming_it(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError, match=name):
        load_settings()


def test_sample_local_settings_list_every_setting_the_code_reads() -> None:
    from shared.settings import Settings

    sample = json.loads((Path(__file__).parents[2] / "local.settings.sample.json").read_text())["Values"]
    assert set(Settings.model_fields) <= set(sample)
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    for name in Settings.model_fields:
        assert f"`{name}`" in readme, f"{name} is not documented in the README"


@pytest.mark.parametrize(
    ("settings", "named"),
    [
        (
            {"ServiceBusConnection": "Endpoint=sb://localhost;SharedAccessKeyName=a;SharedAccessKey=b"},
            "StateStorage",
        ),
        ({"ACS_ENDPOINT": "https://acs.example.communication.azure.com"}, "ACS_EMAIL_SENDER"),
        (
            {"ACS_CONNECTION_STRING": "endpoint=https://x/;accesskey=a", "ACS_EMAIL_SENDER": "a@b"},
            "ACS_SMS_SENDER",
        ),
        ({"GRAPH_TENANT_ID": "t", "GRAPH_CLIENT_ID": "c"}, "GRAPH_CLIENT_SECRET"),
        ({"GRAPH_CLIENT_SECRET": "s", "GRAPH_CLIENT_ID": "c"}, "GRAPH_TENANT_ID"),
        ({"NICHE_FEED_URL": "https://feeds.example.police.uk/niche", "FEED_AUTH": "api_key"}, "FEED_API_KEY"),
        ({"STORM_FEED_URL": "https://feeds.example.police.uk/storm"}, "FEED_TENANT_ID"),
        ({"NICHE_FEED_URL": "http://feeds.example.police.uk/niche"}, "NICHE_FEED_URL"),
        ({"FEED_AUTH": "password"}, "FEED_AUTH"),
    ],
)
def test_settings_that_need_each_other_fail_naming_the_missing_one(
    monkeypatch: pytest.MonkeyPatch, settings: dict[str, str], named: str
) -> None:
    for name, value in settings.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError, match=named):
        load_settings()


def test_each_port_gets_its_azure_adapter_when_its_settings_are_given(tmp_path: Path) -> None:
    from shared.adapters.acs import AcsProvider
    from shared.adapters.azure_tables import AzureTableStore
    from shared.adapters.graph_directory import GraphOfficerDirectory
    from shared.adapters.http_feed import HttpFeedReader
    from shared.adapters.jsonl_feed import JsonlFeedReader
    from shared.adapters.servicebus import ServiceBusPublisher
    from shared.bootstrap import bootstrap

    settings = load_settings(
        LOCAL_DATA_DIR=tmp_path,
        StateStorage="UseDevelopmentStorage=true",
        ServiceBusConnection="Endpoint=sb://localhost;SharedAccessKeyName=a;SharedAccessKey=b;UseDevelopmentEmulator=true;",
        ACS_CONNECTION_STRING="endpoint=https://acs.example.communication.azure.com/;accesskey=c2VjcmV0",
        ACS_EMAIL_SENDER="DoNotReply@example.police.uk",
        ACS_SMS_SENDER="HumbsPolice",
        GRAPH_TENANT_ID="tenant",
        GRAPH_CLIENT_ID="client",
        GRAPH_CLIENT_SECRET="secret",
        NICHE_FEED_URL="https://feeds.example.police.uk/niche",
        FEED_AUTH="api_key",
        FEED_API_KEY="key",
    )
    services = bootstrap(settings)
    assert isinstance(services.tables, AzureTableStore)
    assert isinstance(services.publisher, ServiceBusPublisher)
    assert isinstance(services.provider, AcsProvider)
    assert isinstance(services.directory, GraphOfficerDirectory)
    assert isinstance(services.feeds["niche"], HttpFeedReader)
    assert isinstance(services.feeds["storm"], JsonlFeedReader)  # no STORM_FEED_URL: the local file
    assert not (tmp_path / "state.db").exists() and not (tmp_path / "queues.db").exists()


def test_with_no_azure_setting_every_port_is_embedded(tmp_path: Path) -> None:
    from shared.adapters.file_outbox import FileOutbox
    from shared.adapters.json_directory import JsonOfficerDirectory
    from shared.adapters.sqlite_queue import SqliteQueueBroker
    from shared.adapters.sqlite_tables import SqliteTableStore
    from shared.bootstrap import bootstrap

    services = bootstrap(load_settings(LOCAL_DATA_DIR=tmp_path))
    assert isinstance(services.tables, SqliteTableStore)
    assert isinstance(services.publisher, SqliteQueueBroker)
    assert isinstance(services.provider, FileOutbox)
    assert isinstance(services.directory, JsonOfficerDirectory)


_KEY = "c2VjcmV0LWtleS12YWx1ZQ=="  # what a key looks like; it must never be repeated in an error


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("StateStorage", "nonsense"),
        ("StateStorage", f"AccountName=victims;Key={_KEY}"),
        ("StateStorage", f"AccountKey={_KEY}"),
        ("StateStorage", ";;"),
        ("ServiceBusConnection", f"Endpoint=https://bus.example/;SharedAccessKey={_KEY}"),
        ("ServiceBusConnection", "Endpoint=sb://bus.example/;SharedAccessKeyName=RootManageSharedAccessKey"),
        ("ServiceBusConnection", f"Endpoint=sb://bus.example/;SharedAccessKey={_KEY}"),
        ("ACS_CONNECTION_STRING", f"endpoint=http://acs.example/;accesskey={_KEY}"),
        ("ACS_CONNECTION_STRING", "accesskey"),
    ],
)
def test_a_malformed_connection_string_fails_naming_its_setting_and_never_repeating_it(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    for other in ("StateStorage", "ServiceBusConnection", "ACS_CONNECTION_STRING", "ACS_ENDPOINT"):
        monkeypatch.delenv(other, raising=False)
    monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError) as failed:
        load_settings()
    message = str(failed.value)
    assert message.startswith(f"app setting {name} is invalid: is not ")
    assert _KEY not in message and "Value error" not in message


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("StateStorage", "UseDevelopmentStorage=true"),
        (
            "StateStorage",
            f"DefaultEndpointsProtocol=https;AccountName=victims;AccountKey={_KEY};EndpointSuffix=core.windows.net",
        ),
        (
            "StateStorage",
            "TableEndpoint=https://victims.table.core.windows.net/;BlobEndpoint=https://victims.blob.core"
            ".windows.net/;SharedAccessSignature=sv=2024-11-04&ss=bt&sig=abc%3D",
        ),
        (
            "ServiceBusConnection",
            "Endpoint=sb://localhost;SharedAccessKeyName=RootManageSharedAccessKey;SharedAccessKey=SAS_KEY_VALUE;"
            "UseDevelopmentEmulator=true;",
        ),
        ("ACS_CONNECTION_STRING", f"endpoint=https://acs.communication.azure.com/;accesskey={_KEY}"),
    ],
)
def test_the_connection_strings_azure_and_the_emulators_give_are_accepted(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    for other in ("StateStorage", "ServiceBusConnection", "ACS_CONNECTION_STRING", "ACS_ENDPOINT"):
        monkeypatch.delenv(other, raising=False)
    overrides: dict[str, str] = {name: value}
    if name == "ServiceBusConnection":
        overrides["StateStorage"] = "UseDevelopmentStorage=true"
    if name == "ACS_CONNECTION_STRING":
        overrides |= {"ACS_EMAIL_SENDER": "DoNotReply@example.police.uk", "ACS_SMS_SENDER": "+447700900000"}
    assert getattr(load_settings(**overrides), name) == value
