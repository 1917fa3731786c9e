"""One ``transcribe()`` at work: the pieces it yields, and the run that makes them.

:class:`TranscriptionRun` sends the session update, streams the chunks, closes the last turn
(see :mod:`._transcription`) and turns the server's events into pieces. It survives a
reconnect or a session rollover: the client's ``client.reconnecting`` (or a send queue that
holds) pauses it, nothing of it is sent until the new session is there, and the news of that
session (``client.reconnected``, ``client.session_rolled_over``) resumes it: the settings
again, then the audio the old session had not transcribed (:class:`KeptAudio`, long
silences shortened: they do not count toward its limit), and the phase it was in (the end
of the input is closed and waited for again). The items that audio becomes are marked
``resumed``; items already transcribed are not sent again.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import logging
import math
import os
import queue
import threading
import time
import weakref
from collections.abc import Callable, Generator, Iterator, Mapping
from typing import TYPE_CHECKING, Any, Literal, TypeAlias

from attrs import frozen

from . import audio
from ._errors import (
    ClientClosed,
    ConnectionClosed,
    NotConnectedError,
    RealtimeError,
    RealtimeTimeoutError,
    TransportError,
)
from ._gap import SendQueue
from ._objects import ErrorDetail, Session, TranscriptionUsage
from ._reconnect import ReconnectPolicy
from ._transcription_resume import (
    RESEND_LIMIT_MS,
    SERVER_VAD_SILENCE_MS,
    KeptAudio,
    silence_kept_ms,
)

if TYPE_CHECKING:
    from ._client import RealtimeClient

__all__ = [
    "InputFormat",
    "TranscriptCompleted",
    "TranscriptDelta",
    "TranscriptFailed",
    "TranscriptPiece",
    "TranscriptionError",
    "TranscriptionRun",
    "check_idle",
]

logger = logging.getLogger("realtime_sync")

InputFormat = Literal["pcm16", "g711_ulaw", "g711_alaw"]
_MIN_COMMIT_MS = 100.0  # servers refuse to commit less (input_audio_buffer_commit_empty)
_TAIL_MARGIN_MS = 100  # silence beyond the turn detector's, so its last frame is in
_LONGEST_WAIT = 60.0  # seconds of one wait for an event (a queue takes no infinite timeout)
_EVENTS = (
    "conversation.item.input_audio_transcription.delta",
    "conversation.item.input_audio_transcription.completed",
    "conversation.item.input_audio_transcription.failed",
    "input_audio_buffer.committed",
    "input_audio_buffer.speech_started",
    "input_audio_buffer.speech_stopped",
    "session.updated",
    "transcription_session.updated",
    "error",
    "client.closed",
    "client.reconnecting",
    "client.reconnected",
    "client.session_rolled_over",
)


@frozen
class TranscriptDelta:
    """New text of an item's transcript, as the server streams it."""

    item_id: str
    """The user audio item being transcribed."""
    text: str
    """The new text."""


@frozen
class TranscriptCompleted:
    """An item's transcript is complete."""

    item_id: str
    """The user audio item."""
    text: str
    """What the deltas had not said yet (usually ``""``; all of it when the model sent no
    deltas), so that printing every piece's ``text`` prints each transcript once."""
    transcript: str
    """The whole transcript of the item."""
    usage: TranscriptionUsage | None
    """What the transcription cost (tokens, or seconds of audio), when the server says."""
    resumed: bool = False
    """The item's audio was sent again after a reconnect: the lost connection had had all
    or part of it, and the deltas of an item cut off there may have been yielded already."""


@frozen
class TranscriptFailed:
    """An item could not be transcribed (yielded with ``failures="yield"``)."""

    item_id: str
    """The user audio item."""
    error: ErrorDetail
    """Why, as the server said."""
    text: str = ""
    """Always ``""``: no text, so printing pieces' ``text`` skips it."""
    resumed: bool = False
    """The item's audio was sent again after a reconnect (see
    :attr:`TranscriptCompleted.resumed`)."""


TranscriptPiece: TypeAlias = TranscriptDelta | TranscriptCompleted | TranscriptFailed


class TranscriptionError(RealtimeError):
    """The server failed to transcribe an item, or refused what :func:`transcribe` sent; or
    another :func:`transcribe` is running on the client (``item_id`` and ``error`` None)."""

    def __init__(
        self, message: str, *, item_id: str | None = None, error: ErrorDetail | None = None
    ) -> None:
        super().__init__(message)
        self.item_id = item_id
        """The item whose transcription failed; None for a refused client event."""
        self.error = error
        """The server's error (``code``, ``message``, ``param``...)."""


class _Resume(Exception):
    """A new session replaced the lost one (raised out of the event handling)."""

    def __init__(self, report: Any) -> None:
        super().__init__("resume")
        self.report = report


class TranscriptionRun:
    """One call of :func:`transcribe`: the events it listens to and what they tell.

    Besides the client's public API it needs its reconnect ``policy`` (None with
    ``reconnect=False``), the ``gap`` queue that holds sends between connections, and
    ``current_session``, the session of the current connection (None before one)."""

    def __init__(
        self,
        client: RealtimeClient,
        *,
        policy: ReconnectPolicy | None,
        gap: SendQueue,
        current_session: Callable[[], Session | None],
        waits: bool,
        session: Mapping[str, Any],
        detection: Mapping[str, Any] | None,
        fmt: InputFormat,
        failures: str,
        timeout: float,
        chunk_ms: int,
    ) -> None:
        self._client = client
        self._policy = policy
        self._gap = gap
        self._current_session = current_session
        self._waits = waits  # the source waits out a reconnect (else gap_audio applies)
        self._session = session
        self._detection = detection
        self._fmt = fmt
        self._failures = failures
        self._timeout = timeout
        self._chunk_ms = chunk_ms
        self._events: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._prefix = f"transcribe_{os.urandom(6).hex()}_"  # our events' ids
        self._numbers = itertools.count(1)
        self._said: dict[str, str] = {}  # committed items not complete -> text yielded
        self._in_speech = False
        self._acks = 0  # session updates answered
        self._commits = 0  # input_audio_buffer.committed seen
        self._commit_refused = False  # our final commit found nothing to commit
        self._kept = KeptAudio(
            _timeline_of(client, self._session_id()),
            fmt=fmt,
            silence_ms=silence_kept_ms(detection),
            limit_ms=RESEND_LIMIT_MS,
        )
        self._starts: dict[str, float] = {}  # speech_started's audio_start_ms, by item
        self._stops: dict[str, float] = {}  # speech_stopped's audio_end_ms, by item
        self._resent_ms = 0.0  # audio sent again at the start of this session
        self._resumed: set[str] = set()  # items made of it
        self._paused = False  # between connections: nothing is sent
        self._gap_ms = self._gap_dropped_ms = 0.0  # source audio kept, dropped meanwhile

    def pieces(
        self, chunks: Iterator[bytes], *, realtime: bool
    ) -> Generator[TranscriptPiece, None, None]:
        with _running_lock:
            check_idle(self._client)
            _running.add(self._client)
        handler = self._events.put
        self._gap.exclude(self._prefix)  # our sends in a gap are not queued: the resume sends them
        try:
            for name in _EVENTS:
                self._client.on(name, handler)
            yield from self._guarded(self._update)
            rate, width = audio.format_rate(self._fmt), audio.format_sample_width(self._fmt)
            start, sent_ms = time.monotonic(), 0.0
            source = self._with_tail(chunks)
            while True:
                if self._paused and self._waits:  # read on once the new session is there
                    yield from self._guarded(functools.partial(self._pace, math.inf))
                try:
                    chunk = next(source)
                except StopIteration:
                    break
                except BaseException:
                    if sent_ms > 0:  # its audio must not open the next transcription
                        self._clear_input()
                    raise
                if realtime:  # each chunk when the audio before it has played
                    at = start + sent_ms / 1000
                    yield from self._guarded(functools.partial(self._pace, at))
                ms = audio.duration_ms(chunk, rate=rate, sample_width=width)
                yield from self._guarded(functools.partial(self._stream, chunk, ms))
                sent_ms += ms
            yield from self._guarded(self._finish, retry=True)
        finally:
            self._client.off(None, handler)
            self._gap.readmit(self._prefix)
            _remember_timeline(self._client, self._session_id(), self._kept.timeline_ms)
            with _running_lock:
                _running.discard(self._client)

    def _pace(self, until: float) -> Iterator[TranscriptPiece]:
        """Handle events until ``until`` (a monotonic time; not while the client is
        between connections: the resume ends the wait)."""
        yield from self._until(lambda: False, until, fail=False)

    def _finish(self) -> Iterator[TranscriptPiece]:
        """After the input: close the last turn and wait for every transcript."""
        if self._detection is not None:
            yield from self._update(barrier=True)  # answered once the VAD heard it all
        # Without turn detection nothing was committed yet: the whole source is one item.
        if self._in_speech or (
            self._detection is None and self._kept.uncommitted_ms >= _MIN_COMMIT_MS
        ):
            yield from self._commit()
        yield from self._until(lambda: not self._said, time.monotonic() + self._timeout)

    def _guarded(
        self, phase: Callable[[], Iterator[TranscriptPiece]], *, retry: bool = False
    ) -> Iterator[TranscriptPiece]:
        """Run ``phase``; when a new session replaces the lost one meanwhile, resume on it
        and (``retry``) run the phase again there."""
        while True:
            try:
                yield from phase()
                return
            except _Resume as resume:
                # Lost again while resuming: resume again.
                yield from self._guarded(functools.partial(self._resume, resume.report))
            if not retry:
                return

    def _resume(self, report: Any) -> Iterator[TranscriptPiece]:
        """Bring the new session to where the lost one was, as far as transcripts go."""
        self._paused = False
        if not self._kept.complete:
            raise ConnectionClosed(
                "transcribe(): the connection was lost with more than "
                f"{RESEND_LIMIT_MS / 1000:.0f} s of audio not transcribed yet (long silences "
                "shortened), more than is kept to send again; the transcription cannot go on "
                "without a gap"
            )
        if self._gap_dropped_ms:
            logger.warning(
                "transcribe(): %.0f ms of audio from the source while reconnecting were "
                "dropped (gap_audio=%r)",
                self._gap_dropped_ms,
                None if self._policy is None else self._policy.gap_audio,
            )
        self._said.clear()  # cut off: their audio is sent again and becomes new items
        self._starts.clear()
        self._stops.clear()
        self._resumed.clear()
        self._in_speech = self._commit_refused = False
        self._gap_ms = self._gap_dropped_ms = 0.0
        # The replay's own session.update (GA) is answered before ours: from -1 to 0.
        self._acks = -1 if getattr(report, "session_updated", False) else 0
        yield from self._update()  # the replay may not have had it (beta): send it anyway
        chunks = self._kept.restart()
        self._resent_ms = self._kept.timeline_ms
        logger.info("transcribe(): resuming; %.0f ms of audio sent again", self._resent_ms)
        for chunk in chunks:
            sent = yield from self._send(
                functools.partial(self._client.input_audio_buffer.append, audio=chunk)
            )
            if not sent:  # lost again: the next resume sends it all
                return
            yield from self._drain()

    def _stream(self, chunk: bytes, ms: float) -> Iterator[TranscriptPiece]:
        """Send one chunk of the source, or keep it (or not) while reconnecting."""
        try:
            live = yield from self._live()
        except _Resume:
            self._kept.add(chunk, ms)  # read before the news of the new session: sent there
            raise
        if not live:
            self._keep_gap_audio(chunk, ms)
            return
        self._kept.add(chunk, ms)
        yield from self._send(
            functools.partial(self._client.input_audio_buffer.append, audio=chunk)
        )
        yield from self._drain()

    def _keep_gap_audio(self, chunk: bytes, ms: float) -> None:
        """A chunk read between connections: kept to send after the rest, as the client's
        ``gap_audio`` says for a live (iterable) source; a file's, clip's or bytes', paced
        or not, is always kept (the run reads no more of it until the new session)."""
        policy = self._policy
        if self._waits or (
            policy is not None
            and policy.gap_audio == "queue"
            and not self._gap_dropped_ms  # once some was dropped, later audio leaves a hole
            and self._gap_ms + ms <= policy.gap_audio_seconds * 1000
        ):
            self._gap_ms += ms
            self._kept.add(chunk, ms)
        else:
            self._gap_dropped_ms += ms

    def _live(self) -> Generator[TranscriptPiece, None, bool]:
        """Whether our events may be sent now: not while the client is between
        connections, or before the news of a new session has been handled (the
        ``client.reconnecting`` of a loss is put before that session can start)."""
        while True:
            yield from self._drain()
            if self._paused or self._gap.holding:
                self._paused = True
                return False
            if self._events.empty():
                return True

    def _send(self, send: Callable[..., object]) -> Generator[TranscriptPiece, None, bool]:
        """Send one of our events now, or not at all (then the resume does what it was
        for); whether it went out."""
        if not (yield from self._live()):
            return False
        event_id = self._next_id()
        try:
            send(event_id=event_id)
        except (NotConnectedError, TransportError) as exc:
            yield from self._drain()  # its closing event, if it came, says how it ended
            raise ConnectionClosed(
                f"transcribe(): the connection was lost ({exc}); "
                f"{self._kept.uncommitted_ms:.0f} ms of audio were not transcribed"
            ) from exc
        # Lost just before the send, which the client then held back (see pieces()).
        if self._gap.withdraw(event_id):
            self._paused = True
            return False
        return True

    def _clear_input(self) -> None:
        """Empty the server's input audio buffer (best effort: a connection that is gone
        has no buffer left to empty)."""
        with contextlib.suppress(RealtimeError):
            self._client.input_audio_buffer.clear(event_id=self._next_id())

    def _with_tail(self, chunks: Iterator[bytes]) -> Iterator[bytes]:
        """The chunks, then (with turn detection) the silence that closes the last turn."""
        yield from chunks
        if self._detection is None:
            return
        self._waits = True  # the tail is ours, not a live source's: never dropped
        silence = self._detection.get("silence_duration_ms") or SERVER_VAD_SILENCE_MS
        frames = audio.SESSION_RATE * (int(silence) + _TAIL_MARGIN_MS) // 1000
        tail = audio.encode_for_format(bytes(2 * frames), self._fmt)
        rate, width = audio.format_rate(self._fmt), audio.format_sample_width(self._fmt)
        yield from audio.chunks(tail, ms=self._chunk_ms, rate=rate, sample_width=width)

    def _session_id(self) -> str | None:
        session = self._current_session()
        return None if session is None else session.id

    def _next_id(self) -> str:
        return f"{self._prefix}{next(self._numbers)}"

    def _update(self, *, barrier: bool = False) -> Iterator[TranscriptPiece]:
        """Send the session update (as a barrier: one that changes nothing) and wait for
        its answer."""
        wanted = max(self._acks, 0) + 1
        beta = self._client.dialect == "beta"
        kind = "transcription_session.update" if beta else "session.update"
        session = self._session
        if barrier:
            session = {} if beta else {"type": "transcription"}
        yield from self._send(
            lambda event_id: self._client.send(
                {"type": kind, "event_id": event_id, "session": session}
            )
        )
        yield from self._until(lambda: self._acks >= wanted, time.monotonic() + self._timeout)

    def _commit(self) -> Iterator[TranscriptPiece]:
        wanted = self._commits + 1
        yield from self._send(self._client.input_audio_buffer.commit)
        yield from self._until(
            lambda: self._commits >= wanted or self._commit_refused,
            time.monotonic() + self._timeout,
        )

    def _drain(self) -> Iterator[TranscriptPiece]:
        """What has arrived, without waiting."""
        while True:
            try:
                event = self._events.get_nowait()
            except queue.Empty:
                return
            yield from self._handle(event)

    def _until(self, done: Any, deadline: float, *, fail: bool = True) -> Iterator[TranscriptPiece]:
        """Handle events until ``done()`` or ``deadline`` (``fail``: then raise; not while
        the client is between connections, where no answer can come)."""
        while not done():
            remaining = deadline - time.monotonic()
            try:
                event = self._events.get(timeout=min(max(remaining, 0.0), _LONGEST_WAIT))
            except queue.Empty:
                if time.monotonic() < deadline:
                    continue
                if not fail:
                    return
                if self._paused:
                    deadline = time.monotonic() + self._timeout
                    continue
                raise RealtimeTimeoutError(
                    f"transcribe(): no answer from the server within {self._timeout} s "
                    f"({len(self._said)} transcript(s) outstanding)"
                ) from None
            yield from self._handle(event)

    def _handle(self, event: Any) -> Iterator[TranscriptPiece]:
        kind = event.type
        if "input_audio_transcription." in kind and event.item_id not in self._said:
            return  # an item this run did not commit (an earlier run's, the app's): not ours
        if kind.endswith("input_audio_transcription.delta"):
            text = event.delta or ""
            self._said[event.item_id] = self._said.get(event.item_id, "") + text
            if text:
                yield TranscriptDelta(item_id=event.item_id, text=text)
        elif kind.endswith("input_audio_transcription.completed"):
            said = self._said.pop(event.item_id, "")
            rest = event.transcript[len(said) :] if event.transcript.startswith(said) else ""
            self._kept.transcribed(event.item_id)
            yield TranscriptCompleted(
                item_id=event.item_id,
                text=rest,
                transcript=event.transcript,
                usage=event.usage,
                resumed=event.item_id in self._resumed,
            )
        elif kind.endswith("input_audio_transcription.failed"):
            self._said.pop(event.item_id, None)
            self._kept.transcribed(event.item_id)
            if self._failures == "yield":
                yield TranscriptFailed(
                    item_id=event.item_id,
                    error=event.error,
                    resumed=event.item_id in self._resumed,
                )
            else:
                raise TranscriptionError(
                    f"transcription of item {event.item_id} failed: {event.error.message}",
                    item_id=event.item_id,
                    error=event.error,
                )
        elif kind == "input_audio_buffer.committed":
            self._committed(event.item_id)
        elif kind == "input_audio_buffer.speech_started":
            self._in_speech = True
            self._starts[event.item_id] = event.audio_start_ms
        elif kind == "input_audio_buffer.speech_stopped":
            self._in_speech = False
            self._stops[event.item_id] = event.audio_end_ms
        elif kind.endswith("session.updated"):
            self._acks += 1
        elif kind == "error":
            self._check_error(event.error)
        elif kind == "client.reconnecting":
            self._paused = True
        elif kind in ("client.reconnected", "client.session_rolled_over"):
            raise _Resume(event.report)
        else:
            self._closed(event)

    def _committed(self, item_id: str) -> None:
        self._commits += 1
        self._in_speech = False
        self._said.setdefault(item_id, "")
        # Turn detection says where the item ends; a commit of ours takes all that was sent.
        start = self._kept.committed(item_id, self._stops.pop(item_id, None))
        if self._starts.pop(item_id, start) < self._resent_ms:
            self._resumed.add(item_id)

    def _check_error(self, error: ErrorDetail) -> None:
        if not (error.event_id or "").startswith(self._prefix):
            return  # not ours: the app's handlers see it
        if error.code == "input_audio_buffer_commit_empty":
            self._commit_refused = True  # the turn detector had already committed it all
            return
        raise TranscriptionError(
            f"the server refused an event of transcribe(): {error.message} "
            f"(code {error.code}, param {error.param})",
            error=error,
        )

    def _closed(self, event: Any) -> None:
        """``client.closed``: the connection ended for good."""
        if event.requested:
            raise ClientClosed("transcribe(): the client was closed")
        if isinstance(event.error, RealtimeError) and not isinstance(event.error, ConnectionClosed):
            raise event.error
        raise ConnectionClosed(
            "transcribe(): the connection was lost"
            + (" and reconnecting gave up" if event.attempts else "")
            + f"; {self._kept.uncommitted_ms:.0f} ms of audio were not transcribed",
            code=event.code,
            reason=event.reason,
            error=getattr(event.error, "error", None),
        ) from event.error


# The clients with a transcribe() running: one at a time per client.
_running: weakref.WeakSet[RealtimeClient] = weakref.WeakSet()
_running_lock = threading.Lock()


def check_idle(client: RealtimeClient) -> None:
    if client in _running:
        raise TranscriptionError(
            "transcribe(): another transcribe() is running on this client, and their audio "
            "would mix in its one input buffer; finish or close() that one first, or use "
            "another client"
        )


# Where each client's session timeline stood at the end of its last transcribe(): turn
# detection counts the audio of the whole session, and a run must know where its own starts.
_timelines: weakref.WeakKeyDictionary[RealtimeClient, tuple[str, float]] = (
    weakref.WeakKeyDictionary()
)


def _timeline_of(client: RealtimeClient, session_id: str | None) -> float:
    """Where the timeline of the client's session ``session_id`` stands (0 if it is new)."""
    known, timeline_ms = _timelines.get(client, (None, 0.0))
    return timeline_ms if known is not None and known == session_id else 0.0


def _remember_timeline(client: RealtimeClient, session_id: str | None, timeline_ms: float) -> None:
    if session_id is not None:
        _timelines[client] = (session_id, timeline_ms)
