"""Our typed events against the official catalogue, the ``openai`` package's models.

* Every server event type of each dialect (the members of the SDK's ``RealtimeServerEvent``
  unions) has a typed class here, and nothing else does.
* Every field the SDK's models declare, nested objects included, is declared on our class.
* Every real example (the OpenAPI specs' examples, the captured traces) decodes to its typed
  class with typed nested objects and gives back exactly what was received; the SDK parses
  the same examples, and every field it parsed is one of our typed attributes.

The data-driven tests use ``tests/conformance`` (see tests/test_events.py).
"""

from __future__ import annotations

import ast
import inspect
import json
import types
import typing
from typing import Any

import openai.types.beta.realtime as beta_types
import openai.types.realtime as ga_types
import pytest
from conftest import CONFORMANCE
from pydantic import BaseModel, TypeAdapter, ValidationError

import realtime_sync._item_objects
import realtime_sync._objects
import realtime_sync._server_events
import realtime_sync._session_objects
import realtime_sync.events
from realtime_sync._models import Model, wire_fields
from realtime_sync._server_events import _EVENT_CLASSES
from realtime_sync.events import (
    BETA_SERVER_EVENTS,
    GA_SERVER_EVENTS,
    AudioFormat,
    AudioOutput,
    ContentPart,
    ConversationItem,
    DtmfEventReceivedEvent,
    GenericEvent,
    RateLimit,
    ServerEvent,
    SessionAudio,
    TurnDetection,
    Usage,
    decode_event,
    decode_payload,
)

NEWER_OPENAI = (
    "A newer openai release may have added, renamed or reshaped events: model them in "
    "realtime_sync/_server_events.py and _objects.py, _session_objects.py or _item_objects.py "
    "(and the names in _dialects.py)."
)

# Fields the SDK declares that we deliberately do not model, as (our class, wire field):
# reason. Such a field is still kept in ``raw`` and reachable as an attribute.
UNMODELLED: dict[tuple[str, str], str] = {}

# Spec examples the SDK's models reject when validating strictly; we parse them leniently
# (``model_construct``) for the field cross-check. Our decoder takes them as sent.
SDK_REJECTS = {
    # An assistant content part typed "audio" with a "format": the SDK allows only
    # output_text/output_audio in assistant messages (servers do send "audio").
    ("ga", "conversation.item.retrieved"): "content part type 'audio'",
    # An assistant content part typed "text": same restriction.
    ("ga", "response.output_item.done"): "content part type 'text'",
    # No "usage": the SDK requires it, the beta spec's example (and older servers) omit it.
    ("beta", "conversation.item.input_audio_transcription.completed"): "no usage",
    # No "client_secret": the SDK requires it in the session, the spec's example omits it.
    ("beta", "transcription_session.updated"): "no client_secret",
    ("ga", "transcription_session.updated"): "no client_secret",
}


# --- the official catalogue -----------------------------------------------------------------


def _union_members(union: Any) -> list[type[BaseModel]]:
    """The models of an SDK union, which may be ``Annotated[Union[...], ...]``."""
    origin = typing.get_origin(union)
    if origin is typing.Annotated:
        return _union_members(typing.get_args(union)[0])
    if origin in (typing.Union, types.UnionType):
        return [m for arg in typing.get_args(union) for m in _union_members(arg)]
    assert isinstance(union, type) and issubclass(union, BaseModel), union
    return [union]


def _wire_type(model: type[BaseModel]) -> str:
    hint = model.model_fields["type"].annotation
    assert typing.get_origin(hint) is typing.Literal, (model, hint)
    (name,) = typing.get_args(hint)
    assert isinstance(name, str)
    return name


UNIONS = {"ga": ga_types.RealtimeServerEvent, "beta": beta_types.RealtimeServerEvent}
OFFICIAL: dict[str, dict[str, type[BaseModel]]] = {
    dialect: {_wire_type(m): m for m in _union_members(union)} for dialect, union in UNIONS.items()
}
CATALOGUES = {"ga": GA_SERVER_EVENTS, "beta": BETA_SERVER_EVENTS}
ADAPTERS = {dialect: TypeAdapter(union) for dialect, union in UNIONS.items()}


def _dialect_of(dialect: str, event_type: str) -> str:
    """The dialect whose SDK union defines ``event_type`` (the GA spec has a beta example)."""
    if event_type in OFFICIAL[dialect]:
        return dialect
    (other,) = (d for d in OFFICIAL if event_type in OFFICIAL[d])
    return other


@pytest.mark.parametrize(("dialect", "expected"), [("ga", 46), ("beta", 34)])
def test_typed_classes_cover_the_official_union_exactly(dialect: str, expected: int) -> None:
    official = set(OFFICIAL[dialect])
    registered = set(_EVENT_CLASSES)
    missing = sorted(official - registered)
    extra = sorted((registered & CATALOGUES[dialect]) - official)
    assert not missing and not extra, (
        f"{dialect}: the wire types with a typed class differ from the openai package's "
        f"RealtimeServerEvent ({len(official)} types): missing {missing}, extra {extra}. "
        + NEWER_OPENAI
    )
    assert len(official) == expected, f"the {dialect} union now has {len(official)} types. " + (
        NEWER_OPENAI
    )


def test_no_typed_class_outside_the_official_unions() -> None:
    extra = sorted(set(_EVENT_CLASSES) - set(OFFICIAL["ga"]) - set(OFFICIAL["beta"]))
    assert not extra, f"typed classes for types no openai union has: {extra}"
    assert GenericEvent not in _EVENT_CLASSES.values()
    assert _EVENT_CLASSES  # else the all() below would pass on nothing
    assert all(issubclass(cls, ServerEvent) for cls in _EVENT_CLASSES.values())


# --- field names: every official field is declared ------------------------------------------


def _official_models(tp: Any) -> list[type[BaseModel]]:
    """The SDK models an annotation holds: directly, in a union or in a list.

    Maps (``Dict[str, ...]``) are not entered: we keep them as dicts.
    """
    origin = typing.get_origin(tp)
    if origin is typing.Annotated:
        return _official_models(typing.get_args(tp)[0])
    if origin in (typing.Union, types.UnionType, list):
        return [m for arg in typing.get_args(tp) for m in _official_models(arg)]
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return [tp]
    return []


def _our_model(tp: Any) -> type[Model] | None:
    """The model one of our annotations holds: directly, in a union or in a list."""
    if isinstance(tp, type) and issubclass(tp, Model):
        return tp
    found = {m for arg in typing.get_args(tp) if (m := _our_model(arg)) is not None}
    assert len(found) <= 1, tp
    return found.pop() if found else None


def _undeclared(
    official: list[type[BaseModel]], ours: type[Model], path: str, seen: set[Any]
) -> list[str]:
    """Official fields (recursively) that ``ours`` does not declare or leaves untyped."""
    problems = []
    hints = typing.get_type_hints(ours)
    declared = set(wire_fields(ours))
    for model in official:
        for name, info in model.model_fields.items():
            wire = info.alias or name
            where = f"{path}.{wire}"
            if wire not in declared:
                if (ours.__name__, wire) not in UNMODELLED:
                    problems.append(f"{where}: {ours.__name__} does not declare {wire!r}")
                continue
            nested = _official_models(info.annotation)
            if not nested:
                continue
            mine = _our_model(hints[wire])
            if mine is None:
                if (ours.__name__, wire) not in UNMODELLED:
                    names = sorted({m.__name__ for m in nested})
                    problems.append(f"{where}: the SDK nests {names}, {ours.__name__} is untyped")
                continue
            key = (frozenset(nested), mine)
            if key not in seen:
                seen.add(key)
                problems += _undeclared(nested, mine, where, seen)
    return problems


def _official_params() -> list[Any]:
    return [
        pytest.param(dialect, name, model, id=f"{dialect}:{name}")
        for dialect, models in OFFICIAL.items()
        for name, model in sorted(models.items())
    ]


@pytest.mark.parametrize(("dialect", "name", "official"), _official_params())
def test_every_official_field_is_declared(
    dialect: str, name: str, official: type[BaseModel]
) -> None:
    ours = _EVENT_CLASSES[name]
    problems = _undeclared([official], ours, name, set())
    assert not problems, (
        f"{dialect} {name} ({official.__name__} vs {ours.__name__}): "
        + "; ".join(problems)
        + ". "
        + NEWER_OPENAI
    )


def test_unmodelled_allow_list_is_current() -> None:
    # Every allow-listed field must still be missing from our class, with a reason given.
    models = {cls.__name__: cls for cls in _all_models()}
    for (class_name, wire), reason in UNMODELLED.items():
        assert reason
        assert wire not in wire_fields(models[class_name])


def _all_models() -> set[type[Model]]:
    """Our event classes and every model reachable from their fields."""
    found: set[type[Model]] = set()
    pending: list[type[Model]] = list(_EVENT_CLASSES.values())
    while pending:
        cls = pending.pop()
        if cls not in found:
            found.add(cls)
            hints = typing.get_type_hints(cls)
            pending.extend(m for name in wire_fields(cls) if (m := _our_model(hints[name])))
    return found


@pytest.mark.parametrize(
    "module",
    [
        realtime_sync._objects,
        realtime_sync._session_objects,
        realtime_sync._item_objects,
        realtime_sync._server_events,
    ],
)
def test_classes_follow_the_conventions(module: types.ModuleType) -> None:
    """Frozen keyword-only attrs models; every field annotated, without a default, and
    followed by a one-line docstring."""
    tree = ast.parse(inspect.getsource(module))
    classes = [node for node in tree.body if isinstance(node, ast.ClassDef)]
    assert classes
    for node in classes:
        assert "@frozen(kw_only=True)" in [f"@{ast.unparse(d)}" for d in node.decorator_list]
        cls = getattr(module, node.name)
        assert issubclass(cls, Model) and cls.__doc__, node.name
        body = node.body
        for n, statement in enumerate(body):
            if not isinstance(statement, ast.AnnAssign):
                continue
            name = ast.unparse(statement.target)
            assert statement.value is None or name == "decode_error", (node.name, name)
            doc = body[n + 1] if n + 1 < len(body) else None
            assert isinstance(doc, ast.Expr) and isinstance(doc.value, ast.Constant), (
                f"{node.name}.{name} has no docstring"
            )
            assert isinstance(doc.value.value, str) and "\n" not in doc.value.value.strip(), (
                f"{node.name}.{name}: the docstring is not one line"
            )
    exported = set(module.__all__)
    public = {node.name for node in classes if not node.name.startswith("_")}
    assert public <= exported
    assert exported <= set(realtime_sync.events.__all__)


def test_every_model_is_exported() -> None:
    for cls in _all_models() | {GenericEvent}:
        if not cls.__name__.startswith("_"):
            assert getattr(realtime_sync.events, cls.__name__) is cls


# --- real examples decode to typed classes --------------------------------------------------


# A missing or empty fixture is an error at collection, never a skip.
def _read_json(name: str) -> Any:
    return json.loads((CONFORMANCE / name).read_text(encoding="utf-8"))


def _read_jsonl(name: str) -> list[dict[str, Any]]:
    path = CONFORMANCE / name
    lines = [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    assert lines, f"{path} holds no events"
    return [json.loads(line) for line in lines]


EXAMPLES = _read_json("openapi_realtime_examples.json")


def _spec_defect(dialect: str, name: str, payload: dict[str, Any]) -> bool:
    """True for the examples whose ``type`` is not their event (the file's own notes)."""
    if payload["type"] == name:
        return False
    notes = EXAMPLES["_source"]["notes"][dialect]
    assert any("spec defect" in note and repr(payload["type"]) in note for note in notes.values())
    return True


def _example_params() -> list[Any]:
    return [
        pytest.param(dialect, name, payload, id=f"{dialect}:{name}")
        for dialect, group in (("ga", EXAMPLES["server"]), ("beta", EXAMPLES["beta"]["server"]))
        for name, payload in group.items()
        if not _spec_defect(dialect, name, payload)
    ]


def _trace_params() -> list[Any]:
    params = []
    for file in (
        "beta_text_response.jsonl",
        "azure_beta_session_created_updated.jsonl",
        "error_events.jsonl",
    ):
        for n, line in enumerate(_read_jsonl(file)):
            payload = line["event"] if "_source" in line else line
            params.append(pytest.param(payload, id=f"{file}:{n}:{payload['type']}"))
    return params


def assert_typed(obj: Model, path: str) -> None:
    """Every nested JSON object ``obj`` holds became the model its field declares."""
    hints = typing.get_type_hints(type(obj))
    for name in wire_fields(type(obj)):
        model = _our_model(hints[name])
        if model is None:
            continue
        sent = obj.to_dict().get(name)  # plain JSON (raw is a read-only view)
        value = getattr(obj, name)
        if isinstance(sent, dict):
            assert isinstance(value, model), f"{path}.{name}: {type(value).__name__}"
            assert value.raw == sent
            assert_typed(value, f"{path}.{name}")
        elif isinstance(sent, list):
            assert len(value) == len(sent)
            for n, (item, sent_item) in enumerate(zip(value, sent, strict=True)):
                if isinstance(sent_item, dict):
                    assert isinstance(item, model), f"{path}.{name}[{n}]"
                    assert_typed(item, f"{path}.{name}[{n}]")
        elif sent is None:
            assert value is None


def assert_decodes_typed(payload: dict[str, Any]) -> Any:
    event = decode_payload(payload)
    cls = _EVENT_CLASSES.get(payload["type"])
    assert cls is not None, f"no typed class for {payload['type']!r}"
    assert type(event) is cls, getattr(event, "decode_error", None)
    assert not isinstance(event, GenericEvent)
    assert event.raw == payload
    assert event.to_dict() == payload
    assert_typed(event, payload["type"])
    assert decode_event(json.dumps(payload)) == event
    return event


@pytest.mark.parametrize(("dialect", "name", "payload"), _example_params())
def test_spec_example_decodes_to_its_typed_class(
    dialect: str, name: str, payload: dict[str, Any]
) -> None:
    event = assert_decodes_typed(payload)
    assert _EVENT_CLASSES[name] is type(event)


@pytest.mark.parametrize("payload", _trace_params())
def test_trace_event_decodes_to_its_typed_class(payload: dict[str, Any]) -> None:
    assert_decodes_typed(payload)


def _example(dialect: str, name: str) -> dict[str, Any]:
    group = EXAMPLES["server"] if dialect == "ga" else EXAMPLES["beta"]["server"]
    payload: dict[str, Any] = group[name]
    return payload


def test_ga_examples_expose_typed_nested_objects() -> None:
    done = decode_payload(_example("ga", "response.done"))
    assert isinstance(done.response.usage, Usage)
    assert done.response.usage.total_tokens == 253
    assert done.response.usage.input_token_details.cached_tokens_details.text_tokens == 64
    assert done.response.usage.output_token_details.audio_tokens == 91
    assert done.response.audio.output.voice == "alloy"
    assert done.response.audio.output.format.rate == 24000
    assert done.response.output[0].content[0].transcript.startswith("Loud and clear!")

    session = decode_payload(_example("ga", "session.updated")).session
    assert isinstance(session.audio, SessionAudio)
    assert isinstance(session.audio.output, AudioOutput)
    assert session.audio.output.voice == "marin"
    assert isinstance(session.audio.input.format, AudioFormat)
    assert session.audio.input.format.type == "audio/pcm"
    assert isinstance(session.audio.input.turn_detection, TurnDetection)
    assert session.audio.input.turn_detection.silence_duration_ms == 200
    assert session.audio.input.transcription is None
    assert session.tools[0].name == "display_color_palette"
    assert session.tools[0].parameters["required"] == ["theme", "colors"]
    assert session.tool_choice == "auto"

    item = decode_payload(_example("ga", "conversation.item.done")).item
    assert isinstance(item, ConversationItem)
    assert isinstance(item.content[0], ContentPart)
    assert item.content[0].transcript.startswith("Oh, I can hear you")
    retrieved = decode_payload(_example("ga", "conversation.item.retrieved")).item
    assert retrieved.content[0].format == "pcm16"

    limits = decode_payload(_example("ga", "rate_limits.updated")).rate_limits
    assert isinstance(limits[0], RateLimit)
    assert limits[0].remaining == 999

    transcribed = decode_payload(
        _example("ga", "conversation.item.input_audio_transcription.completed")
    )
    assert transcribed.usage.type == "tokens"
    assert transcribed.usage.input_token_details.audio_tokens == 13
    failed = decode_payload(_example("ga", "conversation.item.input_audio_transcription.failed"))
    assert failed.error.code == "audio_unintelligible"
    segment = decode_payload(_example("ga", "conversation.item.input_audio_transcription.segment"))
    assert (segment.speaker, segment.start, segment.end) == ("spk_1", 0.0, 0.4)
    assert decode_payload(_example("ga", "conversation.created")).conversation.id == "conv_001"


def test_beta_examples_expose_typed_nested_objects() -> None:
    created = decode_payload(_example("beta", "session.created")).session
    assert isinstance(created.turn_detection, TurnDetection)
    assert created.turn_detection.type == "server_vad"
    assert created.turn_detection.prefix_padding_ms == 300
    assert created.audio is None
    updated = decode_payload(_example("beta", "session.updated")).session
    assert updated.turn_detection is None
    assert updated.input_audio_transcription.model == "whisper-1"
    assert updated.max_response_output_tokens == 200

    transcription = decode_payload(_example("beta", "transcription_session.updated")).session
    assert transcription.input_audio_transcription.model == "gpt-4o-transcribe"
    assert transcription.turn_detection.silence_duration_ms == 500
    assert transcription.input_audio_noise_reduction.type == "near_field"
    assert transcription.include == ["item.input_audio_transcription.avg_logprob"]

    done = decode_payload(_example("beta", "response.done"))
    assert done.response.usage.input_token_details.cached_tokens_details.audio_tokens == 256
    assert done.response.output[0].content[0].text == "Sure, how can I assist you today?"
    retrieved = decode_payload(_example("beta", "conversation.item.retrieved"))
    assert retrieved.item.content[0].transcript == "hello how are you"
    assert decode_payload(_example("beta", "rate_limits.updated")).rate_limits[1].remaining == (
        49950
    )


def test_dtmf_spec_example_decodes_once_its_type_is_repaired() -> None:
    defective = _example("ga", "input_audio_buffer.dtmf_event_received")
    payload = {**defective, "type": defective["type"].strip()}
    event = assert_decodes_typed(payload)
    assert isinstance(event, DtmfEventReceivedEvent)
    assert (event.event, event.received_at) == ("9", 1763605109)
    _cross_check(ADAPTERS["ga"].validate_python(payload), event, "dtmf")


# --- the SDK parses the same examples: every field it parsed is ours ------------------------


def _cross_check(official: BaseModel, ours: Model, path: str) -> None:
    """Every declared field the SDK parsed exists on our object, with the same value."""
    declared = set(wire_fields(type(ours)))
    for name, info in type(official).model_fields.items():
        if name not in official.model_fields_set:
            continue
        wire = info.alias or name
        where = f"{path}.{wire}"
        assert wire in declared, f"{where}: the SDK parsed it, {type(ours).__name__} lacks it"
        theirs, mine = getattr(official, name), getattr(ours, wire)
        if isinstance(theirs, BaseModel):
            assert isinstance(mine, Model), f"{where}: {type(mine).__name__}, not a model"
            _cross_check(theirs, mine, where)
        elif isinstance(theirs, list):
            assert len(mine) == len(theirs), where
            for n, (their_item, my_item) in enumerate(zip(theirs, mine, strict=True)):
                if isinstance(their_item, BaseModel):
                    assert isinstance(my_item, Model), f"{where}[{n}]"
                    _cross_check(their_item, my_item, f"{where}[{n}]")
                else:
                    assert my_item == their_item, f"{where}[{n}]"
        else:
            assert mine == theirs, f"{where}: {mine!r} != {theirs!r}"


def _sdk_parse(dialect: str, payload: dict[str, Any]) -> tuple[Any, ValidationError | None]:
    """The SDK's strict parse of ``payload``, or None and why it refused."""
    try:
        return ADAPTERS[dialect].validate_python(payload), None
    except ValidationError as exc:
        return None, exc


@pytest.mark.parametrize(("dialect", "name", "payload"), _example_params())
def test_sdk_parses_spec_example_into_the_same_fields(
    dialect: str, name: str, payload: dict[str, Any]
) -> None:
    union_dialect = _dialect_of(dialect, name)
    official, rejection = _sdk_parse(union_dialect, payload)
    if official is None:
        assert (dialect, name) in SDK_REJECTS, f"the SDK rejects the example: {rejection}"
        official = OFFICIAL[union_dialect][name].model_construct(**payload)
    assert _wire_type(type(official)) == name
    _cross_check(official, decode_payload(payload), name)


@pytest.mark.parametrize("payload", _trace_params())
def test_sdk_parses_trace_event_into_the_same_fields(payload: dict[str, Any]) -> None:
    # The traces are beta; elided objects ({"__elided__": ...}) are not valid for the SDK.
    model = OFFICIAL["beta"][payload["type"]]
    official, rejection = _sdk_parse("beta", payload)
    if official is None:
        assert "__elided__" in json.dumps(payload), rejection
        official = model.model_construct(**payload)
    assert type(official) is model
    _cross_check(official, decode_payload(payload), payload["type"])
