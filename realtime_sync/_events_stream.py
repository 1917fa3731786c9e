"""Events as an iterator in the caller's thread, for code that prefers a loop to handlers."""

from __future__ import annotations

import contextlib
import queue
from collections.abc import Callable, Iterator
from types import TracebackType
from typing import Any, Protocol

from ._local_events import ClosedEvent
from ._timeouts import wait_seconds

__all__ = ["EventStream"]

_CLOSED = object()


class _Registry(Protocol):
    def on(self, event_type: str, handler: Callable[[Any], Any]) -> Any: ...

    def off(
        self, event_type: str | None = None, handler: Callable[..., Any] | None = None
    ) -> int: ...


class EventStream(Iterator[Any]):
    """Every event dispatched from its creation on, in order, in the iterating thread.

    It listens from the moment it is made (``client.events()``), so nothing dispatched in
    between is missed; it ends after ``client.closed``, or when no event came within
    ``timeout`` seconds, or at :meth:`close`.
    """

    def __init__(self, client: _Registry, timeout: float | None) -> None:
        self._client = client
        self._timeout = timeout
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._listening = True
        client.on("*", self._queue.put)

    def __iter__(self) -> EventStream:
        return self

    def __next__(self) -> Any:
        if not self._listening and self._queue.empty():
            raise StopIteration
        try:
            event = self._queue.get(timeout=wait_seconds(self._timeout))
        except queue.Empty:
            self.close()
            raise StopIteration from None
        if event is _CLOSED:
            raise StopIteration
        if type(event) is ClosedEvent:
            self.close()
        return event

    def close(self) -> None:
        """Stop listening; events already received are still iterated."""
        if self._listening:
            self._listening = False
            self._client.off("*", self._queue.put)
            self._queue.put(_CLOSED)

    def __del__(self) -> None:
        # An iterator left with `break` and dropped must not keep collecting events.
        with contextlib.suppress(Exception):
            self.close()

    def __enter__(self) -> EventStream:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
