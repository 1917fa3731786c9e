"""Objects nested inside events: sessions, conversation items, responses, errors, limits."""

from __future__ import annotations

from typing import Any

from attrs import frozen

from ._models import Model

__all__ = [
    "ContentPart",
    "ConversationItem",
    "ErrorDetail",
    "RateLimit",
    "Response",
    "Session",
]


@frozen(kw_only=True)
class Session(Model):
    """A session's configuration, as ``session.created`` and ``session.updated`` carry it.

    Fields of both dialects are declared; the ones the connected dialect lacks are None.
    """

    id: str | None
    """Session id, ``sess_...``."""
    object: str | None
    """``realtime.session``."""
    type: str | None
    """GA: ``realtime`` or ``transcription``; beta: absent."""
    model: str | None
    """The model serving this session."""
    instructions: str | None
    """System instructions."""
    expires_at: int | None
    """Unix time at which the server ends the session."""
    output_modalities: list[str] | None
    """GA: ``["text"]`` or ``["audio"]``."""
    modalities: list[str] | None
    """Beta: e.g. ``["text", "audio"]``."""
    audio: dict[str, Any] | None
    """GA: ``{"input": {...}, "output": {...}}`` with formats, voice, turn detection."""
    voice: str | None
    """Beta: the output voice."""
    input_audio_format: str | None
    """Beta: ``pcm16``, ``g711_ulaw`` or ``g711_alaw``."""
    output_audio_format: str | None
    """Beta: ``pcm16``, ``g711_ulaw`` or ``g711_alaw``."""
    input_audio_transcription: dict[str, Any] | None
    """Beta: transcription settings."""
    turn_detection: dict[str, Any] | None
    """Beta: voice activity detection settings."""
    tools: list[dict[str, Any]] | None
    """Tools the model may call."""
    tool_choice: Any
    """``auto``, ``none``, ``required`` or a specific tool."""
    temperature: float | None
    """Beta: sampling temperature."""
    max_output_tokens: int | str | None
    """GA: a number or ``"inf"``."""
    max_response_output_tokens: int | str | None
    """Beta: a number or ``"inf"``."""


@frozen(kw_only=True)
class ErrorDetail(Model):
    """What went wrong, inside an ``error`` event."""

    type: str | None
    """Category, e.g. ``invalid_request_error``, ``server_error``."""
    code: str | None
    """Machine-readable code, e.g. ``session_expired``; None on some older servers."""
    message: str | None
    """Human-readable explanation."""
    param: str | None
    """The parameter at fault, if any."""
    event_id: str | None
    """The ``event_id`` of our client event that caused the error, if any."""


@frozen(kw_only=True)
class ContentPart(Model):
    """One piece of an item's content: text, audio, transcript."""

    type: str | None
    """``input_text``, ``output_text``, ``text``, ``audio``, ``input_audio``, ..."""
    text: str | None
    """The text, for text parts."""
    audio: str | None
    """Base64 audio, for audio parts (often omitted by servers)."""
    transcript: str | None
    """Transcript of an audio part."""


@frozen(kw_only=True)
class ConversationItem(Model):
    """An item of the conversation: a message, a function call or its output."""

    id: str | None
    """Item id, ``item_...``."""
    object: str | None
    """``realtime.item``."""
    type: str | None
    """``message``, ``function_call``, ``function_call_output``, ..."""
    status: str | None
    """``in_progress``, ``completed`` or ``incomplete``."""
    role: str | None
    """For messages: ``user``, ``assistant`` or ``system``."""
    content: list[ContentPart] | None
    """For messages: the content parts."""
    call_id: str | None
    """For function calls and outputs: the call id."""
    name: str | None
    """For function calls: the function name."""
    arguments: str | None
    """For function calls: the JSON-encoded arguments."""
    output: str | None
    """For function call outputs: the result."""


@frozen(kw_only=True)
class Response(Model):
    """A model response, as ``response.created`` and ``response.done`` carry it."""

    id: str | None
    """Response id, ``resp_...``."""
    object: str | None
    """``realtime.response``."""
    status: str | None
    """``in_progress``, ``completed``, ``cancelled``, ``failed`` or ``incomplete``."""
    status_details: dict[str, Any] | None
    """Why a response did not complete, when it did not."""
    output: list[ConversationItem] | None
    """The items the response produced."""
    usage: dict[str, Any] | None
    """Token counts, on ``response.done``."""
    conversation_id: str | None
    """The conversation the response belongs to (None for out-of-band responses)."""
    metadata: dict[str, Any] | None
    """Metadata given in ``response.create``."""


@frozen(kw_only=True)
class RateLimit(Model):
    """One rate limit as ``rate_limits.updated`` reports it."""

    name: str | None
    """``requests`` or ``tokens``."""
    limit: int | None
    """The maximum allowed."""
    remaining: int | None
    """What is left now."""
    reset_seconds: float | None
    """Seconds until the limit resets."""
