"""Bad input everywhere: every public function and option of the core, given wrong
types, negative, NaN and infinite numbers, empty and duplicate names, and things
that are not services, raises a TypeError or ValueError that names the argument
and shows the value, before anything starts."""

from __future__ import annotations

import math
import random
import re
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
import trio
import trio.testing

from trio_supervisor import (
    Backoff,
    Config,
    Phase,
    Restart,
    ServiceSpec,
    Status,
    Strategy,
    Supervisor,
    new_service,
    open_supervisor,
)

NAN, INF = math.nan, math.inf
FN_MUST = r"^fn must be an async function, got "
NOT_A_SERVICE = r"must be a Service \(an object with an async run\(\) method\), got "


def exact(text: str) -> str:
    """A pattern matching ``text`` and nothing else."""
    return f"^{re.escape(text)}$"


class Named:
    """A service with any ``name`` attribute."""

    def __init__(self, name: object) -> None:
        self.name = name

    async def run(self) -> None:
        await trio.sleep_forever()


class SyncRun:
    """Has ``run``, but not an async one."""

    name = "sync"

    def run(self) -> None:
        pass


class RunNotCallable:
    run = 5


class ServiceClass:
    """A fine service class; the class itself is not a service."""

    name = "klass"

    async def run(self) -> None:
        await trio.sleep_forever()


def sync_function() -> None:
    pass


async def async_generator() -> Any:
    yield None


async def forever() -> None:
    await trio.sleep_forever()


Case = tuple[str, dict[str, Any], type[Exception], str]
"""(id, arguments, error, pattern of its message)."""


def seconds_cases(field: str, label: str, **extra: Any) -> list[Case]:
    """Wrong type, negative, NaN, infinite and negative-timedelta values of a
    field in seconds (``None`` only where it is not a valid default)."""
    must = f"{label} must be a finite number of seconds >= 0, got "
    kind = f"{label} must be a number of seconds or a datetime.timedelta, got "
    cases: list[tuple[str, object, type[Exception], str]] = [
        ("str", "1", TypeError, kind + "'1'"),
        ("bool", True, TypeError, kind + "True"),
        ("list", [], TypeError, kind + "[]"),
        ("negative", -1, ValueError, must + "-1"),
        ("nan", NAN, ValueError, must + "nan"),
        ("inf", INF, ValueError, must + "inf"),
        ("-inf", -INF, ValueError, must + "-inf"),
        (
            "negative-timedelta",
            timedelta(seconds=-1),
            ValueError,
            must + "datetime.timedelta(days=-1, seconds=86399)",
        ),
    ]
    return [
        (case_id, {field: value, **extra}, error, exact(message))
        for case_id, value, error, message in cases
    ]


def params(prefix: str, cases: list[Case]) -> list[Any]:
    return [
        pytest.param(fields, error, message, id=f"{prefix}-{case_id}")
        for case_id, fields, error, message in cases
    ]


def fields_of(case: Any) -> dict[str, Any]:
    """The arguments dict of a parametrized case."""
    fields = case.values[0]
    assert isinstance(fields, dict)
    return fields


# --- Config ----------------------------------------------------------------------

CONFIG_CASES = [
    pytest.param(
        {"services": "ab"},
        TypeError,
        exact("Config.services must be a sequence, got 'ab'"),
        id="services-str",
    ),
    pytest.param(
        {"services": 5},
        TypeError,
        exact("Config.services must be a sequence, got 5"),
        id="services-int",
    ),
    pytest.param(
        {"services": {1}},
        TypeError,
        exact("Config.services must be a sequence, got {1}"),
        id="services-set",
    ),
    pytest.param(
        {"services": [5]},
        TypeError,
        rf"^Config\.services\[0\] {NOT_A_SERVICE}5$",
        id="services-int-entry",
    ),
    pytest.param(
        {"services": [None, SyncRun()]},
        TypeError,
        rf"^Config\.services\[1\] {NOT_A_SERVICE}<.*\.SyncRun object at 0x\w+>$",
        id="services-sync-run",
    ),
    pytest.param(
        {"services": [RunNotCallable()]},
        TypeError,
        rf"^Config\.services\[0\] {NOT_A_SERVICE}<.*\.RunNotCallable object at 0x\w+>$",
        id="services-run-not-callable",
    ),
    pytest.param(
        {"services": [ServiceClass]},
        TypeError,
        rf"^Config\.services\[0\] {NOT_A_SERVICE}<class '.*\.ServiceClass'>$",
        id="services-a-class-not-an-instance",
    ),
    pytest.param(
        {"services": [Named("a"), Named("a")]},
        ValueError,
        exact(
            "Config.services[1]: service name 'a' is taken by another service; "
            "give each service a distinct name"
        ),
        id="services-duplicate-name",
    ),
    pytest.param(
        {"services": [new_service("a", forever), Named("a")]},
        ValueError,
        exact(
            "Config.services[1]: service name 'a' is taken by another service; "
            "give each service a distinct name"
        ),
        id="services-duplicate-name-across-kinds",
    ),
    pytest.param(
        {"services": [Named("")]},
        ValueError,
        r"^Config\.services\[0\]: service name must not be empty, got '' on <.*>$",
        id="services-empty-name",
    ),
    pytest.param(
        {"services": [Named(5)]},
        TypeError,
        r"^Config\.services\[0\]: service name must be a str, got 5 on <.*>$",
        id="services-name-not-str",
    ),
    pytest.param(
        {"status_update_listeners": print},
        TypeError,
        exact(
            "Config.status_update_listeners must be a sequence, "
            "got <built-in function print>"
        ),
        id="listeners-not-a-sequence",
    ),
    pytest.param(
        {"status_update_listeners": [print, 5]},
        TypeError,
        exact("Config.status_update_listeners[1] must be callable, got 5"),
        id="listeners-not-callable",
    ),
    *params(
        "restart_interval", seconds_cases("restart_interval", "Config.restart_interval")
    ),
    pytest.param(
        {"restart_interval": None},
        TypeError,
        exact(
            "Config.restart_interval must be a number of seconds or a "
            "datetime.timedelta, got None"
        ),
        id="restart_interval-none",
    ),
    pytest.param(
        {"logger": "log"},
        TypeError,
        exact(
            "Config.logger must be a logging.Logger or logging.LoggerAdapter, got 'log'"
        ),
        id="logger-str",
    ),
    pytest.param(
        {"listener_buffer": 0},
        ValueError,
        exact("Config.listener_buffer must be >= 1, got 0"),
        id="listener_buffer-zero",
    ),
    pytest.param(
        {"listener_buffer": -5},
        ValueError,
        exact("Config.listener_buffer must be >= 1, got -5"),
        id="listener_buffer-negative",
    ),
    *(
        pytest.param(
            {"listener_buffer": value},
            TypeError,
            exact(f"Config.listener_buffer must be an int, got {value!r}"),
            id=f"listener_buffer-{label}",
        )
        for label, value in [("float", 1.5), ("nan", NAN), ("inf", INF), ("bool", True)]
    ),
    *params(
        "listener_shutdown_timeout",
        seconds_cases("listener_shutdown_timeout", "Config.listener_shutdown_timeout"),
    ),
    pytest.param(
        {"name": ""},
        ValueError,
        exact("Config.name must not be empty, got ''"),
        id="name-empty",
    ),
    pytest.param(
        {"name": 5},
        TypeError,
        exact("Config.name must be a str, got 5"),
        id="name-int",
    ),
    pytest.param(
        {"strategy": "one_for_all"},
        TypeError,
        exact("Config.strategy must be a Strategy, got 'one_for_all'"),
        id="strategy-str",
    ),
    pytest.param(
        {"backoff": 1.0},
        TypeError,
        exact("Config.backoff must be a Backoff or None, got 1.0"),
        id="backoff-float",
    ),
    pytest.param(
        {"max_restarts": 3},
        ValueError,
        exact(
            "Config.max_restarts and Config.max_seconds go together, "
            "got max_restarts=3 and max_seconds=None"
        ),
        id="max_restarts-alone",
    ),
    pytest.param(
        {"max_seconds": 3},
        ValueError,
        exact(
            "Config.max_restarts and Config.max_seconds go together, "
            "got max_restarts=None and max_seconds=3"
        ),
        id="max_seconds-alone",
    ),
    pytest.param(
        {"max_restarts": -1, "max_seconds": 1},
        ValueError,
        exact("Config.max_restarts must be >= 0, got -1"),
        id="max_restarts-negative",
    ),
    *(
        pytest.param(
            {"max_restarts": value, "max_seconds": 1},
            TypeError,
            exact(f"Config.max_restarts must be an int, got {value!r}"),
            id=f"max_restarts-{label}",
        )
        for label, value in [("float", 1.5), ("nan", NAN), ("inf", INF), ("bool", True)]
    ),
    *params(
        "max_seconds",
        seconds_cases("max_seconds", "Config.max_seconds", max_restarts=1),
    ),
    *params(
        "shutdown_timeout", seconds_cases("shutdown_timeout", "Config.shutdown_timeout")
    ),
    pytest.param(
        {"reverse_shutdown": 1},
        TypeError,
        exact("Config.reverse_shutdown must be a bool, got 1"),
        id="reverse_shutdown-int",
    ),
    pytest.param(
        {"reverse_shutdown": "yes"},
        TypeError,
        exact("Config.reverse_shutdown must be a bool, got 'yes'"),
        id="reverse_shutdown-str",
    ),
    pytest.param(
        {"individual_stop": 0},
        TypeError,
        exact("Config.individual_stop must be a bool, got 0"),
        id="individual_stop-int",
    ),
    pytest.param(
        {"individual_stop": False, "strategy": Strategy.REST_FOR_ONE},
        ValueError,
        exact(
            "Config.strategy=Strategy.REST_FOR_ONE needs Config.individual_stop=True "
            "(a group restart stops services alone)"
        ),
        id="individual_stop-false-with-a-group-strategy",
    ),
    pytest.param(
        {"individual_stop": False, "reverse_shutdown": True},
        ValueError,
        exact(
            "Config.reverse_shutdown=True needs Config.individual_stop=True "
            "(it stops services one at a time)"
        ),
        id="individual_stop-false-with-reverse_shutdown",
    ),
    *(
        pytest.param(
            {"individual_stop": False, "services": [None, spec]},
            ValueError,
            exact(
                f"Config.services[1]: {option} needs Config.individual_stop=True "
                f"(it cancels one service alone), got {option}={value!r}"
            ),
            id=f"individual_stop-false-with-{option}",
        )
        for option, value, spec in [
            ("watchdog", 2, new_service("w", forever, watchdog=2)),
            (
                "start_timeout",
                3,
                new_service("w", forever, ready=True, start_timeout=3),
            ),
        ]
    ),
    pytest.param(
        {
            "individual_stop": False,
            "shutdown_timeout": 5,
            "services": [new_service("w", forever, shutdown_timeout=2)],
        },
        ValueError,
        exact(
            "Config.services[0]: shutdown_timeout=2 differs from "
            "Config.shutdown_timeout=5, and Config.individual_stop=False stops "
            "every service at once"
        ),
        id="individual_stop-false-with-a-shutdown_timeout-of-its-own",
    ),
]


class TestConfig:
    """Every Config field is checked when the supervisor is built."""

    @pytest.mark.parametrize(("fields", "error", "message"), CONFIG_CASES)
    async def test_bad_field_is_refused_before_any_service_starts(
        self,
        fields: dict[str, Any],
        error: type[Exception],
        message: str,
        autojump_clock: trio.testing.MockClock,
    ) -> None:
        """The bad field raises, naming it, and no service or block ever runs."""
        ran: list[str] = []

        async def witness() -> None:
            ran.append("witness")
            await trio.sleep_forever()

        config = Config(**{"services": [new_service("witness", witness)], **fields})
        with pytest.raises(error, match=message):
            Supervisor(config)
        with pytest.raises(error, match=message):
            async with open_supervisor(config):
                ran.append("block")  # pragma: no cover - must not run
        assert ran == []

    @pytest.mark.parametrize(
        "config", [{}, None, "Config()"], ids=["dict", "none", "str"]
    )
    def test_a_config_that_is_not_a_config_is_refused(self, config: Any) -> None:
        """Supervisor() wants a Config, and says so with the value it got."""
        with pytest.raises(
            TypeError,
            match=exact(f"config must be a trio_supervisor.Config, got {config!r}"),
        ):
            Supervisor(config)


# --- new_service and ServiceSpec ---------------------------------------------------

OPTION_CASES = [
    pytest.param(
        {"restart": "permanent"},
        TypeError,
        exact("restart must be a Restart, got 'permanent'"),
        id="restart-str",
    ),
    pytest.param(
        {"backoff": 5},
        TypeError,
        exact("backoff must be a Backoff or None, got 5"),
        id="backoff-int",
    ),
    pytest.param(
        {"ready": 1}, TypeError, exact("ready must be a bool, got 1"), id="ready-int"
    ),
    pytest.param(
        {"start_timeout": 1},
        ValueError,
        exact("start_timeout needs ready=True, got start_timeout=1 with ready=False"),
        id="start_timeout-without-ready",
    ),
    pytest.param(
        {"start_timeout": 0, "ready": True},
        ValueError,
        exact("start_timeout must be > 0 seconds, got 0"),
        id="start_timeout-zero",
    ),
    *params(
        "start_timeout", seconds_cases("start_timeout", "start_timeout", ready=True)
    ),
    *params("shutdown_timeout", seconds_cases("shutdown_timeout", "shutdown_timeout")),
    pytest.param(
        {"watchdog": 0},
        ValueError,
        exact("watchdog must be > 0 seconds, got 0"),
        id="watchdog-zero",
    ),
    *params("watchdog", seconds_cases("watchdog", "watchdog")),
    pytest.param(
        {"restrat": Restart.TEMPORARY},
        TypeError,
        # Python 3.13 adds a suggestion to the interpreter's message.
        r"^(ServiceSpec\.)?__init__\(\) got an unexpected keyword argument "
        r"'restrat'(\. Did you mean 'restart'\?)?$",
        id="unknown-option",
    ),
]


class TestNewService:
    """new_service() checks its name, its function and every option."""

    @pytest.mark.parametrize(
        ("args", "error", "message"),
        [
            pytest.param(
                (5, forever),
                TypeError,
                exact("name must be a str, got 5"),
                id="name-int",
            ),
            pytest.param(
                (None, forever),
                TypeError,
                exact("name must be a str, got None"),
                id="name-none",
            ),
            pytest.param(
                (b"a", forever),
                TypeError,
                exact("name must be a str, got b'a'"),
                id="name-bytes",
            ),
            pytest.param(
                ("", forever),
                ValueError,
                exact("name must not be empty, got ''"),
                id="name-empty",
            ),
            pytest.param(
                ("a", sync_function),
                TypeError,
                FN_MUST + r"<function sync_function at 0x\w+>$",
                id="fn-sync",
            ),
            pytest.param(
                ("a", async_generator),
                TypeError,
                FN_MUST + r"<function async_generator at 0x\w+>$",
                id="fn-async-generator",
            ),
            pytest.param(
                ("a", 5),
                TypeError,
                exact("fn must be an async function, got 5"),
                id="fn-int",
            ),
            pytest.param(
                ("a", ServiceClass),
                TypeError,
                r"^fn must be an async function, got <class '.*\.ServiceClass'>$",
                id="fn-class",
            ),
        ],
    )
    def test_bad_name_or_function(
        self, args: tuple[Any, ...], error: type[Exception], message: str
    ) -> None:
        """A name that is not a non-empty str, or a function that is not async,
        is refused with the argument named."""
        with pytest.raises(error, match=message):
            new_service(*args)

    @pytest.mark.parametrize(("options", "error", "message"), OPTION_CASES)
    def test_bad_option(
        self, options: dict[str, Any], error: type[Exception], message: str
    ) -> None:
        """Each option of a bad type or value is refused, naming the option."""
        with pytest.raises(error, match=message):
            new_service("a", forever, **options)


class TestServiceSpec:
    """ServiceSpec refuses what is not a service, and bad options."""

    @pytest.mark.parametrize(
        ("service", "message"),
        [
            pytest.param(5, rf"^service {NOT_A_SERVICE}5$", id="int"),
            pytest.param(None, rf"^service {NOT_A_SERVICE}None$", id="none"),
            pytest.param(
                forever,
                rf"^service {NOT_A_SERVICE}<function forever at 0x\w+>$",
                id="a-bare-function",
            ),
            pytest.param(
                SyncRun(),
                rf"^service {NOT_A_SERVICE}<.*\.SyncRun object at 0x\w+>$",
                id="sync-run",
            ),
            pytest.param(
                RunNotCallable(),
                rf"^service {NOT_A_SERVICE}<.*\.RunNotCallable object at 0x\w+>$",
                id="run-not-callable",
            ),
            pytest.param(
                ServiceClass,
                rf"^service {NOT_A_SERVICE}<class '.*\.ServiceClass'>$",
                id="a-class-not-an-instance",
            ),
            pytest.param(
                ServiceSpec(Named("inner")),
                r"^service must not be a ServiceSpec itself, got ServiceSpec\(.*\); "
                r"use dataclasses\.replace\(\) to change its options$",
                id="a-spec",
            ),
            pytest.param(
                Named(5),
                r"^service: service name must be a str, got 5 on <.*>$",
                id="name-int",
            ),
        ],
    )
    def test_not_a_service(self, service: Any, message: str) -> None:
        """Anything without an async run() method is a TypeError naming it."""
        with pytest.raises(TypeError, match=message):
            ServiceSpec(service)

    def test_empty_name(self) -> None:
        """A service whose name is empty is a ValueError."""
        with pytest.raises(
            ValueError,
            match=r"^service: service name must not be empty, got '' on <.*>$",
        ):
            ServiceSpec(Named(""))

    @pytest.mark.parametrize(("options", "error", "message"), OPTION_CASES)
    def test_bad_option(
        self, options: dict[str, Any], error: type[Exception], message: str
    ) -> None:
        """The options of ServiceSpec are those of new_service, checked alike."""
        with pytest.raises(error, match=message):
            ServiceSpec(Named("a"), **options)


# --- Backoff ----------------------------------------------------------------------


def backoff_seconds(field: str) -> list[Any]:
    extra = {} if field == "initial" else {"initial": 0.5}
    return params(field, seconds_cases(field, f"Backoff.{field}", **extra))


BACKOFF_CASES = [
    *backoff_seconds("initial"),
    *backoff_seconds("maximum"),
    *backoff_seconds("reset_after"),
    pytest.param(
        {"initial": 1, "maximum": 0.5},
        ValueError,
        exact("Backoff.maximum must be >= initial (1.0), got 0.5"),
        id="maximum-below-initial",
    ),
    *(
        pytest.param(
            {"initial": 1, "multiplier": value},
            ValueError,
            exact(f"Backoff.multiplier must be a finite number >= 1, got {value!r}"),
            id=f"multiplier-{label}",
        )
        for label, value in [
            ("below-one", 0.5),
            ("zero", 0),
            ("negative", -2),
            ("nan", NAN),
            ("inf", INF),
        ]
    ),
    *(
        pytest.param(
            {"initial": 1, "multiplier": value},
            TypeError,
            exact(f"Backoff.multiplier must be a number, got {value!r}"),
            id=f"multiplier-{label}",
        )
        for label, value in [("str", "2"), ("bool", True), ("none", None)]
    ),
    *(
        pytest.param(
            {"initial": 1, "jitter": value},
            ValueError,
            exact(f"Backoff.jitter must be between 0 and 1, got {value!r}"),
            id=f"jitter-{label}",
        )
        for label, value in [
            ("negative", -0.1),
            ("above-one", 1.5),
            ("nan", NAN),
            ("inf", INF),
        ]
    ),
    pytest.param(
        {"initial": 1, "jitter": "0.1"},
        TypeError,
        exact("Backoff.jitter must be a number, got '0.1'"),
        id="jitter-str",
    ),
    pytest.param(
        {"initial": 1, "rng": 5},
        TypeError,
        exact("Backoff.rng must be a random.Random, got 5"),
        id="rng-int",
    ),
    pytest.param(
        {"initial": 1, "rng": random},
        TypeError,
        r"^Backoff\.rng must be a random\.Random, got <module 'random' .*>$",
        id="rng-the-module",
    ),
]


class TestBackoff:
    """Backoff checks each field when it is built."""

    @pytest.mark.parametrize(("fields", "error", "message"), BACKOFF_CASES)
    def test_bad_field(
        self, fields: dict[str, Any], error: type[Exception], message: str
    ) -> None:
        """Each bad field raises, naming Backoff's field and the value."""
        with pytest.raises(error, match=message):
            Backoff(**fields)


# --- a running supervisor: add, remove, wait_phase --------------------------------

ADD_CASES = [
    pytest.param((5,), {}, TypeError, rf"^service {NOT_A_SERVICE}5$", id="int"),
    pytest.param((None,), {}, TypeError, rf"^service {NOT_A_SERVICE}None$", id="none"),
    pytest.param(
        (forever,),
        {},
        TypeError,
        rf"^service {NOT_A_SERVICE}<function forever at 0x\w+>$",
        id="a-bare-function",
    ),
    pytest.param(
        (ServiceClass,),
        {},
        TypeError,
        rf"^service {NOT_A_SERVICE}<class '.*\.ServiceClass'>$",
        id="a-class-not-an-instance",
    ),
    pytest.param(
        (Named("first"),),
        {},
        ValueError,
        exact(
            "service: service name 'first' is taken by another service; "
            "give each service a distinct name"
        ),
        id="duplicate-name",
    ),
    pytest.param(
        (Named(""),),
        {},
        ValueError,
        r"^service: service name must not be empty, got '' on <.*>$",
        id="empty-name",
    ),
    pytest.param(
        (ServiceSpec(Named("x")),),
        {"restart": Restart.TEMPORARY},
        TypeError,
        exact(
            "service is a ServiceSpec already, options ['restart'] "
            "must be given to it instead"
        ),
        id="spec-with-options",
    ),
    *(
        pytest.param((Named("x"),), *case.values, id=f"option-{case.id}")
        for case in OPTION_CASES
    ),
]


class TestSupervisorMethods:
    """add(), remove() and wait_phase() check their arguments before acting."""

    @pytest.mark.parametrize(("args", "options", "error", "message"), ADD_CASES)
    async def test_add_refuses_before_starting_anything(
        self,
        args: tuple[Any, ...],
        options: dict[str, Any],
        error: type[Exception],
        message: str,
        autojump_clock: trio.testing.MockClock,
    ) -> None:
        """A bad add() raises, takes no id and starts nothing, before or during a
        run."""
        supervisor = Supervisor(Config(services=[new_service("first", forever)]))
        add: Callable[..., int] = supervisor.add
        with pytest.raises(error, match=message):
            add(*args, **options)
        async with trio.open_nursery() as nursery:
            await nursery.start(supervisor.run)
            before = supervisor.statuses()
            with pytest.raises(error, match=message):
                add(*args, **options)
            await trio.testing.wait_all_tasks_blocked()
            assert supervisor.statuses() == before
            assert supervisor.add(new_service("next", forever)) == 1
            supervisor.stop()

    @pytest.mark.parametrize(
        ("service_id", "error", "message"),
        [
            pytest.param(
                "0", TypeError, exact("service_id must be an int, got '0'"), id="str"
            ),
            pytest.param(
                0.0, TypeError, exact("service_id must be an int, got 0.0"), id="float"
            ),
            pytest.param(
                NAN, TypeError, exact("service_id must be an int, got nan"), id="nan"
            ),
            pytest.param(
                False,
                TypeError,
                exact("service_id must be an int, got False"),
                id="bool",
            ),
            pytest.param(
                None, TypeError, exact("service_id must be an int, got None"), id="none"
            ),
            pytest.param(
                -1, ValueError, exact("service_id must be >= 0, got -1"), id="negative"
            ),
            pytest.param(
                7, ValueError, exact("service_id: no service has id 7"), id="unknown"
            ),
        ],
    )
    async def test_remove_refuses_before_stopping_anything(
        self,
        service_id: Any,
        error: type[Exception],
        message: str,
        autojump_clock: trio.testing.MockClock,
    ) -> None:
        """A bad remove() raises at once, and the service it did not name runs on."""
        supervisor = Supervisor(Config(services=[new_service("first", forever)]))
        with pytest.raises(error, match=message):
            await supervisor.remove(service_id)
        async with trio.open_nursery() as nursery:
            await nursery.start(supervisor.run)
            with pytest.raises(error, match=message):
                await supervisor.remove(service_id)
            assert trio.current_time() == 0
            await trio.testing.wait_all_tasks_blocked()
            assert [(u.status, u.time) for u in supervisor.statuses()] == [
                (Status.RUNNING, 0)
            ]
            supervisor.stop()

    async def test_removing_twice_is_an_unknown_id(
        self, autojump_clock: trio.testing.MockClock
    ) -> None:
        """Once removed, a service's id is unknown: removing it again is a
        ValueError."""
        supervisor = Supervisor(Config(services=[new_service("first", forever)]))
        async with trio.open_nursery() as nursery:
            await nursery.start(supervisor.run)
            await supervisor.remove(0)
            with pytest.raises(
                ValueError, match=exact("service_id: no service has id 0")
            ):
                await supervisor.remove(0)
            supervisor.stop()

    @pytest.mark.parametrize(
        "phase",
        ["running", 2, Status.RUNNING, None],
        ids=["str", "int", "a-status", "none"],
    )
    async def test_wait_phase_refuses_what_is_not_a_phase(
        self, phase: Any, autojump_clock: trio.testing.MockClock
    ) -> None:
        """wait_phase() wants a Phase, not its name, its number or a Status."""
        supervisor = Supervisor(Config())
        with pytest.raises(
            TypeError, match=exact(f"phase must be a Phase, got {phase!r}")
        ):
            await supervisor.wait_phase(phase)
        assert supervisor.phase is Phase.IDLE


def test_the_tables_cover_every_public_constructor_and_option() -> None:
    """Every Config field, every service option and every Backoff field has at
    least one bad-input case."""
    config_fields = {next(iter(fields_of(case))) for case in CONFIG_CASES}
    assert config_fields >= set(Config.__dataclass_fields__)
    options = {name for case in OPTION_CASES for name in fields_of(case)}
    assert options >= set(ServiceSpec.__dataclass_fields__) - {"service"}
    backoff_fields = {name for case in BACKOFF_CASES for name in fields_of(case)}
    assert backoff_fields >= set(Backoff.__dataclass_fields__)
