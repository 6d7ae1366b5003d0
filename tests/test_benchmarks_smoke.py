"""The benchmarks still run: each script with --quick, in a subprocess, reports
every row (no timing is asserted)."""

from __future__ import annotations

import importlib.util
import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"

# start_stop --quick: 2 gc modes x 4 library cases (0, 1 and 10 listeners, and
# individual_stop=False) x 2 sizes x 5 metrics; the cancel-scope reference's 2
# metrics per gc mode and size; 2 growth rows per gc mode and library case.
START_STOP_ROWS = 2 * 4 * 2 * 5 + 2 * 2 * 2 + 2 * 4 * 2
TRIOTP_ROWS = 1 + 2 * 4 if importlib.util.find_spec("triotp") is not None else 0


def run_benchmark(tmp_path: Path, script: str, *args: str) -> dict[str, Any]:
    output = tmp_path / "rows.json"
    completed = subprocess.run(
        [sys.executable, str(BENCHMARKS / script), "--quick", "--json", str(output)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    assert "| workload" in completed.stdout
    result: dict[str, Any] = json.loads(output.read_text())
    return result


@pytest.mark.parametrize(
    ("script", "rows"),
    [
        ("restart_throughput.py", 2),
        ("failure_latency.py", 2),
        ("start_stop.py", START_STOP_ROWS),
        ("triotp_compare.py", TRIOTP_ROWS),
    ],
    ids=lambda value: str(value),
)
def test_benchmark_reports_every_row(tmp_path: Path, script: str, rows: int) -> None:
    """A benchmark run with --quick reports each of its rows with real figures."""
    result = run_benchmark(tmp_path, script)
    assert len(result["rows"]) == rows
    for row in result["rows"]:
        # Tiny sizes may leave a memory figure at 0, hence a ratio at infinity.
        assert not math.isnan(row["library"]), row
        assert row["baseline"] >= 0, row
    if rows == 0:
        assert result["notes"] == [
            "triotp_compare: skipped, triotp is not installed here "
            f"(Python {sys.version.split()[0]}; triotp 0.3.1 needs Python 3.13)"
        ]


def test_run_all_writes_one_table_of_every_benchmark(tmp_path: Path) -> None:
    """run_all.py --quick gathers the rows of every benchmark into one JSON file."""
    result = run_benchmark(tmp_path, "run_all.py")
    workloads = {row["workload"] for row in result["rows"]}
    expected = {"restart_throughput", "failure_latency", "start_stop"}
    if TRIOTP_ROWS:
        expected.add("triotp_compare")
    assert workloads == expected
    assert len(result["rows"]) == 2 + 2 + START_STOP_ROWS + TRIOTP_ROWS
