"""The send queue for the gap between two connections.

While the client reconnects (or rolls a session over), events the application sends are
kept here, bounded by count and bytes, and sent in order once the new session has been
brought back (:meth:`SendQueue.release`). Audio follows its own policy: dropped and
counted, or kept up to a duration. Nothing is dropped silently: a full queue refuses the
send with :class:`~realtime_sync.SendQueueFullError`, dropped audio is counted in the
reconnect's report, and events still queued when the client gives up are counted in its
``client.closed``. A sender that resends by itself (``transcribe()``) excludes its events,
which are then held back unsent, and asks which were (:meth:`SendQueue.withdraw`).
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable

from ._errors import SendQueueFullError
from ._reconnect import ReconnectPolicy

__all__ = ["SendQueue"]


class SendQueue:
    """Events sent while disconnected (see the module description). Thread-safe."""

    def __init__(self, policy: ReconnectPolicy) -> None:
        self._policy = policy
        self.lock = threading.Lock()
        """Held while deciding whether a send is queued, and while the queue is released,
        so that a send never overtakes the events queued before it."""
        self.holding = False
        """True between a connection's loss and the release: sends are queued."""
        self._events: deque[tuple[str, bytes, float]] = deque()  # event id, data, audio ms
        self._bytes = 0
        self._audio_ms = 0.0
        self._dropped = 0
        self._dropped_ms = 0.0
        self._excluded: set[str] = set()  # prefixes of event ids never queued
        self._withheld: set[str] = set()  # ids of such events sent while holding

    def hold(self) -> None:
        """Queue sends from now on (the lock must be held)."""
        self.holding = True

    def offer(self, event_id: str, data: bytes, audio_ms: float | None) -> bool:
        """Queue one encoded event if sends are being held (the lock must be held); False
        when they are not. ``audio_ms`` is the duration of an ``input_audio_buffer.append``
        (None for other events). Raises :class:`SendQueueFullError` when it does not fit."""
        if not self.holding:
            return False
        if any(event_id.startswith(prefix) for prefix in self._excluded):
            self._withheld.add(event_id)
            return True
        policy = self._policy
        if audio_ms is not None and (
            policy.gap_audio == "drop"
            or self._dropped  # once audio was dropped, later audio would leave a hole
            or self._audio_ms + audio_ms > policy.gap_audio_seconds * 1000
        ):
            self._dropped += 1
            self._dropped_ms += audio_ms
            return True
        if len(self._events) >= policy.queue_max_events:
            raise SendQueueFullError(
                f"not connected, and {len(self._events)} events already wait for the "
                f"reconnect (queue_max_events={policy.queue_max_events}); nothing was queued"
            )
        if self._bytes + len(data) > policy.queue_max_bytes:
            raise SendQueueFullError(
                f"not connected, and {self._bytes} bytes of events already wait for the "
                f"reconnect (queue_max_bytes={policy.queue_max_bytes}); nothing was queued"
            )
        self._events.append((event_id, data, audio_ms or 0.0))
        self._bytes += len(data)
        self._audio_ms += audio_ms or 0.0
        return True

    def contains(self, event_id: str) -> bool:
        """Whether the event with this id waits in the queue."""
        with self.lock:
            return any(queued == event_id for queued, _, _ in self._events)

    def exclude(self, prefix: str) -> None:
        """Never queue the events whose id starts with ``prefix``, until :meth:`readmit`:
        their sender sends them again itself after the reconnect, and asks
        :meth:`withdraw` whether one was held back. Deciding under the lock, as the send
        does, is what keeps the release from sending one before the sender could ask."""
        with self.lock:
            self._excluded.add(prefix)

    def readmit(self, prefix: str) -> None:
        """Undo :meth:`exclude`."""
        with self.lock:
            self._excluded.discard(prefix)
            self._withheld = {held for held in self._withheld if not held.startswith(prefix)}

    def withdraw(self, event_id: str) -> bool:
        """Whether the excluded event with this id (or a part of it, ``event_id.N``, when
        it was split) was held back unsent; forgets it."""
        with self.lock:
            held = {h for h in self._withheld if h == event_id or h.startswith(f"{event_id}.")}
            self._withheld -= held
            return bool(held)

    def release(self, send: Callable[[bytes], None]) -> tuple[int, int, float]:
        """Send every queued event in order and stop holding (the lock must be held).

        Returns (events sent, audio appends dropped, ms of audio dropped). If ``send``
        raises, the event it failed on and those after it stay queued, still held, and the
        exception propagates: the next connection sends them.
        """
        sent = 0
        while self._events:
            _, data, audio_ms = self._events[0]
            send(data)
            self._events.popleft()
            self._bytes -= len(data)
            self._audio_ms -= audio_ms
            sent += 1
        dropped, dropped_ms = self._dropped, self._dropped_ms
        self._dropped, self._dropped_ms, self._audio_ms = 0, 0.0, 0.0
        self.holding = False
        return sent, dropped, dropped_ms

    def discard(self) -> int:
        """Forget everything queued and stop holding (the lock must be held); return how
        many events, dropped audio appends included, were never sent."""
        unsent = len(self._events) + self._dropped
        self._events.clear()
        self._bytes, self._audio_ms, self._dropped, self._dropped_ms = 0, 0.0, 0, 0.0
        self.holding = False
        return unsent
