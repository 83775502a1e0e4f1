"""Victim Updates: the pipeline steps as Azure Functions (v2 programming model).

Each function is a thin wrapper: the trigger is declared here, the work is done
by a step handler in ``shared/steps``; a queue-triggered step runs inside an
OpenTelemetry span continuing the message's trace (ingest starts one trace per
case change). Queue names and timer schedules come from app settings through
%NAME% binding expressions. ``delivery_report`` is pushed Communication Services'
delivery reports by an Event Grid subscription (infra/bicep: the second step).
``victim_page`` is the victim's own page (shared/web), an anonymous HTTP trigger on
every path: the personal link in the path is the credential. ``retention`` runs daily and
erases what has been kept its policy days (docs/journey-rules.md §16).

A worker imports this module once for all its functions: the steps a case change goes
through are imported here; the others (shared/steps/on_first_call.py) and the page's site
are imported on their function's first call.
"""

from __future__ import annotations

import azure.functions as func

from shared import bootstrap, telemetry
from shared.steps.evaluate_journey import evaluate_journey as evaluate_journey_step
from shared.steps.on_first_call import ingest_feed
from shared.steps.on_first_call import notify_officer as notify_officer_step
from shared.steps.on_first_call import record_delivery as record_delivery_step
from shared.steps.on_first_call import retention as retention_step
from shared.steps.resolve_officer import resolve_officer as resolve_officer_step
from shared.steps.send_message import send_message as send_message_step
from shared.tracing import step_span
from shared.web.azure import serve as serve_page  # the site and its templates: on the first request

bootstrap.check_at_start()  # a bad app setting or policy fails indexing, naming it
telemetry.configure_azure_monitor()  # off unless APPLICATIONINSIGHTS_CONNECTION_STRING is set
app = func.FunctionApp()

SERVICE_BUS = "ServiceBusConnection"


@app.function_name("ingest_niche")
@app.timer_trigger(arg_name="timer", schedule="%NICHE_POLL_SCHEDULE%", run_on_startup=False, use_monitor=True)
def ingest_niche(timer: func.TimerRequest) -> None:
    """Read new Niche occurrences and emit case changes."""
    ingest_feed("niche", bootstrap.services())


@app.function_name("ingest_storm")
@app.timer_trigger(arg_name="timer", schedule="%STORM_POLL_SCHEDULE%", run_on_startup=False, use_monitor=True)
def ingest_storm(timer: func.TimerRequest) -> None:
    """Read new STORM incidents and emit case changes (to evaluate_journey: no officer to resolve)."""
    ingest_feed("storm", bootstrap.services())


@app.function_name("retention")
@app.timer_trigger(arg_name="timer", schedule="0 15 2 * * *", run_on_startup=False, use_monitor=True)
def retention(timer: func.TimerRequest) -> None:
    """Daily at 02:15 UTC: erase personal data kept its policy days (journey-rules.md §16)."""
    retention_step(bootstrap.services())


@app.function_name("resolve_officer")
@app.service_bus_queue_trigger(
    arg_name="msg", queue_name="%CASE_CHANGES_QUEUE%", connection=SERVICE_BUS, is_sessions_enabled=True
)
def resolve_officer(msg: func.ServiceBusMessage) -> None:
    """Add the officer in charge's contact details to a case change."""
    with step_span("resolve_officer", msg.application_properties):
        resolve_officer_step(msg.get_body(), bootstrap.services(), msg.application_properties)


@app.function_name("evaluate_journey")
@app.service_bus_queue_trigger(
    arg_name="msg", queue_name="%JOURNEY_EVENTS_QUEUE%", connection=SERVICE_BUS, is_sessions_enabled=True
)
def evaluate_journey(msg: func.ServiceBusMessage) -> None:
    """Apply the Victims' Code journey rules, one crime at a time, in order."""
    with step_span("evaluate_journey", msg.application_properties):
        evaluate_journey_step(msg.get_body(), bootstrap.services(), msg.application_properties)


@app.function_name("send_message")
@app.service_bus_queue_trigger(arg_name="msg", queue_name="%OUTBOUND_MESSAGES_QUEUE%", connection=SERVICE_BUS)
def send_message(msg: func.ServiceBusMessage) -> None:
    """Re-check, record in the ledger, and hand one message to the provider."""
    with step_span("send_message", msg.application_properties):
        send_message_step(msg.get_body(), bootstrap.services(), msg.application_properties)


@app.function_name("notify_officer")
@app.service_bus_queue_trigger(arg_name="msg", queue_name="%OFFICER_TASKS_QUEUE%", connection=SERVICE_BUS)
def notify_officer(msg: func.ServiceBusMessage) -> None:
    """Mail an officer task to its assignee or team, or an overdue one to the supervisor, once."""
    with step_span("notify_officer", msg.application_properties):
        notify_officer_step(msg.get_body(), bootstrap.services(), msg.application_properties)


@app.function_name("delivery_report")
@app.event_grid_trigger(arg_name="event")
def delivery_report(event: func.EventGridEvent) -> None:
    """Record a Communication Services delivery report (Event Grid: at least once, in no order)."""
    with step_span("delivery_report", {}):
        record_delivery_step(
            event.id, event.event_type, event.event_time, event.get_json(), bootstrap.services()
        )


@app.function_name("victim_page")
@app.route(route="{*path}", auth_level=func.AuthLevel.ANONYMOUS, methods=["GET", "POST"])
def victim_page(req: func.HttpRequest) -> func.HttpResponse:
    """The victim's own page: opened by the personal link in the path (host.json: no route prefix)."""
    return serve_page(req, bootstrap.services())
