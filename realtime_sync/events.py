"""Every typed event and protocol object, in one namespace.

``from realtime_sync.events import TextDeltaEvent, Session`` — the classes handlers receive
(server events and the client's own ``client.*`` events), the objects nested in them, the
catalogues of event names per dialect, and the decoder.
"""

from ._dialects import BETA_SERVER_EVENTS, CLIENT_SIDE_EVENTS, GA_SERVER_EVENTS
from ._local_events import ClosedEvent, HandlerErrorEvent, InvalidFrameEvent
from ._models import DecodeError, Model
from ._objects import ContentPart, ConversationItem, ErrorDetail, RateLimit, Response, Session
from ._server_events import (
    ContentPartEvent,
    ConversationItemEvent,
    ErrorEvent,
    GenericEvent,
    OutputItemEvent,
    RateLimitsUpdatedEvent,
    ResponseEvent,
    ServerEvent,
    SessionEvent,
    TextDeltaEvent,
    TextDoneEvent,
    decode_event,
    decode_payload,
)

__all__ = [
    "BETA_SERVER_EVENTS",
    "CLIENT_SIDE_EVENTS",
    "GA_SERVER_EVENTS",
    "ClosedEvent",
    "ContentPart",
    "ContentPartEvent",
    "ConversationItem",
    "ConversationItemEvent",
    "DecodeError",
    "ErrorDetail",
    "ErrorEvent",
    "GenericEvent",
    "HandlerErrorEvent",
    "InvalidFrameEvent",
    "Model",
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
    "decode_payload",
]
