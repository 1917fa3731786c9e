"""Responses of a simulated session: ``response.create`` to ``response.done``.

A :class:`Responder` belongs to one :class:`~._simulator.SessionSimulator`. It accepts
``response.create`` and ``response.cancel`` on the thread that handles client events and
streams each response on its own response thread, started on the first ``response.create``
and ended by :meth:`Responder.stop`. Both threads hold the session's lock while they change
state and send the events that describe the change, so the client sees a consistent order;
the response thread releases it between steps and while it waits (a scripted ``delay``
before ``response.created``, ``delta_interval`` before deltas). What a response outputs is
planned when it is accepted (:mod:`._planning`); this module streams the plan (text deltas,
spoken audio paced like speech (:mod:`._voice`), function call arguments), closes what a
cancel interrupted, and ends each response with ``response.done`` (completed, cancelled,
or failed as a script says; its usage estimated by :mod:`._usage`) and
``rate_limits.updated``.
"""

from __future__ import annotations

import base64
import logging
import math
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Protocol

import attrs

from ._catalogue import (
    CANCELLED,
    RATE_LIMITS,
    ClientError,
    JsonObject,
    object_param,
    random_id,
    refuse_unknown,
    rng,
    server_error,
)
from ._options import SimulatorOptions
from ._planning import OutputKind, Planned, SessionState, plan_response
from ._tools import FunctionCall
from ._usage import response_usage
from ._voice import AUDIO_CHUNK_MS, MS_PER_CHARACTER, AudioFormat, SpokenAudio, synthesize

_log = logging.getLogger("realtime_sync.testing")


class SendFailed(Exception):
    """The transport's ``send`` raised: the connection is gone or going.

    Carries the transport's own exception in :attr:`cause`; the simulator gives that back
    to the transport unchanged.
    """

    def __init__(self, cause: Exception) -> None:
        super().__init__(str(cause))
        self.cause = cause


class _Dropped(Exception):
    """The response cut its connection (an injected fault): the response thread ends."""


class Host(SessionState, Protocol):
    """What a responder needs from its session (the simulator provides it)."""

    def emit(self, event: Mapping[str, Any]) -> None: ...
    def insert(self, item: JsonObject, index: int) -> str | None: ...
    def response_started(self) -> None: ...
    def take_response_drop(self) -> int | None: ...
    def drop_connection(self) -> None: ...


@attrs.define(eq=False)
class _Output:
    """One output item as streamed so far; guarded by the lock."""

    index: int
    kind: OutputKind
    item: JsonObject
    previous_id: str | None
    part_added: bool = False
    produced: str = ""  # the text, transcript or arguments sent so far
    spoken: SpokenAudio | None = None  # an audio message's audio
    closed: bool = False


@attrs.define(eq=False)
class _Job:
    """One response from ``response.create`` to ``response.done``; guarded by the lock."""

    response: JsonObject  # the response object; its status changes when it ends
    plan: list[Planned]
    in_conversation: bool
    audio_format: AudioFormat  # of its spoken answers
    prompt_text_tokens: int
    prompt_audio_tokens: int
    delay: float  # before response.created
    delta_interval: float  # before each delta
    failure: JsonObject | None  # status_details when it fails at the end
    started: bool = False  # taken by the response thread
    cancelled: bool = False  # response.cancel was accepted
    drop_after: int | None = None  # cut the connection after this many deltas (a fault)
    deltas: int = 0  # delta events sent
    # What was streamed so far: the finishing events describe exactly this.
    outputs: list[_Output] = attrs.Factory(list)

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
        options: SimulatorOptions,
        register_thread: Callable[[threading.Thread], None] | None,
    ) -> None:
        self._host = host
        self._wakeup = wakeup  # its lock is the session's lock
        self._options = options
        self._register_thread = register_thread
        self._active: _Job | None = None
        self._last_id: str | None = None
        self._closing = False
        self._worker: threading.Thread | None = None

    @property
    def in_progress(self) -> bool:
        """A response is active (between its ``response.create`` and ``response.done``)."""
        return self._active is not None

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
        """Accept ``response.create``: plan the output; the response thread streams it."""
        spec = self._host.spec
        params = object_param(event, "response", required=False)
        refuse_unknown("response", params, spec.response_fields)
        if self._active is not None:
            raise ClientError(
                "conversation_already_has_active_response",
                f"Conversation already has an active response in progress: "
                f"{self._active.id}. Wait for its response.done before creating another one.",
            )
        plan = plan_response(self._host, self._options, params)  # may run the reply callable
        self._active = _Job(
            response=plan.response,
            plan=plan.outputs,
            in_conversation=plan.in_conversation,
            audio_format=plan.audio_format,
            prompt_text_tokens=plan.prompt_text_tokens,
            prompt_audio_tokens=plan.prompt_audio_tokens,
            delay=plan.delay,
            delta_interval=(
                self._options.delta_interval if plan.delta_interval is None else plan.delta_interval
            ),
            failure=plan.failure,
        )
        if self._worker is None:
            self._worker = threading.Thread(
                target=self._run, name="realtime_sync-local-server-response", daemon=True
            )
            if self._register_thread is not None:
                self._register_thread(self._worker)
            self._worker.start()
        self._wakeup.notify_all()

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
            except (SendFailed, _Dropped):
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
            if job.delay > 0:  # a cancel meanwhile gives a cancelled response at once
                self._wakeup.wait_for(lambda: job.cancelled or self._closing, job.delay)
            if self._closing:
                return
            self._host.emit({"type": "response.created", "response": job.response})
            self._host.response_started()  # transcriptions held for a response go now
            job.drop_after = self._host.take_response_drop()
            self._drop_when_due(job)
        steps = self._steps(job)
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
                self._drop_when_due(job, finishing=True)
                self._finish(job)

    def _delta(self, job: _Job, event: JsonObject) -> None:
        """Send one delta event; cut the connection after it when a fault says so."""
        self._host.emit(event)
        job.deltas += 1
        self._drop_when_due(job)

    def _drop_when_due(self, job: _Job, *, finishing: bool = False) -> None:
        """Cut the connection (and end this thread) when the response's drop is due."""
        if job.drop_after is not None and (finishing or job.deltas >= job.drop_after):
            _log.info("local realtime server: dropping a connection after %d delta(s)", job.deltas)
            self._host.drop_connection()
            raise _Dropped

    def _steps(self, job: _Job) -> Iterator[float]:
        """Stream every planned output, each up to its done events.

        Each step sends its events and then yields how long to wait before the next one.
        :meth:`_finish` closes an output a cancel interrupted.
        """
        for index, planned in enumerate(job.plan):
            if planned.call is not None:
                yield from self._call_steps(job, index, planned.call, planned.call_id)
            elif planned.kind == "audio":
                yield from self._audio_steps(job, index, planned.text)
            else:
                yield from self._text_steps(job, index, planned.text)
            self._close(job, job.outputs[-1], "completed")

    @staticmethod
    def _where(job: _Job, output: _Output) -> JsonObject:
        return {
            "response_id": job.id,
            "item_id": output.item["id"],
            "output_index": output.index,
            "content_index": 0,
        }

    def _start_output(self, job: _Job, index: int, kind: OutputKind, item: JsonObject) -> _Output:
        """Announce a new output item (and add it to the conversation)."""
        host, spec = self._host, self._host.spec
        previous_id = None
        host.emit(
            {
                "type": "response.output_item.added",
                "response_id": job.id,
                "output_index": index,
                "item": item,
            }
        )
        if job.in_conversation:
            previous_id = host.insert(item, len(host.items))
            host.emit({"type": spec.item_added, "previous_item_id": previous_id, "item": item})
        output = _Output(index=index, kind=kind, item=item, previous_id=previous_id)
        job.outputs.append(output)
        return output

    def _text_steps(self, job: _Job, index: int, text: str) -> Iterator[float]:
        """Stream one assistant text message up to its last delta."""
        spec = self._host.spec
        output = self._start_output(job, index, "text", _assistant_message())
        yield 0.0
        where = self._where(job, output)
        self._host.emit(
            {"type": "response.content_part.added", **where, "part": {"type": "text", "text": ""}}
        )
        output.part_added = True
        for piece in _split_text(text, self._options.delta_chunks):
            yield job.delta_interval
            delta: JsonObject = {"type": spec.text_delta, **where, "delta": piece}
            if spec.name == "ga":
                # GA servers pad deltas with random characters against length side channels.
                delta["obfuscation"] = random_id("", rng.randint(2, 12))
            self._delta(job, delta)
            output.produced += piece

    def _audio_steps(self, job: _Job, index: int, text: str) -> Iterator[float]:
        """Stream one spoken assistant message: transcript and audio deltas, 100 ms a step."""
        host, spec = self._host, self._host.spec
        output = self._start_output(job, index, "audio", _assistant_message())
        spoken = output.spoken = SpokenAudio()
        if job.in_conversation:  # conversation.item.truncate can cut it
            host.spoken[output.item["id"]] = spoken
        yield 0.0
        where = self._where(job, output)
        host.emit(
            {
                "type": "response.content_part.added",
                **where,
                "part": {"type": "audio", "transcript": ""},
            }
        )
        output.part_added = True
        fmt = job.audio_format
        audio = synthesize(text, fmt)
        chunk = round(fmt.bytes_per_ms * AUDIO_CHUNK_MS)
        started = 0.0
        for offset in range(0, len(audio), chunk):
            yield self._audio_wait(job, started, spoken.streamed_ms)
            if offset == 0:
                started = time.monotonic()
            data = audio[offset : offset + chunk]
            end_ms = spoken.streamed_ms + fmt.duration_ms(len(data))
            # The characters whose sound starts in this chunk.
            last = min(len(text), math.ceil(round(end_ms / MS_PER_CHARACTER, 6)))
            piece = text[len(spoken.transcript) : last]
            if piece:
                self._delta(job, {"type": spec.transcript_delta, **where, "delta": piece})
            self._delta(
                job, {"type": spec.audio_delta, **where, "delta": base64.b64encode(data).decode()}
            )
            spoken.streamed_ms = end_ms
            spoken.transcript += piece
            output.produced = spoken.transcript

    def _audio_wait(self, job: _Job, started: float, sent_ms: float) -> float:
        """Seconds to wait before the next audio delta."""
        wait = job.delta_interval
        pacing = self._options.audio_pacing
        if pacing and sent_ms > 0:
            due = started + sent_ms / 1000 / pacing
            wait = max(wait, due - time.monotonic())
        return wait

    def _call_steps(
        self, job: _Job, index: int, call: FunctionCall, call_id: str | None
    ) -> Iterator[float]:
        """Stream one function call up to its last arguments delta."""
        item: JsonObject = {
            "id": random_id("item_"),
            "object": "realtime.item",
            "type": "function_call",
            "status": "in_progress",
            "name": call.name,
            "call_id": call_id or random_id("call_", 16),
            "arguments": "",
        }
        output = self._start_output(job, index, "function_call", item)
        for piece in _split_text(call.arguments, self._options.delta_chunks):
            yield job.delta_interval
            self._delta(
                job,
                {
                    "type": "response.function_call_arguments.delta",
                    "response_id": job.id,
                    "item_id": item["id"],
                    "output_index": index,
                    "call_id": item["call_id"],
                    "delta": piece,
                },
            )
            output.produced += piece

    def _close(self, job: _Job, output: _Output, status: str) -> None:
        """Send the done events of what ``output`` streamed; its item gets ``status``."""
        host, spec = self._host, self._host.spec
        item = output.item
        if output.kind == "function_call":
            done: JsonObject = {
                "type": "response.function_call_arguments.done",
                "response_id": job.id,
                "item_id": item["id"],
                "output_index": output.index,
                "call_id": item["call_id"],
            }
            if spec.name == "ga":
                done["name"] = item["name"]
            done["arguments"] = item["arguments"] = output.produced
            host.emit(done)
        elif output.part_added:
            where = self._where(job, output)
            if output.spoken is not None:
                host.emit({"type": spec.audio_done, **where})
                host.emit({"type": spec.transcript_done, **where, "transcript": output.produced})
                part = {"type": "audio", "transcript": output.produced}
                # A truncation keeps only what was heard in the conversation.
                content = {"type": spec.audio_content_type, "transcript": output.spoken.heard}
            else:
                host.emit({"type": spec.text_done, **where, "text": output.produced})
                part = {"type": "text", "text": output.produced}
                content = {"type": spec.text_content_type, "text": output.produced}
            host.emit({"type": "response.content_part.done", **where, "part": part})
            item["content"] = [content]
        item["status"] = status
        host.emit(
            {
                "type": "response.output_item.done",
                "response_id": job.id,
                "output_index": output.index,
                "item": item,
            }
        )
        if job.in_conversation and spec.item_done is not None:
            host.emit(
                {"type": spec.item_done, "previous_item_id": output.previous_id, "item": item}
            )
        output.closed = True

    def _finish(self, job: _Job) -> None:
        """Close what was streamed, then send ``response.done`` and ``rate_limits.updated``."""
        host = self._host
        cancelled = job.cancelled
        if job.outputs and not job.outputs[-1].closed:
            self._close(job, job.outputs[-1], "incomplete" if cancelled else "completed")
        response = job.response
        if cancelled:
            response["status"], response["status_details"] = "cancelled", dict(CANCELLED)
        elif job.failure is not None:
            response["status"], response["status_details"] = "failed", job.failure
        else:
            response["status"], response["status_details"] = "completed", None
        response["output"] = [output.item for output in job.outputs]
        response["usage"] = self._usage(job)
        # The response ends before response.done goes out: a client that saw it may
        # create the next one at once.
        self._active = None
        self._last_id = job.id
        host.emit({"type": "response.done", "response": response})
        # Real servers report rate limits after every response.done.
        host.emit({"type": "rate_limits.updated", "rate_limits": [dict(r) for r in RATE_LIMITS]})

    def _usage(self, job: _Job) -> JsonObject:
        """Token estimates of what the response's prompt and its streamed output cost."""
        return response_usage(
            produced=[output.produced for output in job.outputs],
            output_audio_ms=sum(
                output.spoken.streamed_ms for output in job.outputs if output.spoken is not None
            ),
            prompt_text_tokens=job.prompt_text_tokens,
            prompt_audio_tokens=job.prompt_audio_tokens,
            ga=self._host.spec.name == "ga",
        )


def _assistant_message() -> JsonObject:
    return {
        "id": random_id("item_"),
        "object": "realtime.item",
        "type": "message",
        "status": "in_progress",
        "role": "assistant",
        "content": [],
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
