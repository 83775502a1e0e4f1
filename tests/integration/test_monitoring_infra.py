"""The monitoring Bicep (workbook.bicep, alerts.bicep) against the telemetry the code emits.

The workbook shows every event of the operations guide (README "Watching it in
Application Insights"); there is an alert rule for each of the five conditions the IT
team is paged for, all wired to the one action group, whose email address is a
parameter; every KQL query in the Bicep is in docs/operations-kql.md word for word (and
the page has no other), so the page cannot drift; and every event name the KQL looks
for is one shared/telemetry.py can emit.

As in tests/integration/test_infra.py, the Bicep is read through pycep-parser's JSON, run with the
IaC virtual environment (.venv-iac, created by `make test`); these tests fail, not skip,
when it is missing.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from shared.telemetry import EVENT_NAMES
from tests.integration.test_infra import body, leaves

ROOT = Path(__file__).resolve().parents[2]
BICEP = ROOT / "infra" / "bicep"
IAC_PYTHON = ROOT / ".venv-iac" / "bin" / "python"
PARSE_TOOL = BICEP / "tools" / "bicep_json.py"
DOC = ROOT / "docs" / "operations-kql.md"
GUIDE = ROOT / "README.md"
FILES = {
    "main": BICEP / "main.bicep",
    "workbook": BICEP / "modules" / "workbook.bicep",
    "alerts": BICEP / "modules" / "alerts.bicep",
}

WORKBOOK = "Microsoft.Insights/workbooks"
ACTION_GROUP = "Microsoft.Insights/actionGroups"
LOG_RULE = "Microsoft.Insights/scheduledQueryRules"
METRIC_RULE = "Microsoft.Insights/metricAlerts"
ISO_DURATION = re.compile(r"PT(\d+M|\d+H)|P\d+D")


# --- parsing --------------------------------------------------------------------------


@cache
def _parsed() -> dict[str, Any]:
    if not IAC_PYTHON.exists():
        pytest.fail(
            ".venv-iac/bin/python is missing: run `make test`, which creates .venv-iac "
            "from requirements-iac.txt (pycep-parser and checkov, kept apart from the app's packages)",
            pytrace=False,
        )
    names = [str(path.relative_to(ROOT)) for path in FILES.values()]
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
    if result["errors"]:
        pytest.fail(f"Bicep files did not parse: {result['errors']}", pytrace=False)
    return result


def bicep(name: str) -> dict[str, Any]:
    """The pycep JSON of 'main', 'workbook' or 'alerts'."""
    document: dict[str, Any] = _parsed()["files"][str(FILES[name].relative_to(ROOT))]
    return document


def resources_of(document: dict[str, Any], type_: str) -> dict[str, dict[str, Any]]:
    return {
        name: body(resource)
        for name, resource in (document.get("resources") or {}).items()
        if resource["type"] == type_ and not resource["existing"]
    }


def values_under(value: Any, key: str) -> Iterator[Any]:
    """Every value stored under ``key`` anywhere in a pycep tree."""
    if isinstance(value, dict):
        for name, item in value.items():
            if name == key:
                yield item
            yield from values_under(item, key)
    elif isinstance(value, list):
        for item in value:
            yield from values_under(item, key)


def accessor(value: Any) -> tuple[Any, Any] | None:
    """(object, property) of a pycep property access such as ``actionGroup.id``."""
    if isinstance(value, dict) and value.get("operator", {}).get("type") == "property_accessor":
        operands = value["operator"]["operands"]
        return operands["operand_1"], operands["operand_2"]
    return None


def module_output(value: Any) -> tuple[str, str] | None:
    """(module, output) of ``module.outputs.name`` in main.bicep."""
    outer = accessor(value)
    inner = accessor(outer[1]) if outer else None
    if outer and inner and inner[0] == "outputs":
        return outer[0], inner[1]
    return None


def decorators(parameter: dict[str, Any]) -> dict[str, Any]:
    return {d["type"]: d.get("argument") for d in parameter["decorators"]}


# --- the KQL --------------------------------------------------------------------------


def queries(name: str) -> dict[str, str]:
    """The KQL of a module: its variables named ...Query."""
    variables = bicep(name).get("variables") or {}
    found = {key: var["value"] for key, var in variables.items() if key.endswith("Query")}
    assert all(isinstance(text, str) for text in found.values()), "a query must be a plain string"
    return found


def normalise(kql: str) -> str:
    return "\n".join(line.rstrip() for line in kql.strip().splitlines())


def events_in(kql: str) -> set[str]:
    """The event names a query compares Name (AppEvents) with (== or in (...))."""
    names = set(re.findall(r'\bName\s*==\s*"([^"]*)"', kql))
    for group in re.findall(r"\bName\s+in\s*\(([^)]*)\)", kql):
        names.update(re.findall(r'"([^"]*)"', group))
    return names


def reachable(document: dict[str, Any], start: Any) -> set[str]:
    """The variables an expression uses, directly or through other variables."""
    variables = document.get("variables") or {}
    seen: set[str] = set()
    pending = [start]
    while pending:
        for leaf in leaves(pending.pop()):
            if isinstance(leaf, str) and leaf in variables and leaf not in seen:
                seen.add(leaf)
                pending.append(variables[leaf]["value"])
    return seen


def guide_events() -> set[str]:
    """The events listed in the table of README 'Watching it in Application Insights'."""
    text = GUIDE.read_text(encoding="utf-8")
    section = text.split("## Watching it in Application Insights", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| `")]
    names = {name for row in rows for name in re.findall(r"`(\w+)`", row.split("|")[1])}
    assert names, "no events found in the operations guide"
    return names


def doc_blocks() -> list[str]:
    text = DOC.read_text(encoding="utf-8")
    return [normalise(block) for block in re.findall(r"^```kql\n(.*?)^```", text, re.MULTILINE | re.DOTALL)]


# --- main.bicep wires the two modules ----------------------------------------------------


def test_main_deploys_the_workbook_always_and_the_alerts_unless_switched_off() -> None:
    main = bicep("main")
    modules = main["modules"]
    paths = {name: module["detail"]["path"] for name, module in modules.items()}
    assert paths["workbook"] == "modules/workbook.bicep"
    assert paths["alerts"] == "modules/alerts.bicep"
    assert "condition" not in modules["workbook"]["config"], "the workbook is always deployed"
    assert modules["alerts"]["config"]["condition"] == "deployAlerts"
    assert main["parameters"]["deployAlerts"]["default"] is True

    workbook = body(modules["workbook"])["params"]
    assert module_output(workbook["appInsightsId"]) == ("monitoring", "appInsightsId")
    assert module_output(workbook["workspaceId"]) == ("monitoring", "workspaceId")
    assert module_output(workbook["serviceBusNamespaceId"]) == ("serviceBus", "id")
    alerts = body(modules["alerts"])["params"]
    assert module_output(alerts["workspaceId"]) == ("monitoring", "workspaceId")
    assert module_output(alerts["serviceBusNamespaceId"]) == ("serviceBus", "id")


# --- the workbook -----------------------------------------------------------------------


def test_the_workbook_is_shared_and_linked_to_application_insights() -> None:
    (workbook,) = resources_of(bicep("workbook"), WORKBOOK).values()
    assert workbook["kind"] == "shared"
    properties = workbook["properties"]
    assert properties["category"] == "workbook"
    assert properties["sourceId"] == "appInsightsId"
    data = properties["serializedData"]["function"]
    assert data["type"] == "string", "serializedData is the workbook object turned into JSON"
    assert data["parameters"]["value_to_convert"]["version"] == "Notebook/1.0"


def test_the_workbook_shows_every_query_of_its_module_against_the_workspace() -> None:
    document = bicep("workbook")
    (workbook,) = resources_of(document, WORKBOOK).values()
    used = reachable(document, workbook["properties"]["serializedData"])
    assert set(queries("workbook")) <= used, "a query the workbook does not show"
    for query in values_under(document["variables"], "query"):
        named = isinstance(query, str) and query in queries("workbook")
        assert named or accessor(query) == ("step", "query"), f"inline query: {query!r}"
    scope = document["variables"]["workspaceScope"]["value"]
    assert scope["resourceType"] == "microsoft.operationalinsights/workspaces"
    assert scope["crossComponentResources"] == ["workspaceId"]
    assert scope["timeContextFromParameter"] == "TimeRange"


def test_the_workbook_queries_cover_every_event_of_the_guide() -> None:
    shown = set().union(*(events_in(kql) for kql in queries("workbook").values()))
    missing = guide_events() - shown
    assert missing == set(), f"events of the operations guide the workbook does not show: {sorted(missing)}"


def test_the_workbook_has_each_section() -> None:
    kql = queries("workbook")
    assert any("FeedLag" in q and "seconds_behind" in q for q in kql.values()), "feed lag per feed"
    assert any("MessageSent" in q and "channel" in q and "template" in q for q in kql.values())
    assert any("MessageSuppressed" in q and "TaskCreated" in q and "reason" in q for q in kql.values())
    assert any("met / (met + breached)" in q for q in kql.values()), "compliance over time"
    breaches = [q for q in kql.values() if events_in(q) == {"DeadlineBreached"} and "project" in q]
    assert breaches, "the list of breaches"
    for column in ("crime_reference", "person_id", "duty", "reason", "TimeGenerated"):
        assert column in breaches[0]
    assert any("DeadLettered" in q for q in kql.values())
    assert any("AppRequests" in q and "Success == false" in q for q in kql.values()), "function failures"
    latency = [q for q in kql.values() if "seconds_since_change" in q]
    assert latency and all(f"percentile(seconds, {p})" in latency[0] for p in (50, 95, 99)), "latency"
    assert "by channel" in latency[0]
    assert any(q.startswith("AppExceptions") for q in kql.values())
    assert any("percentile(DurationMs, 95)" in q for q in kql.values()), "duration percentiles"
    metric = bicep("workbook")["variables"]["deadLetterMetricItem"]["value"]["content"]
    assert metric["resourceIds"] == ["serviceBusNamespaceId"]
    assert metric["metrics"][0]["metric"].endswith("--DeadletteredMessages")


# --- the alerts -------------------------------------------------------------------------


def alert_rules() -> dict[str, dict[str, Any]]:
    document = bicep("alerts")
    return resources_of(document, LOG_RULE) | resources_of(document, METRIC_RULE)


def rule_query(rule: dict[str, Any]) -> str:
    (condition,) = rule["properties"]["criteria"]["allOf"]
    name = condition["query"]
    assert name in queries("alerts"), f"the rule's query must be a ...Query variable, not {name!r}"
    return queries("alerts")[name]


def classify(rule: dict[str, Any]) -> str | None:
    """Which of the five conditions an alert rule watches."""
    (condition,) = rule["properties"]["criteria"]["allOf"]
    if "metricName" in condition and "query" not in condition:
        if (condition["metricName"], condition["metricNamespace"]) == (
            "DeadletteredMessages",
            "Microsoft.ServiceBus/namespaces",
        ):
            return "dead letters"
        return None
    kql = rule_query(rule)
    if "ProviderUnavailable" in kql and '"provider_rejected"' in kql:
        return "provider failures"
    if kql.startswith("AppRequests") and "Success == false" in kql and "/ invocations" in kql:
        return "function failure rate"
    if events_in(kql) == {"FeedStale"}:
        return "stale feed"
    if events_in(kql) == {"DeadlineBreached"}:
        return "deadline breach"
    return None


def rules_by_condition() -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for name, rule in alert_rules().items():
        kind = classify(rule)
        assert kind is not None, f"{name} watches none of the five conditions"
        assert kind not in found, f"two rules for {kind}"
        found[kind] = rule
    return found


def test_there_is_one_rule_for_each_of_the_five_conditions() -> None:
    assert set(rules_by_condition()) == {
        "dead letters",
        "stale feed",
        "function failure rate",
        "deadline breach",
        "provider failures",
    }


def test_every_rule_is_described_scheduled_self_resolving_and_wired_to_the_action_group() -> None:
    (group_name,) = resources_of(bicep("alerts"), ACTION_GROUP)  # its symbolic name
    wired = (group_name, "id")
    for name, rule in alert_rules().items():
        properties = rule["properties"]
        assert len(properties["description"]) >= 40, f"{name}: say what it means and what to do"
        assert properties["severity"] in range(5), name
        assert ISO_DURATION.fullmatch(properties["evaluationFrequency"]), name
        assert ISO_DURATION.fullmatch(properties["windowSize"]), name
        assert properties["autoMitigate"] is True, name
        assert properties["enabled"] is True, name
        if isinstance(properties["actions"], list):  # metric alert
            assert [accessor(a["actionGroupId"]) for a in properties["actions"]] == [wired], name
        else:
            assert [accessor(a) for a in properties["actions"]["actionGroups"]] == [wired], name


def test_each_rule_watches_its_condition_over_its_window() -> None:
    rules = rules_by_condition()

    def condition(kind: str) -> dict[str, Any]:
        (only,) = rules[kind]["properties"]["criteria"]["allOf"]
        return only

    dead = rules["dead letters"]["properties"]
    assert dead["scopes"] == ["serviceBusNamespaceId"]
    assert condition("dead letters")["operator"] == "GreaterThan"
    assert condition("dead letters")["threshold"] == 0
    assert condition("dead letters")["timeAggregation"] == "Maximum"

    for kind in ("stale feed", "function failure rate", "provider failures", "deadline breach"):
        assert rules[kind]["properties"]["scopes"] == ["workspaceId"], kind
        assert rules[kind]["kind"] == "LogAlert", kind
        assert condition(kind)["operator"] == "GreaterThan", kind
        assert condition(kind)["metricMeasureColumn"] in rule_query(rules[kind]), kind
    for kind in ("dead letters", "stale feed", "function failure rate", "provider failures"):
        assert rules[kind]["properties"]["windowSize"] == "PT15M", kind
    assert condition("stale feed")["threshold"] == 0
    assert condition("function failure rate")["threshold"] == "failureRateThresholdPercent"
    assert condition("provider failures")["threshold"] == "providerFailureThreshold"

    breach = rules["deadline breach"]["properties"]
    assert breach["windowSize"] == "PT1H"
    assert condition("deadline breach")["threshold"] == 0
    others = [rules[kind]["properties"]["severity"] for kind in rules if kind != "deadline breach"]
    assert breach["severity"] > max(others), "a breach is reported at a lower severity than a fault"

    main = bicep("main")["parameters"]
    assert main["failureRateThresholdPercent"]["default"] in range(1, 101)
    assert main["providerFailureThreshold"]["default"] >= 0


def test_the_action_group_emails_the_address_given_as_a_parameter() -> None:
    document = bicep("alerts")
    (group,) = resources_of(document, ACTION_GROUP).values()
    receivers = group["properties"]["emailReceivers"]
    assert receivers and all(r["emailAddress"] == "alertEmail" for r in receivers)
    parameter = document["parameters"]["alertEmail"]
    assert parameter["default"] is None, "no built-in address"
    assert decorators(parameter).get("min_length", 0) >= 3, "an empty address must fail the deployment"
    main = bicep("main")
    assert body(main["modules"]["alerts"])["params"]["alertEmail"] == "alertEmail"
    assert main["parameters"]["alertEmail"]["default"] == "", "the address is given per environment"


# --- the KQL, the doc and the events ----------------------------------------------------


def test_every_query_is_in_the_operations_doc_and_the_doc_has_no_other() -> None:
    in_bicep = {
        f"{module}.{name}": normalise(kql)
        for module in ("workbook", "alerts")
        for name, kql in queries(module).items()
    }
    blocks = doc_blocks()
    missing = sorted(name for name, kql in in_bicep.items() if kql not in blocks)
    assert missing == [], f"copy these queries into docs/operations-kql.md as ```kql blocks: {missing}"
    stale = [block.splitlines()[0] for block in blocks if block not in in_bicep.values()]
    assert stale == [], f"docs/operations-kql.md has ```kql blocks the Bicep no longer runs: {stale}"


def test_every_event_the_kql_looks_for_is_one_the_code_emits() -> None:
    for module in ("workbook", "alerts"):
        for name, kql in queries(module).items():
            unknown = events_in(kql) - EVENT_NAMES
            assert unknown == set(), (
                f"{module}.{name} looks for events shared/telemetry.py never emits: {unknown}"
            )
            assert not re.search(r"\bName\s*(=~|!=|has|contains|startswith)", kql), (
                f"{module}.{name}: match events with Name == or Name in (...)"
            )
            assert "AppTraces" not in kql, f"{module}.{name}: custom events are AppEvents rows, not AppTraces"
    assert guide_events() <= EVENT_NAMES
