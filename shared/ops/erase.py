"""``python -m shared.ops erase``: a person's data removed on request (journey-rules.md §16).

Each crime (or STORM incident) the person has a journey in is erased as the retention timer
erases it (``shared/steps/retention.py``), the request first kept in the access log; then
their quarantined records go, and they are taken out of every message on the queues and
among the dead letters (a message that is wholly theirs, such as what they wrote to their
officer, goes). ``outbox.jsonl`` and ``officer-mail.jsonl`` stand for what the providers were
given, which is not our store, and are left as they are.

With Service Bus configured, its dead letters are gone through instead of the run folder's
queues (``ServiceBusDeadLetters.rewrite``); the messages waiting on its queues cannot be
rewritten, and the summary says so: they are consumed within minutes, nothing moves an erased
journey or is sent for it, and the one that waits for days, a task's reminder, carries nothing
the person wrote.

With the state in a local run folder, its other output files that can hold their data are
written again from what is left.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from shared.adapters.table_layout import JOURNEYS, QUARANTINE
from shared.domain.retention import scrub_message
from shared.local.run import rewrite_outputs_after_erasure
from shared.ops import access_log
from shared.ops.context import Context, OpsError
from shared.steps.retention import Erased, erase_in, quarantined_of, remove_quarantined


@dataclass
class Erasure:
    """What erasing one person removed (counts and ids only)."""

    person_id: str
    partitions: list[Erased] = field(default_factory=list)
    quarantined: int = 0
    messages_rewritten: int = 0
    messages_removed: int = 0
    on_service_bus: bool = False  # the dead letters of the Service Bus queues, not the run folder's
    outputs: list[str] = field(default_factory=list)  # the run folder's files written again

    def lines(self) -> list[str]:
        found = [
            f"erased\t{e.partition}\tjourney {'erased' if e.journey else 'already erased'}, "
            f"{e.snapshots} feed record{'s' if e.snapshots != 1 else ''}, {e.tasks} task note"
            f"{'s' if e.tasks != 1 else ''}, {e.choices} page choice{'s' if e.choices != 1 else ''}, "
            f"{e.links} link row{'s' if e.links != 1 else ''}"
            for e in self.partitions
        ]
        newly = sum(1 for e in self.partitions if e.journey)
        earlier = len(self.partitions) - newly
        before = f" ({earlier} already {'was' if earlier == 1 else 'were'})" if earlier else ""
        rewritten = self.messages_rewritten
        if self.on_service_bus:
            messages = (
                f"{rewritten} Service Bus dead letter{'s' if rewritten != 1 else ''} sent again to "
                f"{'their queues' if rewritten != 1 else 'its queue'} without them, {self.messages_removed} "
                "removed; messages waiting on the Service Bus queues cannot be rewritten: they are consumed "
                "within minutes, and nothing moves an erased journey or is sent for it"
            )
        else:
            messages = (
                f"{rewritten} queued or dead-lettered message{'s' if rewritten != 1 else ''} rewritten "
                f"without them, {self.messages_removed} removed"
            )
        return [
            *found,
            f"{newly} journey{'s' if newly != 1 else ''} of person {self.person_id} erased"
            f"{before}; {self.quarantined} quarantined record"
            f"{'s' if self.quarantined != 1 else ''} removed; {messages}",
            *(
                [f"{', '.join(self.outputs)} of the run folder written again without them"]
                if self.outputs
                else []
            ),
        ]


def erase(context: Context, person_id: str, reason: str) -> Erasure:
    """Erase the person from everything the app can reach (its tables, queues, their dead letters,
    the quarantine and a local run folder), after keeping the request. Event Grid's dead-lettered
    delivery reports are out of the app's reach (docs/journey-rules.md §16)."""
    person_id, reason = person_id.strip(), reason.strip()
    if not person_id:
        raise OpsError("--person needs a person id")
    if not reason:
        raise OpsError("--reason needs the reason for the erasure (kept in the access log)")
    tables = context.tables
    now = context.clock.now()
    partitions = sorted({e.partition_key for e in tables.with_row_key(JOURNEYS, person_id)})
    services = context.services()
    quarantined = quarantined_of(tables.export(QUARANTINE), [person_id], services.blobs)
    service_bus = context.settings.uses_service_bus()
    broker = None if service_bus else context.broker  # the run folder's queues (a clear error if none)
    # Kept first: an erasure that fails half-way is still on record (and safe to run again).
    for partition in partitions or ["-"]:
        access_log.record(tables, "erase", partition, person_id, reason, now)
    done = Erasure(person_id)
    for partition in partitions:
        done.partitions.append(erase_in(partition, person_id, services, now, "request"))
    for row in quarantined:
        remove_quarantined(row, tables, services.blobs)
    done.quarantined = len(quarantined)

    def scrub(body: str) -> str | None:
        return scrub_message(body, {person_id})

    if broker is not None:
        done.messages_rewritten, done.messages_removed = broker.rewrite(scrub)
        done.outputs = rewrite_outputs_after_erasure(context.data, tables, broker, context.policy)
    else:
        done.on_service_bus = True
        done.messages_rewritten, done.messages_removed = _service_bus_dead_letters(context, scrub)
    return done


def _service_bus_dead_letters(context: Context, scrub: Callable[[str], str | None]) -> tuple[int, int]:
    """The person taken out of the Service Bus queues' dead letters: (rewritten, removed)."""
    dead_letters = context.service_bus_dead_letters()
    try:
        return dead_letters.rewrite(scrub)
    finally:
        dead_letters.client.close()
