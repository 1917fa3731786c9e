"""What we send is refused at the call site when it is not valid: nothing half-sent.

``encode_client_event`` (what ``send()`` encodes with) behaves the same with the standard
library and with orjson; ``input_audio_buffer.append`` refuses PCM16 audio that is not whole
samples before anything goes out.
"""

from __future__ import annotations

import base64
import collections
import dataclasses
import datetime
import enum
import inspect
import json
import math
import sys
import types
import uuid
from collections.abc import Mapping
from typing import Any

import pytest

from realtime_sync import InvalidEventError
from realtime_sync import _json as json_module
from realtime_sync._json import MAX_DEPTH, encode_client_event
from realtime_sync._resources import MAX_APPEND_BYTES, InputAudioBufferResource
from realtime_sync.events import (
    InputAudioBufferAppendEvent,
    Session,
    SessionUpdateEvent,
    decode_payload,
)

_ORJSON_ENCODE = getattr(json_module, "_encode_with_orjson", None)


@pytest.fixture(
    params=[
        pytest.param(None, id="stdlib"),
        pytest.param(
            _ORJSON_ENCODE,
            id="orjson",
            marks=pytest.mark.skipif(_ORJSON_ENCODE is None, reason="orjson is not installed"),
        ),
    ]
)
def backend(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run the test once per JSON backend: the standard library, and orjson if installed."""
    monkeypatch.setattr(json_module, "_fast_encode", request.param)
    return str(request.node.callspec.id)


def refused(event: object, **options: Any) -> str:
    with pytest.raises(InvalidEventError) as caught:
        encode_client_event(event, **options)
    return str(caught.value)


def session_update(**session: Any) -> dict[str, Any]:
    return {"type": "session.update", "session": session}


class Colour(enum.Enum):
    RED = "red"


class Level(enum.IntEnum):
    HIGH = 3


class Key(str):
    pass


class Ratio(float):
    pass


@dataclasses.dataclass
class Point:
    x: int


# --- what is accepted, and written the same by both backends ------------------------------------


def test_compact_utf8_json(backend: str) -> None:
    event = {
        "type": "conversation.item.create",
        "event_id": "evt_1",
        "item": {"type": "message", "content": [{"type": "input_text", "text": 'héllo ✓ \n"'}]},
    }
    data = encode_client_event(event)
    assert isinstance(data, bytes)
    assert data == json.dumps(event, ensure_ascii=False, separators=(",", ":")).encode()


@pytest.mark.parametrize(
    ("value", "written"),
    [
        pytest.param([1, -2, 3.5, 1e300, True, False, None], None, id="scalars"),
        pytest.param([2**70, -(2**70)], None, id="integers-over-64-bits"),
        pytest.param((1, (2, "x")), [1, [2, "x"]], id="tuples"),
        pytest.param(collections.OrderedDict(a=1), {"a": 1}, id="dict-subclass"),
        pytest.param(types.MappingProxyType({"k": "v"}), {"k": "v"}, id="other-mapping"),
        pytest.param([Colour.RED, Level.HIGH], ["red", 3], id="enums"),
        pytest.param(uuid.UUID(int=5), str(uuid.UUID(int=5)), id="uuid"),
        pytest.param({Key("k"): "v"}, {"k": "v"}, id="key-of-a-str-subclass"),
        pytest.param(Ratio(0.5), 0.5, id="float-subclass"),
        pytest.param([[[[[[[[[[{"x": 1}]]]]]]]]]], None, id="nested"),
    ],
)
def test_accepted_values(backend: str, value: Any, written: Any) -> None:
    data = encode_client_event(session_update(v=value))
    assert json.loads(data) == session_update(v=value if written is None else written)


def test_nesting_up_to_the_limit_is_accepted(backend: str) -> None:
    value: Any = "leaf"
    for _ in range(MAX_DEPTH - 2):  # the event and its session are two levels
        value = [value]
    data = encode_client_event(session_update(v=value))
    assert data.count(b"[") == MAX_DEPTH - 2


def test_models_and_read_only_views_are_accepted(backend: str) -> None:
    typed = InputAudioBufferAppendEvent.build(audio="AAAA", event_id="e1")
    assert json.loads(encode_client_event(typed)) == typed.to_dict()
    received = decode_payload(
        {"type": "conversation.item.added", "item": {"type": "message", "content": [{"x": 1}]}}
    )
    event = {"type": "conversation.item.create", "item": received.raw["item"]}
    assert json.loads(encode_client_event(event))["item"] == received.to_dict()["item"]
    nested = {"type": "session.update", "session": Session.from_dict({"voice": "marin"})}
    assert json.loads(encode_client_event(nested)) == session_update(voice="marin")
    assert json.loads(encode_client_event(received.raw)) == received.to_dict()
    update = SessionUpdateEvent.build(session={"tools": [{"type": "function"}]})
    assert json.loads(encode_client_event(update)) == update.to_dict()


def test_event_id_is_added_only_when_missing(backend: str) -> None:
    for event in ({"type": "x"}, {"type": "x", "event_id": None}, {"type": "x", "event_id": ""}):
        assert json.loads(encode_client_event(event, event_id="gen_1"))["event_id"] == "gen_1"
        assert "event_id" not in event or not event["event_id"]  # the caller's dict untouched
    mine = {"type": "x", "event_id": "mine"}
    assert json.loads(encode_client_event(mine, event_id="gen_2"))["event_id"] == "mine"
    assert json.loads(encode_client_event({"type": "x"})) == {"type": "x"}


def test_null_values_are_fine(backend: str) -> None:
    # orjson writes NaN as null: a real null must not be mistaken for one.
    event = session_update(turn_detection=None, tools=[{"x": None}])
    assert json.loads(encode_client_event(event)) == event


# --- what is refused, named by path, the same by both backends ---------------------------------


@pytest.mark.parametrize(
    ("event", "message"),
    [
        pytest.param(
            session_update(tools=[{"parameters": {"x": object()}}]),
            "session.tools[0].parameters.x: object of type 'object' is not JSON serializable",
            id="object",
        ),
        pytest.param(
            session_update(modalities={"text"}),
            "session.modalities: object of type 'set' is not JSON serializable (use a list)",
            id="set",
        ),
        pytest.param(
            {"type": "input_audio_buffer.append", "audio": b"\x00\x01"},
            "audio: bytes is not JSON: send binary data as base64 text "
            "(base64.b64encode(data).decode('ascii'))",
            id="bytes",
        ),
        pytest.param(
            {"type": "input_audio_buffer.append", "audio": bytearray(2)},
            "audio: bytearray is not JSON",
            id="bytearray",
        ),
        pytest.param(
            session_update(temperature=math.nan),
            "session.temperature: nan is not valid JSON (JSON has no NaN or infinity)",
            id="nan",
        ),
        pytest.param(
            session_update(speed=[1.0, math.inf]),
            "session.speed[1]: inf is not valid JSON",
            id="inf",
        ),
        pytest.param(
            {"type": "x", "v": {"w": -math.inf}},
            "v.w: -inf is not valid JSON",
            id="minus-inf",
        ),
        pytest.param(
            {"type": "x", "v": Ratio("nan")},
            "v: nan is not valid JSON",
            id="nan-of-a-float-subclass",
        ),
        pytest.param(
            {"type": "x", "v": Colour.RED, "w": enum.Enum("Bad", {"A": math.nan}).A},
            "w: nan is not valid JSON",
            id="nan-in-an-enum",
        ),
        pytest.param(
            {"type": "conversation.item.create", "item": {"content": [{"text": "a\ud800b"}]}},
            "item.content[0].text: string has a lone surrogate (U+D800 at index 1), which UTF-8 "
            "cannot encode",
            id="surrogate-in-a-value",
        ),
        pytest.param(
            {"type": "x", "v": [Key("ok"), Key("a\udc00")]},
            "v[1]: string has a lone surrogate (U+DC00 at index 1)",
            id="surrogate-in-a-str-subclass",
        ),
        pytest.param(
            session_update(metadata={"k\udfff": 1}),
            "session.metadata: key 'k\\udfff' has a lone surrogate (U+DFFF at index 1)",
            id="surrogate-in-a-key",
        ),
        pytest.param(
            {"type": "x\ud83d"},
            "type: string has a lone surrogate (U+D83D at index 1)",
            id="surrogate-in-the-type",
        ),
        pytest.param(
            session_update(metadata={1: "one"}),
            "session.metadata: key 1 of type 'int' is not a string (JSON object keys are strings)",
            id="int-key",
        ),
        pytest.param(
            {"type": "x", None: 1},
            "event: key None of type 'NoneType' is not a string",
            id="none-key-at-the-top",
        ),
        pytest.param(
            session_update(metadata={(1, 2): "pair"}),
            "session.metadata: key (1, 2) of type 'tuple' is not a string",
            id="tuple-key",
        ),
        pytest.param(
            {"type": "x", "when": datetime.date(2026, 1, 2)},
            "when: object of type 'date' is not JSON serializable",
            id="date",
        ),
        pytest.param(
            {"type": "x", "point": Point(1)},
            "point: object of type 'Point' is not JSON serializable",
            id="dataclass",
        ),
        pytest.param(
            {"type": "x", "odd key": {"a.b": [0, {"c": object()}]}},
            "['odd key']['a.b'][1].c: object of type 'object'",
            id="keys-that-are-not-names",
        ),
    ],
)
def test_refused_values_are_named(backend: str, event: Any, message: str) -> None:
    assert refused(event).startswith(message)


def test_the_first_problem_in_order_is_named(backend: str) -> None:
    event = {"type": "x", "a": [1, object()], "b": math.nan, "c": {2: 3}}
    assert refused(event).startswith("a[1]: object of type 'object'")


def test_too_deep_or_circular_is_refused(backend: str) -> None:
    value: Any = "leaf"
    for _ in range(MAX_DEPTH):
        value = {"v": value}
    assert "nested more than 500 levels deep (or circular)" in refused(session_update(v=value))
    loop: list[Any] = []
    loop.append(loop)
    message = refused(session_update(loop=loop))
    assert message.startswith("session.loop[0][0][0]") and "(or circular)" in message


def test_running_out_of_stack_is_a_refusal_too(backend: str) -> None:
    value: Any = "leaf"
    for _ in range(300):  # within MAX_DEPTH: only a short stack makes it too deep
        value = [value]
    depth = len(inspect.stack(0))
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(depth + 150)
    try:
        message = refused(session_update(v=value))
    finally:
        sys.setrecursionlimit(limit)
    assert message == "event: nested too deeply to encode here"


@pytest.mark.parametrize(
    ("event", "message"),
    [
        pytest.param("{}", "not str (decode JSON text with json.loads first)", id="str"),
        pytest.param(b"{}", "not bytes", id="bytes"),
        pytest.param([{"type": "x"}], "not list", id="list"),
        pytest.param(None, "not None", id="none"),
        pytest.param(3, "not int", id="int"),
        pytest.param({"event_id": "e"}, "needs a non-empty string 'type'", id="no-type"),
        pytest.param({"type": 5}, "(got 5)", id="int-type"),
        pytest.param({"type": None}, "(got none)", id="null-type"),
        pytest.param({"type": ""}, "(got '')", id="empty-type"),
        pytest.param({"type": "x", "event_id": 7}, "event_id: must be a string, not int", id="id"),
    ],
)
def test_what_is_not_an_event_is_refused(backend: str, event: Any, message: str) -> None:
    assert message in refused(event)


def test_refusals_mask_secrets(backend: str) -> None:
    from realtime_sync._secrets import register_secret

    secret = "rs-outgoing-secret-9a8b7c6d5e"
    register_secret(secret)
    assert secret not in refused({"type": secret.encode()})
    assert secret not in refused({"type": "x", "m": {1: secret}, secret: object()})
    assert secret not in refused(session_update(metadata={(secret,): 1}))


def test_backends_agree_on_every_case() -> None:
    """Without orjson this compares the standard library with itself: still runs the cases."""
    cases: list[Any] = [
        session_update(v=[1, 2.5, "x", None, True, 2**70, (3,)]),
        session_update(v=math.nan),
        session_update(v={1: 2}),
        session_update(v="\ud800"),
        session_update(v=object()),
        session_update(v=Ratio(2.0)),
        {Key("type"): "x"},
    ]
    encoders = [json_module._encode_with_stdlib]
    if _ORJSON_ENCODE is not None:
        encoders.append(_ORJSON_ENCODE)
    for case in cases:
        outcomes = set()
        for encode in encoders:
            try:
                outcomes.add(("ok", json.dumps(json.loads(encode(case)), sort_keys=True)))
            except InvalidEventError as exc:
                outcomes.add(("refused", str(exc)))
        assert len(outcomes) == 1, (case, outcomes)


def test_nan_beside_a_long_text_is_found(backend: str) -> None:
    image = "data:image/png;base64," + "A" * 100_000
    content = [{"type": "input_image", "image_url": image}]
    item = {"type": "conversation.item.create", "item": {"content": content}}
    assert json.loads(encode_client_event(item)) == item
    assert refused({**item, "v": [math.nan]}).startswith("v[0]: nan is not valid JSON")


def test_a_big_append_is_encoded_without_reading_the_audio_in_python(backend: str) -> None:
    audio = base64.b64encode(bytes(range(256)) * 4096 * 4).decode()  # 4 MiB of audio
    event = {"type": "input_audio_buffer.append", "audio": audio, "event_id": "e"}
    data = encode_client_event(event)
    assert len(data) == len(audio) + len(
        b'{"type":"input_audio_buffer.append","audio":"","event_id":"e"}'
    )


# --- PCM16 appends are whole samples --------------------------------------------------------


class StubClient:
    """What the audio resource uses of a client: its session, and send()."""

    def __init__(self, session: Session | None) -> None:
        self._session = session
        self.sent: list[Mapping[str, Any]] = []

    def send(self, event: Mapping[str, Any]) -> str:
        self.sent.append(event)
        return str(event.get("event_id") or f"evt_{len(self.sent)}")


def buffer(session: Session | None) -> tuple[InputAudioBufferResource, StubClient]:
    client = StubClient(session)
    return InputAudioBufferResource(client), client  # type: ignore[arg-type]


def ga_session(audio_format: str | None) -> Session:
    fmt = None if audio_format is None else {"type": audio_format}
    return Session.from_dict({"type": "realtime", "audio": {"input": {"format": fmt}}})


def beta_session(audio_format: str | None) -> Session:
    return Session.from_dict({"input_audio_format": audio_format})


PCM16_SESSIONS = [
    pytest.param(None, id="no-session"),
    pytest.param(ga_session("audio/pcm"), id="ga-pcm"),
    pytest.param(beta_session("pcm16"), id="beta-pcm16"),
    pytest.param(ga_session(None), id="ga-no-format"),
    pytest.param(beta_session(None), id="beta-no-format"),
    pytest.param(
        Session.from_dict({"type": "realtime", "audio": {"output": {}}}), id="ga-no-input"
    ),
]
ONE_BYTE_SESSIONS = [
    pytest.param(ga_session("audio/pcmu"), id="ga-pcmu"),
    pytest.param(ga_session("audio/pcma"), id="ga-pcma"),
    pytest.param(beta_session("g711_ulaw"), id="beta-ulaw"),
    pytest.param(beta_session("g711_alaw"), id="beta-alaw"),
]


@pytest.mark.parametrize("session", PCM16_SESSIONS)
@pytest.mark.parametrize(
    "audio",
    [
        pytest.param(b"\x00" * 4801, id="bytes"),
        pytest.param(bytearray(3), id="bytearray"),
        pytest.param(memoryview(b"\x00" * 5), id="memoryview"),
        pytest.param("AAAA", id="base64-3-bytes"),
        pytest.param("AA==", id="base64-1-byte"),
        pytest.param("AAAAA", id="five-characters-not-base64"),
        pytest.param(base64.b64encode(b"\x00" * 4801).decode(), id="base64-4801-bytes"),
        pytest.param(base64.encodebytes(b"\x00" * 4801).decode(), id="line-wrapped-base64"),
    ],
)
def test_odd_pcm16_audio_is_refused_and_nothing_sent(session: Session | None, audio: Any) -> None:
    resource, client = buffer(session)
    with pytest.raises(InvalidEventError, match=r"^audio: "):
        resource.append(audio=audio)
    assert client.sent == []


@pytest.mark.parametrize("session", PCM16_SESSIONS)
@pytest.mark.parametrize(
    "audio",
    [
        b"\x00\x01" * 2400,
        memoryview(bytearray(8)),
        "AAAAAA==",
        "AAA=",
        "AAAAAA",
        "AAAAAAAA",
        base64.encodebytes(b"\x00" * 4800).decode(),
    ],
)
def test_whole_pcm16_samples_are_sent(session: Session | None, audio: Any) -> None:
    resource, client = buffer(session)
    assert resource.append(audio=audio, event_id="a1") == "a1"
    (sent,) = client.sent
    assert sent["type"] == "input_audio_buffer.append"
    text = "".join(sent["audio"].split())
    decoded = base64.b64decode(text + "=" * (-len(text) % 4))  # unpadded is fine too
    assert len(decoded) % 2 == 0


@pytest.mark.parametrize("session", [*ONE_BYTE_SESSIONS, pytest.param(ga_session("audio/x-new"))])
def test_one_byte_formats_take_any_length(session: Session) -> None:
    resource, client = buffer(session)
    resource.append(audio=b"\x7f" * 4801)
    resource.append(audio="AAAA")
    assert [len(base64.b64decode(event["audio"])) for event in client.sent] == [4801, 3]


def test_the_message_names_the_format() -> None:
    resource, _ = buffer(ga_session("audio/pcm"))
    with pytest.raises(InvalidEventError) as caught:
        resource.append(audio=b"\x00" * 3)
    assert str(caught.value) == (
        "audio: 3 bytes is not a whole number of 16-bit samples; the session's input format "
        "(audio/pcm) takes 2 bytes per sample"
    )
    resource, _ = buffer(None)
    with pytest.raises(InvalidEventError, match=r"decoded from the base64 text.*assumed PCM16"):
        resource.append(audio="AAAA")


def test_split_audio_is_checked_before_anything_is_sent() -> None:
    resource, client = buffer(beta_session("pcm16"))
    odd = b"\x00" * (MAX_APPEND_BYTES + 1)  # two events' worth, one byte too many
    with pytest.raises(InvalidEventError):
        resource.append(audio=odd, event_id="big")
    text = base64.b64encode(odd).decode()
    with pytest.raises(InvalidEventError):
        resource.append(audio=text, event_id="big")
    with pytest.raises(InvalidEventError, match="event_id"):
        resource.append(audio=odd[:-1], event_id=7)  # type: ignore[arg-type]
    assert client.sent == []
    assert resource.append(audio=odd[:-1], event_id="big") == "big.2"
    assert [event["event_id"] for event in client.sent] == ["big.1", "big.2"]


def test_five_characters_are_never_base64_whatever_the_format() -> None:
    resource, client = buffer(ga_session("audio/pcmu"))
    with pytest.raises(InvalidEventError, match="5 characters is not a length base64"):
        resource.append(audio="AAAAA")
    assert client.sent == []
