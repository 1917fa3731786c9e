"""Interruption: cut the model's audio at what was played, delete it when nothing was."""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from typing import Any

import pytest
from conftest import KEY

from realtime_sync import RealtimeClient, decode_event
from realtime_sync._conversation import ConversationState
from realtime_sync._interruption import Playback
from realtime_sync.testing import InProcessTransport

WAIT = 5.0
SECOND_OF_PCM = b"\x01\x00" * 24000


def ev(event_type: str, **fields: Any) -> Any:
    return decode_event(json.dumps({"type": event_type, **fields}))


class Recorder:
    def __init__(self, busy: bool = True) -> None:
        self.sent: list[Mapping[str, Any]] = []
        self.busy = busy

    def send(self, event: Mapping[str, Any]) -> str:
        self.sent.append(event)
        return "evt"

    def current(self) -> str | None:
        return "resp_1" if self.busy else None


def speaking(
    audio: bytes = SECOND_OF_PCM, keep_audio: bool = True
) -> tuple[ConversationState, Recorder, Playback]:
    state = ConversationState(keep_audio=keep_audio)
    recorder = Recorder()
    playback = Playback(recorder, state, recorder)
    item = {
        "id": "a1",
        "type": "message",
        "role": "assistant",
        "status": "in_progress",
        "content": [{"type": "output_audio", "transcript": ""}],
    }
    where = {"response_id": "r", "item_id": "a1", "output_index": 0, "content_index": 0}
    for event in (
        ev(
            "conversation.item.added",
            item={"id": "u1", "type": "message", "role": "user", "content": []},
        ),
        ev("conversation.item.added", item=item, previous_item_id="u1"),
        ev("response.output_audio.delta", delta=base64.b64encode(audio).decode(), **where),
    ):
        state.receive(event)
        playback.receive(event)
    return state, recorder, playback


def test_an_interruption_at_480_ms_truncates_there() -> None:
    _, recorder, playback = speaking()
    done = playback.interrupt(played_ms=480)
    assert recorder.sent == [
        {"type": "response.cancel", "response_id": "resp_1"},
        {
            "type": "conversation.item.truncate",
            "item_id": "a1",
            "content_index": 0,
            "audio_end_ms": 480,
        },
    ]
    assert (done.item_id, done.played_ms, done.action, done.cancelled) == (
        "a1",
        480,
        "truncated",
        True,
    )


def test_nothing_played_deletes_the_item() -> None:
    _, recorder, playback = speaking()
    recorder.busy = False
    done = playback.interrupt(played_ms=0)
    assert recorder.sent == [{"type": "conversation.item.delete", "item_id": "a1"}]
    assert done.action == "deleted" and not done.cancelled


def test_played_time_is_clamped_to_the_audio_received() -> None:
    _, recorder, playback = speaking(SECOND_OF_PCM[: 48 * 300])  # 300 ms received
    assert playback.interrupt(played_ms=2000).played_ms == 300
    assert recorder.sent[-1]["audio_end_ms"] == 300


def test_reported_playback_and_speech_started_interrupt_by_themselves() -> None:
    _, recorder, playback = speaking()
    playback.receive(ev("input_audio_buffer.speech_started", audio_start_ms=0, item_id="u2"))
    assert recorder.sent == []  # nothing reported: the app does not play audio
    playback.report(250)
    playback.receive(ev("input_audio_buffer.speech_started", audio_start_ms=10, item_id="u2"))
    assert recorder.sent[-1] == {
        "type": "conversation.item.truncate",
        "item_id": "a1",
        "content_index": 0,
        "audio_end_ms": 250,
    }


@pytest.mark.parametrize(
    ("session", "cancels"),
    [
        (None, False),  # no session seen: the server's default, interrupt_response true
        ({"type": "realtime", "audio": {"input": {"turn_detection": None}}}, False),
        (
            {
                "type": "realtime",
                "audio": {"input": {"turn_detection": {"type": "server_vad"}}},
            },
            False,
        ),
        (
            {
                "type": "realtime",
                "audio": {
                    "input": {"turn_detection": {"type": "server_vad", "interrupt_response": False}}
                },
            },
            True,
        ),
        ({"turn_detection": {"type": "server_vad", "interrupt_response": False}}, True),  # beta
    ],
)
def test_speech_leaves_the_cancel_to_the_server_when_it_cancels_by_itself(
    session: dict[str, Any] | None, cancels: bool
) -> None:
    # A cancel of our own would find the response cancelled already: an error event back.
    _, recorder, playback = speaking()
    if session is not None:
        playback.receive(ev("session.updated", session={"id": "sess_1", **session}))
    playback.report(250)
    playback.receive(ev("input_audio_buffer.speech_started", audio_start_ms=10, item_id="u2"))
    sent = [event["type"] for event in recorder.sent]
    assert sent == ["response.cancel"] * cancels + ["conversation.item.truncate"]
    assert playback.interrupt().cancelled is False  # the response counts as cancelled
    assert [event["type"] for event in recorder.sent] == sent


def test_no_audio_item_no_cut() -> None:
    recorder = Recorder(busy=False)
    done = Playback(recorder, ConversationState(), recorder).interrupt(played_ms=100)
    assert done.action == "none" and recorder.sent == []


@pytest.mark.parametrize("played", [480, 0])
def test_interrupt_through_the_client(played: int) -> None:
    transport = InProcessTransport(api_key=KEY)
    with RealtimeClient(api_key=KEY, transport=transport) as client:
        client.send_text("hello", timeout=WAIT)
        assistant = client.conversation.items[-1]
        arrived = client.expect("response.output_audio.delta")
        transport.push(
            {
                "type": "response.output_audio.delta",
                "response_id": "r",
                "item_id": assistant.id,
                "output_index": 0,
                "content_index": 0,
                "delta": base64.b64encode(SECOND_OF_PCM).decode(),
            }
        )
        arrived.wait(WAIT)
        result = client.interrupt(played_ms=played)
        kind = "conversation.item.truncate" if played else "conversation.item.delete"
        (sent,) = transport.wait_for_received(kind, timeout=WAIT)
    assert result.item_id == assistant.id == sent["item_id"]
    assert not result.cancelled  # the reply was complete: nothing to cancel
    if played:
        assert sent["audio_end_ms"] == 480 and result.action == "truncated"
    else:
        assert result.action == "deleted"


def test_audio_heard_to_the_end_is_not_cut_when_the_user_speaks_again() -> None:
    _, recorder, playback = speaking()
    playback.report(1000)  # the whole second was played
    recorder.busy = False
    playback.receive(ev("input_audio_buffer.speech_started", audio_start_ms=0, item_id="u2"))
    assert recorder.sent == []


def test_without_kept_audio_the_cut_is_still_clamped_to_what_arrived() -> None:
    *_, playback = speaking(SECOND_OF_PCM[: 48 * 300], keep_audio=False)
    assert playback.interrupt(played_ms=float("inf")).played_ms == 300


def test_a_second_interrupt_cuts_nothing_more_and_cancels_once() -> None:
    _, recorder, playback = speaking()
    playback.interrupt(played_ms=200)
    again = playback.interrupt(played_ms=100)
    assert again.action == "none" and not again.cancelled
    assert [event["type"] for event in recorder.sent] == [
        "response.cancel",
        "conversation.item.truncate",
    ]


def test_playback_reports_must_be_numbers() -> None:
    _, _, playback = speaking()
    with pytest.raises(ValueError, match="NaN"):
        playback.report(float("nan"))
