"""Shared machinery of the benchmarks: rows of results, the table, the JSON, timing,
peak memory and fresh worker processes.

Every benchmark script builds :class:`Row` objects, one per figure compared
with the bare Trio baseline, and prints them with :func:`print_table`;
``run_all.py`` gathers the rows of every script into one table and one JSON
file. A row's ``ratio`` is always library / baseline: for times and memory
lower is better and the target is a maximum, for throughputs higher is better
and the target is a minimum.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results"

if str(ROOT) not in sys.path:
    # Run as ``python benchmarks/x.py`` from a checkout: import the package from it
    # when it is not installed.
    sys.path.append(str(ROOT))


@dataclass
class Row:
    """One figure of the library (or triotp) beside the bare Trio baseline's.

    Attributes:
        workload: The benchmark script's name.
        case: The case within it, e.g. ``N=10000 listeners=1 gc=off``.
        metric: What is measured, e.g. ``start+stop``.
        unit: The unit of ``library`` and ``baseline``.
        library: The supervisor's figure (best of the repetitions).
        baseline: The bare Trio baseline's figure (best of the repetitions).
        target: The ratio to reach, or None where the issue sets none.
        higher_is_better: True for throughputs: ``target`` is then a minimum.
        library_samples: Every repetition of the library's figure.
        baseline_samples: Every repetition of the baseline's figure.
        note: Anything the reader must know about this row.
    """

    workload: str
    case: str
    metric: str
    unit: str
    library: float
    baseline: float
    target: float | None = None
    higher_is_better: bool = False
    library_samples: list[float] = field(default_factory=list)
    baseline_samples: list[float] = field(default_factory=list)
    note: str = ""

    @property
    def ratio(self) -> float:
        if self.baseline == 0:
            return math.inf if self.library else 1.0
        return self.library / self.baseline

    @property
    def ok(self) -> bool | None:
        if self.target is None:
            return None
        if self.higher_is_better:
            return self.ratio >= self.target
        return self.ratio <= self.target

    @property
    def noise(self) -> float:
        """The largest spread (max / min - 1) of the library's and the baseline's
        repetitions: how much the figures moved between runs."""
        spreads = [
            max(samples) / min(samples) - 1
            for samples in (self.library_samples, self.baseline_samples)
            if len(samples) > 1 and min(samples) > 0
        ]
        return max(spreads, default=0.0)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["ratio"] = self.ratio
        data["ok"] = self.ok
        data["noise"] = self.noise
        return data


def best(samples: Sequence[float], *, higher_is_better: bool = False) -> float:
    return max(samples) if higher_is_better else min(samples)


def _figure(value: float) -> str:
    if value != value or math.isinf(value):
        return str(value)
    if value == 0 or 0.001 <= abs(value) < 100_000:
        return f"{value:.4g}"
    return f"{value:.3e}"


def format_table(rows: Sequence[Row]) -> str:
    """The rows as a Markdown table, ready for the README."""
    header = (
        "workload",
        "case",
        "metric",
        "library",
        "baseline",
        "unit",
        "ratio",
        "target",
        "ok",
        "noise",
    )
    lines = [header]
    for row in rows:
        if row.target is None:
            target = "-"
        else:
            target = f"{'>=' if row.higher_is_better else '<='} {row.target:g}"
        ok = {None: "-", True: "yes", False: "NO"}[row.ok]
        lines.append(
            (
                row.workload,
                row.case,
                row.metric,
                _figure(row.library),
                _figure(row.baseline),
                row.unit,
                f"{row.ratio:.2f}",
                target,
                ok,
                f"{row.noise:.0%}",
            )
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]

    def fmt(cells: Sequence[str]) -> str:
        return (
            "| "
            + " | ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True))
            + " |"
        )

    out = [fmt(lines[0]), "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    out.extend(fmt(line) for line in lines[1:])
    return "\n".join(out)


def print_table(rows: Sequence[Row], notes: Sequence[str] = ()) -> None:
    print(format_table(rows))
    print(f"note: times are {clock_name()} time (--clock)")
    for note in notes:
        print(f"note: {note}")
    for row in rows:
        if row.note:
            print(f"note ({row.workload}, {row.case}, {row.metric}): {row.note}")
    sys.stdout.flush()


def environment() -> dict[str, Any]:
    import trio

    return {
        "python": sys.version.split()[0],
        "implementation": platform.python_implementation(),
        "trio": trio.__version__,
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "load_average": os.getloadavg(),
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "clock": clock_name(),
        "commit": _git_commit(),
    }


def _git_commit() -> str | None:
    """The checkout's commit, with "+dirty" when the package has local changes."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "trio_supervisor"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None
    return head + ("+dirty" if dirty else "")


def write_json(
    path: Path, rows: Sequence[Row], notes: Sequence[str] = (), **extra: Any
) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {
        "environment": environment(),
        "command": [Path(sys.executable).name, *sys.argv],
        "rows": [row.to_json() for row in rows],
        "notes": list(notes),
        **extra,
    }
    path.write_text(json.dumps(data, indent=2) + "\n")


# --- command line ----------------------------------------------------------------


def parser(description: str | None) -> argparse.ArgumentParser:
    first_line = (description or "").strip().splitlines()[0:1]
    result = argparse.ArgumentParser(description=" ".join(first_line))
    result.add_argument(
        "--quick", action="store_true", help="tiny sizes, to check the script runs"
    )
    result.add_argument(
        "--repeat", type=int, default=3, help="repetitions; the best one counts"
    )
    result.add_argument("--json", type=Path, help="also write the rows to this file")
    result.add_argument(
        "--clock",
        choices=sorted(CLOCKS),
        default="cpu",
        help="measure CPU time of this process (default) or elapsed time",
    )
    return result


def parse(arguments: argparse.ArgumentParser) -> argparse.Namespace:
    args = arguments.parse_args()
    set_clock(args.clock)
    return args


def script_main(
    description: str | None,
    collect: Callable[[bool, int], tuple[list[Row], list[str]]],
    run_case: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
) -> None:
    """What ``python benchmarks/<name>.py`` does: as a worker process
    (``--worker CASES``, for scripts with a ``run_case``), run the cases and print
    their results as JSON; else measure, print the table and write the JSON."""
    if run_case is not None:
        cases = worker_cases(sys.argv)
        if cases is not None:
            print(json.dumps([run_case(case) for case in cases]))
            return
    args = parse(parser(description))
    rows, notes = collect(args.quick, args.repeat)
    print_table(rows, notes)
    if args.json is not None:
        write_json(args.json, rows, notes)


# --- measuring -------------------------------------------------------------------

CLOCKS: dict[str, Callable[[], float]] = {
    "cpu": time.process_time,
    "wall": time.perf_counter,
}
"""``cpu``, the default: this process's CPU time, which other processes on a
shared machine disturb far less than elapsed time (each workload is one busy
thread that never waits for I/O, so on an idle machine the two agree);
``wall``: elapsed time."""

_clock: list[Callable[[], float]] = [time.process_time]
_clock_name = ["cpu"]


def set_clock(name: str) -> None:
    _clock[0] = CLOCKS[name]
    _clock_name[0] = name


def clock_name() -> str:
    return _clock_name[0]


def now() -> float:
    """The current time on the clock chosen with ``--clock``."""
    return _clock[0]()


def paired(
    repeat: int,
    library: Callable[[], float],
    baseline: Callable[[], float],
) -> tuple[list[float], list[float]]:
    """Run both measurements ``repeat`` times, alternating which goes first, so
    that a burst of load on the machine hits both alike."""
    baseline_samples, library_samples = rotated(repeat, [baseline, library])
    return library_samples, baseline_samples


def rotated(
    repeat: int, measurements: Sequence[Callable[[], float]]
) -> list[list[float]]:
    """Run every measurement ``repeat`` times, the order rotated by one at each
    repetition (with two, :func:`paired`'s alternation), so that a burst of
    load on the machine hits all alike. One list of samples per measurement."""
    samples: list[list[float]] = [[] for _ in measurements]
    count = len(measurements)
    for index in range(repeat):
        for step in range(count):
            which = (index + step) % count
            samples[which].append(measurements[which]())
    return samples


def reset_peak_memory() -> None:
    """Reset the process's peak resident set size (``VmHWM``) to its current size.

    Writing "5" to ``/proc/self/clear_refs`` does that on Linux. A child's
    ``getrusage`` maxrss is no substitute: it may report the parent's peak.
    """
    with open("/proc/self/clear_refs", "w") as file:
        file.write("5")


def peak_memory_bytes() -> int:
    """The process's peak resident set size since the last reset (``VmHWM``)."""
    return _status_kib("VmHWM") * 1024


def current_memory_bytes() -> int:
    return _status_kib("VmRSS") * 1024


def _status_kib(field_name: str) -> int:
    with open("/proc/self/status") as file:
        for line in file:
            if line.startswith(field_name + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"no {field_name} in /proc/self/status")


def run_worker(
    script: Path,
    cases: Sequence[dict[str, Any]],
    *,
    python: str | None = None,
    timeout: float = 900,
) -> list[dict[str, Any]]:
    """Run ``script --worker CASES`` in a fresh process; return its results.

    The worker prints one JSON list, one result per case, as its last line.
    """
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (env.get("PYTHONPATH", ""), str(ROOT)) if p
    )
    cases = [{**case, "clock": clock_name()} for case in cases]
    completed = subprocess.run(
        [python or sys.executable, str(script), "--worker", json.dumps(cases)],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env=env,
    )
    if completed.returncode != 0:
        raise RuntimeError(
            f"worker {script.name} {cases!r} exited {completed.returncode}:\n"
            f"{completed.stderr}"
        )
    results: list[dict[str, Any]] = json.loads(completed.stdout.splitlines()[-1])
    return results


def worker_cases(argv: Sequence[str]) -> list[dict[str, Any]] | None:
    """The cases given to a worker process, or None when not run as a worker."""
    if len(argv) == 3 and argv[1] == "--worker":
        cases: list[dict[str, Any]] = json.loads(argv[2])
        return cases
    return None


def percentile(samples: Sequence[float], fraction: float) -> float:
    """The ``fraction`` quantile of ``samples`` (nearest rank)."""
    ordered = sorted(samples)
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[rank - 1]
