"""Handler registration and the dispatcher thread.

The socket thread only hands frames over; this thread decodes them and calls handlers, one
event at a time in arrival order, so a slow handler delays other handlers but never the
socket (pings keep being answered). Waiters (``wait_for``) are served after the handlers of
each event, so when ``wait_for`` returns every handler has seen the event.
"""

from __future__ import annotations

import difflib
import logging
import queue
import threading
from collections.abc import Callable
from typing import Any

from attrs import define, frozen

from ._dialects import BETA_SERVER_EVENTS, CLIENT_SIDE_EVENTS, GA_SERVER_EVENTS, EventNames
from ._errors import (
    ConnectionClosed,
    RealtimeTimeoutError,
    UnknownEventTypeError,
    WouldDeadlockError,
)
from ._local_events import ClosedEvent, HandlerErrorEvent
from ._server_events import decode_event

__all__ = [
    "ConnectionEnded",
    "Dispatcher",
    "Expectation",
    "HandlerRegistry",
    "check_event_pattern",
]

logger = logging.getLogger("realtime_sync")

Handler = Callable[[Any], Any]
KNOWN_EVENT_TYPES = GA_SERVER_EVENTS | BETA_SERVER_EVENTS | CLIENT_SIDE_EVENTS


def check_event_pattern(pattern: str) -> None:
    """Refuse a pattern that can match no event of either dialect (a typo, most likely).

    Valid: an event type, ``"*"``, or a prefix ending in ``".*"`` such as ``"response.*"``.
    """
    if not isinstance(pattern, str):
        raise TypeError(f"event type must be a string, not {type(pattern).__name__}")
    if pattern == "*" or pattern in KNOWN_EVENT_TYPES:
        return
    if pattern.endswith(".*"):
        prefix = pattern[:-1]
        if any(name.startswith(prefix) for name in KNOWN_EVENT_TYPES):
            return
        raise UnknownEventTypeError(
            f"no event type of either dialect starts with {prefix!r}; "
            "pass allow_unknown=True to listen for a custom event type"
        )
    close = difflib.get_close_matches(pattern, KNOWN_EVENT_TYPES, n=3, cutoff=0.6)
    hint = f" Did you mean {' or '.join(map(repr, close))}?" if close else ""
    raise UnknownEventTypeError(
        f"{pattern!r} is not an event type of the GA or beta Realtime protocol.{hint} "
        "Pass allow_unknown=True to listen for a custom event type."
    )


@define(eq=False)
class _Entry:
    pattern: str  # canonical form (see EventNames)
    handler: Handler
    once: bool


class HandlerRegistry:
    """Which handlers want which events. Thread-safe; lookups are cached per event type.

    Patterns and event types are compared in their canonical form for the client's dialect,
    so a handler registered under either dialect's name hears the event.
    """

    def __init__(self, dialect: str = "ga") -> None:
        self.names = EventNames(dialect)
        self._lock = threading.Lock()
        self._entries: list[_Entry] = []
        # Per event type: its entries, and whether any is a once-entry (decided at lookup,
        # not on every event).
        self._cache: dict[str, tuple[tuple[_Entry, ...], bool]] = {}

    def add(self, pattern: str, handler: Handler, *, once: bool = False) -> None:
        if not callable(handler):
            raise TypeError(f"handler must be callable, not {type(handler).__name__}")
        entry = _Entry(self.names.canonical_pattern(pattern), handler, once)
        with self._lock:
            self._entries.append(entry)
            self._cache.clear()

    def remove(self, pattern: str | None = None, handler: Handler | None = None) -> int:
        """Remove matching registrations (all when both are None); return how many."""
        if pattern is not None:
            pattern = self.names.canonical_pattern(pattern)
        with self._lock:
            kept = [
                entry
                for entry in self._entries
                if not (
                    (pattern is None or entry.pattern == pattern)
                    and (handler is None or entry.handler == handler)
                )
            ]
            removed = len(self._entries) - len(kept)
            self._entries = kept
            self._cache.clear()
        return removed

    def has_handlers(self, event_type: str) -> bool:
        """Whether any registration matches ``event_type`` (consumes nothing)."""
        with self._lock:
            return any(self.names.matches(e.pattern, event_type) for e in self._entries)

    def take(self, event_type: str) -> tuple[_Entry, ...]:
        """Handlers for one event, in registration order; ``once`` ones are removed."""
        cached = self._cache.get(event_type)
        if cached is None:
            with self._lock:
                matches = self.names.matches
                entries = tuple(e for e in self._entries if matches(e.pattern, event_type))
                cached = self._cache[event_type] = (entries, any(e.once for e in entries))
        entries, has_once = cached
        if has_once:
            with self._lock:
                # Another thread may have removed them already: keep only live ones.
                live = set(map(id, self._entries))
                entries = tuple(e for e in entries if id(e) in live)
                self._entries = [e for e in self._entries if not (e.once and e in entries)]
                self._cache.clear()
        return entries


class Expectation:
    """An event awaited by :meth:`~realtime_sync.RealtimeClient.expect` or ``wait_for``.

    It is registered when made, so an event dispatched between then and :meth:`wait` is
    caught: ``done = client.expect("response.done"); client.send(...); done.wait(30)`` has
    no race, however fast the server answers. Only events dispatched after it was made count.
    """

    def __init__(
        self,
        dispatcher: Dispatcher,
        pattern: str,
        predicate: Callable[[Any], bool] | None,
        first_seq: int,
        names: EventNames,
    ) -> None:
        self._dispatcher = dispatcher
        self.pattern = pattern
        """The event type or pattern awaited, as given."""
        self._canonical = names.canonical_pattern(pattern)
        self._names = names
        self._predicate = predicate
        self._first_seq = first_seq
        self._done = threading.Event()
        self._event: Any = None
        self._error: BaseException | None = None

    def done(self) -> bool:
        """True once the event arrived, or the wait failed (session ended, predicate raised)."""
        return self._done.is_set()

    def wait(self, timeout: float | None = None) -> Any:
        """Block until the event is dispatched (after its handlers ran) and return it.

        Raises :class:`RealtimeTimeoutError` after ``timeout`` seconds (and stops expecting),
        :class:`ConnectionClosed` if the session ended first, what the predicate raised if
        it raised, and :class:`WouldDeadlockError` on the dispatcher thread.
        """
        if not self._done.is_set() and self._dispatcher.on_dispatcher_thread():
            raise _would_deadlock(self.pattern)
        if not self._done.wait(timeout):
            self.cancel()
            if not self._done.is_set():
                raise RealtimeTimeoutError(f"no {self.pattern!r} event within {timeout} s")
        if self._error is not None:
            raise self._error
        return self._event

    def cancel(self) -> None:
        """Stop expecting; a later :meth:`wait` then times out unless the event had come."""
        self._dispatcher.discard(self)

    def offer(self, event: Any, seq: int) -> bool:
        """Take ``event`` if it is the one awaited; a raising predicate fails the wait."""
        if seq < self._first_seq or not self._names.matches(self._canonical, event.type):
            return False
        if self._predicate is not None:
            try:
                if not self._predicate(event):
                    return False
            except Exception as exc:
                self.fail(exc)
                return True
        self._event = event
        self._done.set()
        return True

    def fail(self, error: BaseException) -> None:
        self._error = error
        self._done.set()


class Dispatcher:
    """One thread that decodes frames and runs handlers and waiters, in arrival order.

    ``before_handlers`` is the client's own state update, run before any user handler sees
    an event; it returns the event to dispatch (it turns the socket thread's
    :class:`ConnectionEnded` record into a :class:`ClosedEvent`). The thread ends after it
    dispatches a ClosedEvent.
    """

    def __init__(
        self,
        registry: HandlerRegistry,
        before_handlers: Callable[[Any], Any],
        *,
        name: str,
        decode: Callable[[bytes | str], Any] = decode_event,
    ) -> None:
        self._registry = registry
        self._before_handlers = before_handlers
        self._decode = decode
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._expectations: list[Expectation] = []
        self._expectations_lock = threading.Lock()
        self._closed_event: ClosedEvent | None = None
        self._seq = 0  # number of the event being dispatched; only this thread writes it
        self.thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> None:
        self.thread.start()

    def submit(self, item: Any) -> None:
        """Queue a raw frame (bytes/str) or an already made event. Callable from any thread."""
        self._queue.put(item)

    def on_dispatcher_thread(self) -> bool:
        return threading.get_ident() == self.thread.ident

    @property
    def finished(self) -> bool:
        """True once the closing event was dispatched: no further event will come."""
        return self._closed_event is not None

    def expect(self, pattern: str, predicate: Callable[[Any], bool] | None) -> Expectation:
        """Start expecting the next event matching ``pattern`` (and ``predicate``)."""
        with self._expectations_lock:
            expectation = Expectation(self, pattern, predicate, self._seq + 1, self._registry.names)
            if self._closed_event is None:
                self._expectations.append(expectation)
            else:
                expectation.fail(_closed_error(self._closed_event))
        return expectation

    def wait_for(
        self, pattern: str, predicate: Callable[[Any], bool] | None, timeout: float | None
    ) -> Any:
        """Block until an event matching ``pattern`` (and ``predicate``) is dispatched."""
        if self.on_dispatcher_thread():  # refuse before registering anything
            raise _would_deadlock(pattern)
        return self.expect(pattern, predicate).wait(timeout)

    def discard(self, expectation: Expectation) -> None:
        with self._expectations_lock:
            if expectation in self._expectations:
                self._expectations.remove(expectation)

    def _run(self) -> None:
        get, decode = self._queue.get, self._decode
        while True:
            item = get()
            self._seq += 1
            event = decode(item) if isinstance(item, (bytes, str)) else item
            try:
                event = self._before_handlers(event)
            except Exception:  # a bug of ours: report it, and never strand the waiters
                logger.exception("internal error while handling %r", event)
                if type(event) is ConnectionEnded:
                    event = ClosedEvent(
                        code=event.code,
                        reason=event.reason,
                        requested=False,
                        error=ConnectionClosed("the connection ended (internal error; see log)"),
                    )
            self._dispatch(event, self._seq)
            if type(event) is ClosedEvent:
                return

    def _dispatch(self, event: Any, seq: int) -> None:
        for entry in self._registry.take(event.type):
            try:
                entry.handler(event)
            except Exception as exc:
                self._report_handler_error(event, entry.handler, exc)
        if type(event) is ClosedEvent:
            with self._expectations_lock:
                self._closed_event = event
                pending, self._expectations = self._expectations, []
            error = _closed_error(event)
            for expectation in pending:
                if not expectation.offer(event, seq):  # expect("client.closed") is served
                    expectation.fail(error)
        elif self._expectations:
            # Predicates are user code: run them outside the lock, which expect() and
            # cancel() (perhaps called by a predicate) need.
            with self._expectations_lock:
                pending = list(self._expectations)
            served = [e for e in pending if e.offer(event, seq)]
            if served:
                with self._expectations_lock:
                    self._expectations = [e for e in self._expectations if e not in served]

    def _report_handler_error(self, event: Any, handler: Handler, exc: Exception) -> None:
        logger.error(
            "handler %s raised on %s; the session goes on",
            getattr(handler, "__qualname__", handler),
            event.type,
            exc_info=exc,
        )
        if type(event) is HandlerErrorEvent:
            return  # an error handler failing: logged, not reported again (no loop)
        self._seq += 1
        self._dispatch(HandlerErrorEvent(event=event, handler=handler, exception=exc), self._seq)


@frozen
class ConnectionEnded:
    """The socket thread's report that the connection is over, queued behind its frames."""

    code: int | None
    """Close code from the server's close frame, if there was one."""
    reason: str | None
    """Close reason, if there was one."""
    exception: BaseException | None
    """What ended it, when it was not a clean close."""
    type: str = "client.connection_ended"
    """Internal; never reaches handlers."""


def _would_deadlock(pattern: str) -> WouldDeadlockError:
    return WouldDeadlockError(
        f"waiting for {pattern!r} from an event handler: handlers run on the dispatcher "
        "thread, which is the thread that would deliver the event. Register a handler for the "
        "event instead, or wait from another thread."
    )


def _closed_error(event: ClosedEvent) -> BaseException:
    if event.error is not None:
        return event.error
    return ConnectionClosed(
        "the session was closed by close()", code=event.code, reason=event.reason
    )
