"""Transcription sessions: stream audio in, get transcripts out (``client.transcribe``).

:func:`transcribe` configures the connection's session for transcription (GA
``session.update`` with ``type: "transcription"``, beta ``transcription_session.update``),
streams a source into the input audio buffer, and yields the transcript as it arrives:
:class:`TranscriptDelta` pieces, then a :class:`TranscriptCompleted` per item. It ends
once the source is exhausted and every committed item's transcript is complete.

The end of the input is where a stream must be told apart from a pause. With turn detection
off, the tail is committed. With it on, enough silence follows the audio for the server to
close the turn; a barrier (the same session update again, whose answer comes after
everything sent before it) then tells whether speech is still open, which a commit ends.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import queue
import threading
import time
import weakref
from collections.abc import Generator, Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, Literal, TypeAlias, cast

from attrs import frozen

from . import audio
from ._errors import (
    ClientClosed,
    ConfigurationError,
    ConnectionClosed,
    RealtimeError,
    RealtimeTimeoutError,
    WouldDeadlockError,
)
from ._objects import ErrorDetail, TranscriptionUsage

if TYPE_CHECKING:
    from ._client import RealtimeClient

__all__ = [
    "TranscriptCompleted",
    "TranscriptDelta",
    "TranscriptFailed",
    "TranscriptPiece",
    "TranscriptionError",
    "transcribe",
]

InputFormat = Literal["pcm16", "g711_ulaw", "g711_alaw"]
TurnDetection = Literal["server_vad", "semantic_vad"] | Mapping[str, Any] | None
TranscriptionSource: TypeAlias = audio.AudioSource | Iterable[bytes | audio.AudioClip]
"""A WAV file, an :class:`~realtime_sync.audio.AudioClip`, PCM16 24 kHz mono bytes, or an
iterable of chunks (PCM16 24 kHz mono bytes or clips), e.g. from a microphone."""

_GA_FORMATS: Mapping[str, Mapping[str, Any]] = {
    "pcm16": {"type": "audio/pcm", "rate": audio.SESSION_RATE},
    "g711_ulaw": {"type": "audio/pcmu"},
    "g711_alaw": {"type": "audio/pcma"},
}
_LOGPROBS = "item.input_audio_transcription.logprobs"
_MIN_COMMIT_MS = 100.0  # servers refuse to commit less (input_audio_buffer_commit_empty)
_DEFAULT_SILENCE_MS = 500  # server VAD's silence_duration_ms in transcription sessions
_TAIL_MARGIN_MS = 100  # silence beyond the turn detector's, so its last frame is in
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


@frozen
class TranscriptFailed:
    """An item could not be transcribed (yielded with ``failures="yield"``)."""

    item_id: str
    """The user audio item."""
    error: ErrorDetail
    """Why, as the server said."""
    text: str = ""
    """Always ``""``: no text, so printing pieces' ``text`` skips it."""


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


def transcribe(
    client: RealtimeClient,
    source: TranscriptionSource,
    *,
    model: str = "gpt-4o-transcribe",
    language: str | None = None,
    prompt: str | None = None,
    turn_detection: TurnDetection = "server_vad",
    noise_reduction: Literal["near_field", "far_field"] | None = None,
    input_format: InputFormat = "pcm16",
    logprobs: bool = False,
    realtime: bool = False,
    chunk_ms: int = 100,
    timeout: float = 30.0,
    failures: Literal["raise", "yield"] = "raise",
) -> Generator[TranscriptPiece, None, None]:
    """Transcribe ``source`` on this connection, yielding the transcript as it arrives.

    >>> with RealtimeClient(intent="transcription") as client:
    ...     for piece in client.transcribe("call.wav"):
    ...         print(piece.text, end="", flush=True)

    Args:
        source: A WAV file (path or binary file object), an AudioClip, PCM16 24 kHz mono
            bytes, or an iterable of chunks (bytes in that format, or clips), such as a
            microphone's; converted to ``input_format``.
        model, language, prompt: The transcription settings.
        turn_detection: ``"server_vad"`` (default), ``"semantic_vad"``, a full setting, or
            None: one item for the whole source, committed at its end.
        noise_reduction: ``"near_field"``, ``"far_field"`` or None (off).
        input_format: ``"pcm16"`` (24 kHz), ``"g711_ulaw"`` or ``"g711_alaw"`` (8 kHz).
        logprobs: Ask for log probabilities (on the events; see the handlers).
        realtime: Send the audio at its real pace (True) or as fast as possible (False);
            an iterable source that blocks, like a microphone, sets its own pace anyway.
        chunk_ms: Milliseconds of audio per ``input_audio_buffer.append``.
        timeout: Seconds to wait for each answer of the server: the session update's, and
            after the input the last transcripts; then :class:`RealtimeTimeoutError`.
        failures: ``"raise"`` a :class:`TranscriptionError` when an item fails, or
            ``"yield"`` a :class:`TranscriptFailed` and go on.

    The session is reconfigured: run it on a transcription connection
    (``RealtimeClient(intent="transcription")``) or a beta one. Raises
    :class:`TranscriptionError` when the server refuses an event sent here,
    :class:`ConnectionClosed` when the connection ends (also on a reconnect: the audio in
    flight is lost; or what a send raises when it finds the connection gone first), and
    :class:`WouldDeadlockError` when called from a handler. Closing the generator early
    (``break``) stops sending; the events of the audio already sent still reach handlers.

    One transcription at a time per client: their audio would mix in the one input buffer.
    While a ``transcribe()`` generator is running (from its first piece until it ends or is
    closed), another one raises :class:`TranscriptionError`. When an iterable source raises
    (a microphone failing, a chunk that is not audio), the audio it had sent is cleared from
    the server's input buffer (``input_audio_buffer.clear``) and the exception goes on to
    the caller.
    """
    if client._dispatcher.on_dispatcher_thread():
        raise WouldDeadlockError(
            "transcribe() from an event handler: handlers run on the dispatcher thread, "
            "which delivers the transcripts. Call it from another thread."
        )
    _check_idle(client)
    if failures not in ("raise", "yield"):
        raise ConfigurationError(f"failures must be 'raise' or 'yield'; got {failures!r}")
    if input_format not in _GA_FORMATS:
        raise ConfigurationError(
            f"input_format must be one of {', '.join(_GA_FORMATS)}; got {input_format!r}"
        )
    detection = {"type": turn_detection} if isinstance(turn_detection, str) else turn_detection
    session = _session_settings(
        client.dialect,
        transcription={
            name: value
            for name, value in (("model", model), ("language", language), ("prompt", prompt))
            if value is not None
        },
        turn_detection=detection,
        noise_reduction=None if noise_reduction is None else {"type": noise_reduction},
        input_format=input_format,
        logprobs=logprobs,
    )
    run = _Run(
        client,
        session=session,
        detection=detection,
        fmt=input_format,
        failures=failures,
        timeout=timeout,
        chunk_ms=chunk_ms,
    )
    return run.pieces(_chunks(source, input_format, chunk_ms), realtime=realtime)


def _session_settings(
    dialect: str,
    *,
    transcription: Mapping[str, Any],
    turn_detection: Mapping[str, Any] | None,
    noise_reduction: Mapping[str, Any] | None,
    input_format: InputFormat,
    logprobs: bool,
) -> dict[str, Any]:
    """The transcription session to ask for, in the dialect's shape."""
    session: dict[str, Any]
    if dialect == "beta":
        session = {
            "input_audio_format": input_format,
            "input_audio_transcription": dict(transcription),
            "turn_detection": turn_detection,
            "input_audio_noise_reduction": noise_reduction,
        }
    else:
        audio_input = {
            "format": dict(_GA_FORMATS[input_format]),
            "transcription": dict(transcription),
            "turn_detection": turn_detection,
            "noise_reduction": noise_reduction,
        }
        session = {"type": "transcription", "audio": {"input": audio_input}}
    if logprobs:
        session["include"] = [_LOGPROBS]
    return session


def _chunks(source: TranscriptionSource, fmt: InputFormat, chunk_ms: int) -> Iterator[bytes]:
    """The source in ``fmt``, ``chunk_ms`` at a time (an iterable's chunks as they come)."""
    rate, width = audio.format_rate(fmt), audio.format_sample_width(fmt)
    whole = (str, os.PathLike, bytes, bytearray, memoryview, audio.AudioClip)
    if isinstance(source, whole) or hasattr(source, "read"):
        data = audio.encode_for_format(cast("audio.AudioSource", source), fmt)
        yield from audio.chunks(data, ms=chunk_ms, rate=rate, sample_width=width)
        return
    for chunk in source:
        if not isinstance(chunk, (bytes, bytearray, memoryview, audio.AudioClip)):
            hint = (
                " (a file path? pass the file as the source itself)"
                if isinstance(chunk, (str, os.PathLike))
                else ""
            )
            raise ConfigurationError(
                "transcribe(): the chunks of an iterable source are PCM16 bytes or "
                f"AudioClips; got a {type(chunk).__name__}{hint}"
            )
        data = audio.encode_for_format(chunk, fmt)
        if data:
            yield data


class _Run:
    """One call of :func:`transcribe`: the events it listens to and what they tell."""

    def __init__(
        self,
        client: RealtimeClient,
        *,
        session: Mapping[str, Any],
        detection: Mapping[str, Any] | None,
        fmt: InputFormat,
        failures: str,
        timeout: float,
        chunk_ms: int,
    ) -> None:
        self._client = client
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

    def pieces(
        self, chunks: Iterator[bytes], *, realtime: bool
    ) -> Generator[TranscriptPiece, None, None]:
        with _running_lock:
            _check_idle(self._client)
            _running.add(self._client)
        handler = self._events.put
        try:
            for name in _EVENTS:
                self._client.on(name, handler)
            yield from self._update()
            rate, width = audio.format_rate(self._fmt), audio.format_sample_width(self._fmt)
            start, sent_ms = time.monotonic(), 0.0
            source = self._with_tail(chunks)
            while True:
                try:
                    chunk = next(source)
                except StopIteration:
                    break
                except BaseException:
                    if sent_ms > 0:  # its audio must not open the next transcription
                        self._clear_input()
                    raise
                if realtime:  # each chunk when the audio before it has played
                    yield from self._until(lambda: False, start + sent_ms / 1000, fail=False)
                self._client.input_audio_buffer.append(audio=chunk, event_id=self._next_id())
                sent_ms += audio.duration_ms(chunk, rate=rate, sample_width=width)
                yield from self._drain()
            if self._detection is not None:
                yield from self._update(barrier=True)  # answered once the VAD heard it all
            # Without turn detection nothing was committed yet: the whole source is one item.
            if self._in_speech or (self._detection is None and sent_ms >= _MIN_COMMIT_MS):
                yield from self._commit()
            yield from self._until(lambda: not self._said, time.monotonic() + self._timeout)
        finally:
            self._client.off(None, handler)
            with _running_lock:
                _running.discard(self._client)

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
        silence = self._detection.get("silence_duration_ms") or _DEFAULT_SILENCE_MS
        frames = audio.SESSION_RATE * (int(silence) + _TAIL_MARGIN_MS) // 1000
        tail = audio.encode_for_format(bytes(2 * frames), self._fmt)
        rate, width = audio.format_rate(self._fmt), audio.format_sample_width(self._fmt)
        yield from audio.chunks(tail, ms=self._chunk_ms, rate=rate, sample_width=width)

    def _next_id(self) -> str:
        return f"{self._prefix}{next(self._numbers)}"

    def _update(self, *, barrier: bool = False) -> Iterator[TranscriptPiece]:
        """Send the session update (as a barrier: one that changes nothing) and wait for
        its answer."""
        wanted = self._acks + 1
        beta = self._client.dialect == "beta"
        kind = "transcription_session.update" if beta else "session.update"
        session = self._session
        if barrier:
            session = {} if beta else {"type": "transcription"}
        self._client.send({"type": kind, "event_id": self._next_id(), "session": session})
        yield from self._until(lambda: self._acks >= wanted, time.monotonic() + self._timeout)

    def _commit(self) -> Iterator[TranscriptPiece]:
        wanted = self._commits + 1
        self._client.input_audio_buffer.commit(event_id=self._next_id())
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
        """Handle events until ``done()`` or ``deadline`` (``fail``: then raise)."""
        while not done():
            remaining = deadline - time.monotonic()
            try:
                event = self._events.get(timeout=max(remaining, 0.0))
            except queue.Empty:
                if not fail:
                    return
                raise RealtimeTimeoutError(
                    f"transcribe(): no answer from the server within {self._timeout} s "
                    f"({len(self._said)} transcript(s) outstanding)"
                ) from None
            yield from self._handle(event)

    def _handle(self, event: Any) -> Iterator[TranscriptPiece]:
        kind = event.type
        if kind.endswith("input_audio_transcription.delta"):
            text = event.delta or ""
            self._said[event.item_id] = self._said.get(event.item_id, "") + text
            if text:
                yield TranscriptDelta(item_id=event.item_id, text=text)
        elif kind.endswith("input_audio_transcription.completed"):
            said = self._said.pop(event.item_id, "")
            rest = event.transcript[len(said) :] if event.transcript.startswith(said) else ""
            yield TranscriptCompleted(
                item_id=event.item_id, text=rest, transcript=event.transcript, usage=event.usage
            )
        elif kind.endswith("input_audio_transcription.failed"):
            self._said.pop(event.item_id, None)
            if self._failures == "yield":
                yield TranscriptFailed(item_id=event.item_id, error=event.error)
            else:
                raise TranscriptionError(
                    f"transcription of item {event.item_id} failed: {event.error.message}",
                    item_id=event.item_id,
                    error=event.error,
                )
        elif kind == "input_audio_buffer.committed":
            self._commits += 1
            self._in_speech = False
            self._said.setdefault(event.item_id, "")
        elif kind.startswith("input_audio_buffer.speech_"):
            self._in_speech = kind.endswith("started")
        elif kind.endswith("session.updated"):
            self._acks += 1
        elif kind == "error":
            self._check_error(event.error)
        else:
            _end_of_connection(event)

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


# The clients with a transcribe() running: one at a time per client.
_running: weakref.WeakSet[RealtimeClient] = weakref.WeakSet()
_running_lock = threading.Lock()


def _check_idle(client: RealtimeClient) -> None:
    if client in _running:
        raise TranscriptionError(
            "transcribe(): another transcribe() is running on this client, and their audio "
            "would mix in its one input buffer; finish or close() that one first, or use "
            "another client"
        )


def _end_of_connection(event: Any) -> None:
    """Raise for ``client.closed`` and ``client.reconnecting``: the stream is cut."""
    if event.type == "client.closed":
        if event.requested:
            raise ClientClosed("transcribe(): the client was closed")
        if isinstance(event.error, RealtimeError):
            raise event.error
    raise ConnectionClosed(
        "transcribe(): the connection was lost; the audio in flight was not transcribed",
        code=getattr(event, "code", None),
        reason=getattr(event, "reason", None),
    )
