"""Command line of the local host (a stable interface: test teams script against it).

python -m shared.local run --feeds DIR --officers FILE --out DIR
                           [--start ISO8601] [--end ISO8601] [--policy FILE]
                           [--delivery-reports FILE] [--processes N]
python -m shared.local generate --crimes N --days D --seed S --out DIR [--start YYYY-MM-DD]
python -m shared.local serve --data DIR [--host 127.0.0.1] [--port 8080]
"""

from __future__ import annotations

import argparse
import sys
from datetime import datetime
from pathlib import Path

from shared.cli import Parser, day, iso8601
from shared.local.generate import DEFAULT_START


def _positive(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {value!r}") from None
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1: {value}")
    return number


def _parser() -> argparse.ArgumentParser:
    parser = Parser(prog="python -m shared.local", description="Run Victim Updates locally.")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
    run = commands.add_parser(
        "run", help="replay feeds through the functions (all but the victim's page) on a simulated clock"
    )
    run.add_argument("--feeds", type=Path, required=True, help="folder with niche.jsonl and/or storm.jsonl")
    run.add_argument("--officers", type=Path, required=True, help="officer directory JSON file")
    run.add_argument("--out", type=Path, required=True, help="output folder")
    run.add_argument("--start", type=iso8601, help="simulated start (default: earliest modified_at)")
    run.add_argument("--end", type=iso8601, help="simulated end (default: latest modified_at + 35 days)")
    run.add_argument(
        "--policy",
        type=Path,
        help="journey policy file (default: JOURNEY_POLICY_PATH, else the shipped policy)",
    )
    run.add_argument(
        "--processes",
        type=_positive,
        default=1,
        help="how many processes replay the feeds at once, each taking whole crimes with their "
        "incidents, merged into one run's folder at the end (default 1; more needs a new --out)",
    )
    run.add_argument(
        "--delivery-reports",
        type=Path,
        help="the embedded provider's delivery reports: a JSON object from address to "
        '{"status": Delivered|Failed|Bounced|Suppressed|Quarantined|Expired, "after_seconds": n} '
        "(an address not in it is Delivered after 30 seconds)",
    )
    gen = commands.add_parser(
        "generate",
        help="write a synthetic sample of the feeds",
        description="Writes niche.jsonl, storm.jsonl, officers.json, delivery-reports.json and "
        "synthetic.json to --out: the same arguments always write the same files.",
    )
    gen.add_argument("--crimes", type=_positive, required=True, help="how many crimes (at least 1)")
    gen.add_argument(
        "--days",
        type=_positive,
        required=True,
        help="the days over which the crimes are recorded (their follow-ups run up to 60 days beyond)",
    )
    gen.add_argument("--seed", type=int, required=True, help="the random seed (a whole number)")
    gen.add_argument(
        "--out", type=Path, required=True, help="the folder to write to (made if missing; files replaced)"
    )
    gen.add_argument(
        "--start",
        type=_day,
        metavar="YYYY-MM-DD",
        help=f"the sample's first day (crimes are recorded from {DEFAULT_START:%H:%M} UTC that day; "
        f"default {DEFAULT_START:%Y-%m-%d})",
    )
    serve = commands.add_parser("serve", help="serve the victim's page over a run folder's state")
    serve.add_argument("--data", type=Path, required=True, help="the run folder (run --out)")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    serve.add_argument(
        "--port", type=_port, default=8080, help="port to listen on (default 8080; 0: any free)"
    )
    return parser


def _day(value: str) -> datetime:
    """A day (YYYY-MM-DD), as the moment of that day the generated sample starts at."""
    return datetime.combine(day(value), DEFAULT_START.timetz())


def _port(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {value!r}") from None
    if not 0 <= number <= 65535:
        raise argparse.ArgumentTypeError(f"not a port number: {value}")
    return number


def _serve(data: Path, host: str, port: int) -> int:
    from shared.settings import SettingsError
    from shared.web.server import make_server, url_of

    if data.exists() and not data.is_dir():
        return _error("serve", f"--data is not a folder: {data}")
    if not data.exists():  # it would serve empty state, and leave a queues.db behind
        return _error("serve", f"--data folder not found (a run's --out): {data}")
    try:
        server = make_server(data, host, port)
    except (OSError, SettingsError) as exc:
        return _error("serve", str(exc))
    print(f"serving the victim's page over {data} on {url_of(server)} (Ctrl+C stops)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


def _error(command: str, message: str) -> int:
    print(f"python -m shared.local {command}: error: {message}", file=sys.stderr)
    return 2


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "serve":
        return _serve(args.data, args.host, args.port)
    if args.command == "generate":
        from shared.local.generate import generate

        if args.out.exists() and not args.out.is_dir():
            return _error("generate", f"--out is not a folder: {args.out}")
        try:
            stats = generate(args.out, crimes=args.crimes, days=args.days, seed=args.seed, start=args.start)
        except OSError as exc:
            return _error("generate", f"cannot write to --out {args.out}: {exc.strerror}")
        print(
            f"wrote {stats.niche_records} Niche and {stats.storm_records} STORM records for {stats.crimes} crimes "
            f"({stats.malformed} malformed on purpose; {stats.update_calls} victims' calls for an update) "
            f"and {stats.officers} officers to {args.out}; "
            f"delivery-reports.json fails {stats.failing_addresses} of {stats.addresses} addresses"
        )
        return 0

    from shared.local.report import print_summary, progress
    from shared.local.run import RunError, RunRequest, run

    request = RunRequest(
        args.feeds,
        args.officers,
        args.out,
        args.start,
        args.end,
        args.policy,
        args.delivery_reports,
        processes=args.processes,
    )
    try:
        with progress() as on_progress:
            summary = run(request, on_progress)
    except RunError as exc:
        return _error("run", str(exc))
    from shared.local.generate import copy_synthetic_marker

    # Generated feeds say so; so does the run's folder, and the compliance report read from it.
    copy_synthetic_marker(args.feeds, args.out)
    print_summary(summary, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
