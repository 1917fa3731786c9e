"""Every example runs, offline, as a user would run it: `pytest examples/`."""

from __future__ import annotations

import array
import base64
import contextlib
import itertools
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

import websocket

from realtime_sync import audio
from realtime_sync.testing import recognize_speech, synthesize_speech

HERE = Path(__file__).parent
BYTES_PER_MS = 48  # of the sessions' audio, PCM16 at 24 kHz
# Offline whatever the machine has: no key, so the examples use the local server.
OFFLINE = {
    "OPENAI_API_KEY": "",
    "AZURE_OPENAI_API_KEY": "",
    "AZURE_OPENAI_ENDPOINT": "",
    "OPENAI_API_VERSION": "",
}


def run(script: str, *args: str, stdin: str = "") -> str:
    env = {**os.environ, **OFFLINE}
    result = subprocess.run(
        [sys.executable, str(HERE / script), "--local", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=45,
        env=env,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    return result.stdout


def test_text_chat_streams_each_answer() -> None:
    out = run("text_chat.py", stdin="hello there\nand again\n")
    assert "assistant: You said: hello there" in out
    assert "assistant: You said: and again" in out
    assert out.count("tokens]") == 2


def test_voice_turn_wav_in_wav_out(tmp_path: Path) -> None:
    answer = tmp_path / "answer.wav"
    out = run("voice_turn.py", "--out", str(answer))
    assert "heard back: 'You said: What time is it?'" in out
    clip = audio.read_wav(answer)
    assert clip.rate == 24000 and clip.channels == 1
    assert abs(clip.duration_ms - 60 * len("You said: What time is it?")) < 1


def test_tool_calling() -> None:
    out = run("tool_calling.py")
    assert 'assistant: Result of get_weather: {"city":"Paris","temperature":21,"unit":"c"}' in out


def test_interruption_truncates_at_what_was_played() -> None:
    out = run("interruption.py", "--played-ms", "300")
    assert "response cancelled (client_cancelled)" in out
    assert "truncated item_" in out
    played = int(out.rsplit(" at ", 1)[1].split(" ms")[0])
    assert 300 <= played < 600  # cut at the first chunk boundary past 300 ms


def test_quickstart() -> None:
    out = run("quickstart.py")
    assert "session sess_" in out
    assert "You said: What is 2+2? " in out


def test_azure_ga_and_legacy_urls() -> None:
    out = run("azure.py", "--deployment", "my-realtime")
    assert "/openai/v1/realtime?model=my-realtime (ga dialect)" in out
    legacy = "/openai/realtime?api-version=2024-10-01-preview&deployment=my-realtime"
    assert f"{legacy} (beta dialect)" in out
    assert "assistant: You said: Hello over the GA URL." in out
    assert "assistant: You said: Hello over the legacy URL." in out


def test_reconnect_and_rollover_keep_the_conversation() -> None:
    out = run("reconnect_and_rollover.py")
    assert "[reconnecting: ConnectionClosed, attempt 1]" in out
    assert "[reconnected; 2 items replayed]" in out
    assert "[session rolled over (expired): " in out and "; 4 items replayed]" in out
    held = out.split("now holds the whole conversation:\n", 1)[1]
    assert held.splitlines() == [
        "    user: My name is Ada.",
        "    assistant: You said: My name is Ada.",
        "    user: Do you remember me?",
        "    assistant: You said: Do you remember me?",
        "    user: Still there?",
        "    assistant: You said: Still there?",
    ]


class Served:
    """An example that serves HTTP (on a free port), running in a process of its own."""

    def __init__(self, script: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, str(HERE / script), "--local", "--port", "0"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, **OFFLINE},
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.output: list[str] = []  # the lines of stdout waited for so far
        self.errors: list[str] = []  # stderr (request logs), read as it comes: no pipe fills
        self.readers = [
            threading.Thread(target=self._read, args=(stream, put), daemon=True)
            for stream, put in (
                (self.process.stdout, self.lines.put),
                (self.process.stderr, self.errors.append),
            )
        ]
        for reader in self.readers:
            reader.start()
        self.address = self.wait_for_line("listening on ").split("listening on ", 1)[1]

    @staticmethod
    def _read(stream: IO[str], put: Callable[[str], object]) -> None:
        for line in stream:
            put(line.rstrip("\n"))

    def wait_for_line(self, text: str, timeout: float = 30) -> str:
        """The next line of its output that holds ``text``."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self.lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"no {text!r} in {self.output}; {self.errors}") from None
            self.output.append(line)
            if text in line:
                return line

    def stop(self) -> str:
        """Stop it as Ctrl+C does; return what it wrote to stderr."""
        self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(timeout=20)
        finally:
            self.kill()
        errors = "\n".join(self.errors)
        assert self.process.returncode == 0, errors
        return errors

    def kill(self) -> None:
        """Make sure it has ended, and close its pipes once read to the end."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)
        for reader in self.readers:
            reader.join(timeout=5)
        for stream in (self.process.stdout, self.process.stderr):
            if stream is not None:
                stream.close()


@contextlib.contextmanager
def served(script: str) -> Iterator[Served]:
    app = Served(script)
    try:
        yield app
    except BaseException:
        app.kill()
        raise
    if app.process.poll() is None:
        app.stop()


def test_flask_view_answers_over_http() -> None:
    with served("flask_view.py") as app:
        request = urllib.request.Request(
            app.address,
            data=json.dumps({"question": "What is 2+2?"}).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            assert response.status == 200
            body = json.load(response)
        assert body["answer"] == "You said: What is 2+2?"
        assert body["tokens"] > 0


def test_incoming_call_verifies_the_webhook_accepts_joins_calls_the_tool_and_hangs_up() -> None:
    out = run("incoming_call.py", "--port", "0")
    call_id = out.split("ringing: call ", 1)[1].split()[0]
    # A webhook whose body was changed after signing is refused, before anything is done.
    assert "webhook refused: no webhook signature matches the secret" in out
    assert "tampered webhook: HTTP 400" in out
    assert "rtc_someone_else" not in out
    # The genuine one is verified and answered; the call is handled on a thread of its own.
    assert "webhook verified: realtime.call.incoming evt_" in out
    assert "webhook: HTTP 200" in out
    lines = [
        line
        for line in out.splitlines()
        if line.startswith(("call ", "caller", "tool", "assistant"))
    ]
    assert lines == [
        f"call {call_id}: accepted",
        f"call {call_id}: joined; the model has the tools ['lookup_order']",
        'caller: call lookup_order {"order_id": "A1234"}',
        "tool lookup_order(order_id='A1234') -> {'status': 'shipped', 'arrives': 'Thursday'}",
        'assistant: Result of lookup_order: {"status":"shipped","arrives":"Thursday"}',
        f"call {call_id}: hung up",
    ]


class FakeTwilio:
    """Twilio's side of a bidirectional media stream, as its documentation describes it: a
    20 ms μ-law frame every 20 ms (the caller's speech, else line silence), and what the
    bridge sends played in real time, its marks sent back as they are reached."""

    FRAME = 160  # bytes of μ-law in 20 ms at 8 kHz
    SILENCE = audio.ulaw_encode(bytes(2 * FRAME))

    def __init__(self, url: str) -> None:
        self.ws = websocket.create_connection(url, timeout=10)
        self.sid = "MZ00000000000000000000000000000001"
        self.inbox: queue.Queue[dict[str, object]] = queue.Queue()
        threading.Thread(target=self._receive, daemon=True).start()
        self.speech = b""  # what the caller is still to say
        self.queued: list[tuple[float, str | None, bytes]] = []  # (ends at ms, mark, audio)
        self.played_ms = 0.0  # of everything sent to be played
        self.sent_ms = 0.0
        self.heard = b""  # audio received since the last take_heard()
        self.clears = 0
        self.send({"event": "connected", "protocol": "Call", "version": "1.0.0"})
        media_format = {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1}
        self.send(
            {
                "event": "start",
                "start": {
                    "streamSid": self.sid,
                    "tracks": ["inbound"],
                    "mediaFormat": media_format,
                },
            }
        )

    def _receive(self) -> None:
        with contextlib.suppress(websocket.WebSocketException, OSError):
            while message := self.ws.recv():  # "" once closed
                self.inbox.put(json.loads(message))

    def __enter__(self) -> FakeTwilio:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.ws.close()

    def send(self, message: dict[str, object]) -> None:
        self.ws.send(json.dumps({**message, "streamSid": self.sid}))

    def say(self, text: str) -> None:
        self.speech += synthesize_speech(text, "g711_ulaw")

    def run_until(self, done: Callable[[], bool], timeout: float = 10) -> None:
        """One frame every 20 ms, playing and answering, until ``done()``."""
        deadline = time.monotonic() + timeout
        tick = time.monotonic()
        while not done():
            assert time.monotonic() < deadline, "timed out"
            frame, self.speech = self.speech[: self.FRAME], self.speech[self.FRAME :]
            payload = base64.b64encode(frame.ljust(self.FRAME, self.SILENCE[:1])).decode()
            self.send({"event": "media", "media": {"payload": payload}})
            self._play(20)
            self._handle_inbox()
            tick += 0.02
            time.sleep(max(0.0, tick - time.monotonic()))

    def _play(self, ms: float) -> None:
        if self.played_ms < self.sent_ms:
            self.played_ms = min(self.sent_ms, self.played_ms + ms)
        while self.queued and self.queued[0][0] <= self.played_ms:
            _, mark, _ = self.queued.pop(0)
            if mark is not None:
                self.send({"event": "mark", "mark": {"name": mark}})

    def _handle_inbox(self) -> None:
        while not self.inbox.empty():
            message = self.inbox.get()
            assert message["streamSid"] == self.sid
            if message["event"] == "media":
                chunk = base64.b64decode(message["media"]["payload"])  # type: ignore[index]
                self.heard += chunk
                self.sent_ms += len(chunk) / 8
                self.queued.append((self.sent_ms, None, chunk))
            elif message["event"] == "mark":
                self.queued.append((self.sent_ms, message["mark"]["name"], b""))  # type: ignore[index]
            elif message["event"] == "clear":  # drop what is unplayed, send its marks back
                self.clears += 1
                for _, mark, _ in self.queued:
                    if mark is not None:
                        self.send({"event": "mark", "mark": {"name": mark}})
                self.queued.clear()
                self.sent_ms = self.played_ms

    def heard_text(self) -> str | None:
        return recognize_speech(self.heard, "g711_ulaw")

    def hang_up(self) -> None:
        self.send({"event": "stop", "stop": {"callSid": "CA00000000000000000000000000000001"}})
        self.ws.close()


def test_telephony_bridge_answers_the_caller_and_stops_when_cut_off() -> None:
    with served("telephony_bridge.py") as bridge, FakeTwilio(bridge.address) as call:
        bridge.wait_for_line(f"call {call.sid}: started")
        call.say("What time is it?")
        call.run_until(lambda: call.heard_text() == "You said: What time is it?")
        answer_ms = call.sent_ms

        # The caller talks over the answer once 300 ms of it has played.
        call.run_until(lambda: call.played_ms >= 300)
        clears, call.heard = call.clears, b""
        call.say("Stop.")
        call.run_until(lambda: call.clears > clears)
        assert call.played_ms < answer_ms  # it was cut off, not heard to the end
        # The next turn is answered as usual.
        call.run_until(lambda: call.heard_text() == "You said: Stop.")
        call.hang_up()
        bridge.wait_for_line(f"call {call.sid}: ended")

        # The answer was cut where the caller stopped hearing it.
        cut = next(line for line in bridge.output if "caller cut in: " in line)
        truncated_at = int(cut.split(" truncated at ")[1].split(" ms")[0])
        assert 300 <= truncated_at < answer_ms
        assert "Traceback" not in bridge.stop()


# A stand-in for sounddevice, put first on the example's PYTHONPATH: its microphone says
# SOUNDDEVICE_SAYS (after some silence, then silence again), its speaker appends what it
# plays to SOUNDDEVICE_PLAYED; both run at the pace of real devices. With
# SOUNDDEVICE_THEN_SAYS, the microphone says that too, over the speaker: as soon as the
# speaker has played 500 ms of sound (not by the clock, so a slow machine cannot shift it).
FAKE_SOUNDDEVICE = """
import os, threading, time
from realtime_sync.testing import synthesize_speech

_sounding_blocks = 0  # blocks with sound the speaker has played (100 ms each in the example)

class _Stream:
    def __init__(self, samplerate, channels, dtype, blocksize, callback):
        assert (channels, dtype) == (1, "int16")
        self.size, self.seconds, self.callback = 2 * blocksize, blocksize / samplerate, callback
        self.running = True
        self.thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc_info):
        self.running = False
        self.thread.join()

    def _run(self):
        tick = time.monotonic()
        while self.running:
            self.block()
            tick += self.seconds
            time.sleep(max(0.0, tick - time.monotonic()))

class RawInputStream(_Stream):
    def __init__(self, **options):
        super().__init__(**options)
        self.audio = bytes(4800) + synthesize_speech(os.environ["SOUNDDEVICE_SAYS"])
        self.then = os.environ.get("SOUNDDEVICE_THEN_SAYS")

    def block(self):
        if not self.audio and self.then and _sounding_blocks >= 5:
            self.audio, self.then = synthesize_speech(self.then), None
        data, self.audio = self.audio[: self.size], self.audio[self.size :]
        self.callback(data.ljust(self.size, b"\\0"), self.size // 2, None, None)

class RawOutputStream(_Stream):
    def block(self):
        global _sounding_blocks
        out = bytearray(self.size)
        self.callback(out, self.size // 2, None, None)
        _sounding_blocks += any(out)
        with open(os.environ["SOUNDDEVICE_PLAYED"], "ab") as played:
            played.write(out)
"""


def run_with_sounddevice(
    stub: str, tmp_path: Path, *args: str, says: str = "What time is it?", then_says: str = ""
) -> subprocess.CompletedProcess[str]:
    (tmp_path / "sounddevice.py").write_text(stub)
    env = {
        **os.environ,
        **OFFLINE,
        "PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")]),
        "SOUNDDEVICE_SAYS": says,
        "SOUNDDEVICE_THEN_SAYS": then_says,
        "SOUNDDEVICE_PLAYED": str(tmp_path / "played.pcm"),
    }
    return subprocess.run(
        [sys.executable, str(HERE / "microphone.py"), "--local", *args],
        capture_output=True,
        text=True,
        timeout=45,
        env=env,
        check=False,
    )


def test_microphone_hears_the_question_and_plays_the_answer(tmp_path: Path) -> None:
    result = run_with_sounddevice(FAKE_SOUNDDEVICE, tmp_path, "--turns", "1")
    assert result.returncode == 0, result.stderr
    assert "you: What time is it?" in result.stdout
    assert "assistant: You said: What time is it?" in result.stdout
    played = (tmp_path / "played.pcm").read_bytes()
    assert recognize_speech(b"".join(sounds(played)), "pcm16") == "You said: What time is it?"


def test_microphone_stops_the_answer_when_you_talk_over_it(tmp_path: Path) -> None:
    question, correction = "What time is it in Lisbon right now?", "Stop, that's enough, thanks."
    result = run_with_sounddevice(
        FAKE_SOUNDDEVICE,
        tmp_path,
        "--turns",
        "2",
        says=question,
        then_says=correction,  # once 500 ms of the answer has played
    )
    assert result.returncode == 0, result.stderr
    played = sounds((tmp_path / "played.pcm").read_bytes())
    assert len(played) == 2, "not two answers, with silence between them"
    heard_first, heard_second = played
    # The first answer stopped playing when the user cut in: its start was played (read
    # back here in whole characters), not the rest.
    answer = f"You said: {question}"
    character = len(synthesize_speech(" "))  # bytes of one character's speech
    characters = len(heard_first) // character
    played_ms = round(len(heard_first) / BYTES_PER_MS)  # give or take the sample at its ends
    assert played_ms >= 500
    assert characters < len(answer)
    assert recognize_speech(heard_first[: characters * character]) == answer[:characters]
    # The client cut the answer in the conversation at about what was played (its last
    # report of playback before the user cut in).
    lines = result.stdout.splitlines()
    cut = next((line for line in lines if line.startswith("(interrupted: ")), None)
    assert cut is not None, result.stdout
    cut_ms = int(cut.split("you heard ")[1].split(" ms")[0])
    assert played_ms - 500 < cut_ms <= played_ms
    # The user was heard both times, and the correction answered to the end.
    you = [line for line in lines if line.startswith("you: ")]
    assert you == [f"you: {question}", f"you: {correction}"]
    assert lines.index(cut) < lines.index(you[1])
    assert recognize_speech(heard_second) == f"You said: {correction}"


def sounds(pcm: bytes, gap_ms: int = 700) -> list[bytes]:
    """PCM16 (24 kHz) cut at its silences of ``gap_ms`` or more (between answers), each
    part without its runs of digital silence of 10 ms or more (the speaker's silence before
    and after an answer, and any gap a loaded machine made)."""
    parts = [array.array("h")]
    for silent, run in itertools.groupby(array.array("h", pcm), key=lambda sample: sample == 0):
        samples = list(run)
        if not silent or len(samples) < 240:
            parts[-1].extend(samples)
        elif len(samples) >= gap_ms * BYTES_PER_MS // 2 and parts[-1]:
            parts.append(array.array("h"))
    return [part.tobytes() for part in parts if part]


def test_microphone_without_sounddevice_says_what_to_install(tmp_path: Path) -> None:
    # What importing sounddevice does when the PortAudio library is missing.
    result = run_with_sounddevice('raise OSError("PortAudio library not found")', tmp_path)
    assert result.returncode == 2
    assert "pip install 'realtime_sync[audio]'" in result.stderr
    assert "PortAudio library not found" in result.stderr
