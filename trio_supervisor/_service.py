"""What a service is, its name, and the per-service options a supervisor honours."""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, fields
from datetime import timedelta
from types import FunctionType
from typing import (
    TYPE_CHECKING,
    Any,
    Protocol,
    TypedDict,
    cast,
    final,
    runtime_checkable,
)

from . import _util
from ._policy import Backoff, Restart

if TYPE_CHECKING:
    from typing_extensions import Unpack


@runtime_checkable
class Service(Protocol):
    """Anything with ``async def run(self) -> None`` can be supervised.

    Its name is its ``name`` attribute when it has one, else
    ``"<last part of its module>.<class qualname>"``:

        class Poller:
            name = "poller"

            async def run(self) -> None:
                while True:
                    await poll_once()
                    await trio.sleep(10)

    ``run`` returning is a clean stop, raising is a failure; the supervisor
    cancels it to stop it.
    """

    async def run(self) -> None:
        """Do the service's work until it is done, fails or is cancelled."""


def is_async_callable(fn: object) -> bool:
    """True for an ``async def`` function, a partial of one, or an object whose
    ``__call__`` is one."""
    if type(fn) is FunctionType and fn.__code__.co_flags & inspect.CO_COROUTINE:
        return True  # the common case, without inspect's unwrapping
    if inspect.iscoroutinefunction(fn):
        return True
    return callable(fn) and inspect.iscoroutinefunction(type(fn).__call__)


def service_name(service: object) -> str:
    """A service's display name: its ``name``, else ``module.QualName``."""
    name = getattr(service, "name", None)
    if name is None:
        cls = type(service)
        return f"{cls.__module__.rpartition('.')[2]}.{cls.__qualname__}"
    if not isinstance(name, str):
        raise TypeError(f"service name must be a str, got {name!r} on {service!r}")
    if not name:
        raise ValueError(f"service name must not be empty, got {name!r} on {service!r}")
    return name


def check_service(argument: str, service: object) -> None:
    """Refuse anything that is not a `Service` with an async ``run``."""
    run = getattr(service, "run", None)
    if run is None or isinstance(service, type) or not is_async_callable(run):
        raise TypeError(
            f"{argument} must be a Service (an object with an async run() method), "
            f"got {service!r}"
        )
    try:
        service_name(service)
    except (TypeError, ValueError) as exc:
        raise type(exc)(f"{argument}: {exc}") from None


@final
class _FunctionService:
    """The service `new_service` builds: each run calls ``fn(*args)`` afresh."""

    __slots__ = ("args", "fn", "name")

    def __init__(
        self, name: str, fn: Callable[..., Awaitable[object]], args: tuple[object, ...]
    ) -> None:
        self.name = name
        self.fn = fn
        self.args = args

    def __repr__(self) -> str:
        return f"<service {self.name!r}: {self.fn!r}>"

    async def run(self, **kwargs: Any) -> None:
        await self.fn(*self.args, **kwargs)


@final
@dataclass(frozen=True, slots=True)
class ServiceSpec:
    """A service with its supervision options; stands anywhere a service may.

    Options left at ``None`` take the supervisor's `Config` default:

        spec = ServiceSpec(
            Poller(),
            restart=Restart.TRANSIENT,
            backoff=Backoff(0.1, maximum=30),
            shutdown_timeout=5,
        )
        config = Config(services=[spec])

    Attributes:
        service: The supervised object.
        restart: Which ends of a run lead to a restart.
        backoff: Restart delays; ``None``: the supervisor's ``backoff``, or its
            fixed ``restart_interval``.
        ready: Call ``run`` (or the function) with a ``task_status`` keyword,
            as `trio.Nursery.start` does; the service is
            `RUNNING` from ``task_status.started()``, and the
            next service starts only then.
        start_timeout: With ``ready``, seconds to reach ``started()``, else the
            run fails with `StartTimeout`; ``None``: no limit.
        shutdown_timeout: Seconds between the stop request and cancellation;
            ``None``: the supervisor's ``shutdown_timeout``.
        watchdog: Seconds within which the service must call
            `heartbeat`, else it fails with `WatchdogTimeout`;
            ``None``: no watchdog.
    """

    service: Service
    restart: Restart = Restart.PERMANENT
    backoff: Backoff | None = None
    ready: bool = False
    start_timeout: float | timedelta | None = None
    shutdown_timeout: float | timedelta | None = None
    watchdog: float | timedelta | None = None

    def __post_init__(self) -> None:
        if isinstance(self.service, ServiceSpec):
            raise TypeError(
                f"service must not be a ServiceSpec itself, got {self.service!r}; "
                "use dataclasses.replace() to change its options"
            )
        if type(self.service) is not _FunctionService:  # new_service checked it
            check_service("service", self.service)
        if not isinstance(self.restart, Restart):
            raise TypeError(f"restart must be a Restart, got {self.restart!r}")
        if self.backoff is not None and not isinstance(self.backoff, Backoff):
            raise TypeError(f"backoff must be a Backoff or None, got {self.backoff!r}")
        _util.boolean("ready", self.ready)
        if self.start_timeout is not None:
            if not self.ready:
                raise ValueError(
                    f"start_timeout needs ready=True, got start_timeout="
                    f"{self.start_timeout!r} with ready=False"
                )
            _util.positive_seconds("start_timeout", self.start_timeout)
        _util.optional_seconds("shutdown_timeout", self.shutdown_timeout)
        if self.watchdog is not None:
            _util.positive_seconds("watchdog", self.watchdog)

    @property
    def name(self) -> str:
        """The wrapped service's name."""
        service = self.service
        if type(service) is _FunctionService:
            return service.name  # new_service checked it
        return service_name(service)

    async def run(self, **kwargs: Any) -> None:
        """Run the wrapped service once (what the supervisor does for each start)."""
        fn, args = self._entry_point()
        await fn(*args, **kwargs)

    def _entry_point(
        self,
    ) -> tuple[Callable[..., Awaitable[object]], tuple[object, ...]]:
        """What each run awaits, ``fn(*args)``, with no wrapper frame of ours."""
        service = self.service
        if type(service) is _FunctionService:
            return service.fn, service.args
        return service.run, ()


def as_spec(argument: str, service: object, options: ServiceOptions) -> ServiceSpec:
    """``service`` with ``options`` as a `ServiceSpec`, checked."""
    if isinstance(service, ServiceSpec):
        if options:
            raise TypeError(
                f"{argument} is a ServiceSpec already, options {sorted(options)} "
                "must be given to it instead"
            )
        return service
    check_service(argument, service)
    return ServiceSpec(cast(Service, service), **options)


class ServiceOptions(TypedDict, total=False):
    """The keyword options of `ServiceSpec`, taken as ``**options`` by
    `new_service` and `Supervisor.add`:

        options: ServiceOptions = {"restart": Restart.TRANSIENT, "shutdown_timeout": 5}
        supervisor.add(Poller(), **options)
    """

    restart: Restart
    backoff: Backoff | None
    ready: bool
    start_timeout: float | timedelta | None
    shutdown_timeout: float | timedelta | None
    watchdog: float | timedelta | None


def new_service(
    name: str,
    fn: Callable[..., Awaitable[object]],
    *args: object,
    **options: Unpack[ServiceOptions],
) -> ServiceSpec:
    """A service named ``name`` whose every run is ``await fn(*args)``.

    Each restart calls ``fn`` afresh. The keyword options are those of
    `ServiceSpec`:

        async def consume(queue: str) -> None:
            ...

        service = new_service("orders", consume, "orders-queue", shutdown_timeout=5)

    Raises:
        TypeError: ``name`` is not a str, or ``fn`` is not an async function.
        ValueError: ``name`` is empty, or an option is out of range.
    """
    if not isinstance(name, str):
        raise TypeError(f"name must be a str, got {name!r}")
    if not name:
        raise ValueError(f"name must not be empty, got {name!r}")
    if not is_async_callable(fn):
        raise TypeError(f"fn must be an async function, got {fn!r}")
    if options:
        return ServiceSpec(_FunctionService(name, fn, args), **options)
    return _plain_spec(_FunctionService(name, fn, args))


_new_object = object.__new__
(
    _set_service,
    _set_restart,
    _set_backoff,
    _set_ready,
    _set_start_timeout,
    _set_shutdown_timeout,
    _set_watchdog,
) = (ServiceSpec.__dict__[field.name].__set__ for field in fields(ServiceSpec))


def _plain_spec(service: _FunctionService) -> ServiceSpec:
    """``ServiceSpec(service)`` in a third of the time, for a checked service
    and the default options: it fills the slots directly, where the frozen
    dataclass's ``__init__`` goes through ``object.__setattr__``, then checks
    options that need no check. Most of 100,000 services are built so."""
    spec: ServiceSpec = _new_object(ServiceSpec)
    _set_service(spec, service)
    _set_restart(spec, Restart.PERMANENT)
    _set_backoff(spec, None)
    _set_ready(spec, False)
    _set_start_timeout(spec, None)
    _set_shutdown_timeout(spec, None)
    _set_watchdog(spec, None)
    return spec
