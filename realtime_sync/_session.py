"""The session core: one connection's state as a pure object, fed events in order.

No sockets and no threads: the dispatcher feeds a :class:`SessionCore` every event of its
connection (``receive``) and, last, the transport's report of the end
(``connection_lost``), which it turns into the connection's closing event with the error
waiters get and whether a reconnect could help.
"""

from __future__ import annotations

import enum
import logging

import attrs

from ._failures import failure, is_retryable
from ._local_events import ClosedEvent
from ._objects import Session
from ._secrets import redact
from ._server_events import ErrorEvent, SessionEvent
from ._transport import TransportEnded

__all__ = ["Notice", "SessionCore", "SessionState"]

logger = logging.getLogger("realtime_sync")


class SessionState(enum.Enum):
    """Where one connection is in its life."""

    CONNECTING = "connecting"
    """The upgrade is under way, or done without ``session.created`` yet."""
    OPEN = "open"
    """``session.created`` arrived; the session takes events."""
    CLOSING = "closing"
    """We are ending it (``close()``, or ``connect()`` gave up); the end is not reported yet."""
    CLOSED = "closed"
    """The closing event was made; nothing more comes from this connection."""
    RECONNECTING = "reconnecting"
    """(``client.state`` only) The connection was lost and the client makes a new one;
    sends are queued meanwhile."""


class Notice:
    """Something the client queues for itself behind a connection's events (a session
    deadline): the core passes it on untouched."""

    __slots__ = ()


class SessionCore:
    """The state of one connection, from upgrade to closing event."""

    def __init__(self, display_url: str) -> None:
        self.display_url = display_url
        """The endpoint URL, safe to show."""
        self.session: Session | None = None
        """The session as of the last ``session.created``/``session.updated``."""
        self.started = False
        """Whether ``session.created`` arrived (stays True once closed)."""
        # Flags that only ever go from False to True, each set by one side (close_requested
        # by the threads ending the connection, the rest by the dispatcher): no update can be
        # lost without a lock, and state is derived from them.
        self.close_requested = False
        self.closed = False
        # Why we ended it ourselves, when it was not close() (connect() timing out).
        self._abandoned: Exception | None = None
        # The server's error event, if it was the last thing before the end (3000, 4000...).
        self._final_error: ErrorEvent | None = None
        # Its session_expired, whatever came after: an expired session is over, and events
        # still in flight (or a close frame lost to a reset) must not hide why.
        self._expiry: ErrorEvent | None = None

    @property
    def state(self) -> SessionState:
        """Where the connection is in its life."""
        if self.closed:
            return SessionState.CLOSED
        if self.close_requested:
            return SessionState.CLOSING
        return SessionState.OPEN if self.started else SessionState.CONNECTING

    def receive(self, event: object) -> object | None:
        """Take one event of this connection; return what to dispatch (None: nothing).

        The transport's end report becomes the closing event; anything after the closing
        event is dropped, so ``client.closed`` is always a connection's last event.
        """
        if self.closed:
            return None
        if type(event) is TransportEnded:
            return self.connection_lost(event)
        if isinstance(event, Notice):
            return event
        self._final_error = event if type(event) is ErrorEvent else None
        if self._final_error is not None and self._final_error.error.code == "session_expired":
            self._expiry = self._final_error
        if type(event) is SessionEvent:
            self.session = event.session
            if event.type == "session.created":
                self.started = True
        return event

    def request_close(self) -> None:
        """Our own ``close()`` was called: the end that follows is a requested one."""
        self.close_requested = True

    def abandon(self, error: Exception) -> None:
        """We are cutting the connection for ``error`` (not ``close()``): the end that
        follows carries it, and may be retried."""
        self._abandoned = error
        self.close_requested = True

    def connection_lost(self, ended: TransportEnded) -> ClosedEvent:
        """The closing event for this connection's end."""
        self.closed = True
        # The server's words (a close reason, an HTTP reason phrase) may echo our key.
        ended = attrs.evolve(
            ended,
            reason=None if ended.reason is None else redact(ended.reason),
            status_text=redact(ended.status_text),
        )
        if self._abandoned is not None:
            return ClosedEvent(
                code=ended.code,
                reason=ended.reason,
                requested=False,
                error=self._abandoned,
                retryable=True,
            )
        if self.close_requested:
            logger.info("connection to %s closed", self.display_url)
            return ClosedEvent(code=ended.code, reason=ended.reason, requested=True)
        error = failure(
            ended,
            session_started=self.started,
            final_error=self._expiry or self._final_error,
            display_url=self.display_url,
        )
        logger.info("connection to %s ended: %s", self.display_url, error)
        return ClosedEvent(
            code=ended.code,
            reason=ended.reason,
            requested=False,
            error=error,
            retryable=is_retryable(error),
        )

    def fail(self, error: Exception) -> ClosedEvent:
        """Close for a reason of our own (the dispatcher failed): the closing event."""
        self.closed = True
        return ClosedEvent(code=None, reason=None, requested=False, error=error)
