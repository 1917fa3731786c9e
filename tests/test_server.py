"""Tests of realtime_sync.testing.LocalRealtimeServer on its own, through raw websocket-client."""

from __future__ import annotations

import base64
import json
import logging
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import websocket
from conftest import user_message

from realtime_sync.testing import ConnectionRecord, LocalRealtimeServer

pytestmark = pytest.mark.timeout(20)

KEY = "sk-test-0123456789"
GA_PATH = "/v1/realtime?model=gpt-realtime"
AZURE_GA_PATH = "/openai/v1/realtime?model=my-deployment"
AZURE_LEGACY_PATH = "/openai/realtime?api-version=2024-10-01-preview&deployment=my-deployment"
BEARER = [f"Authorization: Bearer {KEY}"]
BETA_HEADER = "OpenAI-Beta: realtime=v1"
PCM_10MS = base64.b64encode(b"\x00\x00" * 240).decode()  # 10 ms of pcm16 at 24 kHz

Event = dict[str, Any]
Connect = Callable[..., websocket.WebSocket]


# Fixtures and helpers


@pytest.fixture
def make_server() -> Iterator[Callable[..., LocalRealtimeServer]]:
    servers: list[LocalRealtimeServer] = []

    def factory(**kwargs: Any) -> LocalRealtimeServer:
        kwargs.setdefault("api_key", KEY)
        server = LocalRealtimeServer(**kwargs).start()
        servers.append(server)
        return server

    yield factory
    for server in servers:
        server.stop()


@pytest.fixture
def server(make_server: Callable[..., LocalRealtimeServer]) -> LocalRealtimeServer:
    return make_server(reply="Hello there, friend!", delta_chunks=3)


@pytest.fixture
def connect(make_server: Callable[..., LocalRealtimeServer]) -> Iterator[Connect]:
    """Open raw clients; they close before the servers stop (fixture teardown order)."""
    opened: list[websocket.WebSocket] = []

    def _connect(
        server: LocalRealtimeServer,
        path: str = GA_PATH,
        *,
        header: list[str] | None = None,
        subprotocols: list[str] | None = None,
    ) -> websocket.WebSocket:
        url = server.azure_endpoint.replace("http://", "ws://", 1) + path
        ws = websocket.create_connection(
            url,
            header=BEARER if header is None else header,
            subprotocols=subprotocols,
            timeout=5,
        )
        opened.append(ws)
        return ws

    yield _connect
    for ws in opened:
        ws.close(timeout=1)
        ws.shutdown()


def send(ws: websocket.WebSocket, event: Event) -> None:
    ws.send(json.dumps(event))


def recv(ws: websocket.WebSocket) -> Event:
    message = ws.recv()
    assert isinstance(message, str)
    event: Event = json.loads(message)
    return event


def recv_until(ws: websocket.WebSocket, last_type: str) -> list[Event]:
    events = [recv(ws)]
    while events[-1]["type"] != last_type:
        events.append(recv(ws))
    return events


def read_close(ws: websocket.WebSocket) -> tuple[int, str]:
    """Skip data frames until the server's close frame; return its code and reason."""
    while True:
        opcode, frame = ws.recv_data_frame(True)
        if opcode == websocket.ABNF.OPCODE_CLOSE:
            (code,) = struct.unpack("!H", frame.data[:2])
            return code, frame.data[2:].decode()


def headers(beta: bool) -> list[str]:
    return [*BEARER, BETA_HEADER] if beta else BEARER


def item_done_type(beta: bool) -> str:
    """The last event announcing a new conversation item."""
    return "conversation.item.created" if beta else "conversation.item.done"


def delta_type(beta: bool) -> str:
    return "response.text.delta" if beta else "response.output_text.delta"


def text_done_type(beta: bool) -> str:
    return "response.text.done" if beta else "response.output_text.done"


def expect_error(ws: websocket.WebSocket, code: str) -> Event:
    event = recv(ws)
    assert event["type"] == "error", event
    assert event["error"]["code"] == code, event
    error: Event = event["error"]
    return error


# Authentication


@pytest.mark.parametrize(
    ("path", "header", "subprotocols", "method"),
    [
        (GA_PATH, BEARER, None, "header"),
        (GA_PATH, [], ["realtime", f"openai-insecure-api-key.{KEY}"], "subprotocol"),
        (f"{GA_PATH}&api-key={KEY}", [], None, "query"),
        (AZURE_GA_PATH, [f"api-key: {KEY}"], None, "api-key"),
        (AZURE_GA_PATH, BEARER, None, "header"),
        (AZURE_LEGACY_PATH, [f"api-key: {KEY}"], None, "api-key"),
    ],
)
def test_each_auth_method_is_accepted(
    server: LocalRealtimeServer,
    connect: Connect,
    *,
    path: str,
    header: list[str],
    subprotocols: list[str] | None,
    method: str,
) -> None:
    ws = connect(server, path, header=header, subprotocols=subprotocols)
    assert recv(ws)["type"] == "session.created"
    (record,) = server.connections
    assert record.auth == method
    assert record.status == 101
    assert record.open
    if subprotocols:
        assert ws.getsubprotocol() == "realtime"
        assert record.subprotocol == "realtime"
        assert record.subprotocols == subprotocols


@pytest.mark.parametrize(
    ("path", "header"),
    [
        (GA_PATH, ["Authorization: Bearer sk-wrong-key"]),
        (GA_PATH, []),
        (GA_PATH, [f"api-key: {KEY}"]),  # the api-key header counts on Azure paths only
        (AZURE_GA_PATH, ["api-key: sk-wrong-key"]),
    ],
)
def test_bad_or_missing_key_gets_error_then_close_3000(
    server: LocalRealtimeServer, connect: Connect, path: str, header: list[str]
) -> None:
    ws = connect(server, path, header=header)  # the upgrade itself succeeds
    raw = ws.recv()
    assert "sk-wrong-key" not in raw
    error = json.loads(raw)["error"]
    assert (error["type"], error["code"], error["param"]) == (
        "invalid_request_error",
        "invalid_api_key",
        None,
    )
    assert read_close(ws) == (3000, "invalid_request_error.invalid_api_key")
    assert server.received == []


def test_any_key_accepted_without_api_key_but_one_is_required(
    make_server: Callable[..., LocalRealtimeServer], connect: Connect
) -> None:
    server = make_server(api_key=None)
    ws = connect(server, header=["Authorization: Bearer rs-any-key-5d0c7e1a9b"])
    assert recv(ws)["type"] == "session.created"
    ws = connect(server, AZURE_GA_PATH, header=["Authorization: Bearer entra-token"])
    assert recv(ws)["type"] == "session.created"
    ws = connect(server, header=[])
    expect_error(ws, "invalid_api_key")
    assert read_close(ws)[0] == 3000


def test_record_repr_masks_credentials(server: LocalRealtimeServer, connect: Connect) -> None:
    offered = ["realtime", f"openai-insecure-api-key.{KEY}"]
    connect(server, f"{GA_PATH}&api-key={KEY}", subprotocols=offered)
    server.wait_for_connections()
    (record,) = server.connections
    assert isinstance(record, ConnectionRecord)
    assert record.headers["authorization"] == f"Bearer {KEY}"
    assert record.query["api-key"] == KEY
    assert KEY not in repr(record)


def test_debug_logs_never_show_the_key(
    server: LocalRealtimeServer, connect: Connect, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="realtime_sync.testing")
    offered = ["realtime", f"openai-insecure-api-key.{KEY}"]
    ws = connect(server, f"{GA_PATH}&api-key={KEY}", subprotocols=offered)
    recv(ws)
    ws = connect(server, AZURE_GA_PATH, header=[f"api-key: {KEY}"])
    recv(ws)
    assert "Authorization: ***" in caplog.text  # websockets' handshake log is there
    assert KEY not in caplog.text


# Endpoints and dialects


def test_ga_session_created_shape(server: LocalRealtimeServer, connect: Connect) -> None:
    before = time.time()
    event = recv(connect(server))
    assert event["event_id"].startswith("event_")
    session = event["session"]
    assert session["type"] == "realtime"
    assert session["object"] == "realtime.session"
    assert session["id"].startswith("sess_")
    assert session["model"] == "gpt-realtime"
    assert session["max_output_tokens"] == "inf"
    assert session["audio"]["input"]["format"] == {"type": "audio/pcm", "rate": 24000}
    assert session["audio"]["output"]["format"] == {"type": "audio/pcm", "rate": 24000}
    assert before + 3590 < session["expires_at"] < time.time() + 3610
    assert session["output_modalities"] == ["text"]  # what the server produces
    assert "modalities" not in session
    (record,) = server.connections
    assert record.dialect == "ga"
    assert record.path == "/v1/realtime"
    assert record.query == {"model": "gpt-realtime"}


@pytest.mark.parametrize(
    ("path", "header", "subprotocols"),
    [
        (GA_PATH, [*BEARER, BETA_HEADER], None),
        (GA_PATH, [], ["realtime", f"openai-insecure-api-key.{KEY}", "openai-beta.realtime-v1"]),
        (AZURE_LEGACY_PATH, [f"api-key: {KEY}"], None),
        (AZURE_GA_PATH, [f"api-key: {KEY}", BETA_HEADER], None),
    ],
)
def test_beta_dialect_detection(
    server: LocalRealtimeServer,
    connect: Connect,
    path: str,
    header: list[str],
    subprotocols: list[str] | None,
) -> None:
    session = recv(connect(server, path, header=header, subprotocols=subprotocols))["session"]
    assert session["object"] == "realtime.session"
    assert session["input_audio_format"] == "pcm16"
    assert session["modalities"] == ["text"]  # what the server produces
    assert "type" not in session
    assert "audio" not in session
    assert session["model"] in {"gpt-realtime", "my-deployment"}
    assert server.connections[0].dialect == "beta"


def test_azure_paths_use_the_deployment_as_model(
    server: LocalRealtimeServer, connect: Connect
) -> None:
    ga = recv(connect(server, AZURE_GA_PATH, header=[f"api-key: {KEY}"]))["session"]
    legacy = recv(connect(server, AZURE_LEGACY_PATH, header=[f"api-key: {KEY}"]))["session"]
    assert ga["model"] == legacy["model"] == "my-deployment"
    assert [r.dialect for r in server.connections] == ["ga", "beta"]


@pytest.mark.parametrize(
    ("path", "code"),
    [
        ("/v1/realtime", "missing_model"),
        ("/openai/v1/realtime", "missing_model"),
        ("/openai/realtime?api-version=2024-10-01-preview", "missing_required_parameter"),
    ],
)
def test_missing_query_parameter_closes_4000(
    server: LocalRealtimeServer, connect: Connect, path: str, code: str
) -> None:
    ws = connect(server, path, header=[*BEARER, f"api-key: {KEY}"])
    expect_error(ws, code)
    assert read_close(ws) == (4000, f"invalid_request_error.{code}")


def test_unknown_path_is_http_404(server: LocalRealtimeServer, connect: Connect) -> None:
    with pytest.raises(websocket.WebSocketBadStatusException) as info:
        connect(server, "/v1/chat?model=x")
    assert info.value.status_code == 404
    assert json.loads(info.value.resp_body)["error"]["type"] == "invalid_request_error"
    assert server.connections[0].status == 404
    assert not server.connections[0].open


@pytest.mark.parametrize("beta", [False, True])
def test_unknown_model_gets_model_not_found_and_close_4000(
    server: LocalRealtimeServer, connect: Connect, beta: bool
) -> None:
    ws = connect(server, "/v1/realtime?model=gpt-realtime-nonexistent", header=headers(beta))
    error = expect_error(ws, "model_not_found")  # the upgrade succeeds, like a bad key's
    assert error["type"] == "invalid_request_error"
    assert "gpt-realtime-nonexistent" in error["message"]
    assert read_close(ws) == (4000, "invalid_request_error.model_not_found")
    assert server.connections[0].status == 101


def test_models_setting_chooses_what_v1_accepts(
    make_server: Callable[..., LocalRealtimeServer], connect: Connect
) -> None:
    anything = make_server(models=None)
    assert recv(connect(anything, "/v1/realtime?model=my-proxy-model"))["type"] == "session.created"
    only_mine = make_server(models=["my-proxy-model"])
    assert (
        recv(connect(only_mine, "/v1/realtime?model=my-proxy-model"))["type"] == "session.created"
    )
    expect_error(connect(only_mine, GA_PATH), "model_not_found")
    # Azure deployments are named by their owners: any name goes.
    azure = connect(
        only_mine, "/openai/v1/realtime?model=whatever-i-deployed", header=[f"api-key: {KEY}"]
    )
    assert recv(azure)["session"]["model"] == "whatever-i-deployed"
    with pytest.raises(TypeError, match="models"):
        LocalRealtimeServer(models="gpt-realtime")


# Session and conversation


def test_session_update_merges_ga_audio_one_level_deep(
    server: LocalRealtimeServer, connect: Connect
) -> None:
    ws = connect(server)
    created = recv(ws)["session"]
    send(
        ws,
        {
            "type": "session.update",
            "session": {
                "type": "realtime",
                "instructions": "Be brief.",
                "audio": {"output": {"voice": "cedar"}},
            },
        },
    )
    updated = recv(ws)
    assert updated["type"] == "session.updated"
    session = updated["session"]
    assert session["instructions"] == "Be brief."
    assert session["audio"]["output"] == {**created["audio"]["output"], "voice": "cedar"}
    assert session["audio"]["input"] == created["audio"]["input"]
    assert session["id"] == created["id"]


def test_session_update_beta_merge(server: LocalRealtimeServer, connect: Connect) -> None:
    ws = connect(server, header=[*BEARER, BETA_HEADER])
    created = recv(ws)["session"]
    send(ws, {"type": "session.update", "session": {"modalities": ["text"], "temperature": 0.6}})
    session = recv(ws)["session"]
    assert session == {**created, "modalities": ["text"], "temperature": 0.6}


@pytest.mark.parametrize(
    ("beta", "field"),
    [
        (False, "temperature"),
        (False, "modalities"),
        (False, "input_audio_format"),
        (True, "type"),
        (True, "output_modalities"),
        (True, "audio"),
    ],
)
def test_session_update_rejects_fields_of_the_other_dialect(
    server: LocalRealtimeServer, connect: Connect, beta: bool, field: str
) -> None:
    ws = connect(server, header=[*BEARER, BETA_HEADER] if beta else BEARER)
    recv(ws)
    update = {"session": {"type": "realtime", field: 1} if not beta else {field: 1}}
    send(ws, {"type": "session.update", "event_id": "evt_update", **update})
    error = expect_error(ws, "unknown_parameter")
    assert error["type"] == "invalid_request_error"
    assert error["param"] == f"session.{field}"
    assert error["event_id"] == "evt_update"
    send(
        ws,
        {
            "type": "session.update",
            "session": {"instructions": "x"} | ({} if beta else {"type": "realtime"}),
        },
    )
    assert recv(ws)["type"] == "session.updated"  # the connection lives on


def test_ga_session_update_needs_session_type(
    server: LocalRealtimeServer, connect: Connect
) -> None:
    ws = connect(server)
    recv(ws)
    send(ws, {"type": "session.update", "session": {"instructions": "x"}})
    assert expect_error(ws, "missing_required_parameter")["param"] == "session.type"


def test_item_create_ga_sends_added_then_done(
    server: LocalRealtimeServer, connect: Connect
) -> None:
    ws = connect(server)
    recv(ws)
    send(ws, user_message("first"))
    added, done = recv(ws), recv(ws)
    assert (added["type"], done["type"]) == ("conversation.item.added", "conversation.item.done")
    item = added["item"]
    assert item["id"].startswith("item_")
    assert item["object"] == "realtime.item"
    assert item["status"] == "completed"
    assert item["content"] == [{"type": "input_text", "text": "first"}]
    assert added["previous_item_id"] is None
    assert done["item"] == item
    second = user_message("second")
    send(ws, {**second, "item": {**second["item"], "id": "item_mine"}})
    added = recv(ws)
    assert added["item"]["id"] == "item_mine"
    assert added["previous_item_id"] == item["id"]
    recv(ws)


def test_item_create_beta_sends_created(server: LocalRealtimeServer, connect: Connect) -> None:
    ws = connect(server, header=[*BEARER, BETA_HEADER])
    recv(ws)
    send(ws, user_message("hello"))
    created = recv(ws)
    assert created["type"] == "conversation.item.created"
    assert created["previous_item_id"] is None
    send(ws, {"type": "input_audio_buffer.clear"})
    assert recv(ws)["type"] == "input_audio_buffer.cleared"  # no conversation.item.done


def test_item_insertion_order_and_other_answers(
    server: LocalRealtimeServer, connect: Connect
) -> None:
    ws = connect(server)
    recv(ws)
    send(ws, user_message("second"))
    second = recv_until(ws, "conversation.item.done")[-1]["item"]["id"]
    send(ws, {**user_message("first"), "previous_item_id": "root"})
    added = recv_until(ws, "conversation.item.done")[0]
    assert added["previous_item_id"] is None
    send(ws, {**user_message("third"), "previous_item_id": second})
    assert recv_until(ws, "conversation.item.done")[0]["previous_item_id"] == second
    send(ws, {**user_message("lost"), "previous_item_id": "item_missing"})
    assert expect_error(ws, "invalid_value")["param"] == "previous_item_id"
    send(ws, {"type": "transcription_session.update", "session": {"include": []}})
    updated = recv(ws)
    assert updated["type"] == "transcription_session.updated"
    assert updated["session"]["include"] == []
    send(ws, {"type": "output_audio_buffer.clear"})
    assert recv(ws)["type"] == "output_audio_buffer.cleared"


@pytest.mark.parametrize("beta", [False, True])
def test_item_delete_retrieve_truncate(
    server: LocalRealtimeServer, connect: Connect, beta: bool
) -> None:
    ws = connect(server, header=headers(beta))
    recv(ws)
    send(ws, user_message("keep me"))
    item_id = recv_until(ws, item_done_type(beta))[0]["item"]["id"]
    send(ws, {"type": "conversation.item.retrieve", "item_id": item_id})
    retrieved = recv(ws)
    assert retrieved["type"] == "conversation.item.retrieved"
    assert retrieved["item"]["id"] == item_id
    send(
        ws,
        {
            "type": "conversation.item.truncate",
            "item_id": item_id,
            "content_index": 0,
            "audio_end_ms": 0,
        },
    )
    expect_error(ws, "invalid_value")  # only assistant items can be truncated
    send(ws, {"type": "response.create"})
    assistant_id = recv_until(ws, "rate_limits.updated")[-2]["response"]["output"][0]["id"]
    send(
        ws,
        {
            "type": "conversation.item.truncate",
            "item_id": assistant_id,
            "content_index": 0,
            "audio_end_ms": 1500,
        },
    )
    truncated = recv(ws)
    assert truncated["type"] == "conversation.item.truncated"
    assert (truncated["item_id"], truncated["content_index"], truncated["audio_end_ms"]) == (
        assistant_id,
        0,
        1500,
    )
    send(ws, {"type": "conversation.item.delete", "item_id": item_id})
    deleted = recv(ws)
    assert (deleted["type"], deleted["item_id"]) == ("conversation.item.deleted", item_id)
    send(ws, {"type": "conversation.item.delete", "event_id": "evt_del", "item_id": item_id})
    assert expect_error(ws, "invalid_value")["event_id"] == "evt_del"


@pytest.mark.parametrize("beta", [False, True])
def test_audio_buffer_commit_needs_100_ms(
    server: LocalRealtimeServer, connect: Connect, beta: bool
) -> None:
    ws = connect(server, header=headers(beta))
    recv(ws)
    send(ws, user_message("before the audio"))
    before = recv_until(ws, item_done_type(beta))[0]["item"]["id"]
    for _ in range(5):
        send(ws, {"type": "input_audio_buffer.append", "audio": PCM_10MS})
    send(ws, {"type": "input_audio_buffer.commit", "event_id": "evt_short"})
    error = expect_error(ws, "input_audio_buffer_commit_empty")
    assert "50.00" in error["message"]
    assert error["event_id"] == "evt_short"
    for _ in range(5):
        send(ws, {"type": "input_audio_buffer.append", "audio": PCM_10MS})
    send(ws, {"type": "input_audio_buffer.commit"})
    committed, added = recv(ws), recv(ws)
    assert committed["type"] == "input_audio_buffer.committed"
    assert committed["previous_item_id"] == before
    assert committed["item_id"].startswith("item_")
    assert added["type"] == ("conversation.item.created" if beta else "conversation.item.added")
    assert added["previous_item_id"] == before
    item = added["item"]
    assert (item["id"], item["role"], item["type"]) == (committed["item_id"], "user", "message")
    assert item["content"][0]["type"] == "input_audio"
    if not beta:
        done = recv(ws)
        assert (done["type"], done["item"]) == ("conversation.item.done", item)
    send(ws, {"type": "input_audio_buffer.commit"})  # the buffer is empty again
    expect_error(ws, "input_audio_buffer_commit_empty")
    send(ws, {"type": "input_audio_buffer.append", "audio": "not base64!"})
    expect_error(ws, "invalid_value")


@pytest.mark.parametrize("beta", [False, True])
def test_response_cancel_when_idle(
    server: LocalRealtimeServer, connect: Connect, beta: bool
) -> None:
    ws = connect(server, header=headers(beta))
    recv(ws)
    send(ws, {"type": "response.cancel", "event_id": "evt_cancel"})
    error = expect_error(ws, "response_cancel_not_active")
    assert (error["type"], error["event_id"]) == ("invalid_request_error", "evt_cancel")
    send(ws, {"type": "response.create"})
    response_id = recv_until(ws, "rate_limits.updated")[0]["response"]["id"]
    send(ws, {"type": "response.cancel", "event_id": "evt_late", "response_id": response_id})
    error = expect_error(ws, "response_cancel_not_active")  # that response is over
    assert (error["param"], error["event_id"]) == ("response_id", "evt_late")


# Responses


GA_RESPONSE_ORDER = [
    "response.created",
    "response.output_item.added",
    "conversation.item.added",
    "response.content_part.added",
    *["response.output_text.delta"] * 3,
    "response.output_text.done",
    "response.content_part.done",
    "response.output_item.done",
    "conversation.item.done",
    "response.done",
    "rate_limits.updated",
]
BETA_RESPONSE_ORDER = [
    "response.created",
    "response.output_item.added",
    "conversation.item.created",
    "response.content_part.added",
    *["response.text.delta"] * 3,
    "response.text.done",
    "response.content_part.done",
    "response.output_item.done",
    "response.done",
    "rate_limits.updated",
]


@pytest.mark.parametrize("beta", [False, True])
def test_response_stream(
    make_server: Callable[..., LocalRealtimeServer], connect: Connect, beta: bool
) -> None:
    heard: list[str] = []

    def reply(text: str) -> str:
        heard.append(text)
        return f"Echo: {text}!"

    server = make_server(reply=reply, delta_chunks=3)
    ws = connect(server, header=[*BEARER, BETA_HEADER] if beta else BEARER)
    recv(ws)
    send(ws, user_message("what time is it"))
    recv_until(ws, "conversation.item.created" if beta else "conversation.item.done")
    send(ws, {"type": "response.create", "response": {"metadata": {"purpose": "test"}}})
    events = recv_until(ws, "rate_limits.updated")
    assert [e["type"] for e in events] == (BETA_RESPONSE_ORDER if beta else GA_RESPONSE_ORDER)
    assert heard == ["what time is it"]
    deltas = [e for e in events if e["type"].endswith("text.delta")]
    done_text = next(e for e in events if e["type"].endswith("text.done"))["text"]
    assert done_text == "Echo: what time is it!"
    assert "".join(d["delta"] for d in deltas) == done_text
    response_id = events[0]["response"]["id"]
    item_id = events[1]["item"]["id"]
    for delta in deltas:
        assert delta["response_id"] == response_id
        assert delta["item_id"] == item_id
        assert (delta["output_index"], delta["content_index"]) == (0, 0)
        assert ("obfuscation" in delta) is not beta
    response = events[-2]["response"]
    assert response["status"] == "completed"
    assert response["metadata"] == {"purpose": "test"}
    assert response["output"][0]["content"][0]["text"] == done_text
    assert response["usage"]["total_tokens"] > 0
    assert len({e["event_id"] for e in events}) == len(events)


# Field sets of real events: the GA spec examples and, for beta, a real text-response trace
# and Azure's session.created (see tests/conformance/README.md).
GA_SESSION_KEYS = {
    "type", "object", "id", "model", "output_modalities", "instructions", "tools",
    "tool_choice", "max_output_tokens", "tracing", "prompt", "expires_at", "audio", "include",
}  # fmt: skip
BETA_SESSION_KEYS = {
    "id", "object", "expires_at", "input_audio_noise_reduction", "turn_detection",
    "input_audio_format", "input_audio_transcription", "client_secret", "include", "model",
    "modalities", "instructions", "voice", "output_audio_format", "tool_choice", "temperature",
    "max_response_output_tokens", "tools",
}  # fmt: skip
GA_RESPONSE_KEYS = {
    "object", "id", "status", "status_details", "output", "conversation_id",
    "output_modalities", "max_output_tokens", "audio", "usage", "metadata",
}  # fmt: skip
BETA_RESPONSE_KEYS = {
    "object", "id", "status", "status_details", "output", "conversation_id", "modalities",
    "voice", "output_audio_format", "temperature", "max_output_tokens", "usage", "metadata",
}  # fmt: skip
PART_KEYS = {"type", "event_id", "response_id", "item_id", "output_index", "content_index"}
EVENT_KEYS = {
    "response.created": {"type", "event_id", "response"},
    "response.output_item.added": {"type", "event_id", "response_id", "output_index", "item"},
    "conversation.item.created": {"type", "event_id", "previous_item_id", "item"},
    "response.content_part.added": PART_KEYS | {"part"},
    "response.text.delta": PART_KEYS | {"delta"},
    "response.text.done": PART_KEYS | {"text"},
    "response.content_part.done": PART_KEYS | {"part"},
    "response.output_item.done": {"type", "event_id", "response_id", "output_index", "item"},
    "response.done": {"type", "event_id", "response"},
    "rate_limits.updated": {"type", "event_id", "rate_limits"},
    "conversation.item.added": {"type", "event_id", "previous_item_id", "item"},
    "conversation.item.done": {"type", "event_id", "previous_item_id", "item"},
    "response.output_text.delta": PART_KEYS | {"delta", "obfuscation"},
    "response.output_text.done": PART_KEYS | {"text"},
}


@pytest.mark.parametrize("beta", [False, True])
def test_event_shapes_match_real_captures(
    server: LocalRealtimeServer, connect: Connect, beta: bool
) -> None:
    ws = connect(server, header=[*BEARER, BETA_HEADER] if beta else BEARER)
    session = recv(ws)["session"]
    assert set(session) == (BETA_SESSION_KEYS if beta else GA_SESSION_KEYS)
    send(ws, {"type": "response.create"})
    events = recv_until(ws, "rate_limits.updated")
    for event in events:
        assert set(event) == EVENT_KEYS[event["type"]], event["type"]
    for response in (events[0]["response"], events[-2]["response"]):
        assert set(response) == (BETA_RESPONSE_KEYS if beta else GA_RESPONSE_KEYS)
    details = events[-2]["response"]["usage"]["input_token_details"]
    assert ("image_tokens" in details) is not beta


def test_default_reply_echoes_or_greets(
    make_server: Callable[..., LocalRealtimeServer], connect: Connect
) -> None:
    server = make_server(delta_chunks=100)
    ws = connect(server)
    recv(ws)
    send(ws, {"type": "response.create"})
    events = recv_until(ws, "rate_limits.updated")  # a response is active until its done
    greeting = next(e for e in events if e["type"] == "response.output_text.done")["text"]
    assert greeting
    assert len([e for e in events if e["type"] == "response.output_text.delta"]) == len(greeting)
    send(ws, user_message("ping"))
    send(ws, {"type": "response.create"})
    assert recv_until(ws, "response.output_text.done")[-1]["text"] == "You said: ping"


@pytest.mark.parametrize("beta", [False, True])
def test_sessions_start_with_text_and_speak_when_audio_is_asked(
    server: LocalRealtimeServer, connect: Connect, beta: bool
) -> None:
    ws = connect(server, header=headers(beta))
    created = recv(ws)["session"]
    field = "modalities" if beta else "output_modalities"
    assert created[field] == ["text"]  # plain text tests need no setup
    audio = ["text", "audio"] if beta else ["audio"]
    update = {field: audio} if beta else {"type": "realtime", field: audio}
    send(ws, {"type": "session.update", "session": update})
    assert recv(ws)["session"][field] == audio  # stored and echoed, as real servers do
    send(ws, {"type": "response.create", "response": {field: audio}})
    events = recv_until(ws, "rate_limits.updated")
    for response in (events[0]["response"], events[-2]["response"]):
        assert response[field] == audio  # the modalities the answer actually has
    assert delta_type(beta) not in [e["type"] for e in events]
    assert ("response.audio.delta" if beta else "response.output_audio.delta") in [
        e["type"] for e in events
    ]
    check_against_openai(events, beta)


def test_out_of_band_response_leaves_the_conversation_alone(
    server: LocalRealtimeServer, connect: Connect
) -> None:
    ws = connect(server)
    recv(ws)
    send(ws, {"type": "response.create", "response": {"conversation": "none"}})
    events = recv_until(ws, "rate_limits.updated")
    assert not [e for e in events if e["type"].startswith("conversation.")]
    assert events[0]["response"]["conversation_id"] is None


# Responses in progress (streamed on the connection's response thread)

SLOW_REPLY = "one two three four five six"


@pytest.fixture
def slow_server(make_server: Callable[..., LocalRealtimeServer]) -> LocalRealtimeServer:
    """Six deltas 50 ms apart: after the first one, a test has 250 ms to act."""
    return make_server(reply=SLOW_REPLY, delta_chunks=6, delta_interval=0.05)


def start_response(ws: websocket.WebSocket, beta: bool, **params: Any) -> list[Event]:
    """Send response.create; return its events up to and including the first delta."""
    send(ws, {"type": "response.create", **({"response": params} if params else {})})
    return recv_until(ws, delta_type(beta))


def check_against_openai(events: list[Event], beta: bool) -> None:
    """Every server event validates against the openai package's models of its dialect."""
    from openai.types.beta.realtime import RealtimeServerEvent as BetaServerEvent
    from openai.types.realtime import RealtimeServerEvent as GAServerEvent
    from pydantic import TypeAdapter

    adapter: TypeAdapter[Any] = TypeAdapter(BetaServerEvent if beta else GAServerEvent)
    for event in events:
        adapter.validate_python(event)


@pytest.mark.parametrize(("beta", "out_of_band"), [(False, False), (True, False), (False, True)])
def test_response_create_while_one_is_active_is_refused(
    slow_server: LocalRealtimeServer, connect: Connect, beta: bool, out_of_band: bool
) -> None:
    ws = connect(slow_server, header=headers(beta))
    recv(ws)
    # An out-of-band response counts like any other (one active response per connection).
    params = {"conversation": "none"} if out_of_band else {}
    events = start_response(ws, beta, **params)
    response_id = events[0]["response"]["id"]
    send(ws, {"type": "response.create", "event_id": "evt_second"})
    send(ws, {"type": "input_audio_buffer.clear", "event_id": "evt_clear"})
    events += recv_until(ws, "rate_limits.updated")
    types = [e["type"] for e in events]
    (refusal,) = [e["error"] for e in events if e["type"] == "error"]
    assert refusal["type"] == "invalid_request_error"
    assert refusal["code"] == "conversation_already_has_active_response"
    assert refusal["event_id"] == "evt_second"
    assert response_id in refusal["message"]
    # Answered while the first response streams, which goes on to the end.
    assert types.index("error") < types.index("input_audio_buffer.cleared") < len(types) - 2
    assert types.count("response.created") == 1
    assert types.count(delta_type(beta)) == 6
    done = events[-2]["response"]
    assert (done["id"], done["status"], done["status_details"]) == (response_id, "completed", None)
    assert next(e for e in events if e["type"] == text_done_type(beta))["text"] == SLOW_REPLY
    assert [e.get("event_id") for e in slow_server.connections[0].received] == [
        None,
        "evt_second",
        "evt_clear",
    ]
    check_against_openai(events, beta)
    send(ws, {"type": "response.create"})  # once response.done is out, a new one may start
    assert recv_until(ws, "rate_limits.updated")[-2]["response"]["status"] == "completed"


@pytest.mark.parametrize(("beta", "by_id"), [(False, False), (False, True), (True, True)])
def test_response_cancel_mid_stream(
    slow_server: LocalRealtimeServer, connect: Connect, beta: bool, by_id: bool
) -> None:
    ws = connect(slow_server, header=headers(beta))
    recv(ws)
    send(ws, user_message("count for me"))
    recv_until(ws, item_done_type(beta))
    events = start_response(ws, beta)
    response_id = events[0]["response"]["id"]
    send(ws, {"type": "response.cancel", **({"response_id": response_id} if by_id else {})})
    events += recv_until(ws, "rate_limits.updated")
    types = [e["type"] for e in events]
    assert "error" not in types
    deltas = [e["delta"] for e in events if e["type"] == delta_type(beta)]
    assert 1 <= len(deltas) < 6
    partial = "".join(deltas)
    assert SLOW_REPLY.startswith(partial)
    expected_tail = [
        text_done_type(beta),
        "response.content_part.done",
        "response.output_item.done",
        *([] if beta else ["conversation.item.done"]),
        "response.done",
        "rate_limits.updated",
    ]
    assert types[-len(expected_tail) :] == expected_tail
    by_type = {e["type"]: e for e in events}
    assert by_type[text_done_type(beta)]["text"] == partial
    assert by_type["response.content_part.done"]["part"]["text"] == partial
    item = by_type["response.output_item.done"]["item"]
    assert item["status"] == "incomplete"
    assert item["content"][0]["text"] == partial
    if not beta:
        assert by_type["conversation.item.done"]["item"] == item
    done = by_type["response.done"]["response"]
    assert (done["id"], done["status"]) == (response_id, "cancelled")
    assert done["status_details"] == {"type": "cancelled", "reason": "client_cancelled"}
    assert done["output"] == [item]
    check_against_openai(events, beta)
    # The partial answer stays in the conversation.
    send(ws, {"type": "conversation.item.retrieve", "item_id": item["id"]})
    assert recv(ws)["item"] == item
    send(ws, {"type": "response.cancel", "event_id": "evt_again"})
    assert expect_error(ws, "response_cancel_not_active")["event_id"] == "evt_again"


@pytest.mark.parametrize("beta", [False, True])
def test_response_cancel_naming_another_response(
    slow_server: LocalRealtimeServer, connect: Connect, beta: bool
) -> None:
    ws = connect(slow_server, header=headers(beta))
    recv(ws)
    events = start_response(ws, beta)
    send(ws, {"type": "response.cancel", "event_id": "evt_other", "response_id": "resp_other"})
    events += recv_until(ws, "rate_limits.updated")
    (error,) = [e["error"] for e in events if e["type"] == "error"]
    assert (error["code"], error["param"], error["event_id"]) == (
        "invalid_value",
        "response_id",
        "evt_other",
    )
    assert "resp_other" in error["message"]
    assert events[-2]["response"]["status"] == "completed"  # the active one went on


@pytest.mark.parametrize("beta", [False, True])
def test_output_audio_buffer_clear(
    slow_server: LocalRealtimeServer, connect: Connect, beta: bool
) -> None:
    ws = connect(slow_server, header=headers(beta))
    recv(ws)
    send(ws, {"type": "output_audio_buffer.clear"})
    assert recv(ws) == {
        "type": "output_audio_buffer.cleared",
        "event_id": ANY_STR,
        "response_id": None,  # no response yet
    }
    events = start_response(ws, beta)
    response_id = events[0]["response"]["id"]
    send(ws, {"type": "output_audio_buffer.clear"})
    events = recv_until(ws, "rate_limits.updated")
    cleared = next(e for e in events if e["type"] == "output_audio_buffer.cleared")
    assert cleared["response_id"] == response_id
    assert events.index(cleared) < len(events) - 2  # before response.done
    assert events[-2]["response"]["status"] == "completed"  # clearing audio cancels nothing
    send(ws, {"type": "output_audio_buffer.clear"})
    assert recv(ws)["response_id"] == response_id  # the last response's audio


class _AnyStr:
    def __eq__(self, other: object) -> bool:
        return isinstance(other, str)

    __hash__ = None  # type: ignore[assignment]


ANY_STR: Any = _AnyStr()


@pytest.mark.parametrize("beta", [False, True])
def test_unknown_item_ids_are_invalid_values(
    server: LocalRealtimeServer, connect: Connect, beta: bool
) -> None:
    ws = connect(server, header=headers(beta))
    recv(ws)
    for kind, extra in [
        ("conversation.item.delete", {}),
        ("conversation.item.retrieve", {}),
        ("conversation.item.truncate", {"content_index": 0, "audio_end_ms": 0}),
    ]:
        send(ws, {"type": kind, "event_id": f"evt_{kind}", "item_id": "item_nope", **extra})
        error = expect_error(ws, "invalid_value")
        assert (error["param"], error["event_id"]) == ("item_id", f"evt_{kind}")
        assert "item_nope" in error["message"]


BETA_TRANSCRIPTION_UPDATE = {  # the beta specification's example of the event
    "input_audio_format": "pcm16",
    "input_audio_transcription": {"model": "gpt-4o-transcribe", "prompt": "", "language": ""},
    "turn_detection": {
        "type": "server_vad",
        "threshold": 0.5,
        "prefix_padding_ms": 300,
        "silence_duration_ms": 500,
        "create_response": True,
    },
    "input_audio_noise_reduction": {"type": "near_field"},
    "include": ["item.input_audio_transcription.logprobs"],
}


def test_beta_transcription_session_update(server: LocalRealtimeServer, connect: Connect) -> None:
    ws = connect(server, header=headers(True))
    recv(ws)
    send(ws, {"type": "transcription_session.update", "session": BETA_TRANSCRIPTION_UPDATE})
    updated = recv(ws)
    assert updated["type"] == "transcription_session.updated"
    session = updated["session"]
    assert session == {**BETA_TRANSCRIPTION_UPDATE, "id": ANY_STR, "object": ANY_STR}
    assert session["id"].startswith("sess_")
    assert session["object"] == "realtime.transcription_session"
    send(
        ws, {"type": "transcription_session.update", "session": {"input_audio_format": "g711_ulaw"}}
    )
    again = recv(ws)["session"]
    assert again == {**session, "input_audio_format": "g711_ulaw"}
    # 100 ms of G.711 at 8 kHz is 800 bytes: the transcription format now applies.
    send(ws, {"type": "input_audio_buffer.append", "audio": base64.b64encode(bytes(800)).decode()})
    send(ws, {"type": "input_audio_buffer.commit"})
    assert recv(ws)["type"] == "input_audio_buffer.committed"
    assert recv(ws)["type"] == "conversation.item.created"
    # Transcription is on: G.711 code 0 is not speech the server can read.
    done = recv_until(ws, "conversation.item.input_audio_transcription.completed")[-1]
    assert done["transcript"] == "(100 ms of audio)"
    send(ws, {"type": "transcription_session.update", "session": {"voice": "alloy"}})
    assert expect_error(ws, "unknown_parameter")["param"] == "session.voice"


def test_ga_session_update_to_transcription(server: LocalRealtimeServer, connect: Connect) -> None:
    from openai.types.realtime import SessionUpdatedEvent

    ws = connect(server)
    created = recv(ws)["session"]
    transcription = {"model": "gpt-4o-transcribe", "language": "en", "prompt": ""}
    send(
        ws,
        {
            "type": "session.update",
            "session": {
                "type": "transcription",
                "audio": {"input": {"transcription": transcription}},
                "include": ["item.input_audio_transcription.logprobs"],
            },
        },
    )
    updated = recv(ws)
    SessionUpdatedEvent.model_validate(updated)
    session = updated["session"]
    assert set(session) == {"type", "object", "id", "expires_at", "audio", "include"}
    assert (session["type"], session["object"]) == (
        "transcription",
        "realtime.transcription_session",
    )
    assert (session["id"], session["expires_at"]) == (created["id"], created["expires_at"])
    assert session["audio"]["input"] == {
        **{k: v for k, v in created["audio"]["input"].items() if k != "transcription"},
        "transcription": transcription,
    }
    assert session["include"] == ["item.input_audio_transcription.logprobs"]
    send(ws, {"type": "session.update", "session": {"type": "transcription", "instructions": "x"}})
    assert expect_error(ws, "unknown_parameter")["param"] == "session.instructions"
    send(ws, {"type": "session.update", "session": {"type": "realtime"}})
    assert expect_error(ws, "invalid_value")["param"] == "session.type"
    send(ws, {"type": "session.update", "session": {"type": "transcription", "include": []}})
    assert recv(ws)["session"] == {**session, "include": []}


def test_response_thread_ends_with_its_connection(
    make_server: Callable[..., LocalRealtimeServer], connect: Connect
) -> None:
    server = make_server(reply="x" * 40, delta_chunks=40, delta_interval=0.2)  # 8 s long
    ws = connect(server)
    recv(ws)
    start_response(ws, beta=False)
    (worker,) = [t for t in threading.enumerate() if t.name.endswith("local-server-response")]
    ws.close(timeout=1)
    worker.join(4)  # a worker that ignored the closed connection would run its 8 s
    assert not worker.is_alive()
    second = connect(server)  # the server serves on
    assert recv(second)["type"] == "session.created"


def test_stop_mid_response_joins_the_response_thread() -> None:
    before = set(threading.enumerate())
    server = LocalRealtimeServer(
        api_key=KEY, reply="x" * 40, delta_chunks=40, delta_interval=0.2
    ).start()  # an 8 s response
    ws = websocket.create_connection(f"{server.url}?model=gpt-realtime", header=BEARER, timeout=5)
    recv(ws)
    start_response(ws, beta=False)
    assert any(t.name.endswith("local-server-response") for t in threading.enumerate())
    closes: list[tuple[int, str]] = []
    reader = threading.Thread(target=lambda: closes.append(read_close(ws)))
    reader.start()
    started = time.monotonic()
    server.stop()
    # Slack for a busy machine; a stop() that let the response run on would take its 5 s
    # join timeout (the response alone has 8 s to go).
    assert time.monotonic() - started < 3
    reader.join()
    assert closes == [(1001, "")]
    assert set(threading.enumerate()) - before == set()
    ws.shutdown()


# Invalid input


def test_invalid_input_gets_errors_and_the_connection_lives(
    server: LocalRealtimeServer, connect: Connect
) -> None:
    ws = connect(server)
    recv(ws)
    ws.send("{not json")
    expect_error(ws, "invalid_json")
    ws.send("[1, 2]")
    expect_error(ws, "invalid_event")
    send(ws, {"event_id": "evt_notype"})
    assert expect_error(ws, "invalid_event")["event_id"] == "evt_notype"
    send(ws, {"type": "no.such.event", "event_id": "evt_unknown"})
    error = expect_error(ws, "invalid_value")
    assert (error["param"], error["event_id"]) == ("type", "evt_unknown")
    ws.send_binary(b"\x00\x01")
    expect_error(ws, "invalid_event")
    send(ws, {"type": "conversation.item.create", "item": "oops"})
    expect_error(ws, "invalid_type")
    send(ws, {"type": "input_audio_buffer.clear"})
    assert recv(ws)["type"] == "input_audio_buffer.cleared"
    assert [e.get("type") for e in server.received] == [
        None,
        "no.such.event",
        "conversation.item.create",
        "input_audio_buffer.clear",
    ]


def test_failing_reply_callable_gives_server_error(
    make_server: Callable[..., LocalRealtimeServer],
    connect: Connect,
    caplog: pytest.LogCaptureFixture,
) -> None:
    def reply(_text: str) -> str:
        raise RuntimeError("boom")

    server = make_server(reply=reply)
    ws = connect(server)
    recv(ws)
    send(ws, {"type": "response.create"})
    assert recv(ws)["error"]["type"] == "server_error"
    assert "boom" in caplog.text


# Test controls


def test_reject_handshake_401_then_429_with_retry_after(
    server: LocalRealtimeServer, connect: Connect
) -> None:
    server.reject_handshake(401, times=1)
    with pytest.raises(websocket.WebSocketBadStatusException) as info:
        connect(server)
    assert info.value.status_code == 401
    assert "error" in json.loads(info.value.resp_body)

    server.reject_handshake(429, {"error": {"code": "rate_limit_exceeded"}}, {"Retry-After": "7"})
    for _ in range(2):
        with pytest.raises(websocket.WebSocketBadStatusException) as info:
            connect(server)
        assert info.value.status_code == 429
        assert info.value.resp_headers["retry-after"] == "7"
        assert json.loads(info.value.resp_body) == {"error": {"code": "rate_limit_exceeded"}}
    server.clear_faults()
    assert recv(connect(server))["type"] == "session.created"
    assert [r.status for r in server.connections] == [401, 429, 429, 101]


def test_fail_after_accept(server: LocalRealtimeServer, connect: Connect) -> None:
    server.fail_after_accept(
        4000,
        {"type": "invalid_request_error", "code": "model_not_found", "message": "No such model."},
        times=1,
    )
    ws = connect(server)
    error = expect_error(ws, "model_not_found")
    assert error["message"] == "No such model."
    assert read_close(ws) == (4000, "invalid_request_error.model_not_found")
    assert recv(connect(server))["type"] == "session.created"


def test_emulate_beta_shutdown(
    make_server: Callable[..., LocalRealtimeServer], connect: Connect
) -> None:
    server = make_server(emulate_beta_shutdown=True)
    ws = connect(server, header=[*BEARER, BETA_HEADER])
    error = expect_error(ws, "beta_api_shape_disabled")
    assert error["type"] == "invalid_request_error"
    assert "GA" in error["message"]
    assert read_close(ws) == (4000, "invalid_request_error.beta_api_shape_disabled")
    assert recv(connect(server))["type"] == "session.created"  # GA still works
    legacy = connect(server, AZURE_LEGACY_PATH, header=[f"api-key: {KEY}"])
    assert recv(legacy)["type"] == "session.created"  # Azure's beta path still works


def test_session_lifetime(
    make_server: Callable[..., LocalRealtimeServer], connect: Connect
) -> None:
    server = make_server(session_lifetime=0.3)
    ws = connect(server)
    session = recv(ws)["session"]
    assert session["expires_at"] <= time.time() + 2
    expect_error(ws, "session_expired")
    assert read_close(ws) == (1001, "invalid_request_error.session_expired")


def test_push_dict_text_and_bytes(server: LocalRealtimeServer, connect: Connect) -> None:
    first, second = connect(server), connect(server)
    server.wait_for_connections(2)
    for ws in (first, second):
        recv(ws)
    server.push({"type": "custom.event", "x": 1})
    server.push('{"type": "broken"')
    server.push(b"\x01\x02")
    for ws in (first, second):
        pushed = recv(ws)
        assert pushed["type"] == "custom.event"
        assert pushed["event_id"].startswith("event_")
        assert ws.recv() == '{"type": "broken"'
        assert ws.recv() == b"\x01\x02"
    server.push({"type": "custom.event", "event_id": "mine"})
    assert recv(first)["event_id"] == "mine"


def test_drop_connections_sends_no_close_frame(
    server: LocalRealtimeServer, connect: Connect
) -> None:
    ws = connect(server)
    recv(ws)
    server.drop_connections()
    with pytest.raises(websocket.WebSocketConnectionClosedException):
        ws.recv_data_frame(True)
    assert ws.close_frame is None


def test_close_connections_sends_close_frame(server: LocalRealtimeServer, connect: Connect) -> None:
    ws = connect(server)
    recv(ws)
    server.close_connections(4001, "test over")
    assert read_close(ws) == (4001, "test over")


def test_server_ends_tcp_after_closing_handshake(
    make_server: Callable[..., LocalRealtimeServer], connect: Connect
) -> None:
    server = make_server()
    ws = connect(server)
    recv(ws)
    ws.send_close()  # complete the closing handshake but keep the TCP socket open
    assert read_close(ws) == (1000, "")
    with pytest.raises(websocket.WebSocketConnectionClosedException):
        ws.recv_data_frame(True)  # the server closed the TCP stream
    started = time.monotonic()
    server.stop()
    # Slack for a busy machine; a connection thread left waiting for the client's FIN would
    # hold stop() for its 2.5 s closing deadline.
    assert time.monotonic() - started < 2


def test_answer_pings_false_keeps_events_flowing(
    server: LocalRealtimeServer, connect: Connect
) -> None:
    ws = connect(server)
    recv(ws)
    clear = {"type": "input_audio_buffer.clear"}
    # The server reads the ping before the event, so its pong comes before the answer.
    ws.ping(b"one")
    send(ws, clear)
    opcode, frame = ws.recv_data_frame(True)
    assert (opcode, frame.data) == (websocket.ABNF.OPCODE_PONG, b"one")
    assert recv(ws)["type"] == "input_audio_buffer.cleared"

    server.answer_pings(False)
    ws.ping(b"two")
    send(ws, clear)
    opcode, frame = ws.recv_data_frame(True)
    assert opcode == websocket.ABNF.OPCODE_TEXT
    assert json.loads(frame.data)["type"] == "input_audio_buffer.cleared"
    ws.settimeout(0.2)
    with pytest.raises(websocket.WebSocketTimeoutException):
        ws.recv_data_frame(True)
    ws.settimeout(5)

    server.answer_pings(True)
    ws.ping(b"three")
    opcode, frame = ws.recv_data_frame(True)
    assert (opcode, frame.data) == (websocket.ABNF.OPCODE_PONG, b"three")


def test_argument_validation() -> None:
    with pytest.raises(ValueError, match="delta_chunks"):
        LocalRealtimeServer(delta_chunks=0)
    for interval in (-0.1, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="delta_interval"):
            LocalRealtimeServer(delta_interval=interval)
    server = LocalRealtimeServer()
    with pytest.raises(ValueError, match="close code"):
        server.close_connections(1005)
    with pytest.raises(ValueError, match="times"):
        server.reject_handshake(500, times=0)
    with pytest.raises(RuntimeError, match="start"):
        _ = server.url
    server.stop()  # never started: a no-op


# Waiting, load and shutdown


def test_wait_for_received_and_timeouts(server: LocalRealtimeServer, connect: Connect) -> None:
    ws = connect(server)
    recv(ws)
    send(ws, {"type": "input_audio_buffer.clear", "event_id": "a"})
    send(ws, {"type": "input_audio_buffer.clear", "event_id": "b"})
    events = server.wait_for_received("input_audio_buffer.clear", count=2)
    assert [e["event_id"] for e in events] == ["a", "b"]
    assert (
        server.wait_for_received(predicate=lambda e: e.get("event_id") == "b")[0]["event_id"] == "b"
    )
    with pytest.raises(TimeoutError, match=r"response\.create.*got 0 of 2 received"):
        server.wait_for_received("response.create", timeout=0.05)
    with pytest.raises(TimeoutError, match="accepted connection"):
        server.wait_for_connections(2, timeout=0.05)


def test_8000_events_from_8_threads_keep_per_connection_order(
    server: LocalRealtimeServer, connect: Connect
) -> None:
    ws = connect(server)
    recv(ws)
    per_thread = 1000

    def sender(thread_no: int) -> None:
        for i in range(per_thread):
            ws.send(
                json.dumps(
                    {
                        "type": "input_audio_buffer.append",
                        "event_id": f"{thread_no}:{i}",
                        "audio": PCM_10MS,
                    }
                )
            )

    threads = [threading.Thread(target=sender, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    server.wait_for_received("input_audio_buffer.append", count=8 * per_thread, timeout=15)
    received = server.connections[0].received
    assert len(received) == 8 * per_thread
    last_seen = dict.fromkeys(range(8), -1)
    for event in received:
        thread_no, i = map(int, event["event_id"].split(":"))
        assert i == last_seen[thread_no] + 1
        last_seen[thread_no] = i


def test_stop_joins_every_thread_and_is_idempotent() -> None:
    before = set(threading.enumerate())
    server = LocalRealtimeServer(api_key=KEY).start()
    url = f"{server.url}?model=gpt-realtime"
    quiet = websocket.create_connection(url, header=BEARER, timeout=5)
    left_open = websocket.create_connection(url, header=BEARER, timeout=5)
    server.wait_for_connections(2)
    assert any(t.name == "realtime_sync-local-server" for t in threading.enumerate())
    recv(quiet)
    quiet.close(timeout=1)
    quiet.shutdown()
    # The other client is still connected when the server stops: it gets 1001.
    closes: list[tuple[int, str]] = []

    reader = threading.Thread(target=lambda: closes.append(read_close(left_open)))
    reader.start()
    started = time.monotonic()
    server.stop()
    server.stop()
    assert time.monotonic() - started < 5
    reader.join()
    assert closes == [(1001, "")]
    assert set(threading.enumerate()) - before == set()
    left_open.shutdown()
    with pytest.raises(RuntimeError):
        server.start()


def test_import_error_names_the_extra() -> None:
    code = (
        "import sys; sys.modules['websockets'] = None\n"
        "try:\n    from realtime_sync.testing import LocalRealtimeServer\n"
        "except ImportError as exc:\n    print(exc)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=30, check=True
    )
    assert "pip install realtime_sync[server]" in result.stdout


# Input checks the official models make too


@pytest.mark.parametrize(
    ("beta", "field"), [(False, "temperature"), (False, "modalities"), (True, "output_modalities")]
)
def test_response_create_refuses_the_other_dialects_fields(
    server: LocalRealtimeServer, connect: Connect, beta: bool, field: str
) -> None:
    ws = connect(server, header=headers(beta))
    recv(ws)
    send(ws, {"type": "response.create", "response": {field: 0.5}})
    error = expect_error(ws, "unknown_parameter")
    assert error["param"] == f"response.{field}"


def test_beta_response_honours_max_response_output_tokens(
    server: LocalRealtimeServer, connect: Connect
) -> None:
    ws = connect(server, header=headers(True))
    recv(ws)
    send(ws, {"type": "response.create", "response": {"max_response_output_tokens": 7}})
    assert recv(ws)["response"]["max_output_tokens"] == 7


def test_ga_accepts_mcp_items_beta_does_not(server: LocalRealtimeServer, connect: Connect) -> None:
    approval = {"type": "mcp_approval_response", "approval_request_id": "mcpr_1", "approve": True}
    ga = connect(server)
    recv(ga)
    send(ga, {"type": "conversation.item.create", "item": approval})
    assert recv(ga)["item"]["type"] == "mcp_approval_response"
    beta = connect(server, header=headers(True))
    recv(beta)
    send(beta, {"type": "conversation.item.create", "item": approval})
    assert expect_error(beta, "invalid_value")["param"] == "item.type"


def test_absurdly_nested_json_is_an_error_not_a_crash(
    server: LocalRealtimeServer, connect: Connect
) -> None:
    ws = connect(server)
    recv(ws)
    ws.send('{"a":' * 100_000 + "1" + "}" * 100_000)
    expect_error(ws, "invalid_json")
    send(ws, {"type": "input_audio_buffer.clear"})
    assert recv(ws)["type"] == "input_audio_buffer.cleared"
