"""The benchmark harness runs: its smallest configuration prints a table row and exits 0.

No timing is asserted; the figures themselves are for the report (``python -m bench``).
"""

from __future__ import annotations

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
