"""Config: each field is checked when the Supervisor is built; ids and names."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

import pytest
import trio
import trio.testing
from conftest import Recorder, run_for

from trio_supervisor import (
    Backoff,
    Config,
    Status,
    Strategy,
    Supervisor,
    new_service,
)


async def forever() -> None:
    await trio.sleep_forever()


async def fail() -> None:
    raise ValueError("fail")


class SyncRun:
    name = "sync"

    def __repr__(self) -> str:
        return "<SyncRun>"

    def run(self) -> None:
        pass


class Named:
    def __init__(self, name: object) -> None:
        self.name = name

    def __repr__(self) -> str:
        return "<Named>"

    async def run(self) -> None:
        await trio.sleep_forever()


def not_a_listener() -> None:
    pass


NOT_SECONDS = r"must be a number of seconds or a datetime\.timedelta, got"
BAD_SECONDS = r"must be a finite number of seconds >= 0, got"

# (field values, error type, exact message); ids name the field and the case.
BAD_CONFIGS: dict[str, tuple[dict[str, Any], type[Exception], str]] = {
    "services-str": (
        {"services": "ab"},
        TypeError,
        r"^Config\.services must be a sequence, got 'ab'$",
    ),
    "services-set": (
        {"services": {1}},
        TypeError,
        r"^Config\.services must be a sequence, got \{1\}$",
    ),
    "services-sync-run": (
        {"services": [None, SyncRun()]},
        TypeError,
        r"^Config\.services\[1\] must be a Service \(an object with an async run\(\) "
        r"method\), got <SyncRun>$",
    ),
    "services-function": (
        {"services": [forever]},
        TypeError,
        r"^Config\.services\[0\] must be a Service \(an object with an async run\(\) "
        r"method\), got <function forever at 0x\w+>$",
    ),
    "listeners-not-sequence": (
        {"status_update_listeners": print},
        TypeError,
        r"^Config\.status_update_listeners must be a sequence, "
        r"got <built-in function print>$",
    ),
    "listeners-not-callable": (
        {"status_update_listeners": [print, 5]},
        TypeError,
        r"^Config\.status_update_listeners\[1\] must be callable, got 5$",
    ),
    "restart_interval-negative": (
        {"restart_interval": -1},
        ValueError,
        rf"^Config\.restart_interval {BAD_SECONDS} -1$",
    ),
    "restart_interval-nan": (
        {"restart_interval": float("nan")},
        ValueError,
        rf"^Config\.restart_interval {BAD_SECONDS} nan$",
    ),
    "restart_interval-inf": (
        {"restart_interval": float("inf")},
        ValueError,
        rf"^Config\.restart_interval {BAD_SECONDS} inf$",
    ),
    "restart_interval-negative-timedelta": (
        {"restart_interval": timedelta(milliseconds=-1)},
        ValueError,
        rf"^Config\.restart_interval {BAD_SECONDS} "
        r"datetime\.timedelta\(days=-1, seconds=86399, microseconds=999000\)$",
    ),
    "restart_interval-str": (
        {"restart_interval": "1"},
        TypeError,
        rf"^Config\.restart_interval {NOT_SECONDS} '1'$",
    ),
    "restart_interval-bool": (
        {"restart_interval": True},
        TypeError,
        rf"^Config\.restart_interval {NOT_SECONDS} True$",
    ),
    "logger-name": (
        {"logger": "trio_supervisor"},
        TypeError,
        r"^Config\.logger must be a logging\.Logger or logging\.LoggerAdapter, "
        r"got 'trio_supervisor'$",
    ),
    "logger-none": (
        {"logger": None},
        TypeError,
        r"^Config\.logger must be a logging\.Logger or logging\.LoggerAdapter, "
        r"got None$",
    ),
    "listener_buffer-zero": (
        {"listener_buffer": 0},
        ValueError,
        r"^Config\.listener_buffer must be >= 1, got 0$",
    ),
    "listener_buffer-float": (
        {"listener_buffer": 1.5},
        TypeError,
        r"^Config\.listener_buffer must be an int, got 1\.5$",
    ),
    "listener_buffer-bool": (
        {"listener_buffer": True},
        TypeError,
        r"^Config\.listener_buffer must be an int, got True$",
    ),
    "listener_shutdown_timeout-negative": (
        {"listener_shutdown_timeout": -0.5},
        ValueError,
        rf"^Config\.listener_shutdown_timeout {BAD_SECONDS} -0\.5$",
    ),
    "listener_shutdown_timeout-nan": (
        {"listener_shutdown_timeout": float("nan")},
        ValueError,
        rf"^Config\.listener_shutdown_timeout {BAD_SECONDS} nan$",
    ),
    "listener_shutdown_timeout-none": (
        {"listener_shutdown_timeout": None},
        TypeError,
        rf"^Config\.listener_shutdown_timeout {NOT_SECONDS} None$",
    ),
    "name-not-str": (
        {"name": 3},
        TypeError,
        r"^Config\.name must be a str, got 3$",
    ),
    "name-empty": (
        {"name": ""},
        ValueError,
        r"^Config\.name must not be empty, got ''$",
    ),
    "strategy-str": (
        {"strategy": "one_for_all"},
        TypeError,
        r"^Config\.strategy must be a Strategy, got 'one_for_all'$",
    ),
    "backoff-number": (
        {"backoff": 0.5},
        TypeError,
        r"^Config\.backoff must be a Backoff or None, got 0\.5$",
    ),
    "max_restarts-alone": (
        {"max_restarts": 3},
        ValueError,
        r"^Config\.max_restarts and Config\.max_seconds go together, "
        r"got max_restarts=3 and max_seconds=None$",
    ),
    "max_seconds-alone": (
        {"max_seconds": 3},
        ValueError,
        r"^Config\.max_restarts and Config\.max_seconds go together, "
        r"got max_restarts=None and max_seconds=3$",
    ),
    "max_restarts-negative": (
        {"max_restarts": -1, "max_seconds": 1},
        ValueError,
        r"^Config\.max_restarts must be >= 0, got -1$",
    ),
    "max_restarts-float": (
        {"max_restarts": 2.0, "max_seconds": 1},
        TypeError,
        r"^Config\.max_restarts must be an int, got 2\.0$",
    ),
    "max_seconds-negative": (
        {"max_restarts": 1, "max_seconds": -2},
        ValueError,
        rf"^Config\.max_seconds {BAD_SECONDS} -2$",
    ),
    "max_seconds-str": (
        {"max_restarts": 1, "max_seconds": "10"},
        TypeError,
        rf"^Config\.max_seconds {NOT_SECONDS} '10'$",
    ),
    "max_seconds-false": (
        {"max_restarts": 1, "max_seconds": False},
        TypeError,
        rf"^Config\.max_seconds {NOT_SECONDS} False$",
    ),
    "max_seconds-empty-str": (
        {"max_restarts": 1, "max_seconds": ""},
        TypeError,
        rf"^Config\.max_seconds {NOT_SECONDS} ''$",
    ),
    "shutdown_timeout-negative": (
        {"shutdown_timeout": -1.0},
        ValueError,
        rf"^Config\.shutdown_timeout {BAD_SECONDS} -1\.0$",
    ),
    "shutdown_timeout-str": (
        {"shutdown_timeout": "1"},
        TypeError,
        rf"^Config\.shutdown_timeout {NOT_SECONDS} '1'$",
    ),
    "reverse_shutdown-int": (
        {"reverse_shutdown": 1},
        TypeError,
        r"^Config\.reverse_shutdown must be a bool, got 1$",
    ),
}


class TestFieldChecks:
    """Bad values are refused by Supervisor(), naming the field and the value."""

    @pytest.mark.parametrize(
        ("fields", "error", "message"),
        list(BAD_CONFIGS.values()),
        ids=list(BAD_CONFIGS),
    )
    def test_bad_field_is_refused_when_the_supervisor_is_built(
        self, fields: dict[str, Any], error: type[Exception], message: str
    ) -> None:
        """Config() takes the value; Supervisor() refuses it with an exact message."""
        config = Config(**fields)
        with pytest.raises(error, match=message):
            Supervisor(config)

    def test_config_must_be_a_config(self) -> None:
        """Supervisor() takes a Config and nothing else."""
        bad: Any = {"services": []}
        with pytest.raises(
            TypeError,
            match=r"^config must be a trio_supervisor\.Config, "
            r"got \{'services': \[\]\}$",
        ):
            Supervisor(bad)

    def test_fields_are_keyword_only(self) -> None:
        """Config's fields cannot be given by position."""
        args: list[Any] = [[]]
        with pytest.raises(
            TypeError,
            match=r"^(Config\.)?__init__\(\) takes 1 positional argument but 2 were "
            r"given$",
        ):
            Config(*args)

    def test_defaults_are_accepted(self) -> None:
        """A Config with every default builds a supervisor of no services."""
        config = Config()
        supervisor = Supervisor(config)
        assert supervisor.statuses() == []
        assert supervisor.name == "supervisor"
        assert config.logger is logging.getLogger("trio_supervisor")
        assert config.restart_interval == 0.0

    @pytest.mark.parametrize(
        "logger",
        [
            logging.getLogger("test_config"),
            logging.LoggerAdapter(logging.getLogger("test_config"), {"app": "x"}),
        ],
        ids=["logger", "adapter"],
    )
    def test_logger_and_adapter_are_accepted(
        self, logger: logging.Logger | logging.LoggerAdapter[Any]
    ) -> None:
        """A Logger or a LoggerAdapter may be the supervisor's logger."""
        Supervisor(Config(logger=logger))

    @pytest.mark.parametrize(
        "listener",
        [print, Recorder(), not_a_listener, forever],
        ids=["builtin", "callable-object", "function", "async-function"],
    )
    def test_any_callable_is_accepted_as_listener(self, listener: Any) -> None:
        """Plain functions, async functions and callable objects are listeners."""
        Supervisor(Config(status_update_listeners=[listener]))

    def test_timedelta_and_int_fields_are_accepted(self) -> None:
        """Every seconds field takes a timedelta or an int as well as a float."""
        Supervisor(
            Config(
                restart_interval=timedelta(seconds=2),
                listener_shutdown_timeout=timedelta(0),
                max_restarts=0,
                max_seconds=timedelta(minutes=1),
                shutdown_timeout=3,
                backoff=Backoff(1),
                strategy=Strategy.ONE_FOR_ALL,
                reverse_shutdown=True,
                listener_buffer=1,
            )
        )


class TestSecondsFields:
    """Durations given as timedelta behave as their seconds."""

    async def test_restart_interval_timedelta_is_its_seconds(
        self, autojump_clock: trio.testing.MockClock, recorder: Recorder
    ) -> None:
        """A timedelta restart_interval delays restarts by its total seconds."""
        config = Config(
            services=[new_service("f", fail)],
            restart_interval=timedelta(milliseconds=250),
            status_update_listeners=[recorder],
        )
        await run_for(0.6, config)
        assert recorder.transitions() == [
            ("f", Status.IDLE, 0.0),
            ("f", Status.RUNNING, 0.0),
            ("f", Status.ERROR, 0.0),
            ("f", Status.IDLE, 0.25),
            ("f", Status.RUNNING, 0.25),
            ("f", Status.ERROR, 0.25),
            ("f", Status.IDLE, 0.5),
            ("f", Status.RUNNING, 0.5),
            ("f", Status.ERROR, 0.5),
        ]

    async def test_listener_shutdown_timeout_timedelta_is_its_seconds(
        self, autojump_clock: trio.testing.MockClock
    ) -> None:
        """A timedelta listener_shutdown_timeout bounds a stuck listener in seconds."""

        async def stuck(snapshot: object) -> None:
            await trio.sleep_forever()

        config = Config(
            services=[new_service("s", forever)],
            status_update_listeners=[stuck],
            listener_shutdown_timeout=timedelta(seconds=1.5),
        )
        await run_for(2, config)
        assert trio.current_time() == 3.5


class TestServices:
    """The services field: None entries, ids and names."""

    async def test_none_entries_are_skipped_and_ids_go_in_order(
        self, autojump_clock: trio.testing.MockClock, recorder: Recorder
    ) -> None:
        """Ids 0, 1, 2 go to the non-None services in their order."""
        config = Config(
            services=[
                None,
                new_service("a", forever),
                None,
                None,
                new_service("b", forever),
                new_service("c", forever),
                None,
            ],
            status_update_listeners=[recorder],
        )
        supervisor = await run_for(1, config)
        assert [(u.service_id, u.service_name) for u in supervisor.statuses()] == [
            (0, "a"),
            (1, "b"),
            (2, "c"),
        ]
        first = recorder.snapshots[0]
        assert [(u.service_id, u.service_name, u.status) for u in first] == [
            (0, "a", Status.IDLE)
        ]

    async def test_only_none_entries_make_an_empty_supervisor(
        self, autojump_clock: trio.testing.MockClock
    ) -> None:
        """A services list of only None supervises nothing, and runs."""
        supervisor = await run_for(1, Config(services=[None, None]))
        assert supervisor.statuses() == []

    def test_services_may_be_any_sequence(self) -> None:
        """A tuple of services is as good as a list."""
        Supervisor(Config(services=(new_service("a", forever), None)))

    def test_duplicate_names_are_refused(self) -> None:
        """Two services of one name are a ValueError naming the second and the name."""
        config = Config(
            services=[
                new_service("a", forever),
                None,
                new_service("b", forever),
                new_service("a", fail),
            ]
        )
        with pytest.raises(
            ValueError,
            match=r"^Config\.services\[3\]: service name 'a' is taken by another "
            r"service; give each service a distinct name$",
        ):
            Supervisor(config)

    def test_the_same_service_twice_is_refused(self) -> None:
        """One service object listed twice has a duplicate name."""
        service = new_service("a", forever)
        with pytest.raises(
            ValueError,
            match=r"^Config\.services\[1\]: service name 'a' is taken by another "
            r"service; give each service a distinct name$",
        ):
            Supervisor(Config(services=[service, service]))

    def test_an_empty_name_is_refused_naming_the_entry(self) -> None:
        """A service whose name is empty is a ValueError naming its entry."""
        config = Config(services=[new_service("a", forever), Named("")])
        with pytest.raises(
            ValueError,
            match=r"^Config\.services\[1\]: service name must not be empty, "
            r"got '' on <Named>$",
        ):
            Supervisor(config)

    def test_a_name_that_is_not_a_str_is_refused_naming_the_entry(self) -> None:
        """A service whose name is not a str is a TypeError naming its entry."""
        config = Config(services=[Named(b"a")])
        with pytest.raises(
            TypeError,
            match=r"^Config\.services\[0\]: service name must be a str, "
            r"got b'a' on <Named>$",
        ):
            Supervisor(config)
