"""Handler registration and the dispatcher thread.

The socket thread only hands frames over; this thread decodes them and calls handlers, one
event at a time in arrival order, so a slow handler delays other handlers but never the
socket (pings keep being answered). Waiters (``wait_for``) are served after the handlers of
each event, so when ``wait_for`` returns every handler has seen the event.
"""

from __future__ import annotations

import contextlib
import difflib
import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

from attrs import define

from ._dialects import BETA_SERVER_EVENTS, CLIENT_SIDE_EVENTS, GA_SERVER_EVENTS, EventNames
from ._errors import (
    ClientClosed,
    InternalError,
    RealtimeTimeoutError,
    UnknownEventTypeError,
    WouldDeadlockError,
)
from ._local_events import BacklogEvent, ClosedEvent, HandlerErrorEvent
from ._secrets import redact
from ._server_events import ErrorEvent, decode_event
from ._session import SessionCore, SessionState
from ._timeouts import wait_seconds
from ._transport import TransportEnded

__all__ = [
    "Dispatcher",
    "Expectation",
    "HandlerRegistry",
    "Reducer",
    "check_event_pattern",
]

logger = logging.getLogger("realtime_sync")

Handler = Callable[[Any], Any]
Reducer = Callable[[Any], Any]
"""Client state updated from every event before handlers see it; returns the event."""
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

    def _lookup(self, event_type: str) -> tuple[tuple[_Entry, ...], bool]:
        cached = self._cache.get(event_type)
        if cached is None:
            with self._lock:
                matches = self.names.matches
                entries = tuple(e for e in self._entries if matches(e.pattern, event_type))
                cached = self._cache[event_type] = (entries, any(e.once for e in entries))
        return cached

    def listened(self, event_type: str) -> bool:
        """Whether any handler is registered for ``event_type`` (consumes nothing)."""
        return bool(self._lookup(event_type)[0])

    def take(self, event_type: str) -> tuple[_Entry, ...]:
        """Handlers for one event, in registration order; ``once`` ones are removed."""
        entries, has_once = self._lookup(event_type)
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

        Raises :class:`RealtimeTimeoutError` after ``timeout`` seconds (and stops expecting);
        if the connection ended first, the error its ``client.closed`` carries
        (:class:`ConnectionClosed`, an :class:`APIError`, :class:`InternalError`...) or
        :class:`ClientClosed` after our own ``close()``; what the predicate raised if it
        raised; and :class:`WouldDeadlockError` on the dispatcher thread.
        """
        if not self._done.is_set() and self._dispatcher.on_dispatcher_thread():
            raise _would_deadlock(self.pattern)
        if not self._done.wait(wait_seconds(timeout)):
            self.cancel()
            if not self._done.is_set():
                raise RealtimeTimeoutError(f"no {self.pattern!r} event within {timeout} s")
        if self._error is not None:
            # One error goes to every waiter: raised afresh, its traceback does not pile up.
            raise self._error.with_traceback(None)
        return self._event

    def cancel(self) -> None:
        """Stop expecting; a later :meth:`wait` then times out unless the event had come."""
        self._dispatcher.discard(self)

    def _offer(self, event: Any, seq: int) -> bool:
        """Take ``event`` if it is the one awaited; a raising predicate fails the wait."""
        if seq < self._first_seq or not self._names.matches(self._canonical, event.type):
            return False
        if self._predicate is not None:
            try:
                if not self._predicate(event):
                    return False
            except BaseException as exc:  # user code, like a handler: it fails only the wait
                self._fail(exc)
                return True
        self._event = event
        self._done.set()
        return True

    def _fail(self, error: BaseException) -> None:
        self._error = error
        self._done.set()


class Dispatcher:
    """The client's one dispatcher: decodes frames and runs handlers and waiters, in order.

    One per client, across its connections, so that handlers never run concurrently and
    waits can outlive a connection. Each queued item names the :class:`SessionCore` of the
    connection it came from; the core sees it first (it turns the transport's end report
    into the closing event), then the client's ``reducers`` in order, then handlers, then
    waiters. The thread runs while a connection is attached (from :meth:`attach` until its
    closing event is dispatched) and stops when none is, to start again on the next.

    If the thread ever fails for a reason of its own (a bug, or a ``BaseException`` in our
    machinery: handlers' exceptions never get that far), it does not die silently: every
    pending wait fails with :class:`InternalError`, handlers get a ``client.closed`` carrying
    it, and ``on_failure`` lets the client cut its connections.
    """

    def __init__(
        self,
        registry: HandlerRegistry,
        *,
        name: str,
        decode: Callable[[bytes | str], Any] = decode_event,
        reducers: Sequence[Reducer] = (),
        on_failure: Callable[[InternalError], None] | None = None,
        backlog_warning: float | None = None,
    ) -> None:
        self._registry = registry
        self._name = name
        self._decode = decode
        self._reducers = tuple(reducers)
        self._on_failure = on_failure
        # Each item with the time it was queued: how far behind dispatching runs.
        self._queue: queue.SimpleQueue[tuple[SessionCore, Any, float]] = queue.SimpleQueue()
        self._backlog_warning = backlog_warning
        self._behind = False  # a client.backlog warning was made and the lag not yet gone
        self.lag = 0.0
        """Seconds the item dispatched last had waited in the queue."""
        # Guards the thread's life, the attached connections and the expectations.
        self._lock = threading.Condition()
        self._attached: list[SessionCore] = []
        self._current: SessionCore | None = None
        self._closed_event: ClosedEvent | None = None  # the current connection's, once made
        self._expectations: list[Expectation] = []
        self._thread: threading.Thread | None = None
        self._exited: threading.Thread | None = None  # the last thread that ended, to join
        self._thread_ident: int | None = None
        self._seq = 0  # number of the event being dispatched; only the thread writes it
        self._derived: deque[Any] = deque()  # events reducers made, dispatched next
        self.source: SessionCore | None = None
        """The connection of the event being handled (for reducers, on the thread)."""

    # --- any thread -------------------------------------------------------------------------

    def attach(self, core: SessionCore) -> None:
        """Make ``core`` the current connection and have a thread ready for its events."""
        with self._lock:
            self._attached.append(core)
            self._current = core
            self._closed_event = None
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name=f"{self._name}-dispatch", daemon=True
                )
                self._thread.start()

    def submit(self, core: SessionCore, item: Any) -> None:
        """Queue a frame (bytes/str) or an event of ``core``'s connection. Any thread."""
        self._queue.put((core, item, time.monotonic()))

    def sink(self, core: SessionCore) -> Callable[[Any], None]:
        """``submit`` bound to ``core``: what a transport calls for every frame."""
        put = self._queue.put
        now = time.monotonic
        return lambda item: put((core, item, now()))

    @property
    def backlog(self) -> int:
        """Items (frames, or bursts of them) waiting to be dispatched."""
        return self._queue.qsize()

    def wait_detached(self, core: SessionCore, timeout: float) -> bool:
        """Wait until ``core``'s closing event was dispatched; when no connection is left,
        also until the thread has ended. True if both happened within ``timeout``."""
        deadline = time.monotonic() + timeout
        with self._lock:
            if not self._lock.wait_for(lambda: core not in self._attached, wait_seconds(timeout)):
                return False
            thread = None if self._attached else (self._thread or self._exited)
        if thread is not None and thread is not threading.current_thread():
            thread.join(wait_seconds(deadline - time.monotonic()))
            return not thread.is_alive()
        return True

    def listened(self, event_type: str) -> bool:
        """Whether a handler or a wait could take an event of ``event_type`` now: reducers
        make their client events only then."""
        return bool(self._expectations) or self._registry.listened(event_type)

    def emit(self, event: Any) -> None:
        """For reducers, on the dispatcher thread: dispatch ``event`` (a client event they
        made) right after the one being handled."""
        self._derived.append(event)

    def on_dispatcher_thread(self) -> bool:
        return threading.get_ident() == self._thread_ident

    def expect(self, pattern: str, predicate: Callable[[Any], bool] | None) -> Expectation:
        """Start expecting the next event matching ``pattern`` (and ``predicate``)."""
        with self._lock:
            expectation = Expectation(self, pattern, predicate, self._seq + 1, self._registry.names)
            if self._closed_event is None:
                self._expectations.append(expectation)
            else:
                expectation._fail(closed_error(self._closed_event))
        return expectation

    def wait_for(
        self, pattern: str, predicate: Callable[[Any], bool] | None, timeout: float | None
    ) -> Any:
        """Block until an event matching ``pattern`` (and ``predicate``) is dispatched."""
        if self.on_dispatcher_thread():  # refuse before registering anything
            raise _would_deadlock(pattern)
        return self.expect(pattern, predicate).wait(timeout)

    def discard(self, expectation: Expectation) -> None:
        with self._lock:
            if expectation in self._expectations:
                self._expectations.remove(expectation)

    # --- the dispatcher thread --------------------------------------------------------------

    def _run(self) -> None:
        self._thread_ident = threading.get_ident()
        try:
            while self._handle_one():
                pass
        except BaseException as exc:
            self._die(exc)

    def _handle_one(self) -> bool:
        """Dispatch the next queued item (a frame, an event, or a burst of frames); False
        when the thread should end."""
        core, item, queued_at = self._queue.get()
        if type(item) is list:  # frames a transport read in one go: one wake-up for all
            for frame in item:
                self._note_lag(queued_at)
                self._handle(core, frame)
        else:
            self._note_lag(queued_at)
            self._handle(core, item)
        if not core.closed:
            return True
        with self._lock:
            if core.state is SessionState.CLOSED and core in self._attached:
                self._attached.remove(core)
                self._lock.notify_all()
            if self._attached or not self._queue.empty():
                return True
            self._exited, self._thread = self._thread, None
            self._thread_ident = None
            return False

    def _note_lag(self, queued_at: float) -> None:
        """How long the item about to be handled waited; a warning past the bound, once
        per stretch of lagging."""
        self.lag = lag = time.monotonic() - queued_at
        bound = self._backlog_warning
        if bound is None:
            return
        if not self._behind and lag > bound:
            self._behind = True
            self._derived.append(BacklogEvent(events=self.backlog + 1, seconds=lag))
        elif self._behind and lag < bound / 2:
            self._behind = False

    def _handle(self, core: SessionCore, item: Any) -> None:
        """Decode one item, let the core and the reducers see it, dispatch what they make."""
        event = self._decode(item) if isinstance(item, (bytes, str)) else item
        try:
            event = core.receive(event)
        except Exception as exc:  # a bug of ours: report it, and never strand the waiters
            logger.exception("internal error while handling %s", getattr(event, "type", event))
            if type(item) is TransportEnded:
                error = InternalError("the connection ended (internal error; see the log)")
                error.__cause__ = exc
                event = core.fail(error)
        self.source = core
        for reducer in self._reducers:
            if event is None:  # consumed (a reducer's own notice, a closing event replaced)
                break
            try:
                event = reducer(event)
            except Exception:  # one reducer's failure must not starve the others
                logger.exception("internal error in %r on %s", reducer, event.type)
        if event is not None:
            self._seq += 1
            self._dispatch(event, self._seq, core)
        while self._derived:
            self._seq += 1
            self._dispatch(self._derived.popleft(), self._seq, core)

    def _dispatch(self, event: Any, seq: int, core: SessionCore) -> None:
        entries = self._registry.take(event.type)
        failures: list[tuple[Handler, BaseException]] = []
        for entry in entries:
            try:
                entry.handler(event)
            except BaseException as exc:  # SystemExit in a handler ends nothing but it
                failures.append((entry.handler, exc))
        heard = bool(entries)
        if type(event) is ClosedEvent and core is self._current:
            with self._lock:
                self._closed_event = event
                pending, self._expectations = self._expectations, []
            error = closed_error(event)
            for expectation in pending:
                if not expectation._offer(event, seq):  # expect("client.closed") is served
                    expectation._fail(error)
        elif self._expectations:
            # Predicates are user code: run them outside the lock, which expect() and
            # cancel() (perhaps called by a predicate) need.
            with self._lock:
                pending = list(self._expectations)
            served = [e for e in pending if e._offer(event, seq)]
            if served:
                heard = True
                with self._lock:
                    self._expectations = [e for e in self._expectations if e not in served]
        if (
            not heard
            and type(event) is ErrorEvent
            and core.state is SessionState.OPEN
            # The session's end, which the closing event (or the rollover) reports.
            and event.error.code != "session_expired"
        ):
            detail = event.error
            logger.warning(
                "server error %s: %s (no on('error') handler or wait for it registered)",
                detail.code or detail.type,
                redact(detail.message or ""),
            )
        for handler, failure in failures:
            self._report_handler_error(event, handler, failure, core)

    def _report_handler_error(
        self, event: Any, handler: Handler, exc: BaseException, core: SessionCore
    ) -> None:
        """Log a handler's failure and, after the event it failed on, report it as an event:
        not after ``client.closed`` (the last event) nor for a failing report (no loop)."""
        logger.error(
            "handler %s raised on %s; the session goes on",
            getattr(handler, "__qualname__", handler),
            event.type,
            exc_info=exc,
        )
        if type(event) is HandlerErrorEvent or type(event) is ClosedEvent:
            return
        self._seq += 1
        report = HandlerErrorEvent(event=event, handler=handler, exception=exc)
        self._dispatch(report, self._seq, core)

    def _die(self, cause: BaseException) -> None:
        """The thread itself failed: fail every wait, tell handlers, let the client close."""
        logger.critical("the dispatcher thread failed; closing the client", exc_info=cause)
        error = InternalError(f"the dispatcher thread failed ({cause!r}); the client closed")
        error.__cause__ = cause
        with self._lock:
            cores, self._attached = self._attached, []
            pending, self._expectations = self._expectations, []
            self._thread = None
            self._thread_ident = None
            closed = None
            for core in cores:  # their queued items are dropped from now on
                event = core.fail(error)
                if core is self._current:
                    closed = self._closed_event = event
            self._lock.notify_all()
        # As for every event: handlers first, then waiters.
        with contextlib.suppress(BaseException):  # best effort, never a second failure
            if self._on_failure is not None:
                self._on_failure(error)
        if closed is not None:
            for entry in self._registry.take(closed.type):
                with contextlib.suppress(BaseException):
                    entry.handler(closed)
        for expectation in pending:
            expectation._fail(error)


def _would_deadlock(pattern: str) -> WouldDeadlockError:
    return WouldDeadlockError(
        f"waiting for {pattern!r} from an event handler: handlers run on the dispatcher "
        "thread, which is the thread that would deliver the event. Register a handler for the "
        "event instead, or wait from another thread."
    )


def closed_error(event: ClosedEvent) -> BaseException:
    """What a wait cut short by ``event`` raises."""
    if event.error is not None:
        return event.error
    return ClientClosed("the session was closed by close() while waiting")
