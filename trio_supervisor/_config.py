"""The supervisor's configuration, and its checked, normalised form."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Protocol, final

from . import _util
from ._logging import LOGGER, AnyLogger
from ._policy import Backoff, Strategy
from ._service import Service, ServiceSpec, as_spec
from ._status import StatusUpdate


class StatusUpdateListener(Protocol):
    """What ``Config.status_update_listeners`` holds: a plain function or an
    ``async def`` that takes a snapshot, the latest update of every service in
    id order. Its return value is ignored (awaited first if awaitable):

        async def publish(snapshot: list[StatusUpdate]) -> None:
            await bus.send([update.to_dict() for update in snapshot])

        Config(services=services, status_update_listeners=[publish, print])
    """

    def __call__(self, snapshot: list[StatusUpdate], /) -> object: ...


DEFAULT_LISTENER_BUFFER = 128
DEFAULT_LISTENER_SHUTDOWN_TIMEOUT = 5.0


@dataclass(kw_only=True)
class Config:
    """Everything a `Supervisor` needs: services, listeners and policies.

    Every field is a keyword; all have defaults:

        config = Config(
            services=[new_service("ping", ping), new_service("pong", pong)],
            status_update_listeners=[print],
            restart_interval=timedelta(milliseconds=10),
        )

    The fields are checked when the `Supervisor` is built, which raises
    ``TypeError`` or ``ValueError`` naming the field and the value.

    Attributes:
        services: The services, in start order; ``None`` entries are skipped
            and ids ``0, 1, 2, …`` go to the others in order. A
            `ServiceSpec` carries per-service options.
        status_update_listeners: Called with the full snapshot after every
            status change, each in a task of its own.
        restart_interval: Seconds (or a ``timedelta``) between a service's end
            and its restart, when no ``backoff`` applies.
        logger: Where the supervisor logs; by default the library's own
            ``trio_supervisor`` logger, silent until logging is configured.
        listener_buffer: How many snapshots may wait for one listener before
            they are coalesced to the newest.
        listener_shutdown_timeout: Seconds a listener may take at shutdown to
            receive its last snapshots before it is cancelled.
        name: The supervisor's name as a service in a supervision tree.
        strategy: Which services a restart takes along.
        backoff: Default restart delays of every service; ``None`` keeps the
            fixed ``restart_interval``.
        max_restarts: With ``max_seconds``: at most this many restarts within
            any window of ``max_seconds``, else the supervisor stops and
            ``run()`` raises `RestartIntensityExceeded`. ``None``:
            unlimited.
        max_seconds: The window of ``max_restarts``, in seconds.
        shutdown_timeout: Default seconds between a service's stop request and
            its cancellation.
        reverse_shutdown: Stop services one at a time in reverse start order,
            instead of all at once.
        individual_stop: Run each service in a cancel scope of its own, so
            that it can be stopped alone: by `Supervisor.remove`, a group
            ``strategy``, ``reverse_shutdown``, its ``watchdog`` or
            ``start_timeout``, or a ``shutdown_timeout`` of its own. ``False``
            stops the services only all together, at shutdown, and saves the
            scope: about a quarter of the time to start and stop each service
            and 0.7 KB of memory (for tens of thousands of alike services,
            such as one per connection). `ValueError` for an option that
            needs the scope; `Supervisor.remove` only forgets services that
            have ended.
    """

    services: Sequence[Service | None] = ()
    status_update_listeners: Sequence[StatusUpdateListener] = ()
    restart_interval: float | timedelta = 0.0
    logger: AnyLogger = field(default=LOGGER)
    listener_buffer: int = DEFAULT_LISTENER_BUFFER
    listener_shutdown_timeout: float | timedelta = DEFAULT_LISTENER_SHUTDOWN_TIMEOUT
    name: str = "supervisor"
    strategy: Strategy = Strategy.ONE_FOR_ONE
    backoff: Backoff | None = None
    max_restarts: int | None = None
    max_seconds: float | timedelta | None = None
    shutdown_timeout: float | timedelta = 0.0
    reverse_shutdown: bool = False
    individual_stop: bool = True


@final
@dataclass(frozen=True)
class Settings:
    """A `Config` after its checks: numbers in seconds, services as specs."""

    specs: tuple[ServiceSpec, ...]
    listeners: tuple[StatusUpdateListener, ...]
    restart_interval: float
    logger: AnyLogger
    listener_buffer: int
    listener_shutdown_timeout: float
    name: str
    strategy: Strategy
    backoff: Backoff | None
    max_restarts: int | None
    max_seconds: float
    shutdown_timeout: float
    reverse_shutdown: bool
    individual_stop: bool


def _check_sequence(name: str, value: object) -> Sequence[Any]:
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
        raise TypeError(f"Config.{name} must be a sequence, got {value!r}")
    return value


def check_unique_name(names: set[str], spec: ServiceSpec, argument: str) -> str:
    """``spec``'s name, refused when another service already has it."""
    name = spec.name
    if name in names:
        raise _name_taken(name, argument)
    names.add(name)
    return name


def _name_taken(name: str, argument: str) -> ValueError:
    return ValueError(
        f"{argument}: service name {name!r} is taken by another service; "
        "give each service a distinct name"
    )


def check_shared_stop(settings: Settings, spec: ServiceSpec, argument: str) -> None:
    """Refuse the options of ``spec`` that stop it alone, when the supervisor
    stops its services only all together."""
    if settings.individual_stop:
        return
    for option in ("watchdog", "start_timeout"):
        value = getattr(spec, option)
        if value is not None:
            raise ValueError(
                f"{argument}: {option} needs Config.individual_stop=True "
                f"(it cancels one service alone), got {option}={value!r}"
            )
    timeout = spec.shutdown_timeout
    if timeout is not None and _util.seconds("shutdown_timeout", timeout) != (
        settings.shutdown_timeout
    ):
        raise ValueError(
            f"{argument}: shutdown_timeout={timeout!r} differs from "
            f"Config.shutdown_timeout={settings.shutdown_timeout:g}, and "
            "Config.individual_stop=False stops every service at once"
        )


def settle(config: Config) -> Settings:
    """Check every field of ``config`` and normalise it.

    Raises:
        TypeError: A field has the wrong type.
        ValueError: A field has a bad value.
    """
    if not isinstance(config, Config):
        raise TypeError(f"config must be a trio_supervisor.Config, got {config!r}")
    specs: list[ServiceSpec] = []
    names: set[str] = set()
    for index, service in enumerate(_check_sequence("services", config.services)):
        if service is None:
            continue
        # A ServiceSpec was checked when it was made: no argument name to format.
        spec = (
            service
            if type(service) is ServiceSpec
            else as_spec(f"Config.services[{index}]", service, {})
        )
        name = spec.name
        if name in names:
            raise _name_taken(name, f"Config.services[{index}]")
        names.add(name)
        specs.append(spec)
    listeners = tuple(
        _check_sequence("status_update_listeners", config.status_update_listeners)
    )
    for index, listener in enumerate(listeners):
        if not callable(listener):
            raise TypeError(
                f"Config.status_update_listeners[{index}] must be callable, "
                f"got {listener!r}"
            )
    logger = config.logger
    if not isinstance(logger, (logging.Logger, logging.LoggerAdapter)):
        raise TypeError(
            f"Config.logger must be a logging.Logger or logging.LoggerAdapter, "
            f"got {logger!r}"
        )
    if not isinstance(config.name, str):
        raise TypeError(f"Config.name must be a str, got {config.name!r}")
    if not config.name:
        raise ValueError(f"Config.name must not be empty, got {config.name!r}")
    if not isinstance(config.strategy, Strategy):
        raise TypeError(f"Config.strategy must be a Strategy, got {config.strategy!r}")
    if config.backoff is not None and not isinstance(config.backoff, Backoff):
        raise TypeError(
            f"Config.backoff must be a Backoff or None, got {config.backoff!r}"
        )
    max_restarts = config.max_restarts
    max_seconds = config.max_seconds
    if (max_restarts is None) != (max_seconds is None):
        raise ValueError(
            "Config.max_restarts and Config.max_seconds go together, got "
            f"max_restarts={max_restarts!r} and max_seconds={max_seconds!r}"
        )
    if max_restarts is not None:
        _util.integer("Config.max_restarts", max_restarts, minimum=0)
    settings = Settings(
        specs=tuple(specs),
        listeners=listeners,
        restart_interval=_util.seconds(
            "Config.restart_interval", config.restart_interval
        ),
        logger=logger,
        listener_buffer=_util.integer(
            "Config.listener_buffer", config.listener_buffer, minimum=1
        ),
        listener_shutdown_timeout=_util.seconds(
            "Config.listener_shutdown_timeout", config.listener_shutdown_timeout
        ),
        name=config.name,
        strategy=config.strategy,
        backoff=config.backoff,
        max_restarts=max_restarts,
        max_seconds=0.0
        if max_seconds is None
        else _util.seconds("Config.max_seconds", max_seconds),
        shutdown_timeout=_util.seconds(
            "Config.shutdown_timeout", config.shutdown_timeout
        ),
        reverse_shutdown=_util.boolean(
            "Config.reverse_shutdown", config.reverse_shutdown
        ),
        individual_stop=_util.boolean("Config.individual_stop", config.individual_stop),
    )
    if not settings.individual_stop:
        _check_shared_stop_config(settings, config)
    return settings


def _check_shared_stop_config(settings: Settings, config: Config) -> None:
    if settings.strategy is not Strategy.ONE_FOR_ONE:
        raise ValueError(
            f"Config.strategy={settings.strategy} needs Config.individual_stop=True "
            "(a group restart stops services alone)"
        )
    if settings.reverse_shutdown:
        raise ValueError(
            "Config.reverse_shutdown=True needs Config.individual_stop=True "
            "(it stops services one at a time)"
        )
    specs = iter(settings.specs)
    for index, service in enumerate(config.services):
        if service is not None:
            check_shared_stop(settings, next(specs), f"Config.services[{index}]")
