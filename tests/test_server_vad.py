"""Turn detection in the local server: the energy VAD, and what sessions do with it.

The detector (``_vad``) is tested on its own: offsets exact to its 10 ms frames, prefix
padding, thresholds, silence durations, the idle timer, every input format. The sessions
are driven through a ``SessionSimulator`` directly (no sockets: what an event causes at
once is there when ``receive`` returns) and through a ``RealtimeClient`` whose voice turn
is nothing but audio. Every server event is checked against the official ``openai``
models of its dialect (``assert_server_event``, the oracle of ``test_server_voice``).
"""

from __future__ import annotations

import base64
import json
import random
import threading
from array import array
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import KEY, user_message
from test_server_voice import GA_FORMATS, Recorded, assert_server_event

from realtime_sync import RealtimeClient, ResponseError, audio
from realtime_sync.testing import (
    InProcessTransport,
    SessionSimulator,
    SimulatorOptions,
    synthesize_speech,
)
from realtime_sync.testing._input_audio import SEMANTIC_SILENCE_MS
from realtime_sync.testing._vad import (
    IdleTimeout,
    SpeechStarted,
    SpeechStopped,
    VadSettings,
    VoiceActivityDetector,
    speech_level_dbfs,
)
from realtime_sync.testing._voice import audio_format

pytestmark = pytest.mark.timeout(30)

WAIT = 5.0
SLOW = 0.25  # seconds between deltas: a response is still in progress when speech comes
Event = dict[str, Any]
FORMATS = ("pcm16", "g711_ulaw", "g711_alaw")
BYTES_PER_MS = {"pcm16": 48, "g711_ulaw": 8, "g711_alaw": 8}
SILENT_SAMPLE = {"pcm16": b"\x00\x00", "g711_ulaw": b"\xff", "g711_alaw": b"\xd5"}
STARTED = "input_audio_buffer.speech_started"
STOPPED = "input_audio_buffer.speech_stopped"
COMMITTED = "input_audio_buffer.committed"
TIMEOUT = "input_audio_buffer.timeout_triggered"
TRANSCRIBED = "conversation.item.input_audio_transcription.completed"


def silence(ms: int, fmt: str = "pcm16") -> bytes:
    """Digital silence in a session format."""
    sample = SILENT_SAMPLE[fmt]
    return sample * (BYTES_PER_MS[fmt] * ms // len(sample))


def speech(text: str, fmt: str = "pcm16") -> bytes:
    """The server's own speech: 60 ms a character."""
    return synthesize_speech(text, fmt)


def noise(ms: int, amplitude: int) -> bytes:
    """Deterministic PCM16 noise of at most ``amplitude``."""
    rng = random.Random(ms * 7919 + amplitude)
    return array("h", (rng.randint(-amplitude, amplitude) for _ in range(24 * ms))).tobytes()


# --- 1. the detector -------------------------------------------------------------------------


def detect(data: bytes, fmt: str = "pcm16", **settings: Any) -> list[object]:
    detector = VoiceActivityDetector(VadSettings(**settings), audio_format(fmt))
    return list(detector.feed(data))


@pytest.mark.parametrize("fmt", FORMATS)
def test_speech_and_silence_give_offsets_exact_to_the_frame(fmt: str) -> None:
    # "hello world": 11 characters, 660 ms, from 500 ms on.
    data = silence(500, fmt) + speech("hello world", fmt) + silence(300, fmt)
    assert detect(data, fmt) == [
        SpeechStarted(audio_start_ms=200, speech_start_ms=500),
        SpeechStopped(audio_end_ms=1160 + 200),
    ]
    assert detect(data, fmt, prefix_padding_ms=0, silence_duration_ms=100) == [
        SpeechStarted(audio_start_ms=500, speech_start_ms=500),
        SpeechStopped(audio_end_ms=1160 + 100),
    ]


@pytest.mark.parametrize("fmt", FORMATS)
def test_chunking_does_not_change_what_is_heard(fmt: str) -> None:
    data = silence(230, fmt) + speech("hi there", fmt) + silence(450, fmt) + speech("x", fmt)
    whole = detect(data, fmt)
    assert whole == [
        SpeechStarted(audio_start_ms=0, speech_start_ms=230),  # padding clamped at 0
        SpeechStopped(audio_end_ms=230 + 480 + 200),
        SpeechStarted(audio_start_ms=1160 - 300, speech_start_ms=1160),
    ]
    for size in (1, 7, 333, 4801):
        detector = VoiceActivityDetector(VadSettings(), audio_format(fmt))
        pieces = [detector.feed(data[i : i + size]) for i in range(0, len(data), size)]
        assert [event for piece in pieces for event in piece] == whole
        assert detector.position_ms == 1220 and detector.speaking


def test_a_start_inside_a_frame_is_reported_at_the_frame() -> None:
    data = silence(505) + speech("a") + silence(205)
    assert detect(data, prefix_padding_ms=0) == [
        SpeechStarted(audio_start_ms=500, speech_start_ms=500),
        SpeechStopped(audio_end_ms=570 + 200),  # speech ends at 565: in the frame to 570
    ]


def test_the_threshold_maps_linearly_onto_decibels() -> None:
    assert [speech_level_dbfs(t) for t in (0.0, 0.5, 1.0)] == [-60.0, -30.0, 0.0]
    loud = speech("speech")  # peaks at -12 dBFS, about -15 dBFS RMS
    assert detect(loud, threshold=0.7) == [SpeechStarted(0, 0)]
    assert detect(loud, threshold=0.75) == []
    assert detect(loud, threshold=1.0) == []
    hiss = noise(500, 100)  # about -55 dBFS
    assert detect(hiss) == []
    assert detect(hiss, threshold=0.05) == [SpeechStarted(0, 0)]
    assert detect(silence(500), threshold=0.0) == []  # digital silence never is speech
    offset = array("h", [-9000] * 24 * 500).tobytes()  # a constant offset is silence too
    assert detect(offset, threshold=0.0) == []


def test_at_threshold_1_nothing_is_speech_not_even_full_scale() -> None:
    # The loudest PCM16 frame: a full-scale square wave, RMS 32767.5 around its mean.
    loudest = array("h", [32767, -32768] * 12 * 500).tobytes()
    assert detect(loudest, threshold=1.0) == []
    assert detect(loudest, threshold=0.999) == [SpeechStarted(0, 0)]


def test_pauses_shorter_than_the_silence_duration_do_not_stop_speech() -> None:
    data = speech("one") + silence(190) + speech("two") + silence(200)
    assert detect(data) == [SpeechStarted(0, 0), SpeechStopped(audio_end_ms=750)]
    pause = speech("one") + silence(200) + speech("two")
    assert detect(pause) == [
        SpeechStarted(0, 0),
        SpeechStopped(audio_end_ms=380),
        SpeechStarted(audio_start_ms=80, speech_start_ms=380),
    ]


@pytest.mark.parametrize(("silence_ms", "stop_ms"), [(0, 70), (10, 70), (205, 270), (1000, 1060)])
def test_silence_durations_round_up_to_whole_frames(silence_ms: int, stop_ms: int) -> None:
    data = speech("a") + silence(1100)
    assert detect(data, silence_duration_ms=silence_ms) == [
        SpeechStarted(0, 0),
        SpeechStopped(audio_end_ms=stop_ms),
    ]


def test_the_idle_timer() -> None:
    detector = VoiceActivityDetector(VadSettings(idle_timeout_ms=1000), audio_format("pcm16"))
    assert detector.feed(silence(300)) == []
    detector.arm_idle_timeout(500)  # ahead of the audio: the answer is still playing
    assert detector.feed(silence(1190)) == []
    assert detector.feed(silence(30)) == [IdleTimeout(audio_start_ms=500, audio_end_ms=1500)]
    assert detector.feed(silence(2000)) == []  # once per arming
    detector.arm_idle_timeout(3520)
    detector.feed(silence(500))
    assert detector.feed(speech("hi") + silence(1000))[0] == SpeechStarted(3720, 4020)
    assert detector.feed(silence(2000)) == []  # speech disarmed it
    detector.arm_idle_timeout(detector.position_ms)
    detector.disarm_idle_timeout()
    assert detector.feed(silence(2000)) == []
    quiet = VoiceActivityDetector(VadSettings(), audio_format("pcm16"))
    quiet.arm_idle_timeout(0)  # no idle_timeout_ms: nothing to arm
    assert quiet.feed(silence(60_000)) == []


# --- 2. sessions, driven directly ---------------------------------------------------------------


class Session:
    """A ``SessionSimulator`` fed JSON frames; its events checked and kept in order."""

    def __init__(self, dialect: str, options: SimulatorOptions) -> None:
        self.dialect = dialect
        self.events: list[Event] = []
        self.failures: list[str] = []
        self._seen = 0
        self._changed = threading.Condition()
        self.simulator = SessionSimulator(
            dialect=dialect,  # type: ignore[arg-type]
            model="gpt-realtime",
            send=self._sent,
            close=lambda code, reason: None,
            options=options,
        )
        self.simulator.open()
        self.take()

    def _sent(self, frame: str) -> None:
        event = json.loads(frame)
        try:
            assert_server_event(event, self.dialect)
        except BaseException as failure:  # raised in the response thread, it would be lost
            self.failures.append(str(failure))
        with self._changed:
            self.events.append(event)
            self._changed.notify_all()

    def send(self, event: Event) -> None:
        self.simulator.receive(json.dumps(event))

    def append(self, data: bytes) -> None:
        self.send({"type": "input_audio_buffer.append", "audio": base64.b64encode(data).decode()})

    def turn_detection(self, setting: Event | None, **session: Any) -> Event:
        """Set the turn detection (and more); return the session as updated."""
        if self.dialect == "ga":
            update: Event = {"type": "realtime", **session}
            update.setdefault("audio", {}).setdefault("input", {})["turn_detection"] = setting
        else:
            update = {"turn_detection": setting, **session}
        self.send({"type": "session.update", "session": update})
        (updated,) = self.take()
        assert updated["type"] == "session.updated", updated
        result: Event = updated["session"]
        return result

    def take(self) -> list[Event]:
        """The events sent since the last take."""
        with self._changed:
            taken, self._seen = self.events[self._seen :], len(self.events)
        return taken

    def take_until(self, event_type: str) -> list[Event]:
        """The events up to the next one of ``event_type``, waiting for it."""
        with self._changed:
            found = self._changed.wait_for(
                lambda: any(e["type"] == event_type for e in self.events[self._seen :]), WAIT
            )
            assert found, f"no {event_type} in {self.events[self._seen :]}"
            types = [e["type"] for e in self.events]
            end = types.index(event_type, self._seen) + 1
            taken, self._seen = self.events[self._seen : end], end
        return taken


@pytest.fixture
def session() -> Iterator[Callable[..., Session]]:
    sessions: list[Session] = []

    def make(dialect: str = "ga", **options: Any) -> Session:
        made = Session(dialect, SimulatorOptions(**options))
        sessions.append(made)
        return made

    yield make
    for made in sessions:
        made.simulator.stop(WAIT)
        assert made.failures == []


def types_of(events: list[Event]) -> list[str]:
    return [event["type"] for event in events]


def from_type(events: list[Event], event_type: str) -> list[Event]:
    """The events from the first of ``event_type`` on (deltas streamed before it dropped)."""
    return events[types_of(events).index(event_type) :]


def only(events: list[Event], event_type: str) -> Event:
    (found,) = [event for event in events if event["type"] == event_type]
    return found


@pytest.mark.parametrize("dialect", ["ga", "beta"])
def test_real_sessions_detect_turns_by_default(
    session: Callable[..., Session], dialect: str
) -> None:
    peer = session(dialect)
    peer.append(silence(1000) + speech("hi") + silence(550))
    events = peer.take()
    # speech 1000-1120 ms; padded start 700; stopped after 200 ms of silence.
    item_added = "conversation.item.added" if dialect == "ga" else "conversation.item.created"
    assert types_of(events)[:4] == [STARTED, STOPPED, COMMITTED, item_added]
    started, stopped, committed = events[:3]
    assert (started["audio_start_ms"], stopped["audio_end_ms"]) == (700, 1320)
    assert started["item_id"] == stopped["item_id"] == committed["item_id"]
    response = peer.take_until("rate_limits.updated")
    assert response[0]["type"] == "response.created"  # create_response: an answer follows
    assert only(response, "response.done")["response"]["output"][0]["content"][0]["text"] == (
        "You said: hi"
    )
    # The 350 ms after the stop stayed in the buffer.
    peer.send({"type": "input_audio_buffer.commit"})
    assert types_of(peer.take())[0] == COMMITTED


@pytest.mark.parametrize("dialect", ["ga", "beta"])
def test_a_turn_commits_from_its_padded_start_to_its_stop(
    session: Callable[..., Session], dialect: str
) -> None:
    peer = session(dialect)
    transcription = {"model": "whisper-1"}  # its usage is the committed audio's duration
    if dialect == "ga":
        peer.turn_detection(
            {"type": "server_vad", "create_response": False},
            audio={"input": {"transcription": transcription}},
        )
    else:
        peer.turn_detection(
            {"type": "server_vad", "create_response": False},
            input_audio_transcription=transcription,
        )
    peer.append(silence(1000) + speech("hi") + silence(400))
    done = only(peer.take(), TRANSCRIBED)
    assert (done["transcript"], done["usage"]) == ("hi", {"type": "duration", "seconds": 0.62})
    # The next speech starts 50 ms after the stop: its padding cannot reach into that turn.
    peer.append(silence(50) + speech("yo") + silence(200))
    events = peer.take()
    assert only(events, STARTED)["audio_start_ms"] == 1320
    assert only(events, STOPPED)["audio_end_ms"] == 1570 + 120 + 200
    assert only(events, TRANSCRIBED)["usage"]["seconds"] == 0.57
    assert "response.created" not in types_of(events)  # create_response is false


def test_the_turn_item_is_announced_before_it_exists(session: Callable[..., Session]) -> None:
    peer = session("ga")
    peer.append(speech("first part"))
    (started,) = peer.take()
    # A manual commit during speech takes the announced item; the rest is another one.
    peer.send({"type": "input_audio_buffer.commit"})
    assert only(peer.take(), COMMITTED)["item_id"] == started["item_id"]
    peer.append(speech("rest") + silence(200))
    events = peer.take()
    assert types_of(events)[:2] == [STOPPED, COMMITTED]
    assert events[0]["item_id"] == events[1]["item_id"] != started["item_id"]
    peer.take_until("response.done")


@pytest.mark.parametrize("dialect", ["ga", "beta"])
def test_speech_interrupts_the_response_in_progress(
    session: Callable[..., Session], dialect: str
) -> None:
    peer = session(dialect, delta_interval=SLOW)
    peer.send(user_message("tell me a story"))
    peer.send({"type": "response.create"})
    first = peer.take_until(
        "response.output_text.delta" if dialect == "ga" else "response.text.delta"
    )
    interrupted_id = only(first, "response.created")["response"]["id"]
    peer.append(speech("wait"))
    # Ended before receive() returned, as a real server ends it at once.
    events = from_type(peer.take(), STARTED)
    done = events[-2]["response"]
    assert types_of(events)[-2:] == ["response.done", "rate_limits.updated"]
    assert (done["id"], done["status"]) == (interrupted_id, "cancelled")
    assert done["status_details"] == {"type": "cancelled", "reason": "turn_detected"}
    assert done["output"][0]["status"] == "incomplete"
    peer.append(silence(200))
    events = peer.take_until("response.done")
    assert types_of(events)[:2] == [STOPPED, COMMITTED]
    answer = only(events, "response.done")["response"]
    assert (answer["status"], answer["output"][0]["content"][0]["text"]) == (
        "completed",
        "You said: wait",
    )


def test_a_turn_in_one_append_answers_after_the_interrupted_response(
    session: Callable[..., Session],
) -> None:
    peer = session("ga", delta_interval=SLOW)
    peer.send({"type": "response.create"})
    peer.take_until("response.output_text.delta")
    peer.append(speech("wait") + silence(200))
    events = from_type(peer.take_until("response.created"), STARTED)
    types = types_of(events)
    assert types[:3] == [STARTED, STOPPED, COMMITTED]
    cancelled = only(events, "response.done")["response"]
    assert cancelled["status_details"]["reason"] == "turn_detected"
    assert types.index("rate_limits.updated") < types.index("response.created")
    answer = only(peer.take_until("response.done"), "response.done")["response"]
    assert answer["output"][0]["content"][0]["text"] == "You said: wait"


def test_without_interrupt_response_the_response_goes_on(session: Callable[..., Session]) -> None:
    peer = session("ga", delta_interval=SLOW)
    peer.turn_detection({"type": "server_vad", "interrupt_response": False})
    peer.send({"type": "response.create"})
    peer.take_until("response.output_text.delta")
    peer.append(speech("hello") + silence(200))
    events = from_type(peer.take_until("response.done"), STARTED)
    assert types_of(events)[:3] == [STARTED, STOPPED, COMMITTED]
    assert only(events, "response.done")["response"]["status"] == "completed"
    # The turn ended while a response was in progress: it gets none ("may fail").
    peer.send({"type": "response.create"})
    events = peer.take_until("response.done")
    assert "error" not in types_of(events)
    assert types_of(peer.events).count("response.created") == 2


def test_out_of_band_responses_are_not_interrupted(session: Callable[..., Session]) -> None:
    peer = session("ga", delta_interval=SLOW)
    peer.send({"type": "response.create", "response": {"conversation": "none"}})
    peer.take_until("response.output_text.delta")
    peer.append(speech("hello") + silence(200))
    # The turn's answer waits for the out-of-band one, which completes.
    first = only(peer.take_until("response.done"), "response.done")["response"]
    assert (first["conversation_id"], first["status"]) == (None, "completed")
    second = only(peer.take_until("response.done"), "response.done")["response"]
    assert second["output"][0]["content"][0]["text"] == "You said: hello"


def test_without_create_response_turns_get_no_answer(session: Callable[..., Session]) -> None:
    peer = session("ga")
    peer.turn_detection({"type": "server_vad", "create_response": False})
    peer.append(speech("hello") + silence(200))
    assert types_of(peer.take()) == [
        STARTED,
        STOPPED,
        COMMITTED,
        "conversation.item.added",
        "conversation.item.done",
    ]
    peer.send({"type": "response.create"})  # accepted: no response was in progress
    peer.take_until("response.done")
    assert types_of(peer.events).count("response.created") == 1


@pytest.mark.parametrize("dialect", ["ga", "beta"])
def test_turn_detection_null_means_manual_commits(
    session: Callable[..., Session], dialect: str
) -> None:
    peer = session(dialect)
    updated = peer.turn_detection(None)
    setting = updated["audio"]["input"] if dialect == "ga" else updated
    assert setting["turn_detection"] is None
    peer.append(speech("hello") + silence(1000))
    assert peer.take() == []
    peer.send({"type": "input_audio_buffer.commit"})
    assert types_of(peer.take())[0] == COMMITTED


@pytest.mark.parametrize(
    ("eagerness", "silence_ms"), [("high", 2000), ("auto", 4000), (None, 4000), ("low", 8000)]
)
def test_semantic_vad_waits_as_long_as_its_eagerness_allows(
    session: Callable[..., Session], eagerness: str | None, silence_ms: int
) -> None:
    assert SEMANTIC_SILENCE_MS[eagerness or "auto"] == silence_ms
    peer = session("beta")
    setting: Event = {"type": "semantic_vad", "create_response": False}
    if eagerness is not None:
        setting["eagerness"] = eagerness
    peer.turn_detection(setting)
    peer.append(silence(500) + speech("so") + silence(silence_ms - 10))
    assert types_of(peer.take()) == [STARTED]
    peer.append(silence(10))
    stopped = peer.take()[0]
    assert (stopped["type"], stopped["audio_end_ms"]) == (STOPPED, 620 + silence_ms)


def test_idle_timeout_commits_the_silence_and_answers(session: Callable[..., Session]) -> None:
    peer = session("ga")
    peer.turn_detection(
        {"type": "server_vad", "idle_timeout_ms": 1000}, output_modalities=["audio"]
    )
    peer.append(silence(250))  # before any response: no timer
    peer.send(user_message("hi"))
    peer.send({"type": "response.create"})
    answer = only(peer.take_until("response.done"), "response.done")["response"]
    assert answer["output"][0]["content"][0]["transcript"] == "You said: hi"  # 720 ms
    peer.take_until("rate_limits.updated")
    # The timer starts where the answer's audio has played: 250 + 720 ms.
    peer.append(silence(1710))
    assert peer.take() == []
    peer.append(silence(10))
    events = peer.take()
    triggered = events[0]
    assert types_of(events)[:3] == [TIMEOUT, COMMITTED, "conversation.item.added"]
    assert (triggered["audio_start_ms"], triggered["audio_end_ms"]) == (970, 1970)
    assert events[1]["item_id"] == triggered["item_id"]
    late = only(peer.take_until("response.done"), "response.done")["response"]
    assert late["output"][0]["content"][0]["transcript"] == "You said: (1970 ms of audio)"
    # Speech stops the timer; its turn's answer starts it again.
    peer.take_until("rate_limits.updated")
    peer.append(silence(500) + speech("yes") + silence(200))
    peer.take_until("response.done")
    peer.take_until("rate_limits.updated")
    assert types_of(peer.take()) == []
    peer.append(silence(2000 + 1000))
    assert types_of(peer.take())[0] == TIMEOUT


def test_idle_timeout_is_ga_server_vad_only(session: Callable[..., Session]) -> None:
    ga = session("ga")
    ga.turn_detection({"type": "semantic_vad", "idle_timeout_ms": 1000})
    ga.send({"type": "response.create"})
    ga.take_until("rate_limits.updated")
    ga.append(silence(3000))
    assert ga.take() == []
    beta = session("beta")
    beta.send({"type": "session.update", "session": {"turn_detection": {"idle_timeout_ms": 1000}}})
    (refused,) = beta.take()
    assert refused["error"]["code"] == "unknown_parameter"
    assert refused["error"]["param"] == "session.turn_detection.idle_timeout_ms"


@pytest.mark.parametrize(
    ("setting", "code", "param"),
    [
        ({"type": "loud"}, "invalid_value", "type"),
        ({"threshold": 0.5}, "missing_required_parameter", "type"),
        ({"type": "server_vad", "threshold": 1.5}, "invalid_value", "threshold"),
        ({"type": "server_vad", "threshold": "0.5"}, "invalid_type", "threshold"),
        ({"type": "server_vad", "silence_duration_ms": -1}, "invalid_value", "silence_duration_ms"),
        ({"type": "server_vad", "idle_timeout_ms": 0}, "invalid_value", "idle_timeout_ms"),
        ({"type": "server_vad", "create_response": "yes"}, "invalid_type", "create_response"),
        ({"type": "semantic_vad", "eagerness": "eager"}, "invalid_value", "eagerness"),
        ({"type": "server_vad", "volume": 3}, "unknown_parameter", "volume"),
        ("server_vad", "invalid_type", ""),
    ],
)
def test_invalid_settings_are_refused_and_change_nothing(
    session: Callable[..., Session], setting: object, code: str, param: str
) -> None:
    peer = session("ga")
    where = "session.audio.input.turn_detection"
    update = {"type": "realtime", "audio": {"input": {"turn_detection": setting}}}
    peer.send({"type": "session.update", "session": update})
    (refused,) = peer.take()
    assert (refused["type"], refused["error"]["code"]) == ("error", code)
    assert refused["error"]["param"] == (f"{where}.{param}" if param else where)
    peer.append(speech("still on") + silence(200))  # the default turn detection
    assert types_of(peer.take())[:2] == [STARTED, STOPPED]
    peer.take_until("response.done")


def test_transcription_sessions_detect_turns_but_never_answer(
    session: Callable[..., Session],
) -> None:
    peer = session("beta")
    peer.send(
        {
            "type": "transcription_session.update",
            "session": {
                "input_audio_format": "g711_ulaw",
                "input_audio_transcription": {"model": "gpt-4o-transcribe"},
            },
        }
    )
    assert types_of(peer.take()) == ["transcription_session.updated"]
    peer.append(silence(100, "g711_ulaw") + speech("note", "g711_ulaw") + silence(500, "g711_ulaw"))
    events = peer.take()  # the transcription session's silence_duration_ms is 500
    assert (events[0]["audio_start_ms"], events[1]["audio_end_ms"]) == (0, 340 + 500)
    assert only(events, TRANSCRIBED)["transcript"] == "note"
    assert "response.created" not in types_of(events)
    assert peer.simulator.conversation()[0][-1]["role"] == "user"


# --- 3. a voice turn through a client -------------------------------------------------------


@pytest.mark.parametrize(
    ("dialect", "fmt"), [("ga", "pcm16"), ("ga", "g711_ulaw"), ("beta", "pcm16")]
)
def test_a_voice_turn_driven_purely_by_audio(tmp_path: Path, dialect: str, fmt: str) -> None:
    question, answer = "What time is it?", "You said: What time is it?"
    transport = InProcessTransport(api_key=KEY)
    client = RealtimeClient(api_key=KEY, transport=transport, protocol=dialect)  # type: ignore[arg-type]
    recorded = Recorded(client, dialect)
    with client:
        updated = client.expect("session.updated")
        transcription = {"model": "gpt-4o-transcribe"}
        if dialect == "ga":
            client.session.update(
                session={
                    "type": "realtime",
                    "output_modalities": ["audio"],
                    "audio": {
                        "input": {"format": GA_FORMATS[fmt], "transcription": transcription},
                        "output": {"format": GA_FORMATS[fmt]},
                    },
                }
            )
        else:
            client.session.update(
                session={
                    "modalities": ["text", "audio"],
                    "input_audio_format": fmt,
                    "output_audio_format": fmt,
                    "input_audio_transcription": transcription,
                }
            )
        updated.wait(WAIT)
        # A WAV of speech-like energy: 400 ms of silence, the question, 600 ms of silence.
        wav = tmp_path / "question.wav"
        audio.write_wav(wav, silence(400) + speech(question) + silence(600))
        done = client.expect("response.done")
        assert client.append_audio(wav, chunk_ms=20) == 400 + 960 + 600
        response = done.wait(WAIT).response
        assert response.status == "completed"

        events = recorded.events
        types = types_of(events)
        started, stopped = only(events, STARTED), only(events, STOPPED)
        assert (started["audio_start_ms"], stopped["audio_end_ms"]) == (100, 1360 + 200)
        committed, heard = only(events, COMMITTED), only(events, TRANSCRIBED)
        user_id = started["item_id"]
        assert stopped["item_id"] == committed["item_id"] == heard["item_id"] == user_id
        assert heard["transcript"] == question
        assert types.index(STOPPED) < types.index(COMMITTED) < types.index("response.created")

        (assistant,) = [item for item in client.conversation.items if item.role == "assistant"]
        assert assistant.transcript == answer
        assert client.conversation.get(user_id).transcript == question  # type: ignore[union-attr]
        pcm = audio.decode_from_format(assistant.audio, GA_FORMATS[fmt])
        rate = audio.format_rate(GA_FORMATS[fmt])
        answer_wav = tmp_path / "answer.wav"
        audio.write_wav(answer_wav, pcm, rate=rate)
        assert audio.read_wav(answer_wav).duration_ms == 60 * len(answer)
    assert recorded.failures == []


def test_a_client_talked_over_gets_its_answer_cancelled_and_cut() -> None:
    long_answer = "A story that takes a while to tell."  # unless interrupted
    transport = InProcessTransport(
        api_key=KEY,
        delta_interval=SLOW,
        reply=lambda heard: f"Ok, {heard}" if heard else long_answer,
    )
    client = RealtimeClient(api_key=KEY, transport=transport)
    recorded = Recorded(client, "ga")
    with client:
        updated = client.expect("session.updated")
        client.session.update(session={"type": "realtime", "output_modalities": ["audio"]})
        updated.wait(WAIT)
        handle = client.create_response()
        first = client.wait_for("response.output_audio.delta", timeout=WAIT)
        truncated = client.expect("conversation.item.truncated")
        client.report_playback(40, item_id=first.item_id)
        client.append_audio(speech("stop") + silence(200), chunk_ms=20)
        with pytest.raises(ResponseError) as raised:
            handle.wait(WAIT)
        assert (raised.value.status, raised.value.reason) == ("cancelled", "turn_detected")
        # The client cut the answer where its playback was when the user spoke.
        assert (truncated.wait(WAIT).item_id, truncated.wait(WAIT).audio_end_ms) == (
            first.item_id,
            40,
        )
        answer = client.wait_for("response.done", timeout=WAIT).response
        assert answer.output[0].content[0].transcript == "Ok, stop"
    assert recorded.failures == []
