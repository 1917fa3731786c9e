"""Static protocol data of the local server: dialects, endpoints, models, default sessions.

Nothing here keeps state or does I/O (except drawing random ids). The admission logic,
the session simulator and the socket shell all read from this one place.
"""

from __future__ import annotations

import copy
import json
import random
import string
from collections.abc import Iterable, Mapping
from typing import Any

import attrs

from .._dialects import BETA_SESSION_FIELDS, GA_SESSION_FIELDS
from .._endpoints import DEFAULT_MODELS, Dialect

JsonObject = dict[str, Any]

SESSION_SECONDS = 3600  # OpenAI sessions last at most 60 minutes
MIN_COMMIT_MS = 100.0  # the least audio input_audio_buffer.commit accepts
REASON_MAX_BYTES = 123  # RFC 6455 limit for a close reason
DEFAULT_INSTRUCTIONS = "You are a helpful assistant served by realtime_sync's local test server."
GREETING = "Hello! How can I help you today?"

_ID_ALPHABET = string.ascii_letters + string.digits
# Not for secrets: ids only need to be unique and look like the real ones.
rng = random.Random()


def random_id(prefix: str, length: int = 21) -> str:
    """``prefix`` followed by ``length`` random letters and digits, like real ids."""
    return prefix + "".join(rng.choices(_ID_ALPHABET, k=length))


# Models

KNOWN_MODELS: frozenset[str] = frozenset(
    {
        # The GA session's model literal of the official ``openai`` package (3.57)...
        "gpt-realtime",
        "gpt-realtime-1.5",
        "gpt-realtime-2",
        "gpt-realtime-2.1",
        "gpt-realtime-2.1-mini",
        "gpt-realtime-2025-08-28",
        "gpt-realtime-mini",
        "gpt-realtime-mini-2025-10-06",
        "gpt-realtime-mini-2025-12-15",
        "gpt-audio-1.5",
        "gpt-audio-mini",
        "gpt-audio-mini-2025-10-06",
        "gpt-audio-mini-2025-12-15",
        # ...which also lists every model of the beta literal.
        "gpt-4o-realtime-preview",
        "gpt-4o-realtime-preview-2024-10-01",
        "gpt-4o-realtime-preview-2024-12-17",
        "gpt-4o-realtime-preview-2025-06-03",
        "gpt-4o-mini-realtime-preview",
        "gpt-4o-mini-realtime-preview-2024-12-17",
    }
) | frozenset(DEFAULT_MODELS.values())  # whatever the client connects to by default
"""Models the local server accepts on ``/v1/realtime`` unless told otherwise."""


# Endpoints


@attrs.frozen
class Route:
    """One Realtime endpoint path."""

    azure: bool  # accepts the api-key header; any deployment name is a model
    legacy: bool  # Azure's api-version path: always the beta dialect
    required: tuple[str, ...]  # query parameters the endpoint needs

    @property
    def model_param(self) -> str:
        """The query parameter that names the model (or Azure deployment)."""
        return "deployment" if self.legacy else "model"


ROUTES: Mapping[str, Route] = {
    "/v1/realtime": Route(azure=False, legacy=False, required=("model",)),
    "/openai/v1/realtime": Route(azure=True, legacy=False, required=("model",)),
    "/openai/realtime": Route(azure=True, legacy=True, required=("api-version", "deployment")),
}


# Dialects


@attrs.frozen
class DialectSpec:
    """The names and fields that differ between the two dialects."""

    name: Dialect
    session_fields: frozenset[str]  # what session.update may set
    response_fields: frozenset[str]  # what response.create's "response" may set
    item_types: frozenset[str]  # what conversation.item.create may add
    item_added: str
    item_done: str | None
    text_delta: str
    text_done: str
    text_content_type: str  # content part type of assistant text inside an item
    audio_delta: str
    audio_done: str
    transcript_delta: str
    transcript_done: str
    audio_content_type: str  # content part type of assistant audio inside an item
    modalities: str  # the session and response field that lists the output modalities


GA = DialectSpec(
    name="ga",
    response_fields=frozenset(
        {
            "audio",
            "conversation",
            "input",
            "instructions",
            "max_output_tokens",
            "metadata",
            "output_modalities",
            "parallel_tool_calls",
            "prompt",
            "reasoning",
            "tool_choice",
            "tools",
        }
    ),
    item_types=frozenset(
        {
            "message",
            "function_call",
            "function_call_output",
            "mcp_approval_request",
            "mcp_approval_response",
            "mcp_call",
            "mcp_list_tools",
        }
    ),
    session_fields=GA_SESSION_FIELDS,
    item_added="conversation.item.added",
    item_done="conversation.item.done",
    text_delta="response.output_text.delta",
    text_done="response.output_text.done",
    text_content_type="output_text",
    audio_delta="response.output_audio.delta",
    audio_done="response.output_audio.done",
    transcript_delta="response.output_audio_transcript.delta",
    transcript_done="response.output_audio_transcript.done",
    audio_content_type="output_audio",
    modalities="output_modalities",
)
BETA = DialectSpec(
    name="beta",
    response_fields=frozenset(
        {
            "conversation",
            "input",
            "instructions",
            "max_response_output_tokens",
            "metadata",
            "modalities",
            "output_audio_format",
            "temperature",
            "tool_choice",
            "tools",
            "voice",
        }
    ),
    item_types=frozenset({"message", "function_call", "function_call_output"}),
    # A client secret is minted over REST; session.update cannot set one.
    session_fields=BETA_SESSION_FIELDS - {"client_secret"},
    item_added="conversation.item.created",
    item_done=None,
    text_delta="response.text.delta",
    text_done="response.text.done",
    text_content_type="text",
    audio_delta="response.audio.delta",
    audio_done="response.audio.done",
    transcript_delta="response.audio_transcript.delta",
    transcript_done="response.audio_transcript.done",
    audio_content_type="audio",
    modalities="modalities",
)
SPECS: Mapping[Dialect, DialectSpec] = {"ga": GA, "beta": BETA}

GA_TRANSCRIPTION_FIELDS = frozenset({"type", "audio", "include"})
TRANSCRIPTION_SESSION_FIELDS = frozenset(
    {
        "client_secret",  # accepted, never echoed (it configures REST-minted keys)
        "include",
        "input_audio_format",
        "input_audio_noise_reduction",
        "input_audio_transcription",
        "modalities",
        "turn_detection",
    }
)


# Default sessions. They start with text output, so that plain text tests need no setup;
# a session.update (or a response.create) that asks for audio gets spoken answers.


def ga_session(model: str, expires_at: int) -> JsonObject:
    """The GA ``session.created`` session."""
    return {
        "type": "realtime",
        "object": "realtime.session",
        "id": random_id("sess_"),
        "model": model,
        "output_modalities": ["text"],
        "instructions": DEFAULT_INSTRUCTIONS,
        "tools": [],
        "tool_choice": "auto",
        "max_output_tokens": "inf",
        "tracing": None,
        "prompt": None,
        "expires_at": expires_at,
        "audio": {
            "input": {
                "format": {"type": "audio/pcm", "rate": 24000},
                "transcription": None,
                "noise_reduction": None,
                "turn_detection": {
                    "type": "server_vad",
                    "threshold": 0.5,
                    "prefix_padding_ms": 300,
                    "silence_duration_ms": 200,
                    "idle_timeout_ms": None,
                    "create_response": True,
                    "interrupt_response": True,
                },
            },
            "output": {
                "format": {"type": "audio/pcm", "rate": 24000},
                "voice": "marin",
                "speed": 1.0,
            },
        },
        "include": None,
    }


def beta_session(model: str, expires_at: int) -> JsonObject:
    """The beta ``session.created`` session."""
    return {
        "id": random_id("sess_"),
        "object": "realtime.session",
        "expires_at": expires_at,
        "input_audio_noise_reduction": None,
        "turn_detection": {
            "type": "server_vad",
            "threshold": 0.5,
            "prefix_padding_ms": 300,
            "silence_duration_ms": 200,
            "create_response": True,
            "interrupt_response": True,
        },
        "input_audio_format": "pcm16",
        "input_audio_transcription": None,
        "client_secret": None,
        "include": None,
        "model": model,
        "modalities": ["text"],
        "instructions": DEFAULT_INSTRUCTIONS,
        "voice": "alloy",
        "output_audio_format": "pcm16",
        "tool_choice": "auto",
        "temperature": 0.8,
        "max_response_output_tokens": "inf",
        "tools": [],
    }


def transcription_session() -> JsonObject:
    """A transcription session as ``transcription_session.updated`` shows it (beta shape)."""
    return {
        "id": random_id("sess_"),
        "object": "realtime.transcription_session",
        "input_audio_format": "pcm16",
        "input_audio_transcription": None,
        "turn_detection": {
            "type": "server_vad",
            "threshold": 0.5,
            "prefix_padding_ms": 300,
            "silence_duration_ms": 500,
        },
        "input_audio_noise_reduction": None,
        "include": None,
    }


def ga_transcription_session(realtime: Mapping[str, Any]) -> JsonObject:
    """The GA transcription session a realtime session becomes (same id and expiry)."""
    audio_input = (realtime.get("audio") or {}).get("input") or {}
    return {
        "type": "transcription",
        "object": "realtime.transcription_session",
        "id": realtime.get("id"),
        "expires_at": realtime.get("expires_at"),
        "audio": {
            "input": {
                name: copy.deepcopy(audio_input.get(name))
                for name in ("format", "transcription", "noise_reduction", "turn_detection")
            }
        },
        "include": None,
    }


CANCELLED: Mapping[str, str] = {"type": "cancelled", "reason": "client_cancelled"}
RATE_LIMITS: tuple[Mapping[str, Any], ...] = (
    {"name": "requests", "limit": 5000, "remaining": 4999, "reset_seconds": 0.012},
    {"name": "tokens", "limit": 40000, "remaining": 39000, "reset_seconds": 1.5},
)


# Errors


class ClientError(Exception):
    """A client event the server refuses; becomes an ``error`` event, never a close."""

    def __init__(
        self,
        code: str | None,
        message: str,
        *,
        param: str | None = None,
        kind: str = "invalid_request_error",
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.param = param
        self.kind = kind

    def body(self, client_event_id: str | None) -> JsonObject:
        """The ``error`` object of the event that reports this refusal."""
        return {
            "type": self.kind,
            "code": self.code,
            "message": self.message,
            "param": self.param,
            "event_id": client_event_id,
        }


def refuse_unknown(where: str, given: Iterable[str], allowed: frozenset[str]) -> None:
    """Refuse with ``unknown_parameter`` the first field of ``where`` not in ``allowed``."""
    for name in given:
        if name not in allowed:
            raise ClientError(
                "unknown_parameter",
                f"Unknown parameter: '{where}.{name}'.",
                param=f"{where}.{name}",
            )


def object_param(event: Mapping[str, Any], name: str, *, required: bool) -> JsonObject:
    """Field ``name`` of a client event, which must be an object (``{}`` when absent)."""
    value = event.get(name)
    if value is None:
        if required:
            raise ClientError(
                "missing_required_parameter",
                f"Missing required parameter: '{name}'.",
                param=name,
            )
        return {}
    if not isinstance(value, dict):
        raise ClientError(
            "invalid_type", f"Invalid type for '{name}': expected an object.", param=name
        )
    return value


def server_error() -> ClientError:
    """What a client hears when the server itself failed on its event."""
    # Real server_error events carry a null code.
    return ClientError(
        None,
        "The local test server failed while handling this event; "
        "see the 'realtime_sync.testing' log.",
        kind="server_error",
    )


def request_error(code: str, message: str, param: str | None = None) -> JsonObject:
    """An ``invalid_request_error`` object, as opening failures and expiry send it."""
    return {
        "type": "invalid_request_error",
        "code": code,
        "message": message,
        "param": param,
        "event_id": None,
    }


def http_error_body(status: int, message: str) -> JsonObject:
    """An OpenAI-style JSON body of an HTTP error response."""
    kind = "invalid_request_error" if status < 500 else "server_error"
    return {"error": {"message": message, "type": kind, "param": None, "code": None}}


def close_reason(error: Mapping[str, Any]) -> str:
    """``"<type>.<code>"``, the close reason real servers send after an error event."""
    reason = f"{error.get('type')}.{error.get('code')}"
    return reason.encode()[:REASON_MAX_BYTES].decode(errors="ignore")


# Close codes an endpoint may send (RFC 6455 section 7.4 and the IANA registry), besides
# the 3000-4999 range for libraries and applications.
_SENDABLE_CLOSE_CODES = frozenset(
    {1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014}
)


def check_times(times: int | None, none_means: str) -> None:
    """Refuse a use count that is neither ``None`` (``none_means``) nor a positive int."""
    if times is not None and (isinstance(times, bool) or not isinstance(times, int) or times < 1):
        raise ValueError(f"times must be at least 1, or None for {none_means}; not {times!r}")


def check_close(code: int, reason: str) -> None:
    """Refuse a close code or reason that no endpoint may send."""
    if not (code in _SENDABLE_CLOSE_CODES or 3000 <= code < 5000):
        raise ValueError(f"{code} is not a close code an endpoint may send")
    if len(reason.encode()) > REASON_MAX_BYTES:
        raise ValueError(f"close reason longer than {REASON_MAX_BYTES} bytes")


def pushed_frame(event: Mapping[str, Any] | str | bytes) -> str | bytes:
    """The frame a test's ``push()`` sends: a mapping JSON-encoded, with an ``event_id`` if it
    has none; text or bytes as given (so it may be malformed)."""
    if not isinstance(event, Mapping):
        return event
    payload = dict(event)
    payload.setdefault("event_id", random_id("event_"))
    frame: str = json.dumps(payload, separators=(",", ":"), ensure_ascii=False)
    return frame
