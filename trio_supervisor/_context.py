"""What a running service can ask of its supervisor: its logger, its stop request,
its watchdog."""

from __future__ import annotations

import logging
from contextvars import ContextVar
from typing import Any

import trio

from ._child import Child

CURRENT_CHILD: ContextVar[Child] = ContextVar("trio_supervisor.current_service")


def _current_child(function: str) -> Child:
    try:
        return CURRENT_CHILD.get()
    except LookupError:
        raise RuntimeError(
            f"trio_supervisor.{function}() must be called inside a supervised service"
        ) from None


def current_logger() -> logging.LoggerAdapter[Any]:
    """The supervisor's logger, bound to the calling service.

    Its records carry the extra fields ``service_name`` and ``service_id``::

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
    work in between::

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
    else it is cancelled and fails with :class:`WatchdogTimeout`::

        async def worker() -> None:
            while True:
                await do_one_job()
                heartbeat()

    Raises:
        RuntimeError: Called outside a supervised service.
    """
    _current_child("heartbeat").heartbeat(trio.current_time())
