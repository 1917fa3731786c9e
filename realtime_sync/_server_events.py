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

from ._dialects import BETA_SERVER_EVENTS, GA_SERVER_EVENTS
from ._json import loads
from ._local_events import InvalidFrameEvent
from ._models import DecodeError, Model
from ._objects import ContentPart, ConversationItem, ErrorDetail, RateLimit, Response, Session

__all__ = [
    "ContentPartEvent",
    "ConversationItemEvent",
    "ErrorEvent",
    "GenericEvent",
    "OutputItemEvent",
    "RateLimitsUpdatedEvent",
    "ResponseEvent",
    "ServerEvent",
    "SessionEvent",
    "TextDeltaEvent",
    "TextDoneEvent",
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
