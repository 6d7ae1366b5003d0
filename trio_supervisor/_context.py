"""What a running service can ask of its supervisor: its logger, its stop request,
its watchdog."""

from __future__ import annotations

import logging
from typing import Any

import trio

from ._child import Child

_SERVICE_TASKS: dict[trio.lowlevel.Task, Child] = {}
"""The restart-loop task of every running service, of every supervisor. An entry
here costs less than a context variable set in each of 100,000 tasks."""


def enter_service_task(child: Child) -> trio.lowlevel.Task:
    """Mark the calling task as ``child``'s restart loop."""
    task = trio.lowlevel.current_task()
    _SERVICE_TASKS[task] = child
    return task


def leave_service_task(task: trio.lowlevel.Task) -> None:
    del _SERVICE_TASKS[task]


def find_child() -> Child | None:
    """The service whose restart loop is the calling task or an ancestor of it."""
    try:
        task: trio.lowlevel.Task | None = trio.lowlevel.current_task()
    except RuntimeError:
        return None
    while task is not None:
        child = _SERVICE_TASKS.get(task)
        if child is not None:
            return child
        nursery = task.parent_nursery
        task = None if nursery is None else nursery.parent_task
    return None


def _current_child(function: str) -> Child:
    child = find_child()
    if child is None:
        raise RuntimeError(
            f"trio_supervisor.{function}() must be called inside a supervised service"
        )
    return child


def current_logger() -> logging.LoggerAdapter[Any]:
    """The supervisor's logger, bound to the calling service.

    Its records carry the extra fields ``service_name`` and ``service_id``:

        async def poll() -> None:
            current_logger().info("polling")

    Raises:
        RuntimeError: Called outside a supervised service.
    """
    return _current_child("current_logger").get_logger()


def stop_requested() -> trio.Event:
    """An event set when the supervisor asks the calling service to stop.

    A fresh event for each run. The supervisor cancels the service
    ``shutdown_timeout`` seconds after setting it, so a service can finish its
    work in between:

        async def consume() -> None:
            stopping = stop_requested()
            while not stopping.is_set():
                await handle(await next_message())

    Raises:
        RuntimeError: Called outside a supervised service.
    """
    return _current_child("stop_requested").stop_requested_event()


def heartbeat() -> None:
    """Feed the calling service's watchdog; a no-op for a service without one.

    A service with ``watchdog=W`` must call this at least every ``W`` seconds,
    else it is cancelled and fails with `WatchdogTimeout`:

        async def worker() -> None:
            while True:
                await do_one_job()
                heartbeat()

    Raises:
        RuntimeError: Called outside a supervised service.
    """
    _current_child("heartbeat").heartbeat(trio.current_time())
