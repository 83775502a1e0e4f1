"""A victim's journey: the keyed state and the rules that move it (docs/journey-rules.md).

Every rule is pure: (journey state, event, policy, now) -> Decision, the new state
and the commands to carry out. The steps do the I/O; nothing here reads a clock,
a table or a queue. The modules are named for what the person is owed:

- ``state``: the journey, its duties and the decision a rule returns;
- ``duties``: the kinds of duty, their keys and deadline rules;
- ``safeguard``: the facts about the recipient and the crime, and the route (or none) to them;
- ``acknowledge``, ``milestones``, ``closure``, ``attendance``: what each kind of news brings;
- ``checkin``: news when there has been none; ``contact``: an officer's own call;
- ``deadlines``: when each duty must be met, and breaches; ``tasks``: duties for an officer;
- ``telling``: the coalescing window, the message, the send-time check, what the provider did;
- ``delivery``: a message reported undelivered reopens what it alone carried;
- ``evaluate``: a case change or a crime's shared facts, applied to one journey.
"""

from shared.domain.journey.checkin import evaluate_wake
from shared.domain.journey.deadlines import evaluate_deadline
from shared.domain.journey.delivery import evaluate_undelivered
from shared.domain.journey.duties import DutyKind, message_key, task_id, template_for
from shared.domain.journey.evaluate import evaluate_case_change, evaluate_shared_facts
from shared.domain.journey.page import (
    PREFERENCES_CHANGED,
    VICTIM_MESSAGE,
    evaluate_message_to_officer,
    evaluate_preferences_chosen,
)
from shared.domain.journey.safeguard import (
    Route,
    excluded_flag,
    excluded_reason,
    has_enhanced_rights,
    is_under_age,
    local_day,
    route,
    safeguarding_category,
)
from shared.domain.journey.state import (
    APPLIED_EVENTS_KEPT,
    JOURNEY_SCHEMA,
    AuditEntry,
    Compliance,
    Decision,
    Duty,
    DutyStatus,
    Journey,
    KeptCheck,
    OfficerTask,
    PageChoice,
    Scheduled,
    SchemaTooNew,
    upgrade_journey,
)
from shared.domain.journey.tasks import TEAM_ASSIGNEE
from shared.domain.journey.telling import address_for, evaluate_message_outcome, send_time_check

__all__ = [
    "APPLIED_EVENTS_KEPT",
    "JOURNEY_SCHEMA",
    "PREFERENCES_CHANGED",
    "TEAM_ASSIGNEE",
    "VICTIM_MESSAGE",
    "AuditEntry",
    "Compliance",
    "Decision",
    "Duty",
    "DutyKind",
    "DutyStatus",
    "Journey",
    "KeptCheck",
    "OfficerTask",
    "PageChoice",
    "Route",
    "Scheduled",
    "SchemaTooNew",
    "address_for",
    "evaluate_case_change",
    "evaluate_deadline",
    "evaluate_message_outcome",
    "evaluate_message_to_officer",
    "evaluate_preferences_chosen",
    "evaluate_shared_facts",
    "evaluate_undelivered",
    "evaluate_wake",
    "excluded_flag",
    "excluded_reason",
    "has_enhanced_rights",
    "is_under_age",
    "local_day",
    "message_key",
    "route",
    "safeguarding_category",
    "send_time_check",
    "task_id",
    "template_for",
    "upgrade_journey",
]
