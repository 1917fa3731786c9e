"""Realtime translation end to end: our client, the local endpoint, the official client."""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from conftest import KEY

from realtime_sync import (
    AuthenticationError,
    BadRequestError,
    ConfigurationError,
    ConnectionClosed,
    ErrorEvent,
    InputTranscriptDelta,
    InvalidEventError,
    NotConnectedError,
    OutputAudioChunk,
    OutputTranscriptDelta,
    RealtimeAPI,
    RealtimeTimeoutError,
    RealtimeTranslationClient,
    TranslationOutputTranscriptDeltaEvent,
    TranslationPiece,
    TranslationSession,
    TranslationSessionClosedEvent,
    UnknownEventTypeError,
    WouldDeadlockError,
    audio,
)
from realtime_sync.testing import (
    TRANSLATION_MODELS,
    InProcessTransport,
    LocalRealtimeServer,
    SimulatorOptions,
    TranslationSimulator,
    recognize_speech,
    synthesize_speech,
    translate_text,
)
from realtime_sync.testing._admission import AdmissionSettings, OpeningFailure, admit

pytestmark = pytest.mark.timeout(60)

WAIT = 5.0
PAUSE = bytes(2 * 24000 * 300 // 1000)  # 300 ms of silence: the end of an utterance


def _texts(pieces: list[TranslationPiece], kind: type[Any]) -> str:
    return "".join(piece.text for piece in pieces if isinstance(piece, kind))


def _audio(pieces: list[TranslationPiece]) -> bytes:
    return b"".join(piece.audio for piece in pieces if isinstance(piece, OutputAudioChunk))


# --- translate(): speech in, transcripts and speech out -----------------------------------------


def test_translate_yields_transcript_translation_and_speech(
    server: LocalRealtimeServer, make_translator: Callable[..., RealtimeTranslationClient]
) -> None:
    client = make_translator()
    session = client.connect(WAIT)
    assert isinstance(session, TranslationSession)
    assert (session.type, session.model) == ("translation", "gpt-realtime-translate")
    assert session.audio.output.language == "es"
    heard: list[str] = []
    client.on("session.output_transcript.delta", lambda event: heard.append(event.delta))

    pieces = list(
        client.translate(
            synthesize_speech("good morning"),
            language="fr",
            transcription_model="gpt-4o-transcribe",
            timeout=WAIT,
        )
    )

    assert _texts(pieces, InputTranscriptDelta) == "good morning"
    assert _texts(pieces, OutputTranscriptDelta) == "[fr] good morning"
    assert "".join(heard) == "[fr] good morning"  # handlers heard the same events
    spoken = _audio(pieces)
    assert recognize_speech(spoken) == translate_text("good morning", "fr")
    chunks = [piece for piece in pieces if isinstance(piece, OutputAudioChunk)]
    assert all(chunk.sample_rate == 24000 for chunk in chunks)
    assert {piece.elapsed_ms for piece in pieces} == {600}  # 12 characters: 720 ms of speech
    # The session ended: session.close was sent, the connection closed.
    assert [event["type"] for event in server.received][-1] == "session.close"
    assert not client.connected
    assert client.session.current is not None
    assert client.session.current.audio.output.language == "fr"


def test_utterances_and_defaults(
    make_translator: Callable[..., RealtimeTranslationClient],
) -> None:
    client = make_translator()
    client.connect(WAIT)
    speech = synthesize_speech("one") + PAUSE + synthesize_speech("two three") + PAUSE
    pieces = list(client.translate(speech + bytes(4800) + b"\x01\x02", timeout=WAIT))
    # No transcription asked for: no source text; the session's language (es).
    assert _texts(pieces, InputTranscriptDelta) == ""
    deltas = [piece.text for piece in pieces if isinstance(piece, OutputTranscriptDelta)]
    assert deltas == ["[es]", " one", " [es]", " two", " three"]
    elapsed = [piece.elapsed_ms for piece in pieces if isinstance(piece, OutputTranscriptDelta)]
    assert elapsed == [0, 0, 1000, 1000, 1000]  # ends at 180 + 300 + 540 ms


def test_sources_chunk_iterables_wav_files_and_unreadable_audio(
    tmp_path: Path, make_translator: Callable[..., RealtimeTranslationClient]
) -> None:
    speech = synthesize_speech("ok")
    microphone = iter([speech[:1000], b"", speech[1000:], PAUSE])
    client = make_translator()
    client.connect(WAIT)
    assert _texts(list(client.translate(microphone, timeout=WAIT)), OutputTranscriptDelta) == (
        "[es] ok"
    )

    path = tmp_path / "ok.wav"
    audio.write_wav(path, speech + PAUSE)
    client = make_translator()
    client.connect(WAIT)
    assert _texts(list(client.translate(path, timeout=WAIT)), OutputTranscriptDelta) == "[es] ok"

    noise = bytes(b"\x00\x40" * 2400)  # 100 ms of a constant: not the server's speech
    client = make_translator()
    client.connect(WAIT)
    pieces = list(client.translate(noise, language="de", timeout=WAIT))
    assert _texts(pieces, OutputTranscriptDelta) == "[de] (100 ms of audio)"


def test_realtime_pacing_keeps_to_the_audio(
    make_translator: Callable[..., RealtimeTranslationClient],
) -> None:
    client = make_translator()
    client.connect(WAIT)
    arrivals: list[float] = []
    start = time.monotonic()
    for _piece in client.translate(
        bytes(2 * 24000 * 600 // 1000) + synthesize_speech("a"), realtime=True, timeout=WAIT
    ):
        arrivals.append(time.monotonic() - start)
    assert arrivals and min(arrivals) >= 0.5  # the speech went after 600 ms of silence


# --- the senders and handlers ---------------------------------------------------------------------


def test_senders_handlers_and_close_session(
    server: LocalRealtimeServer, make_translator: Callable[..., RealtimeTranslationClient]
) -> None:
    client = make_translator()
    seen: list[Any] = []
    client.on("session.*", seen.append)
    with pytest.raises(UnknownEventTypeError, match="translation session"):
        client.on("response.done", seen.append)
    client.on("custom.event", seen.append, allow_unknown=True)
    client.connect(WAIT)
    assert client.session.id.startswith("sess_")

    updated = client.expect("session.updated")
    client.session.update(session={"audio": {"output": {"language": "it"}}})
    assert updated.wait(WAIT).session.audio.output.language == "it"
    delta = client.expect("session.output_transcript.delta", predicate=lambda ev: ev.delta == " si")
    duration = client.append_audio(synthesize_speech("si") + PAUSE)
    assert duration == pytest.approx(420)
    client.input_audio_buffer.append(audio=bytes(480))
    assert isinstance(delta.wait(WAIT), TranslationOutputTranscriptDeltaEvent)

    closed = client.close_session(WAIT)
    assert isinstance(closed, TranslationSessionClosedEvent)
    assert not client.connected
    with pytest.raises(NotConnectedError):
        client.input_audio_buffer.append(audio=b"\0\0")
    with pytest.raises(NotConnectedError, match="connect"):
        client.translate(b"")
    types = [event.type for event in seen]
    assert types[0] == "session.created"
    assert "session.updated" in types and types[-1] == "session.closed"
    assert [event["type"] for event in server.received] == [
        "session.update",
        "session.input_audio_buffer.append",
        "session.input_audio_buffer.append",
        "session.input_audio_buffer.append",
        "session.input_audio_buffer.append",
        "session.close",
    ]
    assert server.connections[0].auth == "header"
    assert server.connections[0].query == {"model": "gpt-realtime-translate"}


def test_blocking_calls_refuse_the_dispatcher_thread(
    make_translator: Callable[..., RealtimeTranslationClient],
) -> None:
    client = make_translator()
    failures: list[BaseException] = []
    done = threading.Event()

    @client.on("session.created")
    def inside(event: Any) -> None:
        for call in (
            lambda: client.translate(b""),
            lambda: client.wait_for("session.updated", timeout=1),
            lambda: client.close_session(1),
        ):
            try:
                call()
            except WouldDeadlockError as exc:
                failures.append(exc)
        done.set()

    client.connect(WAIT)
    assert done.wait(WAIT)
    assert len(failures) == 3
    assert client.connected  # nothing was closed


# --- errors ---------------------------------------------------------------------------------------


def test_refused_events_raise_from_translate(
    make_translator: Callable[..., RealtimeTranslationClient],
) -> None:
    client = make_translator()
    client.connect(WAIT)
    with pytest.raises(BadRequestError, match="language") as caught:
        list(client.translate(synthesize_speech("x"), language="", timeout=WAIT))
    assert caught.value.param == "session.audio.output.language"


@pytest.mark.parametrize(
    ("event", "code", "param"),
    [
        ({"type": "response.create"}, "invalid_value", "type"),
        (
            {"type": "session.update", "session": {"model": "m"}},
            "unknown_parameter",
            "session.model",
        ),
        (
            {"type": "session.update", "session": {"audio": {"output": {"voice": "x"}}}},
            "unknown_parameter",
            "session.audio.output.voice",
        ),
        (
            {"type": "session.update", "session": {"audio": {"input": {"noise_reduction": {}}}}},
            "invalid_value",
            "session.audio.input.noise_reduction.type",
        ),
        (
            {"type": "session.update", "session": {"audio": {"input": {"transcription": 1}}}},
            "invalid_value",
            "session.audio.input.transcription.model",
        ),
        ({"type": "session.update"}, "missing_required_parameter", "session"),
        ({"type": "session.input_audio_buffer.append", "audio": "%%"}, "invalid_value", "audio"),
        ({"type": "session.input_audio_buffer.append"}, "missing_required_parameter", "audio"),
    ],
)
def test_invalid_events_get_error_events(
    make_translator: Callable[..., RealtimeTranslationClient],
    event: dict[str, Any],
    code: str,
    param: str,
) -> None:
    client = make_translator()
    client.connect(WAIT)
    error = client.expect("error")
    event_id = client.send(event)
    answer = error.wait(WAIT)
    assert isinstance(answer, ErrorEvent)
    assert (answer.error.code, answer.error.param, answer.error.event_id) == (code, param, event_id)
    assert client.connected  # errors are not fatal
    assert client.close_session(WAIT).type == "session.closed"


def test_the_simulator_refuses_frames_that_are_not_events() -> None:
    sent: list[dict[str, Any]] = []
    closes: list[int] = []
    simulator = TranslationSimulator(
        dialect="ga",
        model="gpt-realtime-translate",
        send=lambda frame: sent.append(json.loads(frame)),
        close=lambda code, reason: closes.append(code),
        options=SimulatorOptions(),
    )
    simulator.open()
    simulator.receive('{"event_id": "e1"}')
    simulator.receive(b"binary")
    simulator.receive("not json")
    simulator.receive('{"type": "session.close", "event_id": "e2"}')
    simulator.stop(WAIT)
    assert [event["type"] for event in sent] == [
        "session.created",
        "error",
        "error",
        "error",
        "session.closed",
    ]
    assert [event["error"]["code"] for event in sent[1:4]] == [
        "invalid_event",
        "invalid_event",
        "invalid_json",
    ]
    assert sent[1]["error"]["event_id"] == "e1"
    assert closes == [1000]


def test_refused_connections_raise_from_connect(
    make_translator: Callable[..., RealtimeTranslationClient],
) -> None:
    with pytest.raises(AuthenticationError):
        make_translator(api_key="rs-wrong-key").connect(WAIT)
    with pytest.raises(BadRequestError, match="gpt-realtime-2"):
        make_translator(model="gpt-realtime-2").connect(WAIT)


def test_admission_of_the_translation_path() -> None:
    settings = AdmissionSettings(api_key=KEY)
    headers = {"authorization": f"Bearer {KEY}"}

    def outcome(query: dict[str, str]) -> Any:
        return admit("/v1/realtime/translations", query, headers, [], settings).outcome

    assert set(TRANSLATION_MODELS) == {"gpt-realtime-translate"}
    assert not isinstance(outcome({"model": "gpt-realtime-translate"}), OpeningFailure)
    for query, code in [
        ({}, "missing_model"),
        ({"model": "gpt-realtime-2.1"}, "model_not_found"),
        ({"model": "gpt-realtime-translate", "intent": "transcription"}, "invalid_value"),
    ]:
        refused = outcome(query)
        assert isinstance(refused, OpeningFailure)
        assert (refused.code, refused.error["code"]) == (4000, code)


def test_a_stalled_session_times_out(
    server: LocalRealtimeServer, make_translator: Callable[..., RealtimeTranslationClient]
) -> None:
    client = make_translator()
    client.connect(WAIT)
    server.half_open()
    with pytest.raises(RealtimeTimeoutError, match="translate"):
        list(client.translate(synthesize_speech("x"), timeout=0.3))


def test_a_lost_connection_ends_the_client_without_reconnecting(
    server: LocalRealtimeServer, make_translator: Callable[..., RealtimeTranslationClient]
) -> None:
    client = make_translator()
    client.connect(WAIT)
    client.once("session.output_audio.delta", lambda event: server.drop_connections())
    speech = synthesize_speech("hi") + PAUSE + bytes(2 * 24000 * 2)  # then 2 s of silence
    with pytest.raises(ConnectionClosed):
        list(client.translate(speech, realtime=True, timeout=WAIT))
    assert not client.connected
    assert len(server.connections) == 1


def test_an_ephemeral_translation_key_opens_its_session(
    server: LocalRealtimeServer, make_translator: Callable[..., RealtimeTranslationClient]
) -> None:
    config = {"model": "gpt-realtime-translate", "audio": {"output": {"language": "pt"}}}
    secret = RealtimeAPI(KEY, base_url=server.http_base_url).translations.client_secrets.create(
        session=config
    )
    client = make_translator(api_key=secret.value)
    session = client.connect(WAIT)
    # Only the translation fields of the key's session: the Realtime ones are not its own.
    assert session.to_dict()["audio"] == {
        "input": {"noise_reduction": None, "transcription": None},
        "output": {"language": "pt"},
    }
    assert set(session.to_dict()) == {"id", "type", "model", "expires_at", "audio"}
    pieces = list(client.translate(synthesize_speech("bom"), timeout=WAIT))
    assert _texts(pieces, OutputTranscriptDelta) == "[pt] bom"


def test_configuration() -> None:
    client = RealtimeTranslationClient("rs-key", base_url="https://proxy.example/v1/")
    assert client.url == (
        "wss://proxy.example/v1/realtime/translations?model=gpt-realtime-translate"
    )
    with pytest.raises(ConfigurationError, match="clear text"):
        RealtimeTranslationClient("rs-key", url="ws://example.com/v1/realtime/translations")
    with pytest.raises(ConfigurationError, match="model"):
        RealtimeTranslationClient("rs-key", model="")
    with pytest.raises(InvalidEventError, match="audio"):
        RealtimeTranslationClient("rs-key").append_audio(b"\0")  # half a sample
    assert "disconnected" in repr(client)


# --- the official client against the local endpoint -------------------------------------------


# The openai package opens websockets' sync connection outside a context manager.
OFFICIAL_WARNING = "ignore:connect\\(\\) must be used as a context manager"


def _official_client(server: LocalRealtimeServer) -> Any:
    import openai

    base = server.url.rsplit("/realtime", 1)[0]  # ws://127.0.0.1:<port>/v1
    return openai.OpenAI(
        api_key=KEY,
        base_url=base.replace("ws://", "http://"),
        websocket_base_url=base,
        max_retries=0,
    )


@pytest.mark.filterwarnings(OFFICIAL_WARNING)
def test_the_official_client_translates_with_the_local_endpoint(
    server: LocalRealtimeServer,
) -> None:
    from openai.types.realtime import (
        RealtimeTranslationOutputAudioDeltaEvent,
        RealtimeTranslationSessionClosedEvent,
        RealtimeTranslationSessionCreatedEvent,
        RealtimeTranslationSessionUpdatedEvent,
    )

    client = _official_client(server)
    with client.realtime.translations.connect(
        model="gpt-realtime-translate",
        websocket_connection_options={"proxy": None, "open_timeout": WAIT},
    ) as connection:
        created = connection.recv()
        assert isinstance(created, RealtimeTranslationSessionCreatedEvent)
        connection.session.update(
            session={
                "audio": {
                    "output": {"language": "de"},
                    "input": {"transcription": {"model": "gpt-4o-transcribe"}},
                }
            }
        )
        updated = connection.recv()
        assert isinstance(updated, RealtimeTranslationSessionUpdatedEvent)
        assert updated.session.audio.output is not None
        assert updated.session.audio.output.language == "de"
        speech = base64.b64encode(synthesize_speech("thank you")).decode()
        connection.session.input_audio_buffer.append(audio=speech)
        connection.session.close()
        events = []
        while not events or events[-1].type != "session.closed":
            events.append(connection.recv())
    assert isinstance(events[-1], RealtimeTranslationSessionClosedEvent)
    source = "".join(e.delta for e in events if e.type == "session.input_transcript.delta")
    target = "".join(e.delta for e in events if e.type == "session.output_transcript.delta")
    assert (source, target) == ("thank you", "[de] thank you")
    spoken = b"".join(
        base64.b64decode(e.delta)
        for e in events
        if isinstance(e, RealtimeTranslationOutputAudioDeltaEvent)
    )
    assert recognize_speech(spoken) == "[de] thank you"
    assert server.connections[0].path == "/v1/realtime/translations"


@pytest.mark.filterwarnings(OFFICIAL_WARNING)
def test_the_official_translation_session_helper(server: LocalRealtimeServer) -> None:
    from openai.lib.realtime_translation import TranslationSession as OfficialSession
    from openai.types.realtime import RealtimeTranslationSessionClosedEvent

    client = _official_client(server)
    with OfficialSession(
        client.realtime.translations,
        model="gpt-realtime-translate",
        websocket_connection_options={"proxy": None},
    ) as connection:
        connection.send(
            {
                "type": "session.input_audio_buffer.append",
                "audio": base64.b64encode(synthesize_speech("yes")).decode(),
            }
        )
        connection.send({"type": "session.close"})
        types = []
        while not types or types[-1] != "session.closed":
            event = connection.recv(timeout=WAIT)
            types.append(event.type)
    assert types[0] == "session.created"
    assert "session.output_audio.delta" in types
    assert isinstance(event, RealtimeTranslationSessionClosedEvent)


def test_the_in_process_transport_serves_translation_too() -> None:
    transport = InProcessTransport(api_key=KEY)
    with RealtimeTranslationClient(
        model="gpt-realtime-translate", api_key=KEY, transport=transport
    ) as client:
        speech = synthesize_speech("Hello there", "pcm16") + b"\0" * 24000  # then 0.5 s quiet
        pieces = list(client.translate(speech, language="fr", timeout=10))
    said = "".join(p.text for p in pieces if isinstance(p, OutputTranscriptDelta))
    assert said == "[fr] Hello there"
    assert any(isinstance(p, OutputAudioChunk) for p in pieces)
