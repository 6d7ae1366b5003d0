"""Argument checks shared by every public constructor, and export metadata."""

from __future__ import annotations

import math
from datetime import timedelta
from typing import Any


def seconds(name: str, value: object) -> float:
    """``value`` as a finite, non-negative number of seconds.

    Accepts ``int``, ``float`` and `datetime.timedelta`; the error names
    ``name`` and shows ``value``.
    """
    if isinstance(value, timedelta):
        result = value.total_seconds()
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        result = float(value)
    else:
        raise TypeError(
            f"{name} must be a number of seconds or a datetime.timedelta, got {value!r}"
        )
    if math.isnan(result) or math.isinf(result) or result < 0:
        raise ValueError(
            f"{name} must be a finite number of seconds >= 0, got {value!r}"
        )
    return result


def optional_seconds(name: str, value: object) -> float | None:
    """Like `seconds`, with ``None`` passed through."""
    return None if value is None else seconds(name, value)


def positive_seconds(name: str, value: object) -> float:
    """Like `seconds`, refusing zero."""
    result = seconds(name, value)
    if result == 0:
        raise ValueError(f"{name} must be > 0 seconds, got {value!r}")
    return result


def number(name: str, value: object) -> float:
    """``value`` as a ``float``, from an ``int`` or ``float`` (``bool`` refused)."""
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        raise TypeError(f"{name} must be a number, got {value!r}")
    return float(value)


def integer(name: str, value: object, *, minimum: int) -> int:
    """``value`` as an ``int`` of at least ``minimum`` (``bool`` refused)."""
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"{name} must be an int, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value!r}")
    return value


def boolean(name: str, value: object) -> bool:
    """``value``, which must be a ``bool``."""
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be a bool, got {value!r}")
    return value


def fixup_module_metadata(package: str, namespace: dict[str, Any]) -> None:
    """Point the public names' ``__module__`` at the package, as tracebacks show it."""
    for name in namespace["__all__"]:
        obj = namespace[name]
        if getattr(obj, "__module__", "").startswith(f"{package}._"):
            obj.__module__ = package
