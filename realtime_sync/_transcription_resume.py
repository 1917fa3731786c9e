"""What :func:`~realtime_sync._transcription.transcribe` keeps to survive a reconnect.

A new connection is a new, empty session: the audio the old one had not transcribed yet
(its input buffer, and committed items whose transcript had not come) is gone with it.
:class:`KeptAudio` keeps what was sent since the last point up to which everything is
transcribed, on the session's audio timeline (milliseconds of audio appended since the
session started, which turn detection's ``audio_end_ms`` counts in), so that it can be
sent again, in order, to the next session. It is bounded: past :data:`RESEND_LIMIT_MS` the
oldest audio is let go, and a reconnect then cannot resume without losing speech.
"""

from __future__ import annotations

from collections import deque

from attrs import define

__all__ = ["RESEND_LIMIT_MS", "KeptAudio"]

RESEND_LIMIT_MS = 120_000.0
"""The most audio ``transcribe()`` keeps to send again after a reconnect: two minutes (5.8
MB of PCM16 at 24 kHz, 1 MB of G.711). Reached by turns longer than that, a source longer
than that without turn detection, and also by a pause longer than that between turns: the
audio after a transcribed turn is kept until the next turn's transcript comes, since only
the turn detector knows where that turn starts."""


@define
class _Commit:
    item_id: str
    end_ms: float  # where the item's audio ends on the session's timeline
    done: bool = False


class KeptAudio:
    """The audio sent and not yet transcribed, and the items it became (see the module
    description). Used by one thread."""

    def __init__(
        self,
        timeline_ms: float,
        *,
        rate: int,
        sample_width: int,
        limit_ms: float = RESEND_LIMIT_MS,
    ) -> None:
        self.timeline_ms = timeline_ms
        """Where the next audio starts on the session's timeline."""
        self._limit_ms = limit_ms
        self._rate, self._width = rate, sample_width
        self._chunks: deque[tuple[float, float, bytes]] = deque()  # start, end, data
        self._kept_ms = 0.0
        self._lost_until: float | None = None  # the end of audio let go over the limit
        self._commits: deque[_Commit] = deque()  # committed items, oldest first
        self._commit_end = timeline_ms  # where the last commit ended

    def add(self, data: bytes, duration_ms: float) -> None:
        """Keep audio that follows what was kept (sent, or to be sent after a reconnect)."""
        end = self.timeline_ms + duration_ms
        self._chunks.append((self.timeline_ms, end, data))
        self.timeline_ms = end
        self._kept_ms += duration_ms
        while self._kept_ms > self._limit_ms:
            _, dropped_end, _ = self._chunks[0]
            self._forget_first()
            self._lost_until = dropped_end

    def committed(self, item_id: str, end_ms: float | None) -> float:
        """An item was committed up to ``end_ms`` (None: all the audio sent); return where
        it starts (the previous commit's end)."""
        start = self._commit_end
        self._commit_end = self.timeline_ms if end_ms is None else end_ms
        self._commits.append(_Commit(item_id, self._commit_end))
        return start

    def transcribed(self, item_id: str) -> None:
        """The item's transcript came (or its failure): the audio up to the end of every
        item committed before it, all transcribed too, is needed no more."""
        for commit in self._commits:
            if commit.item_id == item_id:
                commit.done = True
        while self._commits and self._commits[0].done:
            end = self._commits.popleft().end_ms
            while self._chunks and self._chunks[0][1] <= end:
                self._forget_first()
            if self._chunks and self._chunks[0][0] < end:  # a chunk the item ends in
                start, chunk_end, data = self._chunks.popleft()
                cut = int((end - start) * self._rate / 1000) * self._width
                self._chunks.appendleft((end, chunk_end, data[cut:]))
                self._kept_ms -= end - start
            if self._lost_until is not None and self._lost_until <= end:
                self._lost_until = None  # what was let go is transcribed: no harm done

    @property
    def uncommitted_ms(self) -> float:
        """Audio after the last commit."""
        return self.timeline_ms - self._commit_end

    @property
    def complete(self) -> bool:
        """Whether all the audio not yet transcribed is kept (none let go over the limit)."""
        return self._lost_until is None

    def restart(self) -> list[bytes]:
        """A new session: the kept audio, to send to it first. Its timeline starts at 0,
        the old session's commits are forgotten."""
        old = list(self._chunks)
        self._chunks.clear()
        self._kept_ms = self.timeline_ms = self._commit_end = 0.0
        self._commits.clear()
        for start, end, data in old:
            self.add(data, end - start)
        return [data for _, _, data in old]

    def _forget_first(self) -> None:
        start, end, _ = self._chunks.popleft()
        self._kept_ms -= end - start
