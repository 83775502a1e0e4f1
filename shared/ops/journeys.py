"""One crime's journeys and audit trail, for a complaint or a subject access request.

Everything is read by partition (the crime reference): journeys, the message
ledger, officer tasks and the audit trail. Names, dates of birth and contact
details (the victim's, a guardian's, a caller's, and the officer's) appear only
when asked for; the rest is the person's case as the service saw it.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from shared.adapters.table_layout import (
    AUDIT,
    CRIMES,
    FACTS_ROW,
    JOURNEYS,
    MESSAGES,
    TASKS,
    facts_from,
    journey_from,
)
from shared.domain.journey import Duty, Journey, OfficerTask
from shared.ops.context import OpsError
from shared.ports import TableStore

_LEDGER_FIELDS = (
    "status",
    "channel",
    "template",
    "duties",
    "first_attempt_at",
    "sent_at",
    "decided_at",
    "provider_id",
    "reason",
    "segments",
)


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _plain(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


def _officer(journey: Journey, personal: bool) -> dict[str, Any] | None:
    officer = journey.officer
    if officer is None:
        return None
    shown: dict[str, Any] = {
        "employee_id": officer.employee_id,
        "collar_number": officer.collar_number,
        "rank": officer.rank,
        "generic": officer.generic,
    }
    if personal:
        shown |= {"display_name": officer.display_name, "email": officer.email, "phone": officer.phone}
    return shown


def _person(journey: Journey, personal: bool) -> dict[str, Any]:
    """What the journey knows of the recipient: choices always, identity and contacts on request."""
    if journey.victim is not None:
        victim = journey.victim
        if personal:
            return {"victim": victim.model_dump(mode="json")}
        return {
            "preferences": victim.preferences.model_dump(mode="json"),
            "safe_contact": victim.safe_contact.model_dump(mode="json"),
            "enhanced_rights": list(victim.enhanced_rights),
            "has_guardian": victim.guardian is not None,
        }
    if journey.caller is not None:
        caller = journey.caller
        if personal:
            return {"caller": caller.model_dump(mode="json")}
        return {"consent_to_updates": caller.consent_to_updates}
    return {}


def _duty(duty: Duty, ledger: dict[str, dict[str, Any]], tasks: dict[str, OfficerTask]) -> dict[str, Any]:
    messages = [
        {"message_key": key, **ledger.get(key, {"status": "not in the ledger (not yet sent)"})}
        for key in duty.message_keys
    ]
    task = tasks.get(duty.task_id) if duty.task_id else None
    return {
        "key": duty.key,
        "template": duty.template,
        "status": duty.status.value,
        "event_at": _iso(duty.event_at),
        "noticed_at": _iso(duty.noticed_at),
        "due_by": _iso(duty.due_by),
        "handed_at": _iso(duty.handed_at),
        "compliance": duty.compliance.value,
        "reason": duty.reason,
        "details": dict(duty.details),
        "channels": list(duty.channels),
        "messages": messages,
        "task_id": duty.task_id,
        "task": None if task is None else _task(task),
    }


def _task(task: OfficerTask) -> dict[str, Any]:
    return {
        "task_id": task.task_id,
        "person_id": task.person_id,
        "duties": list(task.duties),
        "reason": task.reason,
        "assignee": task.assignee,
        "due_by": _iso(task.due_by),
        "created_at": _iso(task.created_at),
    }


def journey_view(
    tables: TableStore, crime_reference: str, person_id: str | None = None, *, personal: bool = False
) -> dict[str, Any]:
    """The crime's journeys (or one person's), their duties, messages and tasks, and the audit trail.

    A crime's view includes the callers of the incidents linked to it (each caller's
    journey is kept under its incident number).
    """
    facts = tables.get(CRIMES, crime_reference, FACTS_ROW)
    incidents = sorted(facts_from(facts).incidents) if facts else []
    partitions = [crime_reference, *incidents]
    journeys = [
        journey_from(e) for partition in partitions for e in tables.query_partition(JOURNEYS, partition)
    ]
    tasks = [
        OfficerTask.model_validate_json(str(entity.properties["task"]))
        for partition in partitions
        for entity in tables.query_partition(TASKS, partition)
    ]
    audit_entities = [e for partition in partitions for e in tables.query_partition(AUDIT, partition)]
    if person_id is not None:
        journeys = [journey for journey in journeys if journey.person_id == person_id]
        tasks = [task for task in tasks if task.person_id == person_id]
        # The person's own entries and the crime's (no one's); never another person's.
        audit_entities = [e for e in audit_entities if e.properties.get("person_id") in (person_id, "", None)]
    if not journeys and not tasks and not audit_entities:
        whom = f" and person {person_id}" if person_id is not None else ""
        raise OpsError(f"nothing is recorded for crime reference {crime_reference!r}{whom}")
    ledger = {
        entity.row_key: {k: _plain(entity.properties[k]) for k in _LEDGER_FIELDS if k in entity.properties}
        for partition in partitions
        for entity in tables.query_partition(MESSAGES, partition)
    }
    by_id = {task.task_id: task for task in tasks}
    audit_entities.sort(key=lambda e: (e.properties["at"], e.row_key))
    return {
        "crime_reference": crime_reference,
        "linked_incidents": incidents,
        "person_id": person_id,
        "personal_data_included": personal,
        "journeys": [
            {
                "person_id": journey.person_id,
                "role": journey.role,
                "kept_under": journey.crime_reference,
                "linked_crime": journey.linked_crime,
                "incident_categories": list(journey.incident_categories),
                "case_status": journey.case_status,
                "recorded_at": _iso(journey.recorded_at),
                "flags": list(journey.flags),
                "incident_number": journey.incident_number,
                "erased_at": _iso(journey.erased_at),
                "erased_because": journey.erased_because,
                **_person(journey, personal),
                "officer": _officer(journey, personal),
                "last_contact_at": _iso(journey.last_contact_at),
                "window_closes_at": _iso(journey.window_closes_at),
                "next_checkin_at": _iso(journey.next_checkin_at),
                "checkins": journey.checkins,
                "duties": [
                    _duty(duty, ledger, by_id)
                    for duty in sorted(journey.duties.values(), key=lambda d: (d.event_at, d.key))
                ],
            }
            for journey in journeys
        ],
        "tasks": [_task(task) for task in sorted(tasks, key=lambda t: (t.created_at, t.task_id))],
        "audit": [
            {
                "at": _plain(e.properties["at"]),
                "person_id": e.properties.get("person_id") or "",
                "duty": e.properties.get("duty") or "",
                "decision": e.properties.get("decision") or "",
                "reason": e.properties.get("reason") or "",
            }
            for e in audit_entities
        ],
    }


def as_json(view: dict[str, Any]) -> str:
    return json.dumps(view, indent=2, ensure_ascii=False)


def _yes(value: object) -> str:
    return "yes" if value else "no"


def _person_lines(journey: dict[str, Any]) -> list[str]:
    lines: list[str] = []
    if "victim" in journey:
        victim = journey["victim"]
        name = " ".join(filter(None, (victim.get("name") or {}).values())) or "(no name)"
        contact = victim.get("contact") or {}
        lines.append(f"  name: {name}; date of birth: {victim.get('date_of_birth') or '-'}")
        lines.append(f"  email: {contact.get('email') or '-'}; mobile: {contact.get('mobile') or '-'}")
        guardian = victim.get("guardian")
        if guardian:
            gname = " ".join(filter(None, (guardian.get("name") or {}).values())) or "(no name)"
            lines.append(
                f"  guardian: {gname}; email: {guardian.get('email') or '-'}; mobile: {guardian.get('mobile') or '-'}"
            )
        prefs, safe = victim.get("preferences") or {}, victim.get("safe_contact") or {}
        rights = victim.get("enhanced_rights") or []
    elif "caller" in journey:
        caller = journey["caller"]
        name = " ".join(filter(None, (caller.get("name") or {}).values())) or "(no name)"
        contact = caller.get("contact") or {}
        lines.append(f"  name: {name}")
        lines.append(f"  email: {contact.get('email') or '-'}; mobile: {contact.get('mobile') or '-'}")
        lines.append(f"  consent to updates: {_yes(caller.get('consent_to_updates'))}")
        return lines
    elif "preferences" in journey:
        prefs, safe, rights = journey["preferences"], journey["safe_contact"], journey["enhanced_rights"]
        if journey.get("has_guardian"):
            lines.append("  guardian: on record")
    else:
        if "consent_to_updates" in journey:
            lines.append(f"  consent to updates: {_yes(journey['consent_to_updates'])}")
        return lines
    lines.append(
        f"  preferences: channel {prefs.get('channel')}, every {prefs.get('frequency_days')} days, "
        f"language {prefs.get('language')}, opted out {_yes(prefs.get('opted_out'))}; "
        f"safe to use: email {_yes(safe.get('email'))}, sms {_yes(safe.get('sms'))}; "
        f"enhanced rights: {', '.join(rights) or 'none'}"
    )
    return lines


def as_text(view: dict[str, Any]) -> str:
    """A readable account: each journey with its duties, then the tasks and the audit trail in time order."""
    lines = [
        f"Crime {view['crime_reference']}" + (f", person {view['person_id']}" if view["person_id"] else "")
    ]
    if view["linked_incidents"]:
        lines.append(
            f"Linked STORM incidents (their callers are shown too): {', '.join(view['linked_incidents'])}"
        )
    if not view["personal_data_included"]:
        lines.append(
            "(names and contact details withheld: add --include-personal-data --reason TEXT to show them)"
        )
    for journey in view["journeys"]:
        lines.append("")
        kept = f", kept under incident {journey['kept_under']}" if journey["role"] == "caller" else ""
        lines.append(f"Journey of {journey['person_id']} ({journey['role']}{kept})")
        # A caller's journey hears a change of status alone only with the next fact told (§7).
        status = "case status when last told" if journey["role"] == "caller" else "case status"
        lines.append(
            f"  {status}: {journey['case_status'] or '-'}; recorded at {journey['recorded_at'] or '-'}; "
            f"flags: {', '.join(journey['flags']) or 'none'}; incident: {journey['incident_number'] or '-'}"
            f"; STORM categories: {', '.join(journey['incident_categories']) or '-'}"
        )
        if journey["erased_at"]:
            lines.append(
                f"  erased {journey['erased_at']} ({journey['erased_because']}): names, contact details, "
                "duties and what they wrote are gone; the audit trail below is kept (ids only)"
            )
        lines.extend(_person_lines(journey))
        officer = journey["officer"]
        if officer is not None:
            who = f"{officer['employee_id']}" + (
                f" ({officer['collar_number']})" if officer["collar_number"] else ""
            )
            if "display_name" in officer:
                who += f" {officer['display_name']}, {officer.get('email') or '-'}, {officer.get('phone') or '-'}"
            if officer["generic"]:
                who += " [team contact]"
            lines.append(f"  officer in charge: {who}")
        lines.append(
            f"  last contact: {journey['last_contact_at'] or '-'}; next check-in: "
            f"{journey['next_checkin_at'] or '-'}; check-ins so far: {journey['checkins']}"
        )
        lines.append(f"  duties ({len(journey['duties'])}):")
        for duty in journey["duties"]:
            lines.append(
                f"    {duty['key']} [{duty['template']}] status {duty['status']}"
                + (f" ({duty['reason']})" if duty["reason"] else "")
                + f"; compliance {duty['compliance']}"
            )
            lines.append(
                f"      event {duty['event_at']}; due {duty['due_by'] or '-'}; handed over {duty['handed_at'] or '-'}"
            )
            if duty["details"]:
                lines.append(
                    "      details: " + ", ".join(f"{k}={v}" for k, v in sorted(duty["details"].items()))
                )
            for message in duty["messages"]:
                parts = [message["status"]]
                for label in ("channel", "sent_at", "reason", "provider_id"):
                    if message.get(label):
                        parts.append(f"{label} {message[label]}")
                lines.append(f"      message {message['message_key']}: " + "; ".join(parts))
            if duty["task_id"]:
                lines.append(f"      task {duty['task_id']}")
    lines.append("")
    lines.append(f"Officer tasks ({len(view['tasks'])}):")
    for task in view["tasks"]:
        lines.append(
            f"  {task['task_id']} {task['person_id']} [{', '.join(task['duties'])}] {task['reason']}; "
            f"assignee {task['assignee']}; due {task['due_by'] or '-'}; created {task['created_at']}"
        )
    lines.append("")
    count = len(view["audit"])
    lines.append(f"Audit trail ({count} {'entry' if count == 1 else 'entries'}, oldest first):")
    for entry in view["audit"]:
        lines.append(
            f"  {entry['at']}  {entry['person_id'] or '-'}  {entry['duty'] or '-'}  {entry['decision']}  {entry['reason']}"
        )
    return "\n".join(lines)
