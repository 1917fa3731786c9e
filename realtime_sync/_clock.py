"""One timer thread for every client in the process.

Sessions need a few deadlines each (the expiry notice, the rollover window, a reconnect's
backoff and its attempt timeout). A ``threading.Timer`` per deadline would be a sleeping
thread per deadline: hundreds in a process with a hundred sessions. Here one daemon thread
keeps a heap of deadlines and runs each callback when it is due; callbacks must be quick
(they queue work for a dispatcher or start a thread of their own).
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable

__all__ = ["Scheduled", "call_later"]

logger = logging.getLogger("realtime_sync")

_LONGEST = 3600.0  # seconds of one wait; the heap is looked at again after it


class Scheduled:
    """A callback due at a time; :meth:`cancel` stops it if it has not run."""

    __slots__ = ("_clock", "callback", "cancelled", "due")

    def __init__(self, clock: _Clock, due: float, callback: Callable[[], object]) -> None:
        self._clock = clock
        self.due = due
        self.callback = callback
        self.cancelled = False

    def cancel(self) -> None:
        """Do not run it (a no-op once it ran)."""
        self.cancelled = True
        self._clock.remove(self)


class _Clock:
    def __init__(self) -> None:
        self._condition = threading.Condition()
        self._heap: list[tuple[float, int, Scheduled]] = []
        self._order = itertools.count()
        self._thread: threading.Thread | None = None

    def call_later(self, delay: float, callback: Callable[[], object]) -> Scheduled:
        entry = Scheduled(self, time.monotonic() + max(0.0, delay), callback)
        with self._condition:
            heapq.heappush(self._heap, (entry.due, next(self._order), entry))
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name="realtime_sync-clock", daemon=True
                )
                self._thread.start()
            self._condition.notify()
        return entry

    def remove(self, entry: Scheduled) -> None:
        # Cancelled deadlines leave at once: an idle process keeps no timer thread.
        with self._condition:
            self._heap = [item for item in self._heap if item[2] is not entry]
            heapq.heapify(self._heap)
            self._condition.notify()

    def _run(self) -> None:
        while True:
            with self._condition:
                while not self._heap or self._heap[0][0] > time.monotonic():
                    if not self._heap:
                        self._thread = None
                        return
                    # Bounded: a deadline absurdly far away must not overflow the wait.
                    self._condition.wait(min(self._heap[0][0] - time.monotonic(), _LONGEST))
                entry = heapq.heappop(self._heap)[2]
            if entry.cancelled:
                continue
            try:
                entry.callback()
            except Exception:  # one client's bug must not stop every client's timers
                logger.exception("internal error in a timer callback")


_clock = _Clock()


def call_later(delay: float, callback: Callable[[], object]) -> Scheduled:
    """Run ``callback`` on the process's timer thread in ``delay`` seconds."""
    return _clock.call_later(delay, callback)
