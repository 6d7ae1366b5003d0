"""The library's logger, and the per-service adapter that services log through."""

from __future__ import annotations

import logging
from collections.abc import MutableMapping
from typing import TYPE_CHECKING, Any, TypeAlias

LOGGER = logging.getLogger("trio_supervisor")
# Silent until the application configures logging, as the seed's no-op default:
# without a handler, the stdlib's last-resort handler would print to stderr.
LOGGER.addHandler(logging.NullHandler())

AnyLogger: TypeAlias = "logging.Logger | logging.LoggerAdapter[Any]"


if TYPE_CHECKING:
    _LoggerAdapter = logging.LoggerAdapter[Any]
else:  # not subscriptable at run time before Python 3.11
    _LoggerAdapter = logging.LoggerAdapter


class ServiceLoggerAdapter(_LoggerAdapter):
    """Adds ``service_name`` and ``service_id`` to each record, keeping the
    caller's own ``extra`` fields beside them."""

    def process(
        self, msg: Any, kwargs: MutableMapping[str, Any]
    ) -> tuple[Any, MutableMapping[str, Any]]:
        extra = kwargs.get("extra")
        kwargs["extra"] = {**(self.extra or {}), **extra} if extra else self.extra
        return msg, kwargs


def unwrap(logger: AnyLogger) -> tuple[logging.Logger, dict[str, object]]:
    """The logger under a chain of adapters, and their ``extra`` fields merged
    (the outermost adapter's win). The stdlib's adapters replace a record's
    ``extra`` with their own, which would drop the service fields."""
    extra: dict[str, object] = {}
    while isinstance(logger, logging.LoggerAdapter):
        extra = {**(logger.extra or {}), **extra}
        logger = logger.logger
    return logger, extra


def merging(logger: AnyLogger) -> AnyLogger:
    """``logger`` itself, or, for an adapter, one that keeps every record's own
    ``extra`` beside the adapter's."""
    if isinstance(logger, logging.Logger):
        return logger
    base, extra = unwrap(logger)
    return ServiceLoggerAdapter(base, extra)


def service_logger(
    logger: AnyLogger, service_id: int, name: str
) -> ServiceLoggerAdapter:
    """``logger`` bound to one service: its records carry the service fields."""
    base, extra = unwrap(logger)
    return ServiceLoggerAdapter(base, {**extra, **service_extra(service_id, name)})


def service_extra(service_id: int, service_name: str) -> dict[str, object]:
    """The ``extra`` fields of every record about one service."""
    return {"service_id": service_id, "service_name": service_name}
