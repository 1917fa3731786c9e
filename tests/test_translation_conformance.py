"""Conformance of realtime translation, checked against the official ``openai`` models.

The oracle is the ``openai`` package's ``RealtimeTranslationClientEvent`` and
``RealtimeTranslationServerEvent`` unions, as :mod:`test_conformance` uses the Realtime
ones: our tables must name exactly their event types (a new official event fails here),
each typed class must declare exactly its official model's fields, nested objects included
(a field that disappears, or one we never typed, fails here), and what travels on a real
socket, both ways, must validate strictly with no undeclared key.
"""

from __future__ import annotations

import base64
import json
import typing
from collections.abc import Iterator, Mapping
from typing import Any

import pydantic
import pytest
from conftest import KEY
from openai.types.realtime import (
    RealtimeTranslationClientEvent,
    RealtimeTranslationServerEvent,
    RealtimeTranslationSession,
)
from test_conformance import undeclared_keys

from realtime_sync import ErrorEvent, GenericEvent, RealtimeTranslationClient, ServerEvent
from realtime_sync._models import Model, wire_fields
from realtime_sync._translation_events import (
    TRANSLATION_CLIENT_EVENT_CLASSES,
    TRANSLATION_CLIENT_EVENTS,
    TRANSLATION_SERVER_EVENT_CLASSES,
    TRANSLATION_SERVER_EVENTS,
    TranslationSession,
    decode_translation_event,
)
from realtime_sync.testing import LocalRealtimeServer, synthesize_speech

pytestmark = pytest.mark.timeout(60)

WAIT = 5.0


def _members(union: Any) -> dict[str, type[pydantic.BaseModel]]:
    """Event type -> official model, for an (``Annotated``) union of events."""
    if typing.get_origin(union) is typing.Annotated:
        union = typing.get_args(union)[0]
    found = {}
    for model in typing.get_args(union):
        (literal,) = typing.get_args(model.model_fields["type"].annotation)
        found[str(literal)] = model
    return found


OFFICIAL_CLIENT = _members(RealtimeTranslationClientEvent)
OFFICIAL_SERVER = _members(RealtimeTranslationServerEvent)
CLIENT_ADAPTER = pydantic.TypeAdapter(RealtimeTranslationClientEvent)
SERVER_ADAPTER = pydantic.TypeAdapter(RealtimeTranslationServerEvent)


def assert_official(payload: Mapping[str, Any], adapter: pydantic.TypeAdapter[Any]) -> Any:
    """Fail unless ``payload`` validates strictly and declares no key the model lacks."""
    try:
        parsed = adapter.validate_python(payload, strict=True)
    except pydantic.ValidationError as error:
        pytest.fail(f"not a valid official event: {error}\npayload: {payload!r}")
    problems = undeclared_keys(payload, parsed)
    assert not problems, f"undeclared keys: {problems}\npayload: {payload!r}"
    assert parsed.type == payload["type"]
    return parsed


# --- 1. the tables against the official unions ---------------------------------------------


def test_client_events_match_the_official_union() -> None:
    assert len(OFFICIAL_CLIENT) == 3
    assert set(OFFICIAL_CLIENT) == TRANSLATION_CLIENT_EVENTS
    assert set(TRANSLATION_CLIENT_EVENT_CLASSES) == TRANSLATION_CLIENT_EVENTS


def test_server_events_match_the_official_union() -> None:
    assert len(OFFICIAL_SERVER) == 7
    assert set(OFFICIAL_SERVER) == TRANSLATION_SERVER_EVENTS
    # "error" is the Realtime API's own event, decoded by the Realtime classes.
    assert set(TRANSLATION_SERVER_EVENT_CLASSES) == TRANSLATION_SERVER_EVENTS - {"error"}
    assert OFFICIAL_SERVER["error"].__name__ == "RealtimeErrorEvent"


# --- 2. fields, nested objects included ------------------------------------------------------


def _official_fields(model: type[pydantic.BaseModel]) -> set[str]:
    return {info.alias or name for name, info in model.model_fields.items()}


def _nested_official(annotation: Any) -> type[pydantic.BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, pydantic.BaseModel):
        return annotation
    for argument in typing.get_args(annotation):
        found = _nested_official(argument)
        if found is not None:
            return found
    return None


def _nested_ours(cls: type[Model], name: str) -> type[Model] | None:
    hint = typing.get_type_hints(cls)[name]
    for candidate in (hint, *typing.get_args(hint)):
        if isinstance(candidate, type) and issubclass(candidate, Model):
            return candidate
    return None


def _pairs(
    ours: type[Model], official: type[pydantic.BaseModel], path: str
) -> Iterator[tuple[str, type[Model], type[pydantic.BaseModel]]]:
    """Our class and the official model, then the same for every nested object."""
    yield path, ours, official
    for name, info in official.model_fields.items():
        nested_official = _nested_official(info.annotation)
        if nested_official is None or name not in wire_fields(ours):
            continue
        nested_ours = _nested_ours(ours, name)
        assert nested_ours is not None, f"{path}.{name}: ours is not typed as an object"
        yield from _pairs(nested_ours, nested_official, f"{path}.{name}")


SERVER_PAIRS = [
    (f"{event_type}{path}", ours, official)
    for event_type, cls in sorted(TRANSLATION_SERVER_EVENT_CLASSES.items())
    for path, ours, official in _pairs(cls, OFFICIAL_SERVER[event_type], "")
]


@pytest.mark.parametrize(
    ("where", "ours", "official"), SERVER_PAIRS, ids=[pair[0] for pair in SERVER_PAIRS]
)
def test_server_classes_declare_the_official_fields(
    where: str, ours: type[Model], official: type[pydantic.BaseModel]
) -> None:
    assert set(wire_fields(ours)) == _official_fields(official), where


def test_the_session_object_is_covered() -> None:
    paths = {where for where, _, _ in SERVER_PAIRS}
    assert "session.created.session.audio.input.noise_reduction" in paths
    assert "session.created.session.audio.output" in paths
    nested = {where for where, _, _ in _pairs(TranslationSession, RealtimeTranslationSession, "")}
    assert nested == {
        "",
        ".audio",
        ".audio.input",
        ".audio.input.noise_reduction",
        ".audio.input.transcription",
        ".audio.output",
    }


@pytest.mark.parametrize("event_type", sorted(TRANSLATION_CLIENT_EVENT_CLASSES))
def test_client_classes_declare_the_official_fields(event_type: str) -> None:
    cls = TRANSLATION_CLIENT_EVENT_CLASSES[event_type]
    assert event_type == cls.TYPE
    assert set(wire_fields(cls)) == _official_fields(OFFICIAL_CLIENT[event_type])


# --- 3. what travels, both ways --------------------------------------------------------------


@pytest.fixture
def translation(server: LocalRealtimeServer) -> Iterator[RealtimeTranslationClient]:
    client = RealtimeTranslationClient(KEY, url=server.url + "/translations")
    yield client
    client.close(timeout=WAIT)


def test_what_our_client_sends_is_official(
    server: LocalRealtimeServer, translation: RealtimeTranslationClient
) -> None:
    translation.connect(WAIT)
    translation.session.update(
        session={
            "audio": {
                "input": {
                    "transcription": {"model": "gpt-4o-transcribe"},
                    "noise_reduction": {"type": "near_field", "strength": 0.5},
                },
                "output": {"language": "fr"},
            }
        }
    )
    translation.session.update(session={"audio": {"input": {"noise_reduction": None}}})
    translation.append_audio(synthesize_speech("hi"))
    translation.input_audio_buffer.append(audio=base64.b64encode(bytes(480)).decode())
    translation.close_session(WAIT)
    received = server.received
    assert {event["type"] for event in received} == TRANSLATION_CLIENT_EVENTS
    for event in received:
        parsed = assert_official(event, CLIENT_ADAPTER)
        assert type(parsed) is OFFICIAL_CLIENT[event["type"]]


def test_what_the_local_server_sends_is_official(server: LocalRealtimeServer) -> None:
    payloads: list[dict[str, Any]] = []
    client = RealtimeTranslationClient(KEY, url=server.url + "/translations")

    @client.on("*")
    def keep(event: Any) -> None:
        if isinstance(event, ServerEvent):
            payloads.append(event.to_dict())

    try:
        client.connect(WAIT)
        client.session.update(
            session={"audio": {"input": {"transcription": {"model": "gpt-4o-transcribe"}}}}
        )
        client.send({"type": "response.create"})  # refused: an error event
        client.append_audio(synthesize_speech("hello") + bytes(24000) + synthesize_speech("yes"))
        client.close_session(WAIT)
    finally:
        client.close(WAIT)
    assert {p["type"] for p in payloads} == TRANSLATION_SERVER_EVENTS
    for payload in payloads:
        parsed = assert_official(payload, SERVER_ADAPTER)
        assert type(parsed) is OFFICIAL_SERVER[payload["type"]]


# --- 4. decoding -----------------------------------------------------------------------------

EXAMPLES: list[dict[str, Any]] = [
    {
        "type": "session.created",
        "event_id": "event_1",
        "session": {
            "id": "sess_1",
            "type": "translation",
            "model": "gpt-realtime-translate",
            "expires_at": 1790000000,
            "audio": {
                "input": {"noise_reduction": {"type": "far_field"}, "transcription": None},
                "output": {"language": "fr"},
            },
        },
    },
    {"type": "session.closed", "event_id": "event_2"},
    {"type": "session.input_transcript.delta", "event_id": "e", "delta": "Hel", "elapsed_ms": 0},
    {"type": "session.output_transcript.delta", "event_id": "e", "delta": " lo"},
    {
        "type": "session.output_audio.delta",
        "event_id": "e",
        "delta": base64.b64encode(b"\x01\x00\x02\x00").decode(),
        "elapsed_ms": 200,
        "format": "pcm16",
        "sample_rate": 24000,
        "channels": 1,
        "obfuscation": "kept",
    },
    {
        "type": "error",
        "event_id": "e",
        "error": {"type": "invalid_request_error", "code": "x", "message": "m", "param": None},
    },
]


@pytest.mark.parametrize("payload", EXAMPLES, ids=[example["type"] for example in EXAMPLES])
def test_official_events_decode_to_our_classes(payload: dict[str, Any]) -> None:
    assert_official({k: v for k, v in payload.items() if k != "obfuscation"}, SERVER_ADAPTER)
    event = decode_translation_event(json.dumps(payload))
    expected = TRANSLATION_SERVER_EVENT_CLASSES.get(payload["type"], ErrorEvent)
    assert type(event) is expected
    assert event.to_dict() == payload
    if payload["type"] == "session.output_audio.delta":
        assert event.audio == b"\x01\x00\x02\x00"
        assert event.obfuscation == "kept"


def test_a_payload_our_class_cannot_hold_stays_generic() -> None:
    event = decode_translation_event(json.dumps({"type": "session.created", "session": [1]}))
    assert type(event) is GenericEvent
    assert event.decode_error is not None
    assert event.decode_error.startswith("TranslationSessionEvent")
