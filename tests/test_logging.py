"""Logging (behaviour 6): failures at ERROR with the traceback, restarts at INFO,
status changes at DEBUG, nothing formatted for a disabled level, silent default."""

from __future__ import annotations

import logging
import subprocess
import sys
import textwrap
from typing import Any

import pytest
import trio
import trio.testing
from conftest import run_for

from trio_supervisor import Config, Status, new_service

LOGGER_NAME = "test_logging.supervisor"


@pytest.fixture
def logger(caplog: pytest.LogCaptureFixture) -> logging.Logger:
    """A logger of the test's own, captured from DEBUG up."""
    logger = logging.getLogger(LOGGER_NAME)
    caplog.set_level(logging.DEBUG, logger=LOGGER_NAME)
    return logger


def ours(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == LOGGER_NAME]


class Panic(BaseException):
    pass


class Counted(ValueError):
    """An exception that counts how often it is turned into text."""

    formatted = 0

    def __str__(self) -> str:
        Counted.formatted += 1
        return "counted"

    def __repr__(self) -> str:
        Counted.formatted += 1
        return "Counted()"


class CountedName(str):
    """A service name that counts how often ``%s`` or ``format()`` turns it into
    text (not ``repr()``: Trio itself shows task names with it)."""

    formatted = 0

    def __str__(self) -> str:
        CountedName.formatted += 1
        return str.__str__(self)

    def __format__(self, spec: str) -> str:
        CountedName.formatted += 1
        return str.__format__(self, spec)


async def forever() -> None:
    await trio.sleep_forever()


class TestLevels:
    """Which event is logged at which level, with which message."""

    async def test_failure_is_logged_at_error_with_its_traceback(
        self,
        autojump_clock: trio.testing.MockClock,
        caplog: pytest.LogCaptureFixture,
        logger: logging.Logger,
    ) -> None:
        """An ERROR end is one ERROR record carrying the exception and traceback."""
        raised: list[Exception] = []

        async def fail() -> None:
            await trio.sleep(1)
            error = ValueError("boom")
            raised.append(error)
            raise error

        config = Config(
            services=[new_service("svc", fail)], restart_interval=10, logger=logger
        )
        await run_for(2, config)
        errors = [r for r in ours(caplog) if r.levelno >= logging.WARNING]
        assert [(r.levelno, r.getMessage()) for r in errors] == [
            (logging.ERROR, "service svc (id 0) failed: Error")
        ]
        (record,) = errors
        assert record.exc_info is not None
        assert record.exc_info[1] is raised[0]
        text = logging.Formatter().format(record)
        assert "Traceback (most recent call last):" in text
        assert "raise error" in text
        assert text.endswith("ValueError: boom")

    async def test_the_loggers_filters_and_record_factory_apply_to_failures(
        self,
        autojump_clock: trio.testing.MockClock,
        caplog: pytest.LogCaptureFixture,
        logger: logging.Logger,
    ) -> None:
        """The failure record comes from the application's record factory and goes
        through the logger's filters, as Logger.error's would."""
        factory = logging.getLogRecordFactory()

        def tagging_factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
            record = factory(*args, **kwargs)
            record.tag = "app"
            return record

        class DropFirst(logging.Filter):
            def __init__(self) -> None:
                super().__init__()
                self.seen = 0

            def filter(self, record: logging.LogRecord) -> bool:
                if record.levelno != logging.ERROR:
                    return True
                self.seen += 1
                return self.seen > 1

        async def fail() -> None:
            await trio.sleep(1)
            raise ValueError("boom")

        drop_first = DropFirst()
        logger.addFilter(drop_first)
        logging.setLogRecordFactory(tagging_factory)
        try:
            config = Config(
                services=[new_service("svc", fail)], restart_interval=1, logger=logger
            )
            await run_for(4.5, config)
        finally:
            logging.setLogRecordFactory(factory)
            logger.removeFilter(drop_first)
        errors = [r for r in ours(caplog) if r.levelno == logging.ERROR]
        assert drop_first.seen == 2  # failures at 1 and 3 s; the first dropped
        assert [
            (r.getMessage(), r.__dict__["tag"], r.__dict__["service_name"])
            for r in errors
        ] == [("service svc (id 0) failed: Error", "app", "svc")]

    async def test_panic_is_logged_at_error(
        self,
        autojump_clock: trio.testing.MockClock,
        caplog: pytest.LogCaptureFixture,
        logger: logging.Logger,
    ) -> None:
        """A PANIC end is logged at ERROR with its exception too."""

        async def panic() -> None:
            await trio.sleep(1)
            raise Panic

        config = Config(
            services=[new_service("p", panic)], restart_interval=10, logger=logger
        )
        await run_for(2, config)
        errors = [r for r in ours(caplog) if r.levelno >= logging.WARNING]
        assert [(r.levelno, r.getMessage()) for r in errors] == [
            (logging.ERROR, "service p (id 0) failed: Panic")
        ]
        assert errors[0].exc_info is not None
        assert isinstance(errors[0].exc_info[1], Panic)

    async def test_clean_stop_is_not_logged_as_a_failure(
        self,
        autojump_clock: trio.testing.MockClock,
        caplog: pytest.LogCaptureFixture,
        logger: logging.Logger,
    ) -> None:
        """A run that returns, or is stopped, logs nothing above INFO."""

        async def short() -> None:
            await trio.sleep(1)

        config = Config(
            services=[new_service("s", short), new_service("f", forever)],
            restart_interval=1,
            logger=logger,
        )
        await run_for(2.5, config)
        assert [r for r in ours(caplog) if r.levelno > logging.INFO] == []

    async def test_restart_is_logged_at_info_with_its_delay(
        self,
        autojump_clock: trio.testing.MockClock,
        caplog: pytest.LogCaptureFixture,
        logger: logging.Logger,
    ) -> None:
        """Each restart is one INFO record naming the service and the delay."""

        async def fail() -> None:
            await trio.sleep(1)
            raise ValueError("boom")

        config = Config(
            services=[new_service("svc", fail)], restart_interval=1.5, logger=logger
        )
        await run_for(5, config)
        infos = [
            (r.getMessage(), r.created)
            for r in ours(caplog)
            if r.levelno == logging.INFO
        ]
        assert [message for message, _ in infos] == [
            "restarting service svc (id 0) in 1.5s",
            "restarting service svc (id 0) in 1.5s",
        ]

    async def test_status_changes_are_logged_at_debug_in_order(
        self,
        autojump_clock: trio.testing.MockClock,
        caplog: pytest.LogCaptureFixture,
        logger: logging.Logger,
    ) -> None:
        """Every status change is one DEBUG record naming the new status."""

        async def fail() -> None:
            await trio.sleep(1)
            raise ValueError("boom")

        config = Config(
            services=[new_service("svc", fail)], restart_interval=1, logger=logger
        )
        await run_for(2.5, config)
        assert [r.getMessage() for r in ours(caplog) if r.levelno == logging.DEBUG] == [
            "service svc (id 0): Idle",
            "service svc (id 0): Running",
            "service svc (id 0): Error",
            "service svc (id 0): Idle",
            "service svc (id 0): Running",
            "service svc (id 0): Stopped",
        ]


class TestExtras:
    """Records about a service carry service_name and service_id."""

    async def test_every_record_about_a_service_carries_its_name_and_id(
        self,
        autojump_clock: trio.testing.MockClock,
        caplog: pytest.LogCaptureFixture,
        logger: logging.Logger,
    ) -> None:
        """DEBUG, INFO and ERROR records name the service they are about."""

        async def fail() -> None:
            await trio.sleep(1)
            raise ValueError("boom")

        config = Config(
            services=[new_service("a", forever), None, new_service("b", fail)],
            restart_interval=1,
            logger=logger,
        )
        await run_for(2.5, config)
        records = ours(caplog)
        assert {r.levelno for r in records} == {
            logging.DEBUG,
            logging.INFO,
            logging.ERROR,
        }
        for record in records:
            fields = (record.__dict__["service_name"], record.__dict__["service_id"])
            assert fields in {("a", 0), ("b", 1)}
            assert f"service {fields[0]} (id {fields[1]})" in record.getMessage()

    async def test_a_logger_adapter_keeps_its_extras_beside_the_service_fields(
        self,
        autojump_clock: trio.testing.MockClock,
        caplog: pytest.LogCaptureFixture,
        logger: logging.Logger,
    ) -> None:
        """With a LoggerAdapter as the logger, records still carry the service
        fields, and the adapter's own extra."""

        async def fail() -> None:
            await trio.sleep(1)
            raise ValueError("boom")

        adapter = logging.LoggerAdapter(logger, {"app": "shop"})
        config = Config(
            services=[new_service("b", fail)], restart_interval=1, logger=adapter
        )
        await run_for(1.5, config)
        records = ours(caplog)
        assert [r.levelname for r in records] == [
            "DEBUG",
            "DEBUG",
            "DEBUG",
            "ERROR",
            "INFO",
        ]
        for record in records:
            assert record.__dict__.get("service_name") == "b"
            assert record.__dict__.get("service_id") == 0
            assert record.__dict__.get("app") == "shop"


class TestLazyFormatting:
    """Nothing is formatted for a level that is not enabled."""

    @staticmethod
    def failing_config(logger: logging.Logger) -> Config:
        async def fail() -> None:
            await trio.sleep(1)
            raise Counted

        return Config(
            services=[new_service(CountedName("svc"), fail)],
            restart_interval=1,
            logger=logger,
        )

    async def test_disabled_logger_formats_nothing(
        self, autojump_clock: trio.testing.MockClock
    ) -> None:
        """With every level off, neither the error nor the name becomes text."""
        Counted.formatted = CountedName.formatted = 0
        logger = logging.getLogger("test_logging.disabled")
        logger.setLevel(logging.CRITICAL)
        try:
            supervisor = await run_for(5.5, self.failing_config(logger))
        finally:
            logger.setLevel(logging.NOTSET)
        (last,) = supervisor.statuses()
        assert (last.status, last.time) == (Status.ERROR, 5.0)
        assert (Counted.formatted, CountedName.formatted) == (0, 0)

    async def test_enabled_logger_formats_the_error_and_name(
        self,
        autojump_clock: trio.testing.MockClock,
        caplog: pytest.LogCaptureFixture,
        logger: logging.Logger,
    ) -> None:
        """With the levels on and a handler formatting, both become text: the
        counters above do count."""
        Counted.formatted = CountedName.formatted = 0
        await run_for(5.5, self.failing_config(logger))
        assert "counted" in caplog.text
        assert Counted.formatted > 0
        assert CountedName.formatted > 0

    async def test_debug_off_formats_no_status_change(
        self, autojump_clock: trio.testing.MockClock
    ) -> None:
        """At INFO, a service that never fails or restarts is never formatted."""
        CountedName.formatted = 0
        logger = logging.getLogger("test_logging.info")
        logger.setLevel(logging.INFO)
        try:
            await run_for(
                1,
                Config(
                    services=[new_service(CountedName("svc"), forever)], logger=logger
                ),
            )
        finally:
            logger.setLevel(logging.NOTSET)
        assert CountedName.formatted == 0


SILENT_DEFAULT = textwrap.dedent(
    """
    import logging

    import trio
    import trio.testing

    from trio_supervisor import Config, Supervisor, new_service


    async def fail() -> None:
        raise ValueError("boom")


    async def main() -> None:
        config = Config(services=[new_service("f", fail)], restart_interval=1)
        with trio.move_on_after(3.5):
            await Supervisor(config).run()
        # Control: a logger without handlers does reach logging's last resort.
        logging.getLogger("control").error("control line")


    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
    """
)


def test_default_logger_is_silent_until_logging_is_configured() -> None:
    """With no logging set up, the default logger writes nothing to stderr,
    not even through logging's last-resort handler."""
    result = subprocess.run(
        [sys.executable, "-c", SILENT_DEFAULT],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    assert result.stderr == "control line\n"


def test_default_logger_is_the_library_logger() -> None:
    """The default is ``logging.getLogger("trio_supervisor")``, so applications
    configure it by that name."""
    default: Any = Config().logger
    assert default is logging.getLogger("trio_supervisor")
