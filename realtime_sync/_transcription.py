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

A reconnect (or a session rollover) does not end it. The new session gets the transcription
settings again and, first, the audio the old one had not transcribed yet
(:class:`~._transcription_resume.KeptAudio`, a long silence shortened to what turn detection
needs of it); the items whose transcripts had come are not sent again (see
:mod:`._transcription_run`, which runs it).
"""

from __future__ import annotations

import os
from collections.abc import Generator, Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, Literal, TypeAlias, TypeGuard, cast

from . import audio
from ._errors import ConfigurationError, WouldDeadlockError
from ._transcription_run import (
    InputFormat,
    TranscriptCompleted,
    TranscriptDelta,
    TranscriptFailed,
    TranscriptionError,
    TranscriptionRun,
    TranscriptPiece,
    check_idle,
)

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
_WHOLE = (str, os.PathLike, bytes, bytearray, memoryview, audio.AudioClip)  # read at once


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
            A file, clip or bytes source waits out a reconnect either way; what an
            iterable gives meanwhile follows the reconnect policy's ``gap_audio``.
        chunk_ms: Milliseconds of audio per ``input_audio_buffer.append``.
        timeout: Seconds to wait for each answer of the server: the session update's, and
            after the input the last transcripts; then :class:`RealtimeTimeoutError`.
        failures: ``"raise"`` a :class:`TranscriptionError` when an item fails, or
            ``"yield"`` a :class:`TranscriptFailed` and go on.

    The session is reconfigured: run it on a transcription connection
    (``RealtimeClient(intent="transcription")``) or a beta one. Raises
    :class:`TranscriptionError` when the server refuses an event sent here,
    :class:`ConnectionClosed` when the connection ends for good (``reconnect=False``,
    reconnecting gave up, or a reconnect finds more untranscribed audio than is kept, two
    minutes, where a silence longer than turn detection needs counts only that much: see
    ``RESEND_LIMIT_MS``; or what a send raises when it finds the connection gone first), and
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
    check_idle(client)
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
    run = TranscriptionRun(
        client,
        policy=client._supervisor.policy,
        gap=client._supervisor.gap,
        current_session=lambda: client._session,
        # Read at once, paced or not: it can wait out a reconnect, so none of it is dropped.
        waits=_read_at_once(source),
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


def _read_at_once(source: TranscriptionSource) -> TypeGuard[audio.AudioSource]:
    """Whether the source is a whole (a file, clip or bytes), not an iterable of chunks."""
    return isinstance(source, _WHOLE) or hasattr(source, "read")


def _chunks(source: TranscriptionSource, fmt: InputFormat, chunk_ms: int) -> Iterator[bytes]:
    """The source in ``fmt``, ``chunk_ms`` at a time (an iterable's chunks as they come)."""
    rate, width = audio.format_rate(fmt), audio.format_sample_width(fmt)
    if _read_at_once(source):
        data = audio.encode_for_format(source, fmt)
        yield from audio.chunks(data, ms=chunk_ms, rate=rate, sample_width=width)
        return
    for chunk in cast("Iterable[bytes | audio.AudioClip]", source):
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
