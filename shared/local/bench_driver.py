"""One ``--compare`` child: a generated sample through the ``shared`` package in ``--code``.

  python -P shared/local/bench_driver.py --code DIR --feeds FEEDS --out OUT [--label LABEL]

Run by path (``-P``: neither this folder nor the working folder goes on ``sys.path``), never as
``-m``: ``--code`` is any commit's checkout and goes first on ``sys.path``, so every ``shared``
import, the local host's included, is that commit's. The measuring is this code's: bench.py is
loaded from beside this file by path (it imports only the standard library at the top) and its
``measure_run`` counts through the run's ``prepare`` hook; a hook the older code lacks leaves
its figure None. Writes ``result.json`` under ``--out``; a failure is one line on stderr, exit 1.

With ``--label``, a line on stderr every ``HEARTBEAT_SECONDS`` says the run goes on (its wall and
CPU so far, prefixed ``[LABEL]``), whichever commit's code it runs: an older run's own progress
callback has another shape, so the line is the driver's, and a force-year's hour is never silent.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
import threading
import time
from pathlib import Path
from typing import TextIO

# As the local run's own progress lines (shared/local/report.py's PROGRESS_SECONDS), written again
# here: this driver imports no ``shared`` module of its own, only --code's.
HEARTBEAT_SECONDS = 10.0


def _heartbeat(
    label: str, stop: threading.Event, interval: float = HEARTBEAT_SECONDS, stream: TextIO | None = None
) -> None:
    """Until ``stop``: a line every ``interval`` seconds of wall time, in one write (on stderr), with
    this process's CPU so far."""
    out = sys.stderr if stream is None else stream
    started = time.monotonic()
    while not stop.wait(interval):
        wall = time.monotonic() - started
        out.write(
            f"[{label}] progress: running, {wall / 60:.1f} min elapsed, {time.process_time():.0f} s CPU\n"
        )
        out.flush()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench_driver")
    parser.add_argument("--code", type=Path, required=True, help="a checkout whose shared package runs")
    parser.add_argument("--feeds", type=Path, required=True, help="the generated sample")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--label", help="say every few seconds on stderr that the run goes on")
    parser.add_argument("--processes", type=int, default=1, help="the run in this many processes")
    args = parser.parse_args(argv)
    code, feeds, out = args.code.resolve(), args.feeds.resolve(), args.out.resolve()
    sys.path.insert(0, str(code))
    os.chdir(code)
    spec = importlib.util.spec_from_file_location("_bench_measuring", Path(__file__).with_name("bench.py"))
    assert spec is not None and spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)

    import shared

    imported = Path(shared.__file__).resolve().parent
    if imported != code / "shared":
        print(f"bench: the shared package came from {imported}, not {code}", file=sys.stderr)
        return 1
    stop = threading.Event()
    if args.label:
        threading.Thread(target=_heartbeat, args=(args.label, stop), daemon=True).start()
    try:
        result = {"code_folder": str(code), **bench.measure_run(feeds, out / "run", processes=args.processes)}
    finally:
        stop.set()
    out.mkdir(parents=True, exist_ok=True)
    (out / "result.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
