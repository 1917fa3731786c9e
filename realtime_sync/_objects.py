"""Objects nested inside events: responses, usage, errors, rate limits, transcription.

This module defines the response side (:class:`Response`, its status details and audio,
token :class:`Usage`, :class:`ErrorDetail`, :class:`RateLimit`, and the usage, log
probabilities and languages of input audio transcription) and re-exports the session
objects of :mod:`._session_objects` and the conversation items of :mod:`._item_objects`,
so that every nested object is imported from here. One class serves both dialects wherever
the wire shape allows: it declares the union of the fields either dialect sends, and the
ones a given server does not send are None. Values the protocol defines as "a string or an
object" (``tool_choice``, ``tracing``, ``voice``...) are annotated ``str | SomeModel``: an
object decodes to the model, a string stays a string. A decoded object cannot be changed:
arrays of objects are tuples of models, other arrays (``Sequence[str]``) and free-form
objects (``Mapping[str, Any]``: JSON Schemas, metadata) are read-only views that compare
equal to the lists and dicts received.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from attrs import frozen

from ._item_objects import ContentPart, Conversation, ConversationItem, McpError, McpTool
from ._models import Model
from ._session_objects import (
    AudioFormat,
    AudioInput,
    AudioOutput,
    ClientSecret,
    CustomVoice,
    McpApprovalFilter,
    McpToolFilter,
    NoiseReduction,
    Prompt,
    Reasoning,
    Session,
    SessionAudio,
    TokenLimits,
    Tool,
    ToolChoice,
    TracingConfig,
    TranscriptionConfig,
    TranscriptionSession,
    Truncation,
    TurnDetection,
)

__all__ = [
    "AudioFormat",
    "AudioInput",
    "AudioOutput",
    "ClientSecret",
    "ContentPart",
    "Conversation",
    "ConversationItem",
    "CustomVoice",
    "DetectedLanguage",
    "ErrorDetail",
    "InputTokenDetails",
    "Logprob",
    "McpApprovalFilter",
    "McpError",
    "McpTool",
    "McpToolFilter",
    "NoiseReduction",
    "Prompt",
    "RateLimit",
    "Reasoning",
    "Response",
    "ResponseAudio",
    "ResponseStatusDetails",
    "Session",
    "SessionAudio",
    "TokenDetails",
    "TokenLimits",
    "Tool",
    "ToolChoice",
    "TracingConfig",
    "TranscriptionConfig",
    "TranscriptionSession",
    "TranscriptionUsage",
    "Truncation",
    "TurnDetection",
    "Usage",
]


# --- responses ------------------------------------------------------------------------------


@frozen(kw_only=True)
class ErrorDetail(Model):
    """What went wrong: in ``error`` events, failed transcriptions and failed responses."""

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
class ResponseStatusDetails(Model):
    """Why a response ended the way it did."""

    type: str | None
    """``completed``, ``cancelled``, ``incomplete`` or ``failed``."""
    reason: str | None
    """``turn_detected``, ``client_cancelled``, ``max_output_tokens`` or ``content_filter``."""
    error: ErrorDetail | None
    """For failed responses: what went wrong."""


@frozen(kw_only=True)
class TokenDetails(Model):
    """Tokens broken down by modality."""

    text_tokens: int | None
    """Text tokens."""
    audio_tokens: int | None
    """Audio tokens."""
    image_tokens: int | None
    """Image tokens."""


@frozen(kw_only=True)
class InputTokenDetails(TokenDetails):
    """Input tokens broken down by modality, with the cached share."""

    cached_tokens: int | None
    """Input tokens served from the cache."""
    cached_tokens_details: TokenDetails | None
    """Cached tokens broken down by modality."""


@frozen(kw_only=True)
class _TokenCounts(Model):
    """Token totals shared by response and transcription usage."""

    total_tokens: int | None
    """Input plus output tokens."""
    input_tokens: int | None
    """Input tokens."""
    output_tokens: int | None
    """Output tokens."""


@frozen(kw_only=True)
class Usage(_TokenCounts):
    """Token usage of a response, on ``response.done``."""

    input_token_details: InputTokenDetails | None
    """Input tokens by modality, with the cached share."""
    output_token_details: TokenDetails | None
    """Output tokens by modality."""


@frozen(kw_only=True)
class TranscriptionUsage(_TokenCounts):
    """What transcribing input audio cost: tokens, or seconds of audio."""

    type: str | None
    """``tokens`` or ``duration``."""
    input_token_details: TokenDetails | None
    """tokens: input tokens by modality."""
    seconds: float | None
    """duration: seconds of audio transcribed."""


@frozen(kw_only=True)
class ResponseAudio(Model):
    """GA ``response.audio``."""

    output: AudioOutput | None
    """Format and voice of the response's audio."""


@frozen(kw_only=True)
class Response(Model):
    """A model response, as ``response.created`` and ``response.done`` carry it."""

    id: str | None
    """Response id, ``resp_...``."""
    object: str | None
    """``realtime.response``."""
    status: str | None
    """``in_progress``, ``completed``, ``cancelled``, ``failed`` or ``incomplete``."""
    status_details: ResponseStatusDetails | None
    """Why a response did not complete, when it did not."""
    output: tuple[ConversationItem, ...] | None
    """The items the response produced."""
    usage: Usage | None
    """Token counts, on ``response.done``."""
    conversation_id: str | None
    """The conversation the response belongs to (None for out-of-band responses)."""
    metadata: Mapping[str, Any] | None
    """Metadata given in ``response.create``."""
    max_output_tokens: int | str | None
    """A number or ``"inf"``."""
    output_modalities: Sequence[str] | None
    """GA: ``["text"]`` or ``["audio"]``."""
    audio: ResponseAudio | None
    """GA: format and voice of the audio output."""
    modalities: Sequence[str] | None
    """Beta: e.g. ``["text", "audio"]``."""
    voice: str | None
    """Beta: the output voice."""
    output_audio_format: str | None
    """Beta: ``pcm16``, ``g711_ulaw`` or ``g711_alaw``."""
    temperature: float | None
    """Beta: sampling temperature."""


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


# --- input audio transcription --------------------------------------------------------------


@frozen(kw_only=True)
class Logprob(Model):
    """The log probability of one token of a transcription."""

    token: str | None
    """The token."""
    logprob: float | None
    """Its log probability."""
    bytes: Sequence[int] | None
    """The token's UTF-8 bytes."""


@frozen(kw_only=True)
class DetectedLanguage(Model):
    """A language the transcription found in the audio."""

    code: str | None
    """ISO-639-1 code, e.g. ``en``."""
