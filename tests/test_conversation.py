"""Conversation state: pure reducer tests with events as a server sends them, then the
client's view of a real session."""

from __future__ import annotations

import base64
import gc
import json
from typing import Any

import pytest
from conftest import KEY

from realtime_sync import (
    ConversationUpdatedEvent,
    ItemCompletedEvent,
    RealtimeClient,
    decode_event,
)
from realtime_sync._conversation import ConversationState
from realtime_sync.testing import InProcessTransport

WAIT = 5.0


def ev(event_type: str, **fields: Any) -> Any:
    return decode_event(json.dumps({"type": event_type, **fields}))


def message(item_id: str, role: str, *parts: dict[str, Any], status: str = "completed") -> Any:
    return {
        "id": item_id,
        "object": "realtime.item",
        "type": "message",
        "role": role,
        "status": status,
        "content": list(parts),
    }


def feed(state: ConversationState, *events: Any) -> None:
    for event in events:
        assert state.receive(event) is event


def added(item: dict[str, Any], previous: str | None = None) -> Any:
    return ev("conversation.item.added", item=item, previous_item_id=previous)


def test_items_follow_previous_item_id_not_arrival_order() -> None:
    state = ConversationState()
    feed(
        state,
        added(message("a", "user", {"type": "input_text", "text": "first"})),
        added(message("c", "user", {"type": "input_text", "text": "third"}), "a"),
        added(message("b", "user", {"type": "input_text", "text": "second"}), "a"),
    )
    assert [item.id for item in state.items] == ["a", "b", "c"]
    assert [item.text for item in state.items] == ["first", "second", "third"]


def test_text_audio_and_transcripts_accumulate_from_deltas() -> None:
    emitted: list[Any] = []
    state = ConversationState(emit=emitted.append)
    pcm = bytes(range(200)) * 24  # 4800 bytes: 100 ms of PCM16 at 24 kHz
    where = {"response_id": "r", "item_id": "m", "output_index": 0, "content_index": 0}
    feed(
        state,
        ev(
            "response.output_item.added",
            response_id="r",
            output_index=0,
            item=message("m", "assistant", status="in_progress"),
        ),
        ev("response.content_part.added", part={"type": "audio", "transcript": ""}, **where),
        ev("response.output_audio.delta", delta=base64.b64encode(pcm[:2400]).decode(), **where),
        ev("response.output_audio_transcript.delta", delta="Hel", **where),
        ev("response.output_audio.delta", delta=base64.b64encode(pcm[2400:]).decode(), **where),
        ev("response.output_audio_transcript.delta", delta="lo", **where),
        ev("response.output_audio_transcript.done", transcript="Hello", **where),
        ev(
            "conversation.item.done",
            item=message("m", "assistant", {"type": "output_audio", "transcript": "Hello"}),
        ),
    )
    (item,) = state.items
    assert item.audio == pcm and item.transcript == "Hello" and item.status == "completed"
    kinds = [(e.kind, e.delta) for e in emitted if isinstance(e, ConversationUpdatedEvent)]
    assert ("transcript", "Hel") in kinds and ("transcript", "lo") in kinds
    (completed,) = [e for e in emitted if isinstance(e, ItemCompletedEvent)]
    assert completed.item.transcript == "Hello" and completed.to_dict()["item"]["audio_bytes"]


def test_a_late_input_transcript_lands_on_its_item() -> None:
    state = ConversationState()
    feed(
        state,
        added(message("u", "user", {"type": "input_audio", "transcript": None})),
        added(message("a", "assistant", {"type": "output_text", "text": "Sure."}), "u"),
        ev(
            "conversation.item.input_audio_transcription.delta",
            item_id="u",
            content_index=0,
            delta="turn the",
        ),
        ev(
            "conversation.item.input_audio_transcription.completed",
            item_id="u",
            content_index=0,
            transcript="turn the lights on",
        ),
    )
    user, assistant = state.items
    assert user.transcript == "turn the lights on" and assistant.transcript == ""
    assert assistant.text == "Sure."


def test_function_call_arguments_accumulate() -> None:
    state = ConversationState()
    call = {
        "id": "f",
        "type": "function_call",
        "name": "get_weather",
        "call_id": "c1",
        "arguments": "",
        "status": "in_progress",
    }
    where = {"response_id": "r", "item_id": "f", "output_index": 0, "call_id": "c1"}
    feed(
        state,
        ev("response.output_item.added", response_id="r", output_index=0, item=call),
        ev("response.function_call_arguments.delta", delta='{"city": ', **where),
        ev("response.function_call_arguments.delta", delta='"Paris"}', **where),
    )
    (item,) = state.items
    assert item.arguments == '{"city": "Paris"}' and item.name == "get_weather"
    assert item.call_id == "c1"
    feed(
        state,
        ev(
            "response.function_call_arguments.done",
            name="get_weather",
            arguments='{"city":"Paris"}',
            **where,
        ),
    )
    assert state.items[0].arguments == '{"city":"Paris"}'


def test_truncation_cuts_audio_at_the_played_point_and_deletion_removes() -> None:
    state = ConversationState()
    pcm = b"\x01\x00" * 24000  # 1 s of PCM16 at 24 kHz
    where = {"response_id": "r", "item_id": "m", "output_index": 0, "content_index": 0}
    feed(
        state,
        added(message("m", "assistant", {"type": "output_audio", "transcript": "Hi"})),
        ev("response.output_audio.delta", delta=base64.b64encode(pcm).decode(), **where),
        ev("conversation.item.truncated", item_id="m", content_index=0, audio_end_ms=480),
    )
    (item,) = state.items
    assert len(item.audio) == 480 * 24 * 2 and item.truncated_ms == 480 and item.transcript == ""
    feed(state, ev("conversation.item.deleted", item_id="m"))
    assert state.items == () and state.get("m") is None


def test_g711_sessions_truncate_at_eight_bytes_per_ms() -> None:
    state = ConversationState()
    session = {"type": "realtime", "audio": {"output": {"format": {"type": "audio/pcmu"}}}}
    where = {"response_id": "r", "item_id": "m", "output_index": 0, "content_index": 0}
    feed(
        state,
        ev("session.updated", session=session),
        added(message("m", "assistant")),
        ev("response.output_audio.delta", delta=base64.b64encode(b"\xff" * 8000).decode(), **where),
        ev("conversation.item.truncated", item_id="m", content_index=0, audio_end_ms=250),
    )
    assert len(state.items[0].audio) == 2000


def test_bounded_memory_drops_audio_and_old_items() -> None:
    state = ConversationState(keep_audio=False, max_items=2)
    where = {"response_id": "r", "output_index": 0, "content_index": 0}
    for n in range(5):
        feed(
            state,
            added(message(f"i{n}", "assistant"), f"i{n - 1}" if n else None),
            ev("response.output_audio.delta", item_id=f"i{n}", delta="AAAA", **where),
        )
    assert [item.id for item in state.items] == ["i3", "i4"]
    assert all(item.audio == b"" for item in state.items)
    with pytest.raises(ValueError, match="max_items"):
        ConversationState(max_items=0)


def test_usage_totals_sum_every_response() -> None:
    state = ConversationState()
    usage = {
        "input_tokens": 10,
        "output_tokens": 5,
        "total_tokens": 15,
        "input_token_details": {"text_tokens": 6, "audio_tokens": 4, "cached_tokens": 2},
        "output_token_details": {"text_tokens": 1, "audio_tokens": 4},
    }
    for _ in range(3):
        feed(
            state, ev("response.done", response={"id": "r", "status": "completed", "usage": usage})
        )
    totals = state.usage
    assert (totals.responses, totals.total_tokens, totals.input_cached_tokens) == (3, 45, 6)
    assert (totals.input_audio_tokens, totals.output_audio_tokens) == (12, 12)
    feed(state, ev("rate_limits.updated", rate_limits=[{"name": "tokens", "remaining": 9}]))
    assert state.rate_limits[0].remaining == 9


@pytest.mark.parametrize("protocol", ["ga", "beta"])
def test_the_clients_conversation_after_real_turns(protocol: str) -> None:
    transport = InProcessTransport(api_key=KEY, reply=lambda text: f"echo {text}")
    client = RealtimeClient(api_key=KEY, transport=transport, protocol=protocol)  # type: ignore[arg-type]
    completed: list[Any] = []
    client.on("client.conversation.item_completed", completed.append)
    with client:
        client.send_text("one", timeout=WAIT)
        client.send_text("two", timeout=WAIT)
        items = client.conversation.items
    assert [(i.role, i.text) for i in items] == [
        ("user", "one"),
        ("assistant", "echo one"),
        ("user", "two"),
        ("assistant", "echo two"),
    ]
    assert client.conversation.get(items[1].id) == items[1]
    assert client.usage.responses == 2 and client.usage.total_tokens > 0
    assert client.rate_limits
    assert {i.item.id for i in completed} >= {items[1].id, items[3].id}


def test_deleted_and_evicted_items_do_not_come_back() -> None:
    state = ConversationState(max_items=2)
    feed(
        state,
        added(message("u1", "user")),
        added(message("a1", "assistant"), "u1"),
        added(message("u2", "user"), "a1"),  # evicts u1
        ev(
            "conversation.item.input_audio_transcription.completed",
            item_id="u1",
            content_index=0,
            transcript="late",
        ),
        ev("conversation.item.deleted", item_id="a1"),
        ev(
            "response.output_item.done",
            response_id="r",
            output_index=0,
            item=message("a1", "assistant"),
        ),
    )
    assert [item.id for item in state.items] == ["u2"]


def test_an_abandoned_event_iterator_stops_listening() -> None:
    transport = InProcessTransport(api_key=KEY)
    with RealtimeClient(api_key=KEY, transport=transport) as client:
        stream = client.events(timeout=WAIT)
        client.send_text("one", timeout=WAIT)
        for _ in stream:
            break
        del stream  # left with break, and dropped
        gc.collect()
        assert client.off("*") == 0  # nothing left registered


def test_an_id_deleted_and_created_again_is_an_item_again() -> None:
    state = ConversationState()
    feed(
        state,
        added(message("item_x", "user", {"type": "input_text", "text": "one"})),
        ev("conversation.item.deleted", item_id="item_x"),
        added(message("item_x", "user", {"type": "input_text", "text": "two"})),
    )
    assert [(i.id, i.text) for i in state.items] == [("item_x", "two")]


def test_audio_that_is_not_base64_leaves_the_rest_readable() -> None:
    state = ConversationState()
    where = {"response_id": "r", "item_id": "a1", "output_index": 0, "content_index": 0}
    pcm = bytes(range(200)) * 24
    feed(
        state,
        added(message("a1", "assistant")),
        ev("response.output_audio.delta", delta="not base64 at all!", **where),
        ev("response.output_audio.delta", delta=base64.b64encode(pcm).decode(), **where),
    )
    (item,) = state.items
    assert item.audio == pcm  # the garbage is dropped, the audio kept
    assert state.items[0].audio == pcm  # and a second look sees the same
