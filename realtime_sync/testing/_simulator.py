"""One Realtime session, simulated: client frames in, server event frames out.

:class:`SessionSimulator` knows nothing of sockets. A transport creates one per accepted
connection with two callables, ``send`` (one JSON text frame) and ``close`` (code and
reason), then calls :meth:`~SessionSimulator.open` (or :meth:`~SessionSimulator.refuse`),
:meth:`~SessionSimulator.receive` for every client frame in arrival order,
:meth:`~SessionSimulator.expire` when the session's time is up, and
:meth:`~SessionSimulator.stop` when the connection ends.

What a session answers, and with which errors, is described in the
:mod:`realtime_sync.testing` documentation; this module is where it happens (responses
themselves are in :mod:`._responses`).
"""

from __future__ import annotations

import base64
import binascii
import copy
import json
import logging
import math
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

import attrs

from .._endpoints import Dialect
from ._catalogue import (
    GA_TRANSCRIPTION_FIELDS,
    GREETING,
    MIN_COMMIT_MS,
    SESSION_SECONDS,
    SPECS,
    TRANSCRIPTION_SESSION_FIELDS,
    ClientError,
    JsonObject,
    beta_session,
    close_reason,
    ga_session,
    ga_transcription_session,
    object_param,
    random_id,
    refuse_unknown,
    request_error,
    server_error,
    transcription_session,
)
from ._responses import Responder, SendFailed

__all__ = ["SessionSimulator", "SimulatorOptions"]

_log = logging.getLogger("realtime_sync.testing")

_EXPIRY_JOIN_TIMEOUT = 2.0  # seconds expire() waits for a response in progress to stop


def _positive_chunks(_instance: object, _attribute: object, value: int) -> None:
    if value < 1:
        raise ValueError("delta_chunks must be at least 1")


def _interval(_instance: object, _attribute: object, value: float) -> None:
    if not (math.isfinite(value) and value >= 0):
        raise ValueError("delta_interval must be a finite number of seconds, 0 or more")


def _lifetime(_instance: object, _attribute: object, value: float | None) -> None:
    if value is not None and not value > 0:
        raise ValueError("session_lifetime must be positive")


@attrs.frozen
class SimulatorOptions:
    """How simulated sessions answer; shared by every session of a server."""

    reply: str | Callable[[str], str] | None = None
    """The answer text of every response: a fixed string, or a callable that receives the
    last user text of the conversation (``""`` when there is none) and runs on the thread
    that calls :meth:`SessionSimulator.receive`. By default ``"You said: <text>"``, or a
    greeting."""
    delta_chunks: int = attrs.field(default=4, validator=_positive_chunks)
    """How many text deltas a response streams (fewer for a shorter text; at least one)."""
    delta_interval: float = attrs.field(default=0.0, validator=_interval)
    """Seconds the response thread waits before each text delta."""
    session_lifetime: float | None = attrs.field(default=None, validator=_lifetime)
    """Seconds a session lasts (its ``expires_at``); ``None``: the real 60 minutes. The
    transport calls :meth:`SessionSimulator.expire` when the time is up."""

    def answer(self, user_text: str) -> str:
        """The text of a response to ``user_text``."""
        if callable(self.reply):
            return self.reply(user_text)
        if self.reply is not None:
            return self.reply
        return f"You said: {user_text}" if user_text else GREETING


class SessionSimulator:
    """Protocol state of one accepted connection: session, conversation, audio buffer.

    Client frames are handled on the caller's thread, in arrival order; responses stream
    on a response thread of this session (see :class:`~._responses.Responder`). ``send``
    may be called from either; a ``send`` that raises means the connection is gone: the
    response thread ends quietly, and the exception propagates unchanged out of the
    method that was sending.
    """

    def __init__(
        self,
        *,
        dialect: Dialect,
        model: str,
        send: Callable[[str], None],
        close: Callable[[int, str], None],
        options: SimulatorOptions,
        register_thread: Callable[[threading.Thread], None] | None = None,
        on_received: Callable[[JsonObject], None] | None = None,
    ) -> None:
        """Prepare a session; nothing is sent until :meth:`open` or :meth:`refuse`.

        Args:
            dialect: ``"ga"`` or ``"beta"``, as admission decided.
            model: The model (or Azure deployment) the session reports.
            send: Sends one complete JSON text frame to the client.
            close: Asks the transport to close the connection with a code and reason.
            options: Reply text and pacing, session lifetime.
            register_thread: Called with the response thread before it starts, so that
                the transport can join it when it shuts down.
            on_received: Called with every parsed client event before it is answered
                (so that a recorder sees an event before its answer can reach the client).
        """
        self.spec = SPECS[dialect]
        lifetime = options.session_lifetime
        expires_at = int(time.time() + math.ceil(lifetime or SESSION_SECONDS))
        factory = beta_session if dialect == "beta" else ga_session
        self.session: JsonObject = factory(model, expires_at)
        self.items: list[JsonObject] = []
        self.conversation_id = random_id("conv_")
        self._send = send
        self._close = close
        self._options = options
        self._on_received = on_received
        self._audio_bytes = 0
        self._transcription = transcription_session()
        self._transcribing = False  # a transcription_session.update was accepted
        self._lock = threading.RLock()
        self._responder = Responder(
            self,
            threading.Condition(self._lock),
            answer=options.answer,
            delta_chunks=options.delta_chunks,
            delta_interval=options.delta_interval,
            register_thread=register_thread,
        )

    # The transport's calls

    def open(self) -> None:
        """Send ``session.created``, the first event of every session."""
        self._deliver({"type": "session.created", "session": self.session})

    def receive(self, frame: str | bytes) -> JsonObject | None:
        """Answer one client frame; return the parsed event, or ``None`` if refused unread.

        A binary frame gets ``invalid_event``, text that is not JSON (or nests absurdly
        deep) ``invalid_json``, JSON that is not an object ``invalid_event``. Any object is
        an event: it goes to ``on_received``, then gets its answer (an ``error`` event when
        it is invalid).
        """
        if isinstance(frame, bytes):
            self._deliver_error(
                ClientError(
                    "invalid_event",
                    "Binary frames are not supported; send each event as a JSON text frame.",
                )
            )
            return None
        try:
            event = json.loads(frame)
        except (ValueError, RecursionError) as exc:  # nesting too deep is bad JSON too
            self._deliver_error(
                ClientError("invalid_json", f"The message is not valid JSON: {exc}.")
            )
            return None
        if not isinstance(event, dict):
            self._deliver_error(
                ClientError("invalid_event", "Each client event must be a JSON object.")
            )
            return None
        if self._on_received is not None:
            self._on_received(event)
        try:
            self._dispatch(event)
        except SendFailed as failed:
            raise failed.cause from None
        return event

    def expire(self) -> None:
        """End the session at its maximum duration: ``session_expired``, then close 1001."""
        self._responder.stop(_EXPIRY_JOIN_TIMEOUT)  # a response in progress ends with it
        lifetime = self._options.session_lifetime or SESSION_SECONDS
        error = request_error(
            "session_expired", f"Your session hit the maximum duration of {lifetime} seconds."
        )
        self._deliver({"type": "error", "error": error})
        self._close(1001, close_reason(error))

    def refuse(self, code: int, error: Mapping[str, Any]) -> None:
        """Instead of opening: send ``error`` with ``error``, then close with ``code``."""
        self._deliver({"type": "error", "error": dict(error)})
        self._close(code, close_reason(error))

    def stop(self, timeout: float) -> None:
        """Stop the response thread (no more events from it) and join it."""
        self._responder.stop(timeout)

    # Sending

    def emit(self, event: Mapping[str, Any]) -> None:
        """Send ``event`` with a fresh ``event_id`` right after its ``type``.

        Raises :class:`~._responses.SendFailed` when the transport's ``send`` raises.
        """
        payload: JsonObject = {"type": event["type"], "event_id": random_id("event_")}
        payload.update(event)
        frame = json.dumps(payload, separators=(",", ":"), ensure_ascii=False)
        try:
            self._send(frame)
        except Exception as exc:
            raise SendFailed(exc) from exc

    def _deliver(self, event: Mapping[str, Any]) -> None:
        """:meth:`emit` for the transport's calls: a failed send raises its own error."""
        try:
            self.emit(event)
        except SendFailed as failed:
            raise failed.cause from None

    def _deliver_error(self, error: ClientError) -> None:
        with self._lock:  # like every event, not in the middle of a response step
            self._deliver({"type": "error", "error": error.body(None)})

    # Dispatch

    def _dispatch(self, event: JsonObject) -> None:
        """Answer one client event through :data:`_HANDLERS`."""
        client_event_id = event.get("event_id")
        if not isinstance(client_event_id, str):
            client_event_id = None
        with self._lock:
            try:
                kind = event.get("type")
                if kind is None:
                    raise ClientError("invalid_event", "The event has no 'type' field.")
                if not isinstance(kind, str):
                    raise ClientError("invalid_event", "The event's 'type' field must be a string.")
                handler = _HANDLERS.get(kind)
                if handler is None:
                    raise ClientError(
                        "invalid_value",
                        f"Unknown event type {kind!r}. Supported client event types: "
                        f"{', '.join(sorted(_HANDLERS))}.",
                        param="type",
                    )
                handler(self, event)
            except ClientError as error:
                self.emit({"type": "error", "error": error.body(client_event_id)})
            except SendFailed:
                raise
            except Exception:
                # A failing reply callable or a bug here must not look like a dead server.
                _log.exception(
                    "local realtime server failed to handle a %r event", event.get("type")
                )
                self.emit({"type": "error", "error": server_error().body(client_event_id)})

    # Conversation helpers (also the responder's)

    def index_of(self, item_id: object, param: str) -> int:
        """Position of the conversation item ``item_id``; ``param`` names it in errors."""
        if not isinstance(item_id, str):
            raise ClientError(
                "missing_required_parameter" if item_id is None else "invalid_type",
                f"'{param}' must be the id of a conversation item.",
                param=param,
            )
        for index, item in enumerate(self.items):
            if item.get("id") == item_id:
                return index
        raise ClientError(
            "invalid_value", f"No conversation item with id '{item_id}' exists.", param=param
        )

    def insert(self, item: JsonObject, index: int) -> str | None:
        """Insert ``item`` at ``index``; return the previous item's id."""
        self.items.insert(index, item)
        return self.items[index - 1]["id"] if index > 0 else None

    def _announce_item(self, item: JsonObject, previous_id: str | None) -> None:
        """Tell the client about a complete new conversation item."""
        self.emit({"type": self.spec.item_added, "previous_item_id": previous_id, "item": item})
        if self.spec.item_done is not None:
            self.emit({"type": self.spec.item_done, "previous_item_id": previous_id, "item": item})

    def _bytes_per_ms(self) -> float:
        if self._transcribing:
            fmt = self._transcription.get("input_audio_format", "pcm16")
            return 48.0 if fmt == "pcm16" else 8.0
        if self.spec.name == "ga":
            audio = self.session.get("audio") or {}
            fmt = ((audio.get("input") or {}).get("format") or {}).get("type", "audio/pcm")
            return 48.0 if fmt == "audio/pcm" else 8.0
        return 48.0 if self.session.get("input_audio_format", "pcm16") == "pcm16" else 8.0

    # Handlers: session

    def _on_session_update(self, event: JsonObject) -> None:
        # Copied: the session must not share objects with the recorded client event.
        update = copy.deepcopy(object_param(event, "session", required=True))
        target, fields = self.session, self.spec.session_fields
        if self.spec.name == "ga":
            target = self._ga_update_target(update)
            if target.get("type") == "transcription":
                fields = GA_TRANSCRIPTION_FIELDS
                audio = update.get("audio")
                if isinstance(audio, dict) and set(audio) - {"input"}:
                    name = sorted(set(audio) - {"input"})[0]
                    raise ClientError(
                        "unknown_parameter",
                        f"Unknown parameter: 'session.audio.{name}' (transcription session).",
                        param=f"session.audio.{name}",
                    )
        refuse_unknown("session", update, fields)
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
        self.emit({"type": "session.updated", "session": self.session})

    def _ga_update_target(self, update: Mapping[str, Any]) -> JsonObject:
        """The session a GA ``session.update`` applies to (a new one when the type changes)."""
        if "type" not in update:
            raise ClientError(
                "missing_required_parameter",
                "Missing required parameter: 'session.type'.",
                param="session.type",
            )
        wanted, current = update["type"], self.session.get("type")
        if wanted not in {"realtime", "transcription"}:
            raise ClientError(
                "invalid_value",
                f"Invalid value for 'session.type': {wanted!r}; expected 'realtime' or "
                "'transcription'.",
                param="session.type",
            )
        if wanted == current:
            return self.session
        if current == "transcription":
            raise ClientError(
                "invalid_value",
                "This is a transcription session; 'session.type' cannot change back to "
                f"{wanted!r}.",
                param="session.type",
            )
        return ga_transcription_session(self.session)

    def _on_transcription_session_update(self, event: JsonObject) -> None:
        update = copy.deepcopy(object_param(event, "session", required=True))
        refuse_unknown("session", update, TRANSCRIPTION_SESSION_FIELDS)
        update.pop("client_secret", None)
        self._transcription.update(update)
        self._transcribing = True
        self.emit({"type": "transcription_session.updated", "session": self._transcription})

    # Handlers: conversation

    def _on_item_create(self, event: JsonObject) -> None:
        item = copy.deepcopy(object_param(event, "item", required=True))
        if item.get("type") not in self.spec.item_types:
            raise ClientError(
                "invalid_value",
                f"'item.type' must be one of {', '.join(sorted(self.spec.item_types))}.",
                param="item.type",
            )
        item_id = item.get("id")
        if item_id is None:
            item_id = random_id("item_")
        elif not isinstance(item_id, str) or any(i["id"] == item_id for i in self.items):
            raise ClientError(
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
            index = self.index_of(after, "previous_item_id") + 1
        stored = {"id": item_id, "object": "realtime.item", **item}
        stored.update(id=item_id, status="completed")
        self._announce_item(stored, self.insert(stored, index))

    def _on_item_delete(self, event: JsonObject) -> None:
        index = self.index_of(event.get("item_id"), "item_id")
        item = self.items.pop(index)
        self.emit({"type": "conversation.item.deleted", "item_id": item["id"]})

    def _on_item_retrieve(self, event: JsonObject) -> None:
        index = self.index_of(event.get("item_id"), "item_id")
        self.emit({"type": "conversation.item.retrieved", "item": self.items[index]})

    def _on_item_truncate(self, event: JsonObject) -> None:
        item = self.items[self.index_of(event.get("item_id"), "item_id")]
        if item.get("role") != "assistant":
            raise ClientError(
                "invalid_value", "Only assistant message items can be truncated.", param="item_id"
            )
        content = item.get("content") or []
        for name, limit in (("content_index", len(content)), ("audio_end_ms", None)):
            value = event.get(name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise ClientError(
                    "missing_required_parameter" if value is None else "invalid_type",
                    f"'{name}' must be an integer.",
                    param=name,
                )
            if value < 0 or (limit is not None and value >= limit):
                raise ClientError("invalid_value", f"'{name}' is out of range.", param=name)
        self.emit(
            {
                "type": "conversation.item.truncated",
                "item_id": item["id"],
                "content_index": event["content_index"],
                "audio_end_ms": event["audio_end_ms"],
            }
        )

    # Handlers: audio buffers

    def _on_audio_append(self, event: JsonObject) -> None:
        audio = event.get("audio")
        if not isinstance(audio, str):
            raise ClientError(
                "missing_required_parameter" if audio is None else "invalid_type",
                "'audio' must be a base64-encoded string.",
                param="audio",
            )
        try:
            self._audio_bytes += len(base64.b64decode(audio, validate=True))
        except (binascii.Error, ValueError):
            raise ClientError(
                "invalid_value", "'audio' is not valid base64.", param="audio"
            ) from None

    def _on_audio_commit(self, _event: JsonObject) -> None:
        buffered_ms = self._audio_bytes / self._bytes_per_ms()
        if buffered_ms < MIN_COMMIT_MS:
            raise ClientError(
                "input_audio_buffer_commit_empty",
                f"Cannot commit the input audio buffer: it holds {buffered_ms:.2f} ms of audio, "
                f"at least {MIN_COMMIT_MS:.0f} ms are needed.",
            )
        self._audio_bytes = 0
        item: JsonObject = {
            "id": random_id("item_"),
            "object": "realtime.item",
            "type": "message",
            "status": "completed",
            "role": "user",
            "content": [{"type": "input_audio", "transcript": None}],
        }
        previous_id = self.insert(item, len(self.items))
        self.emit(
            {
                "type": "input_audio_buffer.committed",
                "previous_item_id": previous_id,
                "item_id": item["id"],
            }
        )
        self._announce_item(item, previous_id)

    def _on_audio_clear(self, _event: JsonObject) -> None:
        self._audio_bytes = 0
        self.emit({"type": "input_audio_buffer.cleared"})

    def _on_output_audio_clear(self, _event: JsonObject) -> None:
        response_id = self._responder.audio_response_id()
        self.emit({"type": "output_audio_buffer.cleared", "response_id": response_id})

    # Handlers: responses

    def _on_response_create(self, event: JsonObject) -> None:
        self._responder.create(event)

    def _on_response_cancel(self, event: JsonObject) -> None:
        self._responder.cancel(event)


# One handler per client event type (the same 12 names in both dialects); add a row to
# support another event.
_HANDLERS: dict[str, Callable[[SessionSimulator, JsonObject], None]] = {
    "session.update": SessionSimulator._on_session_update,
    "transcription_session.update": SessionSimulator._on_transcription_session_update,
    "conversation.item.create": SessionSimulator._on_item_create,
    "conversation.item.delete": SessionSimulator._on_item_delete,
    "conversation.item.retrieve": SessionSimulator._on_item_retrieve,
    "conversation.item.truncate": SessionSimulator._on_item_truncate,
    "input_audio_buffer.append": SessionSimulator._on_audio_append,
    "input_audio_buffer.commit": SessionSimulator._on_audio_commit,
    "input_audio_buffer.clear": SessionSimulator._on_audio_clear,
    "output_audio_buffer.clear": SessionSimulator._on_output_audio_clear,
    "response.create": SessionSimulator._on_response_create,
    "response.cancel": SessionSimulator._on_response_cancel,
}
