"""The app indexes as the Functions host would index it."""

from __future__ import annotations

import ast
import inspect

import azure.functions as func
import pytest

import function_app
from shared.local.host import functions_of

EXPECTED = {
    "ingest_niche": ("timerTrigger", {"schedule": "%NICHE_POLL_SCHEDULE%"}),
    "ingest_storm": ("timerTrigger", {"schedule": "%STORM_POLL_SCHEDULE%"}),
    # daily, erasing what has been kept its policy days: tests/e2e/test_retention.py
    "retention": ("timerTrigger", {"schedule": "0 15 2 * * *"}),
    "resolve_officer": (
        "serviceBusTrigger",
        {"queueName": "%CASE_CHANGES_QUEUE%", "isSessionsEnabled": True},
    ),
    "evaluate_journey": (
        "serviceBusTrigger",
        {"queueName": "%JOURNEY_EVENTS_QUEUE%", "isSessionsEnabled": True},
    ),
    "send_message": ("serviceBusTrigger", {"queueName": "%OUTBOUND_MESSAGES_QUEUE%"}),
    "notify_officer": ("serviceBusTrigger", {"queueName": "%OFFICER_TASKS_QUEUE%"}),
    "delivery_report": ("eventGridTrigger", {}),
    # anonymous, GET and POST: tests/integration/test_web_function.py
    "victim_page": ("httpTrigger", {"route": "{*path}"}),
}


def _functions() -> dict[str, func.decorators.function_app.Function]:
    return {f.get_function_name(): f for f in functions_of(function_app.app)}


def test_app_registers_exactly_the_steps_and_the_page() -> None:
    assert sorted(_functions()) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_trigger_type_queue_and_sessions(name: str) -> None:
    trigger = _functions()[name].get_trigger().get_dict_repr()
    kind, expected = EXPECTED[name]
    assert trigger["type"] == kind
    for key, value in expected.items():
        assert trigger[key] == value
    if kind == "serviceBusTrigger":
        assert trigger["connection"] == "ServiceBusConnection"
        assert trigger.get("isSessionsEnabled", False) == expected.get("isSessionsEnabled", False)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_every_parameter_is_bound_and_every_binding_has_a_parameter(name: str) -> None:
    function = _functions()[name]
    parameters = set(inspect.signature(function.get_user_function()).parameters)
    bindings = {binding.name for binding in function.get_bindings()} - {"$return"}  # an HTTP response
    assert parameters == bindings


def test_each_function_is_a_thin_wrapper_over_a_step() -> None:
    tree = ast.parse(inspect.getsource(function_app))
    defs = {node.name: node for node in tree.body if isinstance(node, ast.FunctionDef)}
    step_names = {
        alias.asname or alias.name
        for node in tree.body
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith(("shared.steps", "shared.web"))
        for alias in node.names
    }
    tracing_names = {
        alias.asname or alias.name
        for node in tree.body
        if isinstance(node, ast.ImportFrom) and node.module == "shared.tracing"
        for alias in node.names
    }
    for name in EXPECTED:
        body = [
            stmt
            for stmt in defs[name].body
            if not (isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant))
        ]
        assert len(body) == 1, f"{name} should be one call to a step handler"
        if isinstance(body[0], ast.With):
            # A queue-triggered step runs in its span: ``with step_span(...)`` around the one call.
            (item,) = body[0].items
            span = item.context_expr
            assert isinstance(span, ast.Call) and isinstance(span.func, ast.Name)
            assert span.func.id == "step_span" and span.func.id in tracing_names
            assert isinstance(span.args[0], ast.Constant) and span.args[0].value == name
            body = body[0].body
            assert len(body) == 1, f"{name} should be one call to a step handler inside its span"
        # An HTTP trigger returns the response of its one call.
        call = body[0].value if isinstance(body[0], ast.Expr | ast.Return) else None
        assert isinstance(call, ast.Call) and isinstance(call.func, ast.Name)
        assert call.func.id in step_names, f"{name} calls {call.func.id}, not a step from shared.steps"
