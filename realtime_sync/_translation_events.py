"""Realtime translation: the events of ``/v1/realtime/translations``, typed and decoded.

Translation sessions have a small protocol of their own, apart from both Realtime
dialects: the client sends ``session.update``, ``session.input_audio_buffer.append`` and
``session.close``; the server sends ``session.created``, ``session.updated``,
``session.input_transcript.delta``, ``session.output_transcript.delta``,
``session.output_audio.delta``, ``session.closed`` and the same ``error`` event as the
Realtime API (so it decodes to :class:`~realtime_sync.events.ErrorEvent`). The names and
fields are those of the official ``openai`` package's ``RealtimeTranslation*`` types.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any

import attrs
from attrs import frozen

from ._client_events import ClientEvent
from ._errors import UnknownEventTypeError
from ._local_events import InvalidFrameEvent
from ._models import Model
from ._server_events import GenericEvent, ServerEvent, decode_event
from ._session_objects import NoiseReduction

__all__ = [
    "TRANSLATION_CLIENT_EVENTS",
    "TRANSLATION_CLIENT_EVENT_CLASSES",
    "TRANSLATION_SERVER_EVENTS",
    "TRANSLATION_SERVER_EVENT_CLASSES",
    "TranslationAudio",
    "TranslationAudioInput",
    "TranslationAudioOutput",
    "TranslationInputAudioBufferAppendEvent",
    "TranslationInputTranscriptDeltaEvent",
    "TranslationInputTranscription",
    "TranslationOutputAudioDeltaEvent",
    "TranslationOutputTranscriptDeltaEvent",
    "TranslationSession",
    "TranslationSessionCloseEvent",
    "TranslationSessionClosedEvent",
    "TranslationSessionEvent",
    "TranslationSessionUpdateEvent",
    "check_translation_pattern",
    "decode_translation_event",
]


# --- the session ---------------------------------------------------------------------------


@frozen(kw_only=True)
class TranslationInputTranscription(Model):
    """``audio.input.transcription``: transcribe the source speech too."""

    model: str | None
    """The transcription model of the ``session.input_transcript.delta`` events."""


@frozen(kw_only=True)
class TranslationAudioInput(Model):
    """``audio.input`` of a translation session."""

    noise_reduction: NoiseReduction | None
    """Noise reduction of the input audio (``near_field``/``far_field``), None when off."""
    transcription: TranslationInputTranscription | None
    """Source-language transcription, None when off (no input transcript deltas)."""


@frozen(kw_only=True)
class TranslationAudioOutput(Model):
    """``audio.output`` of a translation session."""

    language: str | None
    """The language translated into (e.g. ``"es"``)."""


@frozen(kw_only=True)
class TranslationAudio(Model):
    """``audio`` of a translation session."""

    input: TranslationAudioInput | None
    """What is done with the source audio."""
    output: TranslationAudioOutput | None
    """What the translation is made into."""


@frozen(kw_only=True)
class TranslationSession(Model):
    """A translation session, as ``session.created`` and ``session.updated`` carry it."""

    id: str | None
    """The session's id (``sess_...``)."""
    type: str | None
    """Always ``"translation"``."""
    model: str | None
    """The translation model, fixed at creation."""
    expires_at: int | None
    """When the session ends, in seconds since the epoch."""
    audio: TranslationAudio | None
    """Its input and output settings."""


# --- server events -------------------------------------------------------------------------


@frozen(kw_only=True)
class TranslationSessionEvent(ServerEvent):
    """``session.created`` (the first event) and ``session.updated``: the session's
    configuration."""

    session: TranslationSession
    """The session after the event."""


@frozen(kw_only=True)
class TranslationSessionClosedEvent(ServerEvent):
    """``session.closed``: the session ended after ``session.close``, its output flushed."""


@frozen(kw_only=True)
class TranslationInputTranscriptDeltaEvent(ServerEvent):
    """``session.input_transcript.delta``: source-language text (only when
    ``audio.input.transcription`` is set)."""

    delta: str
    """New text, to append as is (it carries its own spaces)."""
    elapsed_ms: int | None
    """Where in the input stream it belongs (steps of 200 ms; not unique)."""


@frozen(kw_only=True)
class TranslationOutputTranscriptDeltaEvent(ServerEvent):
    """``session.output_transcript.delta``: translated text."""

    delta: str
    """New text, to append as is (it carries its own spaces)."""
    elapsed_ms: int | None
    """Where in the input stream it belongs (steps of 200 ms; not unique)."""


@frozen(kw_only=True)
class TranslationOutputAudioDeltaEvent(ServerEvent):
    """``session.output_audio.delta``: a chunk of translated speech (of any length)."""

    delta: str
    """Base64 PCM16 audio; :attr:`audio` decodes it."""
    elapsed_ms: int | None
    """Where in the input stream it belongs."""
    channels: int | None
    """Number of channels (1)."""
    format: str | None
    """Encoding of the audio: ``"pcm16"``."""
    sample_rate: int | None
    """Samples per second (24000)."""

    @property
    def audio(self) -> bytes:
        """The chunk's audio bytes."""
        return base64.b64decode(self.delta)


TRANSLATION_SERVER_EVENT_CLASSES: dict[str, type[ServerEvent]] = {
    "session.created": TranslationSessionEvent,
    "session.updated": TranslationSessionEvent,
    "session.closed": TranslationSessionClosedEvent,
    "session.input_transcript.delta": TranslationInputTranscriptDeltaEvent,
    "session.output_transcript.delta": TranslationOutputTranscriptDeltaEvent,
    "session.output_audio.delta": TranslationOutputAudioDeltaEvent,
}
"""The typed class of each translation server event type (``error`` is the Realtime one)."""

TRANSLATION_SERVER_EVENTS = frozenset({*TRANSLATION_SERVER_EVENT_CLASSES, "error"})
"""Every server event type of a translation session."""
# What handlers may listen to: the server's events and those the client makes about its
# connection and session (no conversation or reconnect events: it has neither).
_KNOWN = TRANSLATION_SERVER_EVENTS | {
    "client.closed",
    "client.session_expiring",
    "client.handler_error",
    "client.invalid_frame",
    "client.backlog",
}


def check_translation_pattern(pattern: str) -> None:
    """Refuse a pattern that matches no event of a translation connection."""
    if not isinstance(pattern, str):
        raise TypeError(f"event type must be a string, not {type(pattern).__name__}")
    if pattern == "*" or pattern in _KNOWN:
        return
    if pattern.endswith(".*") and any(name.startswith(pattern[:-1]) for name in _KNOWN):
        return
    raise UnknownEventTypeError(
        f"{pattern!r} is not an event type of a translation session (its events: "
        f"{', '.join(sorted(_KNOWN))}). Pass allow_unknown=True to listen for it anyway."
    )


# --- client events -------------------------------------------------------------------------


@frozen(kw_only=True)
class TranslationSessionUpdateEvent(ClientEvent):
    """``session.update``: change ``audio.output.language``, ``audio.input.transcription``
    or ``audio.input.noise_reduction`` (the model and type are fixed)."""

    TYPE = "session.update"

    session: Mapping[str, Any]
    """The fields to change, e.g. ``{"audio": {"output": {"language": "fr"}}}``."""


@frozen(kw_only=True)
class TranslationInputAudioBufferAppendEvent(ClientEvent):
    """``session.input_audio_buffer.append``: more source audio (base64 PCM16, 24 kHz mono;
    the server works in 200 ms frames)."""

    TYPE = "session.input_audio_buffer.append"

    audio: str
    """Base64-encoded PCM16 audio."""


@frozen(kw_only=True)
class TranslationSessionCloseEvent(ClientEvent):
    """``session.close``: end the session once the audio sent so far is translated."""

    TYPE = "session.close"


TRANSLATION_CLIENT_EVENT_CLASSES: dict[str, type[ClientEvent]] = {
    cls.TYPE: cls
    for cls in (
        TranslationSessionUpdateEvent,
        TranslationInputAudioBufferAppendEvent,
        TranslationSessionCloseEvent,
    )
}
"""The typed class of each translation client event type."""

TRANSLATION_CLIENT_EVENTS = frozenset(TRANSLATION_CLIENT_EVENT_CLASSES)
"""Every client event type of a translation session."""


def decode_translation_event(data: bytes | str) -> ServerEvent | InvalidFrameEvent:
    """Decode one frame of a translation connection; never raises.

    Parsing, the checks of a frame and ``error`` are the Realtime decoder's; the session
    and delta types then get their translation classes (a payload its class cannot hold
    stays a :class:`GenericEvent` with ``decode_error``).
    """
    event = decode_event(data)
    cls = TRANSLATION_SERVER_EVENT_CLASSES.get(event.type)
    if cls is None or not isinstance(event, ServerEvent):
        return event
    payload = event._raw
    try:
        return cls.from_dict(payload)
    except Exception as exc:  # like decode_payload: keep the event, untyped
        generic = GenericEvent.from_dict(payload)
        return attrs.evolve(generic, decode_error=f"{cls.__name__}: {exc}")
