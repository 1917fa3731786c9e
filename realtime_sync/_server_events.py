"""Server events: one typed class per event type, and decoding from the wire.

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

from ._dialects import BETA_SERVER_EVENTS, CLIENT_SIDE_PREFIX, GA_SERVER_EVENTS
from ._json import loads
from ._local_events import InvalidFrameEvent
from ._models import DecodeError, Model
from ._objects import (
    ContentPart,
    Conversation,
    ConversationItem,
    DetectedLanguage,
    ErrorDetail,
    Logprob,
    RateLimit,
    Response,
    Session,
    TranscriptionSession,
    TranscriptionUsage,
)

__all__ = [
    "AudioDeltaEvent",
    "AudioDoneEvent",
    "ContentPartEvent",
    "ConversationCreatedEvent",
    "ConversationItemDeletedEvent",
    "ConversationItemEvent",
    "ConversationItemTruncatedEvent",
    "DtmfEventReceivedEvent",
    "ErrorEvent",
    "FunctionCallArgumentsDeltaEvent",
    "FunctionCallArgumentsDoneEvent",
    "GenericEvent",
    "InputAudioBufferClearedEvent",
    "InputAudioBufferCommittedEvent",
    "InputAudioTranscriptionCompletedEvent",
    "InputAudioTranscriptionDeltaEvent",
    "InputAudioTranscriptionFailedEvent",
    "InputAudioTranscriptionSegmentEvent",
    "ItemAddressedEvent",
    "ItemContentAddressedEvent",
    "McpCallArgumentsDeltaEvent",
    "McpCallArgumentsDoneEvent",
    "McpCallEvent",
    "McpListToolsEvent",
    "OutputAudioBufferEvent",
    "OutputItemEvent",
    "RateLimitsUpdatedEvent",
    "ResponseContentAddressedEvent",
    "ResponseEvent",
    "ResponseOutputAddressedEvent",
    "ServerEvent",
    "SessionEvent",
    "SpeechStartedEvent",
    "SpeechStoppedEvent",
    "TextDeltaEvent",
    "TextDoneEvent",
    "TimeoutTriggeredEvent",
    "TranscriptDeltaEvent",
    "TranscriptDoneEvent",
    "TranscriptionSessionUpdatedEvent",
    "decode_event",
    "decode_payload",
]

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


# --- sessions and the conversation ----------------------------------------------------------


@_server_event("session.created", "session.updated")
@frozen(kw_only=True)
class SessionEvent(ServerEvent):
    """``session.created`` (always the first event) and ``session.updated``: the session's
    configuration."""

    session: Session
    """The session's configuration after the event."""


@_server_event("transcription_session.updated")
@frozen(kw_only=True)
class TranscriptionSessionUpdatedEvent(ServerEvent):
    """Beta ``transcription_session.updated``: the transcription session changed."""

    session: TranscriptionSession
    """The transcription session's configuration after the update."""


@_server_event("conversation.created")
@frozen(kw_only=True)
class ConversationCreatedEvent(ServerEvent):
    """``conversation.created``: the session's conversation exists (sent after the session)."""

    conversation: Conversation
    """The new conversation."""


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

    rate_limits: tuple[RateLimit, ...]
    """The limits now in force (may be empty)."""


# --- events about one conversation item -----------------------------------------------------


@frozen(kw_only=True)
class ItemAddressedEvent(ServerEvent):
    """Base of the events about one conversation item, named by ``item_id``."""

    item_id: str | None
    """The item concerned."""


@frozen(kw_only=True)
class ItemContentAddressedEvent(ItemAddressedEvent):
    """Base of the events about one content part of a conversation item."""

    content_index: int | None
    """Position of the part in the item's content."""


@_server_event(
    "conversation.item.added",
    "conversation.item.done",
    "conversation.item.created",
    "conversation.item.retrieved",
)
@frozen(kw_only=True)
class ConversationItemEvent(ServerEvent):
    """An item joined the conversation, or was looked up.

    GA ``conversation.item.added``/``done``; beta ``conversation.item.created``; both
    dialects' ``conversation.item.retrieved``.
    """

    previous_item_id: str | None
    """The item it follows, or None at the start (and for ``retrieved``)."""
    item: ConversationItem
    """The item."""


@_server_event("conversation.item.deleted")
@frozen(kw_only=True)
class ConversationItemDeletedEvent(ItemAddressedEvent):
    """``conversation.item.deleted``: the item ``item_id`` left the conversation."""


@_server_event("conversation.item.truncated")
@frozen(kw_only=True)
class ConversationItemTruncatedEvent(ItemContentAddressedEvent):
    """``conversation.item.truncated``: an assistant's audio was cut (its transcript too)."""

    audio_end_ms: int | None
    """Where the audio now ends, in milliseconds."""


@_server_event("conversation.item.input_audio_transcription.completed")
@frozen(kw_only=True)
class InputAudioTranscriptionCompletedEvent(ItemContentAddressedEvent):
    """The transcription of a user audio item is ready."""

    transcript: str
    """The whole transcript."""
    usage: TranscriptionUsage | None
    """What the transcription cost (not sent by older servers)."""
    logprobs: tuple[Logprob, ...] | None
    """Per-token log probabilities, when the session includes them."""
    languages: tuple[DetectedLanguage, ...] | None
    """GA: the languages detected, when the model reports them."""


@_server_event("conversation.item.input_audio_transcription.delta")
@frozen(kw_only=True)
class InputAudioTranscriptionDeltaEvent(ItemContentAddressedEvent):
    """A piece of the transcription of a user audio item."""

    delta: str | None
    """The new text."""
    logprobs: tuple[Logprob, ...] | None
    """Per-token log probabilities of the delta, when the session includes them."""


@_server_event("conversation.item.input_audio_transcription.failed")
@frozen(kw_only=True)
class InputAudioTranscriptionFailedEvent(ItemContentAddressedEvent):
    """The transcription of a user audio item failed."""

    error: ErrorDetail
    """Why."""


@_server_event("conversation.item.input_audio_transcription.segment")
@frozen(kw_only=True)
class InputAudioTranscriptionSegmentEvent(ItemContentAddressedEvent):
    """GA: one segment of a diarized transcription (who said what, when)."""

    id: str | None
    """Segment id."""
    text: str
    """What was said."""
    speaker: str | None
    """Speaker label, e.g. ``spk_1``."""
    start: float | None
    """Start of the segment in the audio, in seconds."""
    end: float | None
    """End of the segment in the audio, in seconds."""


@_server_event("mcp_list_tools.in_progress", "mcp_list_tools.completed", "mcp_list_tools.failed")
@frozen(kw_only=True)
class McpListToolsEvent(ItemAddressedEvent):
    """GA: progress of listing an MCP server's tools.

    ``mcp_list_tools.in_progress``, ``.completed`` and ``.failed``; ``item_id`` is the
    ``mcp_list_tools`` item that receives the list.
    """


# --- the input audio buffer -----------------------------------------------------------------


@_server_event("input_audio_buffer.committed")
@frozen(kw_only=True)
class InputAudioBufferCommittedEvent(ItemAddressedEvent):
    """The input audio buffer became the user message ``item_id``."""

    previous_item_id: str | None
    """The item the new one follows, or None at the start."""


@_server_event("input_audio_buffer.cleared")
@frozen(kw_only=True)
class InputAudioBufferClearedEvent(ServerEvent):
    """The input audio buffer was emptied."""


@_server_event("input_audio_buffer.speech_started")
@frozen(kw_only=True)
class SpeechStartedEvent(ItemAddressedEvent):
    """Turn detection heard speech begin; ``item_id`` is the user item it will become."""

    audio_start_ms: int | None
    """Where the speech begins in the buffer's audio, in milliseconds."""


@_server_event("input_audio_buffer.speech_stopped")
@frozen(kw_only=True)
class SpeechStoppedEvent(ItemAddressedEvent):
    """Turn detection heard speech end; ``item_id`` is the user item it will become."""

    audio_end_ms: int | None
    """Where the speech ends in the buffer's audio, in milliseconds."""


@_server_event("input_audio_buffer.timeout_triggered")
@frozen(kw_only=True)
class TimeoutTriggeredEvent(ItemAddressedEvent):
    """GA: the user stayed silent for the turn detection's ``idle_timeout_ms``."""

    audio_start_ms: int | None
    """Start of the audio committed as ``item_id``, in milliseconds."""
    audio_end_ms: int | None
    """End of that audio, in milliseconds."""


@_server_event("input_audio_buffer.dtmf_event_received")
@frozen(kw_only=True)
class DtmfEventReceivedEvent(ServerEvent):
    """GA (SIP calls): the caller pressed a telephone key."""

    event: str
    """The key: ``0``-``9``, ``*``, ``#`` or ``A``-``D``."""
    received_at: int | None
    """Unix time at which the key press arrived."""


@_server_event(
    "output_audio_buffer.started", "output_audio_buffer.stopped", "output_audio_buffer.cleared"
)
@frozen(kw_only=True)
class OutputAudioBufferEvent(ServerEvent):
    """WebRTC/SIP: the server began, finished or dropped playing a response's audio.

    ``output_audio_buffer.started``, ``.stopped`` and ``.cleared``.
    """

    response_id: str | None
    """The response whose audio it is."""


# --- responses ------------------------------------------------------------------------------


@_server_event("response.created", "response.done")
@frozen(kw_only=True)
class ResponseEvent(ServerEvent):
    """``response.created`` and ``response.done``: a response began, or ended with its output
    and usage."""

    response: Response
    """The response, complete with output and usage on ``response.done``."""


@_server_event("response.output_item.added", "response.output_item.done")
@frozen(kw_only=True)
class OutputItemEvent(ServerEvent):
    """``response.output_item.added`` and ``response.output_item.done``: an item of a response
    began, or is complete."""

    response_id: str | None
    """The response producing the item."""
    output_index: int | None
    """Position of the item in the response's output."""
    item: ConversationItem
    """The item."""


@frozen(kw_only=True)
class ResponseOutputAddressedEvent(ItemAddressedEvent):
    """Base of the events about one output item of a response."""

    response_id: str | None
    """The response producing the item."""
    output_index: int | None
    """Position of the item in the response's output."""


@frozen(kw_only=True)
class ResponseContentAddressedEvent(ResponseOutputAddressedEvent):
    """Base of the events about one content part of a response's output item."""

    content_index: int | None
    """Position of the part in the item's content."""


@_server_event("response.content_part.added", "response.content_part.done")
@frozen(kw_only=True)
class ContentPartEvent(ResponseContentAddressedEvent):
    """``response.content_part.added`` and ``response.content_part.done``: a part of an item's
    content began, or is complete."""

    part: ContentPart
    """The part."""


@_server_event("response.output_text.delta", "response.text.delta")
@frozen(kw_only=True)
class TextDeltaEvent(ResponseContentAddressedEvent):
    """A piece of streamed text.

    GA ``response.output_text.delta``; beta ``response.text.delta``.
    """

    delta: str
    """The new text."""


@_server_event("response.output_text.done", "response.text.done")
@frozen(kw_only=True)
class TextDoneEvent(ResponseContentAddressedEvent):
    """The streamed text is complete.

    GA ``response.output_text.done``; beta ``response.text.done``.
    """

    text: str
    """The whole text."""


@_server_event("response.output_audio.delta", "response.audio.delta")
@frozen(kw_only=True)
class AudioDeltaEvent(ResponseContentAddressedEvent):
    """A piece of streamed audio.

    GA ``response.output_audio.delta``; beta ``response.audio.delta``.
    """

    delta: str
    """The new audio, base64-encoded in the session's output format."""


@_server_event("response.output_audio.done", "response.audio.done")
@frozen(kw_only=True)
class AudioDoneEvent(ResponseContentAddressedEvent):
    """The streamed audio is complete.

    GA ``response.output_audio.done``; beta ``response.audio.done``.
    """


@_server_event("response.output_audio_transcript.delta", "response.audio_transcript.delta")
@frozen(kw_only=True)
class TranscriptDeltaEvent(ResponseContentAddressedEvent):
    """A piece of the transcript of streamed audio.

    GA ``response.output_audio_transcript.delta``; beta ``response.audio_transcript.delta``.
    """

    delta: str
    """The new transcript text."""


@_server_event("response.output_audio_transcript.done", "response.audio_transcript.done")
@frozen(kw_only=True)
class TranscriptDoneEvent(ResponseContentAddressedEvent):
    """The transcript of streamed audio is complete.

    GA ``response.output_audio_transcript.done``; beta ``response.audio_transcript.done``.
    """

    transcript: str
    """The whole transcript."""


@_server_event("response.function_call_arguments.delta")
@frozen(kw_only=True)
class FunctionCallArgumentsDeltaEvent(ResponseOutputAddressedEvent):
    """A piece of the JSON arguments of a function call the model is making."""

    call_id: str | None
    """The call's id."""
    delta: str
    """The new piece of the arguments."""


@_server_event("response.function_call_arguments.done")
@frozen(kw_only=True)
class FunctionCallArgumentsDoneEvent(ResponseOutputAddressedEvent):
    """The arguments of a function call are complete: time to run the function."""

    call_id: str | None
    """The call's id, to quote in the ``function_call_output`` item."""
    name: str | None
    """GA: the function's name (beta servers leave it to the output item)."""
    arguments: str
    """The JSON-encoded arguments."""


@_server_event("response.mcp_call_arguments.delta")
@frozen(kw_only=True)
class McpCallArgumentsDeltaEvent(ResponseOutputAddressedEvent):
    """GA: a piece of the JSON arguments of an MCP tool call."""

    delta: str
    """The new piece of the arguments."""
    obfuscation: str | None
    """Random padding that hides the length of the delta; ignore it."""


@_server_event("response.mcp_call_arguments.done")
@frozen(kw_only=True)
class McpCallArgumentsDoneEvent(ResponseOutputAddressedEvent):
    """GA: the arguments of an MCP tool call are complete."""

    arguments: str
    """The JSON-encoded arguments."""


@_server_event(
    "response.mcp_call.in_progress", "response.mcp_call.completed", "response.mcp_call.failed"
)
@frozen(kw_only=True)
class McpCallEvent(ItemAddressedEvent):
    """GA: progress of an MCP tool call.

    ``response.mcp_call.in_progress``, ``.completed`` and ``.failed``; ``item_id`` is the
    ``mcp_call`` item, which carries the result or the error.
    """

    output_index: int | None
    """Position of the item in the response's output."""


def decode_event(
    data: bytes | str, *, rename: Mapping[str, str] | None = None
) -> ServerEvent | InvalidFrameEvent:
    """Decode one text frame into its typed event; never raises.

    Not JSON (nested too deeply included), or JSON that is not an object with a string
    ``type``, gives an :class:`InvalidFrameEvent`; a payload its class cannot hold gives a
    :class:`GenericEvent` with ``decode_error`` set. Any other failure, whatever it is, also
    gives an :class:`InvalidFrameEvent`: a frame never raises into the receive loop.

    ``rename`` maps event types to the types to decode them as (beta names to GA ones): the
    event, ``raw`` included, then carries the new name.
    """
    try:
        payload = loads(data)
    except RecursionError:
        return InvalidFrameEvent(data=data, reason="not valid JSON: nested too deeply to decode")
    except ValueError as exc:  # includes invalid UTF-8
        return InvalidFrameEvent(data=data, reason=f"not valid JSON: {exc}")
    except Exception as exc:  # e.g. a frame of the wrong type: still not an event
        return InvalidFrameEvent(data=data, reason=f"could not be parsed: {_describe(exc)}")
    if not isinstance(payload, dict) or not isinstance(payload.get("type"), str):
        return InvalidFrameEvent(data=data, reason="not a JSON object with a string 'type'")
    if payload["type"].startswith(CLIENT_SIDE_PREFIX):
        # client.closed and its kin come from the client alone: a server frame named so
        # must not pass for one (handlers would take it for the end of the session).
        return InvalidFrameEvent(data=data, reason="a server event may not use a 'client.' type")
    try:
        if rename is not None and payload["type"] in rename:
            payload["type"] = rename[payload["type"]]  # our own fresh dict: not shared
        return decode_payload(payload)
    except Exception as exc:  # decode_payload contains its classes' failures; belt and braces
        return InvalidFrameEvent(data=data, reason=f"could not be decoded: {_describe(exc)}")


def decode_payload(payload: Mapping[str, Any]) -> ServerEvent:
    """Decode an already parsed event object (see :func:`decode_event`)."""
    cls = _EVENT_CLASSES.get(payload["type"])
    if cls is None:
        return GenericEvent.from_dict(payload)
    try:
        return cls.from_dict(payload)
    except Exception as exc:  # any failure of the typed class: keep the event, untyped
        generic = GenericEvent.from_dict(payload)
        return attrs.evolve(generic, decode_error=f"{cls.__name__}: {_describe(exc)}")


def _describe(exc: Exception) -> str:
    """An exception as text: its message, with its type unless it is one we expect."""
    try:
        message = str(exc)
    except Exception:  # even a broken __str__ must not make decoding raise
        message = ""
    if not message:
        return type(exc).__name__
    return (
        message
        if type(exc) in (DecodeError, TypeError, ValueError)
        else f"{type(exc).__name__}: {message}"
    )
