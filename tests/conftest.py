"""Shared helpers: a recording listener and a way to run a supervisor for a while."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
import trio

from trio_supervisor import Config, Status, StatusUpdate, Supervisor

Transition = tuple[str, Status, float]
"""One service's status change as tests compare it: (name, status, time)."""


@dataclass
class Recorder:
    """A listener that keeps every snapshot it receives.

    Use it as ``Config(status_update_listeners=[recorder])``.
    """

    snapshots: list[list[StatusUpdate]] = field(default_factory=list)

    def __call__(self, snapshot: list[StatusUpdate]) -> None:
        self.snapshots.append(snapshot)

    def transitions(self, service_id: int | None = None) -> list[Transition]:
        """Each change seen, in order: the update that differs from the previous
        snapshot (all services, or the one with ``service_id``)."""
        seen: dict[int, StatusUpdate] = {}
        changes: list[Transition] = []
        for snapshot in self.snapshots:
            for update in snapshot:
                if seen.get(update.service_id) is not update:
                    seen[update.service_id] = update
                    if service_id is None or update.service_id == service_id:
                        changes.append(
                            (update.service_name, update.status, update.time)
                        )
        return changes

    def statuses(self, service_id: int) -> list[Status]:
        """The statuses one service went through, in order."""
        return [status for _, status, _ in self.transitions(service_id)]


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


def transitions_of(updates: list[StatusUpdate]) -> list[Transition]:
    return [(u.service_name, u.status, u.time) for u in updates]


async def run_for(seconds: float, config: Config) -> Supervisor:
    """Run a supervisor of ``config`` for ``seconds`` of the run's clock, then
    cancel it; return it for inspection."""
    supervisor = Supervisor(config)
    with trio.move_on_after(seconds):
        await supervisor.run()
    return supervisor


def names(updates: list[StatusUpdate]) -> Iterator[str]:
    return (update.service_name for update in updates)
