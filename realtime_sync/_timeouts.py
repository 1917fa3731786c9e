"""Timeouts as the threading module takes them."""

from __future__ import annotations

import math
import threading

__all__ = ["wait_seconds"]


def wait_seconds(timeout: float | None) -> float | None:
    """``timeout`` for ``Event.wait``/``Thread.join``: None (forever) for None or anything
    past what they accept (``float("inf")`` raises ``OverflowError`` there), 0 for a
    negative or NaN one."""
    if timeout is None or timeout > threading.TIMEOUT_MAX:
        return None
    return timeout if timeout > 0 and not math.isnan(timeout) else 0.0
