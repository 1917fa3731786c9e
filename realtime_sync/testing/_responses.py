"""Responses of a simulated session: ``response.create`` to ``response.done``.

A :class:`Responder` belongs to one :class:`~._simulator.SessionSimulator`. It accepts
``response.create`` and ``response.cancel`` on the thread that handles client events and
streams each response on its own response thread, started on the first ``response.create``
and ended by :meth:`Responder.stop`. Both threads hold the session's lock while they change
state and send the events that describe the change, so the client sees a consistent order;
the response thread releases it between steps and while it waits ``delta_interval``.

Every answer is one assistant text message, whatever modalities the session or the
response asks for: the response object reports the modalities actually produced.
"""

from __future__ import annotations

import copy
import logging
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, Protocol

import attrs

from ._catalogue import (
    CANCELLED,
    RATE_LIMITS,
    ClientError,
    DialectSpec,
    JsonObject,
    object_param,
    random_id,
    refuse_unknown,
    rng,
    server_error,
)

_log = logging.getLogger("realtime_sync.testing")


class SendFailed(Exception):
    """The transport's ``send`` raised: the connection is gone or going.

    Carries the transport's own exception in :attr:`cause`; the simulator gives that back
    to the transport unchanged.
    """

    def __init__(self, cause: Exception) -> None:
        super().__init__(str(cause))
        self.cause = cause


class Host(Protocol):
    """What a responder needs from its session (the simulator provides it)."""

    @property
    def spec(self) -> DialectSpec: ...
    @property
    def session(self) -> JsonObject: ...
    @property
    def items(self) -> list[JsonObject]: ...
    @property
    def conversation_id(self) -> str: ...
    def emit(self, event: Mapping[str, Any]) -> None: ...
    def insert(self, item: JsonObject, index: int) -> str | None: ...
    def index_of(self, item_id: object, param: str) -> int: ...


@attrs.define(eq=False)
class _Job:
    """One response from ``response.create`` to ``response.done``; guarded by the lock."""

    response: JsonObject  # the response object; its status changes when it ends
    text: str  # the full answer
    in_conversation: bool
    source: list[JsonObject]  # the prompt items, for the usage estimate
    instructions: str | None
    started: bool = False  # taken by the response thread
    cancelled: bool = False  # response.cancel was accepted
    # What was streamed so far: the finishing events describe exactly this.
    item: JsonObject | None = None
    previous_id: str | None = None
    part_added: bool = False
    produced: str = ""

    @property
    def id(self) -> str:
        response_id: str = self.response["id"]
        return response_id


class Responder:
    """The responses of one session: at most one active at a time."""

    def __init__(
        self,
        host: Host,
        wakeup: threading.Condition,
        *,
        answer: Callable[[str], str],
        delta_chunks: int,
        delta_interval: float,
        register_thread: Callable[[threading.Thread], None] | None,
    ) -> None:
        self._host = host
        self._wakeup = wakeup  # its lock is the session's lock
        self._answer = answer
        self._delta_chunks = delta_chunks
        self._delta_interval = delta_interval
        self._register_thread = register_thread
        self._active: _Job | None = None
        self._last_id: str | None = None
        self._closing = False
        self._worker: threading.Thread | None = None

    def audio_response_id(self) -> str | None:
        """The response whose audio ``output_audio_buffer.clear`` clears.

        The active response's, else the last one's (it may still be playing).
        """
        return self._active.id if self._active is not None else self._last_id

    def stop(self, timeout: float) -> None:
        """Stop the response thread (no more events from it) and join it."""
        # Set before taking the lock, which the response thread may hold while a send
        # blocks; it reads the flag under the lock after every step and wait.
        self._closing = True
        with self._wakeup:
            self._wakeup.notify_all()
        worker = self._worker
        if worker is not None and worker is not threading.current_thread():
            worker.join(timeout)

    # Client events (called with the lock held)

    def cancel(self, event: Mapping[str, Any]) -> None:
        """Accept ``response.cancel``: the response thread ends the response."""
        response_id = event.get("response_id")
        if response_id is not None and not isinstance(response_id, str):
            raise ClientError(
                "invalid_type", "'response_id' must be a string.", param="response_id"
            )
        job = self._active
        if job is None or job.cancelled:
            raise ClientError(
                "response_cancel_not_active",
                "There is no active response to cancel."
                if response_id is None
                else f"Response '{response_id}' is not active; there is nothing to cancel.",
                param=None if response_id is None else "response_id",
            )
        if response_id is not None and response_id != job.id:
            raise ClientError(
                "invalid_value",
                f"Cannot cancel response '{response_id}': the active response is '{job.id}'.",
                param="response_id",
            )
        # Nothing is sent here: the response thread ends the response with the done
        # events of what it produced, a cancelled response.done and rate_limits.updated.
        job.cancelled = True
        self._wakeup.notify_all()

    def create(self, event: Mapping[str, Any]) -> None:
        """Accept ``response.create``: the response thread streams the answer."""
        spec = self._host.spec
        params = object_param(event, "response", required=False)
        refuse_unknown("response", params, spec.response_fields)
        if self._active is not None:
            raise ClientError(
                "conversation_already_has_active_response",
                f"Conversation already has an active response in progress: "
                f"{self._active.id}. Wait for its response.done before creating another one.",
            )
        conversation = params.get("conversation", "auto")
        if conversation is not None and not isinstance(conversation, str):
            raise ClientError(
                "invalid_type",
                "'response.conversation' must be 'auto' or 'none'.",
                param="response.conversation",
            )
        instructions = params.get("instructions")
        if instructions is not None and not isinstance(instructions, str):
            raise ClientError(
                "invalid_type",
                "'response.instructions' must be a string.",
                param="response.instructions",
            )
        in_conversation = conversation != "none"
        if "input" in params:
            source = self._response_input(params["input"])
        else:
            source = list(self._host.items)
        text = self._answer(_last_user_text(source))
        self._active = _Job(
            response=self._response_object(random_id("resp_"), params, in_conversation),
            text=text,
            in_conversation=in_conversation,
            source=copy.deepcopy(source),
            instructions=instructions,
        )
        if self._worker is None:
            self._worker = threading.Thread(
                target=self._run, name="realtime_sync-local-server-response", daemon=True
            )
            if self._register_thread is not None:
                self._register_thread(self._worker)
            self._worker.start()
        self._wakeup.notify_all()

    def _response_input(self, value: object) -> list[JsonObject]:
        if not isinstance(value, list):
            raise ClientError(
                "invalid_type", "'response.input' must be a list of items.", param="response.input"
            )
        items = []
        for entry in value:
            if not isinstance(entry, dict):
                raise ClientError(
                    "invalid_type",
                    "'response.input' items must be objects.",
                    param="response.input",
                )
            if entry.get("type") == "item_reference":
                index = self._host.index_of(entry.get("id"), "response.input")
                items.append(self._host.items[index])
            else:
                items.append(entry)
        return items

    def _response_object(
        self, response_id: str, params: Mapping[str, Any], in_conversation: bool
    ) -> JsonObject:
        host = self._host
        common: JsonObject = {
            "object": "realtime.response",
            "id": response_id,
            "status": "in_progress",
            "status_details": None,
            "output": [],
            "conversation_id": host.conversation_id if in_conversation else None,
        }
        session = host.session
        if host.spec.name == "ga":
            output_audio = (session.get("audio") or {}).get("output") or {}
            specific: JsonObject = {
                # What this response produces: text, whatever was asked for.
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

    def _run(self) -> None:
        """Stream each accepted response, one at a time, until the session stops."""
        while True:
            with self._wakeup:
                while not self._closing and (self._active is None or self._active.started):
                    self._wakeup.wait()
                if self._closing:
                    return
                job = self._active
                assert job is not None
                job.started = True
            try:
                self._stream(job)
            except SendFailed:
                return  # the connection is gone; the transport ends the session
            except Exception:
                _log.exception("local realtime server failed while streaming a response")
                with self._wakeup:
                    if self._active is job:
                        self._active = None
                    try:
                        self._host.emit({"type": "error", "error": server_error().body(None)})
                    except SendFailed:
                        return

    def _stream(self, job: _Job) -> None:
        """Send one response's events; stop early on cancel, silently on stop."""
        with self._wakeup:
            if self._closing:
                return
            self._host.emit({"type": "response.created", "response": job.response})
        steps = self._text_message_steps(job, 0)
        while True:
            with self._wakeup:
                if self._closing:
                    return
                if job.cancelled:
                    break
                delay = next(steps, None)  # runs one step, with the lock held
                if delay is None:
                    break
                if delay > 0:
                    # Releases the lock while it waits; a cancel or a stop wakes it.
                    self._wakeup.wait_for(lambda: job.cancelled or self._closing, delay)
        with self._wakeup:
            if not self._closing:
                self._finish(job, 0)

    @staticmethod
    def _where(job: _Job, output_index: int) -> JsonObject:
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
        host, spec = self._host, self._host.spec
        item: JsonObject = {
            "id": random_id("item_"),
            "object": "realtime.item",
            "type": "message",
            "status": "in_progress",
            "role": "assistant",
            "content": [],
        }
        job.item = item
        host.emit(
            {
                "type": "response.output_item.added",
                "response_id": job.id,
                "output_index": output_index,
                "item": item,
            }
        )
        if job.in_conversation:
            job.previous_id = host.insert(item, len(host.items))
            host.emit({"type": spec.item_added, "previous_item_id": job.previous_id, "item": item})
        yield 0.0
        where = self._where(job, output_index)
        host.emit(
            {"type": "response.content_part.added", **where, "part": {"type": "text", "text": ""}}
        )
        job.part_added = True
        for piece in _split_text(job.text, self._delta_chunks):
            yield self._delta_interval
            delta: JsonObject = {"type": spec.text_delta, **where, "delta": piece}
            if spec.name == "ga":
                # GA servers pad deltas with random characters against length side channels.
                delta["obfuscation"] = random_id("", rng.randint(2, 12))
            host.emit(delta)
            job.produced += piece

    def _finish(self, job: _Job, output_index: int) -> None:
        """Close what was streamed, then send ``response.done`` and ``rate_limits.updated``."""
        host, spec = self._host, self._host.spec
        cancelled = job.cancelled
        item = job.item
        if item is not None:
            if job.part_added:
                where = self._where(job, output_index)
                part = {"type": "text", "text": job.produced}
                host.emit({"type": spec.text_done, **where, "text": job.produced})
                host.emit({"type": "response.content_part.done", **where, "part": part})
                item["content"] = [{"type": spec.text_content_type, "text": job.produced}]
            item["status"] = "incomplete" if cancelled else "completed"
            host.emit(
                {
                    "type": "response.output_item.done",
                    "response_id": job.id,
                    "output_index": output_index,
                    "item": item,
                }
            )
            if job.in_conversation and spec.item_done is not None:
                host.emit(
                    {"type": spec.item_done, "previous_item_id": job.previous_id, "item": item}
                )
        response = job.response
        response["status"] = "cancelled" if cancelled else "completed"
        response["status_details"] = dict(CANCELLED) if cancelled else None
        response["output"] = [] if item is None else [item]
        response["usage"] = self._usage(job.source, job.produced, job.instructions)
        # The response ends before response.done goes out: a client that saw it may
        # create the next one at once.
        self._active = None
        self._last_id = job.id
        host.emit({"type": "response.done", "response": response})
        # Real servers report rate limits after every response.done.
        host.emit({"type": "rate_limits.updated", "rate_limits": [dict(r) for r in RATE_LIMITS]})

    def _usage(
        self, source: Iterable[Mapping[str, Any]], text: str, instructions: str | None
    ) -> JsonObject:
        if instructions is None:
            session_instructions = self._host.session.get("instructions")
            instructions = session_instructions if isinstance(session_instructions, str) else ""
        prompt = " ".join(_item_text(item) for item in source) + instructions
        input_tokens, output_tokens = _estimate_tokens(prompt), _estimate_tokens(text)
        cached: JsonObject = {"text_tokens": 0, "audio_tokens": 0}
        input_details: JsonObject = {
            "text_tokens": input_tokens,
            "audio_tokens": 0,
            "cached_tokens": 0,
            "cached_tokens_details": cached,
        }
        if self._host.spec.name == "ga":
            input_details["image_tokens"] = cached["image_tokens"] = 0
        return {
            "total_tokens": input_tokens + output_tokens,
            "input_tokens": input_tokens,
            "output_tokens": output_tokens,
            "input_token_details": input_details,
            "output_token_details": {"text_tokens": output_tokens, "audio_tokens": 0},
        }


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
