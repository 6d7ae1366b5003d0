"""The library's logger, and the per-service adapter that services log through."""

from __future__ import annotations

import logging
from collections.abc import MutableMapping
from typing import Any, TypeAlias

LOGGER = logging.getLogger("trio_supervisor")
# Silent until the application configures logging, as the seed's no-op default:
# without a handler, the stdlib's last-resort handler would print to stderr.
LOGGER.addHandler(logging.NullHandler())

AnyLogger: TypeAlias = "logging.Logger | logging.LoggerAdapter[Any]"


class ServiceLoggerAdapter(logging.LoggerAdapter[Any]):
    """Adds ``service_name`` and ``service_id`` to each record, keeping the
    caller's own ``extra`` fields beside them."""

    def process(
        self, msg: Any, kwargs: MutableMapping[str, Any]
    ) -> tuple[Any, MutableMapping[str, Any]]:
        extra = kwargs.get("extra")
        kwargs["extra"] = {**(self.extra or {}), **extra} if extra else self.extra
        return msg, kwargs


def service_extra(service_id: int, service_name: str) -> dict[str, object]:
    """The ``extra`` fields of every record about one service."""
    return {"service_id": service_id, "service_name": service_name}
