"""Client events: typed classes for everything a client may send, in both dialects.

``client.send()`` accepts these as well as plain dicts; the typed senders
(``client.response.create(...)`` and friends) build the same JSON.
"""

from __future__ import annotations

import builtins
from collections.abc import Mapping
from typing import Any, ClassVar, TypeVar

from attrs import frozen

from ._models import Model, to_json

__all__ = [
    "CLIENT_EVENT_CLASSES",
    "ClientEvent",
    "ConversationItemCreateEvent",
    "ConversationItemDeleteEvent",
    "ConversationItemRetrieveEvent",
    "ConversationItemTruncateEvent",
    "InputAudioBufferAppendEvent",
    "InputAudioBufferClearEvent",
    "InputAudioBufferCommitEvent",
    "OutputAudioBufferClearEvent",
    "ResponseCancelEvent",
    "ResponseCreateEvent",
    "SessionUpdateEvent",
    "TranscriptionSessionUpdateEvent",
]

C = TypeVar("C", bound="ClientEvent")


@frozen(kw_only=True)
class ClientEvent(Model):
    """Base of every event a client sends."""

    TYPE: ClassVar[str] = ""

    type: str
    """The event type."""
    event_id: str | None
    """Our id for the event; the server quotes it in any ``error`` it causes."""

    @classmethod
    def build(cls: builtins.type[C], **fields: Any) -> C:  # `type` is a field here
        """Make the event from keyword arguments named as the wire fields (``type`` is set).

        Arguments left as None are not sent.
        """
        payload = {name: value for name, value in fields.items() if value is not None}
        return cls.from_dict(to_json({"type": cls.TYPE, **payload}))


@frozen(kw_only=True)
class SessionUpdateEvent(ClientEvent):
    """``session.update``: change the session's configuration."""

    TYPE = "session.update"

    session: Mapping[str, Any]
    """The fields to change (GA: ``type``, ``output_modalities``, ``audio``...;
    beta: ``modalities``, ``voice``, ``input_audio_format``...)."""


@frozen(kw_only=True)
class TranscriptionSessionUpdateEvent(ClientEvent):
    """``transcription_session.update`` (beta only): configure a transcription session."""

    TYPE = "transcription_session.update"

    session: Mapping[str, Any]
    """The transcription settings to change."""


@frozen(kw_only=True)
class InputAudioBufferAppendEvent(ClientEvent):
    """``input_audio_buffer.append``: add audio to the input buffer."""

    TYPE = "input_audio_buffer.append"

    audio: str
    """Base64-encoded audio in the session's input format (at most 15 MiB per event)."""


@frozen(kw_only=True)
class InputAudioBufferCommitEvent(ClientEvent):
    """``input_audio_buffer.commit``: turn the buffered audio into a user message."""

    TYPE = "input_audio_buffer.commit"


@frozen(kw_only=True)
class InputAudioBufferClearEvent(ClientEvent):
    """``input_audio_buffer.clear``: drop the buffered audio."""

    TYPE = "input_audio_buffer.clear"


@frozen(kw_only=True)
class OutputAudioBufferClearEvent(ClientEvent):
    """``output_audio_buffer.clear``: stop playing audio (WebRTC/SIP), cutting the response."""

    TYPE = "output_audio_buffer.clear"


@frozen(kw_only=True)
class ConversationItemCreateEvent(ClientEvent):
    """``conversation.item.create``: add a message, function call or function output."""

    TYPE = "conversation.item.create"

    item: Mapping[str, Any]
    """The item (``{"type": "message", "role": "user", "content": [...]}``...)."""
    previous_item_id: str | None
    """Insert after this item; None appends, ``"root"`` inserts at the start."""


@frozen(kw_only=True)
class ConversationItemDeleteEvent(ClientEvent):
    """``conversation.item.delete``: remove an item from the conversation."""

    TYPE = "conversation.item.delete"

    item_id: str
    """The item to delete."""


@frozen(kw_only=True)
class ConversationItemRetrieveEvent(ClientEvent):
    """``conversation.item.retrieve``: ask the server for an item as it stores it."""

    TYPE = "conversation.item.retrieve"

    item_id: str
    """The item to retrieve."""


@frozen(kw_only=True)
class ConversationItemTruncateEvent(ClientEvent):
    """``conversation.item.truncate``: cut an assistant audio item where playback stopped."""

    TYPE = "conversation.item.truncate"

    item_id: str
    """The assistant message item to truncate."""
    content_index: int
    """The content part to truncate (0)."""
    audio_end_ms: int
    """Keep the audio up to this point, in milliseconds."""


@frozen(kw_only=True)
class ResponseCreateEvent(ClientEvent):
    """``response.create``: ask the model to respond."""

    TYPE = "response.create"

    response: Mapping[str, Any] | None
    """Settings for this response only (instructions, modalities, ``conversation: "none"``,
    ``input``, ``metadata``...); None uses the session's."""


@frozen(kw_only=True)
class ResponseCancelEvent(ClientEvent):
    """``response.cancel``: stop the response in progress."""

    TYPE = "response.cancel"

    response_id: str | None
    """The response to cancel; None cancels the active one."""


CLIENT_EVENT_CLASSES: dict[str, type[ClientEvent]] = {
    cls.TYPE: cls
    for cls in (
        SessionUpdateEvent,
        TranscriptionSessionUpdateEvent,
        InputAudioBufferAppendEvent,
        InputAudioBufferCommitEvent,
        InputAudioBufferClearEvent,
        OutputAudioBufferClearEvent,
        ConversationItemCreateEvent,
        ConversationItemDeleteEvent,
        ConversationItemRetrieveEvent,
        ConversationItemTruncateEvent,
        ResponseCreateEvent,
        ResponseCancelEvent,
    )
}
"""The typed class of each client event type."""
