"""Recording a session: every event sent and received as JSON lines, audio elided, no key."""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path

from conftest import KEY

from realtime_sync import RealtimeClient
from realtime_sync.testing import InProcessTransport

WAIT = 5.0


def test_a_recording_holds_both_directions_in_order_without_audio_or_key(tmp_path: Path) -> None:
    transport = InProcessTransport(api_key=KEY, reply=f"my key is {KEY}")
    path = tmp_path / "session.jsonl"
    with RealtimeClient(api_key=KEY, transport=transport) as client:
        with client.record(path):
            client.append_audio(b"\x00\x00" * 2400)  # 100 ms
            client.send_text("hello", timeout=WAIT, response={"output_modalities": ["audio"]})
        client.send_text("not recorded", timeout=WAIT)
    text = path.read_text()
    assert KEY not in text
    lines = [json.loads(line) for line in text.splitlines()]
    assert all(set(line) == {"time", "direction", "event"} for line in lines)
    assert [line["time"] for line in lines] == sorted(line["time"] for line in lines)
    sent = [line["event"] for line in lines if line["direction"] == "sent"]
    assert [event["type"] for event in sent] == [
        "input_audio_buffer.append",
        "conversation.item.create",
        "response.create",
    ]
    assert sent[0]["audio"] == "<4800 bytes of audio>" and sent[0]["event_id"]
    received = [line["event"]["type"] for line in lines if line["direction"] == "received"]
    assert "response.done" in received and "client.closed" not in received
    deltas = [
        line["event"]["delta"]
        for line in lines
        if line["event"]["type"] == "response.output_audio.delta"
    ]
    assert deltas and all(d.endswith("bytes of audio>") for d in deltas)
    assert "not recorded" not in text


def test_audio_can_be_kept_and_streams_are_left_open() -> None:
    transport = InProcessTransport(api_key=KEY)
    stream = io.StringIO()
    with RealtimeClient(api_key=KEY, transport=transport) as client:
        recording = client.record(stream, audio=True)
        client.append_audio(b"\x01\x00" * 2400)
        recording.close()
        recording.close()  # idempotent
    (line,) = [json.loads(text) for text in stream.getvalue().splitlines()]
    assert base64.b64decode(line["event"]["audio"]) == b"\x01\x00" * 2400
    assert not stream.closed


def test_a_recording_that_cannot_be_written_stops_and_the_session_goes_on() -> None:
    transport = InProcessTransport(api_key=KEY)
    stream = io.StringIO()
    with RealtimeClient(api_key=KEY, transport=transport) as client:
        recording = client.record(stream)
        stream.close()  # as a full disk or a file closed by someone else would
        for n in range(3):
            assert client.send_text(f"turn {n}", timeout=WAIT).status == "completed"
        assert recording.closed
        assert len(client.conversation.items) == 6


def test_recording_leaves_the_callers_event_alone() -> None:
    transport = InProcessTransport(api_key=KEY)
    item = {
        "type": "message",
        "role": "user",
        "content": [{"type": "input_audio", "audio": base64.b64encode(b"\x00" * 480).decode()}],
    }
    event = {"type": "conversation.item.create", "item": item}
    with RealtimeClient(api_key=KEY, transport=transport) as client, client.record(io.StringIO()):
        client.send(event)
    assert item["content"][0]["audio"] == base64.b64encode(b"\x00" * 480).decode()
