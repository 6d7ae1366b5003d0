"""Each example in examples/ prints exactly the .out file beside it."""

from __future__ import annotations

import pathlib
import subprocess
import sys

import pytest

EXAMPLES = pathlib.Path(__file__).resolve().parent.parent / "examples"
SCRIPTS = sorted(EXAMPLES.glob("*.py"))


def test_the_seed_examples_are_all_there() -> None:
    """The three ports of the seed's examples exist, each with its output."""
    names = {script.stem for script in SCRIPTS}
    assert {"ping_pong", "restart", "listener"} <= names
    for script in SCRIPTS:
        assert script.with_suffix(".out").is_file(), script.name


@pytest.mark.parametrize("script", SCRIPTS, ids=[script.stem for script in SCRIPTS])
def test_example_prints_its_expected_output(script: pathlib.Path) -> None:
    """Running the example prints its .out file, byte for byte, and exits 0."""
    expected = script.with_suffix(".out").read_text(encoding="utf-8")
    result = subprocess.run(
        [sys.executable, str(script)],
        cwd=EXAMPLES.parent,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == expected
