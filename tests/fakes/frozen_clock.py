"""Run the real CLI with the wall clock set to a given instant, without touching production code.

Usage (test-only)::

    python -m tests.fakes.frozen_clock 2026-12-02T04:30:00+00:00 -- <bot cli args...>

The process's wall clock (``datetime.now``, ``time.time``) starts at that instant and ticks
from there (time-machine); the monotonic clock, which asyncio's timeouts use, is untouched.
Tests that run the CLI in a subprocess use it so that what they assert does not depend on the
hour or the date CI happens to run at (a guild's daily period, say, starts at a local hour).
"""

from __future__ import annotations

import sys
from datetime import datetime

import time_machine


def main(argv: list[str]) -> int:
    """``<iso instant> -- <cli args>``: run ``bot.cli.main`` at that instant; its exit code."""
    if len(argv) < 2 or argv[1] != "--":
        sys.stderr.write("usage: python -m tests.fakes.frozen_clock ISO_INSTANT -- ARGS...\n")
        return 2
    instant = datetime.fromisoformat(argv[0])
    if instant.tzinfo is None:
        sys.stderr.write("frozen_clock: give the instant with its UTC offset\n")
        return 2
    from bot.cli import main as cli_main

    with time_machine.travel(instant, tick=True):
        return cli_main(argv[2:])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
