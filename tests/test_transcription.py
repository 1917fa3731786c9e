"""Transcription sessions: ``intent=transcription`` connections, ``client.transcribe()``, and
the local server's transcription sessions, checked against the official ``openai`` types and
client."""

from __future__ import annotations

import io
import json
import time
from collections.abc import Callable, Iterator
from typing import Any, Literal

import pytest
import websocket
from conftest import KEY
from openai.types.realtime import RealtimeTranscriptionSessionCreateResponse, SessionCreatedEvent
from openai.types.realtime.realtime_transcription_session_create_request import (
    RealtimeTranscriptionSessionCreateRequest,
)
from test_conformance import undeclared_keys
from test_server_voice import assert_server_event

from realtime_sync import (
    BadRequestError,
    ConfigurationError,
    ConnectionClosed,
    NotConnectedError,
    RealtimeClient,
    RealtimeTimeoutError,
    TranscriptCompleted,
    TranscriptDelta,
    TranscriptFailed,
    TranscriptionError,
    TransportError,
    audio,
)
from realtime_sync.events import ServerEvent
from realtime_sync.testing import InProcessTransport, LocalRealtimeServer, synthesize_speech

pytestmark = pytest.mark.timeout(30)

WAIT = 5.0
SILENCE = bytes(2 * 24000)  # one second of PCM16 silence at 24 kHz
FORMATS = ("pcm16", "g711_ulaw", "g711_alaw")
# The official client over loopback: no proxy from the environment; websockets' own
# connection object (the official client does not use it as a context manager).
LOOPBACK: Any = {"proxy": None, "legacy": True}


def wav(pcm: bytes) -> io.BytesIO:
    """``pcm`` (24 kHz mono PCM16) as a WAV file."""
    file = io.BytesIO()
    audio.write_wav(file, pcm, rate=24000)
    file.seek(0)
    return file


def two_utterances() -> bytes:
    return synthesize_speech("hello world") + SILENCE + synthesize_speech("second part")


def by_item(pieces: list[Any]) -> dict[str, str]:
    """Each item's text as printed piece by piece, checked against its final transcript."""
    texts: dict[str, str] = {}
    for piece in pieces:
        texts[piece.item_id] = texts.get(piece.item_id, "") + piece.text
        if isinstance(piece, TranscriptCompleted):
            assert texts[piece.item_id] == piece.transcript
    return texts


def assert_valid_session(session: dict[str, Any]) -> None:
    """A GA transcription session, as the official response type declares it (strictly)."""
    parsed = RealtimeTranscriptionSessionCreateResponse.model_validate(session, strict=True)
    assert undeclared_keys(session, parsed) == []
    assert parsed.type == "transcription"


@pytest.fixture
def local() -> Iterator[LocalRealtimeServer]:
    with LocalRealtimeServer(api_key=KEY) as server:
        yield server


@pytest.fixture
def connect(local: LocalRealtimeServer) -> Iterator[Callable[..., RealtimeClient]]:
    """Connected clients of ``local``; every server event they get is checked against the
    official models of their dialect."""
    clients: list[tuple[RealtimeClient, list[dict[str, Any]]]] = []

    def make(**options: Any) -> RealtimeClient:
        options.setdefault("api_key", KEY)
        options.setdefault("url", local.url)
        options.setdefault("reconnect", False)
        client = RealtimeClient(**options)
        frames: list[dict[str, Any]] = []
        client.on(
            "*", lambda ev: frames.append(ev.to_dict()) if isinstance(ev, ServerEvent) else None
        )
        clients.append((client, frames))
        client.connect(timeout=WAIT)
        return client

    yield make
    for client, frames in clients:
        client.close(timeout=WAIT)
        for frame in frames:
            if frame["type"] in ("session.created", "session.updated") and client.dialect == "ga":
                assert_valid_session(frame["session"])
            elif frame["type"] != "transcription_session.updated":  # see test_server_voice
                assert_server_event(frame, client.dialect)


# --- the URL: as the official client builds it ----------------------------------------------


def test_the_transcription_intent_names_no_model_unless_one_is_given() -> None:
    client = RealtimeClient(api_key=KEY, intent="transcription")
    assert client.url == "wss://api.openai.com/v1/realtime?intent=transcription"
    client = RealtimeClient(api_key=KEY, intent="transcription", model="gpt-4o-transcribe")
    assert (
        client.url
        == "wss://api.openai.com/v1/realtime?model=gpt-4o-transcribe&intent=transcription"
    )


def test_azure_takes_the_intent_on_its_v1_path_with_or_without_a_deployment() -> None:
    endpoint = "https://example.openai.azure.com"
    client = RealtimeClient.azure(
        endpoint=endpoint, api_key=KEY, api_version="", intent="transcription"
    )
    assert client.url == "wss://example.openai.azure.com/openai/v1/realtime?intent=transcription"
    client = RealtimeClient.azure(
        endpoint=endpoint, deployment="stt", api_key=KEY, api_version="", intent="transcription"
    )
    assert client.url.endswith("/openai/v1/realtime?model=stt&intent=transcription")


@pytest.mark.parametrize(
    "options",
    [
        {"intent": "translation"},
        {"intent": "transcription", "protocol": "beta"},
        {
            "intent": "transcription",
            "azure_endpoint": "https://x.openai.azure.com",
            "api_version": "2025-04-01-preview",
        },
    ],
)
def test_intents_this_client_cannot_open_are_refused_up_front(options: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError, match="intent"):
        RealtimeClient(api_key=KEY, **options)


def test_the_official_client_asks_for_the_same_url(local: LocalRealtimeServer) -> None:
    import openai

    base = local.url.removesuffix("/realtime")
    official = openai.OpenAI(api_key=KEY, websocket_base_url=base, max_retries=0)
    choices: tuple[dict[str, Any], ...] = ({}, {"model": "gpt-4o-transcribe"})
    for options in choices:
        with official.realtime.connect(
            extra_query={"intent": "transcription"},
            websocket_connection_options=LOOPBACK,
            **options,
        ) as connection:
            connection.recv()
        ours = RealtimeClient(api_key=KEY, url=local.url, intent="transcription", **options)
        assert local.connections[-1].query == dict(
            pair.split("=") for pair in ours.url.split("?")[1].split("&")
        )


# --- the handshake and the session ----------------------------------------------------------


def test_a_transcription_connection_opens_a_transcription_session(
    connect: Callable[..., RealtimeClient], local: LocalRealtimeServer
) -> None:
    client = connect(intent="transcription")
    session = client.session.current
    assert session is not None and session.type == "transcription" and session.model is None
    (record,) = local.connections
    assert record.query == {"intent": "transcription"}
    assert record.session["type"] == "transcription"


def test_an_unknown_intent_is_refused_by_the_server(local: LocalRealtimeServer) -> None:
    ws = websocket.create_connection(
        f"{local.url}?intent=bogus", header=[f"Authorization: Bearer {KEY}"], timeout=WAIT
    )
    try:
        error = json.loads(ws.recv())
    finally:
        ws.close()
    assert_server_event(error, "ga")
    assert (error["error"]["code"], error["error"]["param"]) == ("invalid_value", "intent")
    client = RealtimeClient(api_key=KEY, url=f"{local.url}?intent=bogus", reconnect=False)
    with pytest.raises(BadRequestError) as caught:
        client.connect(timeout=WAIT)
    assert caught.value.close_code == 4000


def test_a_beta_transcription_connection_opens_with_transcription_session_created(
    local: LocalRealtimeServer,
) -> None:
    ws = websocket.create_connection(
        f"{local.url}?intent=transcription",
        header=[f"Authorization: Bearer {KEY}", "OpenAI-Beta: realtime=v1"],
        timeout=WAIT,
    )
    try:
        first = json.loads(ws.recv())
    finally:
        ws.close()
    assert first["type"] == "transcription_session.created"
    assert first["session"]["object"] == "realtime.transcription_session"
    assert first["session"]["turn_detection"]["silence_duration_ms"] == 500


# --- transcribe(): end to end ---------------------------------------------------------------


@pytest.mark.parametrize("input_format", FORMATS)
def test_transcribe_yields_each_turn_of_a_wav_file(
    connect: Callable[..., RealtimeClient], input_format: Any
) -> None:
    client = connect(intent="transcription")
    pieces = list(client.transcribe(wav(two_utterances()), input_format=input_format))
    assert list(by_item(pieces).values()) == ["hello world", "second part"]
    assert [type(p) for p in pieces[:3]] == [TranscriptDelta, TranscriptDelta, TranscriptCompleted]
    completed = [p for p in pieces if isinstance(p, TranscriptCompleted)]
    assert all(p.usage.type == "tokens" for p in completed)
    # The conversation state holds the items, with their transcripts.
    for piece in completed:
        item = client.conversation.get(piece.item_id)
        assert item is not None and item.transcript == piece.transcript


def test_turn_detection_off_commits_the_whole_source_as_one_item(
    connect: Callable[..., RealtimeClient], local: LocalRealtimeServer
) -> None:
    client = connect(intent="transcription")
    speech = synthesize_speech("just one turn")
    pieces = list(client.transcribe(speech, turn_detection=None, input_format="g711_ulaw"))
    assert list(by_item(pieces).values()) == ["just one turn"]
    (record,) = local.connections
    sent = [event["type"] for event in record.received]
    assert sent.count("input_audio_buffer.commit") == 1


def test_beta_transcribes_through_transcription_session_update(
    connect: Callable[..., RealtimeClient], local: LocalRealtimeServer
) -> None:
    client = connect(protocol="beta", model="gpt-4o-realtime-preview-2024-12-17")
    pieces = list(client.transcribe(wav(two_utterances()), input_format="g711_alaw"))
    assert list(by_item(pieces).values()) == ["hello world", "second part"]
    (record,) = local.connections
    updates = [e for e in record.received if e["type"] == "transcription_session.update"]
    assert updates[0]["session"]["input_audio_format"] == "g711_alaw"
    assert updates[0]["session"]["input_audio_transcription"] == {"model": "gpt-4o-transcribe"}


def test_an_iterable_source_is_streamed_chunk_by_chunk(
    connect: Callable[..., RealtimeClient],
) -> None:
    client = connect(intent="transcription")
    speech = two_utterances()
    chunks = (speech[i : i + 4800] for i in range(0, len(speech), 4800))  # 100 ms each
    texts = by_item(list(client.transcribe(chunks, language="en", prompt="greetings")))
    assert list(texts.values()) == ["hello world", "second part"]


def test_realtime_pacing_sends_the_audio_at_its_own_speed(
    connect: Callable[..., RealtimeClient],
) -> None:
    client = connect(intent="transcription")
    speech = synthesize_speech("hi")  # 120 ms, then 600 ms of silence to close the turn
    started = time.monotonic()
    pieces = list(client.transcribe(speech, realtime=True, chunk_ms=40))
    assert time.monotonic() - started >= 0.6
    assert list(by_item(pieces).values()) == ["hi"]


def test_the_session_update_carries_every_setting(
    connect: Callable[..., RealtimeClient], local: LocalRealtimeServer
) -> None:
    client = connect(intent="transcription")
    detection = {"type": "server_vad", "silence_duration_ms": 300}
    options: dict[str, Any] = {"model": "whisper-1", "language": "en", "prompt": "names"}
    pieces = list(
        client.transcribe(
            synthesize_speech("whisper"),
            turn_detection=detection,
            noise_reduction="near_field",
            logprobs=True,
            **options,
        )
    )
    assert isinstance(pieces[-1], TranscriptCompleted)
    assert pieces == [
        TranscriptDelta(item_id=pieces[0].item_id, text="whisper"),
        TranscriptCompleted(
            item_id=pieces[0].item_id, text="", transcript="whisper", usage=pieces[-1].usage
        ),
    ]
    update = next(e for e in local.connections[0].received if e["type"] == "session.update")
    session = update["session"]
    assert session == {
        "type": "transcription",
        "audio": {
            "input": {
                "format": {"type": "audio/pcm", "rate": 24000},
                "transcription": options,
                "turn_detection": detection,
                "noise_reduction": {"type": "near_field"},
            }
        },
        "include": ["item.input_audio_transcription.logprobs"],
    }
    RealtimeTranscriptionSessionCreateRequest.model_validate(session, strict=True)


# --- transcribe(): failures -----------------------------------------------------------------


def two_turns() -> bytes:
    return synthesize_speech("hello world") + SILENCE + synthesize_speech("second part")


def test_a_failed_transcription_raises_by_default(
    connect: Callable[..., RealtimeClient], local: LocalRealtimeServer
) -> None:
    client = connect(intent="transcription")
    local.fail_transcriptions(code="audio_unintelligible", message="Audio could not be heard.")
    pieces: list[Any] = []
    with pytest.raises(TranscriptionError, match="could not be heard") as caught:
        pieces.extend(client.transcribe(two_turns()))
    assert pieces == []  # the first turn failed
    assert (caught.value.item_id or "").startswith("item_")
    assert caught.value.error is not None and caught.value.error.code == "audio_unintelligible"


def test_a_failed_transcription_can_be_yielded_instead(
    connect: Callable[..., RealtimeClient], local: LocalRealtimeServer
) -> None:
    client = connect(intent="transcription")
    local.fail_transcriptions(code="audio_unintelligible")
    pieces = list(client.transcribe(two_turns(), failures="yield"))
    failed = pieces[0]
    assert isinstance(failed, TranscriptFailed)
    assert (failed.text, failed.error.code) == ("", "audio_unintelligible")
    assert by_item(pieces[1:]) == {pieces[-1].item_id: "second part"}
    assert failed.item_id != pieces[-1].item_id


def test_a_refused_setting_raises_with_the_servers_error(
    connect: Callable[..., RealtimeClient],
) -> None:
    client = connect(intent="transcription")
    with pytest.raises(TranscriptionError, match="refused") as caught:
        list(client.transcribe(SILENCE, turn_detection={"type": "loud_vad"}))
    assert caught.value.error is not None and caught.value.error.param is not None


def test_a_silent_server_times_out(
    connect: Callable[..., RealtimeClient], local: LocalRealtimeServer
) -> None:
    client = connect(intent="transcription")
    local.half_open()
    with pytest.raises(RealtimeTimeoutError):
        list(client.transcribe(SILENCE, timeout=0.3))
    local.half_open(False)


def test_nothing_is_sent_until_the_pieces_are_asked_for() -> None:
    transport = InProcessTransport(api_key=KEY)
    with RealtimeClient(api_key=KEY, transport=transport, intent="transcription") as client:
        pieces = client.transcribe(SILENCE)
        with pytest.raises(ConfigurationError, match="failures"):
            client.transcribe(SILENCE, failures="ignore")  # type: ignore[arg-type]
        pieces.close()
        assert [e["type"] for e in transport.connections[0].received] == []
        assert by_item(list(client.transcribe(synthesize_speech("in process")))) == {
            next(iter(client.conversation.items)).id: "in process"
        }


def test_a_second_transcription_on_one_client_is_refused_while_the_first_runs(
    connect: Callable[..., RealtimeClient],
) -> None:
    # Their audio went into the one input buffer: each transcript mixed both sources.
    client = connect(intent="transcription")
    first = client.transcribe(synthesize_speech("alpha alpha"), turn_detection=None)
    waiting = client.transcribe(synthesize_speech("bravo bravo"), turn_detection=None)
    pieces = [next(first)]  # running: its audio is in the buffer
    with pytest.raises(TranscriptionError, match="another transcribe") as caught:
        client.transcribe(synthesize_speech("charlie"))
    assert caught.value.item_id is None and caught.value.error is None
    with pytest.raises(TranscriptionError, match="another transcribe"):
        next(waiting)  # made before the first started: refused when it starts
    pieces += list(first)
    assert list(by_item(pieces).values()) == ["alpha alpha"]
    # Once the first has ended (or was closed), the client transcribes again.
    closed = client.transcribe(synthesize_speech("delta"), turn_detection=None)
    next(closed)
    closed.close()
    again = client.transcribe(synthesize_speech("echo echo"), turn_detection=None)
    assert list(by_item(list(again)).values()) == ["echo echo"]


def test_transcripts_of_items_the_run_did_not_commit_are_not_its_own(
    connect: Callable[..., RealtimeClient], local: LocalRealtimeServer
) -> None:
    # An earlier run closed early, or the app's own commit: their transcripts arriving
    # during a run were yielded as the run's (seen under load as "delta" before "echo echo").
    client = connect(intent="transcription")
    foreign = "conversation.item.input_audio_transcription"
    where = {"item_id": "item_foreign", "content_index": 0}

    def source() -> Iterator[bytes]:
        local.push({"type": f"{foreign}.delta", **where, "delta": "stray"})
        usage = {"type": "duration", "seconds": 1.0}
        local.push({"type": f"{foreign}.completed", **where, "transcript": "stray", "usage": usage})
        yield synthesize_speech("echo echo")

    foreign_seen = client.expect(f"{foreign}.completed")
    pieces = list(client.transcribe(source(), turn_detection=None))
    assert foreign_seen.wait(5).item_id == "item_foreign"  # the app's handlers still see it
    assert list(by_item(pieces).values()) == ["echo echo"]


@pytest.mark.parametrize("chunk", ["speech.wav", io.BytesIO(b"")], ids=["a path", "a file"])
def test_a_chunk_of_an_iterable_source_must_be_audio(
    connect: Callable[..., RealtimeClient], chunk: Any
) -> None:
    # A str chunk was read as a file path (FileNotFoundError, or a file's contents).
    client = connect(intent="transcription")
    with pytest.raises(ConfigurationError, match="chunks of an iterable source") as caught:
        list(client.transcribe([SILENCE, chunk], turn_detection=None))
    assert ("file path" in str(caught.value)) == isinstance(chunk, str)


@pytest.mark.parametrize("turn_detection", [None, "server_vad"])
def test_a_source_that_fails_midway_leaves_no_audio_for_the_next_transcription(
    connect: Callable[..., RealtimeClient],
    local: LocalRealtimeServer,
    turn_detection: Literal["server_vad"] | None,
) -> None:
    client = connect(intent="transcription")

    def microphone() -> Iterator[bytes]:
        yield synthesize_speech("lost words")
        raise OSError("the microphone was unplugged")

    with pytest.raises(OSError, match="unplugged"):
        list(client.transcribe(microphone(), turn_detection=turn_detection))
    pieces = list(client.transcribe(synthesize_speech("fresh start"), turn_detection=None))
    assert list(by_item(pieces).values()) == ["fresh start"]
    sent = [event["type"] for event in local.connections[0].received]
    cleared = sent.index("input_audio_buffer.clear")  # the failed run's audio, at its end
    assert sent[cleared - 1 : cleared + 2] == [
        "input_audio_buffer.append",
        "input_audio_buffer.clear",
        "session.update",
    ]


# --- the official client as a client of the local server ------------------------------------


def test_the_official_client_runs_a_transcription_session_on_the_local_server(
    local: LocalRealtimeServer,
) -> None:
    import openai

    official = openai.OpenAI(
        api_key=KEY, websocket_base_url=local.url.removesuffix("/realtime"), max_retries=0
    )
    with official.realtime.connect(
        extra_query={"intent": "transcription"},
        websocket_connection_options=LOOPBACK,
    ) as connection:
        created = connection.recv()
        assert isinstance(created, SessionCreatedEvent)
        assert isinstance(created.session, RealtimeTranscriptionSessionCreateRequest)
        connection.session.update(
            session={
                "type": "transcription",
                "audio": {
                    "input": {
                        "transcription": {"model": "gpt-4o-mini-transcribe"},
                        "turn_detection": None,
                    }
                },
            }
        )
        connection.input_audio_buffer.append(
            audio=audio.pcm16_to_base64(synthesize_speech("official"))
        )
        connection.input_audio_buffer.commit()
        seen: list[Any] = []
        while not seen or seen[-1].type != "conversation.item.input_audio_transcription.completed":
            seen.append(connection.recv())
    types = [event.type for event in seen]
    assert types[0] == "session.updated" and "input_audio_buffer.committed" in types
    assert seen[-1].transcript == "official"
    for event in seen:
        raw = event.to_dict()
        if event.type == "session.updated":
            assert_valid_session(raw["session"])
        else:
            assert_server_event(raw, "ga")


def test_a_lost_connection_ends_the_stream_with_connection_closed(
    connect: Callable[..., RealtimeClient], local: LocalRealtimeServer
) -> None:
    client = connect(intent="transcription")

    def source() -> Iterator[bytes]:
        yield synthesize_speech("cut")
        local.drop_connections()
        yield SILENCE

    # Whichever comes first: the send that finds the socket gone, or the news of its end.
    with pytest.raises((ConnectionClosed, TransportError, NotConnectedError)):
        list(client.transcribe(source(), turn_detection=None))


def test_semantic_vad_still_waiting_at_the_end_gets_the_tail_committed(
    connect: Callable[..., RealtimeClient], local: LocalRealtimeServer
) -> None:
    client = connect(intent="transcription")
    # The local semantic VAD waits 4 s of silence (eagerness auto): more than the tail.
    pieces = list(client.transcribe(synthesize_speech("semantic"), turn_detection="semantic_vad"))
    assert list(by_item(pieces).values()) == ["semantic"]
    sent = [event["type"] for event in local.connections[0].received]
    assert sent[-1] == "input_audio_buffer.commit"
