"""What a simulated response will output, decided when ``response.create`` is accepted.

:func:`plan_response` checks the parameters of a ``response.create`` that the responder
has admitted (known fields, no response active), takes its input (the conversation, or
the response's own ``input`` with item references resolved) and plans its output items:
what the test's script answers (:mod:`._script`), else function calls when the last user
text asks for them (:mod:`._tools`), else one assistant message, spoken when the response's
output modalities include audio, else text, whose text comes from the reply options (or,
once calls were made, their results). It also builds the
response object that ``response.created`` carries, which reports the output modalities it
answers with and its audio format and voice, and estimates the prompt's tokens
(:mod:`._usage`). Nothing is sent here: :class:`~._responses.Responder` streams the plan.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal, Protocol

import attrs

from ._answers import Answer, Failure, Refusal, Speech, Text, ToolCall
from ._catalogue import ClientError, DialectSpec, JsonObject, random_id
from ._options import SimulatorOptions
from ._tools import FunctionCall, pending_outputs, requested_calls, results_answer
from ._usage import item_text, prompt_estimate
from ._voice import AudioFormat, SpokenAudio, audio_format, audio_tokens

__all__ = ["OutputKind", "Planned", "ResponsePlan", "SessionState", "plan_response"]

OutputKind = Literal["text", "audio", "function_call"]


class SessionState(Protocol):
    """What planning reads of its session (the simulator provides it)."""

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
    def index_of(self, item_id: object, param: str) -> int: ...


@attrs.frozen
class Planned:
    """One output item a response will produce."""

    kind: OutputKind
    text: str = ""  # a message's text or transcript
    call: FunctionCall | None = None
    call_id: str | None = None  # a scripted call's own call_id


@attrs.frozen
class ResponsePlan:
    """An accepted response: its response object, its output items and its prompt."""

    response: JsonObject  # the response object of response.created
    outputs: list[Planned]
    in_conversation: bool
    audio_format: AudioFormat  # of its spoken answers
    prompt_text_tokens: int
    prompt_audio_tokens: int
    delay: float = 0.0  # seconds before response.created
    delta_interval: float | None = None  # None: the options' delta_interval
    failure: JsonObject | None = None  # the status_details of a response that fails


def plan_response(
    host: SessionState, options: SimulatorOptions, params: Mapping[str, Any]
) -> ResponsePlan:
    """Check the rest of ``response.create``'s ``response`` parameters and plan its output.

    Raises :class:`~._catalogue.ClientError` for an invalid parameter or a scripted
    refusal. May run the reply callable of ``options`` and the predicates of its script.
    """
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
    source = _response_input(host, params["input"]) if "input" in params else list(host.items)
    audio = _wants_audio(host, params)
    output_format = _output_format(host, params)
    # Last: once the script was asked, the turn counts as answered.
    outputs, scripted = _plan(host, options, source, params, audio)
    messages = [planned.kind for planned in outputs if planned.kind != "function_call"]
    if messages:  # a scripted Text or Speech decides what the response reports
        audio = "audio" in messages
    text_tokens, audio_ms = prompt_estimate(source, instructions, host.session, host.spoken)
    ending = None if scripted is None else scripted.ending
    failure = ending.status_details() if isinstance(ending, Failure) else None
    return ResponsePlan(
        response=_response_object(
            host,
            random_id("resp_"),
            params,
            in_conversation,
            audio=audio,
            output_format=output_format,
        ),
        outputs=outputs,
        in_conversation=in_conversation,
        audio_format=audio_format(output_format),
        prompt_text_tokens=text_tokens,
        prompt_audio_tokens=audio_tokens(audio_ms),
        delay=scripted.delay if scripted else 0.0,
        delta_interval=scripted.delta_interval if scripted else None,
        failure=failure,
    )


def _response_input(host: SessionState, value: object) -> list[JsonObject]:
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
            index = host.index_of(entry.get("id"), "response.input")
            items.append(host.items[index])
        else:
            items.append(entry)
    return items


def _wants_audio(host: SessionState, params: Mapping[str, Any]) -> bool:
    """The response's output modalities (else the session's) include audio."""
    field = host.spec.modalities
    modalities = params.get(field, host.session.get(field))
    return isinstance(modalities, list) and "audio" in modalities


def _output_format(host: SessionState, params: Mapping[str, Any]) -> object:
    """The output audio format field of the response, else of the session."""
    session = host.session
    if host.spec.name == "ga":
        asked = _nested(params, "audio", "output")
        if "format" in asked:
            return asked["format"]
        return _nested(session, "audio", "output").get("format")
    return params.get("output_audio_format", session.get("output_audio_format"))


def _plan(
    host: SessionState,
    options: SimulatorOptions,
    source: Sequence[Mapping[str, Any]],
    params: Mapping[str, Any],
    audio: bool,
) -> tuple[list[Planned], Answer | None]:
    """What the response outputs: the script's answer, else function calls, else one
    (spoken or text) message; and the scripted answer, if any."""
    session = host.session
    outputs = pending_outputs(source)
    user_text = _last_user_text(source, host.spoken)
    script = options.script
    scripted = None if script is None else script._answer_turn(user_text, outputs, params)
    if scripted is not None:
        return _scripted(scripted, audio), scripted
    if outputs:
        # The calls were made: answer with their results, never call again.
        if options.default_reply:
            text = results_answer(outputs, source)
        else:
            text = options.answer(user_text)
    else:
        calls = requested_calls(
            user_text,
            params.get("tools", session.get("tools")),
            params.get("tool_choice", session.get("tool_choice")),
        )
        if calls:
            return [Planned("function_call", call=call) for call in calls], None
        text = options.answer(user_text)
    return [Planned("audio" if audio else "text", text)], None


def _scripted(answer: Answer, audio: bool) -> list[Planned]:
    """The output items of a scripted answer; a refusal raises its error instead."""
    if isinstance(answer.ending, Refusal):
        refusal = answer.ending
        raise ClientError(refusal.code, refusal.message, param=refusal.param, kind=refusal.type)
    planned = []
    for output in answer.outputs:
        if isinstance(output, ToolCall):
            call = FunctionCall(output.name, output.arguments)
            planned.append(Planned("function_call", call=call, call_id=output.call_id))
        elif isinstance(output, Speech):
            planned.append(Planned("audio", output.transcript))
        elif isinstance(output, Text):
            planned.append(Planned("text", output.text))
        else:  # a string follows the output modalities, as reply= does
            planned.append(Planned("audio" if audio else "text", output))
    return planned


def _response_object(
    host: SessionState,
    response_id: str,
    params: Mapping[str, Any],
    in_conversation: bool,
    *,
    audio: bool,
    output_format: object,
) -> JsonObject:
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


def _nested(container: Mapping[str, Any], *path: str) -> Mapping[str, Any]:
    """``container[path[0]][path[1]]...``, or ``{}`` where a step is not an object."""
    value: object = container
    for name in path:
        value = value.get(name) if isinstance(value, Mapping) else None
    return value if isinstance(value, Mapping) else {}


def _last_user_text(items: Iterable[Mapping[str, Any]], spoken: Mapping[str, SpokenAudio]) -> str:
    """The text of the last user message that has some (for audio: what was heard)."""
    for item in reversed(list(items)):
        if item.get("type") == "message" and item.get("role") == "user":
            text = item_text(item)
            item_id = item.get("id")
            if not text and isinstance(item_id, str) and item_id in spoken:
                text = spoken[item_id].heard
            if text:
                return text
    return ""
