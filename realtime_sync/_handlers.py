"""Handler registration for :class:`~realtime_sync.RealtimeClient`: ``on``, ``once``, ``off``.

A mixin over the client's :class:`~realtime_sync._dispatch.HandlerRegistry`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar, overload

from ._dispatch import HandlerRegistry, check_event_pattern

__all__ = ["Handlers"]

H = TypeVar("H", bound=Callable[..., Any])


class Handlers:
    """``on``/``once``/``off`` (see the module description)."""

    _registry: HandlerRegistry

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

    def _register(
        self, event_type: str, handler: H | None, *, once: bool, allow_unknown: bool
    ) -> H | Callable[[H], H]:
        if not allow_unknown:
            check_event_pattern(event_type)

        def register(fn: H) -> H:
            self._registry.add(event_type, fn, once=once)
            return fn

        return register if handler is None else register(handler)
