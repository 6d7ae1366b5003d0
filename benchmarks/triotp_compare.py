"""triotp, the other Trio supervisor on PyPI, on workloads 1 and 2.

Only where ``triotp`` imports (0.3.1 needs Python 3.13); elsewhere the script
prints a note and reports no rows. Run it with that interpreter, e.g.
``python3.13 benchmarks/triotp_compare.py`` with triotp installed.

- Restart throughput: a triotp ``supervisor.start`` with one PERMANENT child
  that raises at once (``max_restarts`` large enough never to be reached), with
  logbook's records discarded by a ``NullHandler`` (as the library's own
  records are), against the same bare Trio loop as ``restart_throughput.py``
  (outcome captured, sent through a memory channel, checkpoint), in this
  process, alternating, best of ``--repeat``.
- Start and stop at scale: N children that wait forever (each bumps a counter
  so that the time until all are running can be taken), started with
  ``await nursery.start(supervisor.start, ...)`` and stopped by cancelling
  the nursery, against the bare baseline of ``start_stop.py``; each case in a
  fresh process with gc on (triotp's figures in the issue were with gc on),
  peak memory from ``VmHWM``. N = 1,000 and 10,000 are repeated ``--repeat``
  times; N = 100,000 once, as it takes triotp over a minute.

The ratio column is triotp / bare Trio; compare it with the library's rows of
``restart_throughput.py`` and ``start_stop.py`` of the same run.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from pathlib import Path
from typing import Any

from _common import (
    Row,
    best,
    current_memory_bytes,
    now,
    paired,
    peak_memory_bytes,
    reset_peak_memory,
    run_worker,
    script_main,
    set_clock,
)

WORKLOAD = "triotp_compare"
RESTARTS = 5_000
QUICK_RESTARTS = 100
SIZES = (1_000, 10_000, 100_000)
QUICK_SIZES = (20, 200)
ONCE_FROM = 100_000
MB = 1024 * 1024


def triotp_available() -> bool:
    return importlib.util.find_spec("triotp") is not None


def _silence_logbook() -> None:
    logbook: Any = importlib.import_module("logbook")
    logbook.NullHandler().push_application()


def triotp_restarts_per_second(restarts: int) -> float:
    import trio

    supervisor: Any = importlib.import_module("triotp.supervisor")
    _silence_logbook()
    runs = 0

    async def main() -> float:
        async def fail(scope: trio.CancelScope) -> None:
            nonlocal runs
            runs += 1
            if runs > restarts:
                scope.cancel()
                await trio.sleep_forever()
            raise RuntimeError("boom")

        begin = now()
        with trio.CancelScope() as scope:
            children = [
                supervisor.child_spec(
                    id="failing",
                    task=fail,
                    args=[scope],
                    restart=supervisor.restart_strategy.PERMANENT,
                )
            ]
            options = supervisor.options(max_restarts=10 * restarts, max_seconds=1)
            await supervisor.start(children, options)
        return now() - begin

    elapsed = trio.run(main)
    assert runs == restarts + 1, runs
    return restarts / elapsed


def _run_triotp(n: int) -> tuple[float, float]:
    import trio

    supervisor: Any = importlib.import_module("triotp.supervisor")
    _silence_logbook()

    async def main() -> tuple[float, float]:
        begin = now()
        running = 0
        all_running = trio.Event()

        async def task() -> None:
            nonlocal running
            running += 1
            if running == n:
                all_running.set()
            await trio.sleep_forever()

        children = [
            supervisor.child_spec(id=f"service-{i}", task=task, args=[])
            for i in range(n)
        ]
        async with trio.open_nursery() as nursery:
            await nursery.start(supervisor.start, children, supervisor.options())
            await all_running.wait()
            started = now()
            nursery.cancel_scope.cancel()
        stopped = now()
        return started - begin, stopped - started

    return trio.run(main)


def run_case(case: dict[str, Any]) -> dict[str, Any]:
    """Run one start/stop case in this process (call it in a fresh one)."""
    import gc

    import trio  # noqa: F401  (imports happen before the memory reset)

    importlib.import_module("triotp.supervisor")
    importlib.import_module("logbook")
    from start_stop import _run_baseline

    set_clock(case["clock"])
    gc.collect()
    reset_peak_memory()
    before = current_memory_bytes()
    if case["impl"] == "triotp":
        start, stop = _run_triotp(case["n"])
    else:
        start, stop = _run_baseline(case["n"])
    return {
        **case,
        "start": start,
        "stop": stop,
        "peak": peak_memory_bytes(),
        "rss_before": before,
    }


def collect(quick: bool, repeat: int) -> tuple[list[Row], list[str]]:
    if not triotp_available():
        return [], [
            "triotp_compare: skipped, triotp is not installed here "
            f"(Python {sys.version.split()[0]}; triotp 0.3.1 needs Python 3.13)"
        ]
    import restart_throughput

    restarts = QUICK_RESTARTS if quick else RESTARTS
    if quick:
        repeat = 1
    theirs, bare = paired(
        repeat,
        lambda: triotp_restarts_per_second(restarts),
        lambda: restart_throughput.baseline_restarts_per_second(restarts),
    )
    rows = [
        Row(
            WORKLOAD,
            f"triotp, {restarts} restarts",
            "restarts/s",
            "1/s",
            best(theirs, higher_is_better=True),
            best(bare, higher_is_better=True),
            higher_is_better=True,
            library_samples=theirs,
            baseline_samples=bare,
        )
    ]
    sizes = QUICK_SIZES if quick else SIZES
    script = Path(__file__)
    if quick:
        results = run_worker(
            script,
            [{"impl": impl, "n": n} for n in sizes for impl in ("baseline", "triotp")],
        )
    else:
        results = []
        for n in sizes:
            for _ in range(1 if n >= ONCE_FROM else repeat):
                for impl in ("baseline", "triotp"):
                    results.extend(run_worker(script, [{"impl": impl, "n": n}]))
    for n in sizes:
        for metric, unit in (
            ("start", "s"),
            ("stop", "s"),
            ("start+stop", "s"),
            ("peak memory", "MB"),
        ):
            values: dict[str, list[float]] = {"triotp": [], "baseline": []}
            for result in results:
                if result["n"] != n:
                    continue
                if metric == "start+stop":
                    value = result["start"] + result["stop"]
                elif metric == "peak memory":
                    value = result["peak"] / MB
                else:
                    value = result[metric]
                values[result["impl"]].append(value)
            rows.append(
                Row(
                    WORKLOAD,
                    f"triotp, N={n} gc=on",
                    metric,
                    unit,
                    best(values["triotp"]),
                    best(values["baseline"]),
                    library_samples=values["triotp"],
                    baseline_samples=values["baseline"],
                )
            )
    return rows, ["triotp_compare: the 'library' column is triotp 0.3.1's figure"]


def main() -> None:
    script_main(__doc__, collect, run_case)


if __name__ == "__main__":
    main()
