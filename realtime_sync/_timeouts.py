"""Timeouts as the threading module takes them."""

from __future__ import annotations

import math
import threading

from ._errors import ConfigurationError

__all__ = ["check_seconds", "wait_seconds"]


def check_seconds(value: object, name: str, *, finite: bool = False) -> float:
    """``value`` as seconds: a positive number (a finite one when ``finite``), else
    :class:`ConfigurationError` naming ``name``."""
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or math.isnan(value)
        or value <= 0
        or (finite and math.isinf(value))
    ):
        raise ConfigurationError(f"{name} must be a positive number of seconds; got {value!r}")
    return float(value)


def wait_seconds(timeout: float | None) -> float | None:
    """``timeout`` for ``Event.wait``/``Thread.join``: None (forever) for None or anything
    past what they accept (``float("inf")`` raises ``OverflowError`` there), 0 for a
    negative or NaN one."""
    if timeout is None or timeout > threading.TIMEOUT_MAX:
        return None
    return timeout if timeout > 0 and not math.isnan(timeout) else 0.0
