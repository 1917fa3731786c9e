"""A real WebSocket server on loopback that speaks the OpenAI Realtime protocol.

:class:`LocalRealtimeServer` runs ``websockets``' threaded server in a daemon thread and
answers like api.openai.com (GA dialect) or a beta-dialect endpoint (Azure's legacy
``api-version`` path, or any connection that sends ``OpenAI-Beta: realtime=v1``). It keeps
per-connection session and conversation state, streams text answers, records every client
event and lets a test inject the failures real servers produce.

Error codes this server sends for invalid client input (none of them closes the
connection, like real servers):

- ``invalid_json``: a text frame that is not JSON;
- ``invalid_event``: JSON that is not an object, has no string ``type``, or a binary frame;
- ``invalid_value`` (``param`` ``"type"``): an unknown event type; also bad values elsewhere;
- ``invalid_type``, ``missing_required_parameter``, ``unknown_parameter``: malformed fields;
- ``input_audio_buffer_commit_empty``, ``conversation_already_has_active_response``,
  ``response_cancel_not_active``: as real servers (see :class:`LocalRealtimeServer`).

Unknown item ids get ``invalid_value`` with the parameter named (the specification says only
that the server answers with an error), and so does a ``response.cancel`` naming a response
other than the active one.

The ``error.event_id`` of an error names the client event that caused it (its own
``event_id``), or is ``null`` when that event had none.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import copy
import hmac
import http
import json
import logging
import math
import random
import re
import socket
import string
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, Generic, Literal, TypeVar

import attrs

try:
    from websockets.datastructures import Headers
    from websockets.exceptions import ConnectionClosed
    from websockets.frames import EXTERNAL_CLOSE_CODES, Frame, Opcode
    from websockets.http11 import Request, Response
    from websockets.protocol import Event, State
    from websockets.server import ServerProtocol
    from websockets.sync.server import Server, ServerConnection, serve
    from websockets.typing import Subprotocol
except ImportError as exc:  # pragma: no cover - depends on the installed extras
    raise ImportError(
        "realtime_sync.testing needs the optional 'websockets' package (>= 13): "
        "pip install realtime_sync[server]"
    ) from exc

from .._dialects import BETA_SESSION_FIELDS, GA_SESSION_FIELDS

__all__ = ["AuthMethod", "ConnectionRecord", "Dialect", "LocalRealtimeServer"]

AuthMethod = Literal["header", "subprotocol", "query", "api-key"]
"""How a client presented its key: ``Authorization: Bearer``, the
``openai-insecure-api-key.<key>`` subprotocol, the ``api-key`` query parameter, or the
``api-key`` header (Azure paths only)."""

Dialect = Literal["ga", "beta"]
"""Protocol dialect of a connection."""

_JsonObject = dict[str, Any]

_log = logging.getLogger("realtime_sync.testing")
# websockets logs every request header at DEBUG level; give it its own logger so the
# credential filter below sees all of its records.
_wire_log = logging.getLogger("realtime_sync.testing.websockets")

_CLOSE_TIMEOUT = 2.0  # seconds a closing handshake may take; bounds stop()
_OPEN_TIMEOUT = 5.0  # seconds a client has to send its upgrade request
_JOIN_TIMEOUT = 5.0  # seconds stop() waits for each group of threads
_MAX_MESSAGE = 32 * 2**20  # a 15 MiB audio append is about 20 MiB once base64-encoded
_MAX_QUEUE = 256  # frames buffered per connection before websockets stops reading
_SESSION_SECONDS = 3600  # OpenAI sessions last at most 60 minutes
_MIN_COMMIT_MS = 100.0
_REASON_MAX_BYTES = 123  # RFC 6455 limit for a close reason

_KEY_SUBPROTOCOL_PREFIX = "openai-insecure-api-key."
_BETA_SUBPROTOCOL = "openai-beta.realtime-v1"
_ID_ALPHABET = string.ascii_letters + string.digits
_DEFAULT_INSTRUCTIONS = "You are a helpful assistant served by realtime_sync's local test server."
_GREETING = "Hello! How can I help you today?"
_SECRET_HEADERS = frozenset({"authorization", "api-key"})
_SECRET_PATTERNS = (
    re.compile(r"(openai-insecure-api-key\.)[^\s,]+", re.IGNORECASE),
    re.compile(r"((?:^|[?&\s])api-key=)[^&\s]+", re.IGNORECASE),
    re.compile(r"(bearer\s+)\S+", re.IGNORECASE),
)

# Not for secrets: ids only need to be unique and look like the real ones.
_rng = random.Random()


def _random_id(prefix: str, length: int = 21) -> str:
    return prefix + "".join(_rng.choices(_ID_ALPHABET, k=length))


def _redact(text: str) -> str:
    for pattern in _SECRET_PATTERNS:
        text = pattern.sub(r"\1***", text)
    return text


def _masked_mapping_repr(values: Mapping[str, str]) -> str:
    return repr(
        {
            name: "***" if name.lower() in _SECRET_HEADERS else _redact(value)
            for name, value in values.items()
        }
    )


def _masked_list_repr(values: Sequence[str]) -> str:
    return repr([_redact(value) for value in values])


class _RedactCredentials(logging.Filter):
    """Mask keys in websockets' DEBUG handshake logs."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and args:
            name = args[0]
            if len(args) == 2 and isinstance(name, str) and name.lower() in _SECRET_HEADERS:
                record.args = (name, "***")
            else:
                record.args = tuple(_redact(a) if isinstance(a, str) else a for a in args)
        return True


_wire_log.addFilter(_RedactCredentials())


@attrs.frozen
class ConnectionRecord:
    """What one WebSocket handshake looked like and what followed, at snapshot time.

    :attr:`LocalRealtimeServer.connections` builds these; every field is a fresh copy that
    later traffic does not change (the event dicts in :attr:`received` are shared: treat them
    as read-only). ``repr()`` masks credentials; the fields hold them as received.
    """

    path: str
    """Request path without the query string, e.g. ``"/v1/realtime"``."""
    query: dict[str, str] = attrs.field(repr=_masked_mapping_repr)
    """Query parameters (the last value wins when a name repeats)."""
    headers: dict[str, str] = attrs.field(repr=_masked_mapping_repr)
    """Request headers with lower-case names; repeated headers are joined with ``", "``."""
    subprotocols: list[str] = attrs.field(repr=_masked_list_repr)
    """Subprotocols the client offered, in order."""
    subprotocol: str | None
    """Subprotocol the server selected, or ``None``."""
    auth: AuthMethod | None
    """How the accepted key was presented; with a wrong key, the first method tried;
    ``None`` when the client presented no key."""
    dialect: Dialect
    """``"beta"`` or ``"ga"``, decided from the headers, subprotocols and path."""
    status: int
    """HTTP status of the handshake response: 101 when upgraded, else the rejection's."""
    received: list[_JsonObject]
    """Client events received on this connection (parsed JSON objects), in order."""
    open: bool
    """Whether the WebSocket connection was open when the snapshot was taken."""


@attrs.frozen
class _Route:
    azure: bool  # accepts the api-key header
    legacy: bool  # Azure's api-version path: always the beta dialect
    required: tuple[str, ...]  # query parameters the endpoint needs


_ROUTES = {
    "/v1/realtime": _Route(azure=False, legacy=False, required=("model",)),
    "/openai/v1/realtime": _Route(azure=True, legacy=False, required=("model",)),
    "/openai/realtime": _Route(azure=True, legacy=True, required=("api-version", "deployment")),
}


@attrs.frozen
class _DialectSpec:
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


_GA = _DialectSpec(
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
)
_BETA = _DialectSpec(
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
)


def _ga_session(model: str, expires_at: int) -> _JsonObject:
    return {
        "type": "realtime",
        "object": "realtime.session",
        "id": _random_id("sess_"),
        "model": model,
        "output_modalities": ["audio"],
        "instructions": _DEFAULT_INSTRUCTIONS,
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


def _beta_session(model: str, expires_at: int) -> _JsonObject:
    return {
        "id": _random_id("sess_"),
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
        "modalities": ["text", "audio"],
        "instructions": _DEFAULT_INSTRUCTIONS,
        "voice": "alloy",
        "output_audio_format": "pcm16",
        "tool_choice": "auto",
        "temperature": 0.8,
        "max_response_output_tokens": "inf",
        "tools": [],
    }


def _error_body(status: int, message: str) -> _JsonObject:
    kind = "invalid_request_error" if status < 500 else "server_error"
    return {"error": {"message": message, "type": kind, "param": None, "code": None}}


def _http_response(
    status: int, body: bytes | str | Mapping[str, Any] | None, headers: Mapping[str, str]
) -> Response:
    if body is None:
        body = _error_body(status, f"Handshake rejected with HTTP {status} by the test server.")
    if isinstance(body, Mapping):
        payload, content_type = json.dumps(body).encode(), "application/json"
    elif isinstance(body, str):
        payload, content_type = body.encode(), "text/plain; charset=utf-8"
    else:
        payload, content_type = bytes(body), "application/octet-stream"
    try:
        phrase = http.HTTPStatus(status).phrase
    except ValueError:
        phrase = "Unknown"
    response_headers = Headers(
        [
            ("Connection", "close"),
            ("Content-Type", content_type),
            ("Content-Length", str(len(payload))),
        ]
    )
    for name, value in headers.items():
        if name in response_headers:
            del response_headers[name]  # a custom header replaces a default one
        response_headers[name] = value
    return Response(status, phrase, response_headers, payload)


def _check_close(code: int, reason: str) -> None:
    if not (code in EXTERNAL_CLOSE_CODES or 3000 <= code < 5000):
        raise ValueError(f"{code} is not a close code an endpoint may send")
    if len(reason.encode()) > _REASON_MAX_BYTES:
        raise ValueError(f"close reason longer than {_REASON_MAX_BYTES} bytes")


def _close_reason(error: Mapping[str, Any]) -> str:
    reason = f"{error.get('type')}.{error.get('code')}"
    return reason.encode()[:_REASON_MAX_BYTES].decode(errors="ignore")


def _split_text(text: str, pieces: int) -> list[str]:
    """Split into at most ``pieces`` non-empty chunks (one empty chunk for "")."""
    count = max(1, min(pieces, len(text)))
    size, extra = divmod(len(text), count)
    chunks, start = [], 0
    for index in range(count):
        end = start + size + (1 if index < extra else 0)
        chunks.append(text[start:end])
        start = end
    return chunks


def _estimate_tokens(text: str) -> int:
    return (len(text) + 3) // 4


def _item_text(item: Mapping[str, Any]) -> str:
    content = item.get("content")
    if not isinstance(content, list):
        return ""
    texts = []
    for part in content:
        if isinstance(part, dict):
            value = part.get("text", part.get("transcript"))
            if isinstance(value, str) and value:
                texts.append(value)
    return " ".join(texts)


def _last_user_text(items: Iterable[Mapping[str, Any]]) -> str:
    for item in reversed(list(items)):
        if item.get("type") == "message" and item.get("role") == "user":
            text = _item_text(item)
            if text:
                return text
    return ""


class _ClientError(Exception):
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


def _refuse_unknown(where: str, given: Iterable[str], allowed: frozenset[str]) -> None:
    """Answer ``unknown_parameter`` for the first field of ``where`` the dialect lacks."""
    for name in given:
        if name not in allowed:
            raise _ClientError(
                "unknown_parameter",
                f"Unknown parameter: '{where}.{name}'.",
                param=f"{where}.{name}",
            )


@attrs.frozen
class _Rejection:
    status: int
    body: bytes | str | Mapping[str, Any] | None
    headers: dict[str, str]


@attrs.frozen
class _Failure:
    code: int
    error: _JsonObject


_P = TypeVar("_P", _Rejection, _Failure)


@attrs.define(eq=False)
class _Fault(Generic[_P]):
    payload: _P
    remaining: int | None  # None: until clear_faults()


@attrs.define(eq=False)
class _ConnState:
    """Mutable per-connection bookkeeping; guarded by the server's condition lock."""

    ws: ServerConnection
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    subprotocols: list[str]
    subprotocol: str | None
    auth: AuthMethod | None
    key_ok: bool
    dialect: Dialect
    route: _Route | None
    status: int = 0
    received: list[_JsonObject] = attrs.Factory(list)
    established: bool = False  # the first server event (or failure) was sent

    def is_open(self) -> bool:
        return self.status == 101 and self.ws.state is State.OPEN


_GA_TRANSCRIPTION_FIELDS = frozenset({"type", "audio", "include"})
_TRANSCRIPTION_SESSION_FIELDS = frozenset(
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
_CANCELLED = {"type": "cancelled", "reason": "client_cancelled"}


def _transcription_session() -> _JsonObject:
    """A transcription session as ``transcription_session.updated`` shows it (beta shape)."""
    return {
        "id": _random_id("sess_"),
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


def _ga_transcription_session(realtime: Mapping[str, Any]) -> _JsonObject:
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


@attrs.define(eq=False)
class _Job:
    """One response from ``response.create`` to ``response.done``; guarded by the session lock."""

    response: _JsonObject  # the response object; its status changes when it ends
    text: str  # the full answer
    in_conversation: bool
    source: list[_JsonObject]  # the prompt items, for the usage estimate
    instructions: str | None
    started: bool = False  # taken by the response thread
    cancelled: bool = False  # response.cancel was accepted
    # What was streamed so far: the finishing events describe exactly this.
    item: _JsonObject | None = None
    previous_id: str | None = None
    part_added: bool = False
    produced: str = ""

    @property
    def id(self) -> str:
        response_id: str = self.response["id"]
        return response_id


class _Session:
    """Protocol state of one accepted connection: session, conversation, audio buffer.

    Client events are handled on the connection's handler thread, in arrival order;
    responses stream on the connection's response thread (started on the first
    ``response.create``). Both hold :attr:`lock` while they change state and send the
    events that describe the change, so the client sees a consistent order; the response
    thread releases it between steps and while it waits ``delta_interval``.
    """

    def __init__(
        self,
        ws: ServerConnection,
        spec: _DialectSpec,
        session: _JsonObject,
        reply: Callable[[str], str],
        delta_chunks: int,
        *,
        delta_interval: float = 0.0,
        register_thread: Callable[[threading.Thread], None] | None = None,
    ) -> None:
        self.ws = ws
        self.spec = spec
        self.session = session
        self.reply = reply
        self.delta_chunks = delta_chunks
        self.delta_interval = delta_interval
        self.register_thread = register_thread
        self.items: list[_JsonObject] = []
        self.audio_bytes = 0
        self.conversation_id = _random_id("conv_")
        self.last_response_id: str | None = None
        self.transcription = _transcription_session()
        self.transcribing = False  # a transcription_session.update was accepted
        self.lock = threading.RLock()
        self.wakeup = threading.Condition(self.lock)
        self.active: _Job | None = None
        self.closing = False
        self.worker: threading.Thread | None = None

    # Sending

    def send(self, event: Mapping[str, Any]) -> None:
        """Send ``event`` with a fresh ``event_id`` right after its ``type``."""
        payload: _JsonObject = {"type": event["type"], "event_id": _random_id("event_")}
        payload.update(event)
        self.ws.send(json.dumps(payload, separators=(",", ":"), ensure_ascii=False))

    def send_error(self, error: _ClientError, client_event_id: str | None) -> None:
        """Send an ``error`` event; the connection stays open."""
        self.send(
            {
                "type": "error",
                "error": {
                    "type": error.kind,
                    "code": error.code,
                    "message": error.message,
                    "param": error.param,
                    "event_id": client_event_id,
                },
            }
        )

    # Dispatch

    def dispatch(self, event: _JsonObject) -> None:
        """Answer one client event through :data:`_HANDLERS`."""
        client_event_id = event.get("event_id")
        if not isinstance(client_event_id, str):
            client_event_id = None
        with self.lock:
            try:
                kind = event.get("type")
                if kind is None:
                    raise _ClientError("invalid_event", "The event has no 'type' field.")
                if not isinstance(kind, str):
                    raise _ClientError(
                        "invalid_event", "The event's 'type' field must be a string."
                    )
                handler = _HANDLERS.get(kind)
                if handler is None:
                    raise _ClientError(
                        "invalid_value",
                        f"Unknown event type {kind!r}. Supported client event types: "
                        f"{', '.join(sorted(_HANDLERS))}.",
                        param="type",
                    )
                handler(self, event)
            except _ClientError as error:
                self.send_error(error, client_event_id)
            except ConnectionClosed:
                raise
            except Exception:
                # A failing reply callable or a bug here must not look like a dead server.
                _log.exception(
                    "local realtime server failed to handle a %r event", event.get("type")
                )
                self.send_error(_server_error(), client_event_id)

    def close(self, timeout: float) -> None:
        """Stop the response thread (no more events from it) and join it."""
        # Set before taking the lock, which the response thread may hold while a send
        # blocks; it reads the flag under the lock after every step and wait.
        self.closing = True
        with self.wakeup:
            self.wakeup.notify_all()
        worker = self.worker
        if worker is not None and worker is not threading.current_thread():
            worker.join(timeout)

    # Helpers

    def _object(self, event: Mapping[str, Any], name: str, *, required: bool) -> _JsonObject:
        value = event.get(name)
        if value is None:
            if required:
                raise _ClientError(
                    "missing_required_parameter",
                    f"Missing required parameter: '{name}'.",
                    param=name,
                )
            return {}
        if not isinstance(value, dict):
            raise _ClientError(
                "invalid_type", f"Invalid type for '{name}': expected an object.", param=name
            )
        return value

    def _index_of(self, item_id: object, param: str) -> int:
        if not isinstance(item_id, str):
            raise _ClientError(
                "missing_required_parameter" if item_id is None else "invalid_type",
                f"'{param}' must be the id of a conversation item.",
                param=param,
            )
        for index, item in enumerate(self.items):
            if item.get("id") == item_id:
                return index
        raise _ClientError(
            "invalid_value",
            f"No conversation item with id '{item_id}' exists.",
            param=param,
        )

    def _insert(self, item: _JsonObject, index: int) -> str | None:
        """Insert ``item`` at ``index``; return the previous item's id."""
        self.items.insert(index, item)
        return self.items[index - 1]["id"] if index > 0 else None

    def _announce_item(self, item: _JsonObject, previous_id: str | None) -> None:
        """Tell the client about a complete new conversation item."""
        self.send({"type": self.spec.item_added, "previous_item_id": previous_id, "item": item})
        if self.spec.item_done is not None:
            self.send({"type": self.spec.item_done, "previous_item_id": previous_id, "item": item})

    def _bytes_per_ms(self) -> float:
        if self.transcribing:
            fmt = self.transcription.get("input_audio_format", "pcm16")
            return 48.0 if fmt == "pcm16" else 8.0
        if self.spec.name == "ga":
            audio = self.session.get("audio") or {}
            fmt = ((audio.get("input") or {}).get("format") or {}).get("type", "audio/pcm")
            return 48.0 if fmt == "audio/pcm" else 8.0
        return 48.0 if self.session.get("input_audio_format", "pcm16") == "pcm16" else 8.0

    # Handlers: session

    def on_session_update(self, event: _JsonObject) -> None:
        # Copied: the session must not share objects with the recorded client event.
        update = copy.deepcopy(self._object(event, "session", required=True))
        target, fields = self.session, self.spec.session_fields
        if self.spec.name == "ga":
            target = self._ga_update_target(update)
            if target.get("type") == "transcription":
                fields = _GA_TRANSCRIPTION_FIELDS
                audio = update.get("audio")
                if isinstance(audio, dict) and set(audio) - {"input"}:
                    name = sorted(set(audio) - {"input"})[0]
                    raise _ClientError(
                        "unknown_parameter",
                        f"Unknown parameter: 'session.audio.{name}' (transcription session).",
                        param=f"session.audio.{name}",
                    )
        _refuse_unknown("session", update, fields)
        for name, value in update.items():
            current = target.get(name)
            if name == "audio" and isinstance(value, dict) and isinstance(current, dict):
                # GA nests audio settings; merge input/output one level deeper.
                for direction, settings in value.items():
                    old = current.get(direction)
                    if isinstance(settings, dict) and isinstance(old, dict):
                        current[direction] = {**old, **settings}
                    else:
                        current[direction] = settings
            else:
                target[name] = value
        self.session = target
        self.send({"type": "session.updated", "session": self.session})

    def _ga_update_target(self, update: Mapping[str, Any]) -> _JsonObject:
        """The session a GA ``session.update`` applies to (a new one when the type changes)."""
        if "type" not in update:
            raise _ClientError(
                "missing_required_parameter",
                "Missing required parameter: 'session.type'.",
                param="session.type",
            )
        wanted, current = update["type"], self.session.get("type")
        if wanted not in {"realtime", "transcription"}:
            raise _ClientError(
                "invalid_value",
                f"Invalid value for 'session.type': {wanted!r}; expected 'realtime' or "
                "'transcription'.",
                param="session.type",
            )
        if wanted == current:
            return self.session
        if current == "transcription":
            raise _ClientError(
                "invalid_value",
                "This is a transcription session; 'session.type' cannot change back to "
                f"{wanted!r}.",
                param="session.type",
            )
        return _ga_transcription_session(self.session)

    def on_transcription_session_update(self, event: _JsonObject) -> None:
        update = copy.deepcopy(self._object(event, "session", required=True))
        _refuse_unknown("session", update, _TRANSCRIPTION_SESSION_FIELDS)
        update.pop("client_secret", None)
        self.transcription.update(update)
        self.transcribing = True
        self.send({"type": "transcription_session.updated", "session": self.transcription})

    # Handlers: conversation

    def on_item_create(self, event: _JsonObject) -> None:
        item = copy.deepcopy(self._object(event, "item", required=True))
        if item.get("type") not in self.spec.item_types:
            raise _ClientError(
                "invalid_value",
                f"'item.type' must be one of {', '.join(sorted(self.spec.item_types))}.",
                param="item.type",
            )
        item_id = item.get("id")
        if item_id is None:
            item_id = _random_id("item_")
        elif not isinstance(item_id, str) or any(i["id"] == item_id for i in self.items):
            raise _ClientError(
                "invalid_value",
                f"Item id {item_id!r} is not a string or already exists.",
                param="item.id",
            )
        after = event.get("previous_item_id")
        if after is None:
            index = len(self.items)
        elif after == "root":
            index = 0
        else:
            index = self._index_of(after, "previous_item_id") + 1
        stored = {"id": item_id, "object": "realtime.item", **item}
        stored.update(id=item_id, status="completed")
        self._announce_item(stored, self._insert(stored, index))

    def on_item_delete(self, event: _JsonObject) -> None:
        index = self._index_of(event.get("item_id"), "item_id")
        item = self.items.pop(index)
        self.send({"type": "conversation.item.deleted", "item_id": item["id"]})

    def on_item_retrieve(self, event: _JsonObject) -> None:
        index = self._index_of(event.get("item_id"), "item_id")
        self.send({"type": "conversation.item.retrieved", "item": self.items[index]})

    def on_item_truncate(self, event: _JsonObject) -> None:
        item = self.items[self._index_of(event.get("item_id"), "item_id")]
        if item.get("role") != "assistant":
            raise _ClientError(
                "invalid_value", "Only assistant message items can be truncated.", param="item_id"
            )
        content = item.get("content") or []
        for name, limit in (("content_index", len(content)), ("audio_end_ms", None)):
            value = event.get(name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise _ClientError(
                    "missing_required_parameter" if value is None else "invalid_type",
                    f"'{name}' must be an integer.",
                    param=name,
                )
            if value < 0 or (limit is not None and value >= limit):
                raise _ClientError("invalid_value", f"'{name}' is out of range.", param=name)
        self.send(
            {
                "type": "conversation.item.truncated",
                "item_id": item["id"],
                "content_index": event["content_index"],
                "audio_end_ms": event["audio_end_ms"],
            }
        )

    # Handlers: input audio buffer

    def on_audio_append(self, event: _JsonObject) -> None:
        audio = event.get("audio")
        if not isinstance(audio, str):
            raise _ClientError(
                "missing_required_parameter" if audio is None else "invalid_type",
                "'audio' must be a base64-encoded string.",
                param="audio",
            )
        try:
            self.audio_bytes += len(base64.b64decode(audio, validate=True))
        except (binascii.Error, ValueError):
            raise _ClientError(
                "invalid_value", "'audio' is not valid base64.", param="audio"
            ) from None

    def on_audio_commit(self, _event: _JsonObject) -> None:
        buffered_ms = self.audio_bytes / self._bytes_per_ms()
        if buffered_ms < _MIN_COMMIT_MS:
            raise _ClientError(
                "input_audio_buffer_commit_empty",
                f"Cannot commit the input audio buffer: it holds {buffered_ms:.2f} ms of audio, "
                f"at least {_MIN_COMMIT_MS:.0f} ms are needed.",
            )
        self.audio_bytes = 0
        item: _JsonObject = {
            "id": _random_id("item_"),
            "object": "realtime.item",
            "type": "message",
            "status": "completed",
            "role": "user",
            "content": [{"type": "input_audio", "transcript": None}],
        }
        previous_id = self._insert(item, len(self.items))
        self.send(
            {
                "type": "input_audio_buffer.committed",
                "previous_item_id": previous_id,
                "item_id": item["id"],
            }
        )
        self._announce_item(item, previous_id)

    def on_audio_clear(self, _event: _JsonObject) -> None:
        self.audio_bytes = 0
        self.send({"type": "input_audio_buffer.cleared"})

    def on_output_audio_clear(self, _event: _JsonObject) -> None:
        # The active response's audio, else the last response's (it may still be playing).
        response_id = self.active.id if self.active is not None else self.last_response_id
        self.send({"type": "output_audio_buffer.cleared", "response_id": response_id})

    # Handlers: responses

    def on_response_cancel(self, event: _JsonObject) -> None:
        response_id = event.get("response_id")
        if response_id is not None and not isinstance(response_id, str):
            raise _ClientError(
                "invalid_type", "'response_id' must be a string.", param="response_id"
            )
        job = self.active
        if job is None or job.cancelled:
            raise _ClientError(
                "response_cancel_not_active",
                "There is no active response to cancel."
                if response_id is None
                else f"Response '{response_id}' is not active; there is nothing to cancel.",
                param=None if response_id is None else "response_id",
            )
        if response_id is not None and response_id != job.id:
            raise _ClientError(
                "invalid_value",
                f"Cannot cancel response '{response_id}': the active response is '{job.id}'.",
                param="response_id",
            )
        # Nothing is sent here: the response thread ends the response with the done
        # events of what it produced, a cancelled response.done and rate_limits.updated.
        job.cancelled = True
        self.wakeup.notify_all()

    def on_response_create(self, event: _JsonObject) -> None:
        params = self._object(event, "response", required=False)
        _refuse_unknown("response", params, self.spec.response_fields)
        if self.active is not None:
            raise _ClientError(
                "conversation_already_has_active_response",
                f"Conversation already has an active response in progress: {self.active.id}. "
                "Wait for its response.done before creating another one.",
            )
        conversation = params.get("conversation", "auto")
        if conversation is not None and not isinstance(conversation, str):
            raise _ClientError(
                "invalid_type",
                "'response.conversation' must be 'auto' or 'none'.",
                param="response.conversation",
            )
        instructions = params.get("instructions")
        if instructions is not None and not isinstance(instructions, str):
            raise _ClientError(
                "invalid_type",
                "'response.instructions' must be a string.",
                param="response.instructions",
            )
        in_conversation = conversation != "none"
        source = self._response_input(params["input"]) if "input" in params else list(self.items)
        text = self.reply(_last_user_text(source))
        response_id = _random_id("resp_")
        self.active = _Job(
            response=self._response_object(response_id, params, in_conversation),
            text=text,
            in_conversation=in_conversation,
            source=copy.deepcopy(source),
            instructions=instructions,
        )
        if self.worker is None:
            self.worker = threading.Thread(
                target=self._run_responses,
                name="realtime_sync-local-server-response",
                daemon=True,
            )
            if self.register_thread is not None:
                self.register_thread(self.worker)
            self.worker.start()
        self.wakeup.notify_all()

    def _response_input(self, value: object) -> list[_JsonObject]:
        if not isinstance(value, list):
            raise _ClientError(
                "invalid_type", "'response.input' must be a list of items.", param="response.input"
            )
        items = []
        for entry in value:
            if not isinstance(entry, dict):
                raise _ClientError(
                    "invalid_type",
                    "'response.input' items must be objects.",
                    param="response.input",
                )
            if entry.get("type") == "item_reference":
                items.append(self.items[self._index_of(entry.get("id"), "response.input")])
            else:
                items.append(entry)
        return items

    def _response_object(
        self, response_id: str, params: Mapping[str, Any], in_conversation: bool
    ) -> _JsonObject:
        common: _JsonObject = {
            "object": "realtime.response",
            "id": response_id,
            "status": "in_progress",
            "status_details": None,
            "output": [],
            "conversation_id": self.conversation_id if in_conversation else None,
        }
        session = self.session
        if self.spec.name == "ga":
            output_audio = (session.get("audio") or {}).get("output") or {}
            specific: _JsonObject = {
                # The answer is always text, whatever the session's modalities say.
                "output_modalities": ["text"],
                "max_output_tokens": params.get(
                    "max_output_tokens", session.get("max_output_tokens", "inf")
                ),
                "audio": {
                    "output": {
                        "format": output_audio.get("format"),
                        "voice": output_audio.get("voice"),
                    }
                },
            }
        else:
            specific = {
                "modalities": ["text"],
                "voice": params.get("voice", session.get("voice")),
                "output_audio_format": session.get("output_audio_format"),
                "temperature": params.get("temperature", session.get("temperature")),
                "max_output_tokens": params.get(
                    "max_response_output_tokens", session.get("max_response_output_tokens", "inf")
                ),
            }
        return {**common, **specific, "usage": None, "metadata": params.get("metadata")}

    # The response thread

    def _run_responses(self) -> None:
        """Stream each accepted response, one at a time, until the connection ends."""
        while True:
            with self.wakeup:
                while not self.closing and (self.active is None or self.active.started):
                    self.wakeup.wait()
                if self.closing:
                    return
                job = self.active
                assert job is not None
                job.started = True
            try:
                self._stream(job)
            except ConnectionClosed:
                return  # the handler thread sees the close too and ends the session
            except Exception:
                _log.exception("local realtime server failed while streaming a response")
                with self.lock:
                    if self.active is job:
                        self.active = None
                    with contextlib.suppress(ConnectionClosed):
                        self.send_error(_server_error(), None)

    def _stream(self, job: _Job) -> None:
        """Send one response's events; stop early on cancel, silently on close."""
        with self.lock:
            if self.closing:
                return
            self.send({"type": "response.created", "response": job.response})
        steps = self._text_message_steps(job, 0)
        while True:
            with self.lock:
                if self.closing:
                    return
                if job.cancelled:
                    break
                delay = next(steps, None)  # runs one step, with the lock held
                if delay is None:
                    break
                if delay > 0:
                    # Releases the lock while it waits; a cancel or a close wakes it.
                    self.wakeup.wait_for(lambda: job.cancelled or self.closing, delay)
        with self.lock:
            if not self.closing:
                self._finish(job, 0)

    def _where(self, job: _Job, output_index: int) -> _JsonObject:
        assert job.item is not None
        return {
            "response_id": job.id,
            "item_id": job.item["id"],
            "output_index": output_index,
            "content_index": 0,
        }

    def _text_message_steps(self, job: _Job, output_index: int) -> Iterator[float]:
        """Stream one assistant text message up to its last delta.

        Each step sends its events and then yields how long to wait before the next one.
        :meth:`_finish` sends the closing events of whatever was streamed.
        """
        item: _JsonObject = {
            "id": _random_id("item_"),
            "object": "realtime.item",
            "type": "message",
            "status": "in_progress",
            "role": "assistant",
            "content": [],
        }
        job.item = item
        self.send(
            {
                "type": "response.output_item.added",
                "response_id": job.id,
                "output_index": output_index,
                "item": item,
            }
        )
        if job.in_conversation:
            job.previous_id = self._insert(item, len(self.items))
            self.send(
                {"type": self.spec.item_added, "previous_item_id": job.previous_id, "item": item}
            )
        yield 0.0
        where = self._where(job, output_index)
        self.send(
            {"type": "response.content_part.added", **where, "part": {"type": "text", "text": ""}}
        )
        job.part_added = True
        for piece in _split_text(job.text, self.delta_chunks):
            yield self.delta_interval
            delta: _JsonObject = {"type": self.spec.text_delta, **where, "delta": piece}
            if self.spec.name == "ga":
                # GA servers pad deltas with random characters against length side channels.
                delta["obfuscation"] = _random_id("", _rng.randint(2, 12))
            self.send(delta)
            job.produced += piece

    def _finish(self, job: _Job, output_index: int) -> None:
        """Close what was streamed, then send ``response.done`` and ``rate_limits.updated``."""
        cancelled = job.cancelled
        item = job.item
        if item is not None:
            if job.part_added:
                where = self._where(job, output_index)
                part = {"type": "text", "text": job.produced}
                self.send({"type": self.spec.text_done, **where, "text": job.produced})
                self.send({"type": "response.content_part.done", **where, "part": part})
                item["content"] = [{"type": self.spec.text_content_type, "text": job.produced}]
            item["status"] = "incomplete" if cancelled else "completed"
            self.send(
                {
                    "type": "response.output_item.done",
                    "response_id": job.id,
                    "output_index": output_index,
                    "item": item,
                }
            )
            if job.in_conversation and self.spec.item_done is not None:
                self.send(
                    {"type": self.spec.item_done, "previous_item_id": job.previous_id, "item": item}
                )
        response = job.response
        response["status"] = "cancelled" if cancelled else "completed"
        response["status_details"] = dict(_CANCELLED) if cancelled else None
        response["output"] = [] if item is None else [item]
        response["usage"] = self._usage(job.source, job.produced, job.instructions)
        # The response ends before response.done goes out: a client that saw it may
        # create the next one at once.
        self.active = None
        self.last_response_id = job.id
        self.send({"type": "response.done", "response": response})
        # Real servers report rate limits after every response.done.
        self.send(
            {
                "type": "rate_limits.updated",
                "rate_limits": [
                    {"name": "requests", "limit": 5000, "remaining": 4999, "reset_seconds": 0.012},
                    {"name": "tokens", "limit": 40000, "remaining": 39000, "reset_seconds": 1.5},
                ],
            }
        )

    def _usage(
        self, source: Iterable[Mapping[str, Any]], text: str, instructions: str | None
    ) -> _JsonObject:
        if instructions is None:
            session_instructions = self.session.get("instructions")
            instructions = session_instructions if isinstance(session_instructions, str) else ""
        prompt = " ".join(_item_text(item) for item in source) + instructions
        input_tokens, output_tokens = _estimate_tokens(prompt), _estimate_tokens(text)
        cached: _JsonObject = {"text_tokens": 0, "audio_tokens": 0}
        input_details: _JsonObject = {
            "text_tokens": input_tokens,
            "audio_tokens": 0,
            "cached_tokens": 0,
            "cached_tokens_details": cached,
        }
        if self.spec.name == "ga":
            input_details["image_tokens"] = cached["image_tokens"] = 0
        return {
            "total_tokens": input_tokens + output_tokens,
            "input_tokens": input_tokens,
            "output_tokens": output_tokens,
            "input_token_details": input_details,
            "output_token_details": {"text_tokens": output_tokens, "audio_tokens": 0},
        }


def _server_error() -> _ClientError:
    # Real server_error events carry a null code.
    return _ClientError(
        None,
        "The local test server failed while handling this event; "
        "see the 'realtime_sync.testing' log.",
        kind="server_error",
    )


# One handler per client event type (the same 12 names in both dialects); add a row to
# support another event.
_HANDLERS: dict[str, Callable[[_Session, _JsonObject], None]] = {
    "session.update": _Session.on_session_update,
    "transcription_session.update": _Session.on_transcription_session_update,
    "conversation.item.create": _Session.on_item_create,
    "conversation.item.delete": _Session.on_item_delete,
    "conversation.item.retrieve": _Session.on_item_retrieve,
    "conversation.item.truncate": _Session.on_item_truncate,
    "input_audio_buffer.append": _Session.on_audio_append,
    "input_audio_buffer.commit": _Session.on_audio_commit,
    "input_audio_buffer.clear": _Session.on_audio_clear,
    "output_audio_buffer.clear": _Session.on_output_audio_clear,
    "response.create": _Session.on_response_create,
    "response.cancel": _Session.on_response_cancel,
}


def _connection_class(
    pongs: threading.Event, track: Callable[[ServerConnection], None]
) -> type[ServerConnection]:
    """A ServerConnection that can stop answering pings and registers itself."""

    class _RealtimeServerConnection(ServerConnection):
        def __init__(
            self, sock: socket.socket, protocol: ServerProtocol, server: Server, **kwargs: Any
        ) -> None:
            threading.current_thread().name = "realtime_sync-local-server-conn"
            # The sans-I/O protocol queues a PONG for every PING it parses, before any
            # application code sees the ping; filtering at send_frame is the only place to
            # emulate a peer that stopped answering pings while the connection stays up.
            send_frame = protocol.send_frame

            def send_frame_unless_muted_pong(frame: Frame) -> None:
                if frame.opcode is not Opcode.PONG or pongs.is_set():
                    send_frame(frame)

            protocol.send_frame = send_frame_unless_muted_pong  # type: ignore[method-assign]
            super().__init__(sock, protocol, server, **kwargs)
            track(self)

        def process_event(self, event: Event) -> None:
            super().process_event(event)
            if isinstance(event, Frame) and event.opcode is Opcode.CLOSE:
                # Our close frame and FIN are sent by now. The threaded server would then
                # wait, with no timeout, for the client to close TCP; like real servers
                # (RFC 6455 7.1.1: the server closes first), end the connection instead.
                with contextlib.suppress(OSError):
                    self.socket.shutdown(socket.SHUT_RD)

    return _RealtimeServerConnection


def _choose_subprotocol(offered: Sequence[str]) -> str | None:
    # Clients that offer subprotocols require one back; never echo the key-bearing one.
    if "realtime" in offered:
        return "realtime"
    for name in offered:
        if not name.startswith(_KEY_SUBPROTOCOL_PREFIX):
            return name
    return None


def _credentials(
    route: _Route | None,
    headers: Mapping[str, str],
    offered: Sequence[str],
    query: Mapping[str, str],
) -> list[tuple[AuthMethod, str]]:
    """Every key the client presented, in the order they are checked."""
    found: list[tuple[AuthMethod, str]] = []
    scheme, _, token = headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        found.append(("header", token.strip()))
    found.extend(
        ("subprotocol", name[len(_KEY_SUBPROTOCOL_PREFIX) :])
        for name in offered
        if name.startswith(_KEY_SUBPROTOCOL_PREFIX) and len(name) > len(_KEY_SUBPROTOCOL_PREFIX)
    )
    if query.get("api-key"):
        found.append(("query", query["api-key"]))
    if route is not None and route.azure and headers.get("api-key"):
        found.append(("api-key", headers["api-key"]))
    return found


class LocalRealtimeServer:
    """A local OpenAI Realtime server for tests, on a real loopback WebSocket.

    Use it as a context manager (or call :meth:`start` / :meth:`stop`)::

        with LocalRealtimeServer(api_key="sk-test", reply="Hi!") as server:
            ...  # connect a client to f"{server.url}?model=gpt-realtime" with key "sk-test"
            server.wait_for_received("response.create")

    Endpoints: ``/v1/realtime?model=...`` (OpenAI), ``/openai/v1/realtime?model=...``
    (Azure GA) and ``/openai/realtime?api-version=...&deployment=...`` (Azure legacy,
    beta dialect); anything else gets HTTP 404. Every connection starts with
    ``session.created``. Every client event type of both dialects is answered as a real
    server would: ``session.update``, ``transcription_session.update``,
    ``conversation.item.create`` / ``delete`` / ``retrieve`` / ``truncate``,
    ``input_audio_buffer.append`` / ``commit`` / ``clear``, ``output_audio_buffer.clear``,
    ``response.create`` and ``response.cancel``. Test controls (:meth:`reject_handshake`,
    :meth:`fail_after_accept`, :meth:`push`, :meth:`drop_connections`,
    :meth:`close_connections`, :meth:`answer_pings`) are thread-safe.

    **Responses** stream a text answer (whatever the session's modalities) on a response
    thread of their connection, ``delta_chunks`` deltas ``delta_interval`` seconds apart,
    while the connection goes on reading and answering client events in arrival order. A
    response is active from its ``response.create`` until its ``response.done``; then
    ``rate_limits.updated`` follows. While one is active:

    - another ``response.create`` gets an ``error`` with code
      ``conversation_already_has_active_response`` (naming the active response; the active
      one goes on). Out-of-band responses (``response.conversation == "none"``) count like
      any other: a connection has at most one active response (real servers allow
      out-of-band responses in parallel with the conversation's);
    - ``response.cancel`` (with no ``response_id``, or the active one's) stops the stream:
      the done events of what was produced (``response.output_text.done`` /
      ``response.text.done``, ``response.content_part.done``,
      ``response.output_item.done`` with item status ``incomplete``, and in GA
      ``conversation.item.done``), then ``response.done`` with status ``cancelled`` and
      ``status_details`` ``{"type": "cancelled", "reason": "client_cancelled"}``, then
      ``rate_limits.updated``. The partial item stays in the conversation. A cancel naming
      another response gets ``invalid_value`` (param ``response_id``); a cancel with no
      active response (or one already cancelled) gets ``response_cancel_not_active``;
    - ``output_audio_buffer.clear`` gets ``output_audio_buffer.cleared`` with the active
      response's id (when idle: the last response's id, or ``null`` before any).

    ``response.create`` honours ``response.metadata`` (echoed in the response),
    ``response.conversation == "none"`` (no conversation events, ``conversation_id``
    ``null``), ``response.input`` (items and item references: the prompt instead
    of the conversation) and ``response.instructions`` (only in the usage estimate).

    **Transcription sessions**: a GA ``session.update`` whose session has ``type:
    "transcription"`` turns the session into a transcription session (same id; fields
    ``type``, ``audio.input`` and ``include``) and answers ``session.updated`` with it; it
    cannot turn back. ``transcription_session.update`` (beta, also accepted on GA
    connections) answers ``transcription_session.updated`` with a transcription session
    shaped like the beta specification's (``id``, ``object``, ``input_audio_format``,
    ``input_audio_transcription``, ``turn_detection``, ``input_audio_noise_reduction``,
    ``include``), whose ``input_audio_format`` then applies to commits. Neither restricts
    which other events the connection may send.

    Unknown item ids in ``conversation.item.delete`` / ``retrieve`` / ``truncate`` (and in
    ``previous_item_id`` or ``item_reference``) get ``invalid_value`` with the parameter
    named; the specification only says "an error".

    The ``reply`` callable runs on the connection's handler thread when the
    ``response.create`` arrives; it must not call :meth:`stop`. If it raises, the client
    gets a ``server_error`` event instead of a response. A connection's response thread
    ends with the connection; :meth:`stop` joins it.
    """

    def __init__(
        self,
        api_key: str | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        reply: str | Callable[[str], str] | None = None,
        delta_chunks: int = 4,
        delta_interval: float = 0.0,
        emulate_beta_shutdown: bool = False,
        session_lifetime: float | None = None,
    ) -> None:
        """Configure the server; nothing listens until :meth:`start`.

        Args:
            api_key: The key clients must present; ``None`` accepts any non-empty key,
                but some key is still required.
            host: Interface to listen on.
            port: TCP port; 0 picks a free one.
            reply: The answer text of every response: a fixed string, or a callable that
                receives the last user text of the conversation ("" when there is none).
                By default the server answers ``"You said: <text>"``, or a greeting.
            delta_chunks: How many text delta events a response streams (fewer when the
                text is shorter than that many characters; at least one).
            delta_interval: Seconds the response thread waits before each text delta
                (0, the default, streams as fast as the socket allows). Set it, e.g. to
                0.05, to act while a response is in progress: send ``response.cancel`` or
                a second ``response.create`` after the first delta arrives.
            emulate_beta_shutdown: Answer beta-dialect connections on ``/v1/realtime``
                with the ``beta_api_shape_disabled`` error and close code 4000, as
                api.openai.com does since May 2026.
            session_lifetime: If set, each session ends after that many seconds with a
                ``session_expired`` error and close code 1001.
        """
        if delta_chunks < 1:
            raise ValueError("delta_chunks must be at least 1")
        if not (math.isfinite(delta_interval) and delta_interval >= 0):
            raise ValueError("delta_interval must be a finite number of seconds, 0 or more")
        if session_lifetime is not None and session_lifetime <= 0:
            raise ValueError("session_lifetime must be positive")
        self._api_key = api_key
        self._host = host
        self._port = port
        self._reply = reply
        self._delta_chunks = delta_chunks
        self._delta_interval = delta_interval
        self._emulate_beta_shutdown = emulate_beta_shutdown
        self._session_lifetime = session_lifetime

        # One condition guards every piece of shared state below.
        self._cond = threading.Condition()
        self._received: list[_JsonObject] = []
        self._states: dict[ServerConnection, _ConnState] = {}
        self._tracked: list[tuple[ServerConnection, threading.Thread]] = []
        self._closers: list[threading.Thread] = []
        self._workers: list[threading.Thread] = []  # response threads
        self._reject: _Fault[_Rejection] | None = None
        self._fail: _Fault[_Failure] | None = None
        self._pongs = threading.Event()
        self._pongs.set()
        self._server: Server | None = None
        self._serve_thread: threading.Thread | None = None
        self._bound_port: int | None = None
        self._stopped = False

    # Lifecycle

    def start(self) -> LocalRealtimeServer:
        """Bind the socket and serve in a daemon thread; return ``self``."""
        with self._cond:
            if self._server is not None or self._stopped:
                raise RuntimeError("a LocalRealtimeServer can be started only once")
            self._server = serve(
                self._handle,
                self._host,
                self._port,
                compression=None,  # deflate only costs CPU on loopback and hides frame sizes
                process_request=self._process_request,
                process_response=self._process_response,
                select_subprotocol=self._select_subprotocol,
                create_connection=_connection_class(self._pongs, self._track),
                open_timeout=_OPEN_TIMEOUT,
                close_timeout=_CLOSE_TIMEOUT,
                max_size=_MAX_MESSAGE,
                max_queue=_MAX_QUEUE,
                logger=_wire_log,
            )
            self._bound_port = self._server.socket.getsockname()[1]
            self._serve_thread = threading.Thread(
                target=self._server.serve_forever,
                name="realtime_sync-local-server",
                daemon=True,
            )
            self._serve_thread.start()
        _log.info("local realtime server listening on %s", self.azure_endpoint)
        return self

    def stop(self) -> None:
        """Close every connection (code 1001), stop listening and join all threads.

        Idempotent. Takes at most a few seconds even when clients don't answer the
        closing handshake.
        """
        with self._cond:
            server, serve_thread = self._server, self._serve_thread
            if server is None or self._stopped:
                return
            self._stopped = True
        deadline = time.monotonic() + _CLOSE_TIMEOUT + 0.5
        # Close open connections here rather than in websockets' shutdown(), which sleeps
        # 0.1 s at a time while connection threads wind down: that adds up over a suite.
        with self._cond:
            tracked = list(self._tracked)
        closers = [
            threading.Thread(target=ws.close, args=(1001,), name="realtime_sync-local-server-close")
            for ws, _ in tracked
            if ws.state is State.OPEN
        ]
        for closer in closers:
            closer.start()
        for thread in closers + [
            thread
            for ws, thread in tracked
            if ws.state is not State.CONNECTING and thread is not threading.current_thread()
        ]:
            thread.join(max(0.0, deadline - time.monotonic()))
        # shutdown() can block on a connection whose peer stopped reading; run it aside
        # and cut the sockets if it overstays.
        stopper = threading.Thread(
            target=server.shutdown, name="realtime_sync-local-server-stop", daemon=True
        )
        stopper.start()
        stopper.join(max(0.5, deadline + 0.5 - time.monotonic()))
        if stopper.is_alive():
            _log.warning("local realtime server: closing handshakes overran; aborting sockets")
            with self._cond:
                sockets = [ws.socket for ws, _ in self._tracked]
            for sock in sockets:
                with contextlib.suppress(OSError):  # already closed
                    sock.shutdown(socket.SHUT_RDWR)
            stopper.join(_JOIN_TIMEOUT)
            closers = [closer for closer in closers if closer.is_alive()]
        if serve_thread is not None:
            serve_thread.join(_JOIN_TIMEOUT)
        with self._cond:
            threads = [thread for _, thread in self._tracked] + self._closers + closers
            threads += self._workers
            for ws, _ in self._tracked:
                threads.append(ws.recv_events_thread)
                if ws.keepalive_thread is not None:
                    threads.append(ws.keepalive_thread)
        deadline = time.monotonic() + _JOIN_TIMEOUT
        for thread in threads:
            if thread is not threading.current_thread():
                thread.join(max(0.0, deadline - time.monotonic()))
        _log.info("local realtime server stopped")

    def __enter__(self) -> LocalRealtimeServer:
        """Start the server."""
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        """Stop the server."""
        self.stop()

    # Addresses

    @property
    def url(self) -> str:
        """``ws://<host>:<port>/v1/realtime``, without a query (clients add ``?model=``)."""
        return f"ws://{self._netloc()}/v1/realtime"

    @property
    def azure_endpoint(self) -> str:
        """``http://<host>:<port>``, the base an Azure-style client builds its URL on."""
        return f"http://{self._netloc()}"

    def _netloc(self) -> str:
        if self._bound_port is None:
            raise RuntimeError("the server is not started; call start() first")
        host = f"[{self._host}]" if ":" in self._host else self._host
        return f"{host}:{self._bound_port}"

    # Observation

    @property
    def received(self) -> list[_JsonObject]:
        """Every client event received (parsed JSON objects), all connections, in order.

        A new list on each access; the events themselves are shared, treat them as
        read-only.
        """
        with self._cond:
            return list(self._received)

    @property
    def connections(self) -> list[ConnectionRecord]:
        """One :class:`ConnectionRecord` per handshake answered so far, oldest first."""
        with self._cond:
            return [
                ConnectionRecord(
                    path=state.path,
                    query=dict(state.query),
                    headers=dict(state.headers),
                    subprotocols=list(state.subprotocols),
                    subprotocol=state.subprotocol,
                    auth=state.auth,
                    dialect=state.dialect,
                    status=state.status,
                    received=list(state.received),
                    open=state.is_open(),
                )
                for state in self._states.values()
            ]

    def wait_for_received(
        self,
        type: str | None = None,
        *,
        count: int = 1,
        predicate: Callable[[_JsonObject], bool] | None = None,
        timeout: float = 5.0,
    ) -> list[_JsonObject]:
        """Block until ``count`` received client events match; return all that match.

        An event matches when its ``type`` equals ``type`` (any type if ``None``) and
        ``predicate`` (if given) returns true for it. Raises the builtin
        :exc:`TimeoutError` after ``timeout`` seconds.
        """
        matches: list[_JsonObject] = []
        scanned = 0
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for event in self._received[scanned:]:
                    if (type is None or event.get("type") == type) and (
                        predicate is None or predicate(event)
                    ):
                        matches.append(event)
                scanned = len(self._received)
                if len(matches) >= count:
                    return matches
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    recent = [event.get("type") for event in self._received[-10:]]
                    raise TimeoutError(
                        f"waited {timeout} s for {count} client event(s)"
                        f"{f' of type {type!r}' if type else ''}"
                        f"{' matching the predicate' if predicate else ''}; got {len(matches)} "
                        f"of {scanned} received; last received types: {recent}"
                    )
                self._cond.wait(remaining)

    def wait_for_connections(self, count: int = 1, timeout: float = 5.0) -> None:
        """Block until ``count`` handshakes were accepted and answered with a first event.

        The first event is ``session.created``, or the error before a close; so a
        :meth:`push` after this call reaches the connection after ``session.created``.
        Raises the builtin :exc:`TimeoutError` after ``timeout`` seconds.
        """
        deadline = time.monotonic() + timeout
        with self._cond:
            while (accepted := sum(s.established for s in self._states.values())) < count:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(
                        f"waited {timeout} s for {count} accepted connection(s); got {accepted} "
                        f"of {len(self._states)} handshake(s)"
                    )
                self._cond.wait(remaining)

    # Test controls

    def reject_handshake(
        self,
        status: int,
        body: bytes | str | Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        *,
        times: int | None = None,
    ) -> None:
        """Answer the next upgrade requests with HTTP ``status`` instead of 101.

        ``body`` may be bytes, text, or a mapping sent as JSON (default: an OpenAI-style
        JSON error). ``headers`` are added to the response (e.g. ``Retry-After``). Applies
        to the next ``times`` handshakes, or until :meth:`clear_faults` when ``None``.
        Replaces a previous rejection.
        """
        if not 200 <= status <= 599:
            raise ValueError(f"cannot reject a handshake with HTTP status {status}")
        self._check_times(times)
        response_headers = dict(headers or {})
        with self._cond:
            self._reject = _Fault(_Rejection(status, body, response_headers), times)

    def fail_after_accept(
        self, code: int, error: Mapping[str, Any], *, times: int | None = None
    ) -> None:
        """Accept the next upgrades, then send an ``error`` event and close with ``code``.

        ``error`` fills the event's ``error`` object (``type``, ``code``, ``message``,
        ``param``); the close reason is ``"<type>.<code>"``, as real servers send (3000 for
        ``invalid_api_key``, 4000 for a bad model). ``times`` works as in
        :meth:`reject_handshake`. Replaces a previous failure.
        """
        _check_close(code, _close_reason(error))
        self._check_times(times)
        payload = {
            "type": "invalid_request_error",
            "code": None,
            "message": "Injected failure.",
            "param": None,
            **error,
            "event_id": None,
        }
        with self._cond:
            self._fail = _Fault(_Failure(code, payload), times)

    def clear_faults(self) -> None:
        """Cancel :meth:`reject_handshake` and :meth:`fail_after_accept`."""
        with self._cond:
            self._reject = self._fail = None

    def push(self, event: Mapping[str, Any] | str | bytes) -> None:
        """Send a server event to every open connection that got its first event.

        A mapping is JSON-encoded and gets an ``event_id`` if it has none; a ``str`` is
        sent verbatim as a text frame (so it may be malformed JSON); ``bytes`` as a binary
        frame.
        """
        message: str | bytes
        if isinstance(event, Mapping):
            payload = dict(event)
            payload.setdefault("event_id", _random_id("event_"))
            message = json.dumps(payload, separators=(",", ":"), ensure_ascii=False)
        else:
            message = event
        for state in self._open_states():
            with contextlib.suppress(ConnectionClosed):  # closed meanwhile
                state.ws.send(message)

    def drop_connections(self) -> None:
        """Cut every open connection's TCP stream without a close frame."""
        for state in self._open_states():
            with contextlib.suppress(OSError):  # already gone
                state.ws.socket.shutdown(socket.SHUT_RDWR)

    def close_connections(self, code: int = 1000, reason: str = "") -> None:
        """Start a closing handshake with ``code`` and ``reason`` on every open connection.

        Returns at once; the handshakes finish in the background (bounded by a short
        timeout when a client does not answer).
        """
        _check_close(code, reason)
        for state in self._open_states():
            closer = threading.Thread(
                target=state.ws.close,
                args=(code, reason),
                name="realtime_sync-local-server-close",
                daemon=True,
            )
            with self._cond:
                self._closers.append(closer)
            closer.start()

    def answer_pings(self, enabled: bool) -> None:
        """Answer client pings (``True``, the default) or silently ignore them (``False``).

        Applies at once to open and future connections; the connections stay up and keep
        exchanging events.
        """
        if enabled:
            self._pongs.set()
        else:
            self._pongs.clear()

    # Internals: handshake (runs on the connection's thread)

    @staticmethod
    def _check_times(times: int | None) -> None:
        if times is not None and times < 1:
            raise ValueError("times must be at least 1, or None for 'until clear_faults()'")

    @staticmethod
    def _take(fault: _Fault[_P] | None) -> _P | None:
        """Consume one use of ``fault``; call with the lock held."""
        if fault is None or fault.remaining == 0:
            return None
        if fault.remaining is not None:
            fault.remaining -= 1
        return fault.payload

    def _track(self, ws: ServerConnection) -> None:
        with self._cond:
            self._tracked.append((ws, threading.current_thread()))

    def _register_worker(self, thread: threading.Thread) -> None:
        with self._cond:
            self._workers.append(thread)

    def _open_states(self) -> list[_ConnState]:
        with self._cond:
            return [s for s in self._states.values() if s.established and s.is_open()]

    def _process_request(self, ws: ServerConnection, request: Request) -> Response | None:
        target = urllib.parse.urlsplit(request.path)
        query = dict(urllib.parse.parse_qsl(target.query, keep_blank_values=True))
        headers: dict[str, str] = {}
        for name, value in request.headers.raw_items():
            key = name.lower()
            headers[key] = f"{headers[key]}, {value}" if key in headers else value
        offered = [
            name.strip()
            for value in request.headers.get_all("Sec-WebSocket-Protocol")
            for name in value.split(",")
            if name.strip()
        ]
        route = _ROUTES.get(target.path)
        beta = (
            "realtime=v1" in headers.get("openai-beta", "").replace(" ", "").split(",")
            or _BETA_SUBPROTOCOL in offered
            or (route is not None and route.legacy)
        )
        presented = _credentials(route, headers, offered, query)
        auth: AuthMethod | None = presented[0][0] if presented else None
        key_ok = bool(presented) and self._api_key is None
        if self._api_key is not None:
            expected = self._api_key.encode()
            for method, key in presented:
                if hmac.compare_digest(key.encode(), expected):
                    auth, key_ok = method, True
                    break
        state = _ConnState(
            ws=ws,
            path=target.path,
            query=query,
            headers=headers,
            subprotocols=offered,
            subprotocol=_choose_subprotocol(offered),
            auth=auth,
            key_ok=key_ok,
            dialect="beta" if beta else "ga",
            route=route,
        )
        with self._cond:
            self._states[ws] = state
            rejection = self._take(self._reject)
        if rejection is not None:
            _log.info("local realtime server: rejecting a handshake with HTTP %d", rejection.status)
            return _http_response(rejection.status, rejection.body, rejection.headers)
        if route is None:
            body = _error_body(404, f"Invalid URL (GET {target.path}): no Realtime endpoint here.")
            return _http_response(404, body, {})
        return None

    def _process_response(
        self, ws: ServerConnection, _request: Request, response: Response
    ) -> Response | None:
        with self._cond:
            state = self._states.get(ws)
            if state is not None:
                state.status = response.status_code
            self._cond.notify_all()
        return None

    def _select_subprotocol(
        self, ws: ServerConnection, _offered: Sequence[Subprotocol]
    ) -> Subprotocol | None:
        with self._cond:
            chosen = self._states[ws].subprotocol
        return None if chosen is None else Subprotocol(chosen)

    # Internals: session (runs on the connection's thread)

    def _reply_text(self, user_text: str) -> str:
        if callable(self._reply):
            return self._reply(user_text)
        if self._reply is not None:
            return self._reply
        return f"You said: {user_text}" if user_text else _GREETING

    def _opening_failure(self, state: _ConnState) -> tuple[int, _JsonObject] | None:
        """The error and close code that end this connection before session.created."""
        with self._cond:
            injected = self._take(self._fail)
        if injected is not None:
            return injected.code, dict(injected.error)
        if not state.key_ok:
            message = (
                "Incorrect API key provided. You can find your API key at "
                "https://platform.openai.com/account/api-keys."
                if state.auth is not None
                else "No API key provided. Send it in an 'Authorization: Bearer <key>' header."
            )
            return 3000, {
                "type": "invalid_request_error",
                "code": "invalid_api_key",
                "message": message,
                "param": None,
                "event_id": None,
            }
        assert state.route is not None  # unknown paths were answered with 404
        for name in state.route.required:
            if not state.query.get(name):
                return 4000, {
                    "type": "invalid_request_error",
                    "code": "missing_model" if name == "model" else "missing_required_parameter",
                    "message": f"Missing required query parameter: '{name}'.",
                    "param": name,
                    "event_id": None,
                }
        if self._emulate_beta_shutdown and state.dialect == "beta" and not state.route.azure:
            return 4000, {
                "type": "invalid_request_error",
                "code": "beta_api_shape_disabled",
                "message": (
                    "The Realtime API beta interface (OpenAI-Beta: realtime=v1) has been "
                    "turned off. Connect without the beta header or subprotocol and use the "
                    "GA interface."
                ),
                "param": None,
                "event_id": None,
            }
        return None

    def _establish(self, state: _ConnState) -> None:
        with self._cond:
            state.established = True
            self._cond.notify_all()

    def _send_first(self, state: _ConnState, session: _Session, event: _JsonObject) -> None:
        """Send the connection's first event and mark it established, atomically.

        Under the lock, so that a test control (:meth:`push`, :meth:`drop_connections`,
        :meth:`close_connections`) called after the client saw this event finds the
        connection, and a push never overtakes the event. One small frame on a fresh
        connection does not block.
        """
        with self._cond:
            try:
                session.send(event)
            finally:
                state.established = True
                self._cond.notify_all()

    def _handle(self, ws: ServerConnection) -> None:
        with self._cond:
            state = self._states[ws]
        spec = _BETA if state.dialect == "beta" else _GA
        model = state.query.get("deployment" if state.route and state.route.legacy else "model", "")
        lifetime = self._session_lifetime
        expires_at = int(time.time() + math.ceil(lifetime or _SESSION_SECONDS))
        factory = _beta_session if spec is _BETA else _ga_session
        session = _Session(
            ws,
            spec,
            factory(model, expires_at),
            self._reply_text,
            self._delta_chunks,
            delta_interval=self._delta_interval,
            register_thread=self._register_worker,
        )
        _log.info(
            "local realtime server: %s connection on %s (auth: %s)",
            state.dialect,
            state.path,
            state.auth,
        )
        try:
            failure = self._opening_failure(state)
            if failure is not None:
                code, error = failure
                self._send_first(state, session, {"type": "error", "error": error})
                ws.close(code, _close_reason(error))
                return
            self._send_first(
                state, session, {"type": "session.created", "session": session.session}
            )
            self._serve_session(state, session, lifetime)
        except ConnectionClosed:
            pass  # the client left; nothing more to do
        finally:
            self._establish(state)  # never leave wait_for_connections() hanging
            session.close(_JOIN_TIMEOUT)  # no response thread outlives its connection

    def _serve_session(self, state: _ConnState, session: _Session, lifetime: float | None) -> None:
        deadline = None if lifetime is None else time.monotonic() + lifetime
        while True:
            timeout = None if deadline is None else deadline - time.monotonic()
            try:
                if timeout is not None and timeout <= 0:
                    # recv() would still hand out queued messages; a busy session expires too.
                    raise TimeoutError
                message = state.ws.recv(timeout)
            except TimeoutError:
                session.close(_CLOSE_TIMEOUT)  # a response in progress ends with the session
                error = {
                    "type": "invalid_request_error",
                    "code": "session_expired",
                    "message": f"Your session hit the maximum duration of {lifetime} seconds.",
                    "param": None,
                    "event_id": None,
                }
                session.send({"type": "error", "error": error})
                state.ws.close(1001, _close_reason(error))
                return
            if isinstance(message, bytes):
                session.send_error(
                    _ClientError(
                        "invalid_event",
                        "Binary frames are not supported; send each event as a JSON text frame.",
                    ),
                    None,
                )
                continue
            try:
                event = json.loads(message)
            except (ValueError, RecursionError) as exc:  # nesting too deep is bad JSON too
                session.send_error(
                    _ClientError("invalid_json", f"The message is not valid JSON: {exc}."), None
                )
                continue
            if not isinstance(event, dict):
                session.send_error(
                    _ClientError("invalid_event", "Each client event must be a JSON object."), None
                )
                continue
            with self._cond:
                self._received.append(event)
                state.received.append(event)
                self._cond.notify_all()
            session.dispatch(event)
