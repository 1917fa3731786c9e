"""One Realtime session, simulated: client frames in, server event frames out.

:class:`SessionSimulator` knows nothing of sockets. A transport creates one per accepted
connection with two callables, ``send`` (one JSON text frame) and ``close`` (code and
reason), then calls :meth:`~SessionSimulator.open` (or :meth:`~SessionSimulator.refuse`),
:meth:`~SessionSimulator.receive` for every client frame in arrival order,
:meth:`~SessionSimulator.expire` when the session's time is up, and
:meth:`~SessionSimulator.stop` when the connection ends.

What a session answers, and with which errors, is described in the
:mod:`realtime_sync.testing` documentation; this module reads client frames, dispatches
each event to its handler and sends the answers, and handles the session and response
events. The input audio buffer and turn detection are handled in :mod:`._input_audio` and
the conversation in :mod:`._conversation_handlers` (base classes of
:class:`SessionSimulator`), responses in :mod:`._responses`, the voice in :mod:`._voice`,
function calls in :mod:`._tools`.
"""

from __future__ import annotations

import contextlib
import copy
import json
import logging
import math
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from .._endpoints import Dialect
from ._catalogue import (
    GA_TRANSCRIPTION_FIELDS,
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
from ._input_audio import InputAudio
from ._options import SimulatorOptions
from ._responses import Responder, SendFailed
from ._transcription import opening_event, transcription_start
from ._voice import SpokenAudio

__all__ = ["SessionSimulator", "SimulatorOptions", "is_error_frame"]

_log = logging.getLogger("realtime_sync.testing")

_EXPIRY_JOIN_TIMEOUT = 2.0  # seconds expire() waits for a response in progress to stop
_ERROR_FRAME_START = '{"type":"error",'  # how emit() encodes an error event


def is_error_frame(frame: str) -> bool:
    """Whether ``frame``, as :meth:`SessionSimulator.emit` encodes events (``type``
    first, compact), is an ``error`` event."""
    return frame.startswith(_ERROR_FRAME_START)


class SessionSimulator(InputAudio):
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
        take_response_drop: Callable[[], int | None] | None = None,
        take_transcription_failure: Callable[[], JsonObject | None] | None = None,
        drop: Callable[[], None] | None = None,
        intent: str | None = None,
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
            take_response_drop: Called as each response starts (with the session's lock
                held; it must not wait for anything): ``None`` to stream it whole, or after
                how many delta events to call ``drop`` instead of finishing it.
            take_transcription_failure: Called as each input transcription is due (with
                the session's lock held; it must not wait): ``None`` to transcribe it, or
                the ``error`` of the ``...transcription.failed`` event to send instead.
            drop: Cuts the connection without a close frame (must not block).
            intent: ``"transcription"``: a transcription session from the start.
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
        self._take_response_drop = take_response_drop
        self._take_transcription_failure = take_transcription_failure
        self._drop = drop
        self._expired = False
        self._audio = bytearray()  # the input audio buffer
        self._timeline_ms = 0.0  # audio appended since the session started
        self._held = []  # late transcriptions, waiting for a response
        self._transcription = transcription_session()
        self._transcribing = False  # a transcription_session.update was accepted
        self._lock = threading.RLock()
        self._wakeup = threading.Condition(self._lock)
        self._responder = Responder(
            self, self._wakeup, options=options, register_thread=register_thread
        )
        self._listener = None  # turn detection, when it is on
        self._interrupted = set()  # responses turn detection cancelled
        self._response_due = False  # a turn waits for the response in progress to end
        self._out_of_band = False  # the last response accepted is out of the conversation
        if intent == "transcription":
            self.session, self._transcribing = transcription_start(self.session, dialect)
        self.configure_turn_detection()

    # The transport's calls

    def open(self) -> None:
        """Send ``session.created`` (beta ``intent=transcription``:
        ``transcription_session.created``), the first event of every session."""
        beta_transcription = self._transcription if self._transcribing else None
        self._deliver(opening_event(self.session, beta_transcription))

    def receive(self, frame: str | bytes, *, answer: bool = True) -> JsonObject | None:
        """Answer one client frame; return the parsed event, or ``None`` if refused unread.

        A binary frame gets ``invalid_event``, text that is not JSON (or nests absurdly
        deep) ``invalid_json``, JSON that is not an object ``invalid_event``. Any object is
        an event: it goes to ``on_received``, then gets its answer (an ``error`` event when
        it is invalid). With ``answer=False`` (a half-open connection) an event only goes
        to ``on_received``: it changes nothing and nothing is sent.
        """
        if not answer:
            return self._record_only(frame)
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

    def _record_only(self, frame: str | bytes) -> JsonObject | None:
        try:
            event = json.loads(frame) if isinstance(frame, str) else None
        except (ValueError, RecursionError):
            return None
        if not isinstance(event, dict):
            return None
        if self._on_received is not None:
            self._on_received(event)
        return event

    def expire(self) -> None:
        """End the session at its maximum duration: ``session_expired``, then close 1001.

        Once: a second call (the lifetime timer and a test's ``expire_sessions``) does
        nothing.
        """
        with self._lock:
            if self._expired:
                return
            self._expired = True
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

    @property
    def lock(self) -> contextlib.AbstractContextManager[Any]:
        """The session's lock (reentrant). Answers to client events and responses are sent
        with it held, so while a transport holds it none goes out (a shared session adds
        a connection under it, right after that connection's ``session.created``)."""
        return self._lock

    def conversation(self) -> tuple[list[JsonObject], JsonObject]:
        """Deep copies of the conversation items (in order) and the session config."""
        with self._lock:
            return copy.deepcopy(self.items), copy.deepcopy(self.session)

    # The responder's calls

    def take_response_drop(self) -> int | None:
        """After how many deltas a starting response cuts the connection (None: never)."""
        return None if self._take_response_drop is None else self._take_response_drop()

    def drop_connection(self) -> None:
        """Cut the connection without a close frame."""
        if self._drop is not None:
            self._drop()

    # Sending

    def emit(self, event: Mapping[str, Any]) -> None:
        """Send ``event`` with a fresh ``event_id`` right after its ``type``.

        Raises :class:`~._responses.SendFailed` when the transport's ``send`` raises.
        """
        ending = event["type"] == "response.done"
        if ending:
            self.response_ending(event["response"])
        payload: JsonObject = {"type": event["type"], "event_id": random_id("event_")}
        payload.update(event)
        frame = json.dumps(payload, separators=(",", ":"), ensure_ascii=False)
        try:
            self._send(frame)
        except Exception as exc:
            raise SendFailed(exc) from exc
        if ending:
            self.response_ended(event["response"])

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
        self.check_turn_detection(update, transcription=False)
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
        self.configure_turn_detection()
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
        self.check_turn_detection(update, transcription=True)
        update.pop("client_secret", None)
        self._transcription.update(update)
        self._transcribing = True
        self.configure_turn_detection()
        self.emit({"type": "transcription_session.updated", "session": self._transcription})

    # Handlers: responses

    def _on_response_create(self, event: JsonObject) -> None:
        self._responder.create(event)
        params = object_param(event, "response", required=False)
        self.response_accepted(out_of_band=params.get("conversation") == "none")

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
