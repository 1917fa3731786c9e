"""One Realtime session, simulated: client frames in, server event frames out.

:class:`SessionSimulator` knows nothing of sockets. A transport creates one per accepted
connection with two callables, ``send`` (one JSON text frame) and ``close`` (code and
reason), then calls :meth:`~SessionSimulator.open` (or :meth:`~SessionSimulator.refuse`),
:meth:`~SessionSimulator.receive` for every client frame in arrival order,
:meth:`~SessionSimulator.expire` when the session's time is up, and
:meth:`~SessionSimulator.stop` when the connection ends.

What a session answers, and with which errors, is described in the
:mod:`realtime_sync.testing` documentation; this module is where it happens (responses
themselves are in :mod:`._responses`, the voice in :mod:`._voice`, function calls in
:mod:`._tools`).
"""

from __future__ import annotations

import base64
import binascii
import copy
import json
import logging
import math
import re
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

import attrs

from .._endpoints import Dialect
from ._catalogue import (
    GA_TRANSCRIPTION_FIELDS,
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
from ._options import SimulatorOptions
from ._responses import Responder, SendFailed
from ._voice import (
    AudioFormat,
    SpokenAudio,
    audio_format,
    audio_tokens,
    describe_audio,
    recognize,
)

__all__ = ["SessionSimulator", "SimulatorOptions"]

_log = logging.getLogger("realtime_sync.testing")

_EXPIRY_JOIN_TIMEOUT = 2.0  # seconds expire() waits for a response in progress to stop
_TRANSCRIPTION_DELTA = "conversation.item.input_audio_transcription.delta"
_TRANSCRIPTION_COMPLETED = "conversation.item.input_audio_transcription.completed"
_LOGPROBS = "item.input_audio_transcription.logprobs"
_WORDS = re.compile(r"\s*\S+\s*|\s+")  # a transcription delta: a word and its spaces


@attrs.frozen
class _Transcription:
    """The transcription of one committed user audio item, ready to send."""

    item_id: str
    transcript: str
    model: object  # the transcription model the session named
    duration_ms: float


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
            options: Replies, pacing, transcription, session lifetime.
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
        self.spoken: dict[str, SpokenAudio] = {}  # the audio of conversation items, by id
        self.conversation_id = random_id("conv_")
        self._send = send
        self._close = close
        self._options = options
        self._on_received = on_received
        self._audio = bytearray()  # the input audio buffer
        self._held: list[_Transcription] = []  # late transcriptions, waiting for a response
        self._transcription = transcription_session()
        self._transcribing = False  # a transcription_session.update was accepted
        self._lock = threading.RLock()
        self._responder = Responder(
            self,
            threading.Condition(self._lock),
            options=options,
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

    def response_started(self) -> None:
        """A response was created: send the transcriptions held for one (the responder's call)."""
        held, self._held = self._held, []
        for transcription in held:
            self._send_transcription(transcription)

    def _input_format(self) -> AudioFormat:
        if self._transcribing:
            return audio_format(self._transcription.get("input_audio_format"))
        if self.spec.name == "ga":
            return audio_format(_section(self.session, "input").get("format"))
        return audio_format(self.session.get("input_audio_format"))

    def _transcription_model(self) -> tuple[bool, object]:
        """Whether committed audio is transcribed, and by which model."""
        if self.spec.name == "ga" and not self._transcribing:
            config = _section(self.session, "input").get("transcription")
        elif self._transcribing:
            config = self._transcription.get("input_audio_transcription")
        else:
            config = self.session.get("input_audio_transcription")
        if not isinstance(config, Mapping):
            return False, None
        return True, config.get("model")

    def _transcription_only(self) -> bool:
        return self._transcribing or self.session.get("type") == "transcription"

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
        self.spoken.pop(item["id"], None)
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
        spoken = self.spoken.get(item["id"])
        # An audio item still streaming has its one part only when its response ends.
        parts = max(len(content), 1 if spoken is not None else 0)
        for name, limit in (("content_index", parts), ("audio_end_ms", None)):
            value = event.get(name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise ClientError(
                    "missing_required_parameter" if value is None else "invalid_type",
                    f"'{name}' must be an integer.",
                    param=name,
                )
            if value < 0 or (limit is not None and value >= limit):
                raise ClientError("invalid_value", f"'{name}' is out of range.", param=name)
        if spoken is not None:
            self._cut(item, spoken, event["content_index"], event["audio_end_ms"])
        self.emit(
            {
                "type": "conversation.item.truncated",
                "item_id": item["id"],
                "content_index": event["content_index"],
                "audio_end_ms": event["audio_end_ms"],
            }
        )

    def _cut(self, item: JsonObject, spoken: SpokenAudio, content_index: int, end_ms: int) -> None:
        """Truncate a spoken item's audio at ``end_ms``: its transcript keeps what was heard."""
        content = item.get("content") or []
        part = content[content_index] if content_index < len(content) else None
        duration = spoken.duration_ms
        if end_ms > duration:
            # Real servers' words (an invalid_request_error, code invalid_value).
            raise ClientError(
                "invalid_value",
                f"Audio content of {math.floor(duration)}ms is already shorter than {end_ms}ms",
                param="audio_end_ms",
            )
        spoken.cut_ms = end_ms
        if part is not None:  # else the response still streams it; it takes the cut at its end
            part["transcript"] = spoken.heard

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
            self._audio += base64.b64decode(audio, validate=True)
        except (binascii.Error, ValueError):
            raise ClientError(
                "invalid_value", "'audio' is not valid base64.", param="audio"
            ) from None

    def _on_audio_commit(self, _event: JsonObject) -> None:
        fmt = self._input_format()
        buffered_ms = fmt.duration_ms(len(self._audio))
        if buffered_ms < MIN_COMMIT_MS:
            raise ClientError(
                "input_audio_buffer_commit_empty",
                f"Cannot commit the input audio buffer: it holds {buffered_ms:.2f} ms of audio, "
                f"at least {MIN_COMMIT_MS:.0f} ms are needed.",
            )
        audio = bytes(self._audio)
        heard = self._hear(audio, fmt, buffered_ms)  # before anything is sent: it may fail
        self._audio.clear()
        item: JsonObject = {
            "id": random_id("item_"),
            "object": "realtime.item",
            "type": "message",
            "status": "completed",
            "role": "user",
            "content": [{"type": "input_audio", "transcript": None}],
        }
        previous_id = self.insert(item, len(self.items))
        self.spoken[item["id"]] = SpokenAudio(streamed_ms=buffered_ms, transcript=heard)
        self.emit(
            {
                "type": "input_audio_buffer.committed",
                "previous_item_id": previous_id,
                "item_id": item["id"],
            }
        )
        self._announce_item(item, previous_id)
        transcribed, model = self._transcription_model()
        if transcribed:
            transcription = _Transcription(item["id"], heard, model, buffered_ms)
            late = self._options.late_transcripts and not self._transcription_only()
            if late and not self._responder.in_progress:
                self._held.append(transcription)  # sent after the next response.created
            else:
                self._send_transcription(transcription)

    def _hear(self, audio: bytes, fmt: AudioFormat, duration_ms: float) -> str:
        """What the server hears in committed audio (see ``SimulatorOptions.transcribe``)."""
        if self._options.transcribe is not None:
            heard = self._options.transcribe(audio)
            if not isinstance(heard, str):
                raise TypeError(f"transcribe returned {type(heard).__name__}, not str")
            return heard
        recognized = recognize(audio, fmt)
        return describe_audio(duration_ms) if recognized is None else recognized

    def _send_transcription(self, transcription: _Transcription) -> None:
        """The transcription events of a user audio item; its transcript is then set.

        Deltas are words (whisper-1: GA sends the whole text as one delta, beta none);
        ``logprobs`` (a certain 0.0 per word) when the session's ``include`` asks for them.
        """
        item_id, transcript = transcription.item_id, transcription.transcript
        whisper = transcription.model == "whisper-1"
        words = _WORDS.findall(transcript)
        if not whisper:
            pieces = words
        elif self.spec.name == "ga":
            pieces = [transcript]  # whisper-1 does not stream: one delta, the whole text
        else:
            pieces = []
        logprobs = self._logprobs_included()
        where: JsonObject = {"item_id": item_id, "content_index": 0}
        for piece in pieces:
            delta: JsonObject = {"type": _TRANSCRIPTION_DELTA, **where, "delta": piece}
            if logprobs:
                delta["logprobs"] = [_logprob(piece)]
            self.emit(delta)
        usage: JsonObject
        if whisper:
            usage = {"type": "duration", "seconds": round(transcription.duration_ms / 1000, 3)}
        else:
            audio_in, text_out = audio_tokens(transcription.duration_ms), (len(transcript) + 3) // 4
            usage = {
                "type": "tokens",
                "total_tokens": audio_in + text_out,
                "input_tokens": audio_in,
                "input_token_details": {"text_tokens": 0, "audio_tokens": audio_in},
                "output_tokens": text_out,
            }
        completed: JsonObject = {
            "type": _TRANSCRIPTION_COMPLETED,
            **where,
            "transcript": transcript,
            "usage": usage,
        }
        if logprobs:
            completed["logprobs"] = [_logprob(word) for word in words]
        self.emit(completed)
        for item in self.items:
            if item["id"] == item_id:
                item["content"][0]["transcript"] = transcript

    def _logprobs_included(self) -> bool:
        settings = self._transcription if self._transcribing else self.session
        include = settings.get("include")
        return isinstance(include, list) and _LOGPROBS in include

    def _on_audio_clear(self, _event: JsonObject) -> None:
        self._audio.clear()
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


def _section(session: Mapping[str, Any], direction: str) -> Mapping[str, Any]:
    """A GA session's ``audio.input`` or ``audio.output`` settings (``{}`` when absent)."""
    audio = session.get("audio")
    settings = audio.get(direction) if isinstance(audio, Mapping) else None
    return settings if isinstance(settings, Mapping) else {}


def _logprob(token: str) -> JsonObject:
    """A transcription log probability: every word of a simulated transcript is certain."""
    return {"token": token, "bytes": list(token.encode()), "logprob": 0.0}
