"""Server events: the catalogue of type names in both dialects and their typed classes.

Each class is registered for the wire types it decodes (one class may serve a GA name and
its beta twin, such as ``response.output_text.delta`` and ``response.text.delta``). A type
without a class, or a payload its class cannot hold, becomes a :class:`GenericEvent`, so
decoding never fails on what a real server sends.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import attrs
from attrs import field, frozen

from ._json import loads
from ._models import DecodeError, Model

__all__ = [
    "BETA_SERVER_EVENTS",
    "CLIENT_SIDE_EVENTS",
    "GA_SERVER_EVENTS",
    "ClosedEvent",
    "ContentPart",
    "ContentPartEvent",
    "ConversationItem",
    "ConversationItemEvent",
    "ErrorDetail",
    "ErrorEvent",
    "GenericEvent",
    "HandlerErrorEvent",
    "InvalidFrameEvent",
    "OutputItemEvent",
    "RateLimit",
    "RateLimitsUpdatedEvent",
    "Response",
    "ResponseEvent",
    "ServerEvent",
    "Session",
    "SessionEvent",
    "TextDeltaEvent",
    "TextDoneEvent",
    "decode_event",
]

GA_SERVER_EVENTS = frozenset(
    {
        "conversation.created",
        "conversation.item.added",
        "conversation.item.created",
        "conversation.item.deleted",
        "conversation.item.done",
        "conversation.item.input_audio_transcription.completed",
        "conversation.item.input_audio_transcription.delta",
        "conversation.item.input_audio_transcription.failed",
        "conversation.item.input_audio_transcription.segment",
        "conversation.item.retrieved",
        "conversation.item.truncated",
        "error",
        "input_audio_buffer.cleared",
        "input_audio_buffer.committed",
        "input_audio_buffer.dtmf_event_received",
        "input_audio_buffer.speech_started",
        "input_audio_buffer.speech_stopped",
        "input_audio_buffer.timeout_triggered",
        "mcp_list_tools.completed",
        "mcp_list_tools.failed",
        "mcp_list_tools.in_progress",
        "output_audio_buffer.cleared",
        "output_audio_buffer.started",
        "output_audio_buffer.stopped",
        "rate_limits.updated",
        "response.content_part.added",
        "response.content_part.done",
        "response.created",
        "response.done",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.done",
        "response.mcp_call.completed",
        "response.mcp_call.failed",
        "response.mcp_call.in_progress",
        "response.mcp_call_arguments.delta",
        "response.mcp_call_arguments.done",
        "response.output_audio.delta",
        "response.output_audio.done",
        "response.output_audio_transcript.delta",
        "response.output_audio_transcript.done",
        "response.output_item.added",
        "response.output_item.done",
        "response.output_text.delta",
        "response.output_text.done",
        "session.created",
        "session.updated",
    }
)
"""Every server event type of the GA dialect (``gpt-realtime``)."""

BETA_SERVER_EVENTS = frozenset(
    {
        "conversation.created",
        "conversation.item.created",
        "conversation.item.deleted",
        "conversation.item.input_audio_transcription.completed",
        "conversation.item.input_audio_transcription.delta",
        "conversation.item.input_audio_transcription.failed",
        "conversation.item.retrieved",
        "conversation.item.truncated",
        "error",
        "input_audio_buffer.cleared",
        "input_audio_buffer.committed",
        "input_audio_buffer.speech_started",
        "input_audio_buffer.speech_stopped",
        "output_audio_buffer.cleared",
        "output_audio_buffer.started",
        "output_audio_buffer.stopped",
        "rate_limits.updated",
        "response.audio.delta",
        "response.audio.done",
        "response.audio_transcript.delta",
        "response.audio_transcript.done",
        "response.content_part.added",
        "response.content_part.done",
        "response.created",
        "response.done",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.done",
        "response.output_item.added",
        "response.output_item.done",
        "response.text.delta",
        "response.text.done",
        "session.created",
        "session.updated",
        "transcription_session.updated",
    }
)
"""Every server event type of the beta dialect (``OpenAI-Beta: realtime=v1``)."""

CLIENT_SIDE_EVENTS = frozenset({"client.handler_error", "client.invalid_frame", "client.closed"})
"""Events the client itself dispatches, about the connection rather than from the server."""


# --- nested models --------------------------------------------------------------------------


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


# --- events ---------------------------------------------------------------------------------

_EVENT_CLASSES: dict[str, type[ServerEvent]] = {}
E = TypeVar("E", bound="type[ServerEvent]")


def _server_event(*types: str) -> Callable[[E], E]:
    """Register a class as the decoder of the given wire event types."""

    def register(cls: E) -> E:
        for name in types:
            assert name in GA_SERVER_EVENTS | BETA_SERVER_EVENTS, name
            _EVENT_CLASSES[name] = cls
        return cls

    return register


@frozen(kw_only=True)
class ServerEvent(Model):
    """Base of every event the server sends."""

    type: str
    """The event type, as the server named it."""
    event_id: str | None
    """The server's id for this event."""


@frozen(kw_only=True)
class GenericEvent(ServerEvent):
    """An event with no typed class, or whose payload its class could not hold.

    All fields are in ``raw`` and reachable as attributes.
    """

    decode_error: str | None = field(default=None, metadata={"wire": False})
    """Why the typed class was not used for a known type; None for untyped types."""


@_server_event("session.created", "session.updated")
@frozen(kw_only=True)
class SessionEvent(ServerEvent):
    """``session.created`` (always the first event) and ``session.updated``."""

    session: Session
    """The session's configuration after the event."""


@_server_event("error")
@frozen(kw_only=True)
class ErrorEvent(ServerEvent):
    """``error``: the server could not do something. Not fatal: the session goes on."""

    error: ErrorDetail
    """What went wrong."""


@_server_event("rate_limits.updated")
@frozen(kw_only=True)
class RateLimitsUpdatedEvent(ServerEvent):
    """``rate_limits.updated``: sent after each ``response.done``."""

    rate_limits: list[RateLimit]
    """The limits now in force (may be empty)."""


@_server_event("response.created", "response.done")
@frozen(kw_only=True)
class ResponseEvent(ServerEvent):
    """``response.created`` and ``response.done``."""

    response: Response
    """The response, complete with output and usage on ``response.done``."""


@_server_event("response.output_item.added", "response.output_item.done")
@frozen(kw_only=True)
class OutputItemEvent(ServerEvent):
    """``response.output_item.added`` and ``response.output_item.done``."""

    response_id: str | None
    """The response producing the item."""
    output_index: int | None
    """Position of the item in the response's output."""
    item: ConversationItem
    """The item."""


@_server_event("conversation.item.added", "conversation.item.done", "conversation.item.created")
@frozen(kw_only=True)
class ConversationItemEvent(ServerEvent):
    """An item joined the conversation (GA ``added``/``done``; beta ``created``)."""

    previous_item_id: str | None
    """The item it follows, or None at the start."""
    item: ConversationItem
    """The item."""


@_server_event("response.content_part.added", "response.content_part.done")
@frozen(kw_only=True)
class ContentPartEvent(ServerEvent):
    """``response.content_part.added`` and ``response.content_part.done``."""

    response_id: str | None
    """The response producing the part."""
    item_id: str | None
    """The item the part belongs to."""
    output_index: int | None
    """Position of the item in the response's output."""
    content_index: int | None
    """Position of the part in the item's content."""
    part: ContentPart
    """The part."""


@_server_event("response.output_text.delta", "response.text.delta")
@frozen(kw_only=True)
class TextDeltaEvent(ServerEvent):
    """A piece of streamed text.

    GA ``response.output_text.delta``; beta ``response.text.delta``.
    """

    response_id: str | None
    """The response producing the text."""
    item_id: str | None
    """The item the text belongs to."""
    output_index: int | None
    """Position of the item in the response's output."""
    content_index: int | None
    """Position of the part in the item's content."""
    delta: str
    """The new text."""


@_server_event("response.output_text.done", "response.text.done")
@frozen(kw_only=True)
class TextDoneEvent(ServerEvent):
    """The streamed text is complete.

    GA ``response.output_text.done``; beta ``response.text.done``.
    """

    response_id: str | None
    """The response producing the text."""
    item_id: str | None
    """The item the text belongs to."""
    output_index: int | None
    """Position of the item in the response's output."""
    content_index: int | None
    """Position of the part in the item's content."""
    text: str
    """The whole text."""


# --- events the client makes itself ---------------------------------------------------------


@frozen
class HandlerErrorEvent:
    """``client.handler_error``: a handler raised; the others and the session went on."""

    event: Any
    """The event the handler was given."""
    handler: Callable[..., Any]
    """The handler that raised."""
    exception: BaseException
    """What it raised."""
    type: str = "client.handler_error"
    """Always ``client.handler_error``."""


@frozen
class InvalidFrameEvent:
    """``client.invalid_frame``: the server sent a frame that is not a JSON event object."""

    data: bytes | str
    """The frame as received."""
    reason: str
    """Why it could not be decoded."""
    type: str = "client.invalid_frame"
    """Always ``client.invalid_frame``."""


@frozen
class ClosedEvent:
    """``client.closed``: the connection ended, for whatever reason. The last event of a session."""

    code: int | None
    """The close code (None when the connection dropped without a close frame)."""
    reason: str | None
    """The close reason text."""
    requested: bool
    """True when our own ``close()`` ended it; False when the server or network did."""
    error: Exception | None = None
    """The exception waiters receive, for an unexpected end; None for a requested one."""
    type: str = "client.closed"
    """Always ``client.closed``."""


def decode_event(data: bytes | str) -> ServerEvent | InvalidFrameEvent:
    """Decode one text frame into its typed event; never raises.

    Not JSON, or JSON that is not an object with a string ``type``, gives an
    :class:`InvalidFrameEvent`; a payload its class cannot hold gives a :class:`GenericEvent`
    with ``decode_error`` set.
    """
    try:
        payload = loads(data)
    except ValueError as exc:  # includes invalid UTF-8
        return InvalidFrameEvent(data=data, reason=f"not valid JSON: {exc}")
    if not isinstance(payload, dict) or not isinstance(payload.get("type"), str):
        return InvalidFrameEvent(data=data, reason="not a JSON object with a string 'type'")
    return decode_payload(payload)


def decode_payload(payload: Mapping[str, Any]) -> ServerEvent:
    """Decode an already parsed event object (see :func:`decode_event`)."""
    cls = _EVENT_CLASSES.get(payload["type"])
    if cls is None:
        return GenericEvent.from_dict(payload)
    try:
        return cls.from_dict(payload)
    except (DecodeError, TypeError, ValueError) as exc:
        return attrs.evolve(GenericEvent.from_dict(payload), decode_error=f"{cls.__name__}: {exc}")
