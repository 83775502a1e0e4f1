"""The Event Grid Bicep (modules/eventgrid.bicep) that brings ACS delivery reports to delivery_report.

An Event Grid system topic on the Communication Services resource; one event subscription
that hands exactly the email and SMS delivery reports to the function app's
delivery_report function, with a retry policy bounded by a day and dead-lettering, with
the topic's own identity, to a container of the storage account (shared keys are off
there), which the topic's identity alone may write to; and the subscription deployed
only in the second deployment step, once the code is published. The function it targets
must be an Event Grid-triggered function of function_app.py.

The Bicep is read through pycep-parser's JSON with the helpers of tests/integration/test_infra.py
(the IaC virtual environment, .venv-iac, created by `make test`; these tests fail, not
skip, when it is missing). Checkov runs over every file in tests/integration/test_infra.py.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Any

import pytest

from tests.integration.test_infra import BICEP, STORAGE, bicep, body, default, resources_of

ROOT = Path(__file__).resolve().parents[2]
FUNCTION_APP = ROOT / "function_app.py"
README = BICEP / "README.md"

ACS = "Microsoft.Communication/communicationServices"
SYSTEM_TOPIC = "Microsoft.EventGrid/systemTopics"
SUBSCRIPTION = "Microsoft.EventGrid/systemTopics/eventSubscriptions"
CONTAINER = "Microsoft.Storage/storageAccounts/blobServices/containers"
BLOB_SERVICE = "Microsoft.Storage/storageAccounts/blobServices"
ROLE_ASSIGNMENT = "Microsoft.Authorization/roleAssignments"
FUNCTION = "Microsoft.Web/sites/functions"

DELIVERY_REPORT = "delivery_report"
EVENT_TYPES = {
    "Microsoft.Communication.EmailDeliveryReportReceived",
    "Microsoft.Communication.SMSDeliveryReportReceived",
}
STORAGE_BLOB_DATA_CONTRIBUTOR = "ba92f5b4-2d11-453d-a403-e96b0029c9fe"  # built-in role GUID
A_DAY_IN_MINUTES = 24 * 60
# Event Grid's retry schedule after a failed attempt (its delivery-and-retry documentation),
# in seconds; after the last step it retries every 12 hours until the event expires.
RETRY_DELAYS = [10, 30, 60, 5 * 60, 10 * 60, 30 * 60, 3600, 3 * 3600, 6 * 3600]
EVERY_12_HOURS = 12 * 3600


# --- helpers ----------------------------------------------------------------------------


def accessor(value: Any) -> list[Any]:
    """`a.b.c` as ['a', 'b', 'c'] (pycep nests a property accessor to the right)."""
    if not isinstance(value, dict) or value.get("operator", {}).get("type") != "property_accessor":
        return [value]
    operands = value["operator"]["operands"]
    return [operands["operand_1"], *accessor(operands["operand_2"])]


def module() -> dict[str, Any]:
    return bicep("eventgrid")


def the(document: dict[str, Any], type_: str) -> tuple[str, dict[str, Any]]:
    """The one resource of a type a document deploys: (symbolic name, resource)."""
    found = resources_of(document, type_)
    assert len(found) == 1, f"expected one {type_}, found {sorted(found)}"
    ((name, resource),) = found.items()
    return name, resource


def existing(document: dict[str, Any], symbol: str, type_: str) -> dict[str, Any]:
    resource: dict[str, Any] = document["resources"][symbol]
    assert resource["existing"] is True and resource["type"] == type_, (symbol, resource["type"])
    return resource


def variable(document: dict[str, Any], name: str) -> Any:
    return document["variables"][name]["value"]


def main_module() -> dict[str, Any]:
    modules = bicep("main")["modules"]
    (name,) = [name for name, m in modules.items() if m["detail"]["path"] == "modules/eventgrid.bicep"]
    return body(modules[name])


def main_name(key: str) -> Any:
    """A value of main.bicep's `names` variable, given the `names.<key>` expression passed on."""
    return variable(bicep("main"), "names")[key]


def subscription() -> dict[str, Any]:
    return body(the(module(), SUBSCRIPTION)[1])


# --- the system topic -------------------------------------------------------------------


def test_the_system_topic_is_on_the_communication_services_resource() -> None:
    document = module()
    _, topic = the(document, SYSTEM_TOPIC)
    assert "condition" not in topic["config"], "the topic is deployed in the first step"
    config = body(topic)
    assert config["properties"]["topicType"] == "Microsoft.Communication.CommunicationServices"
    source, field = accessor(config["properties"]["source"])
    assert field == "id"
    assert body(existing(document, source, ACS))["name"] == "communicationServiceName"
    assert config["location"] == "global", "ACS is a global resource, and so is its system topic"
    assert config["identity"] == {"type": "SystemAssigned"}
    params = main_module()["params"]
    assert accessor(params["communicationServiceName"]) == ["communication", "outputs", "name"]
    assert accessor(params["name"])[0] == "names"
    assert "communication" in bicep("main")["modules"], "the ACS resource is deployed by main.bicep"


def test_the_system_topic_sends_its_delivery_failures_to_the_workspace() -> None:
    document = module()
    symbol, _ = the(document, SYSTEM_TOPIC)
    _, diagnostics = the(document, "Microsoft.Insights/diagnosticSettings")
    config = body(diagnostics)
    assert config["scope"] == symbol
    assert config["properties"]["workspaceId"] == "logAnalyticsWorkspaceId"
    assert {"category": "DeliveryFailures", "enabled": True} in config["properties"]["logs"]
    assert accessor(main_module()["params"]["logAnalyticsWorkspaceId"]) == [
        "monitoring",
        "outputs",
        "workspaceId",
    ]


# --- the event subscription -------------------------------------------------------------


def test_the_subscription_hands_events_to_the_delivery_report_function() -> None:
    topic, _ = the(module(), SYSTEM_TOPIC)
    config = subscription()
    assert config["parent"] == topic
    destination = config["properties"]["destination"]
    assert destination["endpointType"] == "AzureFunction"
    function = destination["properties"]["resourceId"]["function"]
    assert function["type"] == "resource_id"
    parameters = function["parameters"]
    assert parameters["resource_type"] == FUNCTION  # .../sites/<app>/functions/<name>
    assert parameters["resource_name_1"] == "functionAppName"
    assert parameters["resource_name_2"] == "functionName"
    assert parameters["resource_group_name"] is None and parameters["subscription_id"] is None
    assert destination["properties"]["maxEventsPerBatch"] == 1, "one report an invocation"
    assert config["properties"]["eventDeliverySchema"] == "EventGridSchema"
    params = main_module()["params"]
    assert accessor(params["functionAppName"]) == ["functionApp", "outputs", "name"]
    names, key = accessor(params["functionName"])
    assert names == "names"
    assert main_name(key) == DELIVERY_REPORT


def test_the_subscription_takes_exactly_the_two_delivery_reports() -> None:
    event_filter = subscription()["properties"]["filter"]
    assert set(event_filter) == {"includedEventTypes"}, "no subject or advanced filter narrows it"
    types = variable(module(), event_filter["includedEventTypes"])
    assert sorted(types) == sorted(EVENT_TYPES)
    assert len(types) == len(EVENT_TYPES)


def attempts_within(minutes: int) -> int:
    """How many delivery attempts Event Grid's schedule makes before an event this old expires."""
    attempts, elapsed, delays = 1, 0, iter(RETRY_DELAYS)
    while True:
        elapsed += next(delays, EVERY_12_HOURS)
        if elapsed >= minutes * 60:
            return attempts
        attempts += 1


def test_the_retry_policy_gives_up_on_a_report_after_a_day() -> None:
    policy = subscription()["properties"]["retryPolicy"]
    retry = variable(module(), policy) if isinstance(policy, str) else policy
    assert retry["eventTimeToLiveInMinutes"] == A_DAY_IN_MINUTES, (
        "a report more than a day old is of no use to a duty's deadline"
    )
    assert 1 <= retry["maxDeliveryAttempts"] <= 30  # Event Grid's bounds
    assert retry["maxDeliveryAttempts"] >= attempts_within(A_DAY_IN_MINUTES), (
        "the day, not the attempt count, should decide when a report is given up"
    )


def test_undelivered_reports_are_dead_lettered_to_the_container_with_the_topic_identity() -> None:
    document = module()
    properties = subscription()["properties"]
    assert "deadLetterDestination" not in properties, (
        "without an identity Event Grid would need the account's keys, and shared keys are off"
    )
    dead_letter = properties["deadLetterWithResourceIdentity"]
    assert dead_letter["identity"] == {"type": "SystemAssigned"}
    destination = dead_letter["deadLetterDestination"]
    assert destination["endpointType"] == "StorageBlob"
    account, field = accessor(destination["properties"]["resourceId"])
    assert field == "id"
    assert body(existing(document, account, STORAGE))["name"] == "storageAccountName"
    assert destination["properties"]["blobContainerName"] == "deadLetterContainerName"
    params = main_module()["params"]
    assert accessor(params["storageAccountName"]) == ["storage", "outputs", "name"]
    assert accessor(params["deadLetterContainerName"]) == ["storage", "outputs", "deadLetterContainerName"]
    (storage_account,) = resources_of(bicep("storage"), STORAGE).values()
    assert body(storage_account)["properties"]["allowSharedKeyAccess"] is False


def test_the_dead_letter_container_exists_and_its_reports_expire() -> None:
    document = bicep("storage")
    containers = {
        body(resource)["name"]: (name, body(resource))
        for name, resource in resources_of(document, CONTAINER).items()
    }
    symbol, container = containers["deadLetterContainerName"]
    assert container["properties"]["publicAccess"] == "None"
    assert resources_of(document, BLOB_SERVICE)[container["parent"]]
    assert accessor(document["outputs"]["deadLetterContainerName"]["value"]) == [symbol, "name"]
    storage_params = body(bicep("main")["modules"]["storage"])["params"]
    names, key = accessor(storage_params["deadLetterContainerName"])
    assert names == "names"
    assert main_name(key) == "delivery-report-dead-letters"
    # A report holds a victim's phone number or email address: a lifecycle rule deletes it.
    _, lifecycle = the(document, "Microsoft.Storage/storageAccounts/managementPolicies")
    (rule,) = body(lifecycle)["properties"]["policy"]["rules"]
    assert rule["enabled"] is True
    assert rule["definition"]["filters"]["prefixMatch"] == ["${deadLetterContainerName}/"]
    delete = rule["definition"]["actions"]["baseBlob"]["delete"]
    assert delete == {"daysAfterModificationGreaterThan": "deadLetterRetentionDays"}
    assert storage_params["deadLetterRetentionDays"] == "deadLetterRetentionDays"
    assert default(bicep("main"), "deadLetterRetentionDays") == 30


def test_the_topic_identity_may_write_to_the_dead_letter_container_and_nothing_else() -> None:
    document = module()
    topic, _ = the(document, SYSTEM_TOPIC)
    role_symbol, assignment = the(document, ROLE_ASSIGNMENT)
    assert "condition" not in assignment["config"], (
        "granted in the first step, so it has propagated before the subscription dead-letters"
    )
    config = body(assignment)
    container = existing(document, config["scope"], CONTAINER)
    assert body(container)["name"] == "deadLetterContainerName"
    blob_service = existing(document, body(container)["parent"], BLOB_SERVICE)
    assert body(existing(document, body(blob_service)["parent"], STORAGE))["name"] == "storageAccountName"
    properties = config["properties"]
    role = properties["roleDefinitionId"]["function"]
    assert role["type"] == "subscription_resource_id"
    assert role["parameters"]["resource_type"] == "Microsoft.Authorization/roleDefinitions"
    assert variable(document, role["parameters"]["resource_name_1"]) == STORAGE_BLOB_DATA_CONTRIBUTOR
    assert accessor(properties["principalId"]) == [topic, "identity", "principalId"]
    assert properties["principalType"] == "ServicePrincipal"
    assert config["name"]["function"]["type"] == "guid"
    assert role_symbol in subscription()["dependsOn"]


# --- the second deployment step ---------------------------------------------------------


def test_the_subscription_is_deployed_only_when_the_parameter_is_true() -> None:
    document = module()
    _, resource = the(document, SUBSCRIPTION)
    assert resource["config"]["condition"] == "deploySubscription"
    assert document["parameters"]["deploySubscription"]["type"] == "bool"
    main = bicep("main")
    assert main["parameters"]["deliveryReportSubscription"]["type"] == "bool"
    assert default(main, "deliveryReportSubscription") is False, "the first deployment has no code yet"
    assert main_module()["params"]["deploySubscription"] == "deliveryReportSubscription"
    (event_grid,) = [m for m in main["modules"].values() if m["detail"]["path"] == "modules/eventgrid.bicep"]
    assert "condition" not in event_grid["config"], "the topic, container role and diagnostics: first step"
    # Nothing else in the module names the function, so the first step never needs it.
    for name, other in document["resources"].items():
        if other["type"] != SUBSCRIPTION:
            assert "functionName" not in str(other), name
    parameter_file = (BICEP / "main.bicepparam").read_text(encoding="utf-8")
    assert re.search(r"^param deliveryReportSubscription = false\b", parameter_file, re.MULTILINE)


def test_the_readme_documents_both_steps_in_order() -> None:
    text = README.read_text(encoding="utf-8")
    match = re.search(r"^## Second step: delivery reports.*?(?=^## )", text, re.MULTILINE | re.DOTALL)
    assert match, "infra/bicep/README.md: no 'Second step: delivery reports' section"
    steps = match.group(0)
    first = steps.index("deliveryReportSubscription=false")
    publish = steps.index("func azure functionapp publish")
    second = steps.index("deliveryReportSubscription=true")
    assert first < publish < second, "deploy without it, publish the code, then deploy with it"
    assert "| `deliveryReportSubscription` | `false` |" in text


# --- the function it targets ------------------------------------------------------------


def decorator_call(node: ast.expr) -> tuple[str, ast.Call | None]:
    """('function_name', call) for `@app.function_name(...)`; ('', None) for anything else."""
    call = node if isinstance(node, ast.Call) else None
    target = call.func if call else node
    if isinstance(target, ast.Attribute) and isinstance(target.value, ast.Name):
        return target.attr, call
    return "", None


def functions_in_function_app() -> dict[str, set[str]]:
    """Each function of function_app.py (its function_name, else its def name) and its decorators."""
    tree = ast.parse(FUNCTION_APP.read_text(encoding="utf-8"), filename=str(FUNCTION_APP))
    found: dict[str, set[str]] = {}
    for node in ast.walk(tree):
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        decorators = dict(decorator_call(d) for d in node.decorator_list)
        decorators.pop("", None)
        if not any(name.endswith("_trigger") for name in decorators):
            continue
        name = node.name
        call = decorators.get("function_name")
        if call is not None:
            given = [*call.args, *(k.value for k in call.keywords if k.arg == "name")]
            assert given and isinstance(given[0], ast.Constant), "function_name takes a literal name"
            name = str(given[0].value)
        found[name] = set(decorators)
    return found


def test_the_targeted_function_is_an_event_grid_function_of_function_app() -> None:
    functions = functions_in_function_app()
    assert functions, "no triggered functions found in function_app.py"
    _, key = accessor(main_module()["params"]["functionName"])
    target = main_name(key)
    if target not in functions:
        pytest.skip(
            f"function_app.py has no {target!r} function yet (it is being written); "
            f"the Event Grid subscription targets it. Functions now: {sorted(functions)}"
        )
    assert "event_grid_trigger" in functions[target], (
        f"{target} must be Event Grid-triggered: an AzureFunction endpoint accepts only that trigger"
    )
