"""Decoding server events: ``decode_event``, ``decode_payload`` and the ``Model`` machinery.

The data-driven tests use the protocol material in ``tests/conformance`` (examples from the
official OpenAPI specs and real captures; sources and licences in its README).
"""

from __future__ import annotations

import functools
import json
import typing
from typing import Any

import attrs
import pytest
from conftest import CONFORMANCE
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import realtime_sync._objects
import realtime_sync.events
from realtime_sync import (
    BETA_SERVER_EVENTS,
    GA_SERVER_EVENTS,
    ContentPart,
    ContentPartEvent,
    ConversationItem,
    ConversationItemEvent,
    ErrorDetail,
    ErrorEvent,
    GenericEvent,
    InvalidFrameEvent,
    Model,
    OutputItemEvent,
    RateLimit,
    RateLimitsUpdatedEvent,
    Response,
    ResponseEvent,
    ServerEvent,
    Session,
    SessionEvent,
    TextDeltaEvent,
    TextDoneEvent,
    decode_event,
)
from realtime_sync._models import ReadOnlyList, wire_fields
from realtime_sync._server_events import _EVENT_CLASSES, decode_payload
from realtime_sync.events import (
    AudioDeltaEvent,
    AudioDoneEvent,
    AudioOutput,
    CustomVoice,
    InputAudioTranscriptionCompletedEvent,
    McpCallEvent,
    McpListToolsEvent,
    McpToolFilter,
    OutputAudioBufferEvent,
    TokenDetails,
    Tool,
    ToolChoice,
    TracingConfig,
    TranscriptDeltaEvent,
    TranscriptDoneEvent,
    Truncation,
    TurnDetection,
)

# Spec examples that are themselves defective (listed in the file's `_source.notes`): the key
# names the event type, but the example's `type` is something else. Decoded as sent.
SPEC_DEFECTS = {
    # RealtimeServerEventInputAudioBufferDtmfEventReceived: leading space in the type.
    ("ga", "input_audio_buffer.dtmf_event_received"): " input_audio_buffer.dtmf_event_received",
    # RealtimeServerEventConversationItemRetrieved (beta): example of a different event.
    ("beta", "conversation.item.retrieved"): "conversation.item.created",
}


# A missing or empty fixture is an error at collection, never a skip.
def _read_json(name: str) -> Any:
    return json.loads((CONFORMANCE / name).read_text(encoding="utf-8"))


def _read_jsonl(name: str) -> list[str]:
    path = CONFORMANCE / name
    lines = [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    assert lines, f"{path} holds no events"
    return lines


EXAMPLES = _read_json("openapi_realtime_examples.json")


def _example_params() -> list[Any]:
    params = []
    for dialect, examples in (("ga", EXAMPLES["server"]), ("beta", EXAMPLES["beta"]["server"])):
        for name, payload in examples.items():
            params.append(pytest.param(dialect, name, payload, id=f"{dialect}:{name}"))
    return params


def expected_class(event_type: str) -> type[ServerEvent]:
    return _EVENT_CLASSES.get(event_type, GenericEvent)


def assert_faithful(event: Any, payload: dict[str, Any]) -> None:
    """The decoded event gives back exactly what was received."""
    assert event.type == payload["type"]
    assert event.raw == payload
    assert event.to_dict() == payload
    assert event.event_id == payload.get("event_id")


# --- the spec's examples --------------------------------------------------------------------


@pytest.mark.parametrize(("dialect", "name", "payload"), _example_params())
def test_spec_server_example_decodes(dialect: str, name: str, payload: dict[str, Any]) -> None:
    defect = SPEC_DEFECTS.get((dialect, name))
    if defect is None:
        assert payload["type"] == name
    else:
        assert payload["type"] == defect, "the spec defect recorded here has changed"
    event = decode_payload(payload)
    cls = expected_class(payload["type"])
    assert type(event) is cls
    if cls is GenericEvent:
        assert event.decode_error is None
    assert_faithful(event, payload)
    # The same through the wire path, from bytes and from text.
    text = json.dumps(payload)
    assert decode_event(text) == event
    assert decode_event(text.encode()) == event


def test_spec_defects_are_the_ones_the_file_documents() -> None:
    examples = EXAMPLES
    notes = examples["_source"]["notes"]
    dtmf = notes["ga"]["RealtimeServerEventInputAudioBufferDtmfEventReceived"]
    assert "' input_audio_buffer.dtmf_event_received'" in dtmf
    retrieved = notes["beta"]["RealtimeServerEventConversationItemRetrieved"]
    assert "'conversation.item.created'" in retrieved
    # Every other example's type matches its key.
    for dialect, group in (("ga", examples["server"]), ("beta", examples["beta"]["server"])):
        wrong = {name for name, ex in group.items() if ex["type"] != name}
        assert wrong == {name for d, name in SPEC_DEFECTS if d == dialect}


def test_spec_defect_examples_decode_as_sent() -> None:
    examples = EXAMPLES
    dtmf = decode_payload(examples["server"]["input_audio_buffer.dtmf_event_received"])
    assert type(dtmf) is GenericEvent
    assert dtmf.type == " input_audio_buffer.dtmf_event_received"
    assert dtmf.event == "9"
    retrieved = decode_payload(examples["beta"]["server"]["conversation.item.retrieved"])
    assert type(retrieved) is ConversationItemEvent
    assert retrieved.type == "conversation.item.created"
    assert retrieved.item.role == "user"


def test_spec_examples_cover_both_catalogues() -> None:
    examples = EXAMPLES
    assert set(examples["server"]) >= GA_SERVER_EVENTS
    assert set(examples["beta"]["server"]) == BETA_SERVER_EVENTS


def test_typed_spec_examples_expose_nested_models() -> None:
    examples = EXAMPLES
    ga = examples["server"]
    created = decode_payload(ga["session.created"])
    assert isinstance(created.session, Session)
    assert created.session.id == ga["session.created"]["session"]["id"]
    done = decode_payload(ga["response.done"])
    assert isinstance(done.response, Response)
    assert done.response.output  # else the all() below would pass on nothing
    assert all(isinstance(item, ConversationItem) for item in done.response.output)
    assert isinstance(done.response.output, tuple)
    item = decode_payload(ga["response.output_item.done"])
    assert isinstance(item, OutputItemEvent)
    assert item.item.content
    assert all(isinstance(part, ContentPart) for part in item.item.content)
    part = decode_payload(ga["response.content_part.added"])
    assert isinstance(part, ContentPartEvent)
    assert isinstance(part.part, ContentPart)
    error = decode_payload(ga["error"])
    assert isinstance(error.error, ErrorDetail)
    limits = decode_payload(ga["rate_limits.updated"])
    assert limits.rate_limits
    assert all(isinstance(limit, RateLimit) for limit in limits.rate_limits)
    assert [limit.name for limit in limits.rate_limits] == [
        limit["name"] for limit in ga["rate_limits.updated"]["rate_limits"]
    ]


@pytest.mark.parametrize(
    ("names", "cls"),
    [
        (("session.created", "session.updated"), SessionEvent),
        (("error",), ErrorEvent),
        (("rate_limits.updated",), RateLimitsUpdatedEvent),
        (("response.created", "response.done"), ResponseEvent),
        (("response.output_item.added", "response.output_item.done"), OutputItemEvent),
        (
            ("conversation.item.added", "conversation.item.done", "conversation.item.created"),
            ConversationItemEvent,
        ),
        (("response.content_part.added", "response.content_part.done"), ContentPartEvent),
        (("response.output_text.delta", "response.text.delta"), TextDeltaEvent),
        (("response.output_text.done", "response.text.done"), TextDoneEvent),
        (("response.output_audio.delta", "response.audio.delta"), AudioDeltaEvent),
        (("response.output_audio.done", "response.audio.done"), AudioDoneEvent),
        (
            ("response.output_audio_transcript.delta", "response.audio_transcript.delta"),
            TranscriptDeltaEvent,
        ),
        (
            ("response.output_audio_transcript.done", "response.audio_transcript.done"),
            TranscriptDoneEvent,
        ),
        (
            ("mcp_list_tools.in_progress", "mcp_list_tools.completed", "mcp_list_tools.failed"),
            McpListToolsEvent,
        ),
        (
            (
                "response.mcp_call.in_progress",
                "response.mcp_call.completed",
                "response.mcp_call.failed",
            ),
            McpCallEvent,
        ),
        (
            (
                "output_audio_buffer.started",
                "output_audio_buffer.stopped",
                "output_audio_buffer.cleared",
            ),
            OutputAudioBufferEvent,
        ),
    ],
)
def test_ga_names_and_beta_twins_share_a_class(names: tuple[str, ...], cls: type) -> None:
    for name in names:
        assert _EVENT_CLASSES[name] is cls
        assert name in GA_SERVER_EVENTS | BETA_SERVER_EVENTS


# --- real traces ----------------------------------------------------------------------------


BETA_TRACE = _read_jsonl("beta_text_response.jsonl")
AZURE_SESSIONS = _read_jsonl("azure_beta_session_created_updated.jsonl")
ERROR_EVENTS = _read_jsonl("error_events.jsonl")


def test_beta_trace_decodes_and_deltas_add_up() -> None:
    lines = BETA_TRACE
    events = []
    for line in lines:
        payload = json.loads(line)
        event = decode_event(line)
        assert type(event) is expected_class(payload["type"]), payload["type"]
        assert type(decode_event(line.encode())) is type(event)
        assert_faithful(event, payload)
        assert payload["type"] in BETA_SERVER_EVENTS
        events.append(event)
    deltas = [e for e in events if e.type == "response.text.delta"]
    (done,) = [e for e in events if e.type == "response.text.done"]
    assert len(deltas) == 77
    assert all(isinstance(e, TextDeltaEvent) for e in deltas)
    assert isinstance(done, TextDoneEvent)
    assert "".join(e.delta for e in deltas) == done.text
    assert {(e.item_id, e.content_index) for e in deltas} == {(done.item_id, done.content_index)}


def test_beta_trace_keeps_undeclared_and_elided_fields() -> None:
    lines = BETA_TRACE
    by_type = {}
    for line in lines:
        event = decode_event(line)
        by_type.setdefault(event.type, event)
    created = by_type["response.created"]
    assert isinstance(created, ResponseEvent)
    # Beta-only response fields are declared (None on GA servers).
    assert created.response.modalities == ["text"]
    assert created.response.voice == "alloy"
    assert created.response.metadata["request_id"]
    done = by_type["response.done"]
    (elided,) = done.response.output
    assert isinstance(elided, ConversationItem)
    assert elided.id is None
    assert "__elided__" in elided.raw
    assert done.response.usage.total_tokens == 151
    details = done.response.usage.output_token_details
    assert isinstance(details, TokenDetails)
    assert details.text_tokens is None
    assert "__elided__" in details.raw
    item_done = by_type["response.output_item.done"]
    (part,) = item_done.item.content
    assert isinstance(part, ContentPart)
    assert "__elided__" in part.raw


def test_azure_sessions_decode_with_azure_only_fields() -> None:
    lines = AZURE_SESSIONS
    assert len(lines) == 2
    for line, expected_type in zip(lines, ("session.created", "session.updated"), strict=True):
        payload = json.loads(line)
        event = decode_event(line)
        assert isinstance(event, SessionEvent)
        assert event.type == expected_type
        assert_faithful(event, payload)
        session = event.session
        assert isinstance(session, Session)
        assert session.id == "SessionIdRedacted"
        assert session.object == "realtime.session"
        assert session.model == "gpt-4o-mini-realtime-preview-2024-12-17"
        assert session.expires_at == 1745702930
        assert session.modalities == ["audio", "text"]
        assert session.voice == "verse"
        assert session.input_audio_format == "pcm16"
        assert session.max_response_output_tokens == "inf"
        assert isinstance(session.turn_detection, TurnDetection)
        assert session.turn_detection.type == "server_vad"
        assert session.turn_detection.interrupt_response is True
        assert session.output_modalities is None  # GA-only field, not sent
        assert session.audio is None
        # Sent as null by Azure: declared (beta session fields), decoded as None.
        for name in ("input_audio_noise_reduction", "client_secret", "include"):
            assert name in wire_fields(Session)
            assert name in session.raw
            assert getattr(session, name) is None
        assert session.raw == payload["session"]


def _error_event_params() -> list[Any]:
    return [
        pytest.param(json.loads(line)["event"], id=str(n)) for n, line in enumerate(ERROR_EVENTS)
    ]


@pytest.mark.parametrize("payload", _error_event_params())
def test_real_error_and_rate_limit_events(payload: dict[str, Any]) -> None:
    event = decode_event(json.dumps(payload))
    assert_faithful(event, payload)
    if payload["type"] == "error":
        assert isinstance(event, ErrorEvent)
        assert isinstance(event.error, ErrorDetail)
        assert event.error.code == payload["error"]["code"]
        assert event.error.message == payload["error"]["message"]
        assert event.error.type == "invalid_request_error"
        assert event.error.event_id is None
    else:
        assert payload["type"] == "rate_limits.updated"
        assert isinstance(event, RateLimitsUpdatedEvent)
        assert event.rate_limits == ()


def test_real_error_events_include_a_null_code() -> None:
    lines = ERROR_EVENTS
    codes = [
        decode_event(json.dumps(json.loads(line)["event"])).error.code
        for line in lines
        if json.loads(line)["event"]["type"] == "error"
    ]
    assert None in codes
    assert "conversation_already_has_active_response" in codes


# --- unknown fields, attribute access -------------------------------------------------------

DELTA = {
    "type": "response.output_text.delta",
    "event_id": "event_1",
    "response_id": "resp_1",
    "item_id": "item_1",
    "output_index": 0,
    "content_index": 0,
    "delta": "Hel",
    "obfuscation": "aBcD",
}


def test_unknown_fields_are_kept_and_reachable() -> None:
    event = decode_event(json.dumps(DELTA))
    assert isinstance(event, TextDeltaEvent)
    assert event.delta == "Hel"
    assert event.obfuscation == "aBcD"
    assert event.raw == DELTA
    assert event.to_dict() == DELTA


def test_missing_field_raises_helpful_attribute_error() -> None:
    event = decode_payload(DELTA)
    with pytest.raises(AttributeError) as info:
        _ = event.not_a_field
    message = str(info.value)
    assert "TextDeltaEvent" in message
    assert "not_a_field" in message
    assert not hasattr(event, "not_a_field")
    assert not hasattr(event, "__not_a_dunder__")


def test_declared_field_not_sent_is_none() -> None:
    event = decode_payload({"type": "response.output_text.delta", "delta": "x"})
    assert event.response_id is None
    assert event.event_id is None


def test_nested_unknown_fields_are_reachable() -> None:
    event = decode_payload(
        {"type": "session.updated", "session": {"id": "sess_1", "azure_only": {"a": 1}}}
    )
    assert event.session.azure_only == {"a": 1}
    with pytest.raises(AttributeError, match="Session"):
        _ = event.session.nothing_here


def test_to_dict_is_a_deep_copy() -> None:
    payload = {"type": "session.created", "session": {"id": "sess_1", "tools": [{"n": 1}]}}
    event = decode_payload(payload)
    copy = event.to_dict()
    copy["session"]["tools"].append({"n": 2})
    copy["extra"] = True
    assert event.to_dict() == payload
    assert event.raw == payload


def test_generic_event_attributes() -> None:
    # A type no dialect defines (every catalogued type has a class).
    payload = {"type": "mcp_list_tools.cancelled", "event_id": "e", "item_id": "mcp_1"}
    event = decode_payload(payload)
    assert type(event) is GenericEvent
    assert event.decode_error is None
    assert event.item_id == "mcp_1"
    assert_faithful(event, payload)


# --- malformed frames -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("frame", "reason"),
    [
        ("not json", "not valid JSON"),
        (b'{"type": "error"', "not valid JSON"),
        (b"\xff\xfe\x00garbage", "not valid JSON"),
        (b'{"type": "error", "x": "\xc3\x28"}', "not valid JSON"),
        ("", "not valid JSON"),
        ("[1, 2, 3]", "string 'type'"),
        ('[{"type": "error"}]', "string 'type'"),
        ('"session.created"', "string 'type'"),
        ("null", "string 'type'"),
        ("42", "string 'type'"),
        ("{}", "string 'type'"),
        ('{"event_id": "e"}', "string 'type'"),
        ('{"type": 5}', "string 'type'"),
        ('{"type": null}', "string 'type'"),
        ('{"type": ["error"]}', "string 'type'"),
    ],
)
def test_malformed_frames_give_invalid_frame_event(frame: str | bytes, reason: str) -> None:
    event = decode_event(frame)
    assert isinstance(event, InvalidFrameEvent)
    assert event.type == "client.invalid_frame"
    assert event.data == frame
    assert reason in event.reason


@pytest.mark.parametrize(
    ("payload", "cls_name"),
    [
        ({"type": "session.created", "session": "oops"}, "SessionEvent"),
        ({"type": "session.updated", "session": [1]}, "SessionEvent"),
        ({"type": "rate_limits.updated", "rate_limits": {}}, "RateLimitsUpdatedEvent"),
        ({"type": "rate_limits.updated", "rate_limits": [1]}, "RateLimitsUpdatedEvent"),
        ({"type": "error", "error": "boom"}, "ErrorEvent"),
        ({"type": "response.done", "response": {"output": {"a": 1}}}, "ResponseEvent"),
        ({"type": "response.done", "response": {"output": ["x"]}}, "ResponseEvent"),
        (
            {"type": "conversation.item.added", "item": {"content": [True]}},
            "ConversationItemEvent",
        ),
        ({"type": "response.content_part.done", "part": 3}, "ContentPartEvent"),
        ({"type": "response.output_item.added", "item": "i"}, "OutputItemEvent"),
        ({"type": "conversation.created", "conversation": "c"}, "ConversationCreatedEvent"),
        (
            {"type": "session.updated", "session": {"audio": {"output": {"format": "pcm"}}}},
            "SessionEvent",
        ),
        (
            {"type": "response.done", "response": {"usage": {"input_token_details": 7}}},
            "ResponseEvent",
        ),
        (
            {
                "type": "conversation.item.input_audio_transcription.completed",
                "logprobs": {"token": "a"},
            },
            "InputAudioTranscriptionCompletedEvent",
        ),
        (
            {"type": "transcription_session.updated", "session": {"turn_detection": "vad"}},
            "TranscriptionSessionUpdatedEvent",
        ),
    ],
)
def test_known_type_with_wrong_shape_gives_generic_event(
    payload: dict[str, Any], cls_name: str
) -> None:
    event = decode_event(json.dumps(payload))
    assert type(event) is GenericEvent
    assert event.decode_error is not None
    assert cls_name in event.decode_error
    assert_faithful(event, payload)


@pytest.mark.parametrize(
    "event_type",
    ["x.custom", "session.closed", "response.audio.started", "Response.Done", "response.text"],
)
def test_type_without_class_gives_generic_event(event_type: str) -> None:
    payload = {"type": event_type, "event_id": "e", "anything": [1, {"b": None}]}
    event = decode_event(json.dumps(payload))
    assert type(event) is GenericEvent
    assert event.decode_error is None
    assert event.anything == [1, {"b": None}]
    assert_faithful(event, payload)


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"type": "session.created", "session": None}, "session"),
        ({"type": "error", "error": None}, "error"),
        ({"type": "response.done", "response": None}, "response"),
        ({"type": "rate_limits.updated", "rate_limits": None}, "rate_limits"),
        ({"type": "response.output_item.done", "item": None}, "item"),
        ({"type": "response.content_part.added", "part": None}, "part"),
        ({"type": "conversation.created", "conversation": None}, "conversation"),
        ({"type": "transcription_session.updated", "session": None}, "session"),
        ({"type": "conversation.item.input_audio_transcription.completed", "usage": None}, "usage"),
        ({"type": "conversation.item.input_audio_transcription.failed", "error": None}, "error"),
    ],
)
def test_null_nested_object_decodes_typed(payload: dict[str, Any], field: str) -> None:
    event = decode_event(json.dumps(payload))
    assert type(event) is _EVENT_CLASSES[payload["type"]]
    assert getattr(event, field) is None
    assert_faithful(event, payload)


def test_null_items_in_lists_are_kept() -> None:
    payload = {"type": "response.done", "response": {"output": [None, {"id": "item_1"}]}}
    event = decode_payload(payload)
    assert isinstance(event, ResponseEvent)
    assert event.response.output[0] is None
    assert event.response.output[1].id == "item_1"


def test_null_nested_objects_in_a_session_are_none() -> None:
    payload = {
        "type": "session.created",
        "session": {
            "audio": {
                "input": {"format": None, "turn_detection": None, "transcription": None},
                "output": None,
            },
            "tracing": None,
            "prompt": None,
        },
    }
    session = decode_payload(payload).session
    assert session.audio.input.turn_detection is None
    assert session.audio.input.format is None
    assert session.audio.output is None
    assert session.tracing is None
    assert session.prompt is None
    assert decode_payload(payload).to_dict() == payload


# --- "a string or an object" fields ---------------------------------------------------------


@pytest.mark.parametrize("value", ["auto", None, 3, ["function"], True])
def test_string_or_object_field_keeps_non_objects_as_sent(value: Any) -> None:
    event = decode_payload({"type": "session.updated", "session": {"tool_choice": value}})
    assert type(event) is SessionEvent
    assert event.session.tool_choice == value
    # An array stays an array, as a read-only view (a decoded event cannot be changed).
    expected = ReadOnlyList if isinstance(value, list) else type(value)
    assert type(event.session.tool_choice) is expected


def test_string_or_object_field_decodes_objects_to_the_model() -> None:
    session = {
        "tool_choice": {"type": "function", "name": "get_weather", "extra": 1},
        "tracing": {"workflow_name": "calls", "metadata": {"a": "b"}},
        "truncation": {"type": "retention_ratio", "retention_ratio": 0.5},
        "audio": {"output": {"voice": {"id": "voice_123"}}},
        "tools": [
            {"type": "mcp", "server_label": "docs", "allowed_tools": {"tool_names": ["q"]}},
            {"type": "mcp", "server_label": "wiki", "allowed_tools": ["search"]},
        ],
    }
    event = decode_payload({"type": "session.updated", "session": session})
    assert type(event) is SessionEvent
    choice = event.session.tool_choice
    assert isinstance(choice, ToolChoice)
    assert (choice.type, choice.name, choice.extra) == ("function", "get_weather", 1)
    assert isinstance(event.session.tracing, TracingConfig)
    assert event.session.tracing.workflow_name == "calls"
    assert isinstance(event.session.truncation, Truncation)
    assert event.session.truncation.retention_ratio == 0.5
    output = event.session.audio.output
    assert isinstance(output, AudioOutput)
    assert isinstance(output.voice, CustomVoice)
    assert output.voice.id == "voice_123"
    first, second = event.session.tools
    assert isinstance(first, Tool)
    assert isinstance(first.allowed_tools, McpToolFilter)
    assert first.allowed_tools.tool_names == ["q"]
    assert second.allowed_tools == ["search"]
    assert event.to_dict() == {"type": "session.updated", "session": session}


def test_string_or_object_field_builds_from_a_model_or_a_string() -> None:
    choice = ToolChoice.build(type="function", name="f")
    built = Session.build(tool_choice=choice, tracing="auto")
    assert built.tool_choice == choice
    assert built.tracing == "auto"
    assert built.to_dict() == {"tool_choice": {"type": "function", "name": "f"}, "tracing": "auto"}


def test_transcription_usage_holds_either_shape() -> None:
    tokens = {"type": "tokens", "total_tokens": 5, "input_token_details": {"audio_tokens": 3}}
    duration = {"type": "duration", "seconds": 2.5}
    for usage in (tokens, duration):
        event = decode_payload(
            {
                "type": "conversation.item.input_audio_transcription.completed",
                "transcript": "hi",
                "usage": usage,
            }
        )
        assert isinstance(event, InputAudioTranscriptionCompletedEvent)
        assert event.usage.type == usage["type"]
        assert event.usage.to_dict() == usage
    assert event.usage.seconds == 2.5
    assert event.usage.total_tokens is None


# --- Model: build, frozen, equality ---------------------------------------------------------


def test_build_with_nested_dicts_or_models_equals_from_dict() -> None:
    wire = {
        "type": "response.done",
        "event_id": "event_9",
        "response": {
            "id": "resp_1",
            "status": "completed",
            "output": [
                {
                    "id": "item_1",
                    "type": "message",
                    "content": [{"type": "output_text", "text": "hi"}],
                }
            ],
        },
    }
    expected = ResponseEvent.from_dict(wire)
    from_dicts = ResponseEvent.build(
        type="response.done", event_id="event_9", response=wire["response"]
    )
    from_models = ResponseEvent.build(
        type="response.done",
        event_id="event_9",
        response=Response.build(
            id="resp_1",
            status="completed",
            output=(
                ConversationItem.build(
                    id="item_1",
                    type="message",
                    content=[ContentPart.build(type="output_text", text="hi")],
                ),
            ),
        ),
    )
    assert from_dicts == expected
    assert from_models == expected
    assert from_models.to_dict() == wire
    assert from_models.response.output[0].content[0].text == "hi"


def test_build_leaves_out_fields_not_given() -> None:
    event = SessionEvent.build(type="session.created", session={"id": "s"})
    assert event.to_dict() == {"type": "session.created", "session": {"id": "s"}}
    assert "event_id" not in event.raw
    assert event.event_id is None


def test_build_with_extra_fields_keeps_them() -> None:
    event = TextDeltaEvent.build(type="response.text.delta", delta="a", obfuscation="x")
    assert event.obfuscation == "x"
    assert event == TextDeltaEvent.from_dict(
        {"type": "response.text.delta", "delta": "a", "obfuscation": "x"}
    )


def test_events_are_frozen() -> None:
    event = decode_payload(DELTA)
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        event.delta = "changed"  # type: ignore[misc]
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        event.obfuscation = "changed"
    session = decode_payload({"type": "session.created", "session": {"id": "s"}}).session
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        session.id = "other"  # type: ignore[misc]
    assert event.delta == "Hel"


def test_client_side_events_are_frozen() -> None:
    event = decode_event("nope")
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        event.reason = "x"  # type: ignore[misc]


def test_equality_is_by_content() -> None:
    first = decode_event(json.dumps(DELTA))
    second = decode_event(json.dumps(DELTA).encode())
    assert first == second
    assert first is not second
    changed = decode_payload({**DELTA, "obfuscation": "other"})
    assert first != changed  # undeclared fields count too
    assert first != decode_payload({**DELTA, "delta": "other"})
    assert decode_payload({"type": "x.y"}) == decode_payload({"type": "x.y"})


def test_model_subclasses_share_the_base() -> None:
    for name in realtime_sync._objects.__all__:
        assert issubclass(getattr(realtime_sync.events, name), Model), name
    for cls in set(_EVENT_CLASSES.values()) | {GenericEvent}:
        assert issubclass(cls, ServerEvent)


# --- the catalogue against the official SDK -------------------------------------------------


def _literal_types(union: Any) -> set[str]:
    """The ``type`` literals of every member of an SDK event union."""
    names: set[str] = set()
    pending = [union]
    while pending:
        tp = pending.pop()
        origin = typing.get_origin(tp)
        if origin is typing.Annotated:
            pending.append(typing.get_args(tp)[0])
        elif origin is typing.Union:
            pending.extend(typing.get_args(tp))
        else:
            hint = tp.model_fields["type"].annotation
            assert typing.get_origin(hint) is typing.Literal, (tp, hint)
            names.update(typing.get_args(hint))
    return names


def _compare(ours: frozenset[str], official: set[str], label: str) -> None:
    missing = sorted(official - ours)
    extra = sorted(ours - official)
    message = f"{label} differs from the openai package: missing {missing}, extra {extra}"
    assert not missing, message
    assert not extra, message


def test_ga_catalogue_matches_openai_package() -> None:
    from openai.types.realtime import RealtimeServerEvent

    official = _literal_types(RealtimeServerEvent)
    assert len(official) == 46
    _compare(GA_SERVER_EVENTS, official, "GA_SERVER_EVENTS")
    assert len(GA_SERVER_EVENTS) == 46


def test_beta_catalogue_matches_openai_package() -> None:
    from openai.types.beta.realtime import RealtimeServerEvent

    official = _literal_types(RealtimeServerEvent)
    assert len(official) == 34
    _compare(BETA_SERVER_EVENTS, official, "BETA_SERVER_EVENTS")
    assert len(BETA_SERVER_EVENTS) == 34


def test_every_typed_class_is_registered_for_catalogued_names() -> None:
    assert set(_EVENT_CLASSES) <= GA_SERVER_EVENTS | BETA_SERVER_EVENTS


# --- property: decoding never raises and round-trips ----------------------------------------

KNOWN_TYPES = sorted(GA_SERVER_EVENTS | BETA_SERVER_EVENTS)
TYPED_TYPES = sorted(_EVENT_CLASSES)
JSON_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**53), max_value=2**53)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12)
)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
FIELD_NAMES = st.text(min_size=1, max_size=12)


def _nested_model(tp: Any) -> type[Model] | None:
    """The Model class a field annotation holds (directly, optionally or in a list)."""
    if isinstance(tp, type) and issubclass(tp, Model):
        return tp
    for arg in typing.get_args(tp):
        found = _nested_model(arg)
        if found is not None:
            return found
    return None


def _field_values(cls: type[Model], name: str, depth: int) -> st.SearchStrategy[Any]:
    nested = _nested_model(typing.get_type_hints(cls)[name])
    if nested is None or depth <= 0:
        return JSON_VALUES
    objects = _objects(nested, depth - 1)
    return JSON_VALUES | objects | st.lists(st.none() | objects, max_size=3)


@functools.cache
def _objects(cls: type[Model], depth: int) -> st.SearchStrategy[dict[str, Any]]:
    """JSON objects shaped like ``cls``: some declared fields, some unknown ones."""
    # A server event's own ``type`` is chosen by the caller; nested models may have one.
    reserved = {"type"} if issubclass(cls, ServerEvent) else set()
    declared = [name for name in wire_fields(cls) if name not in reserved]
    known = st.fixed_dictionaries(
        {}, optional={name: _field_values(cls, name, depth) for name in declared}
    )
    extra = st.dictionaries(
        FIELD_NAMES.filter(lambda name: name not in declared and name not in reserved),
        JSON_VALUES,
        max_size=3,
    )
    return st.builds(lambda a, b: {**b, **a}, known, extra)


@st.composite
def server_payloads(draw: st.DrawFn) -> dict[str, Any]:
    # Half the draws from the types with a class, where decoding has most to get wrong.
    event_type = draw(st.sampled_from(TYPED_TYPES) | st.sampled_from(KNOWN_TYPES))
    cls = expected_class(event_type)
    body = draw(_objects(cls, depth=2))
    return {"type": event_type, **body}


@settings(
    max_examples=200,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(server_payloads())
def test_decode_payload_never_raises_and_round_trips(payload: dict[str, Any]) -> None:
    snapshot = json.loads(json.dumps(payload))
    event = decode_payload(payload)
    assert event.type == payload["type"]
    assert event.to_dict() == snapshot
    assert event.raw == snapshot
    cls = expected_class(payload["type"])
    if type(event) is GenericEvent and event.decode_error is not None:
        assert cls is not GenericEvent
        assert event.decode_error.startswith(cls.__name__)
    else:
        assert type(event) is cls
    again = decode_event(json.dumps(payload))
    assert again == event
    assert payload == snapshot  # decoding does not mutate its input
