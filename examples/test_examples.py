"""Every example runs, offline, as a user would run it: `pytest examples/`."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from realtime_sync import audio

HERE = Path(__file__).parent


def run(script: str, *args: str, stdin: str = "") -> str:
    env = {**os.environ, "OPENAI_API_KEY": ""}  # offline whatever the machine has
    result = subprocess.run(
        [sys.executable, str(HERE / script), "--local", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
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
