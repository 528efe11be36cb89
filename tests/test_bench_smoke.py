"""The benchmark harness runs: its smallest configuration prints a table row and exits 0.

No timing is asserted; the figures themselves are for the report (``python -m bench``).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_bench_quick_reservations_prints_a_row() -> None:
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
    assert any("overspend check" in row for row in rows)
