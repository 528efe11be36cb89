"""``python -m bench [--quick] [--only NAME ...] [--keep]``: run the benchmarks, print a table.

Names: ack, bursts, completion, delivery, memory, jobs, reservations, storage, shared, takeover,
fit (in that order by default).
The exit code is 0 when every selected benchmark ran (whether or not its targets were met)
and 1 when one of them failed to run.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import shutil
import sys
import tempfile
import time
import traceback
from pathlib import Path

from bench.common import Config, Row, Rows, log_to_file, render

BENCHMARKS = (
    "ack",
    "bursts",
    "completion",
    "delivery",
    "memory",
    "jobs",
    "reservations",
    "storage",
    "shared",
    "takeover",
    "fit",
)
TIME_LIMITS = {  # seconds per benchmark (full run); each one is cancelled past its limit
    "ack": 240,
    "bursts": 300,
    "completion": 120,
    "delivery": 240,
    "memory": 180,
    "jobs": 300,
    "reservations": 120,
    "storage": 120,
    "shared": 240,
    "takeover": 240,
    "fit": 900,
}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small counts: a smoke run")
    parser.add_argument(
        "--only",
        action="append",
        choices=BENCHMARKS,
        metavar="NAME",
        help=f"run only this benchmark (repeatable): {', '.join(BENCHMARKS)}",
    )
    parser.add_argument("--keep", action="store_true", help="keep the work folder (logs, DBs)")
    return parser


async def _run_one(name: str, cfg: Config) -> Rows:
    module = importlib.import_module(f"bench.{name}")
    async with asyncio.timeout(TIME_LIMITS[name]):
        result: Rows = await module.run(cfg)
        return result


async def _main(names: list[str], cfg: Config) -> tuple[list[Row], list[str], bool]:
    rows: list[Row] = []
    notes: list[str] = []
    ok = True
    for name in names:
        started = time.monotonic()
        print(f"running {name} ...", file=sys.stderr, flush=True)
        try:
            result = await _run_one(name, cfg)
        except Exception as exc:  # report and carry on with the other benchmarks
            ok = False
            traceback.print_exc()
            rows.append(Row(name, "ERROR", f"{type(exc).__name__}: {exc}"[:120]))
            continue
        rows.extend(result.items)
        notes.extend(result.notes)
        print(f"  {name} took {time.monotonic() - started:.1f} s", file=sys.stderr, flush=True)
    return rows, notes, ok


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit code."""
    args = _parser().parse_args(argv)
    names = [n for n in BENCHMARKS if not args.only or n in args.only]
    workdir = Path(tempfile.mkdtemp(prefix="pikabench-"))
    cfg = Config(quick=args.quick, workdir=workdir)
    log_to_file(workdir / "bench.log")  # the in-process bot code logs as in production
    try:
        rows, notes, ok = asyncio.run(_main(names, cfg))
    finally:
        if args.keep:
            print(f"work folder kept: {workdir}", file=sys.stderr)
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    print(render(rows))
    for note in notes:
        print(f"note: {note}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
