"""The soak in small: soak/soak.py --quick, as the suite can afford (seconds)."""

from __future__ import annotations

import pathlib
import subprocess
import sys

SOAK = pathlib.Path(__file__).parent.parent / "soak" / "soak.py"


def test_quick_soak_keeps_memory_flat_and_leaks_no_task() -> None:
    """10,000 restarts of a failing service and 6,000 add-and-remove cycles keep
    memory under the bound, leave no task and lose no listener update."""
    result = subprocess.run(
        [sys.executable, str(SOAK), "--quick"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    rows = result.stdout.splitlines()[2:]
    assert len(rows) == 2
    assert all(row.endswith("  ok") for row in rows), result.stdout
    assert rows[0].startswith("restarts of a failing svc       10,000")
    assert rows[1].startswith("add-and-remove cycles            6,000")
