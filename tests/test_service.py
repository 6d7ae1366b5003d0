"""The Service protocol, service names, new_service() and ServiceSpec's checks."""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
import trio
from conftest import Recorder, run_for

from trio_supervisor import (
    Backoff,
    Config,
    Restart,
    Service,
    ServiceSpec,
    Status,
    Supervisor,
    new_service,
)


class Poller:
    """A service with a ``name`` attribute."""

    name = "poller"

    async def run(self) -> None:
        await trio.sleep_forever()


class Anonymous:
    """A service without a ``name``: named after its module and class."""

    class Inner:
        async def run(self) -> None:
            await trio.sleep_forever()

    async def run(self) -> None:
        await trio.sleep_forever()


class SyncRun:
    """Not a service: its ``run`` is a plain method."""

    name = "sync"

    def run(self) -> None:
        pass


class NoRun:
    """Not a service: no ``run`` at all."""

    name = "norun"


class Named:
    """A service whose ``name`` is whatever the test gives it."""

    def __init__(self, name: object) -> None:
        self.name = name

    def __repr__(self) -> str:
        return "<Named>"

    async def run(self) -> None:
        await trio.sleep_forever()


async def forever() -> None:
    await trio.sleep_forever()


def plain() -> None:
    pass


MODULE = __name__.rpartition(".")[2]


class TestServiceProtocol:
    """What counts as a Service."""

    def test_an_object_with_async_run_is_a_service(self) -> None:
        """Any object with a ``run`` method passes the runtime Protocol check."""
        assert isinstance(Poller(), Service)
        assert isinstance(Anonymous(), Service)

    def test_an_object_without_run_is_not_a_service(self) -> None:
        """An object without ``run`` fails the runtime Protocol check."""
        assert not isinstance(NoRun(), Service)
        assert not isinstance(forever, Service)

    def test_new_service_and_service_spec_are_services(self) -> None:
        """What new_service() and ServiceSpec() build is a Service itself."""
        assert isinstance(new_service("a", forever), Service)
        assert isinstance(ServiceSpec(Poller()), Service)


class TestServiceNames:
    """A service's name: its ``name``, else ``module.QualName``."""

    async def test_name_attribute_is_the_service_name(
        self, autojump_clock: trio.testing.MockClock, recorder: Recorder
    ) -> None:
        """The ``name`` attribute names the service in its updates."""
        config = Config(services=[Poller()], status_update_listeners=[recorder])
        await run_for(1, config)
        assert recorder.transitions() == [
            ("poller", Status.IDLE, 0.0),
            ("poller", Status.RUNNING, 0.0),
            ("poller", Status.STOPPED, 1.0),
        ]

    async def test_without_name_the_module_tail_and_qualname_name_it(
        self, autojump_clock: trio.testing.MockClock
    ) -> None:
        """A service without ``name`` is called ``<module tail>.<qualname>``."""
        supervisor = await run_for(1, Config(services=[Anonymous(), Anonymous.Inner()]))
        assert [u.service_name for u in supervisor.statuses()] == [
            f"{MODULE}.Anonymous",
            f"{MODULE}.Anonymous.Inner",
        ]
        assert MODULE == "test_service"

    def test_service_spec_takes_the_wrapped_service_name(self) -> None:
        """A ServiceSpec is named after the service it wraps."""
        assert ServiceSpec(Poller()).name == "poller"
        assert ServiceSpec(Anonymous()).name == f"{MODULE}.Anonymous"
        assert new_service("orders", forever).name == "orders"

    def test_a_name_that_is_not_a_str_is_refused(self) -> None:
        """A ``name`` attribute that is not a str is a TypeError showing it."""
        with pytest.raises(
            TypeError, match=r"^service: service name must be a str, got 42 on <Named>$"
        ):
            ServiceSpec(Named(42))

    def test_an_empty_name_is_refused(self) -> None:
        """An empty ``name`` attribute is a ValueError showing it."""
        with pytest.raises(
            ValueError,
            match=r"^service: service name must not be empty, got '' on <Named>$",
        ):
            ServiceSpec(Named(""))


class TestNewService:
    """new_service(name, fn, *args)."""

    async def test_each_restart_calls_fn_afresh_with_the_args(
        self, autojump_clock: trio.testing.MockClock, recorder: Recorder
    ) -> None:
        """Every run awaits a new ``fn(*args)`` call, with the same arguments."""
        calls: list[tuple[object, ...]] = []

        async def work(*args: object) -> None:
            calls.append(args)
            await trio.sleep(1)

        config = Config(
            services=[new_service("worker", work, "a", 2)],
            restart_interval=1,
            status_update_listeners=[recorder],
        )
        await run_for(5.5, config)
        assert calls == [("a", 2), ("a", 2), ("a", 2)]
        assert recorder.transitions() == [
            ("worker", Status.IDLE, 0.0),
            ("worker", Status.RUNNING, 0.0),
            ("worker", Status.STOPPED, 1.0),
            ("worker", Status.IDLE, 2.0),
            ("worker", Status.RUNNING, 2.0),
            ("worker", Status.STOPPED, 3.0),
            ("worker", Status.IDLE, 4.0),
            ("worker", Status.RUNNING, 4.0),
            ("worker", Status.STOPPED, 5.0),
        ]

    async def test_fn_state_is_not_shared_between_runs(
        self, autojump_clock: trio.testing.MockClock
    ) -> None:
        """A run that fails does not leave a spent coroutine for the next one."""
        runs: list[float] = []

        async def fail_then_wait() -> None:
            runs.append(trio.current_time())
            if len(runs) < 3:
                raise ValueError("again")
            await trio.sleep_forever()

        supervisor = await run_for(
            10, Config(services=[new_service("f", fail_then_wait)], restart_interval=2)
        )
        assert runs == [0.0, 2.0, 4.0]
        (last,) = supervisor.statuses()
        assert (last.status, last.time, last.err) == (Status.STOPPED, 10.0, None)

    async def test_new_service_accepts_partials_and_async_callables(
        self, autojump_clock: trio.testing.MockClock
    ) -> None:
        """A partial of an ``async def``, or an object with an async ``__call__``,
        is run like an async function."""
        greeted: list[str] = []

        async def greet(who: str) -> None:
            greeted.append(who)
            await trio.sleep_forever()

        class Greeter:
            async def __call__(self, who: str) -> None:
                await greet(who)

        config = Config(
            services=[
                new_service("partial", functools.partial(greet, "you")),
                new_service("object", Greeter(), "them"),
            ]
        )
        supervisor = await run_for(1, config)
        assert sorted(greeted) == ["them", "you"]
        assert [u.status for u in supervisor.statuses()] == [Status.STOPPED] * 2

    @pytest.mark.parametrize(
        ("fn", "message"),
        [
            (plain, r"^fn must be an async function, got <function plain at 0x\w+>$"),
            (print, r"^fn must be an async function, got <built-in function print>$"),
            (None, r"^fn must be an async function, got None$"),
        ],
        ids=["sync-function", "builtin", "none"],
    )
    def test_a_synchronous_fn_is_refused(
        self, fn: Callable[..., Any], message: str
    ) -> None:
        """new_service refuses anything that is not an async function."""
        with pytest.raises(TypeError, match=message):
            new_service("x", fn)

    def test_a_name_that_is_not_a_str_is_refused(self) -> None:
        """new_service's name must be a str."""
        bad: Any = 7
        with pytest.raises(TypeError, match=r"^name must be a str, got 7$"):
            new_service(bad, forever)

    def test_an_empty_name_is_refused(self) -> None:
        """new_service's name must not be empty."""
        with pytest.raises(ValueError, match=r"^name must not be empty, got ''$"):
            new_service("", forever)

    def test_without_options_it_is_the_default_spec(self) -> None:
        """new_service() with no option builds its spec by a faster path: the
        result is the spec ServiceSpec() makes, equal, hashable and frozen."""

        async def fn() -> None:
            await trio.sleep_forever()

        spec = new_service("plain", fn)
        assert spec == ServiceSpec(spec.service)
        assert hash(spec) == hash(ServiceSpec(spec.service))
        assert repr(spec) == repr(ServiceSpec(spec.service))
        option = "ready"
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(spec, option, True)

    def test_new_service_takes_the_spec_options(self) -> None:
        """Keyword options of new_service() land on the returned ServiceSpec."""
        spec = new_service(
            "w", forever, restart=Restart.TRANSIENT, shutdown_timeout=timedelta(1)
        )
        assert spec.restart is Restart.TRANSIENT
        assert spec.shutdown_timeout == timedelta(1)


BAD_SPECS: list[tuple[dict[str, Any], type[Exception], str]] = [
    (
        {"restart": "permanent"},
        TypeError,
        r"^restart must be a Restart, got 'permanent'$",
    ),
    ({"backoff": 1.0}, TypeError, r"^backoff must be a Backoff or None, got 1\.0$"),
    ({"ready": 1}, TypeError, r"^ready must be a bool, got 1$"),
    (
        {"start_timeout": 5},
        ValueError,
        r"^start_timeout needs ready=True, got start_timeout=5 with ready=False$",
    ),
    (
        {"ready": True, "start_timeout": 0},
        ValueError,
        r"^start_timeout must be > 0 seconds, got 0$",
    ),
    (
        {"ready": True, "start_timeout": -1.0},
        ValueError,
        r"^start_timeout must be a finite number of seconds >= 0, got -1\.0$",
    ),
    (
        {"shutdown_timeout": float("nan")},
        ValueError,
        r"^shutdown_timeout must be a finite number of seconds >= 0, got nan$",
    ),
    (
        {"shutdown_timeout": "5"},
        TypeError,
        r"^shutdown_timeout must be a number of seconds or a datetime\.timedelta, "
        r"got '5'$",
    ),
    ({"watchdog": 0.0}, ValueError, r"^watchdog must be > 0 seconds, got 0\.0$"),
    (
        {"watchdog": timedelta(seconds=-1)},
        ValueError,
        r"^watchdog must be a finite number of seconds >= 0, "
        r"got datetime\.timedelta\(days=-1, seconds=86399\)$",
    ),
]


class TestServiceSpec:
    """ServiceSpec's checks, made when it is built."""

    @pytest.mark.parametrize(
        ("options", "error", "message"),
        BAD_SPECS,
        ids=[
            "restart",
            "backoff",
            "ready",
            "start_timeout-without-ready",
            "start_timeout-zero",
            "start_timeout-negative",
            "shutdown_timeout-nan",
            "shutdown_timeout-str",
            "watchdog-zero",
            "watchdog-negative",
        ],
    )
    def test_bad_options_are_refused(
        self, options: dict[str, Any], error: type[Exception], message: str
    ) -> None:
        """Each bad option is refused with an error naming it and its value."""
        with pytest.raises(error, match=message):
            ServiceSpec(Poller(), **options)

    @pytest.mark.parametrize(
        "service",
        [SyncRun(), NoRun(), forever, None],
        ids=["sync-run", "no-run", "function", "none"],
    )
    def test_a_non_service_is_refused(self, service: Any) -> None:
        """Something without an async ``run`` cannot be wrapped."""
        with pytest.raises(
            TypeError,
            match=r"^service must be a Service \(an object with an async run\(\) "
            r"method\), got .+$",
        ):
            ServiceSpec(service)

    def test_a_spec_cannot_wrap_a_spec(self) -> None:
        """Wrapping a ServiceSpec in another is a TypeError pointing to replace()."""
        inner = ServiceSpec(Poller())
        bad: Any = inner
        with pytest.raises(
            TypeError,
            match=r"^service must not be a ServiceSpec itself, got .+; "
            r"use dataclasses\.replace\(\) to change its options$",
        ):
            ServiceSpec(bad)

    def test_good_options_are_kept(self) -> None:
        """A spec keeps the options it was given, as given."""
        backoff = Backoff(0.5)
        spec = ServiceSpec(
            Poller(),
            restart=Restart.TEMPORARY,
            backoff=backoff,
            ready=True,
            start_timeout=timedelta(seconds=3),
            shutdown_timeout=0,
            watchdog=2.5,
        )
        assert spec.restart is Restart.TEMPORARY
        assert spec.backoff is backoff
        assert spec.ready is True
        assert spec.start_timeout == timedelta(seconds=3)
        assert spec.shutdown_timeout == 0
        assert spec.watchdog == 2.5

    def test_a_spec_is_accepted_by_the_supervisor(self) -> None:
        """A ServiceSpec stands anywhere a service may."""
        supervisor = Supervisor(Config(services=[ServiceSpec(Poller())]))
        assert supervisor.statuses() == []
