"""What :func:`~realtime_sync._transcription.transcribe` keeps to survive a reconnect.

A new connection is a new, empty session: the audio the old one had not transcribed yet
(its input buffer, and committed items whose transcript had not come) is gone with it.
:class:`KeptAudio` keeps what was sent since the last point up to which everything is
transcribed, on the session's audio timeline (milliseconds of audio appended since the
session started, which turn detection's ``audio_end_ms`` counts in), so that it can be
sent again, in order, to the next session. Of a long silence it keeps only the start
(:func:`silence_kept_ms`): enough for the turn detector to end the turn before it and pad
the next one, so that a pause between turns does not fill it. It is bounded: past
:data:`RESEND_LIMIT_MS` the oldest audio is let go, and a reconnect then cannot resume
without losing speech.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator, Mapping
from typing import Any

from attrs import define

from . import audio

__all__ = [
    "QUIET_DBFS",
    "RESEND_LIMIT_MS",
    "SERVER_VAD_SILENCE_MS",
    "KeptAudio",
    "silence_kept_ms",
]

RESEND_LIMIT_MS = 120_000.0
"""The most audio ``transcribe()`` keeps to send again after a reconnect, long silences
shortened: two minutes (5.8 MB of PCM16 at 24 kHz, 1 MB of G.711). Reached by turns longer
than that, or a source longer than that without turn detection, with pauses no longer than
:func:`silence_kept_ms` (the audio after a transcribed turn is kept until the next turn's
transcript comes, since only the turn detector knows where that turn starts)."""

QUIET_DBFS = -50.0
"""Audio quieter than this (:func:`~realtime_sync.audio.level_dbfs`, per 10 ms) is silence
here: 20 dB under what the local server's turn detection hears as speech at its default
threshold (-30 dBFS), so that quiet speech is not taken for silence (a noisy room's hum
may not be either: its pauses then count, as before)."""

SERVER_VAD_SILENCE_MS = 500
"""Server VAD's ``silence_duration_ms`` when the setting does not say (the documented
default)."""
_PREFIX_PADDING_MS = 300  # server VAD's prefix_padding_ms when the setting does not say
# Semantic VAD's longest wait for more speech by eagerness ("auto" is "medium"), documented.
_SEMANTIC_WAIT_MS = {"low": 8000, "medium": 4000, "auto": 4000, "high": 2000}
_SILENCE_MARGIN_MS = 1000  # for a detector that decides a little late (a model, not a level)
_FRAME_MS = 10  # silence is found 10 ms at a time, as the turn detectors listen


def silence_kept_ms(detection: Mapping[str, Any] | None) -> float:
    """How much of a silence to keep: enough for the turn detector of ``detection`` (a
    ``turn_detection`` setting, None for none) to end the turn before it (its
    ``silence_duration_ms``, or semantic VAD's longest wait for its eagerness) and pad the
    turn after it (``prefix_padding_ms``), and a second more. Without turn detection, as
    much as server VAD's defaults need: a pause stays a pause."""
    settings: Mapping[str, Any] = detection or {}
    if settings.get("type") == "semantic_vad":
        # The default is "auto"; an eagerness not known here gets the longest wait.
        wait = _SEMANTIC_WAIT_MS.get(settings.get("eagerness", "auto"), _SEMANTIC_WAIT_MS["low"])
    else:
        wait = settings.get("silence_duration_ms") or SERVER_VAD_SILENCE_MS
    padding = settings.get("prefix_padding_ms") or _PREFIX_PADDING_MS
    return float(wait + padding + _SILENCE_MARGIN_MS)


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
        fmt: audio.AudioFormatSpec,
        silence_ms: float,
        limit_ms: float = RESEND_LIMIT_MS,
    ) -> None:
        self.timeline_ms = timeline_ms
        """Where the next audio starts on the session's timeline."""
        self._limit_ms = limit_ms
        self._silence_ms = silence_ms  # the most of a silence kept (see silence_kept_ms)
        self._fmt = fmt
        self._rate, self._width = audio.format_rate(fmt), audio.format_sample_width(fmt)
        self._frame = self._rate * _FRAME_MS // 1000 * self._width  # bytes
        # Pieces of the audio (a silence's rest left out between them), on the timeline.
        self._chunks: deque[tuple[float, float, bytes]] = deque()  # start, end, data
        self._kept_ms = 0.0
        self._quiet_ms = 0.0  # the silence the audio ends with, all of it (not just kept)
        self._lost_until: float | None = None  # the end of audio let go over the limit
        self._commits: deque[_Commit] = deque()  # committed items, oldest first
        self._commit_end = timeline_ms  # where the last commit ended

    def add(self, data: bytes, duration_ms: float) -> None:
        """Keep audio that follows what was kept (sent, or to be sent after a reconnect),
        less what a silence has beyond :func:`silence_kept_ms`."""
        start = self.timeline_ms
        self.timeline_ms = start + duration_ms
        for begin, end in self._audible(data):
            self._keep(start + self._ms(begin), start + self._ms(end), data[begin:end])
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
                # The cut is on the timeline: the piece's data has no silence left out.
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
        the old session's commits are forgotten. (A silence the audio ends with goes on:
        what follows is left out as before.)"""
        old = list(self._chunks)
        self._chunks.clear()
        self._kept_ms = self.timeline_ms = self._commit_end = 0.0
        self._commits.clear()
        for start, end, data in old:  # one after the other, without the gaps
            self._keep(self.timeline_ms, self.timeline_ms + end - start, data)
            self.timeline_ms += end - start
        return [data for _, _, data in old]

    def _audible(self, data: bytes) -> Iterator[tuple[int, int]]:
        """The spans (in bytes) of ``data`` to keep: all but the frames of a silence past
        the first ``silence_ms`` of it (counting the silence ``data`` follows)."""
        begin: int | None = None  # the start of the span being made
        for offset in range(0, len(data), self._frame):
            frame = data[offset : offset + self._frame]
            if audio.level_dbfs(frame, self._fmt) >= QUIET_DBFS:
                self._quiet_ms = 0.0
            elif self._quiet_ms >= self._silence_ms:  # enough of this silence is kept
                if begin is not None:
                    yield begin, offset
                    begin = None
                continue
            else:
                self._quiet_ms += self._ms(len(frame))
            if begin is None:
                begin = offset
        if begin is not None:
            yield begin, len(data)

    def _ms(self, size: int) -> float:
        return size * 1000 / (self._rate * self._width)

    def _keep(self, start: float, end: float, data: bytes) -> None:
        self._chunks.append((start, end, data))
        self._kept_ms += end - start

    def _forget_first(self) -> None:
        start, end, _ = self._chunks.popleft()
        self._kept_ms -= end - start
