"""Events the client dispatches itself, about the connection rather than from the server.

Like server events they are frozen and hashable, their ``repr`` masks registered secrets,
and ``to_dict()`` gives JSON-safe data: exceptions become ``"TypeName: message"`` text (the
message with secrets masked), handlers their qualified name, a frame received as bytes its
UTF-8 text (invalid bytes replaced by U+FFFD).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

import attrs
from attrs import frozen

from ._secrets import redact

__all__ = [
    "BacklogEvent",
    "ClosedEvent",
    "ConversationUpdatedEvent",
    "HandlerErrorEvent",
    "InvalidFrameEvent",
    "ItemCompletedEvent",
    "ReconnectedEvent",
    "ReconnectingEvent",
    "SessionExpiringEvent",
    "SessionRolledOverEvent",
]


class _LocalEvent:
    """What the client's own events share: ``to_dict()``, a masked repr, a lenient hash."""

    __slots__ = ()
    __attrs_attrs__: ClassVar[Any]  # every subclass is an attrs class

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        # attrs writes its own __repr__ and __hash__ into every class it decorates: undo that.
        cls.__repr__ = _LocalEvent.__repr__  # type: ignore[method-assign]
        cls.__hash__ = _LocalEvent.__hash__  # type: ignore[method-assign]

    def to_dict(self) -> dict[str, Any]:
        """The event as JSON-safe data (see the module description)."""
        data = {f.name: _json_safe(getattr(self, f.name)) for f in attrs.fields(type(self))}
        return {"type": data.pop("type"), **data}

    def __repr__(self) -> str:
        shown = ", ".join(f"{f.name}={getattr(self, f.name)!r}" for f in attrs.fields(type(self)))
        return redact(f"{type(self).__name__}({shown})")

    def __hash__(self) -> int:
        # Agrees with the attrs equality over all fields; a field that cannot be hashed (an
        # event of a kind nobody foresaw) just does not contribute.
        return hash((type(self), *map(_lenient_hash, attrs.astuple(self, recurse=False))))


def _lenient_hash(value: Any) -> int:
    try:
        return hash(value)
    except TypeError:
        return 0


def exception_text(exc: BaseException) -> str:
    """``"TypeName: message"`` (just the type name for an empty message), secrets masked."""
    try:
        message = str(exc)
    except Exception:  # a broken __str__ must not break reporting
        message = "<message cannot be shown>"
    name = type(exc).__name__
    return redact(f"{name}: {message}") if message else name


def callable_text(handler: object) -> str:
    """A handler's ``module.qualname``, or its (masked) repr when it has none."""
    qualname = getattr(handler, "__qualname__", None)
    if isinstance(qualname, str):
        module = getattr(handler, "__module__", None)
        return f"{module}.{qualname}" if isinstance(module, str) else qualname
    try:
        return redact(repr(handler))
    except Exception:
        return f"<{type(handler).__name__} object>"


def _json_safe(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, float)):
        return value
    if isinstance(value, str):
        return value.encode("utf-8", "replace").decode("utf-8")  # lone surrogates: "?"
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).decode("utf-8", "replace")
    if isinstance(value, BaseException):
        return exception_text(value)
    to_dict = getattr(value, "to_dict", None)
    if callable(to_dict):
        return to_dict()
    if callable(value):
        return callable_text(value)
    try:
        return redact(repr(value))
    except Exception:
        return f"<{type(value).__name__} object>"


@frozen
class HandlerErrorEvent(_LocalEvent):
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
class InvalidFrameEvent(_LocalEvent):
    """``client.invalid_frame``: the server sent a frame that is not a JSON event object."""

    data: bytes | str
    """The frame as received."""
    reason: str
    """Why it could not be decoded."""
    type: str = "client.invalid_frame"
    """Always ``client.invalid_frame``."""


@frozen
class ClosedEvent(_LocalEvent):
    """``client.closed``: the connection ended, for whatever reason. The last event of a session."""

    code: int | None
    """The close code (None when the connection dropped without a close frame)."""
    reason: str | None
    """The close reason text."""
    requested: bool
    """True when our own ``close()`` ended it; False when the server or network did."""
    error: Exception | None = None
    """The exception waiters receive, for an unexpected end; None for a requested one."""
    retryable: bool = False
    """Whether a new connection could succeed where this one ended (a drop, a 5xx, an
    expiry: yes; a bad key, a fatal error code, our own ``close()``: no)."""
    attempts: int = 0
    """Reconnect attempts made before the client gave up (0: it did not try)."""
    unsent: int = 0
    """Events sent while reconnecting that never went out, because the client gave up."""
    type: str = "client.closed"
    """Always ``client.closed``."""


@frozen
class ConversationUpdatedEvent(_LocalEvent):
    """``client.conversation.updated``: an item of the conversation changed.

    The whole item as it is now: ``client.conversation.get(event.item_id)``.
    """

    item_id: str
    """The item that changed."""
    kind: str
    """What changed: ``item`` (added, or described anew), ``text``, ``transcript``,
    ``input_transcript``, ``arguments`` or ``truncated``."""
    delta: str | None = None
    """The piece of text, transcript or arguments the change added, for deltas."""
    type: str = "client.conversation.updated"
    """Always ``client.conversation.updated``."""


@frozen
class ItemCompletedEvent(_LocalEvent):
    """``client.conversation.item_completed``: an item is complete (its ``status`` is final)."""

    item: Any
    """The item (a :class:`realtime_sync.Item` snapshot)."""
    type: str = "client.conversation.item_completed"
    """Always ``client.conversation.item_completed``."""


@frozen
class ReconnectingEvent(_LocalEvent):
    """``client.reconnecting``: the connection was lost and the client will try again.

    Dispatched once per attempt, before its wait. Handlers, waits, tools and queued sends
    carry over; a response that was in progress fails with
    :class:`~realtime_sync.ResponseInterruptedError` (or is asked for again).
    """

    attempt: int
    """Which attempt comes next: 1, 2, ..."""
    delay: float
    """Seconds the client waits before it (backoff with jitter, or the server's
    ``Retry-After``)."""
    cause: Exception | None
    """Why the previous connection (or attempt) ended."""
    type: str = "client.reconnecting"
    """Always ``client.reconnecting``."""


@frozen
class ReconnectedEvent(_LocalEvent):
    """``client.reconnected``: a new session replaced the lost one and was brought back.

    Dispatched right after the new ``session.created``, once the replay and the events
    queued meanwhile are sent.
    """

    session: Any
    """The new session (a :class:`realtime_sync.Session`)."""
    attempts: int
    """How many attempts it took."""
    downtime: float
    """Seconds from the loss to the new ``session.created``."""
    report: Any
    """What was carried over (a :class:`realtime_sync.ReplayReport`)."""
    type: str = "client.reconnected"
    """Always ``client.reconnected``."""


@frozen
class SessionExpiringEvent(_LocalEvent):
    """``client.session_expiring``: the session reaches its maximum duration soon."""

    session_id: str | None
    """The session that expires."""
    expires_at: float
    """When, in seconds since the epoch."""
    seconds_left: float
    """Seconds left when the event was made."""
    type: str = "client.session_expiring"
    """Always ``client.session_expiring``."""


@frozen
class SessionRolledOverEvent(_LocalEvent):
    """``client.session_rolled_over``: an expiring (or expired) session was replaced by a
    new one, brought back to where the old one was."""

    previous_session_id: str | None
    """The session that was replaced."""
    session: Any
    """The new session (a :class:`realtime_sync.Session`)."""
    reason: str
    """``proactive`` (at a quiet moment before the end) or ``expired`` (the server ended
    it with ``session_expired``)."""
    downtime: float
    """Seconds without a session."""
    report: Any
    """What was carried over (a :class:`realtime_sync.ReplayReport`)."""
    type: str = "client.session_rolled_over"
    """Always ``client.session_rolled_over``."""


@frozen
class BacklogEvent(_LocalEvent):
    """``client.backlog``: events wait longer than ``backlog_warning`` seconds to be
    dispatched: handlers (or the machine) do not keep up. Once per stretch of lagging."""

    events: int
    """Items waiting in the queue when it was noticed (a burst of frames counts once)."""
    seconds: float
    """How long the event dispatched then had waited."""
    type: str = "client.backlog"
    """Always ``client.backlog``."""
