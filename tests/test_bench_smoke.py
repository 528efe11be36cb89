"""The benchmark harness runs: its smallest configuration prints a table row and exits 0.

No timing is asserted; the figures themselves are for the report (``python -m bench``).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_bench_quick_reservations_reads_zero_overspend() -> None:
    """The reservations benchmark runs the production path and its overspend figure is 0."""
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--only", "reservations"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    lines = done.stdout.splitlines()
    assert lines[0].split(" | ")[0].strip() == "benchmark"
    rows = [line for line in lines if line.startswith("reservations ")]
    assert rows, done.stdout
    overspend = [row.split(" | ") for row in rows if "overspend" in row]
    assert len(overspend) == 1, rows
    _, _, measured, target, verdict = (cell.strip() for cell in overspend[0])
    assert measured.startswith("0 (") and target == "0" and verdict == "met", overspend[0]


def test_bench_quick_shared_reads_zero_overspend_from_three_processes(
    postgres_server_url: str,
) -> None:
    """Three real processes reserving for one guild on one PostgreSQL database (and one
    process alone) never spend more than the allowance, and spend all of it."""
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--only", "shared"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
        env={**os.environ, "PIKABOT_TEST_POSTGRES_URL": postgres_server_url},
    )
    assert done.returncode == 0, done.stderr[-2000:]
    rows = [line.split(" | ") for line in done.stdout.splitlines() if "overspend" in line]
    assert len(rows) == 2, done.stdout
    for row in rows:
        _, _, measured, target, verdict = (cell.strip() for cell in row)
        assert measured.startswith("0 (") and target == "0" and verdict == "met", row
        fundable = measured.split("(")[2].split(" of ")  # "(N of N fundable)"
        assert fundable[0] == fundable[1].split()[0], measured
