"""One-call turns: ask for a response, stream it, and get its outcome, in blocking code.

:class:`Turns` is one of the dispatcher's state reducers: it sees every event before user
handlers, ties each ``response.created`` to the request that caused it, routes the
response's deltas to its :class:`ResponseHandle`, and fails a handle when the server's
``error`` names one of the events the handle sent (``error.event_id``). Requests made while
a response is in progress are queued and sent when it is done, so they do not meet
``conversation_already_has_active_response``; if one does (a response the server started by
itself), it is queued again. Each request's metadata carries its event id under
:data:`TURN_TAG`, so that a ``response.created`` is matched to its request exactly.
"""

from __future__ import annotations

import base64
import os
import queue
import threading
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Protocol

from attrs import field, frozen

from ._dispatch import closed_error
from ._errors import RealtimeTimeoutError, ResponseError, ResponseInterruptedError
from ._failures import error_for
from ._local_events import ClosedEvent
from ._objects import ConversationItem, Response, ResponseStatusDetails, Usage
from ._server_events import (
    AudioDeltaEvent,
    ErrorEvent,
    ResponseEvent,
    SessionEvent,
    TextDeltaEvent,
    TranscriptDeltaEvent,
)
from ._timeouts import wait_seconds

__all__ = ["Reply", "ResponseHandle", "Turns"]

_BUSY_CODE = "conversation_already_has_active_response"
TURN_TAG = "realtime_sync_turn"
"""The ``response.metadata`` key that names the ``response.create`` event a response answers:
servers echo metadata in ``response.created``, which is how a response is told apart from
one the server started by itself (server VAD)."""
_MAX_METADATA_KEYS = 16
_TEXT_PARTS = frozenset({"output_text", "text"})
_AUDIO_PARTS = frozenset({"output_audio", "audio"})
_END = object()  # closes every stream of a handle


@frozen
class Reply:
    """The outcome of one response: what ``send_text()`` returns, and
    :meth:`ResponseHandle.wait`."""

    response: Response
    """The response as ``response.done`` carried it: output items, usage, status."""
    audio: bytes = field(default=b"", repr=lambda audio: f"<{len(audio)} bytes>")
    """The response's audio as received, in the session's output format (PCM16 at 24 kHz
    unless configured otherwise); ``b""`` for text responses."""
    audio_format: Any = field(default=None, repr=False)
    """The session's output audio format when the response ended (None: PCM16, 24 kHz)."""

    def save_wav(self, path_or_file: Any) -> None:
        """Write the response's audio as a WAV file (G.711 decoded to 16-bit PCM)."""
        from . import audio

        pcm = audio.decode_from_format(self.audio, self.audio_format)
        audio.write_wav(path_or_file, pcm, rate=audio.format_rate(self.audio_format))

    @property
    def id(self) -> str | None:
        """The response id, ``resp_...``."""
        return self.response.id

    @property
    def status(self) -> str | None:
        """``completed`` (a reply that is not raises :class:`ResponseError`)."""
        return self.response.status

    @property
    def status_details(self) -> ResponseStatusDetails | None:
        """Why the response ended as it did, when the server says."""
        return self.response.status_details

    @property
    def output(self) -> tuple[ConversationItem, ...]:
        """The items the response produced."""
        return self.response.output or ()

    @property
    def usage(self) -> Usage | None:
        """Token counts of this response."""
        return self.response.usage

    @property
    def text(self) -> str:
        """The text the response produced (its text parts, joined)."""
        return "".join(part.text or "" for part in self._parts() if part.type in _TEXT_PARTS)

    @property
    def transcript(self) -> str:
        """The transcript of the audio the response produced."""
        return "".join(part.transcript or "" for part in self._parts() if part.type in _AUDIO_PARTS)

    @property
    def function_calls(self) -> tuple[ConversationItem, ...]:
        """The function calls the model made: ``name``, ``call_id``, ``arguments`` (JSON)."""
        return tuple(item for item in self.output if item.type == "function_call")

    def _parts(self) -> Iterator[Any]:
        for item in self.output:
            if item.type == "message":
                yield from item.content or ()


class _Sender(Protocol):
    """What turns need of the client."""

    def send(self, event: Mapping[str, Any]) -> str: ...


class ResponseHandle:
    """A response asked for with ``create_response()``: wait for it, cancel it, or stream
    its deltas in the calling thread as they arrive."""

    def __init__(
        self,
        turns: Turns,
        request: Mapping[str, Any] | None,
        preface: tuple[Mapping[str, Any], ...] = (),
    ) -> None:
        self._turns = turns
        self._request = request
        self._preface = preface
        self._prefaced = preface  # all of it: a retry re-sends what never arrived
        self._cancelled = False  # cancel() was called: cancel it as soon as it exists
        self.event_ids: tuple[str, ...] = ()
        """The ids of the client events sent for this response (its item and its
        ``response.create``): a server ``error`` naming one fails it."""
        self.id: str | None = None
        """The response id, once ``response.created`` arrived."""
        self._tagged = False  # its request carries TURN_TAG
        self._done = threading.Event()
        self._reply: Reply | None = None
        self._error: BaseException | None = None
        self._audio: list[bytes] = []
        self._streams: dict[type, queue.SimpleQueue[Any]] = {
            TextDeltaEvent: queue.SimpleQueue(),
            TranscriptDeltaEvent: queue.SimpleQueue(),
            AudioDeltaEvent: queue.SimpleQueue(),
        }

    def done(self) -> bool:
        """True once the response ended (or failed before it began)."""
        return self._done.is_set()

    def wait(self, timeout: float | None = None) -> Reply:
        """Block until ``response.done``; return the :class:`Reply`.

        Raises :class:`ResponseError` for a ``cancelled``, ``failed`` or ``incomplete``
        response (its ``reply`` holds what was produced), the :class:`APIError` of a server
        ``error`` answering one of this response's events, the session's end
        (:class:`ConnectionClosed`, :class:`ClientClosed`), or
        :class:`RealtimeTimeoutError` after ``timeout`` seconds (the response goes on).
        """
        if not self._done.wait(wait_seconds(timeout)):
            raise RealtimeTimeoutError(f"the response did not finish within {timeout} s")
        if self._error is not None:
            raise self._error.with_traceback(None)
        assert self._reply is not None
        return self._reply

    def cancel(self) -> None:
        """Cancel the response: sends ``response.cancel`` once it started, or drops the
        request if it was still queued. :meth:`wait` then raises a cancelled
        :class:`ResponseError`."""
        self._turns.cancel(self)

    def text_stream(self, timeout: float | None = None) -> Iterator[str]:
        """The response's text deltas, as they arrive; ends with the response.

        ``timeout`` bounds the wait for each delta (:class:`RealtimeTimeoutError`).
        """
        for event in self._stream(TextDeltaEvent, timeout):
            yield event.delta

    def transcript_stream(self, timeout: float | None = None) -> Iterator[str]:
        """The deltas of the transcript of the response's audio, as they arrive."""
        for event in self._stream(TranscriptDeltaEvent, timeout):
            yield event.delta

    def audio_stream(self, timeout: float | None = None) -> Iterator[bytes]:
        """The response's audio, chunk by chunk as it arrives (decoded bytes)."""
        for event in self._stream(AudioDeltaEvent, timeout):
            yield base64.b64decode(event.delta)

    def _stream(self, kind: type, timeout: float | None) -> Iterator[Any]:
        source = self._streams[kind]
        while True:
            try:
                item = source.get(timeout=wait_seconds(timeout))
            except queue.Empty:
                raise RealtimeTimeoutError(f"no delta within {timeout} s") from None
            if item is _END:
                source.put(_END)  # a second stream over the same kind ends at once too
                if self._error is not None:
                    raise self._error.with_traceback(None)
                return
            yield item

    # --- the dispatcher thread --------------------------------------------------------------

    def _delta(self, event: Any) -> None:
        self._streams[type(event)].put(event)
        if type(event) is AudioDeltaEvent:
            self._audio.append(base64.b64decode(event.delta))

    def _finish(self, response: Response, audio_format: Any) -> None:
        reply = Reply(response, b"".join(self._audio), audio_format)
        if response.status != "completed":
            details = response.status_details
            reason = None
            if details is not None:
                reason = details.reason or (details.error.code if details.error else None)
            self._fail(
                ResponseError(
                    f"the response ended {response.status}" + (f" ({reason})" if reason else ""),
                    status=response.status,
                    reason=reason,
                    reply=reply,
                )
            )
            return
        self._reply = reply
        self._close()

    def _fail(self, error: BaseException) -> None:
        self._error = error
        self._close()

    def _close(self) -> None:
        for stream in self._streams.values():
            stream.put(_END)
        self._done.set()


class Turns:
    """Ties responses to the requests that asked for them (a reducer of the dispatcher)."""

    def __init__(
        self,
        sender: _Sender,
        output_format: Callable[[], Any] = lambda: None,
        *,
        continues: Callable[[Response], bool] = lambda response: False,
        deferring: Callable[[], bool] = lambda: False,
        queued: Callable[[str], bool] = lambda event_id: False,
        known: Callable[[Mapping[str, Any]], bool] = lambda event: False,
    ) -> None:
        self._sender = sender
        self._output_format = output_format
        self._continues = continues
        # Between connections, requests wait here rather than in the send queue, so that
        # a request is either answered by the session it was sent to or not sent yet.
        self._deferring = deferring
        self._queued_to_send = queued  # whether an event id waits in the send queue
        self._known = known  # whether the item a preface event creates is in the conversation
        # Handles whose response ended in function calls that are being answered: they
        # finish with the follow-up response.
        self._continuing: dict[str, ResponseHandle | None] = {}  # None: cancelled
        # Guards everything below: requests come from user threads, events from the
        # dispatcher thread.
        self._lock = threading.RLock()
        self._queued: deque[ResponseHandle] = deque()  # not sent yet
        self._sent: deque[ResponseHandle] = deque()  # sent, awaiting response.created
        self._active: dict[str, ResponseHandle] = {}
        self._by_event_id: dict[str, ResponseHandle] = {}
        self._busy = False  # a response is in progress, ours or not
        self._current: str | None = None  # its id, once response.created told it
        self._routes: dict[type, Callable[[Any], None]] = {
            ResponseEvent: self._on_response,
            TextDeltaEvent: self._on_delta,
            TranscriptDeltaEvent: self._on_delta,
            AudioDeltaEvent: self._on_delta,
            ErrorEvent: self._on_error,
            ClosedEvent: self._on_closed,
            SessionEvent: self._on_session,
        }

    def request(
        self, response: Mapping[str, Any] | None, preface: tuple[Mapping[str, Any], ...] = ()
    ) -> ResponseHandle:
        """Ask for a response now, or as soon as the one in progress is done.

        ``preface`` events (the user's message of a turn) are sent right before the
        ``response.create``, when its turn comes: so concurrent turns each answer their
        own message.
        """
        handle = ResponseHandle(self, response, preface)
        with self._lock:
            if self._busy or self._sent or self._deferring():
                self._queued.append(handle)
                return handle
            failure = self._send(handle)
        if failure is not None:
            raise failure
        return handle

    def follow_up(self, response_id: str | None) -> None:
        """Ask for the response that follows function-call outputs; the handle of the
        response that made the calls (if any) waits for this one instead."""
        with self._lock:
            if response_id in self._continuing:
                handle = self._continuing.pop(response_id)
                if handle is None:  # cancelled while its tools ran
                    return
            else:
                handle = ResponseHandle(self, None)
            if self._busy or self._sent or self._deferring():
                self._queued.append(handle)
                return
            failure = self._send(handle)
        if failure is not None:
            raise failure

    def idle(self) -> bool:
        """Whether no response is in progress, asked for, or waiting for its tools."""
        with self._lock:
            return not (self._busy or self._sent or self._queued or self._continuing)

    def interrupt(self, error: BaseException, *, retry: bool) -> None:
        """The connection was lost: responses in progress, or asked for on it, are gone.
        Their handles fail with :class:`ResponseInterruptedError` (or, with ``retry``, ask
        again on the next session); requests not sent yet wait for it."""
        with self._lock:
            lost = [*self._active.values()]
            lost += [h for h in self._sent if not any(map(self._queued_to_send, h.event_ids))]
            self._sent = deque(h for h in self._sent if h not in lost)
            self._active.clear()
            self._busy = False
            self._current = None
            for handle in lost:
                self._forget(handle)
                if retry and not handle._cancelled:
                    # Its message is replayed if the server had it; else it goes again.
                    handle._preface = tuple(e for e in handle._prefaced if not self._known(e))
                    handle.id = None
                    handle.event_ids = ()
                    self._queued.appendleft(handle)
        if retry:
            lost = [handle for handle in lost if handle._cancelled]
        for handle in lost:
            interrupted = ResponseInterruptedError(
                "the connection was lost while the response was in progress",
                status="incomplete",
                reason="connection_lost",
                reply=None,
            )
            interrupted.__cause__ = error
            handle._fail(interrupted)

    def current(self) -> str | None:
        """The id of the response in progress on the server (ours or not), if any."""
        return self._current

    def abandon(self, response_id: str | None, error: BaseException) -> None:
        """The function calls of ``response_id`` could not be answered: its handle fails."""
        with self._lock:
            handle = self._continuing.pop(response_id or "", None)
        if handle is not None:
            handle._fail(error)

    def cancel(self, handle: ResponseHandle) -> None:
        with self._lock:
            handle._cancelled = True
            waiting_on = next((rid for rid, h in self._continuing.items() if h is handle), None)
            if waiting_on is not None:  # its tools run: the follow-up will not be asked for
                self._continuing[waiting_on] = None
                self._forget(handle)
                handle._fail(
                    ResponseError(
                        "the response was cancelled while its tools ran",
                        status="cancelled",
                        reason="client_cancelled",
                    )
                )
                return
            if handle in self._queued:
                self._queued.remove(handle)
                self._forget(handle)
                handle._fail(
                    ResponseError(
                        "the response was cancelled before it began",
                        status="cancelled",
                        reason="client_cancelled",
                    )
                )
                return
            active_id = handle.id
        # Not created yet? Then response.created sends the cancel (handle._cancelled).
        if active_id is not None and not handle.done():
            self._sender.send({"type": "response.cancel", "response_id": active_id})

    # --- the dispatcher thread --------------------------------------------------------------

    def receive(self, event: Any) -> Any:
        route = self._routes.get(type(event))
        if route is not None:
            with self._lock:
                route(event)
        return event

    def _on_session(self, event: SessionEvent) -> None:
        if event.type == "session.created" and not self._busy:  # requests made meanwhile
            self._send_next()

    def _on_response(self, event: ResponseEvent) -> None:
        response = event.response
        if event.type == "response.created":
            self._busy = True
            self._current = response.id
            handle = self._requester(response)
            if handle is not None and response.id is not None:
                self._sent.remove(handle)
                handle.id = response.id
                self._active[response.id] = handle
                if handle._cancelled:  # cancel() came before the response existed
                    self._sender.send({"type": "response.cancel", "response_id": response.id})
            return
        if event.type != "response.done":
            return
        self._busy = False
        self._current = None
        finished = self._active.pop(response.id or "", None)
        if finished is not None:
            self._forget(finished)
            if self._continues(response):
                self._continuing[response.id or ""] = finished
            else:
                finished._finish(response, self._output_format())
        self._send_next()

    def _requester(self, response: Response) -> ResponseHandle | None:
        """The handle whose request ``response`` answers; None for one the server began."""
        tag = (response.metadata or {}).get(TURN_TAG)
        if tag is not None:
            handle = self._by_event_id.get(tag)
            return handle if handle in self._sent else None
        # Untagged: ours only if a request went out without a tag (its metadata was full).
        untagged = [handle for handle in self._sent if not handle._tagged]
        return untagged[0] if untagged else None

    def _on_delta(self, event: Any) -> None:
        handle = self._active.get(event.response_id)
        if handle is not None:
            handle._delta(event)

    def _on_error(self, event: ErrorEvent) -> None:
        handle = self._by_event_id.get(event.error.event_id or "")
        if handle is None:
            return
        if event.error.code == _BUSY_CODE and handle in self._sent and not handle._cancelled:
            # A response we did not ask for is in progress: ask again when it is done.
            self._sent.remove(handle)
            self._queued.appendleft(handle)
            self._busy = True
            return
        for waiting in (self._sent, self._queued):
            if handle in waiting:
                waiting.remove(handle)
        self._forget(handle)
        handle._fail(error_for(event))
        if not self._busy:
            self._send_next()

    def _on_closed(self, event: ClosedEvent) -> None:
        error = closed_error(event)
        continuing = [handle for handle in self._continuing.values() if handle is not None]
        handles = [*self._sent, *self._queued, *self._active.values(), *continuing]
        self._sent.clear()
        self._queued.clear()
        self._active.clear()
        self._continuing.clear()
        self._by_event_id.clear()
        self._busy = False
        self._current = None
        for handle in handles:
            handle._fail(error)

    # --- with the lock held -------------------------------------------------------------------

    def _send_next(self) -> None:
        """Send the next queued request, if nothing is in progress; a request that cannot
        be sent fails its own handle and the next one is tried."""
        while self._queued and not self._sent:
            self._send(self._queued.popleft())

    def _send(self, handle: ResponseHandle) -> BaseException | None:
        """Send ``handle``'s preface and ``response.create``; what sending raised, if it
        failed."""
        event_id = f"evt_turn_{os.urandom(8).hex()}"
        request = dict(handle._request or {})
        # The tag key is ours: a value the caller put there would be taken for a tag.
        metadata = {k: v for k, v in dict(request.get("metadata") or {}).items() if k != TURN_TAG}
        if metadata or "metadata" in request:
            request["metadata"] = metadata
        handle._tagged = len(metadata) < _MAX_METADATA_KEYS
        if handle._tagged:
            request["metadata"] = {**metadata, TURN_TAG: event_id}
        payload = {"type": "response.create", "event_id": event_id, "response": request}
        try:
            for event in handle._preface:
                self._track(handle, (self._sender.send(event),))
            handle._preface = ()
            self._track(handle, (self._sender.send(payload),))
        except Exception as exc:  # not connected, invalid request: the handle fails
            self._forget(handle)
            handle._fail(exc)
            return exc
        self._sent.append(handle)
        return None

    def _track(self, handle: ResponseHandle, event_ids: tuple[str, ...]) -> None:
        handle.event_ids += event_ids
        for event_id in event_ids:
            self._by_event_id[event_id] = handle

    def _forget(self, handle: ResponseHandle) -> None:
        for event_id in handle.event_ids:
            self._by_event_id.pop(event_id, None)
