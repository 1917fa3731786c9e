"""Events the client dispatches itself, about the connection rather than from the server."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from attrs import frozen

__all__ = ["ClosedEvent", "HandlerErrorEvent", "InvalidFrameEvent"]


@frozen
class HandlerErrorEvent:
    """``client.handler_error``: a handler raised; the others and the session went on."""

    event: Any
    """The event the handler was given."""
    handler: Callable[..., Any]
    """The handler that raised."""
    exception: BaseException
    """What it raised."""
    type: str = "client.handler_error"
    """Always ``client.handler_error``."""


@frozen
class InvalidFrameEvent:
    """``client.invalid_frame``: the server sent a frame that is not a JSON event object."""

    data: bytes | str
    """The frame as received."""
    reason: str
    """Why it could not be decoded."""
    type: str = "client.invalid_frame"
    """Always ``client.invalid_frame``."""


@frozen
class ClosedEvent:
    """``client.closed``: the connection ended, for whatever reason. The last event of a session."""

    code: int | None
    """The close code (None when the connection dropped without a close frame)."""
    reason: str | None
    """The close reason text."""
    requested: bool
    """True when our own ``close()`` ended it; False when the server or network did."""
    error: Exception | None = None
    """The exception waiters receive, for an unexpected end; None for a requested one."""
    type: str = "client.closed"
    """Always ``client.closed``."""
