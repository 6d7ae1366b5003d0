"""Soak: a failing service restarted a million times with a listener attached, and
100,000 add-and-remove cycles, with memory measured by ``tracemalloc``.

Run it with ``nox -s soak`` or ``python soak/soak.py`` (``--quick`` for small
sizes). It prints one row per soak and exits with status 1 when a bound is
broken: memory grown by more than ``--bound-kib`` between the first sample
(taken after a warm-up) and any later one, a task left over, or a listener that
did not receive every change.

Both soaks run on Trio's ``MockClock`` with autojump, so the restart delays are
real sleeps on a virtual clock (the deadline heap and cancel scopes are
exercised) while the wall-clock cost is only the supervisor's own work.
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
import tracemalloc
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import trio
import trio.testing

from trio_supervisor import (
    Config,
    Status,
    StatusUpdate,
    StopSupervisor,
    Supervisor,
    new_service,
)

SAMPLES = 10
"""Memory samples per soak, evenly spaced after the warm-up."""
WARM_UP = 0.05
"""Fraction of each soak run before the baseline sample: caches, free lists and
Trio's deadline heap (up to ~1000 stale entries before it prunes) fill first."""
WARM_UP_MIN = 3_000
"""...and at least this many iterations, enough to fill that heap."""
DEFAULT_BOUND_KIB = 64.0


@dataclass
class Row:
    """One soak's figures."""

    name: str
    size: int
    seconds: float = 0.0
    samples: list[int] = field(default_factory=list)
    """Traced bytes at each sample, the first one being the baseline."""
    tasks: list[int] = field(default_factory=list)
    """Tasks alive at each sample."""
    tasks_before: int = 0
    tasks_after: int = 0
    listener_expected: int = 0
    listener_seen: int = 0

    @property
    def growth_kib(self) -> float:
        """The largest growth over the baseline, in KiB."""
        if not self.samples:
            return 0.0
        return (max(self.samples) - self.samples[0]) / 1024

    def problems(self, bound_kib: float) -> list[str]:
        found = []
        if len(self.samples) < 2:
            found.append("too few memory samples")
        if self.growth_kib > bound_kib:
            found.append(f"memory grew {self.growth_kib:.1f} KiB > {bound_kib:g} KiB")
        if len(set(self.tasks)) > 1:
            found.append(f"task count changed while running: {sorted(set(self.tasks))}")
        if self.tasks_after != self.tasks_before:
            found.append(
                f"{self.tasks_after - self.tasks_before} task(s) left after run()"
            )
        if self.listener_seen != self.listener_expected:
            found.append(
                f"listener saw {self.listener_seen} changes, "
                f"expected {self.listener_expected}"
            )
        return found


def count_tasks() -> int:
    """Every task of the current Trio run, from the root down."""
    root = trio.lowlevel.current_root_task()
    assert root is not None
    count = 0
    stack = [root]
    while stack:
        task = stack.pop()
        count += 1
        for nursery in task.child_nurseries:
            stack.extend(nursery.child_tasks)
    return count


def sample_points(size: int) -> set[int]:
    """The iteration numbers (1-based) after which memory is sampled."""
    start = min(max(int(size * WARM_UP), WARM_UP_MIN), size // 2)
    step = max(1, (size - start) // (SAMPLES - 1))
    points = set(range(start, size + 1, step))
    points.add(size)
    return points


def take_sample(row: Row) -> None:
    gc.collect()
    row.samples.append(tracemalloc.get_traced_memory()[0])
    row.tasks.append(count_tasks())


class CountingListener:
    """A listener that keeps up: counts the snapshots it receives."""

    def __init__(self) -> None:
        self.snapshots = 0

    def __call__(self, snapshot: list[StatusUpdate]) -> None:
        self.snapshots += 1


async def soak_restarts(row: Row) -> None:
    """One service fails ``row.size`` times, then stops the supervisor."""
    points = sample_points(row.size)
    listener = CountingListener()
    runs = 0

    async def failing() -> None:
        nonlocal runs
        runs += 1
        if runs - 1 in points:  # after runs - 1 restarts
            take_sample(row)
        if runs > row.size:
            raise StopSupervisor("soak done")
        await trio.lowlevel.checkpoint()
        raise ValueError("soak failure")

    supervisor = Supervisor(
        Config(
            services=[new_service("failing", failing)],
            status_update_listeners=[listener],
            restart_interval=0.001,
        )
    )
    row.tasks_before = count_tasks()
    await supervisor.run()
    row.tasks_after = count_tasks()
    final = supervisor.statuses()
    assert [u.status for u in final] == [Status.STOPPED], final
    # Each run: IDLE, RUNNING and its end; size restarts make size + 1 runs.
    row.listener_expected = 3 * (row.size + 1)
    row.listener_seen = listener.snapshots


async def forever() -> None:
    await trio.sleep_forever()


async def soak_add_remove(row: Row) -> None:
    """Add a service to a running supervisor and remove it, ``row.size`` times."""
    points = sample_points(row.size)
    listener = CountingListener()
    supervisor = Supervisor(
        Config(
            services=[new_service("resident", forever)],
            status_update_listeners=[listener],
        )
    )
    row.tasks_before = count_tasks()
    async with trio.open_nursery() as nursery:
        await nursery.start(supervisor.run)
        for cycle in range(1, row.size + 1):
            service_id = supervisor.add(new_service(f"guest-{cycle}", forever))
            await trio.sleep(0.001)
            await supervisor.remove(service_id)
            if cycle in points:
                take_sample(row)
        supervisor.stop()
    row.tasks_after = count_tasks()
    assert [u.service_name for u in supervisor.statuses()] == ["resident"]
    # The resident's IDLE, RUNNING, STOPPED; each guest's IDLE, RUNNING,
    # STOPPED and its removal.
    row.listener_expected = 3 + 4 * row.size
    row.listener_seen = listener.snapshots


def run_soak(name: str, size: int, soak: Callable[[Row], Awaitable[None]]) -> Row:
    row = Row(name, size)
    start = time.perf_counter()
    trio.run(soak, row, clock=trio.testing.MockClock(autojump_threshold=0))
    row.seconds = time.perf_counter() - start
    return row


def print_table(rows: list[Row], bound_kib: float) -> None:
    header = (
        f"{'soak':<28}{'size':>10}{'wall s':>9}{'base KiB':>10}"
        f"{'final KiB':>11}{'max growth KiB':>16}{'bound KiB':>11}"
        f"{'tasks':>7}{'listener':>11}  result"
    )
    print(header)
    print("-" * len(header))
    for row in rows:
        base = row.samples[0] / 1024 if row.samples else 0.0
        final = row.samples[-1] / 1024 if row.samples else 0.0
        problems = row.problems(bound_kib)
        print(
            f"{row.name:<28}{row.size:>10,}{row.seconds:>9.1f}{base:>10.1f}"
            f"{final:>11.1f}{row.growth_kib:>16.1f}{bound_kib:>11g}"
            f"{row.tasks_after - row.tasks_before:>+7d}{row.listener_seen:>11,}"
            f"  {'ok' if not problems else 'FAILED: ' + '; '.join(problems)}"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.partition("\n")[0])
    parser.add_argument(
        "--quick", action="store_true", help="small sizes, for the test suite"
    )
    parser.add_argument("--restarts", type=int, help="restarts of the failing service")
    parser.add_argument("--cycles", type=int, help="add-and-remove cycles")
    parser.add_argument(
        "--bound-kib",
        type=float,
        default=DEFAULT_BOUND_KIB,
        help="largest memory growth allowed over the baseline, in KiB",
    )
    args = parser.parse_args(argv)
    restarts = args.restarts or (10_000 if args.quick else 1_000_000)
    cycles = args.cycles or (6_000 if args.quick else 100_000)
    tracemalloc.start()
    rows = [
        run_soak("restarts of a failing svc", restarts, soak_restarts),
        run_soak("add-and-remove cycles", cycles, soak_add_remove),
    ]
    tracemalloc.stop()
    print_table(rows, args.bound_kib)
    return 1 if any(row.problems(args.bound_kib) for row in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
