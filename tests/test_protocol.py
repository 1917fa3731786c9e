"""Typed senders, session state and dialect handling against the local server."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any

import pytest
from conftest import CONFORMANCE, KEY

from realtime_sync import InvalidEventError, RealtimeClient
from realtime_sync._client_events import ResponseCreateEvent
from realtime_sync._resources import MAX_APPEND_BYTES
from realtime_sync._server_events import _EVENT_CLASSES as EVENT_CLASSES
from realtime_sync.events import BETA_SERVER_EVENTS, GA_SERVER_EVENTS, GenericEvent
from realtime_sync.testing import LocalRealtimeServer

pytestmark = pytest.mark.timeout(60)

MakeClient = Callable[..., RealtimeClient]
USER_ITEM = {
    "type": "message",
    "role": "user",
    "content": [{"type": "input_text", "text": "hello"}],
}


def connected(make_client: MakeClient, dialect: str, **options: Any) -> RealtimeClient:
    client = make_client(protocol=dialect, **options)
    client.on("error", lambda ev: None)
    client.connect(timeout=5)
    return client


@pytest.mark.parametrize("dialect", ["ga", "beta"])
def test_senders_send_the_wire_events(
    server: LocalRealtimeServer, make_client: MakeClient, dialect: str
) -> None:
    client = connected(make_client, dialect)
    ids = [
        client.conversation.item.create(item=USER_ITEM),
        client.conversation.item.create(item=USER_ITEM, previous_item_id="root", event_id="mine"),
        client.conversation.item.retrieve(item_id="item_x"),
        client.conversation.item.truncate(item_id="item_x", content_index=0, audio_end_ms=480),
        client.conversation.item.delete(item_id="item_x"),
        client.input_audio_buffer.append(audio=b"\x00\x01" * 8),
        client.input_audio_buffer.commit(),
        client.input_audio_buffer.clear(),
        client.output_audio_buffer.clear(),
        client.response.create(response={"metadata": {"k": "v"}}),
        client.response.cancel(),
    ]
    sent = server.wait_for_received(count=len(ids), timeout=5)
    assert [event["event_id"] for event in sent] == ids
    assert ids[1] == "mine"
    stripped = [{k: v for k, v in event.items() if k != "event_id"} for event in sent]
    assert stripped == [
        {"type": "conversation.item.create", "item": USER_ITEM},
        {"type": "conversation.item.create", "item": USER_ITEM, "previous_item_id": "root"},
        {"type": "conversation.item.retrieve", "item_id": "item_x"},
        {
            "type": "conversation.item.truncate",
            "item_id": "item_x",
            "content_index": 0,
            "audio_end_ms": 480,
        },
        {"type": "conversation.item.delete", "item_id": "item_x"},
        {
            "type": "input_audio_buffer.append",
            "audio": base64.b64encode(b"\x00\x01" * 8).decode(),
        },
        {"type": "input_audio_buffer.commit"},
        {"type": "input_audio_buffer.clear"},
        {"type": "output_audio_buffer.clear"},
        {"type": "response.create", "response": {"metadata": {"k": "v"}}},
        {"type": "response.cancel"},
    ]


@pytest.mark.parametrize("dialect", ["ga", "beta"])
def test_session_update_in_either_vocabulary(
    server: LocalRealtimeServer, make_client: MakeClient, dialect: str
) -> None:
    client = connected(make_client, dialect)
    for session in (
        {"instructions": "Be brief.", "modalities": ["text"]},
        {"instructions": "Be brief.", "output_modalities": ["text"]},
    ):
        updated = client.expect("session.updated")
        client.session.update(session=session)
        event = updated.wait(5)
        assert event.session.instructions == "Be brief."
        assert client.session.current is event.session
        if dialect == "ga":
            assert client.session.output_modalities == ["text"]
        else:
            assert client.session.modalities == ["text"]
    sent = server.wait_for_received("session.update", count=2, timeout=5)
    assert sent[0]["session"] == sent[1]["session"]


def test_session_update_refuses_a_field_with_no_equivalent(
    server: LocalRealtimeServer, make_client: MakeClient
) -> None:
    client = connected(make_client, "ga")
    with pytest.raises(InvalidEventError, match="'temperature'"):
        client.session.update(session={"temperature": 0.6})
    marker = client.input_audio_buffer.clear()
    assert [event["event_id"] for event in server.wait_for_received(timeout=5)] == [marker]


def test_session_resource_before_connecting(make_client: MakeClient) -> None:
    client = make_client()
    assert not client.session
    assert client.session.current is None
    with pytest.raises(AttributeError, match="connect"):
        _ = client.session.id


def test_transcription_session_update_is_beta_only(
    server: LocalRealtimeServer, make_client: MakeClient
) -> None:
    ga = connected(make_client, "ga")
    with pytest.raises(InvalidEventError, match=r"session\.update"):
        ga.transcription_session.update(session={"input_audio_format": "pcm16"})
    beta = connected(make_client, "beta")
    updated = beta.expect("transcription_session.updated")
    beta.transcription_session.update(session={"input_audio_format": "pcm16"})
    assert updated.wait(5).type == "transcription_session.updated"


def test_audio_append_accepts_base64_and_refuses_other_types(
    server: LocalRealtimeServer, make_client: MakeClient
) -> None:
    client = connected(make_client, "ga")
    client.input_audio_buffer.append(audio="AAAAAAAA")  # 6 bytes: three PCM16 samples
    received = server.wait_for_received("input_audio_buffer.append", timeout=5)
    assert received[0]["audio"] == "AAAAAAAA"
    with pytest.raises(InvalidEventError, match="bytes"):
        client.input_audio_buffer.append(audio=[1, 2])  # type: ignore[arg-type]
    with pytest.raises(InvalidEventError, match="no audio"):
        client.input_audio_buffer.append(audio=b"")


def test_audio_over_the_limit_is_split_at_whole_samples(
    server: LocalRealtimeServer, make_client: MakeClient
) -> None:
    client = connected(make_client, "ga")
    audio = bytes(range(256)) * (MAX_APPEND_BYTES // 256)  # 15 MiB raw: 20 MiB as base64
    last = client.input_audio_buffer.append(audio=audio, event_id="big")
    sent = server.wait_for_received("input_audio_buffer.append", count=2, timeout=20)
    assert [event["event_id"] for event in sent] == ["big.1", "big.2"]
    assert last == "big.2"
    assert all(len(event["audio"]) <= MAX_APPEND_BYTES for event in sent)
    chunks = [base64.b64decode(event["audio"]) for event in sent]
    assert all(len(chunk) % 2 == 0 for chunk in chunks)
    assert b"".join(chunks) == audio


def test_typed_client_events_are_accepted_by_send(
    server: LocalRealtimeServer, make_client: MakeClient
) -> None:
    client = connected(make_client, "ga")
    event = ResponseCreateEvent.build(response={"metadata": {"n": "1"}})
    assert event.to_dict() == {"type": "response.create", "response": {"metadata": {"n": "1"}}}
    done = client.expect("response.done")
    event_id = client.send(event)
    assert done.wait(5).response.metadata == {"n": "1"}
    assert server.received[-1] == {**event.to_dict(), "event_id": event_id}


def test_handlers_hear_events_under_either_dialects_name(make_client: MakeClient) -> None:
    beta = connected(make_client, "beta")
    heard: list[str] = []
    beta.on("response.output_text.delta", lambda ev: heard.append(ev.type))
    beta.on("conversation.item.added", lambda ev: heard.append(ev.type))
    done = beta.expect("response.output_text.done")  # beta sends response.text.done
    beta.conversation.item.create(item=USER_ITEM)
    beta.response.create()
    assert done.wait(5).type == "response.text.done"
    assert "response.text.delta" in heard
    assert "conversation.item.created" in heard

    ga = connected(make_client, "ga")
    ga_heard: list[str] = []
    ga.on("response.text.delta", lambda ev: ga_heard.append(ev.type))
    finished = ga.expect("response.done")
    ga.response.create()
    finished.wait(5)
    assert ga_heard and set(ga_heard) == {"response.output_text.delta"}


def test_normalized_beta_events_arrive_under_ga_names(make_client: MakeClient) -> None:
    client = connected(make_client, "beta", normalize_events=True)
    types: list[str] = []
    client.on("*", lambda ev: types.append(ev.type))
    done = client.expect("response.done")
    client.conversation.item.create(item=USER_ITEM)
    client.response.create()
    done.wait(5)
    assert "response.output_text.delta" in types
    assert "response.output_text.done" in types
    assert "conversation.item.added" in types
    assert not {"response.text.delta", "response.text.done", "conversation.item.created"} & set(
        types
    )


def test_azure_legacy_normalized(server: LocalRealtimeServer) -> None:
    client = RealtimeClient.azure(
        endpoint=server.azure_endpoint,
        deployment="d",
        api_key=KEY,
        api_version="2024-10-01-preview",
        normalize_events=True,
    )
    deltas: list[str] = []
    client.on("response.output_text.delta", lambda ev: deltas.append(ev.type))
    with client:
        done = client.expect("response.done")
        client.response.create()
        done.wait(5)
    assert deltas and set(deltas) == {"response.output_text.delta"}


def _spec_examples(dialect: str) -> list[dict[str, Any]]:
    data = json.loads((CONFORMANCE / "openapi_realtime_examples.json").read_text(encoding="utf-8"))
    examples = data["server"] if dialect == "ga" else data["beta"]["server"]
    names = GA_SERVER_EVENTS if dialect == "ga" else BETA_SERVER_EVENTS
    # Two examples carry the spec's own defects (a type with a leading space, an example of
    # another type; see test_events.py): repaired here, so that every type is sent once.
    return [
        {"event_id": f"event_example_{number}", **event, "type": name}
        for number, (name, event) in enumerate(sorted(examples.items()))
        if name in names
    ]


@pytest.mark.parametrize("dialect", ["ga", "beta"])
def test_every_server_event_type_arrives_typed(
    server: LocalRealtimeServer, make_client: MakeClient, dialect: str
) -> None:
    examples = _spec_examples(dialect)
    client = connected(make_client, dialect)
    received: list[Any] = []
    client.on("*", received.append)
    last = client.expect("*", predicate=lambda ev: getattr(ev, "raw", None) == examples[-1])
    for example in examples:
        server.push(example)
    last.wait(5)
    arrived = [event for event in received if not event.type.startswith("client.")]
    assert [event.to_dict() for event in arrived[-len(examples) :]] == examples
    for event in arrived[-len(examples) :]:
        assert not isinstance(event, GenericEvent), event.type
        assert type(event) is EVENT_CLASSES[event.type]
    assert {event["type"] for event in examples} == (
        GA_SERVER_EVENTS if dialect == "ga" else BETA_SERVER_EVENTS
    )


@pytest.mark.parametrize("dialect", ["ga", "beta"])
def test_cancel_and_busy_responses(dialect: str) -> None:
    with LocalRealtimeServer(api_key=KEY, delta_interval=0.05, delta_chunks=20) as slow:
        client = RealtimeClient(api_key=KEY, url=slow.url, protocol=dialect, normalize_events=True)
        errors: list[Any] = []
        client.on("error", errors.append)
        with client:
            first_delta = client.expect("response.output_text.delta")
            done = client.expect("response.done")
            client.response.create()
            first_delta.wait(5)
            busy = client.expect("error")
            refused_id = client.response.create()
            assert busy.wait(5).error.code == "conversation_already_has_active_response"
            assert errors[-1].error.event_id == refused_id
            client.response.cancel()
            cancelled = done.wait(5).response
            assert cancelled.status == "cancelled"
            assert cancelled.status_details.reason == "client_cancelled"
            idle = client.expect("error")
            client.response.cancel()
            assert idle.wait(5).error.code == "response_cancel_not_active"
