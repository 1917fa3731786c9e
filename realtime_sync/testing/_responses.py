"""Responses of a simulated session: ``response.create`` to ``response.done``.

A :class:`Responder` belongs to one :class:`~._simulator.SessionSimulator`. It accepts
``response.create`` and ``response.cancel`` on the thread that handles client events and
streams each response on its own response thread, started on the first ``response.create``
and ended by :meth:`Responder.stop`. Both threads hold the session's lock while they change
state and send the events that describe the change, so the client sees a consistent order;
the response thread releases it between steps and while it waits ``delta_interval``.

What a response outputs is planned when it is accepted (see :meth:`Responder.create`):
function calls when the last user text asks for them (:mod:`._tools`), else one assistant
message, spoken (:mod:`._voice`) when the response's output modalities include audio, else
text. The response object reports the output modalities it answers with.
"""

from __future__ import annotations

import base64
import logging
import math
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, Literal, Protocol

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
from ._options import SimulatorOptions
from ._tools import FunctionCall, pending_outputs, requested_calls, results_answer
from ._voice import (
    AUDIO_CHUNK_MS,
    MS_PER_CHARACTER,
    AudioFormat,
    SpokenAudio,
    audio_format,
    audio_tokens,
    synthesize,
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
    @property
    def spoken(self) -> dict[str, SpokenAudio]: ...
    def emit(self, event: Mapping[str, Any]) -> None: ...
    def insert(self, item: JsonObject, index: int) -> str | None: ...
    def index_of(self, item_id: object, param: str) -> int: ...
    def response_started(self) -> None: ...


OutputKind = Literal["text", "audio", "function_call"]
_AUDIO_PARTS = frozenset({"input_audio", "audio", "output_audio"})


@attrs.frozen
class _Planned:
    """One output item a response will produce."""

    kind: OutputKind
    text: str = ""  # a message's text or transcript
    call: FunctionCall | None = None


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
    plan: list[_Planned]
    in_conversation: bool
    audio_format: AudioFormat  # of its spoken answers
    prompt_text_tokens: int
    prompt_audio_tokens: int
    started: bool = False  # taken by the response thread
    cancelled: bool = False  # response.cancel was accepted
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
        audio = self._wants_audio(params)
        output_format = self._output_format(params)
        plan = self._plan(source, params, audio)  # may run the reply callable
        text_tokens, audio_ms = self._prompt(source, instructions)
        self._active = _Job(
            response=self._response_object(
                random_id("resp_"),
                params,
                in_conversation,
                audio=audio,
                output_format=output_format,
            ),
            plan=plan,
            in_conversation=in_conversation,
            audio_format=audio_format(output_format),
            prompt_text_tokens=text_tokens,
            prompt_audio_tokens=audio_tokens(audio_ms),
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

    def _wants_audio(self, params: Mapping[str, Any]) -> bool:
        """The response's output modalities (else the session's) include audio."""
        field = self._host.spec.modalities
        modalities = params.get(field, self._host.session.get(field))
        return isinstance(modalities, list) and "audio" in modalities

    def _output_format(self, params: Mapping[str, Any]) -> object:
        """The output audio format field of the response, else of the session."""
        session = self._host.session
        if self._host.spec.name == "ga":
            asked = _nested(params, "audio", "output")
            if "format" in asked:
                return asked["format"]
            return _nested(session, "audio", "output").get("format")
        return params.get("output_audio_format", session.get("output_audio_format"))

    def _plan(
        self, source: Sequence[Mapping[str, Any]], params: Mapping[str, Any], audio: bool
    ) -> list[_Planned]:
        """What the response outputs: function calls, or one (spoken or text) message."""
        session = self._host.session
        outputs = pending_outputs(source)
        user_text = _last_user_text(source, self._host.spoken)
        if outputs:
            # The calls were made: answer with their results, never call again.
            if self._options.default_reply:
                text = results_answer(outputs, source)
            else:
                text = self._options.answer(user_text)
        else:
            calls = requested_calls(
                user_text,
                params.get("tools", session.get("tools")),
                params.get("tool_choice", session.get("tool_choice")),
            )
            if calls:
                return [_Planned("function_call", call=call) for call in calls]
            text = self._options.answer(user_text)
        return [_Planned("audio" if audio else "text", text)]

    def _prompt(
        self, source: Iterable[Mapping[str, Any]], instructions: str | None
    ) -> tuple[int, float]:
        """The usage estimate of a prompt: text tokens and milliseconds of audio."""
        if instructions is None:
            session_instructions = self._host.session.get("instructions")
            instructions = session_instructions if isinstance(session_instructions, str) else ""
        texts, audio_ms = [], 0.0
        for item in source:
            text, duration = _item_prompt(item, self._host.spoken)
            texts.append(text)
            audio_ms += duration
        return _estimate_tokens(" ".join(texts) + instructions), audio_ms

    def _response_object(
        self,
        response_id: str,
        params: Mapping[str, Any],
        in_conversation: bool,
        *,
        audio: bool,
        output_format: object,
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
            voice = _nested(params, "audio", "output").get(
                "voice", _nested(session, "audio", "output").get("voice")
            )
            specific: JsonObject = {
                # What this response produces (audio always comes with its transcript).
                "output_modalities": ["audio"] if audio else ["text"],
                "max_output_tokens": params.get(
                    "max_output_tokens", session.get("max_output_tokens", "inf")
                ),
                "audio": {"output": {"format": output_format, "voice": voice}},
            }
        else:
            specific = {
                "modalities": ["text", "audio"] if audio else ["text"],
                "voice": params.get("voice", session.get("voice")),
                "output_audio_format": output_format,
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
            self._host.response_started()  # transcriptions held for a response go now
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
                self._finish(job)

    def _steps(self, job: _Job) -> Iterator[float]:
        """Stream every planned output, each up to its done events.

        Each step sends its events and then yields how long to wait before the next one.
        :meth:`_finish` closes an output a cancel interrupted.
        """
        for index, planned in enumerate(job.plan):
            if planned.call is not None:
                yield from self._call_steps(job, index, planned.call)
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
            yield self._options.delta_interval
            delta: JsonObject = {"type": spec.text_delta, **where, "delta": piece}
            if spec.name == "ga":
                # GA servers pad deltas with random characters against length side channels.
                delta["obfuscation"] = random_id("", rng.randint(2, 12))
            self._host.emit(delta)
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
            yield self._audio_wait(started, spoken.streamed_ms)
            if offset == 0:
                started = time.monotonic()
            data = audio[offset : offset + chunk]
            end_ms = spoken.streamed_ms + fmt.duration_ms(len(data))
            # The characters whose sound starts in this chunk.
            last = min(len(text), math.ceil(round(end_ms / MS_PER_CHARACTER, 6)))
            piece = text[len(spoken.transcript) : last]
            if piece:
                host.emit({"type": spec.transcript_delta, **where, "delta": piece})
            host.emit({"type": spec.audio_delta, **where, "delta": base64.b64encode(data).decode()})
            spoken.streamed_ms = end_ms
            spoken.transcript += piece
            output.produced = spoken.transcript

    def _audio_wait(self, started: float, sent_ms: float) -> float:
        """Seconds to wait before the next audio delta."""
        wait = self._options.delta_interval
        pacing = self._options.audio_pacing
        if pacing and sent_ms > 0:
            due = started + sent_ms / 1000 / pacing
            wait = max(wait, due - time.monotonic())
        return wait

    def _call_steps(self, job: _Job, index: int, call: FunctionCall) -> Iterator[float]:
        """Stream one function call up to its last arguments delta."""
        item: JsonObject = {
            "id": random_id("item_"),
            "object": "realtime.item",
            "type": "function_call",
            "status": "in_progress",
            "name": call.name,
            "call_id": random_id("call_", 16),
            "arguments": "",
        }
        output = self._start_output(job, index, "function_call", item)
        for piece in _split_text(call.arguments, self._options.delta_chunks):
            yield self._options.delta_interval
            self._host.emit(
                {
                    "type": "response.function_call_arguments.delta",
                    "response_id": job.id,
                    "item_id": item["id"],
                    "output_index": index,
                    "call_id": item["call_id"],
                    "delta": piece,
                }
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
        response["status"] = "cancelled" if cancelled else "completed"
        response["status_details"] = dict(CANCELLED) if cancelled else None
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
        """Token estimates: 4 characters a text token, 50 ms an audio token."""
        text_out = sum(_estimate_tokens(output.produced) for output in job.outputs)
        audio_out = audio_tokens(
            sum(output.spoken.streamed_ms for output in job.outputs if output.spoken is not None)
        )
        text_in, audio_in = job.prompt_text_tokens, job.prompt_audio_tokens
        cached: JsonObject = {"text_tokens": 0, "audio_tokens": 0}
        input_details: JsonObject = {
            "text_tokens": text_in,
            "audio_tokens": audio_in,
            "cached_tokens": 0,
            "cached_tokens_details": cached,
        }
        if self._host.spec.name == "ga":
            input_details["image_tokens"] = cached["image_tokens"] = 0
        input_tokens, output_tokens = text_in + audio_in, text_out + audio_out
        return {
            "total_tokens": input_tokens + output_tokens,
            "input_tokens": input_tokens,
            "output_tokens": output_tokens,
            "input_token_details": input_details,
            "output_token_details": {"text_tokens": text_out, "audio_tokens": audio_out},
        }


def _assistant_message() -> JsonObject:
    return {
        "id": random_id("item_"),
        "object": "realtime.item",
        "type": "message",
        "status": "in_progress",
        "role": "assistant",
        "content": [],
    }


def _nested(container: Mapping[str, Any], *path: str) -> Mapping[str, Any]:
    """``container[path[0]][path[1]]...``, or ``{}`` where a step is not an object."""
    value: object = container
    for name in path:
        value = value.get(name) if isinstance(value, Mapping) else None
    return value if isinstance(value, Mapping) else {}


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


def _item_prompt(item: Mapping[str, Any], spoken: Mapping[str, SpokenAudio]) -> tuple[str, float]:
    """What an item weighs in a prompt: its text, and milliseconds of audio.

    Audio the server knows (committed or spoken in this session) counts as audio, its
    transcript not as text; function calls count their arguments and outputs as text.
    """
    item_id = item.get("id")
    audio = spoken.get(item_id) if isinstance(item_id, str) else None
    content = item.get("content")
    if audio is not None and isinstance(content, list):
        texts = [
            part.get("text")
            for part in content
            if isinstance(part, dict) and part.get("type") not in _AUDIO_PARTS
        ]
        text = " ".join(value for value in texts if isinstance(value, str) and value)
        return text, audio.duration_ms
    text = _item_text(item)
    for name in ("arguments", "output"):
        value = item.get(name)
        if isinstance(value, str) and value:
            text = f"{text} {value}" if text else value
    return text, 0.0


def _last_user_text(items: Iterable[Mapping[str, Any]], spoken: Mapping[str, SpokenAudio]) -> str:
    """The text of the last user message that has some (for audio: what was heard)."""
    for item in reversed(list(items)):
        if item.get("type") == "message" and item.get("role") == "user":
            text = _item_text(item)
            item_id = item.get("id")
            if not text and isinstance(item_id, str) and item_id in spoken:
                text = spoken[item_id].heard
            if text:
                return text
    return ""
