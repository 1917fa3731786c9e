"""Conformance of every client event we send, checked against the official ``openai`` models.

The oracle is the ``openai`` package's pydantic models of client events: GA
(``openai.types.realtime.RealtimeClientEvent``) and beta
(``openai.types.beta.realtime.RealtimeClientEvent``). Those models accept unknown keys, so
validation alone would let a misspelt or other-dialect field through; :func:`assert_conforms`
also walks the payload beside the parsed model and fails on any key the chosen model does not
declare. What is checked is what the local server received over a real socket, not what the
client believes it sent.
"""

from __future__ import annotations

import base64
import json
import typing
import uuid
from collections.abc import Callable, Mapping
from typing import Any

import pydantic
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from openai.types.beta.realtime import RealtimeClientEvent as BetaClientEventUnion
from openai.types.realtime import RealtimeClientEvent as GAClientEventUnion

from realtime_sync import InvalidEventError, NotConnectedError, RealtimeClient
from realtime_sync._client_events import CLIENT_EVENT_CLASSES
from realtime_sync._dialects import BETA_CLIENT_EVENTS, GA_CLIENT_EVENTS
from realtime_sync._resources import MAX_APPEND_BYTES
from realtime_sync.testing import LocalRealtimeServer

pytestmark = pytest.mark.timeout(120)

DIALECTS = ("ga", "beta")
WAIT = 5.0

# --- the oracle ---------------------------------------------------------------------------------

_UNIONS: dict[str, Any] = {"ga": GAClientEventUnion, "beta": BetaClientEventUnion}
_ADAPTERS = {dialect: pydantic.TypeAdapter(union) for dialect, union in _UNIONS.items()}


def _union_members(union: Any) -> tuple[type[pydantic.BaseModel], ...]:
    """The event models of an (``Annotated``) union of client events."""
    if typing.get_origin(union) is typing.Annotated:
        union = typing.get_args(union)[0]
    return typing.get_args(union)


def _event_type_of(model: type[pydantic.BaseModel]) -> str:
    (literal,) = typing.get_args(model.model_fields["type"].annotation)
    return str(literal)


OFFICIAL_MODELS: dict[str, dict[str, type[pydantic.BaseModel]]] = {
    dialect: {_event_type_of(model): model for model in _union_members(union)}
    for dialect, union in _UNIONS.items()
}
"""Per dialect: client event type -> the official pydantic model of that event."""


def undeclared_keys(payload: Any, parsed: Any, path: str = "$") -> list[str]:
    """Keys of ``payload`` that the pydantic model ``parsed`` was validated into does not declare.

    Walks nested models, lists and dicts. For a union the member pydantic chose is the type of
    the parsed value, so that member's fields are the ones that count.
    """
    if isinstance(parsed, pydantic.BaseModel):
        if not isinstance(payload, Mapping):
            return [f"{path}: {type(payload).__name__} parsed as {type(parsed).__name__}"]
        declared = {(info.alias or name): name for name, info in type(parsed).model_fields.items()}
        problems = []
        for key, value in payload.items():
            name = declared.get(key)
            if name is None:
                problems.append(
                    f"{path}.{key}: not a field of {type(parsed).__module__}."
                    f"{type(parsed).__qualname__} (fields: {sorted(declared)})"
                )
            else:
                problems += undeclared_keys(value, getattr(parsed, name), f"{path}.{key}")
        return problems
    if isinstance(parsed, (list, tuple)):
        if not isinstance(payload, (list, tuple)) or len(payload) != len(parsed):
            return [f"{path}: list shape changed in parsing"]
        problems = []
        for index, (value, parsed_value) in enumerate(zip(payload, parsed, strict=True)):
            problems += undeclared_keys(value, parsed_value, f"{path}[{index}]")
        return problems
    if isinstance(parsed, Mapping) and isinstance(payload, Mapping):
        problems = []
        for key, value in payload.items():
            problems += undeclared_keys(value, parsed.get(key), f"{path}.{key}")
        return problems
    return []


def assert_conforms(payload: Mapping[str, Any], dialect: str) -> pydantic.BaseModel:
    """Fail unless ``payload`` is a valid client event of ``dialect`` with no undeclared key."""
    failure = None
    try:
        # Strict: the payload is decoded JSON, so "5" or true for an integer is a real error.
        parsed = _ADAPTERS[dialect].validate_python(payload, strict=True)
    except pydantic.ValidationError as union_error:
        # The union's message lists every member's complaint; show the matching member's.
        failure = str(union_error)
        model = OFFICIAL_MODELS[dialect].get(payload.get("type"))  # type: ignore[arg-type]
        if model is not None:
            try:
                model.model_validate(payload, strict=True)
            except pydantic.ValidationError as member_error:
                failure = str(member_error)
    if failure is not None:  # failed outside the except block: no chained union error
        pytest.fail(f"not a valid {dialect} client event: {failure}\npayload: {payload!r}")
    problems = undeclared_keys(payload, parsed)
    if problems:
        pytest.fail(
            f"{dialect} client event has undeclared keys:\n  "
            + "\n  ".join(problems)
            + f"\npayload: {payload!r}"
        )
    assert _event_type_of(type(parsed)) == payload["type"]
    return parsed


# --- the checker itself -------------------------------------------------------------------------

_GOOD_ITEM_EVENT = {
    "type": "conversation.item.create",
    "event_id": "evt_1",
    "item": {
        "type": "message",
        "role": "user",
        "content": [{"type": "input_text", "text": "hello"}],
    },
}


def _with(event: Mapping[str, Any], path: tuple[Any, ...], key: str, value: Any) -> dict[str, Any]:
    copied = json.loads(json.dumps(event))
    target = copied
    for step in path:
        target = target[step]
    target[key] = value
    return copied


@pytest.mark.parametrize("dialect", DIALECTS)
def test_checker_accepts_a_good_event(dialect: str) -> None:
    parsed = assert_conforms(_GOOD_ITEM_EVENT, dialect)
    assert type(parsed) is OFFICIAL_MODELS[dialect]["conversation.item.create"]


@pytest.mark.parametrize("dialect", DIALECTS)
@pytest.mark.parametrize(
    ("path", "key", "value", "message"),
    [
        pytest.param((), "surprise", 1, r"\$\.surprise: not a field", id="unknown-top-level"),
        pytest.param(
            ("item", "content", 0),
            "colour",
            "red",
            r"\$\.item\.content\[0\]\.colour: not a field",
            id="unknown-nested-in-list",
        ),
        pytest.param(("item",), "content", "hello", "not a valid", id="wrong-type-nested"),
        pytest.param((), "item", ["a"], "not a valid", id="wrong-type-top-level"),
        pytest.param(("item",), "role", "robot", "not a valid", id="bad-literal"),
        pytest.param((), "type", "conversation.item.make", "not a valid", id="unknown-type"),
        pytest.param((), "previous_item_id", 7, "not a valid", id="int-for-string"),
    ],
)
def test_checker_rejects_bad_events(
    dialect: str, path: tuple[Any, ...], key: str, value: Any, message: str
) -> None:
    bad = _with(_GOOD_ITEM_EVENT, path, key, value)
    with pytest.raises(pytest.fail.Exception, match=message):
        assert_conforms(bad, dialect)


def test_checker_tells_the_dialects_apart() -> None:
    ga_session = {"type": "session.update", "session": {"type": "realtime", "audio": {}}}
    beta_session = {"type": "session.update", "session": {"modalities": ["text"]}}
    assert_conforms(ga_session, "ga")
    assert_conforms(beta_session, "beta")
    with pytest.raises(pytest.fail.Exception, match=r"\$\.session\.audio: not a field"):
        assert_conforms({**ga_session, "session": {"audio": {}}}, "beta")
    with pytest.raises(pytest.fail.Exception, match="not a valid ga"):
        assert_conforms(beta_session, "ga")  # no session.type
    with pytest.raises(pytest.fail.Exception, match=r"\$\.session\.modalities: not a field"):
        assert_conforms(
            {"type": "session.update", "session": {"type": "realtime", "modalities": []}}, "ga"
        )
    truncate = {
        "type": "conversation.item.truncate",
        "item_id": "item_1",
        "content_index": 0,
        "audio_end_ms": 1500,
    }
    for dialect in DIALECTS:
        assert_conforms(truncate, dialect)
        for coerced in ("0", True, 0.0):  # lax validation would accept each of these
            with pytest.raises(pytest.fail.Exception, match="content_index"):
                assert_conforms({**truncate, "content_index": coerced}, dialect)
    # Through a union member: the transcription session's audio input has no "voice".
    transcription = {
        "type": "session.update",
        "session": {"type": "transcription", "audio": {"input": {"voice": "alloy"}}},
    }
    with pytest.raises(pytest.fail.Exception, match=r"audio\.input\.voice: not a field"):
        assert_conforms(transcription, "ga")


# --- strategies ---------------------------------------------------------------------------------

texts = st.text(max_size=40)
ids = st.from_regex(r"\A(item|msg|fc|resp)_[A-Za-z0-9]{1,22}\Z")
call_ids = st.from_regex(r"\Acall_[A-Za-z0-9]{4,20}\Z")
names = st.from_regex(r"\A[a-z][a-z0-9_]{0,24}\Z")
b64_audio = st.binary(max_size=96).map(lambda raw: base64.b64encode(raw).decode("ascii"))
metadata = st.dictionaries(st.text(min_size=1, max_size=16), st.text(max_size=40), max_size=4)
json_arguments = st.dictionaries(
    names, st.one_of(st.integers(-1000, 1000), texts, st.booleans()), max_size=3
).map(json.dumps)
tool_choice_options = st.sampled_from(["auto", "none", "required"])
max_tokens = st.one_of(st.integers(1, 4096), st.just("inf"))
BETA_VOICES = ("alloy", "ash", "ballad", "coral", "echo", "sage", "shimmer", "verse")
GA_VOICES = (*BETA_VOICES, "marin", "cedar")
BETA_FORMATS = st.sampled_from(["pcm16", "g711_ulaw", "g711_alaw"])
GA_FORMATS = st.sampled_from(
    [
        {"type": "audio/pcm", "rate": 24000},
        {"type": "audio/pcm"},
        {"type": "audio/pcmu"},
        {"type": "audio/pcma"},
    ]
)


def _obj(required: Mapping[str, Any] | None = None, **optional: Any) -> Any:
    """A JSON object strategy: ``required`` keys always, the keyword ones sometimes."""
    return st.fixed_dictionaries(
        {
            k: v if isinstance(v, st.SearchStrategy) else st.just(v)
            for k, v in (required or {}).items()
        },
        optional=optional,
    )


function_tools = _obj(
    {
        "type": "function",
        "name": names,
        "parameters": st.dictionaries(
            names, st.sampled_from(["string", "number", "boolean"]), max_size=3
        ).map(
            lambda props: {
                "type": "object",
                "properties": {name: {"type": kind} for name, kind in props.items()},
                "required": sorted(props),
            }
        ),
    },
    description=texts,
)
tool_lists = st.lists(function_tools, max_size=2)


def _message(role: str, content: Any) -> Any:
    return _obj(
        {"type": "message", "role": role, "content": st.lists(content, min_size=1, max_size=3)},
        id=ids,
    )


input_text = _obj({"type": "input_text", "text": texts})
input_audio = _obj({"type": "input_audio", "audio": b64_audio}, transcript=texts)
function_calls = _obj(
    {"type": "function_call", "name": names, "call_id": call_ids, "arguments": json_arguments},
    id=ids,
)
function_outputs = _obj(
    {
        "type": "function_call_output",
        "call_id": call_ids,
        "output": st.one_of(texts, json_arguments),
    },
    id=ids,
)
ITEMS = {
    "ga": st.one_of(
        _message("user", st.one_of(input_text, input_audio)),
        _message("system", input_text),
        _message("assistant", _obj({"type": "output_text", "text": texts})),
        function_calls,
        function_outputs,
    ),
    # Beta names the assistant's text part "text".
    "beta": st.one_of(
        _message("user", st.one_of(input_text, input_audio)),
        _message("system", input_text),
        _message("assistant", _obj({"type": "text", "text": texts})),
        function_calls,
        function_outputs,
    ),
}

RESPONSES = {
    "ga": _obj(
        instructions=texts,
        metadata=metadata,
        conversation=st.sampled_from(["auto", "none"]),
        output_modalities=st.sampled_from([["text"], ["audio"]]),
        tools=tool_lists,
        tool_choice=st.one_of(tool_choice_options, _obj({"type": "function", "name": names})),
        max_output_tokens=max_tokens,
        input=st.lists(ITEMS["ga"], max_size=3),
        audio=_obj(
            output=_obj(voice=st.sampled_from(GA_VOICES), format=GA_FORMATS),
        ),
    ),
    "beta": _obj(
        instructions=texts,
        metadata=metadata,
        conversation=st.sampled_from(["auto", "none"]),
        modalities=st.sampled_from([["text"], ["text", "audio"]]),
        tools=tool_lists,
        tool_choice=tool_choice_options,
        max_response_output_tokens=max_tokens,
        temperature=st.floats(0.6, 1.2),
        voice=st.sampled_from(BETA_VOICES),
        output_audio_format=BETA_FORMATS,
        input=st.lists(
            st.one_of(ITEMS["beta"], _obj({"type": "item_reference", "id": ids})), max_size=3
        ),
    ),
}

# Session settings. `full=False` keeps to what both dialects can express; `full=True` adds
# what only the dialect of the vocabulary has (sent only to a client of that dialect).


def _server_vad(full: bool) -> Any:
    extra = {"idle_timeout_ms": st.integers(5000, 30000)} if full else {}
    return _obj(
        {"type": "server_vad"},
        threshold=st.floats(0, 1),
        prefix_padding_ms=st.integers(0, 1000),
        silence_duration_ms=st.integers(0, 2000),
        create_response=st.booleans(),
        interrupt_response=st.booleans(),
        **extra,
    )


semantic_vad = _obj(
    {"type": "semantic_vad"},
    eagerness=st.sampled_from(["low", "medium", "high", "auto"]),
    create_response=st.booleans(),
    interrupt_response=st.booleans(),
)
transcriptions = _obj(
    {"model": st.sampled_from(["whisper-1", "gpt-4o-transcribe", "gpt-4o-mini-transcribe"])},
    language=st.sampled_from(["en", "de", "fr", "ja"]),
    prompt=texts,
)
noise_types = _obj({"type": st.sampled_from(["near_field", "far_field"])})
tracing = st.one_of(st.just("auto"), _obj(workflow_name=texts, group_id=ids))


def beta_sessions(full: bool) -> Any:
    extra = {"temperature": st.floats(0.6, 1.2)} if full else {}
    return _obj(
        modalities=st.sampled_from([["text"], ["text", "audio"], ["audio", "text"]]),
        instructions=texts,
        voice=st.sampled_from(BETA_VOICES),
        input_audio_format=BETA_FORMATS,
        output_audio_format=BETA_FORMATS,
        turn_detection=st.one_of(st.none(), _server_vad(False), semantic_vad),
        input_audio_transcription=st.one_of(st.none(), transcriptions),
        input_audio_noise_reduction=st.one_of(st.none(), noise_types),
        tools=tool_lists,
        tool_choice=tool_choice_options,
        max_response_output_tokens=max_tokens,
        speed=st.floats(0.25, 1.5),
        tracing=tracing,
        **extra,
    )


def ga_sessions(full: bool) -> Any:
    voices = st.sampled_from(GA_VOICES)
    noise = noise_types
    tools = tool_lists
    tool_choice = tool_choice_options
    extra = {}
    if full:
        voices = st.one_of(voices, _obj({"id": st.from_regex(r"\Avoice_[a-z0-9]{8}\Z")}))
        noise = _obj(
            {"type": st.sampled_from(["near_field", "far_field"])}, strength=st.floats(0, 1)
        )
        tools = st.lists(
            st.one_of(
                function_tools,
                _obj(
                    {
                        "type": "mcp",
                        "server_label": names,
                        "server_url": st.just("https://mcp.example.com/sse"),
                    }
                ),
            ),
            max_size=2,
        )
        tool_choice = st.one_of(tool_choice, _obj({"type": "function", "name": names}))
        extra = {
            "include": st.just(["item.input_audio_transcription.logprobs"]),
            "prompt": _obj(
                {"id": st.from_regex(r"\Apmpt_[a-z0-9]{8}\Z")},
                version=st.just("2"),
                variables=st.dictionaries(names, texts, max_size=2),
            ),
            "truncation": st.one_of(
                st.sampled_from(["auto", "disabled"]),
                _obj({"type": "retention_ratio", "retention_ratio": st.floats(0, 1)}),
            ),
            "parallel_tool_calls": st.booleans(),
            "reasoning": _obj(effort=st.sampled_from(["minimal", "low", "medium", "high"])),
        }
    audio_input = _obj(
        format=GA_FORMATS,
        transcription=st.one_of(st.none(), transcriptions),
        noise_reduction=st.one_of(st.none(), noise),
        turn_detection=st.one_of(st.none(), _server_vad(full), semantic_vad),
    )
    audio_output = _obj(format=GA_FORMATS, voice=voices, speed=st.floats(0.25, 1.5))
    return _obj(
        type=st.just("realtime"),
        output_modalities=st.sampled_from([["text"], ["audio"]]),
        instructions=texts,
        audio=_obj(input=audio_input, output=audio_output),
        tools=tools,
        tool_choice=tool_choice,
        max_output_tokens=max_tokens,
        tracing=tracing,
        **extra,
    )


ga_transcription_sessions = _obj(
    {
        "type": "transcription",
        "audio": _obj(
            input=_obj(
                format=GA_FORMATS,
                transcription=transcriptions,
                noise_reduction=st.one_of(st.none(), noise_types),
                turn_detection=st.one_of(st.none(), _server_vad(True), semantic_vad),
            )
        ),
    },
    include=st.just(["item.input_audio_transcription.logprobs"]),
)
beta_transcription_sessions = _obj(
    input_audio_format=BETA_FORMATS,
    input_audio_transcription=transcriptions,
    turn_detection=st.one_of(st.none(), _server_vad(False), semantic_vad),
    input_audio_noise_reduction=st.one_of(st.none(), noise_types),
    include=st.just(["item.input_audio_transcription.logprobs"]),
)
SESSIONS_AS_WRITTEN_FOR = {
    # What a client of this dialect sends with no translation (as `.build()` takes it).
    "ga": st.one_of(
        ga_sessions(True).map(lambda s: {"type": "realtime", **s}), ga_transcription_sessions
    ),
    "beta": beta_sessions(True),
}

# --- the senders --------------------------------------------------------------------------------

SENDERS: dict[str, Callable[[RealtimeClient], Callable[..., str]]] = {
    "session.update": lambda c: c.session.update,
    "transcription_session.update": lambda c: c.transcription_session.update,
    "input_audio_buffer.append": lambda c: c.input_audio_buffer.append,
    "input_audio_buffer.commit": lambda c: c.input_audio_buffer.commit,
    "input_audio_buffer.clear": lambda c: c.input_audio_buffer.clear,
    "output_audio_buffer.clear": lambda c: c.output_audio_buffer.clear,
    "conversation.item.create": lambda c: c.conversation.item.create,
    "conversation.item.delete": lambda c: c.conversation.item.delete,
    "conversation.item.retrieve": lambda c: c.conversation.item.retrieve,
    "conversation.item.truncate": lambda c: c.conversation.item.truncate,
    "response.create": lambda c: c.response.create,
    "response.cancel": lambda c: c.response.cancel,
}
"""Every typed sender, by the event type it sends; the tests below reach senders only here."""

HYPOTHESIS = settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def unique_id(prefix: str = "evt_conf") -> str:
    return f"{prefix}_{uuid.uuid4().hex}"


def received_with_id(server: LocalRealtimeServer, event_id: str) -> dict[str, Any]:
    """The one event the server received with ``event_id``."""
    (event,) = server.wait_for_received(
        predicate=lambda event: event.get("event_id") == event_id, timeout=WAIT
    )
    return event


def send_checked(
    server: LocalRealtimeServer,
    client: RealtimeClient,
    event_type: str,
    *,
    explicit_id: bool = False,
    **kwargs: Any,
) -> dict[str, Any]:
    """Send through the typed sender; return what the server got, after checking it."""
    given_id = unique_id() if explicit_id else None
    if given_id is not None:
        kwargs["event_id"] = given_id
    event_id = SENDERS[event_type](client)(**kwargs)
    assert isinstance(event_id, str)
    assert event_id
    if given_id is not None:
        assert event_id == given_id
    event = received_with_id(server, event_id)
    assert event["type"] == event_type
    assert_conforms(event, client.dialect)
    return event


@pytest.fixture
def clients(
    server: LocalRealtimeServer, make_client: Callable[..., RealtimeClient]
) -> dict[str, RealtimeClient]:
    """One connected client per dialect, both on the test's server."""
    result = {}
    for dialect in DIALECTS:
        client = make_client(protocol=dialect)
        client.on("error", lambda event: None)
        client.connect(timeout=WAIT)
        result[dialect] = client
    return result


# --- 1. typed senders over real sockets ---------------------------------------------------------


@HYPOTHESIS
@given(
    ga_written=ga_sessions(False),
    beta_written=beta_sessions(False),
    ga_only=st.one_of(ga_sessions(True), ga_transcription_sessions),
    beta_only=beta_sessions(True),
    explicit_id=st.booleans(),
)
def test_session_update_in_either_vocabulary(
    server: LocalRealtimeServer,
    clients: dict[str, RealtimeClient],
    *,
    ga_written: dict[str, Any],
    beta_written: dict[str, Any],
    ga_only: dict[str, Any],
    beta_only: dict[str, Any],
    explicit_id: bool,
) -> None:
    ga, beta = clients["ga"], clients["beta"]
    own_ga = send_checked(server, ga, "session.update", session=ga_only, explicit_id=explicit_id)
    to_ga = send_checked(
        server, ga, "session.update", session=beta_written, explicit_id=explicit_id
    )["session"]
    own_beta = send_checked(
        server, beta, "session.update", session=beta_only, explicit_id=explicit_id
    )
    to_beta = send_checked(
        server, beta, "session.update", session=ga_written, explicit_id=explicit_id
    )["session"]

    # Written for its own dialect, a session passes through (GA gains its required type;
    # an empty audio object may be dropped).
    assert own_ga["session"] == {"type": "realtime", **_without_empty_audio(ga_only)}
    assert own_beta["session"] == beta_only
    # A few spot checks that translation kept the meaning, not just the shape.
    assert to_ga["type"] == "realtime"
    for key in ("instructions", "tools", "tool_choice", "tracing"):
        assert to_ga.get(key) == beta_written.get(key)
        assert to_beta.get(key) == ga_written.get(key)
    if "voice" in beta_written:
        assert to_ga["audio"]["output"]["voice"] == beta_written["voice"]
    if "voice" in ga_written.get("audio", {}).get("output", {}):
        assert to_beta["voice"] == ga_written["audio"]["output"]["voice"]
    if "turn_detection" in beta_written:
        assert to_ga["audio"]["input"]["turn_detection"] == beta_written["turn_detection"]
    if "turn_detection" in ga_written.get("audio", {}).get("input", {}):
        assert to_beta["turn_detection"] == ga_written["audio"]["input"]["turn_detection"]
    if "modalities" in beta_written:
        expected = ["audio"] if "audio" in beta_written["modalities"] else ["text"]
        assert to_ga["output_modalities"] == expected
    if "output_modalities" in ga_written:
        audio_out = "audio" in ga_written["output_modalities"]
        assert ("audio" in to_beta["modalities"]) == audio_out


@pytest.mark.parametrize(
    ("dialect", "session", "expected"),
    [
        pytest.param(
            "ga",
            {
                "modalities": ["text"],
                "voice": "alloy",
                "input_audio_format": "pcm16",
                "turn_detection": {"type": "server_vad", "silence_duration_ms": 700},
            },
            {
                "type": "realtime",
                "output_modalities": ["text"],
                "audio": {
                    "output": {"voice": "alloy"},
                    "input": {
                        "format": {"type": "audio/pcm", "rate": 24000},
                        "turn_detection": {"type": "server_vad", "silence_duration_ms": 700},
                    },
                },
            },
            id="beta-style-on-ga",
        ),
        pytest.param(
            "beta",
            {
                "type": "realtime",
                "output_modalities": ["audio"],
                "audio": {"output": {"voice": "marin"}},
            },
            {"modalities": ["text", "audio"], "voice": "marin"},
            id="ga-style-on-beta",
        ),
        pytest.param(
            "beta",
            {
                "max_output_tokens": 512,
                "audio": {
                    "input": {"format": {"type": "audio/pcmu"}, "noise_reduction": None},
                    "output": {"format": {"type": "audio/pcm"}, "speed": 1.25},
                },
            },
            {
                "max_response_output_tokens": 512,
                "input_audio_format": "g711_ulaw",
                "input_audio_noise_reduction": None,
                "output_audio_format": "pcm16",
                "speed": 1.25,
            },
            id="ga-audio-on-beta",
        ),
        pytest.param(
            "ga",
            {
                "voice": "ash",
                "audio": {"output": {"speed": 0.9}},
                "output_audio_format": "g711_alaw",
            },
            {
                "type": "realtime",
                "audio": {
                    "output": {"voice": "ash", "speed": 0.9, "format": {"type": "audio/pcma"}}
                },
            },
            id="mixed-vocabulary-on-ga",
        ),
    ],
)
def test_session_update_translation_examples(
    server: LocalRealtimeServer,
    clients: dict[str, RealtimeClient],
    dialect: str,
    session: dict[str, Any],
    expected: dict[str, Any],
) -> None:
    sent = send_checked(server, clients[dialect], "session.update", session=session)
    assert sent["session"] == expected


def _without_empty_audio(session: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in session.items() if not (k == "audio" and v == {})}


@HYPOTHESIS
@given(
    ga_item=ITEMS["ga"],
    beta_item=ITEMS["beta"],
    previous=st.one_of(st.none(), st.just("root"), ids),
    explicit_id=st.booleans(),
)
def test_conversation_item_create(
    server: LocalRealtimeServer,
    clients: dict[str, RealtimeClient],
    *,
    ga_item: dict[str, Any],
    beta_item: dict[str, Any],
    previous: str | None,
    explicit_id: bool,
) -> None:
    for dialect, item in (("ga", ga_item), ("beta", beta_item)):
        sent = send_checked(
            server,
            clients[dialect],
            "conversation.item.create",
            item=item,
            previous_item_id=previous,
            explicit_id=explicit_id,
        )
        assert sent["item"] == item
        assert sent.get("previous_item_id") == previous
        if previous is None:
            assert "previous_item_id" not in sent


@HYPOTHESIS
@given(
    item_id=ids,
    content_index=st.integers(0, 64),
    audio_end_ms=st.integers(0, 10**7),
    explicit_id=st.booleans(),
)
def test_conversation_item_delete_retrieve_truncate(
    server: LocalRealtimeServer,
    clients: dict[str, RealtimeClient],
    *,
    item_id: str,
    content_index: int,
    audio_end_ms: int,
    explicit_id: bool,
) -> None:
    for client in clients.values():
        for event_type in ("conversation.item.delete", "conversation.item.retrieve"):
            sent = send_checked(
                server, client, event_type, item_id=item_id, explicit_id=explicit_id
            )
            assert sent["item_id"] == item_id
        sent = send_checked(
            server,
            client,
            "conversation.item.truncate",
            item_id=item_id,
            content_index=content_index,
            audio_end_ms=audio_end_ms,
            explicit_id=explicit_id,
        )
        assert (sent["item_id"], sent["content_index"], sent["audio_end_ms"]) == (
            item_id,
            content_index,
            audio_end_ms,
        )


@HYPOTHESIS
@given(
    # Whole PCM16 samples (the sessions' input format): an odd length is refused.
    audio=st.binary(min_size=2, max_size=4800).map(lambda b: b[: len(b) // 2 * 2]),
    form=st.sampled_from(["bytes", "bytearray", "memoryview", "base64"]),
    explicit_id=st.booleans(),
)
def test_audio_buffers(
    server: LocalRealtimeServer,
    clients: dict[str, RealtimeClient],
    *,
    audio: bytes,
    form: str,
    explicit_id: bool,
) -> None:
    encoded = base64.b64encode(audio).decode("ascii")
    argument: Any = {
        "bytes": audio,
        "bytearray": bytearray(audio),
        "memoryview": memoryview(audio),
        "base64": encoded,
    }[form]
    for client in clients.values():
        sent = send_checked(
            server, client, "input_audio_buffer.append", audio=argument, explicit_id=explicit_id
        )
        assert sent["audio"] == encoded
        for event_type in (
            "input_audio_buffer.commit",
            "input_audio_buffer.clear",
            "output_audio_buffer.clear",
        ):
            sent = send_checked(server, client, event_type, explicit_id=explicit_id)
            assert set(sent) == {"type", "event_id"}


@HYPOTHESIS
@given(
    ga_response=st.one_of(st.none(), RESPONSES["ga"]),
    beta_response=st.one_of(st.none(), RESPONSES["beta"]),
    response_id=st.one_of(st.none(), ids),
    explicit_id=st.booleans(),
)
def test_response_create_and_cancel(
    server: LocalRealtimeServer,
    clients: dict[str, RealtimeClient],
    *,
    ga_response: dict[str, Any] | None,
    beta_response: dict[str, Any] | None,
    response_id: str | None,
    explicit_id: bool,
) -> None:
    for dialect, response in (("ga", ga_response), ("beta", beta_response)):
        client = clients[dialect]
        sent = send_checked(
            server, client, "response.create", response=response, explicit_id=explicit_id
        )
        assert sent.get("response") == response
        if response is None:
            assert "response" not in sent
        sent = send_checked(
            server, client, "response.cancel", response_id=response_id, explicit_id=explicit_id
        )
        assert sent.get("response_id") == response_id


@HYPOTHESIS
@given(session=beta_transcription_sessions, explicit_id=st.booleans())
def test_transcription_session_update_on_beta(
    server: LocalRealtimeServer,
    clients: dict[str, RealtimeClient],
    *,
    session: dict[str, Any],
    explicit_id: bool,
) -> None:
    sent = send_checked(
        server,
        clients["beta"],
        "transcription_session.update",
        session=session,
        explicit_id=explicit_id,
    )
    assert sent["session"] == session


@pytest.mark.parametrize(("dialect", "as_text"), [("ga", False), ("beta", True)])
def test_oversized_append_is_split_into_conforming_events(
    server: LocalRealtimeServer,
    clients: dict[str, RealtimeClient],
    dialect: str,
    as_text: bool,
) -> None:
    # Just over the per-event limit once base64-encoded: two events.
    raw = bytes(range(256)) * (MAX_APPEND_BYTES // 4 * 3 // 256 + 1)
    encoded = base64.b64encode(raw).decode("ascii")
    given_id = unique_id()
    last_id = clients[dialect].input_audio_buffer.append(
        audio=encoded if as_text else raw, event_id=given_id
    )
    assert last_id == f"{given_id}.2"
    first = received_with_id(server, f"{given_id}.1")
    second = received_with_id(server, last_id)
    for event in (first, second):
        assert len(event["audio"]) <= MAX_APPEND_BYTES
        assert_conforms(event, dialect)
    assert base64.b64decode(first["audio"]) + base64.b64decode(second["audio"]) == raw


# --- 2. typed client event classes -------------------------------------------------------------


def _build_arguments(event_type: str, dialect: str) -> Any:
    """Valid ``.build()`` keyword arguments for ``event_type`` in ``dialect``'s vocabulary."""
    by_type: dict[str, Any] = {
        "session.update": _obj({"session": SESSIONS_AS_WRITTEN_FOR[dialect]}),
        "transcription_session.update": _obj({"session": beta_transcription_sessions}),
        "input_audio_buffer.append": _obj({"audio": b64_audio}),
        "input_audio_buffer.commit": _obj(),
        "input_audio_buffer.clear": _obj(),
        "output_audio_buffer.clear": _obj(),
        "conversation.item.create": _obj(
            {"item": ITEMS[dialect]}, previous_item_id=st.one_of(st.none(), ids)
        ),
        "conversation.item.delete": _obj({"item_id": ids}),
        "conversation.item.retrieve": _obj({"item_id": ids}),
        "conversation.item.truncate": _obj(
            {
                "item_id": ids,
                "content_index": st.integers(0, 8),
                "audio_end_ms": st.integers(0, 10**6),
            }
        ),
        "response.create": _obj(response=st.one_of(st.none(), RESPONSES[dialect])),
        "response.cancel": _obj(response_id=st.one_of(st.none(), ids)),
    }
    return by_type[event_type]


@pytest.mark.parametrize("event_type", sorted(CLIENT_EVENT_CLASSES))
@settings(
    max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_event_classes_build_conforming_events(
    server: LocalRealtimeServer,
    clients: dict[str, RealtimeClient],
    event_type: str,
    data: st.DataObject,
) -> None:
    cls = CLIENT_EVENT_CLASSES[event_type]
    dialects = [d for d in DIALECTS if event_type in OFFICIAL_MODELS[d]]
    assert dialects
    for dialect in dialects:
        kwargs = data.draw(_build_arguments(event_type, dialect), label=f"{dialect} arguments")
        if data.draw(st.booleans(), label="with event_id"):
            kwargs["event_id"] = unique_id()
        event = cls.build(**kwargs)
        assert isinstance(event, cls)
        as_dict = event.to_dict()
        expected = {"type": event_type, **{k: v for k, v in kwargs.items() if v is not None}}
        assert as_dict == expected
        assert_conforms(as_dict, dialect)

        event_id = clients[dialect].send(event)
        if "event_id" in kwargs:
            assert event_id == kwargs["event_id"]
        assert received_with_id(server, event_id) == {**as_dict, "event_id": event_id}
        assert event.to_dict() == as_dict  # sending did not change the event


# --- 3. coverage of the official unions --------------------------------------------------------


def _difference(ours: set[str], official: set[str]) -> str:
    return f"missing: {sorted(official - ours)}; extra: {sorted(ours - official)}"


@pytest.mark.parametrize(
    ("dialect", "ours"), [("ga", GA_CLIENT_EVENTS), ("beta", BETA_CLIENT_EVENTS)]
)
def test_dialect_tables_match_the_official_unions(dialect: str, ours: frozenset[str]) -> None:
    official = set(OFFICIAL_MODELS[dialect])
    assert len(official) == {"ga": 11, "beta": 12}[dialect]
    assert set(ours) == official, _difference(set(ours), official)


def test_event_classes_match_the_official_unions() -> None:
    every = set(OFFICIAL_MODELS["ga"]) | set(OFFICIAL_MODELS["beta"])
    assert set(CLIENT_EVENT_CLASSES) == every, _difference(set(CLIENT_EVENT_CLASSES), every)
    for event_type, cls in CLIENT_EVENT_CLASSES.items():
        assert event_type == cls.TYPE


@pytest.mark.parametrize("dialect", DIALECTS)
def test_typed_senders_cover_the_official_union(
    dialect: str, make_client: Callable[..., RealtimeClient]
) -> None:
    client = make_client(protocol=dialect)
    official = set(OFFICIAL_MODELS[dialect])
    ours = {event_type for event_type in SENDERS if _sender_exists(client, event_type)}
    assert ours == official, _difference(ours, official)


def _sender_exists(client: RealtimeClient, event_type: str) -> bool:
    """Whether the typed sender of ``event_type`` works on ``client``'s dialect (unconnected)."""
    try:
        SENDERS[event_type](client)(**_MINIMAL_ARGUMENTS.get(event_type, {}))
    except InvalidEventError:
        return False
    except NotConnectedError:
        pass  # the sender exists: it built its event and only then found no connection
    return True


_MINIMAL_ARGUMENTS: dict[str, dict[str, Any]] = {
    "session.update": {"session": {}},
    "transcription_session.update": {"session": {}},
    "input_audio_buffer.append": {"audio": b"\0\0"},
    "conversation.item.create": {"item": {"type": "message", "role": "user", "content": []}},
    "conversation.item.delete": {"item_id": "item_1"},
    "conversation.item.retrieve": {"item_id": "item_1"},
    "conversation.item.truncate": {"item_id": "item_1", "content_index": 0, "audio_end_ms": 0},
}


# --- 4. fields with no equivalent in the other dialect -----------------------------------------


def assert_refused_and_nothing_sent(
    server: LocalRealtimeServer,
    client: RealtimeClient,
    send: Callable[[], Any],
    field: str,
) -> InvalidEventError:
    before = len(server.received)
    with pytest.raises(InvalidEventError) as caught:
        send()
    assert field in str(caught.value), f"{str(caught.value)!r} does not name {field!r}"
    # Synchronise on a later event: whatever the refused call sent would have arrived first.
    marker = client.input_audio_buffer.clear(event_id=unique_id("marker"))
    received_with_id(server, marker)
    assert [event["event_id"] for event in server.received[before:]] == [marker]
    return caught.value


@pytest.mark.parametrize(
    ("dialect", "session", "field"),
    [
        pytest.param("ga", {"temperature": 0.8}, "temperature", id="ga-temperature"),
        pytest.param(
            "ga",
            {"instructions": "hi", "temperature": 0.7},
            "temperature",
            id="ga-temperature-mixed",
        ),
        pytest.param(
            "ga",
            {"client_secret": {"expires_after": {"anchor": "created_at"}}},
            "client_secret",
            id="ga-client_secret",
        ),
        pytest.param(
            "ga", {"input_audio_format": "opus"}, "input_audio_format", id="ga-bad-format"
        ),
        pytest.param("ga", {"modalitys": ["text"]}, "modalitys", id="ga-unknown"),
        pytest.param("beta", {"prompt": {"id": "pmpt_123"}}, "prompt", id="beta-prompt"),
        pytest.param("beta", {"truncation": "auto"}, "truncation", id="beta-truncation"),
        pytest.param(
            "beta",
            {"truncation": {"type": "retention_ratio", "retention_ratio": 0.5}},
            "truncation",
            id="beta-truncation-ratio",
        ),
        pytest.param(
            "beta",
            {"include": ["item.input_audio_transcription.logprobs"]},
            "include",
            id="beta-include",
        ),
        pytest.param(
            "beta", {"parallel_tool_calls": True}, "parallel_tool_calls", id="beta-parallel"
        ),
        pytest.param("beta", {"reasoning": {"effort": "low"}}, "reasoning", id="beta-reasoning"),
        pytest.param(
            "beta",
            {
                "type": "realtime",
                "audio": {"input": {"format": {"type": "audio/pcm", "rate": 16000}}},
            },
            "audio.input.format",
            id="beta-pcm-16k-input",
        ),
        pytest.param(
            "beta",
            {"audio": {"output": {"format": {"type": "audio/pcm", "rate": 16000}}}},
            "audio.output.format",
            id="beta-pcm-16k-output",
        ),
        pytest.param(
            "beta", {"type": "transcription"}, "transcription", id="beta-transcription-type"
        ),
        pytest.param(
            "beta",
            {"audio": {"output": {"volume": 1}}},
            "audio.output.volume",
            id="beta-unknown-audio",
        ),
        pytest.param("beta", {"modalitys": ["text"]}, "modalitys", id="beta-unknown"),
    ],
)
def test_session_fields_without_equivalent_are_refused(
    server: LocalRealtimeServer,
    clients: dict[str, RealtimeClient],
    dialect: str,
    session: dict[str, Any],
    field: str,
) -> None:
    client = clients[dialect]
    assert_refused_and_nothing_sent(
        server, client, lambda: client.session.update(session=session), field
    )


def test_transcription_session_update_is_refused_on_ga(
    server: LocalRealtimeServer, clients: dict[str, RealtimeClient]
) -> None:
    client = clients["ga"]
    session = {"input_audio_transcription": {"model": "whisper-1"}}
    assert_refused_and_nothing_sent(
        server,
        client,
        lambda: client.transcription_session.update(session=session),
        "transcription_session.update",
    )


@pytest.mark.parametrize("dialect", DIALECTS)
@pytest.mark.parametrize("audio", [b"", "", bytearray(), 1234, None])
def test_unusable_audio_is_refused(
    server: LocalRealtimeServer, clients: dict[str, RealtimeClient], dialect: str, audio: Any
) -> None:
    client = clients[dialect]
    assert_refused_and_nothing_sent(
        server, client, lambda: client.input_audio_buffer.append(audio=audio), "audio"
    )


@pytest.mark.parametrize(
    ("session", "dialect"),
    [
        pytest.param({"temperature": 0.8}, "beta", id="temperature-on-beta"),
        pytest.param({"type": "realtime", "prompt": {"id": "pmpt_1"}}, "ga", id="prompt-on-ga"),
        pytest.param({"truncation": "auto"}, "ga", id="truncation-on-ga"),
        pytest.param(
            {"audio": {"input": {"format": {"type": "audio/pcm", "rate": 24000}}}},
            "beta",
            id="pcm-24k-on-beta",
        ),
    ],
)
def test_the_same_fields_are_fine_in_their_own_dialect(
    server: LocalRealtimeServer,
    clients: dict[str, RealtimeClient],
    session: dict[str, Any],
    dialect: str,
) -> None:
    send_checked(server, clients[dialect], "session.update", session=session)


# Values nested inside translatable fields that only one dialect can express: the contract of
# session.update is "translated, or refused with InvalidEventError naming the field".


@pytest.mark.parametrize(
    ("dialect", "session"),
    [
        pytest.param(
            "beta",
            {"tool_choice": {"type": "function", "name": "get_weather"}},
            id="ga-forced-function-on-beta",
        ),
        pytest.param(
            "beta",
            {"audio": {"output": {"voice": {"id": "voice_1234abcd"}}}},
            id="ga-custom-voice-on-beta",
        ),
        pytest.param(
            "beta",
            {"tools": [{"type": "mcp", "server_label": "docs", "server_url": "https://x.test"}]},
            id="ga-mcp-tool-on-beta",
        ),
        pytest.param(
            "beta",
            {"audio": {"input": {"noise_reduction": {"type": "near_field", "strength": 0.5}}}},
            id="ga-noise-strength-on-beta",
        ),
        pytest.param(
            "beta",
            {"audio": {"input": {"turn_detection": {"type": "server_vad", "idle_timeout_ms": 1}}}},
            id="ga-idle-timeout-on-beta",
        ),
        pytest.param(
            "ga",
            {"turn_detection": {"silence_duration_ms": 800}},
            id="beta-untyped-turn-detection-on-ga",
        ),
        pytest.param("beta", {"tool_choice": "required"}, id="control-tool-choice-option"),
        pytest.param("beta", {"audio": {"output": {"voice": "marin"}}}, id="control-named-voice"),
        pytest.param("ga", {"turn_detection": {"type": "semantic_vad"}}, id="control-typed-vad"),
    ],
)
def test_other_dialect_values_are_translated_or_refused(
    server: LocalRealtimeServer,
    clients: dict[str, RealtimeClient],
    dialect: str,
    session: dict[str, Any],
) -> None:
    client = clients[dialect]
    try:
        event_id = client.session.update(session=session)
    except InvalidEventError:
        return  # refusing is one of the two acceptable outcomes
    assert_conforms(received_with_id(server, event_id), dialect)
