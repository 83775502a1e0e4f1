"""The Bicep deployment (infra/bicep) against the code that runs on it.

Every .bicep file parses, checkov passes with every skip explained in one file, and
the deployment gives the code what it reads: every app setting of the settings model,
the queues with the sessions the triggers expect, the state tables, and a role for
every data-plane access, with nothing more.

The IaC tools (pycep-parser, checkov) live in their own virtual environment,
.venv-iac, built from requirements-iac.txt so that their pins cannot clash with the
app's; `make test` creates it. These tests call the tools in it by path, and fail
(not skip) when it is missing. The Bicep is read through pycep's JSON, not regexes:
the parser is the one checkov scans with, so a file that parses here is a file
checkov really checked.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

import function_app
from shared.adapters.policy_file import load_policy
from shared.adapters.table_layout import ALL_TABLES
from shared.contracts.feeds import Preferences
from shared.domain.policy import LINK_ID_LENGTH, SMS_LINK_MAX
from shared.local.host import functions_of
from shared.settings import Settings
from shared.web import rate_limit
from shared.web.assets import STYLESHEET

ROOT = Path(__file__).resolve().parents[2]
BICEP = ROOT / "infra" / "bicep"
MODULES = BICEP / "modules"
CHECKOV_CONFIG = BICEP / ".checkov.yaml"
IAC_VENV = ROOT / ".venv-iac"
IAC_PYTHON = IAC_VENV / "bin" / "python"
CHECKOV = IAC_VENV / "bin" / "checkov"
PARSE_TOOL = BICEP / "tools" / "bicep_json.py"

# One module per concern.
EXPECTED_MODULES = {
    "identity",
    "monitoring",
    "storage",
    "servicebus",
    "keyvault",
    "communication",
    "network",
    "private-endpoints",
    "roles",
    "functionapp",
    "workbook",
    "alerts",
    "eventgrid",
    "pagedomain",
    "policy-definition",
    "policy-assignment",
}

# Settings the code reads that the deployment deliberately does not set, and why.
NOT_SET_IN_AZURE = {
    "LOCAL_DATA_DIR": "embedded default only (SQLite state and queues, file outbox); Azure uses services",
    "LOCAL_FEEDS_DIR": "embedded default only (JSON Lines feeds); Azure reads NICHE_FEED_URL/STORM_FEED_URL",
    "LOCAL_OFFICERS_FILE": "embedded default only (JSON directory); Azure reads Graph",
    "StateStorage": "a connection string carries the account key, and shared keys are off; "
    "StateStorage__tableServiceUri with the managed identity is used instead",
    "ServiceBusConnection": "a connection string carries a SAS key, and local auth is off; "
    "ServiceBusConnection__fullyQualifiedNamespace with the managed identity is used instead",
    "ACS_CONNECTION_STRING": "a connection string carries the access key, and local auth is off; "
    "ACS_ENDPOINT with the managed identity is used instead",
}
# STATE_TABLE_PREFIX is set (parameter stateTablePrefix): it is a real Azure option, to
# let several deployments share one account, and the tables the Bicep creates carry it.

# Settings the deployment sets ahead of the code that reads them, and that code. Each entry stops
# mattering once shared/settings.py has the setting (test_bicep_sets_every_setting_the_code_reads
# then holds it to the model like any other).

# Settings the Functions host (or the Azure SDK) reads rather than the settings model.
HOST_SETTING_PREFIXES = ("AzureWebJobs", "APPLICATIONINSIGHTS_", "FUNCTIONS_", "WEBSITE_")
HOST_SETTINGS = {
    "AZURE_CLIENT_ID": "DefaultAzureCredential (tables, Service Bus publisher, ACS) picks the user-assigned identity",
    "PYTHON_ENABLE_OPENTELEMETRY": "the Python worker: OpenTelemetry on, each invocation's trace context current",
}

# App settings Flex Consumption rejects or ignores (their job moved to functionAppConfig).
FLEX_FORBIDDEN = {
    "FUNCTIONS_WORKER_RUNTIME",
    "FUNCTIONS_EXTENSION_VERSION",
    "FUNCTIONS_WORKER_RUNTIME_VERSION",
    "WEBSITE_RUN_FROM_PACKAGE",
    "WEBSITE_CONTENTSHARE",
    "WEBSITE_CONTENTAZUREFILECONNECTIONSTRING",
    "WEBSITE_NODE_DEFAULT_VERSION",
    "WEBSITE_TIME_ZONE",
    "SCM_DO_BUILD_DURING_DEPLOYMENT",
    "ENABLE_ORYX_BUILD",
    "AzureWebJobsStorage",  # the key-based connection string; identity-based settings only
}

SECRET_SETTINGS = {"GRAPH_CLIENT_SECRET", "FEED_CLIENT_SECRET", "FEED_API_KEY", "PAGE_SIGNING_KEY"}

# Built-in role definition GUIDs (learn.microsoft.com, Azure built-in roles).
ROLE = {
    "Storage Table Data Contributor": "0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3",
    "Storage Blob Data Owner": "b7e6dc6d-f1e8-4753-8033-0f276bb0955b",
    "Storage Blob Data Contributor": "ba92f5b4-2d11-453d-a403-e96b0029c9fe",
    "Azure Service Bus Data Sender": "69a216fc-b8fb-44d8-bc22-1f3c2cd27a39",
    "Azure Service Bus Data Receiver": "4f6d3b9b-027b-4f4c-9142-0e5a2a2247e0",
    "Key Vault Secrets User": "4633458b-17de-408a-b874-0445c86b69e6",
    "Monitoring Metrics Publisher": "3913510d-42f4-4e42-8a64-420c390055eb",
    "Communication and Email Service Owner": "09976791-48a7-449e-bb21-39d1a415f350",
}
STORAGE = "Microsoft.Storage/storageAccounts"
CONTAINER = "Microsoft.Storage/storageAccounts/blobServices/containers"
QUARANTINE_CONTAINER = "quarantined-records"  # feed records too large for a Table Storage row
SERVICE_BUS = "Microsoft.ServiceBus/namespaces"
KEY_VAULT = "Microsoft.KeyVault/vaults"
APP_INSIGHTS = "Microsoft.Insights/components"
ACS = "Microsoft.Communication/communicationServices"

# Resource types that support diagnostic settings, each of which must send them to the workspace.
DIAGNOSABLE = {
    "Microsoft.Web/sites",
    STORAGE,
    "Microsoft.Storage/storageAccounts/blobServices",
    "Microsoft.Storage/storageAccounts/tableServices",
    "Microsoft.Storage/storageAccounts/queueServices",
    SERVICE_BUS,
    KEY_VAULT,
    ACS,
    "Microsoft.Network/networkSecurityGroups",
}


# --- the IaC tools -------------------------------------------------------------------


def _require(tool: Path) -> None:
    if not tool.exists():
        pytest.fail(
            f"{tool.relative_to(ROOT)} is missing: run `make test`, which creates .venv-iac "
            "from requirements-iac.txt (pycep-parser and checkov, kept apart from the app's packages)",
            pytrace=False,
        )


def _bicep_files() -> list[Path]:
    return sorted(BICEP.rglob("*.bicep"))


@cache
def _parse_all() -> dict[str, Any]:
    _require(IAC_PYTHON)
    names = [str(path.relative_to(ROOT)) for path in _bicep_files()]
    done = subprocess.run(
        [str(IAC_PYTHON), str(PARSE_TOOL), *names],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if not done.stdout:
        pytest.fail(f"the Bicep parser produced nothing:\n{done.stderr[-3000:]}", pytrace=False)
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def bicep(name: str) -> dict[str, Any]:
    """The pycep JSON of main.bicep or a module ('main', 'storage', ...)."""
    path = BICEP / "main.bicep" if name == "main" else MODULES / f"{name}.bicep"
    parsed = _parse_all()
    key = str(path.relative_to(ROOT))
    if key not in parsed["files"]:
        pytest.fail(f"{key} did not parse: {parsed['errors'].get(key, 'missing')}", pytrace=False)
    document: dict[str, Any] = parsed["files"][key]
    return document


def body(resource: dict[str, Any]) -> dict[str, Any]:
    """A resource's (or module's) own configuration, under any loop or condition."""
    config: dict[str, Any] = resource["config"]
    while "config" in config and ("condition" in config or "loop_type" in config):
        config = config["config"]
    return config


def resources_of(document: dict[str, Any], type_: str) -> dict[str, dict[str, Any]]:
    return {
        name: resource
        for name, resource in (document.get("resources") or {}).items()
        if resource["type"] == type_ and not resource["existing"]
    }


def leaves(value: Any) -> Iterator[Any]:
    """Every scalar in a pycep expression tree (identifiers and literals alike)."""
    if isinstance(value, dict):
        for item in value.values():
            yield from leaves(item)
    elif isinstance(value, list):
        for item in value:
            yield from leaves(item)
    else:
        yield value


def default(document: dict[str, Any], param: str) -> Any:
    return document["parameters"][param]["default"]


def app_settings() -> dict[str, Any]:
    return bicep("functionapp")["variables"]["appSettings"]["value"]  # type: ignore[no-any-return]


def triggers() -> dict[str, dict[str, Any]]:
    """Each function's trigger binding, as the Functions host indexes it."""
    return {f.get_function_name(): f.get_trigger().get_dict_repr() for f in functions_of(function_app.app)}


def service_bus_connection() -> str:
    connections = {t["connection"] for t in triggers().values() if t["type"] == "serviceBusTrigger"}
    assert len(connections) == 1, connections
    return connections.pop()


def camel(setting: str) -> str:
    first, *rest = setting.lower().split("_")
    return first + "".join(word.capitalize() for word in rest)


# --- parsing and checkov -----------------------------------------------------------------


def test_every_bicep_file_parses() -> None:
    parsed = _parse_all()
    assert parsed["errors"] == {}
    assert sorted(parsed["files"]) == [str(path.relative_to(ROOT)) for path in _bicep_files()]
    assert {path.stem for path in MODULES.glob("*.bicep")} == EXPECTED_MODULES


def test_main_uses_every_module() -> None:
    used = {module["detail"]["path"] for module in bicep("main")["modules"].values()}
    assert used == {f"modules/{name}.bicep" for name in EXPECTED_MODULES}


def test_checkov_passes() -> None:
    _require(CHECKOV)
    done = subprocess.run(
        [str(CHECKOV), "--config-file", str(CHECKOV_CONFIG), "-d", str(BICEP), "-o", "json"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    try:
        report = json.loads(done.stdout)
    except json.JSONDecodeError:
        pytest.fail(f"checkov failed to run:\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}", pytrace=False)
    reports = report if isinstance(report, list) else [report]
    failed = [
        f"{check['check_id']} {check['resource']} ({check['file_path']}): {check['check_name']}"
        for one in reports
        for check in one.get("results", {}).get("failed_checks", [])
    ]
    assert failed == [], "checkov failed:\n" + "\n".join(failed)
    summary = reports[0]["summary"]
    assert summary["parsing_errors"] == 0
    assert summary["passed"] > 0 and summary["resource_count"] > 0
    assert done.returncode == 0


def test_every_skipped_check_is_in_one_file_with_its_reason() -> None:
    lines = CHECKOV_CONFIG.read_text(encoding="utf-8").splitlines()
    start = lines.index("skip-check:")
    skips = [line for line in lines[start + 1 :] if line.startswith("  - ")]
    assert skips, "no skip-check entries"
    for line in skips:
        match = re.fullmatch(r"  - (CKV2?_[A-Z]+_\d+) +# (.+)", line)
        assert match, f"skip without an id and a reason: {line!r}"
        assert len(match.group(2)) >= 40, f"give a real reason for {match.group(1)}"
    for path in _bicep_files():
        assert "checkov:skip" not in path.read_text(encoding="utf-8"), f"inline skip in {path.name}"


# --- app settings ---------------------------------------------------------------------


def test_the_app_settings_variable_is_what_the_site_gets() -> None:
    site = body(resources_of(bicep("functionapp"), "Microsoft.Web/sites")["site"])
    settings = site["properties"]["siteConfig"]["appSettings"]
    assert settings["loop_type"]["detail"]["object_name"] == "appSettings"


def test_bicep_sets_every_setting_the_code_reads() -> None:
    wanted = set(Settings.model_fields) - set(NOT_SET_IN_AZURE)
    missing = sorted(wanted - set(app_settings()))
    assert missing == [], f"read by shared/settings.py but not set by functionapp.bicep: {missing}"


def test_bicep_sets_no_setting_nobody_reads() -> None:
    connection = service_bus_connection()
    host = set(HOST_SETTINGS) | {f"{connection}__credential", f"{connection}__clientId"}
    unknown = sorted(
        name
        for name in app_settings()
        if name not in Settings.model_fields
        and name not in host
        and not name.startswith(HOST_SETTING_PREFIXES)
    )
    assert unknown == [], f"set by functionapp.bicep but read by neither the code nor the host: {unknown}"


def test_exempted_and_flex_forbidden_settings_are_not_set() -> None:
    present = set(app_settings())
    assert present & set(NOT_SET_IN_AZURE) == set(), "connection strings and local paths stay out of Azure"
    assert present & FLEX_FORBIDDEN == set(), "Flex Consumption takes these from functionAppConfig"
    assert set(NOT_SET_IN_AZURE) <= set(Settings.model_fields), (
        "the exemption list names a setting that is gone"
    )


def test_binding_expressions_resolve_from_app_settings() -> None:
    """The host resolves %NAME% from app settings only: the model's defaults do not help it."""
    names = {
        match
        for trigger in triggers().values()
        for value in trigger.values()
        if isinstance(value, str)
        for match in re.findall(r"%(\w+)%", value)
    }
    assert names, "no %NAME% binding expressions found"
    settings = app_settings()
    for name in names:
        assert settings.get(name) not in (None, ""), f"{name} must be set for the trigger bindings"


def test_connections_use_the_user_assigned_identity() -> None:
    settings = app_settings()
    connection = service_bus_connection()
    identity = settings["AZURE_CLIENT_ID"]
    assert identity == "identityClientId"
    for prefix in ("AzureWebJobsStorage", connection):
        assert settings[f"{prefix}__credential"] == "managedidentity"
        assert settings[f"{prefix}__clientId"] == identity
    assert settings["AzureWebJobsStorage__accountName"] == "storageAccountName"
    assert settings[f"{connection}__fullyQualifiedNamespace"] == "serviceBusFullyQualifiedNamespace"
    assert settings["StateStorage__tableServiceUri"] == "tableEndpoint"
    assert settings["StateStorage__blobServiceUri"] == "blobEndpoint"
    assert (
        settings["APPLICATIONINSIGHTS_AUTHENTICATION_STRING"]
        == "ClientId=${identityClientId};Authorization=AAD"
    )
    assert settings["GRAPH_MANAGED_IDENTITY_CLIENT_ID"]["operator"]["operands"]["true_value"] == identity


def test_secrets_are_key_vault_references_resolved_by_the_identity() -> None:
    settings = app_settings()
    for name in SECRET_SETTINGS:
        values = [leaf for leaf in leaves(settings[name]) if isinstance(leaf, str) and "${" in leaf]
        assert values, f"{name} is not a Key Vault reference"
        for value in values:
            assert re.fullmatch(
                r"@Microsoft\.KeyVault\(VaultName=\$\{keyVaultName\};SecretName=\$\{\w+\}\)", value
            )
    site = body(resources_of(bicep("functionapp"), "Microsoft.Web/sites")["site"])
    assert site["identity"]["type"] == "UserAssigned"
    assert site["properties"]["keyVaultReferenceIdentity"] == "identityId"


# --- queues -----------------------------------------------------------------------------


def queue_table() -> list[dict[str, Any]]:
    return bicep("servicebus")["variables"]["queues"]["value"]  # type: ignore[no-any-return]


def test_every_queue_the_code_uses_exists_with_its_sessions() -> None:
    queues = {queue["setting"]: queue for queue in queue_table()}
    queue_settings = {name for name in Settings.model_fields if name.endswith("_QUEUE")}
    assert set(queues) == queue_settings
    for name in queue_settings:
        assert queues[name]["name"] == Settings.model_fields[name].default, name
    seen = set()
    for function, trigger in triggers().items():
        if trigger["type"] != "serviceBusTrigger":
            continue
        setting = re.fullmatch(r"%(\w+)%", trigger["queueName"]).group(1)  # type: ignore[union-attr]
        seen.add(setting)
        sessions = bool(trigger.get("isSessionsEnabled", False))
        assert queues[setting]["requiresSession"] is sessions, f"{function}: sessions differ from the trigger"
    assert seen == queue_settings


def test_queues_have_duplicate_detection_and_dead_lettering() -> None:
    document = bicep("servicebus")
    (queue,) = resources_of(document, "Microsoft.ServiceBus/namespaces/queues").values()
    assert queue["config"]["loop_type"]["detail"]["array_name"] == "queues"
    properties = body(queue)["properties"]
    assert properties["requiresSession"]["operator"]["operands"]["operand_2"] == "requiresSession"
    assert properties["requiresDuplicateDetection"] is True
    assert properties["duplicateDetectionHistoryTimeWindow"] == "duplicateDetectionWindow"
    assert properties["deadLetteringOnMessageExpiration"] is True
    assert properties["maxDeliveryCount"] == "maxDeliveryCount"
    assert properties["lockDuration"] == "lockDuration"
    main = bicep("main")
    assert default(main, "maxDeliveryCount") == Settings.model_fields["SERVICEBUS_MAX_DELIVERY_COUNT"].default
    assert default(main, "duplicateDetectionWindow") == "PT1H"
    assert default(main, "lockDuration") == "PT1M"
    ttl = re.fullmatch(r"P(\d+)D", default(main, "messageTimeToLive"))
    longest_check_in = max(
        m.le for m in Preferences.model_fields["frequency_days"].metadata if hasattr(m, "le")
    )
    assert ttl and int(ttl.group(1)) > longest_check_in, (
        "a scheduled check-in must not expire before it is due"
    )
    (namespace,) = resources_of(document, SERVICE_BUS).values()
    assert body(namespace)["properties"]["disableLocalAuth"] is True
    assert body(namespace)["properties"]["minimumTlsVersion"] == "1.2"


def test_queue_name_settings_come_from_the_queues_created() -> None:
    outputs = bicep("servicebus")["outputs"]
    names = [queue["setting"] for queue in queue_table()]
    function_app_params = body(bicep("main")["modules"]["functionApp"])["params"]
    for index, setting in enumerate(names):
        output = outputs[camel(setting)]["value"]["operator"]
        assert output["type"] == "property_accessor"
        assert output["operands"]["operand_1"]["operator"]["operands"]["operand_2"] == index
        assert app_settings()[setting] == camel(setting)
        assert {"serviceBus", camel(setting)} <= set(leaves(function_app_params[camel(setting)]))


def test_private_networking_forces_premium_service_bus() -> None:
    main = bicep("main")
    tier = main["variables"]["serviceBusTier"]["value"]["operator"]
    assert tier["type"] == "conditional"
    assert tier["operands"] == {
        "condition": "privateNetworking",
        "true_value": "Premium",
        "false_value": "serviceBusSku",
    }
    assert body(main["modules"]["serviceBus"])["params"]["skuName"] == "serviceBusTier"
    for name in ("network", "privateEndpoints"):
        assert main["modules"][name]["config"]["condition"] == "privateNetworking"
    (endpoint,) = resources_of(bicep("private-endpoints"), "Microsoft.Network/privateEndpoints").values()
    assert endpoint["config"]["loop_type"]["detail"]["array_name"] == "endpoints"
    groups = {entry["groupId"] for entry in bicep("private-endpoints")["variables"]["endpoints"]["value"]}
    assert groups == {"blob", "table", "queue", "namespace", "vault", "azuremonitor"}


# --- tables -----------------------------------------------------------------------------


def tables_the_code_uses() -> set[str]:
    """Every table the deployed code reads or writes: the state tables of the table layout, and
    the victim's page's rate-limit counters, which the web framework names itself (it depends on
    the TableStore port only, not on the adapters' layout)."""
    return {*ALL_TABLES, rate_limit.TABLE}


def test_the_state_tables_are_created_with_the_prefix() -> None:
    document = bicep("storage")
    created = document["variables"]["stateTables"]["value"]
    assert len(created) == len(set(created)), "a table is listed twice"
    assert set(created) == tables_the_code_uses()
    assert {"Links", "PageUse"} <= set(created)  # the victim's page's tables
    (tables,) = resources_of(document, "Microsoft.Storage/storageAccounts/tableServices/tables").values()
    assert tables["config"]["loop_type"]["detail"]["array_name"] == "stateTables"
    assert body(tables)["name"] == "${stateTablePrefix}${table}"
    main = bicep("main")
    assert body(main["modules"]["storage"])["params"]["stateTablePrefix"] == "stateTablePrefix"
    assert body(main["modules"]["functionApp"])["params"]["stateTablePrefix"] == "stateTablePrefix"
    assert app_settings()["STATE_TABLE_PREFIX"] == "stateTablePrefix"


def test_storage_is_identity_only() -> None:
    (account,) = resources_of(bicep("storage"), STORAGE).values()
    properties = body(account)["properties"]
    assert properties["allowSharedKeyAccess"] is False
    assert properties["allowBlobPublicAccess"] is False
    assert properties["minimumTlsVersion"] == "TLS1_2"
    assert properties["publicNetworkAccess"] == "publicNetworkAccess"
    (blob,) = resources_of(bicep("storage"), "Microsoft.Storage/storageAccounts/blobServices").values()
    assert body(blob)["properties"]["deleteRetentionPolicy"]["enabled"] is True
    assert default(bicep("main"), "storageSku") == "Standard_GZRS"


def test_the_quarantined_records_container_is_private_in_the_state_account() -> None:
    document = bicep("storage")
    containers = {
        body(r)["name"]: r
        for r in resources_of(document, CONTAINER).values()
        if "loop_type" not in r["config"]
    }
    assert containers["quarantineContainerName"]["config"].get("condition") is None, "always created"
    container = body(containers["quarantineContainerName"])
    assert container["properties"] == {"publicAccess": "None"}
    (blob_service,) = resources_of(document, "Microsoft.Storage/storageAccounts/blobServices")
    (account,) = resources_of(document, STORAGE)
    assert container["parent"] == blob_service
    assert body(document["resources"][blob_service])["parent"] == account, "the account of the state tables"
    outputs = document["outputs"]
    assert chain(outputs["quarantineContainerName"]["value"])[-1] == "name"
    assert chain(outputs["blobEndpoint"]["value"]) == [account, "properties", "primaryEndpoints", "blob"]

    main = bicep("main")
    assert main["variables"]["names"]["value"]["quarantineContainer"] == QUARANTINE_CONTAINER
    storage = body(main["modules"]["storage"])["params"]
    assert chain(storage["quarantineContainerName"]) == ["names", "quarantineContainer"]
    function_app = body(main["modules"]["functionApp"])["params"]
    assert chain(function_app["blobEndpoint"]) == ["storage", "outputs", "blobEndpoint"]
    assert chain(function_app["tableEndpoint"]) == ["storage", "outputs", "tableEndpoint"]
    roles = body(main["modules"]["roles"])["params"]
    assert chain(roles["quarantineContainerName"]) == ["storage", "outputs", "quarantineContainerName"]


def test_the_app_reaches_the_quarantined_records_with_a_role_on_their_container_only() -> None:
    document = bicep("roles")
    (name,) = [
        name
        for name, resource in resources_of(document, "Microsoft.Authorization/roleAssignments").items()
        if body(resource)["scope"] == "quarantineContainer"
    ]
    config = body(document["resources"][name])
    role = config["properties"]["roleDefinitionId"]["function"]["parameters"]["resource_name_1"]
    assert document["variables"]["roles"]["value"][chain(role)[1]] == ROLE["Storage Blob Data Contributor"]
    container = document["resources"]["quarantineContainer"]
    assert container["existing"] and container["type"] == CONTAINER
    assert body(container) == {"parent": "blobService", "name": "quarantineContainerName"}
    assert body(document["resources"]["blobService"])["parent"] == "storage"
    # No other blob role reaches these records: none on the account, none through a loop.
    blob_roles = {ROLE["Storage Blob Data Owner"], ROLE["Storage Blob Data Contributor"]}
    for role_id, scope_type, scope_name in role_assignments():
        if role_id in blob_roles:
            assert scope_type == CONTAINER, f"a blob role on {scope_type} {scope_name}"


# --- role assignments ---------------------------------------------------------------


def existing_scopes(document: dict[str, Any]) -> dict[str, tuple[str, str]]:
    """Each `existing` resource of a document: (type, what names it), the name being the
    parameter naming it, or the array a loop of them runs over."""
    scopes = {}
    for name, resource in document["resources"].items():
        if not resource["existing"]:
            continue
        config = resource["config"]
        if "loop_type" in config:
            scopes[name] = (resource["type"], config["loop_type"]["detail"]["array_name"])
        else:
            scopes[name] = (resource["type"], body(resource)["name"])
    return scopes


def role_assignments() -> set[tuple[str, str, str]]:
    """(role, scope resource type, scope name) of every assignment in roles.bicep; the role is a
    built-in role's GUID, or 'custom:<symbolic name>' for a role definition made in roles.bicep."""
    document = bicep("roles")
    roles = document["variables"]["roles"]["value"]
    existing = existing_scopes(document)
    assigned = set()
    for name, resource in resources_of(document, "Microsoft.Authorization/roleAssignments").items():
        assert resource["config"].get("condition") is None, (
            f"{name}: an access the code makes is always granted"
        )
        config = body(resource)
        assert config["properties"]["principalId"] == "principalId"
        assert config["properties"]["principalType"] == "ServicePrincipal"
        assert config["name"]["function"]["type"] == "guid"
        role_id = config["properties"]["roleDefinitionId"]["function"]
        assert role_id["type"] == "subscription_resource_id"
        owner, key = chain(role_id["parameters"]["resource_name_1"])
        if owner == "roles":
            role = roles[key]
        else:
            assert key == "name"
            assert document["resources"][owner]["type"] == "Microsoft.Authorization/roleDefinitions"
            role = f"custom:{owner}"
        scope = config["scope"]
        if isinstance(scope, dict):  # hostContainer[i]: one assignment per container of a loop
            scope = scope["operator"]["operands"]["operand_1"]
        assigned.add((role, *existing[scope]))
    return assigned


def needed_roles() -> set[tuple[str, str, str]]:
    """The data-plane accesses the deployed code and host make, read off the app settings."""
    settings = app_settings()
    connection = service_bus_connection()
    account = (STORAGE, "storageAccountName")
    needed = set()
    if "StateStorage__tableServiceUri" in settings:
        needed.add((ROLE["Storage Table Data Contributor"], *account))
    if "AzureWebJobsStorage__accountName" in settings:  # host storage: its own containers
        needed.add((ROLE["Storage Blob Data Owner"], CONTAINER, "hostContainerNames"))
        needed.add(("custom:hostStorageListerRole", *account))  # it lists containers at start-up
    site = body(resources_of(bicep("functionapp"), "Microsoft.Web/sites")["site"])
    if site["properties"]["functionAppConfig"]["deployment"]["storage"]["authentication"]:
        needed.add((ROLE["Storage Blob Data Contributor"], CONTAINER, "deploymentContainerName"))
    if "StateStorage__blobServiceUri" in settings:  # the quarantined records: their container only
        needed.add((ROLE["Storage Blob Data Contributor"], CONTAINER, "quarantineContainerName"))
    if f"{connection}__fullyQualifiedNamespace" in settings:  # triggers receive, steps send
        needed.add((ROLE["Azure Service Bus Data Sender"], SERVICE_BUS, "serviceBusNamespaceName"))
        needed.add((ROLE["Azure Service Bus Data Receiver"], SERVICE_BUS, "serviceBusNamespaceName"))
    if any(isinstance(leaf, str) and leaf.startswith("@Microsoft.KeyVault(") for leaf in leaves(settings)):
        needed.add((ROLE["Key Vault Secrets User"], KEY_VAULT, "keyVaultName"))
    if "ACS_ENDPOINT" in settings:
        needed.add(("custom:communicationSenderRole", ACS, "communicationServiceName"))
    if "APPLICATIONINSIGHTS_AUTHENTICATION_STRING" in settings:
        needed.add((ROLE["Monitoring Metrics Publisher"], APP_INSIGHTS, "appInsightsName"))
    return needed


def test_every_data_plane_access_has_its_role_and_no_more() -> None:
    assigned, needed = role_assignments(), needed_roles()
    names = {guid: name for name, guid in ROLE.items()}
    assert needed - assigned == set(), f"missing: {[(names.get(r, r), *s) for r, *s in needed - assigned]}"
    assert assigned - needed == set(), f"not needed by the code: {assigned - needed}"


def test_roles_go_to_the_function_identity() -> None:
    params = body(bicep("main")["modules"]["roles"])["params"]
    assert {"identity", "principalId"} <= set(leaves(params["principalId"]))
    assert "roles" in bicep("main")["modules"]["functionApp"]["config"]["dependsOn"]


def test_local_auth_is_off_where_the_identity_is_used() -> None:
    (insights,) = resources_of(bicep("monitoring"), APP_INSIGHTS).values()
    assert body(insights)["properties"]["DisableLocalAuth"] is True
    assert body(insights)["properties"]["WorkspaceResourceId"] != ""
    (acs,) = resources_of(bicep("communication"), ACS).values()
    assert body(acs)["properties"]["disableLocalAuth"] is True


# --- Key Vault --------------------------------------------------------------------------


def test_key_vault_is_rbac_with_purge_protection_and_optional_secrets() -> None:
    document = bicep("keyvault")
    (vault,) = resources_of(document, KEY_VAULT).values()
    properties = body(vault)["properties"]
    assert properties["enableRbacAuthorization"] is True
    assert properties["enablePurgeProtection"] is True
    assert properties["enableSoftDelete"] is True
    secrets = resources_of(document, "Microsoft.KeyVault/vaults/secrets")
    assert len(secrets) == len(SECRET_SETTINGS)
    for name, secret in secrets.items():
        condition = secret["config"]["condition"]["operator"]
        assert condition["type"] == "not", f"{name} must be created only when its value is given"
        value_param = body(secret)["properties"]["value"]
        assert document["parameters"][value_param]["decorators"][-1]["type"] == "secure"
        assert body(secret)["properties"]["contentType"]
        assert body(secret)["properties"]["attributes"]["exp"] == "secretExpiry"
    main = bicep("main")
    secure = [
        name for name, p in main["parameters"].items() if any(d["type"] == "secure" for d in p["decorators"])
    ]
    assert sorted(secure) == ["feedApiKey", "feedClientSecret", "graphClientSecret", "pageSigningKey"]
    for name in secure:
        assert default(main, name) == "", f"{name}: secret values never have a default"


# --- the victim's page ----------------------------------------------------------------------


def chain(value: Any) -> list[Any]:
    """`a.b.c` as ['a', 'b', 'c'] (pycep nests a property accessor to the right)."""
    if not isinstance(value, dict) or value.get("operator", {}).get("type") != "property_accessor":
        return [value]
    operands = value["operator"]["operands"]
    return [operands["operand_1"], *chain(operands["operand_2"])]


def decorator(parameter: dict[str, Any], type_: str) -> Any:
    (found,) = [d["argument"] for d in parameter["decorators"] if d["type"] == type_]
    return found


def test_the_page_signing_key_is_a_key_vault_secret_the_setting_refers_to() -> None:
    vault = bicep("keyvault")
    assert vault["variables"]["secretNames"]["value"]["pageSigningKey"] == "page-signing-key"
    (secret,) = [
        s
        for s in resources_of(vault, "Microsoft.KeyVault/vaults/secrets").values()
        if body(s)["properties"]["value"] == "pageSigningKey"
    ]
    assert chain(body(secret)["name"]) == ["secretNames", "pageSigningKey"]
    assert body(secret)["properties"]["attributes"]["exp"] == "secretExpiry"
    assert app_settings()["PAGE_SIGNING_KEY"] == (
        "@Microsoft.KeyVault(VaultName=${keyVaultName};SecretName=${pageSigningKeyName})"
    )
    main = bicep("main")
    assert default(main, "pageSigningKey") == "", "the operator passes it (openssl rand -hex 32)"
    assert body(main["modules"]["keyVault"])["params"]["pageSigningKey"] == "pageSigningKey"
    given = body(main["modules"]["functionApp"])["params"]["pageSigningKeyName"]
    assert chain(given) == ["keyVault", "outputs", "pageSigningKeyName"]
    assert chain(vault["outputs"]["pageSigningKeyName"]["value"]) == ["secretNames", "pageSigningKey"]


def test_the_assets_setting_is_the_folder_the_package_must_carry() -> None:
    folder = app_settings()["WEB_ASSETS_DIR"]
    assert folder == str(Settings.model_fields["WEB_ASSETS_DIR"].default)
    assert (ROOT / folder / STYLESHEET).is_file(), "npm ci puts GOV.UK Frontend there"
    assert f"`{folder}`" in (BICEP / "README.md").read_text(encoding="utf-8"), "say what to package"


def longest_page_host() -> int:
    """The longest host name a link base may have: https://<host>/<id> fits in SMS_LINK_MAX."""
    return SMS_LINK_MAX - 1 - LINK_ID_LENGTH - len("https://")


def test_the_custom_domain_is_deployed_only_when_a_host_name_is_given() -> None:
    main = bicep("main")
    parameter = main["parameters"]["victimPageHostName"]
    assert parameter["default"] == ""
    assert decorator(parameter, "max_length") == longest_page_host()
    assert default(main, "victimPageCertificate") is False
    module = main["modules"]["pageDomain"]
    condition = module["config"]["condition"]["operator"]
    assert condition["type"] == "not"
    assert condition["operands"]["bool_value"]["function"] == {
        "type": "empty",
        "parameters": {"item_to_test": "victimPageHostName"},
    }
    params = body(module)["params"]
    assert chain(params["functionAppName"]) == ["functionApp", "outputs", "name"]
    assert params["hostName"] == "victimPageHostName"
    assert params["issueCertificate"] == "victimPageCertificate"
    outputs = main["outputs"]
    assert chain(outputs["functionAppCustomDomainVerificationId"]["value"]) == [
        "functionApp",
        "outputs",
        "customDomainVerificationId",
    ]
    base = outputs["victimPageLinkBaseUrl"]["value"]["operator"]["operands"]
    assert base["false_value"] == "https://${victimPageHostName}"
    site_output = bicep("functionapp")["outputs"]["customDomainVerificationId"]["value"]
    assert chain(site_output) == ["site", "properties", "customDomainVerificationId"]


def test_the_host_name_is_bound_then_given_a_managed_certificate_with_sni() -> None:
    document = bicep("pagedomain")
    assert decorator(document["parameters"]["hostName"], "max_length") == longest_page_host()
    (site,) = [r for r in document["resources"].values() if r["existing"]]
    assert site["type"] == "Microsoft.Web/sites" and site["config"]["name"] == "functionAppName"
    (certificate_name, certificate), *more = resources_of(
        document, "Microsoft.Web/sites/certificates"
    ).items()
    assert more == []
    assert certificate["config"]["condition"] == "issueCertificate"
    assert body(certificate)["properties"] == {"canonicalName": "hostName"}, "a managed certificate"
    (binding,) = resources_of(document, "Microsoft.Web/sites/hostNameBindings").values()
    properties = body(binding)["properties"]
    assert body(binding)["name"] == "hostName"
    assert properties["hostNameType"] == "Verified"
    assert properties["customHostNameDnsRecordType"] == "CName"
    tls = properties["sslState"]["operator"]["operands"]
    assert tls == {"condition": "issueCertificate", "true_value": "SniEnabled", "false_value": "Disabled"}
    thumbprint = properties["thumbprint"]["operator"]["operands"]
    assert thumbprint["condition"] == "issueCertificate"
    assert chain(thumbprint["true_value"]) == [certificate_name, "properties", "thumbprint"]
    assert thumbprint["false_value"] is None
    assert bicep("functionapp")["resources"]["site"]["config"]["properties"]["httpsOnly"] is True


def test_the_shipped_parameters_and_policy_agree_on_the_page_address() -> None:
    """force.link_base_url is every personal link's start: it must be the bound host name.

    The shipped parameter file binds no host (a force sets its own), and the shipped policy's
    address is then the placeholder; once a host is set there, the policy must follow."""
    text = (BICEP / "main.bicepparam").read_text(encoding="utf-8")
    found = re.search(r"^param victimPageHostName = '([^']*)'", text, re.MULTILINE)
    assert found, "main.bicepparam must say which host the page is bound to ('' for none)"
    base = load_policy().force.link_base_url
    host = found.group(1)
    if host:
        assert base == f"https://{host}", "policy/journey-policy.json force.link_base_url"
        assert len(host) <= longest_page_host()
    else:
        assert "example" in (urlsplit(base).hostname or "").split("."), (
            "the shipped policy names a real host that main.bicepparam does not bind"
        )


# --- Flex Consumption -------------------------------------------------------------------


def test_function_app_is_flex_consumption_python_311() -> None:
    document = bicep("functionapp")
    (plan,) = resources_of(document, "Microsoft.Web/serverfarms").values()
    assert body(plan)["sku"] == {"name": "FC1", "tier": "FlexConsumption"}
    (site,) = resources_of(document, "Microsoft.Web/sites").values()
    properties = body(site)["properties"]
    assert properties["httpsOnly"] is True
    assert properties["siteConfig"]["minTlsVersion"] == "1.2"
    assert properties["siteConfig"]["ftpsState"] == "Disabled"
    config = properties["functionAppConfig"]
    assert config["runtime"] == {"name": "python", "version": "3.11"}
    storage = config["deployment"]["storage"]
    assert storage["type"] == "blobContainer"
    assert storage["authentication"] == {
        "type": "UserAssignedIdentity",
        "userAssignedIdentityResourceId": "identityId",
    }
    assert config["scaleAndConcurrency"] == {
        "instanceMemoryMB": "instanceMemoryMB",
        "maximumInstanceCount": "maximumInstanceCount",
    }
    policies = resources_of(document, "Microsoft.Web/sites/basicPublishingCredentialsPolicies").values()
    assert {body(p)["name"]: body(p)["properties"]["allow"] for p in policies} == {"ftp": False, "scm": False}


# --- diagnostics and parameters -------------------------------------------------------


def test_every_diagnosable_resource_sends_diagnostics_to_the_workspace() -> None:
    for path in MODULES.glob("*.bicep"):
        document = bicep(path.stem)
        resources = document.get("resources") or {}
        diagnosed = {
            body(r)["scope"]
            for r in resources_of(document, "Microsoft.Insights/diagnosticSettings").values()
            if body(r)["properties"]["workspaceId"] == "logAnalyticsWorkspaceId"
        }
        for name, resource in resources.items():
            if resource["type"] in DIAGNOSABLE and not resource["existing"]:
                assert name in diagnosed, (
                    f"{path.name}: {name} ({resource['type']}) has no diagnostic setting"
                )


def test_parameter_file_matches_main() -> None:
    text = (BICEP / "main.bicepparam").read_text(encoding="utf-8")
    assert re.search(r"^using 'main\.bicep'$", text, re.MULTILINE)
    given = set(re.findall(r"^param (\w+) =", text, re.MULTILINE))
    parameters = bicep("main")["parameters"]
    assert given <= set(parameters), f"not parameters of main.bicep: {given - set(parameters)}"
    required = {name for name, p in parameters.items() if p["default"] is None}
    assert required <= given, f"required but not given: {required - given}"
    secure = {name for name, p in parameters.items() if any(d["type"] == "secure" for d in p["decorators"])}
    assert given & secure == set(), "secret values do not belong in the parameter file"


def test_readme_describes_every_parameter() -> None:
    readme = (BICEP / "README.md").read_text(encoding="utf-8")
    missing = [name for name in bicep("main")["parameters"] if f"| `{name}` |" not in readme]
    assert missing == [], f"add to the parameter table of infra/bicep/README.md: {missing}"


def test_git_ignores_what_holds_victims_data_or_secrets() -> None:
    # Issue 15, finding 5: .local/ (the default LOCAL_DATA_DIR: feeds, state, outbox) was not ignored.

    root = Path(__file__).resolve().parents[2]
    paths = [
        ".local/state.db",
        ".local/outbox.jsonl",
        ".local/feeds/niche.jsonl",
        "out/demo/run/outbox.jsonl",
        "local.settings.json",
        ".venv/bin/python",
        "node_modules/azurite/package.json",
        "page-signing.key",
    ]
    checked = subprocess.run(
        ["git", "check-ignore", "--no-index", *paths], cwd=root, capture_output=True, text=True, check=False
    )
    assert sorted(checked.stdout.split()) == sorted(paths), checked.stdout
