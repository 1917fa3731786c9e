"""append_audio(): any WAV or PCM in, the session's input format out, in chunks."""

from __future__ import annotations

import base64
import io
import math
import struct
import wave
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import KEY

from realtime_sync import InvalidEventError, RealtimeClient, audio
from realtime_sync.testing import InProcessTransport

WAIT = 5.0


def cd_wav(seconds: float = 1.0, rate: int = 44100) -> bytes:
    """A stereo 16-bit WAV: a 440 Hz tone on the left, silence on the right."""
    frames = int(rate * seconds)
    samples = b"".join(
        struct.pack("<hh", int(8000 * math.sin(2 * math.pi * 440 * n / rate)), 0)
        for n in range(frames)
    )
    out = io.BytesIO()
    with wave.open(out, "wb") as writer:
        writer.setnchannels(2)
        writer.setsampwidth(2)
        writer.setframerate(rate)
        writer.writeframes(samples)
    return out.getvalue()


@pytest.fixture
def session() -> Iterator[tuple[RealtimeClient, InProcessTransport]]:
    transport = InProcessTransport(api_key=KEY)
    client = RealtimeClient(api_key=KEY, transport=transport)
    client.connect(timeout=WAIT)
    yield client, transport
    client.close(timeout=WAIT)


def appended(transport: InProcessTransport) -> list[bytes]:
    return [
        base64.b64decode(event["audio"])
        for event in transport.received
        if event["type"] == "input_audio_buffer.append"
    ]


def test_a_cd_quality_stereo_wav_arrives_as_24k_mono_of_the_same_duration(
    session: tuple[RealtimeClient, InProcessTransport], tmp_path: Path
) -> None:
    client, transport = session
    path = tmp_path / "question.wav"
    path.write_bytes(cd_wav(seconds=54441 / 44100))
    original_ms = 54441 / 44100 * 1000
    sent_ms = client.append_audio(path, chunk_ms=100)
    chunks = appended(transport)
    assert len(chunks) == math.ceil(original_ms / 100)
    assert all(len(chunk) == 4800 for chunk in chunks[:-1])  # 100 ms of 24 kHz PCM16
    received_ms = sum(len(chunk) for chunk in chunks) / 48
    assert abs(received_ms - original_ms) < 1.0 and abs(sent_ms - original_ms) < 1.0


def test_g711_sessions_get_8k_mu_law(session: tuple[RealtimeClient, InProcessTransport]) -> None:
    client, transport = session
    formats = {"input": {"format": {"type": "audio/pcmu"}}}
    updated = client.expect("session.updated")
    client.session.update(session={"audio": formats})
    updated.wait(WAIT)
    client.append_audio(io.BytesIO(cd_wav()), chunk_ms=20)
    chunks = appended(transport)
    assert len(chunks) == 50 and {len(chunk) for chunk in chunks} == {160}  # 20 ms at 8 kHz
    tone = audio.ulaw_decode(b"".join(chunks))
    assert max(struct.unpack(f"<{len(tone) // 2}h", tone)) > 3000  # the tone, mixed to mono


def test_raw_pcm16_is_sent_as_it_is(session: tuple[RealtimeClient, InProcessTransport]) -> None:
    client, transport = session
    pcm = bytes(range(256)) * 75  # 19,200 bytes: 400 ms
    assert client.append_audio(pcm, chunk_ms=250) == 400
    assert b"".join(appended(transport)) == pcm


def test_what_cannot_be_converted_is_refused_and_nothing_sent(
    session: tuple[RealtimeClient, InProcessTransport],
) -> None:
    client, transport = session
    with pytest.raises(InvalidEventError, match="audio"):
        client.append_audio(b"\x00" * 4801)  # half a sample
    with pytest.raises(InvalidEventError):
        client.append_audio(io.BytesIO(b"RIFF not really a wave file"))
    assert appended(transport) == []
