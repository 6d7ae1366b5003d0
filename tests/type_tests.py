"""Checked by mypy, never run: the public API's types as users see them."""

from __future__ import annotations

import logging
from collections.abc import Coroutine
from contextlib import AbstractAsyncContextManager
from datetime import timedelta
from typing import Any

import trio
from typing_extensions import assert_type

from trio_supervisor import (
    Backoff,
    Config,
    Phase,
    RestartIntensityExceeded,
    Service,
    ServiceSpec,
    Status,
    StatusUpdate,
    Supervisor,
    current_logger,
    new_service,
    open_supervisor,
    stop_requested,
)


class Poller:
    name = "poller"

    async def run(self) -> None:
        await trio.sleep(1)


async def consume(queue: str, batch: int) -> None:
    await trio.sleep(batch)


def sync_listener(snapshot: list[StatusUpdate]) -> None:
    pass


async def async_listener(snapshot: list[StatusUpdate]) -> None:
    await trio.lowlevel.checkpoint()


def check_status_and_update(update: StatusUpdate) -> None:
    assert_type(update.service_id, int)
    assert_type(update.service_name, str)
    assert_type(update.time, float)
    assert_type(update.status, Status)
    assert_type(update.err, BaseException | None)
    assert_type(update.to_dict(), dict[str, Any])
    assert_type(update.status.is_alive, bool)
    assert_type(str(Status.IDLE), str)
    assert_type(int(Status.ERROR), int)


def check_services() -> None:
    service: Service = Poller()
    spec = new_service("orders", consume, "orders-queue", 10)
    assert_type(spec, ServiceSpec)
    as_service: Service = spec
    assert_type(
        ServiceSpec(service, shutdown_timeout=timedelta(seconds=5)), ServiceSpec
    )
    assert_type(spec.name, str)
    run = as_service.run()
    assert_type(run, Coroutine[Any, Any, None]).close()


def check_config() -> Config:
    config = Config(
        services=[Poller(), None, new_service("orders", consume, "q", 1)],
        status_update_listeners=[sync_listener, async_listener, print],
        restart_interval=timedelta(milliseconds=10),
        logger=logging.LoggerAdapter(logging.getLogger("app"), {"app": "x"}),
        listener_buffer=16,
        listener_shutdown_timeout=2.5,
        backoff=Backoff(0.1),
    )
    assert_type(config.restart_interval, float | timedelta)
    assert_type(config.listener_buffer, int)
    return config


async def check_supervisor(config: Config) -> None:
    supervisor = Supervisor(config)
    assert_type(supervisor, Supervisor)
    assert_type(supervisor.statuses(), list[StatusUpdate])
    run = supervisor.run()
    assert_type(run, Coroutine[Any, Any, None]).close()
    assert_type(supervisor.running, bool)
    assert_type(supervisor.name, str)
    assert_type(supervisor.phase, Phase)
    assert_type(supervisor.unready_services(), list[StatusUpdate])
    assert_type(supervisor.add(Poller()), int)
    nested: Service = supervisor
    assert_type(nested, Service)
    async with trio.open_nursery() as nursery:
        await nursery.start(supervisor.run)
    manager: AbstractAsyncContextManager[Supervisor] = open_supervisor(config)
    async with manager as running:
        assert_type(running, Supervisor)


def check_context() -> None:
    assert_type(current_logger(), logging.LoggerAdapter[Any])
    assert_type(stop_requested(), trio.Event)


def check_errors(error: RestartIntensityExceeded) -> None:
    assert_type(error.failures, list[StatusUpdate])
    assert_type(Backoff(0.5).delay(3), float)
