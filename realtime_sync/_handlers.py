"""Handler registration and waits for the clients: ``on``, ``once``, ``off``, ``wait_for``,
``expect`` and the event iterator ``events()``.

A mixin over the client's :class:`~realtime_sync._dispatch.HandlerRegistry` and dispatcher;
each client names the event types it knows through ``_check_pattern``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar, overload

from ._dispatch import Dispatcher, Expectation, HandlerRegistry, check_event_pattern
from ._errors import NotConnectedError
from ._events_stream import EventStream

__all__ = ["Handlers"]

H = TypeVar("H", bound=Callable[..., Any])


class Handlers:
    """``on``/``once``/``off``, ``wait_for``/``expect``, ``events`` (see the module
    description)."""

    _registry: HandlerRegistry
    _dispatcher: Dispatcher
    _link: Any  # the current connection (None before the first connect())
    _check_pattern: Callable[[str], None] = staticmethod(check_event_pattern)
    """Refuses an event type or pattern the client cannot receive (a typo, most likely)."""

    @overload
    def on(
        self, event_type: str, handler: None = None, *, allow_unknown: bool = False
    ) -> Callable[[H], H]: ...
    @overload
    def on(self, event_type: str, handler: H, *, allow_unknown: bool = False) -> H: ...

    def on(
        self, event_type: str, handler: H | None = None, *, allow_unknown: bool = False
    ) -> H | Callable[[H], H]:
        """Call ``handler(event)`` for every event of ``event_type``.

        ``event_type`` is a type of either dialect, ``"*"`` for all events, or a prefix
        pattern such as ``"response.*"``. Unknown names raise
        :class:`~realtime_sync.UnknownEventTypeError` unless ``allow_unknown=True``.
        Works as a decorator when ``handler`` is omitted; returns the handler.
        """
        return self._register(event_type, handler, once=False, allow_unknown=allow_unknown)

    @overload
    def once(
        self, event_type: str, handler: None = None, *, allow_unknown: bool = False
    ) -> Callable[[H], H]: ...
    @overload
    def once(self, event_type: str, handler: H, *, allow_unknown: bool = False) -> H: ...

    def once(
        self, event_type: str, handler: H | None = None, *, allow_unknown: bool = False
    ) -> H | Callable[[H], H]:
        """Like :meth:`on`, for the next matching event only."""
        return self._register(event_type, handler, once=True, allow_unknown=allow_unknown)

    def off(self, event_type: str | None = None, handler: Callable[..., Any] | None = None) -> int:
        """Remove registrations: of ``handler`` for ``event_type``, all of ``event_type``,
        all of ``handler``, or every one when called without arguments. Returns how many.
        """
        return self._registry.remove(event_type, handler)

    def wait_for(
        self,
        event_type: str,
        *,
        predicate: Callable[[Any], bool] | None = None,
        timeout: float | None = None,
        allow_unknown: bool = False,
    ) -> Any:
        """Block until the next event of ``event_type`` (matching ``predicate``) arrives.

        Only events dispatched after the call count; to catch the answer to something you
        send, call :meth:`expect` before sending instead. Raises :class:`RealtimeTimeoutError`
        after ``timeout`` seconds, :class:`ConnectionClosed` if the session ends first
        (:class:`ClientClosed` if ``close()`` ended it), and :class:`WouldDeadlockError`
        when called from a handler.
        """
        self._check_wait(event_type, allow_unknown, "wait for")
        return self._dispatcher.wait_for(event_type, predicate, timeout)

    def expect(
        self,
        event_type: str,
        *,
        predicate: Callable[[Any], bool] | None = None,
        allow_unknown: bool = False,
    ) -> Expectation:
        """Start expecting an event now; collect it later with ``.wait(timeout)``.

        The race-free form of :meth:`wait_for` for request/answer pairs::

            done = client.expect("response.done")
            client.send({"type": "response.create"})
            event = done.wait(timeout=30)
        """
        self._check_wait(event_type, allow_unknown, "expect")
        return self._dispatcher.expect(event_type, predicate)

    def events(self, timeout: float | None = None) -> EventStream:
        """Iterate every event in this thread, from now on: ``for ev in client.events():``.

        Ends after ``client.closed``, or when no event came for ``timeout`` seconds. Works
        beside handlers (they run first); leave the loop early with ``stream.close()`` or
        ``with client.events() as stream:``.
        """
        return EventStream(self, timeout)

    def _check_wait(self, event_type: str, allow_unknown: bool, what: str) -> None:
        if not allow_unknown:
            self._check_pattern(event_type)
        if self._link is None:
            raise NotConnectedError(f"not connected: nothing to {what} {event_type!r} on")

    def _register(
        self, event_type: str, handler: H | None, *, once: bool, allow_unknown: bool
    ) -> H | Callable[[H], H]:
        if not allow_unknown:
            self._check_pattern(event_type)

        def register(fn: H) -> H:
            self._registry.add(event_type, fn, once=once)
            return fn

        return register if handler is None else register(handler)
