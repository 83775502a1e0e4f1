"""Command line of the operations commands.

python -m shared.ops dead-letters list   [--queue Q] [--data DIR]
python -m shared.ops dead-letters replay [--queue Q] (--id MESSAGE_ID | --all) [--data DIR]
python -m shared.ops quarantine list     [--feed niche|storm] [--data DIR]
python -m shared.ops quarantine reingest [--feed F] (--row ROWKEY [--record-file FILE] | --all) [--data DIR]
python -m shared.ops journey show CRIME_REF [--person ID] [--format text|json] [--include-personal-data]
python -m shared.ops compliance --from DATE --to DATE --out DIR [--data DIR]
                                [--go-live DATE] [--update-days N]

Every command also takes --at ISO8601 (the time it acts at). A bad argument is one
line on stderr and exit status 2. Install with: pip install -r requirements-ops.txt (a command
whose library is missing says so at once, exit status 1).
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from pathlib import Path

from azure.core.exceptions import AzureError

from shared.cli import Parser, day, file_in_the_way, iso8601
from shared.ops.context import Context, OpsError

PROG = "python -m shared.ops"
WHERE = (
    "State: the run folder's state.db, or Table Storage when StateStorage or "
    "StateStorage__tableServiceUri is set. Dead letters: the run folder's queues.db, or the "
    "Service Bus queues' dead-letter sub-queues when ServiceBusConnection or "
    "ServiceBusConnection__fullyQualifiedNamespace is set."
)


def _days(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number of days: {value!r}") from None
    if not 1 <= number <= 365:
        raise argparse.ArgumentTypeError(f"must be 1 to 365 days: {value}")
    return number


def _common() -> Parser:
    common = Parser(add_help=False)
    common.add_argument(
        "--data",
        type=Path,
        metavar="DIR",
        help="a local run's out folder, with state.db and queues.db (default: LOCAL_DATA_DIR, .local)",
    )
    common.add_argument(
        "--at",
        type=iso8601,
        metavar="ISO8601",
        help="the time the command acts at (default: now; in a simulated run's folder, the run's end)",
    )
    return common


def _parser() -> argparse.ArgumentParser:
    common = _common()
    parser = Parser(prog=PROG, description="Operations commands for Victim Updates.", epilog=WHERE)
    commands = parser.add_subparsers(dest="command", required=True, parser_class=Parser, metavar="COMMAND")

    dead = commands.add_parser(
        "dead-letters",
        help="list or replay dead letters (a local run's queues, or Service Bus)",
        description="The dead letters of a local run's queues, or of the Service Bus queues when the "
        "settings name Service Bus (bodies are never printed: they hold personal data).",
    )
    dead_actions = dead.add_subparsers(dest="action", required=True, parser_class=Parser, metavar="ACTION")
    dead_list = dead_actions.add_parser(
        "list",
        parents=[common],
        help="one line a dead letter: queue, message id, session, reason",
        description="One tab-separated line a dead letter: queue, message id, session (- for none), "
        "reason. Bodies are never printed: they hold personal data. With none, one line on stderr "
        "says so (stdout stays empty).",
    )
    dead_list.add_argument("--queue", metavar="Q", help="one queue only")
    dead_replay = dead_actions.add_parser(
        "replay",
        parents=[common],
        help="resubmit dead letters to their queue (after a fix) and remove them",
        description="Resubmit dead letters to their queue under a fresh message id (keeping the "
        "session) and remove them from the dead letters. The fresh id is the original message's id "
        "and which replay of it this is: ORIGINAL#replay-1 for a message dead-lettered the first "
        "time, ORIGINAL#replay-2 when that replay was dead-lettered in its turn, and so on; it "
        "depends on nothing else, so a replay interrupted after sending and run again sends the same "
        "id, which the queue's duplicate detection drops.",
    )
    dead_replay.add_argument("--queue", metavar="Q", help="one queue only")
    which = dead_replay.add_mutually_exclusive_group(required=True)
    which.add_argument("--id", dest="message_id", metavar="MESSAGE_ID", help="the dead letter to replay")
    which.add_argument("--all", action="store_true", help="every dead letter (of --queue)")

    quarantine = commands.add_parser("quarantine", help="list or re-ingest quarantined feed records")
    q_actions = quarantine.add_subparsers(dest="action", required=True, parser_class=Parser, metavar="ACTION")
    q_list = q_actions.add_parser(
        "list",
        parents=[common],
        help="one line a record: feed, row key, error, crime reference (never the record)",
        description="One tab-separated line a quarantined record: feed, row key, error, and its crime "
        "reference (Niche) or incident number (STORM), or 'no crime_reference ...' saying why it has "
        "none. The record itself is never printed: it holds personal data. With none, one line on "
        "stderr says so (stdout stays empty).",
    )
    q_list.add_argument("--feed", choices=("niche", "storm"), help="one feed only")
    q_reingest = q_actions.add_parser(
        "reingest",
        parents=[common],
        help="run quarantined records through ingest again; emit and delete those that now validate",
        description="Run quarantined records (or, for one --row, a corrected --record-file) through "
        "the ingest step's validation again. A record that now validates is emitted as ingest emits it "
        "(a case change, on case-changes for Niche and journey-events for STORM, and a snapshot, or a "
        "stale audit entry), audited, and its "
        "quarantine row deleted; the feed cursor is not moved. One that still fails is kept, with its "
        "new reason. Case changes go to Service Bus when the settings name it, else to the run folder's "
        "queues.db. Prints one tab-separated line a record (reingested or kept, feed, row key, what "
        "ingest did or why it still fails), then how many were reingested and kept, and how many "
        "records are still quarantined in all (by feed).",
    )
    q_reingest.add_argument(
        "--feed", choices=("niche", "storm"), help="one feed only (needed when --row is in both)"
    )
    rows = q_reingest.add_mutually_exclusive_group(required=True)
    rows.add_argument("--row", metavar="ROWKEY", help="one quarantined record, by its row key")
    rows.add_argument("--all", action="store_true", help="every quarantined record (of --feed)")
    q_reingest.add_argument(
        "--record-file", type=Path, metavar="FILE", help="a corrected record to ingest in place of --row's"
    )

    journey = commands.add_parser("journey", help="one crime's journeys and audit trail")
    j_actions = journey.add_subparsers(dest="action", required=True, parser_class=Parser, metavar="ACTION")
    j_show = j_actions.add_parser(
        "show",
        parents=[common],
        help="journeys, duties, messages, tasks and the audit trail of one crime",
        description="For a complaint or a subject access request. Names and contact details are "
        "withheld unless --include-personal-data is given.",
    )
    j_show.add_argument("crime_reference", metavar="CRIME_REF", help="the Niche crime reference")
    j_show.add_argument("--person", metavar="ID", help="one person's journey, tasks and audit entries")
    j_show.add_argument(
        "--format", choices=("text", "json"), default="text", help="text for reading (default), or json"
    )
    j_show.add_argument(
        "--include-personal-data", action="store_true", help="show names, dates of birth and contacts"
    )
    j_show.add_argument(
        "--reason",
        metavar="TEXT",
        help="why personal data is shown (required with --include-personal-data; kept in the access log)",
    )

    commands.add_parser(
        "access-log",
        parents=[common],
        help="who showed or erased personal data, when and why",
        description="Every showing of personal data (journey show --include-personal-data) and every "
        "erasure, oldest first: the time, the operating-system user, what was done, the crime, the "
        "person and the reason given.",
    )

    erase = commands.add_parser(
        "erase",
        parents=[common],
        help="remove a person's data from the tables, queues and quarantine (journey-rules.md §16)",
        description="For an erasure request. The person's journeys keep their ids and decisions and "
        "lose names, dates of birth, contact details, page choices, links and what they wrote; they are "
        "taken out of the stored feed records (and of every later record), of the quarantine, and of "
        "the messages on the queues and among the dead letters. The request is kept in the access log "
        "first. Running it again changes nothing more.",
    )
    erase.add_argument("--person", required=True, metavar="ID", help="the person id (Niche or STORM)")
    erase.add_argument("--reason", required=True, metavar="TEXT", help="why (kept in the access log)")

    link = commands.add_parser("link", help="a recipient's personal link (journey-rules.md §13)")
    l_actions = link.add_subparsers(dest="action", required=True, parser_class=Parser, metavar="ACTION")
    l_revoke = l_actions.add_parser(
        "revoke",
        parents=[common],
        help="revoke a recipient's link: it opens nothing from now, and their next message carries a new one",
        description="For a link sent to the wrong address, or seen by someone it was not meant for.",
    )
    l_revoke.add_argument("crime_reference", metavar="CRIME_REF", help="the Niche crime reference")
    l_revoke.add_argument(
        "--person", required=True, metavar="ID", help="whose link (Niche or STORM person id)"
    )

    report = commands.add_parser(
        "compliance",
        parents=[common],
        help="compliance report (CSV and HTML) over duties due in a date range, and repeat contacts",
        description="Writes compliance.csv (one row a duty: what it is, and for a breach why, its task "
        "and assignee), repeat-contacts.csv (one row a week: victims' calls for an update per 100 open "
        "crimes, overall and split by a recent update) and compliance.html (self-contained, charts "
        "embedded) for the duties whose deadline falls from --from to --to and the calls made in that "
        "time (local dates). Times are given in the policy's time zone.",
    )
    report.add_argument(
        "--from", dest="first", type=day, required=True, metavar="DATE", help="first day (YYYY-MM-DD)"
    )
    report.add_argument(
        "--to", dest="last", type=day, required=True, metavar="DATE", help="last day, included (YYYY-MM-DD)"
    )
    report.add_argument(
        "--out", type=Path, required=True, metavar="DIR", help="the folder to write the report to"
    )
    report.add_argument(
        "--go-live",
        dest="go_live",
        type=day,
        metavar="DATE",
        help="the day the service went live: repeat contacts before it and from it on, and the change "
        "(after --from, not after --to)",
    )
    report.add_argument(
        "--update-days",
        dest="update_days",
        type=_days,
        default=14,
        metavar="N",
        help="a victim sent a message in the N days before a call counts as recently updated (default 14)",
    )
    return parser


def _dead_letters(args: argparse.Namespace, context: Context) -> int:
    from shared.ops import dead_letters

    none = f"no dead letters{f' on queue {args.queue}' if args.queue else ''}"
    if context.settings.uses_service_bus():
        bus = context.service_bus_dead_letters()
        try:
            if args.action == "list":
                lines = dead_letters.list_lines(bus.peek(args.queue))
                for line in lines:
                    print(line)
                if not lines:
                    _none(none)
                return 0
            done = bus.replay(args.queue, args.message_id)
        finally:
            bus.client.close()
    elif args.action == "list":
        lines = dead_letters.list_lines(dead_letters.list_dead_letters(context.broker, args.queue))
        for line in lines:
            print(line)
        if not lines:
            _none(none)
        return 0
    else:
        store = dead_letters.EmbeddedDeadLetters(context.queues_path)
        try:
            done = dead_letters.replay(context.broker, store, queue=args.queue, message_id=args.message_id)
        finally:
            store.close()
    for item in done:
        print(f"replayed\t{item.queue}\t{item.message_id}\tas {item.new_message_id}")
    print(f"{len(done)} dead letter{'' if len(done) == 1 else 's'} replayed")
    return 0


def _none(message: str) -> None:
    """An empty listing says so, on stderr: stdout keeps to one tab-separated line an item, and
    a script counting or splitting those lines finds none."""
    print(message, file=sys.stderr)


def _quarantine(args: argparse.Namespace, context: Context) -> int:
    from shared.ops import quarantine

    if args.action == "list":
        lines = quarantine.list_lines(quarantine.list_quarantined(context.tables, args.feed))
        for line in lines:
            print(line)
        if not lines:
            _none(f"no quarantined records{f' in the {args.feed} feed' if args.feed else ''}")
        return 0
    if args.record_file is not None and args.row is None:
        raise OpsError("--record-file needs --row ROWKEY: a corrected record replaces one row")
    corrected = quarantine.read_record_file(args.record_file) if args.record_file is not None else None
    if args.row is not None:
        chosen = [quarantine.find(context.tables, args.feed, args.row)]
    else:
        chosen = quarantine.list_quarantined(context.tables, args.feed)
    services = context.services()
    ingested = 0
    for row in chosen:
        outcome = quarantine.reingest(services, row, corrected)
        ingested += outcome.ingested
        state = "reingested" if outcome.ingested else "kept"
        print(f"{state}\t{outcome.feed}\t{outcome.row_key}\t{' '.join(outcome.detail.split())}")
    # What is left in quarantine: every feed's rows, not only those this command was given.
    left = quarantine.counts(context.tables)
    by_feed = ", ".join(f"{feed} {count}" for feed, count in left.items())
    print(
        f"{ingested} reingested, {len(chosen) - ingested} kept; "
        f"{sum(left.values())} still quarantined ({by_feed})"
    )
    return 0


def _journey(args: argparse.Namespace, context: Context) -> int:
    from shared.ops import access_log, journeys

    if args.include_personal_data:
        if not (args.reason or "").strip():
            raise OpsError("--include-personal-data needs --reason TEXT: why the personal data is shown")
        access_log.record(
            context.tables,
            "show",
            args.crime_reference,
            args.person,
            args.reason.strip(),
            context.clock.now(),
        )

    view = journeys.journey_view(
        context.tables, args.crime_reference, args.person, personal=args.include_personal_data
    )
    print(journeys.as_json(view) if args.format == "json" else journeys.as_text(view))
    return 0


def _link(args: argparse.Namespace, context: Context) -> int:
    from shared.adapters.repositories import TableLinks

    revoked = TableLinks(context.tables).revoke(args.crime_reference, args.person, context.clock.now())
    if revoked is None:
        raise OpsError(f"{args.crime_reference} person {args.person} has no personal link")
    print(
        f"revoked the link of {args.crime_reference} person {args.person}; their next message carries a new one"
    )
    return 0


def _erase(args: argparse.Namespace, context: Context) -> int:
    from shared.ops import erase

    print("\n".join(erase.erase(context, args.person, args.reason).lines()))
    return 0


def _access_log(args: argparse.Namespace, context: Context) -> int:
    from shared.ops import access_log

    entries = access_log.entries(context.tables)
    print("\n".join(access_log.as_line(entry) for entry in entries) if entries else "no access recorded")
    return 0


def _compliance(args: argparse.Namespace, context: Context) -> int:
    from zoneinfo import ZoneInfo

    from shared.ops.compliance import read_synthetic_marker, repeat_lines, write_report

    if args.first > args.last:
        raise OpsError(f"--from {args.first} is after --to {args.last}")
    if args.go_live is not None and not args.first < args.go_live <= args.last:
        raise OpsError(
            f"--go-live {args.go_live} is not after --from {args.first} and on or before --to {args.last}: "
            "there would be nothing to compare"
        )
    if args.out.exists() and not args.out.is_dir():
        raise OpsError(f"--out exists and is not a folder: {args.out}")
    if (above := file_in_the_way(args.out)) is not None:
        raise OpsError(f"--out cannot be made under a file: {args.out} ({above} is a file)")
    zone = ZoneInfo(context.policy.deadlines.timezone)
    report = write_report(
        context.tables,
        args.first,
        args.last,
        args.out,
        zone,
        context.clock.now(),
        policy=context.policy,
        update_days=args.update_days,
        go_live=args.go_live,
        synthetic=read_synthetic_marker(None if context.in_table_storage else context.data),
    )
    figure = "n/a" if report.compliance is None else f"{report.compliance:.1%}"
    counts = report.counts
    print(
        f"{report.duties} duties due {args.first} to {args.last}: {counts.get('met', 0)} met, "
        f"{counts.get('breached', 0)} breached, {counts.get('pending', 0)} pending; compliance {figure}"
    )
    for line in repeat_lines(report):
        print(line)
    print(f"wrote {report.csv_path}, {report.repeat_csv_path} and {report.html_path}")
    return 0


_COMMANDS = {
    "dead-letters": _dead_letters,
    "quarantine": _quarantine,
    "journey": _journey,
    "link": _link,
    "access-log": _access_log,
    "erase": _erase,
    "compliance": _compliance,
}


# What a command needs beyond the app's own requirements (requirements-ops.txt installs it): checked
# before the command starts, so that it fails at once and says what to install, never half-way.
OPS_REQUIREMENTS = "requirements-ops.txt"
_NEEDS = {"compliance": ("the compliance report", ("matplotlib",))}


def _missing(command: str) -> str | None:
    what, modules = _NEEDS.get(command, ("", ()))
    for module in modules:
        try:
            importlib.import_module(module)
        except ImportError:
            return f"{what} needs {module}, which is not installed: pip install -r {OPS_REQUIREMENTS}"
    return None


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    name = " ".join(filter(None, (PROG, args.command, getattr(args, "action", None))))
    if (missing := _missing(args.command)) is not None:
        print(f"{name}: error: {missing}", file=sys.stderr)
        return 1
    try:
        with Context(args.data, args.at) as context:
            return _COMMANDS[args.command](args, context)
    except OpsError as exc:
        print(f"{name}: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # the reader went away (| head): say nothing more
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except AzureError as exc:  # Table Storage or Service Bus unreachable, refused, or the credential failed
        from azure.servicebus.exceptions import ServiceBusError

        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        service = "Service Bus" if isinstance(exc, ServiceBusError) else "Table Storage"
        print(f"{name}: error: {service}: {reason}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
