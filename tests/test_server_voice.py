"""The local server talks back: spoken answers, pacing, input transcription, function calls.

Every server event these tests receive is checked against the official ``openai`` models of
its dialect, strictly and for undeclared keys (the oracle of ``test_conformance``, here for
server events), whether it came over a socket (``LocalRealtimeServer`` and websocket-client)
or in-process (``InProcessTransport`` and ``RealtimeClient``).
"""

from __future__ import annotations

import base64
import json
import math
import threading
import time
import typing
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import pydantic
import pytest
import websocket
from conftest import KEY, user_message
from openai.types.beta.realtime import RealtimeServerEvent as BetaServerEventUnion
from openai.types.realtime import RealtimeServerEvent as GAServerEventUnion
from test_conformance import undeclared_keys

from realtime_sync import RealtimeClient
from realtime_sync.events import ServerEvent
from realtime_sync.testing import (
    InProcessTransport,
    LocalRealtimeServer,
    recognize_speech,
    synthesize_speech,
)
from realtime_sync.testing._simulator import SimulatorOptions

pytestmark = pytest.mark.timeout(30)

DIALECTS = ("ga", "beta")
WAIT = 5.0
Event = dict[str, Any]

# --- the oracle: official server event models ---------------------------------------------


def _members(union: Any) -> dict[str, type[pydantic.BaseModel]]:
    """The event models of an official (``Annotated``) union of server events, by type."""
    if typing.get_origin(union) is typing.Annotated:
        union = typing.get_args(union)[0]
    models: dict[str, type[pydantic.BaseModel]] = {}
    for model in typing.get_args(union):
        (literal,) = typing.get_args(model.model_fields["type"].annotation)
        models[literal] = model
    return models


SERVER_MODELS = {"ga": _members(GAServerEventUnion), "beta": _members(BetaServerEventUnion)}
"""Per dialect: server event type -> the official pydantic model of that event."""

# Fields real servers send that the official models leave out: GA text deltas are padded,
# and beta usage details the cached tokens (which GA declares).
_KNOWN_EXTRAS = ("$.obfuscation:", "$.response.usage.input_token_details.cached_tokens_details:")
# Session events are checked against real captures in test_server instead: the SDK models
# the GA session with its create-request class (no id, object or expiry), the beta one
# without the include and client_secret that servers send, and requires a client_secret in
# transcription_session.updated, which servers only send for sessions minted over REST.
_SESSION_EVENTS = frozenset({"session.created", "session.updated", "transcription_session.updated"})


def assert_server_event(event: Mapping[str, Any], dialect: str) -> None:
    """Fail unless ``event`` is a valid server event of ``dialect`` with no undeclared key."""
    model = SERVER_MODELS[dialect].get(event.get("type"))  # type: ignore[arg-type]
    if model is None:
        pytest.fail(f"not a {dialect} server event type: {event!r}")
    if event["type"] in _SESSION_EVENTS:
        return
    failure = None
    try:
        # Strict: the event is decoded JSON, so "5" or true for an integer is a real error.
        parsed = model.model_validate(event, strict=True)
    except pydantic.ValidationError as error:
        failure = str(error)
    if failure is not None:  # failed outside the except block: no chained error
        pytest.fail(f"not a valid {dialect} server event: {failure}\nevent: {event!r}")
    problems = [
        problem
        for problem in undeclared_keys(event, parsed)
        if not problem.startswith(_KNOWN_EXTRAS)
    ]
    if problems:
        pytest.fail(f"{dialect} server event has undeclared keys: {problems}\nevent: {event!r}")


def test_the_oracle_rejects_what_the_official_models_do_not_declare() -> None:
    good = {
        "type": "response.function_call_arguments.done",
        "event_id": "event_1",
        "response_id": "resp_1",
        "item_id": "item_1",
        "output_index": 0,
        "call_id": "call_1",
        "arguments": "{}",
    }
    assert_server_event({**good, "name": "f"}, "ga")
    assert_server_event(good, "beta")
    with pytest.raises(pytest.fail.Exception, match=r"\$\.name: not a field"):
        assert_server_event({**good, "name": "f"}, "beta")  # beta's done event has no name
    with pytest.raises(pytest.fail.Exception, match="not a valid ga server event"):
        assert_server_event(good, "ga")  # GA's has one
    with pytest.raises(pytest.fail.Exception, match="not a valid"):
        assert_server_event({**good, "output_index": "0"}, "beta")  # strict


# --- dialect vocabulary ---------------------------------------------------------------------

NAMES: dict[str, dict[str, str]] = {
    "ga": {
        "item_added": "conversation.item.added",
        "item_last": "conversation.item.done",
        "text_delta": "response.output_text.delta",
        "audio_delta": "response.output_audio.delta",
        "audio_done": "response.output_audio.done",
        "transcript_delta": "response.output_audio_transcript.delta",
        "transcript_done": "response.output_audio_transcript.done",
        "audio_content": "output_audio",
        "modalities": "output_modalities",
    },
    "beta": {
        "item_added": "conversation.item.created",
        "item_last": "conversation.item.created",
        "text_delta": "response.text.delta",
        "audio_delta": "response.audio.delta",
        "audio_done": "response.audio.done",
        "transcript_delta": "response.audio_transcript.delta",
        "transcript_done": "response.audio_transcript.done",
        "audio_content": "audio",
        "modalities": "modalities",
    },
}
SPOKEN = {"ga": ["audio"], "beta": ["text", "audio"]}
GA_FORMATS = {
    "pcm16": {"type": "audio/pcm", "rate": 24000},
    "g711_ulaw": {"type": "audio/pcmu"},
    "g711_alaw": {"type": "audio/pcma"},
}
BYTES_PER_MS = {"pcm16": 48, "g711_ulaw": 8, "g711_alaw": 8}
TRANSCRIPTION_DELTA = "conversation.item.input_audio_transcription.delta"
TRANSCRIPTION_DONE = "conversation.item.input_audio_transcription.completed"
WEATHER_TOOL = {
    "type": "function",
    "name": "get_weather",
    "description": "The weather in a city.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
}
TIME_TOOL = {"type": "function", "name": "get_time", "parameters": {"type": "object"}}


def session_update(
    dialect: str,
    *,
    spoken: bool = True,
    output_format: str | None = None,
    input_format: str | None = None,
    transcription: Mapping[str, Any] | None = None,
    tools: Sequence[Mapping[str, Any]] | None = None,
    include: list[str] | None = None,
) -> Event:
    """A ``session.update`` of ``dialect``; formats by their beta names."""
    session: Event
    if dialect == "ga":
        session = {"type": "realtime", "output_modalities": ["audio"] if spoken else ["text"]}
        audio: Event = {}
        if output_format is not None:
            audio["output"] = {"format": GA_FORMATS[output_format]}
        if input_format is not None or transcription is not None:
            audio["input"] = {}
            if input_format is not None:
                audio["input"]["format"] = GA_FORMATS[input_format]
            if transcription is not None:
                audio["input"]["transcription"] = dict(transcription)
        if audio:
            session["audio"] = audio
    else:
        session = {"modalities": SPOKEN["beta"] if spoken else ["text"]}
        if output_format is not None:
            session["output_audio_format"] = output_format
        if input_format is not None:
            session["input_audio_format"] = input_format
        if transcription is not None:
            session["input_audio_transcription"] = dict(transcription)
    if tools is not None:
        session["tools"] = list(tools)
    if include is not None:
        session["include"] = include
    return {"type": "session.update", "session": session}


def append(audio: bytes) -> Event:
    return {"type": "input_audio_buffer.append", "audio": base64.b64encode(audio).decode()}


def chunks_of(text: str) -> list[tuple[str, str | None]]:
    """The deltas of a spoken ``text``: per 100 ms of audio, the transcript of the characters
    whose sound starts in it (when any), then the audio."""
    total = 60 * len(text)
    sequence: list[tuple[str, str | None]] = []
    for start in range(0, total, 100):
        piece = text[math.ceil(start / 60) : math.ceil(min(start + 100, total) / 60)]
        if piece:
            sequence.append(("transcript", piece))
        sequence.append(("audio", None))
    return sequence


# --- raw socket peers -------------------------------------------------------------------------


class Peer:
    """A raw websocket-client connection that checks every event it receives."""

    def __init__(self, ws: websocket.WebSocket, dialect: str) -> None:
        self.ws = ws
        self.dialect = dialect
        self.names = NAMES[dialect]
        self.arrivals: list[tuple[float, Event]] = []

    def send(self, event: Event) -> None:
        self.ws.send(json.dumps(event))

    def recv(self) -> Event:
        message = self.ws.recv()
        arrived = time.monotonic()
        assert isinstance(message, str)
        event: Event = json.loads(message)
        assert_server_event(event, self.dialect)
        self.arrivals.append((arrived, event))
        return event

    def recv_until(self, last_type: str) -> list[Event]:
        events = [self.recv()]
        while events[-1]["type"] != last_type:
            events.append(self.recv())
        return events

    def update(self, event: Event) -> Event:
        self.send(event)
        updated = self.recv()
        assert updated["type"] == "session.updated", updated
        session: Event = updated["session"]
        return session

    def say(self, text: str) -> str:
        """Add a user text message; return its item id."""
        self.send(user_message(text))
        item_id: str = self.recv_until(self.names["item_last"])[-1]["item"]["id"]
        return item_id

    def respond(self, **params: Any) -> list[Event]:
        """``response.create``; its events up to ``rate_limits.updated``."""
        self.send({"type": "response.create", **({"response": params} if params else {})})
        return self.recv_until("rate_limits.updated")

    def error(self, code: str) -> Event:
        event = self.recv()
        assert event["type"] == "error", event
        assert event["error"]["code"] == code, event
        error: Event = event["error"]
        return error


@pytest.fixture
def make_server() -> Iterator[Callable[..., LocalRealtimeServer]]:
    servers: list[LocalRealtimeServer] = []

    def factory(**kwargs: Any) -> LocalRealtimeServer:
        server = LocalRealtimeServer(api_key=KEY, **kwargs).start()
        servers.append(server)
        return server

    yield factory
    for server in servers:
        server.stop()


@pytest.fixture
def connect() -> Iterator[Callable[[LocalRealtimeServer, str], Peer]]:
    opened: list[websocket.WebSocket] = []

    def _connect(server: LocalRealtimeServer, dialect: str) -> Peer:
        header = [f"Authorization: Bearer {KEY}"]
        if dialect == "beta":
            header.append("OpenAI-Beta: realtime=v1")
        ws = websocket.create_connection(
            f"{server.url}?model=gpt-realtime", header=header, timeout=WAIT
        )
        opened.append(ws)
        peer = Peer(ws, dialect)
        assert peer.recv()["type"] == "session.created"
        return peer

    yield _connect
    for ws in opened:
        ws.close(timeout=1)
        ws.shutdown()  # type: ignore[no-untyped-call]


Connect = Callable[[LocalRealtimeServer, str], Peer]
MakeServer = Callable[..., LocalRealtimeServer]


# --- in-process clients -----------------------------------------------------------------------


class Recorded:
    """Every server event a client handled, checked against the official models."""

    def __init__(self, client: RealtimeClient, dialect: str) -> None:
        self.dialect = dialect
        self.events: list[Event] = []
        self.failures: list[str] = []  # checked when the test ends
        self.arrivals: list[float] = []  # when each event was handled
        self._lock = threading.Lock()
        client.on("*", self._record)

    def _record(self, event: Any) -> None:
        if isinstance(event, ServerEvent):
            payload = event.to_dict()
            try:
                assert_server_event(payload, self.dialect)
            except BaseException as failure:  # the client would only log it
                self.failures.append(str(failure))
            with self._lock:
                self.events.append(payload)
                self.arrivals.append(time.monotonic())

    def of(self, event_type: str) -> list[Event]:
        with self._lock:
            return [e for e in self.events if e["type"] == event_type]


@pytest.fixture
def in_process() -> Iterator[Callable[..., tuple[RealtimeClient, Recorded]]]:
    clients: list[RealtimeClient] = []
    records: list[Recorded] = []

    def make(dialect: str = "ga", **options: Any) -> tuple[RealtimeClient, Recorded]:
        transport = InProcessTransport(api_key=KEY, **options)
        client = RealtimeClient(api_key=KEY, transport=transport, protocol=dialect)  # type: ignore[arg-type]
        clients.append(client)
        recorded = Recorded(client, dialect)
        records.append(recorded)
        client.connect(timeout=WAIT)
        return client, recorded

    yield make
    for client in clients:
        client.close(timeout=WAIT)
    for recorded in records:
        assert recorded.failures == []
        assert recorded.events  # the oracle saw them


def client_update(client: RealtimeClient, event: Event) -> None:
    updated = client.expect("session.updated")
    client.send(event)
    updated.wait(WAIT)


def client_turn(client: RealtimeClient, **params: Any) -> Any:
    done = client.expect("response.done")
    client.send({"type": "response.create", **({"response": params} if params else {})})
    return done.wait(WAIT).response


# --- 1. spoken answers ------------------------------------------------------------------------


@pytest.mark.parametrize("dialect", DIALECTS)
def test_a_spoken_answer_streams_in_the_order_real_servers_use(
    make_server: MakeServer, connect: Connect, dialect: str
) -> None:
    text = "Hello there, friend!"  # 20 characters: 1200 ms, 12 audio deltas of 100 ms
    peer = connect(make_server(reply=text), dialect)
    names = peer.names
    peer.update(session_update(dialect))
    peer.say("hi")
    events = peer.respond()
    types = [e["type"] for e in events]
    head = [
        "response.created",
        "response.output_item.added",
        names["item_added"],
        "response.content_part.added",
    ]
    tail = [
        names["audio_done"],
        names["transcript_done"],
        "response.content_part.done",
        "response.output_item.done",
        *(["conversation.item.done"] if dialect == "ga" else []),
        "response.done",
        "rate_limits.updated",
    ]
    assert types[: len(head)] == head
    assert types[-len(tail) :] == tail
    middle = events[len(head) : -len(tail)]
    kinds = {names["transcript_delta"]: "transcript", names["audio_delta"]: "audio"}
    assert [
        (kinds[e["type"]], e["delta"] if kinds[e["type"]] == "transcript" else None) for e in middle
    ] == chunks_of(text)
    by_type = {e["type"]: e for e in events}
    item = by_type["response.output_item.done"]["item"]
    response = by_type["response.done"]["response"]
    where = {
        "response_id": response["id"],
        "item_id": item["id"],
        "output_index": 0,
        "content_index": 0,
    }
    for event in [*middle, by_type[names["audio_done"]], by_type["response.content_part.added"]]:
        assert {key: event[key] for key in where} == where
    assert by_type["response.content_part.added"]["part"] == {"type": "audio", "transcript": ""}
    assert by_type[names["transcript_done"]]["transcript"] == text
    assert by_type["response.content_part.done"]["part"] == {"type": "audio", "transcript": text}
    assert item["status"] == "completed"
    assert item["content"] == [{"type": names["audio_content"], "transcript": text}]
    audio = [base64.b64decode(e["delta"]) for e in middle if e["type"] == names["audio_delta"]]
    assert {len(chunk) for chunk in audio} == {4800}  # 100 ms of 24 kHz PCM16 each
    speech = b"".join(audio)
    assert len(speech) == 48 * 60 * len(text)  # 60 ms a character
    assert speech.count(0) < len(speech) / 4  # not silence
    assert recognize_speech(speech) == text  # the synthesiser's own speech reads back
    assert (response["status"], response["output"]) == ("completed", [item])
    assert response[names["modalities"]] == SPOKEN[dialect]
    if dialect == "ga":
        assert response["audio"]["output"]["format"] == {"type": "audio/pcm", "rate": 24000}
    else:
        assert response["output_audio_format"] == "pcm16"
    usage = response["usage"]
    assert usage["output_token_details"] == {"text_tokens": 5, "audio_tokens": 24}  # 50 ms each
    assert usage["output_tokens"] == 29
    assert usage["total_tokens"] == usage["input_tokens"] + 29
    # WebSocket sessions get no output_audio_buffer.started / stopped (WebRTC and SIP only).
    assert not [t for t in types if t.startswith("output_audio_buffer.")]
    peer.send({"type": "conversation.item.retrieve", "item_id": item["id"]})
    assert peer.recv()["item"] == item


@pytest.mark.parametrize("dialect", DIALECTS)
@pytest.mark.parametrize("fmt", ["pcm16", "g711_ulaw", "g711_alaw"])
def test_spoken_answers_in_each_output_format(
    in_process: Callable[..., tuple[RealtimeClient, Recorded]], dialect: str, fmt: str
) -> None:
    client, recorded = in_process(dialect, reply="Bonjour")
    client_update(client, session_update(dialect, output_format=fmt))
    response = client_turn(client)
    assert response.status == "completed"
    assert response.output[0].content[0].transcript == "Bonjour"
    deltas = recorded.of(NAMES[dialect]["audio_delta"])
    speech = b"".join(base64.b64decode(e["delta"]) for e in deltas)
    assert len(speech) == BYTES_PER_MS[fmt] * 60 * len("Bonjour")
    assert {len(base64.b64decode(e["delta"])) for e in deltas[:-1]} == {BYTES_PER_MS[fmt] * 100}
    assert recognize_speech(speech, fmt) == "Bonjour"
    assert recognize_speech(speech, GA_FORMATS[fmt]) == "Bonjour"
    raw = recorded.of("response.done")[0]["response"]
    if dialect == "ga":
        assert raw["audio"]["output"]["format"] == GA_FORMATS[fmt]
    else:
        assert raw["output_audio_format"] == fmt


@pytest.mark.parametrize("dialect", DIALECTS)
def test_a_response_chooses_its_own_modalities_and_format(
    make_server: MakeServer, connect: Connect, dialect: str
) -> None:
    peer = connect(make_server(reply="Ciao"), dialect)
    names = peer.names
    peer.update(session_update(dialect))  # the session speaks...
    events = peer.respond(**{names["modalities"]: ["text"]})  # ...this response writes
    types = [e["type"] for e in events]
    assert names["text_delta"] in types
    assert not [t for t in types if "audio" in t]
    assert events[-2]["response"][names["modalities"]] == ["text"]
    # A text session, a spoken response in G.711 A-law.
    peer.update(session_update(dialect, spoken=False))
    if dialect == "ga":
        params: Event = {
            "output_modalities": ["audio"],
            "audio": {"output": {"format": {"type": "audio/pcma"}}},
        }
    else:
        params = {"modalities": ["text", "audio"], "output_audio_format": "g711_alaw"}
    events = peer.respond(**params)
    speech = b"".join(
        base64.b64decode(e["delta"]) for e in events if e["type"] == names["audio_delta"]
    )
    assert len(speech) == 8 * 60 * len("Ciao")
    assert recognize_speech(speech, "g711_alaw") == "Ciao"
    response = events[-2]["response"]
    assert response[names["modalities"]] == SPOKEN[dialect]
    if dialect == "ga":
        assert response["audio"]["output"]["format"] == {"type": "audio/pcma"}
    else:
        assert response["output_audio_format"] == "g711_alaw"


SLOW_REPLY = "one two three four five six"  # 1620 ms: 17 audio deltas


@pytest.mark.parametrize("dialect", DIALECTS)
def test_cancel_mid_speech_closes_what_was_spoken(
    make_server: MakeServer, connect: Connect, dialect: str
) -> None:
    peer = connect(make_server(reply=SLOW_REPLY, delta_interval=0.05), dialect)
    names = peer.names
    peer.update(session_update(dialect))
    peer.send({"type": "response.create"})
    events = peer.recv_until(names["audio_delta"])
    peer.send({"type": "response.cancel"})
    events += peer.recv_until("rate_limits.updated")
    types = [e["type"] for e in events]
    assert "error" not in types
    tail = [
        names["audio_done"],
        names["transcript_done"],
        "response.content_part.done",
        "response.output_item.done",
        *(["conversation.item.done"] if dialect == "ga" else []),
        "response.done",
        "rate_limits.updated",
    ]
    assert types[-len(tail) :] == tail
    spoken = "".join(e["delta"] for e in events if e["type"] == names["transcript_delta"])
    audio = [e for e in events if e["type"] == names["audio_delta"]]
    assert 1 <= len(audio) < 17
    assert SLOW_REPLY.startswith(spoken) and spoken != SLOW_REPLY
    by_type = {e["type"]: e for e in events}
    assert by_type[names["transcript_done"]]["transcript"] == spoken
    assert by_type["response.content_part.done"]["part"] == {"type": "audio", "transcript": spoken}
    item = by_type["response.output_item.done"]["item"]
    assert item["status"] == "incomplete"
    assert item["content"] == [{"type": names["audio_content"], "transcript": spoken}]
    done = by_type["response.done"]["response"]
    assert (done["status"], done["output"]) == ("cancelled", [item])
    assert done["usage"]["output_token_details"]["audio_tokens"] == 2 * len(audio)


@pytest.mark.parametrize("dialect", DIALECTS)
def test_truncate_cuts_the_transcript_and_refuses_beyond_the_audio(
    make_server: MakeServer, connect: Connect, dialect: str
) -> None:
    peer = connect(make_server(reply="Hello there, friend!"), dialect)  # 1200 ms
    names = peer.names
    peer.update(session_update(dialect))
    item_id = peer.respond()[-2]["response"]["output"][0]["id"]

    def truncate(audio_end_ms: int, event_id: str = "evt_cut") -> None:
        peer.send(
            {
                "type": "conversation.item.truncate",
                "event_id": event_id,
                "item_id": item_id,
                "content_index": 0,
                "audio_end_ms": audio_end_ms,
            }
        )

    truncate(1500, "evt_long")
    error = peer.error("invalid_value")
    assert error["message"] == "Audio content of 1200ms is already shorter than 1500ms"
    assert (error["param"], error["event_id"], error["type"]) == (
        "audio_end_ms",
        "evt_long",
        "invalid_request_error",
    )
    truncate(300)  # 5 characters of 60 ms were heard
    truncated = peer.recv()
    assert truncated == {
        "type": "conversation.item.truncated",
        "event_id": truncated["event_id"],
        "item_id": item_id,
        "content_index": 0,
        "audio_end_ms": 300,
    }
    peer.send({"type": "conversation.item.retrieve", "item_id": item_id})
    content = peer.recv()["item"]["content"]
    assert content == [{"type": names["audio_content"], "transcript": "Hello"}]
    truncate(400)  # the audio is 300 ms long now
    assert peer.error("invalid_value")["message"] == (
        "Audio content of 300ms is already shorter than 400ms"
    )
    truncate(0)
    peer.recv()
    peer.send({"type": "conversation.item.retrieve", "item_id": item_id})
    assert peer.recv()["item"]["content"][0]["transcript"] == ""
    # What is left of it (nothing) weighs nothing in the next prompt.
    peer.update(session_update(dialect, spoken=False))
    usage = peer.respond()[-2]["response"]["usage"]
    assert usage["input_token_details"]["audio_tokens"] == 0


@pytest.mark.parametrize("dialect", DIALECTS)
def test_truncate_while_speaking_then_cancel(
    make_server: MakeServer, connect: Connect, dialect: str
) -> None:
    peer = connect(make_server(reply=SLOW_REPLY, delta_interval=0.05), dialect)
    names = peer.names
    peer.update(session_update(dialect))
    peer.send({"type": "response.create"})
    events = peer.recv_until(names["audio_delta"])
    events += peer.recv_until(names["audio_delta"])  # at least 200 ms were sent
    item_id = events[1]["item"]["id"]
    base = {"type": "conversation.item.truncate", "item_id": item_id, "content_index": 0}
    peer.send({**base, "audio_end_ms": 60_000})
    peer.send({**base, "audio_end_ms": 180})  # "one" was heard
    peer.send({"type": "response.cancel"})
    events += peer.recv_until("rate_limits.updated")
    errors = [e["error"] for e in events if e["type"] == "error"]
    assert len(errors) == 1
    assert errors[0]["message"].startswith("Audio content of ")
    assert errors[0]["message"].endswith("ms is already shorter than 60000ms")
    (truncated,) = [e for e in events if e["type"] == "conversation.item.truncated"]
    assert truncated["audio_end_ms"] == 180
    by_type = {e["type"]: e for e in events}
    spoken = by_type[names["transcript_done"]]["transcript"]  # everything that was streamed
    assert len(spoken) >= 4
    item = by_type["response.output_item.done"]["item"]
    assert item["content"] == [{"type": names["audio_content"], "transcript": "one"}]
    assert by_type["response.done"]["response"]["output"] == [item]


def test_a_text_answer_can_still_be_truncated(make_server: MakeServer, connect: Connect) -> None:
    peer = connect(make_server(reply="text"), "ga")
    item_id = peer.respond()[-2]["response"]["output"][0]["id"]
    peer.send(
        {
            "type": "conversation.item.truncate",
            "item_id": item_id,
            "content_index": 0,
            "audio_end_ms": 1500,
        }
    )
    assert peer.recv()["type"] == "conversation.item.truncated"  # nothing to check it against


# --- 2. pacing --------------------------------------------------------------------------------


def _audio_span(peer: Peer, events_before: int) -> float:
    """Seconds between the first and the last audio delta received since ``events_before``."""
    times = [
        arrived
        for arrived, event in peer.arrivals[events_before:]
        if event["type"] == peer.names["audio_delta"]
    ]
    return times[-1] - times[0]


@pytest.mark.parametrize(
    ("pacing", "reply", "at_least", "below"),
    [
        (None, "x" * 20, 0.0, 0.5),  # 1200 ms of audio, as fast as possible
        (0.0, "x" * 20, 0.0, 0.5),
        (1.0, "x" * 5, 0.19, None),  # 300 ms: the last delta is due 200 ms after the first
        (2.0, "x" * 20, 0.5, 1.0),  # 1200 ms at twice the speed: due after 550 ms
    ],
)
def test_audio_pacing(
    make_server: MakeServer,
    connect: Connect,
    *,
    pacing: float | None,
    reply: str,
    at_least: float,
    below: float | None,
) -> None:
    peer = connect(make_server(reply=reply, audio_pacing=pacing), "ga")
    peer.update(session_update("ga"))
    before = len(peer.arrivals)
    peer.respond()
    span = _audio_span(peer, before)
    assert span >= at_least
    if below is not None:
        assert span < below


def test_delta_interval_paces_spoken_answers_too(make_server: MakeServer, connect: Connect) -> None:
    peer = connect(make_server(reply="x" * 5, delta_interval=0.06, audio_pacing=4.0), "beta")
    peer.update(session_update("beta"))
    before = len(peer.arrivals)
    peer.respond()
    assert _audio_span(peer, before) >= 0.11  # two waits of 60 ms (pacing alone: 50 ms)


def test_audio_pacing_in_process(
    in_process: Callable[..., tuple[RealtimeClient, Recorded]],
) -> None:
    client, recorded = in_process("beta", reply="x" * 5, audio_pacing=1.0)
    client_update(client, session_update("beta"))
    client_turn(client)
    times = [
        arrived
        for arrived, event in zip(recorded.arrivals, recorded.events, strict=True)
        if event["type"] == "response.audio.delta"
    ]
    assert len(times) == 3
    assert times[-1] - times[0] >= 0.19  # 300 ms of audio: the last delta is due at 200 ms


@pytest.mark.parametrize("bad", [-1.0, float("nan"), float("inf")])
def test_audio_pacing_is_validated(bad: float) -> None:
    with pytest.raises(ValueError, match="audio_pacing"):
        SimulatorOptions(audio_pacing=bad)
    with pytest.raises(ValueError, match="audio_pacing"):
        LocalRealtimeServer(audio_pacing=bad)
    with pytest.raises(ValueError, match="audio_pacing"):
        InProcessTransport(audio_pacing=bad)


# --- 3. input transcription -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("dialect", "model", "fmt", "deltas"),
    [
        ("ga", "gpt-4o-transcribe", "pcm16", ["What's ", "the ", "weather?"]),
        ("ga", "whisper-1", "g711_ulaw", ["What's the weather?"]),  # one delta: whole text
        ("beta", "gpt-4o-mini-transcribe", "g711_alaw", ["What's ", "the ", "weather?"]),
        ("beta", "whisper-1", "pcm16", []),  # beta whisper-1 streams nothing
    ],
)
def test_committed_speech_is_transcribed(
    make_server: MakeServer,
    connect: Connect,
    *,
    dialect: str,
    model: str,
    fmt: str,
    deltas: list[str],
) -> None:
    text = "What's the weather?"  # 19 characters: 1140 ms
    peer = connect(make_server(), dialect)
    names = peer.names
    peer.update(
        session_update(dialect, spoken=False, input_format=fmt, transcription={"model": model})
    )
    speech = synthesize_speech(text, fmt)
    assert len(speech) == BYTES_PER_MS[fmt] * 1140
    peer.send(append(speech[:1001]))  # the buffer joins what is appended
    peer.send(append(speech[1001:]))
    peer.send({"type": "input_audio_buffer.commit"})
    # Server VAD is on, as in real sessions: the speech starts at once, and the manual
    # commit (no silence has stopped it) takes the item speech_started announced.
    started = peer.recv()
    assert (started["type"], started["audio_start_ms"]) == ("input_audio_buffer.speech_started", 0)
    events = peer.recv_until(TRANSCRIPTION_DONE)
    types = [e["type"] for e in events]
    item_events = [names["item_added"], *(["conversation.item.done"] if dialect == "ga" else [])]
    assert types == [
        "input_audio_buffer.committed",
        *item_events,
        *[TRANSCRIPTION_DELTA] * len(deltas),
        TRANSCRIPTION_DONE,
    ]
    item_id = events[0]["item_id"]
    assert item_id == started["item_id"]
    assert events[1]["item"]["content"] == [{"type": "input_audio", "transcript": None}]
    assert [e["delta"] for e in events if e["type"] == TRANSCRIPTION_DELTA] == deltas
    for event in events[len(item_events) + 1 :]:
        assert (event["item_id"], event["content_index"]) == (item_id, 0)
    completed = events[-1]
    assert completed["transcript"] == text
    if model == "whisper-1":
        assert completed["usage"] == {"type": "duration", "seconds": 1.14}
    else:
        assert completed["usage"] == {
            "type": "tokens",
            "total_tokens": 28,
            "input_tokens": 23,  # 1140 ms at 50 ms a token
            "input_token_details": {"text_tokens": 0, "audio_tokens": 23},
            "output_tokens": 5,
        }
    peer.send({"type": "conversation.item.retrieve", "item_id": item_id})
    item = peer.recv()["item"]
    assert item["content"] == [{"type": "input_audio", "transcript": text}]
    response = peer.respond()[-2]["response"]
    assert response["output"][0]["content"][0]["text"] == f"You said: {text}"
    assert response["usage"]["input_token_details"]["audio_tokens"] == 23


def test_speech_is_heard_without_transcription(
    in_process: Callable[..., tuple[RealtimeClient, Recorded]],
) -> None:
    client, recorded = in_process("ga")
    client.input_audio_buffer.append(audio=synthesize_speech("hello"))
    committed = client.expect("input_audio_buffer.committed")
    client.input_audio_buffer.commit()
    committed.wait(WAIT)
    response = client_turn(client)
    assert response.output[0].content[0].text == "You said: hello"
    assert response.usage.input_token_details.audio_tokens == 6  # 300 ms
    assert not [e for e in recorded.events if "transcription" in e["type"]]


@pytest.mark.parametrize("dialect", DIALECTS)
def test_audio_it_cannot_read_is_described(
    make_server: MakeServer, connect: Connect, dialect: str
) -> None:
    peer = connect(make_server(), dialect)
    peer.update(session_update(dialect, spoken=False, transcription={"model": "whisper-1"}))
    peer.send(append(bytes(48 * 500)))  # 500 ms of silence
    peer.send({"type": "input_audio_buffer.commit"})
    assert peer.recv_until(TRANSCRIPTION_DONE)[-1]["transcript"] == "(500 ms of audio)"


def test_a_transcribe_hook_decides_what_is_heard(
    in_process: Callable[..., tuple[RealtimeClient, Recorded]],
) -> None:
    heard: list[bytes] = []

    def transcribe(audio: bytes) -> str:
        heard.append(audio)
        return f"{len(audio)} bytes of G.711"

    client, recorded = in_process("beta", transcribe=transcribe)
    client_update(
        client,
        session_update(
            "beta",
            spoken=False,
            input_format="g711_ulaw",
            transcription={"model": "gpt-4o-transcribe"},
        ),
    )
    completed = client.expect(TRANSCRIPTION_DONE)
    client.input_audio_buffer.append(audio=bytes(range(256)) * 4)
    client.input_audio_buffer.commit()
    assert completed.wait(WAIT).transcript == "1024 bytes of G.711"
    assert heard == [bytes(range(256)) * 4]  # as appended, in the input format
    assert client_turn(client).output[0].content[0].text == "You said: 1024 bytes of G.711"
    assert [e["delta"] for e in recorded.of(TRANSCRIPTION_DELTA)] == [
        "1024 ",
        "bytes ",
        "of ",
        "G.711",
    ]


def test_a_failing_transcribe_hook_is_a_server_error(
    make_server: MakeServer, connect: Connect
) -> None:
    def transcribe(_audio: bytes) -> str:
        raise RuntimeError("no ears")

    peer = connect(make_server(transcribe=transcribe), "ga")
    peer.send(append(bytes(4800)))
    peer.send({"type": "input_audio_buffer.commit", "event_id": "evt_commit"})
    error = peer.recv()["error"]
    assert (error["type"], error["event_id"]) == ("server_error", "evt_commit")


@pytest.mark.parametrize("dialect", DIALECTS)
def test_late_transcripts_follow_response_created(
    make_server: MakeServer, connect: Connect, dialect: str
) -> None:
    peer = connect(make_server(late_transcripts=True, reply="Sure."), dialect)
    names = peer.names
    peer.update(session_update(dialect, transcription={"model": "gpt-4o-transcribe"}))
    peer.send(append(synthesize_speech("book it")))
    peer.send({"type": "input_audio_buffer.commit"})
    item_id = peer.recv_until(names["item_last"])[0]["item_id"]
    # Held: the next event answers the next client event.
    peer.send({"type": "conversation.item.retrieve", "item_id": item_id})
    retrieved = peer.recv()
    assert retrieved["type"] == "conversation.item.retrieved"
    assert retrieved["item"]["content"][0]["transcript"] is None
    events = peer.respond()
    types = [e["type"] for e in events]
    assert types[:4] == [
        "response.created",
        TRANSCRIPTION_DELTA,
        TRANSCRIPTION_DELTA,
        TRANSCRIPTION_DONE,
    ]
    assert types[4] == "response.output_item.added"
    assert events[3]["item_id"] == item_id
    assert events[3]["transcript"] == "book it"
    # The model heard the audio all along.
    assert events[-2]["response"]["output"][0]["content"][0]["transcript"] == "Sure."


def test_late_transcripts_go_at_once_while_a_response_is_in_progress(
    make_server: MakeServer, connect: Connect
) -> None:
    peer = connect(make_server(late_transcripts=True, reply=SLOW_REPLY, delta_interval=0.05), "ga")
    update = session_update("ga", spoken=False, transcription={"model": "whisper-1"})
    update["session"]["audio"]["input"]["turn_detection"] = None  # speech would interrupt
    peer.update(update)
    peer.send({"type": "response.create"})
    peer.recv_until(peer.names["text_delta"])
    peer.send(append(synthesize_speech("stop")))
    peer.send({"type": "input_audio_buffer.commit"})
    events = peer.recv_until("rate_limits.updated")
    types = [e["type"] for e in events]
    assert types.index(TRANSCRIPTION_DONE) < types.index("response.done")
    done = events[types.index(TRANSCRIPTION_DONE)]
    committed = events[types.index("input_audio_buffer.committed")]
    assert (done["item_id"], done["transcript"]) == (committed["item_id"], "stop")


def test_late_transcripts_are_attached_by_item_id_in_a_client(
    in_process: Callable[..., tuple[RealtimeClient, Recorded]],
) -> None:
    client, recorded = in_process("ga", late_transcripts=True)
    client_update(
        client, session_update("ga", spoken=False, transcription={"model": "gpt-4o-transcribe"})
    )
    committed = client.expect("input_audio_buffer.committed")
    client.input_audio_buffer.append(audio=synthesize_speech("late news"))
    client.input_audio_buffer.commit()
    item_id = committed.wait(WAIT).item_id
    transcript = client.expect(TRANSCRIPTION_DONE, predicate=lambda ev: ev.item_id == item_id)
    response = client_turn(client)
    assert transcript.wait(WAIT).transcript == "late news"
    assert response.output[0].content[0].text == "You said: late news"
    types = [e["type"] for e in recorded.events]
    assert types.index("response.created") < types.index(TRANSCRIPTION_DONE)


def test_transcription_sessions_never_hold_transcripts(
    make_server: MakeServer, connect: Connect
) -> None:
    peer = connect(make_server(late_transcripts=True), "ga")
    session = {
        "type": "transcription",
        "audio": {"input": {"transcription": {"model": "gpt-4o-transcribe"}}},
    }
    peer.update({"type": "session.update", "session": session})
    peer.send(append(synthesize_speech("dictation")))
    peer.send({"type": "input_audio_buffer.commit"})
    assert peer.recv_until(TRANSCRIPTION_DONE)[-1]["transcript"] == "dictation"


@pytest.mark.parametrize("dialect", DIALECTS)
def test_logprobs_when_the_session_includes_them(
    make_server: MakeServer, connect: Connect, dialect: str
) -> None:
    peer = connect(make_server(), dialect)
    include = ["item.input_audio_transcription.logprobs"]
    if dialect == "ga":
        peer.update(
            session_update(dialect, transcription={"model": "gpt-4o-transcribe"}, include=include)
        )
    else:
        peer.send(
            {
                "type": "transcription_session.update",
                "session": {
                    "input_audio_transcription": {"model": "gpt-4o-transcribe"},
                    "include": include,
                },
            }
        )
        assert peer.recv()["type"] == "transcription_session.updated"
    peer.send(append(synthesize_speech("hi you")))
    peer.send({"type": "input_audio_buffer.commit"})
    events = peer.recv_until(TRANSCRIPTION_DONE)
    deltas = [e for e in events if e["type"] == TRANSCRIPTION_DELTA]
    assert [e["logprobs"] for e in deltas] == [
        [{"token": "hi ", "bytes": list(b"hi "), "logprob": 0.0}],
        [{"token": "you", "bytes": list(b"you"), "logprob": 0.0}],
    ]
    assert [p["token"] for p in events[-1]["logprobs"]] == ["hi ", "you"]


# --- 4. function calls ------------------------------------------------------------------------


@pytest.mark.parametrize("dialect", DIALECTS)
def test_a_function_call_and_its_answer(
    make_server: MakeServer, connect: Connect, dialect: str
) -> None:
    peer = connect(make_server(delta_chunks=3), dialect)
    names = peer.names
    peer.update(session_update(dialect, spoken=False, tools=[WEATHER_TOOL]))
    peer.say('What is it like? call get_weather {"city": "Paris"}')
    events = peer.respond()
    types = [e["type"] for e in events]
    assert types == [
        "response.created",
        "response.output_item.added",
        names["item_added"],
        *["response.function_call_arguments.delta"] * 3,
        "response.function_call_arguments.done",
        "response.output_item.done",
        *(["conversation.item.done"] if dialect == "ga" else []),
        "response.done",
        "rate_limits.updated",
    ]
    added = events[1]["item"]
    assert (added["type"], added["name"], added["arguments"], added["status"]) == (
        "function_call",
        "get_weather",
        "",
        "in_progress",
    )
    call_id = added["call_id"]
    arguments = '{"city":"Paris"}'
    deltas = [e for e in events if e["type"] == "response.function_call_arguments.delta"]
    assert "".join(e["delta"] for e in deltas) == arguments
    for event in deltas:
        assert (event["item_id"], event["call_id"], event["output_index"]) == (
            added["id"],
            call_id,
            0,
        )
    done = events[types.index("response.function_call_arguments.done")]
    assert done["arguments"] == arguments
    assert ("name" in done) is (dialect == "ga")
    item = events[types.index("response.output_item.done")]["item"]
    assert {k: item[k] for k in ("id", "status", "name", "call_id", "arguments")} == {
        "id": added["id"],
        "status": "completed",
        "name": "get_weather",
        "call_id": call_id,
        "arguments": arguments,
    }
    response = events[-2]["response"]
    assert (response["status"], response["output"]) == ("completed", [item])
    assert response["usage"]["output_token_details"] == {"text_tokens": 4, "audio_tokens": 0}
    # The client runs the function and asks for the answer.
    peer.send(
        {
            "type": "conversation.item.create",
            "item": {"type": "function_call_output", "call_id": call_id, "output": "sunny, 21 C"},
        }
    )
    peer.recv_until(names["item_last"])
    events = peer.respond()
    text_done = "response.output_text.done" if dialect == "ga" else "response.text.done"
    answer = next(e for e in events if e["type"] == text_done)["text"]
    assert answer == "Result of get_weather: sunny, 21 C"


@pytest.mark.parametrize("dialect", DIALECTS)
def test_parallel_function_calls_in_one_response(
    in_process: Callable[..., tuple[RealtimeClient, Recorded]], dialect: str
) -> None:
    client, recorded = in_process(dialect)
    client_update(client, session_update(dialect, tools=[WEATHER_TOOL, TIME_TOOL]))
    client.send(user_message('call get_weather {"city": "Oslo"} and call get_time {"tz": "CET"}'))
    response = client_turn(client)
    assert response.status == "completed"
    calls = response.output
    assert [(c.type, c.name, c.arguments) for c in calls] == [
        ("function_call", "get_weather", '{"city":"Oslo"}'),
        ("function_call", "get_time", '{"tz":"CET"}'),
    ]
    assert len({c.call_id for c in calls}) == 2
    added = recorded.of("response.output_item.added")
    assert [e["output_index"] for e in added] == [0, 1]
    types = [e["type"] for e in recorded.events]
    # The first call is done before the second one starts.
    first_done = types.index("response.output_item.done")
    assert first_done < [i for i, t in enumerate(types) if t == "response.output_item.added"][1]
    for call, output in zip(calls, ["snow", "09:00"], strict=True):
        client.send(
            {
                "type": "conversation.item.create",
                "item": {"type": "function_call_output", "call_id": call.call_id, "output": output},
            }
        )
    answer = client_turn(client)
    # A spoken session speaks the results.
    assert answer.output[0].content[0].transcript == (
        "Result of get_weather: snow Result of get_time: 09:00"
    )


@pytest.mark.parametrize(
    ("session_tools", "params", "calls"),
    [
        pytest.param([WEATHER_TOOL], {}, True, id="session-tool"),
        pytest.param([], {"tools": [WEATHER_TOOL]}, True, id="response-tool"),
        pytest.param([WEATHER_TOOL], {"tools": []}, False, id="response-has-no-tools"),
        pytest.param([TIME_TOOL], {}, False, id="not-a-declared-tool"),
        pytest.param([WEATHER_TOOL], {"tool_choice": "none"}, False, id="tool-choice-none"),
    ],
)
def test_which_requests_become_calls(
    make_server: MakeServer,
    connect: Connect,
    session_tools: list[Event],
    params: Event,
    calls: bool,
) -> None:
    peer = connect(make_server(), "ga")
    peer.update(session_update("ga", spoken=False, tools=session_tools))
    request = 'call get_weather {"city": "Lima"}'
    peer.say(request)
    output = peer.respond(**params)[-2]["response"]["output"]
    if calls:
        assert [(o["type"], o["name"]) for o in output] == [("function_call", "get_weather")]
    else:
        assert output[0]["content"][0]["text"] == f"You said: {request}"


def test_a_custom_reply_still_answers_after_function_outputs(
    make_server: MakeServer, connect: Connect
) -> None:
    peer = connect(make_server(reply=lambda text: f"[{text}]"), "ga")
    peer.update(session_update("ga", spoken=False, tools=[WEATHER_TOOL]))
    peer.say('call get_weather {"city": "Rome"}')
    call = peer.respond()[-2]["response"]["output"][0]
    peer.send(
        {
            "type": "conversation.item.create",
            "item": {"type": "function_call_output", "call_id": call["call_id"], "output": "hot"},
        }
    )
    peer.recv_until("conversation.item.done")
    output = peer.respond()[-2]["response"]["output"]  # no second call
    assert output[0]["content"][0]["text"] == '[call get_weather {"city": "Rome"}]'


def test_cancel_mid_function_call(make_server: MakeServer, connect: Connect) -> None:
    peer = connect(make_server(delta_chunks=8, delta_interval=0.05), "beta")
    peer.update(session_update("beta", spoken=False, tools=[WEATHER_TOOL]))
    peer.say('call get_weather {"city": "Reykjavik", "units": "metric"}')
    peer.send({"type": "response.create"})
    events = peer.recv_until("response.function_call_arguments.delta")
    peer.send({"type": "response.cancel"})
    events += peer.recv_until("rate_limits.updated")
    sent = "".join(
        e["delta"] for e in events if e["type"] == "response.function_call_arguments.delta"
    )
    done = next(e for e in events if e["type"] == "response.function_call_arguments.done")
    assert done["arguments"] == sent != '{"city":"Reykjavik","units":"metric"}'
    item = events[-2]["response"]["output"][0]
    assert (item["status"], item["arguments"]) == ("incomplete", sent)
    assert events[-2]["response"]["status"] == "cancelled"


def test_a_spoken_request_can_call_a_function(
    in_process: Callable[..., tuple[RealtimeClient, Recorded]],
) -> None:
    client, _ = in_process("ga")
    client_update(client, session_update("ga", tools=[WEATHER_TOOL]))
    client.input_audio_buffer.append(audio=synthesize_speech('call get_weather {"city":"Bern"}'))
    client.input_audio_buffer.commit()
    (call,) = client_turn(client).output
    assert (call.name, call.arguments) == ("get_weather", '{"city":"Bern"}')


# --- 5. usage, and every new event type against the official models -------------------------


@pytest.mark.parametrize("dialect", DIALECTS)
def test_every_response_done_has_usage(
    make_server: MakeServer, connect: Connect, dialect: str
) -> None:
    peer = connect(make_server(), dialect)
    peer.update(session_update(dialect, spoken=False, tools=[WEATHER_TOOL]))
    peer.say("abcdefgh")
    text = peer.respond()[-2]["response"]["usage"]
    assert text["output_token_details"] == {"text_tokens": 5, "audio_tokens": 0}  # 18 chars
    peer.update(session_update(dialect))
    spoken = peer.respond()[-2]["response"]["usage"]
    assert spoken["output_token_details"] == {"text_tokens": 5, "audio_tokens": 22}  # 1080 ms
    assert spoken["output_tokens"] == 27
    peer.say('call get_weather {"city": "Oslo"}')
    call = peer.respond()[-2]["response"]["usage"]
    assert call["output_token_details"] == {"text_tokens": 4, "audio_tokens": 0}
    # The spoken answer is audio in later prompts.
    assert call["input_token_details"]["audio_tokens"] == 22
    for usage in (text, spoken, call):
        assert usage["total_tokens"] == usage["input_tokens"] + usage["output_tokens"]
        details = usage["input_token_details"]
        assert usage["input_tokens"] == details["text_tokens"] + details["audio_tokens"]


NEW_EVENT_TYPES = {
    "ga": {
        "response.output_audio.delta",
        "response.output_audio.done",
        "response.output_audio_transcript.delta",
        "response.output_audio_transcript.done",
        "conversation.item.input_audio_transcription.delta",
        "conversation.item.input_audio_transcription.completed",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.done",
        "conversation.item.truncated",
    },
    "beta": {
        "response.audio.delta",
        "response.audio.done",
        "response.audio_transcript.delta",
        "response.audio_transcript.done",
        "conversation.item.input_audio_transcription.delta",
        "conversation.item.input_audio_transcription.completed",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.done",
        "conversation.item.truncated",
    },
}


@pytest.mark.parametrize("dialect", DIALECTS)
@pytest.mark.parametrize("fmt", ["pcm16", "g711_ulaw"])
def test_every_new_event_type_conforms(
    make_server: MakeServer, connect: Connect, dialect: str, fmt: str
) -> None:
    """A voice session through every new event, each checked by the oracle as it arrives."""
    peer = connect(make_server(late_transcripts=True), dialect)
    peer.update(
        session_update(
            dialect,
            output_format=fmt,
            input_format=fmt,
            transcription={"model": "gpt-4o-transcribe"},
            tools=[WEATHER_TOOL],
            # Beta sessions have no include (beta transcription sessions do).
            include=["item.input_audio_transcription.logprobs"] if dialect == "ga" else None,
        )
    )
    peer.send(append(synthesize_speech('call get_weather {"city": "Kyiv"}', fmt)))
    peer.send({"type": "input_audio_buffer.commit"})
    peer.recv_until(peer.names["item_last"])
    call = peer.respond()[-2]["response"]["output"][0]
    peer.send(
        {
            "type": "conversation.item.create",
            "item": {"type": "function_call_output", "call_id": call["call_id"], "output": "cold"},
        }
    )
    peer.recv_until(peer.names["item_last"])
    answer = peer.respond()[-2]["response"]["output"][0]
    assert answer["content"][0]["transcript"] == "Result of get_weather: cold"
    peer.send(
        {
            "type": "conversation.item.truncate",
            "item_id": answer["id"],
            "content_index": 0,
            "audio_end_ms": 600,
        }
    )
    peer.recv()
    seen = {event["type"] for _, event in peer.arrivals}
    assert NEW_EVENT_TYPES[dialect] <= seen


# --- the synthesiser as tests use it ----------------------------------------------------------


def test_synthesized_speech_helpers() -> None:
    pcm = synthesize_speech("Hi!")
    assert len(pcm) == 3 * 60 * 48 and pcm != bytes(len(pcm))
    assert synthesize_speech("Hi!") == pcm  # deterministic
    assert synthesize_speech("Hi!", {"type": "audio/pcm", "rate": 24000}) == pcm
    assert len(synthesize_speech("Hi!", "g711_ulaw")) == 3 * 60 * 8
    assert synthesize_speech("Hi!", {"type": "audio/pcmu"}) == synthesize_speech("Hi!", "g711_ulaw")
    # Printable ASCII comes back as it was; whitespace as spaces, the rest as "?".
    assert recognize_speech(synthesize_speech("Crème\tbrûlée ~ 42")) == "Cr?me br?l?e ~ 42"
    padded = bytes(4800) + pcm + bytes(960)  # silence around speech is ignored
    assert recognize_speech(padded) == "Hi!"
    assert recognize_speech(bytes(4800)) is None  # silence
    assert recognize_speech(pcm[: len(pcm) // 2]) is None  # half a character
    assert recognize_speech(b"") is None
    with pytest.raises(ValueError, match="unknown audio format"):
        synthesize_speech("x", "mp3")
