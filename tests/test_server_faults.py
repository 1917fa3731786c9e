"""Faults of the local Realtime server as a client of the package sees them: hung
handshakes, connections dropped mid-response, half-open peers, error storms, expiry on
demand, TLS; and the server's own conversation in each ConnectionRecord.

Most tests run against both servers: the socket server (real sockets on 127.0.0.1) and
the in-process transport.
"""

from __future__ import annotations

import inspect
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest
import trustme
from conftest import KEY, user_message
from rawpeer import read_request

from realtime_sync import (
    BadRequestError,
    ConnectionClosed,
    InternalServerError,
    RealtimeClient,
    RealtimeTimeoutError,
    TransportError,
)
from realtime_sync.testing import InProcessTransport, LocalRealtimeServer
from realtime_sync.testing._socket_controls import CUT_AFTER

pytestmark = pytest.mark.timeout(30)

WAIT = 5.0
CONN_THREAD = "realtime_sync-local-server-conn"
_RECONNECT = "reconnect" in inspect.signature(RealtimeClient).parameters


def client_options(**options: Any) -> dict[str, Any]:
    """Options for a client whose session ends when the server ends it (no reconnection)."""
    options.setdefault("api_key", KEY)
    if _RECONNECT:
        options.setdefault("reconnect", False)
    return options


@attrs.define
class Rig:
    """A server of either kind and a factory of clients aimed at it."""

    server: LocalRealtimeServer | InProcessTransport
    make_client: Callable[..., RealtimeClient]

    @property
    def socket(self) -> bool:
        return isinstance(self.server, LocalRealtimeServer)


@pytest.fixture(params=["socket", "in-process"])
def make_rig(request: pytest.FixtureRequest) -> Iterator[Callable[..., Rig]]:
    """Build a server of the parametrized kind; its clients close before it stops."""
    servers: list[LocalRealtimeServer] = []
    clients: list[RealtimeClient] = []

    def build(**server_options: Any) -> Rig:
        server: LocalRealtimeServer | InProcessTransport
        if request.param == "socket":
            server = LocalRealtimeServer(api_key=KEY, **server_options).start()
            servers.append(server)
        else:
            server = InProcessTransport(api_key=KEY, **server_options)

        def make_client(**options: Any) -> RealtimeClient:
            if isinstance(server, LocalRealtimeServer):
                options.setdefault("url", f"{server.url}?model=gpt-realtime")
            else:
                options.setdefault("transport", server)
            client = RealtimeClient(**client_options(**options))
            clients.append(client)
            return client

        return Rig(server, make_client)

    yield build
    for client in clients:
        client.close(timeout=WAIT)
    for server in servers:
        server.stop()


@pytest.fixture
def tls_ca(tmp_path: Path) -> tuple[trustme.CA, str]:
    """A throwaway CA and the path of its certificate (PEM)."""
    ca = trustme.CA()
    path = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return ca, str(path)


def tls_context(ca: trustme.CA) -> ssl.SSLContext:
    """A server-side context with a certificate for 127.0.0.1 issued by ``ca``."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    return context


def wait_until(condition: Callable[[], bool], timeout: float = WAIT) -> None:
    """Wait for a condition nothing signals (e.g. the server having read a request)."""
    deadline = time.monotonic() + timeout
    pause = threading.Event()
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        pause.wait(0.01)


def join_connection_threads(timeout: float = WAIT) -> None:
    """Join the socket server's connection threads: each ends when its connection does."""
    for thread in threading.enumerate():
        if thread.name == CONN_THREAD:
            thread.join(timeout)
            assert not thread.is_alive()


def upgrade_request(port: int) -> bytes:
    return (
        f"GET /v1/realtime?model=gpt-realtime HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        "Upgrade: websocket\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
        f"Authorization: Bearer {KEY}\r\n\r\n"
    ).encode()


def collect(client: RealtimeClient, pattern: str) -> list[Any]:
    seen: list[Any] = []
    client.on(pattern, seen.append)
    return seen


def collect_until(
    client: RealtimeClient, pattern: str, count: int
) -> tuple[list[Any], threading.Event]:
    """Collect events; the event is set once ``count`` arrived."""
    seen: list[Any] = []
    full = threading.Event()

    def record(event: Any) -> None:
        seen.append(event)
        if len(seen) >= count:
            full.set()

    client.on(pattern, record)
    return seen, full


# Hung handshakes


def test_a_hung_handshake_times_the_client_out_and_is_recorded(
    make_rig: Callable[..., Rig],
) -> None:
    rig = make_rig()
    rig.server.hang_handshakes(times=1)
    client = rig.make_client()
    started = time.monotonic()
    with pytest.raises(RealtimeTimeoutError, match="upgrade did not complete"):
        client.connect(timeout=0.5)
    assert time.monotonic() - started < 3
    (record,) = rig.server.connections
    assert record.status == 0 and not record.open
    assert record.path == "/v1/realtime" and record.auth == "header"
    assert record.received == [] and record.items == [] and record.session == {}
    if rig.socket:
        join_connection_threads()  # the client gave up: the server let go of it
    client.close(timeout=WAIT)
    # One attempt only: the next one gets a session.
    with rig.make_client() as again:
        assert again.send_text("hi", timeout=WAIT).text == "You said: hi"
    assert [r.status for r in rig.server.connections] == [0, 101]


def test_hung_handshakes_last_until_cleared(make_rig: Callable[..., Rig]) -> None:
    rig = make_rig()
    rig.server.hang_handshakes()
    rig.server.reject_handshake(429, headers={"Retry-After": "1"}, times=1)
    for _ in range(2):
        client = rig.make_client()
        with pytest.raises(RealtimeTimeoutError):
            client.connect(timeout=0.3)
        client.close(timeout=WAIT)
    rig.server.clear_faults()  # the rejection went with it: hangs used none of it
    with rig.make_client() as client:
        assert client.connected
    assert [r.status for r in rig.server.connections] == [0, 0, 101]
    with pytest.raises(ValueError, match="times"):
        rig.server.hang_handshakes(times=0)


def test_stop_ends_hung_handshakes_promptly_without_an_answer() -> None:
    server = LocalRealtimeServer(api_key=KEY).start()
    try:
        server.hang_handshakes()
        port = int(server.azure_endpoint.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port), timeout=WAIT) as raw:
            raw.sendall(upgrade_request(port))
            wait_until(lambda: len(server.connections) == 1)  # read, and left unanswered
            started = time.monotonic()
            server.stop()
            assert time.monotonic() - started < 2
            assert raw.recv(1024) == b""  # the socket ended without an HTTP response
        join_connection_threads(0)
        assert server.connections[0].status == 0
    finally:
        server.stop()


# Connections dropped during a response


def test_drop_during_response_cuts_after_the_given_deltas(make_rig: Callable[..., Rig]) -> None:
    rig = make_rig(reply="abcdefgh", delta_chunks=4)
    rig.server.drop_during_response(after_deltas=2)
    client = rig.make_client()
    deltas = collect(client, "response.output_text.delta")
    done = collect(client, "response.done")
    client.connect(timeout=WAIT)
    closed = client.expect("client.closed")
    with pytest.raises(ConnectionClosed, match="without a close frame"):
        client.send_text("hi", timeout=WAIT)
    event = closed.wait(WAIT)
    assert event.code is None and event.retryable and not event.requested
    assert [d.delta for d in deltas] == ["ab", "cd"] and done == []
    # The server's record closes when its side sees the cut, which may come a moment later.
    wait_until(lambda: not rig.server.connections[0].open)
    client.close(timeout=WAIT)
    # times=1: the next response streams whole.
    with rig.make_client() as again:
        assert again.send_text("hi", timeout=WAIT).text == "abcdefgh"


def test_drop_during_response_counts_audio_and_transcript_deltas() -> None:
    with LocalRealtimeServer(api_key=KEY, reply="Hello there") as server:
        server.drop_during_response(after_deltas=3)
        client = RealtimeClient(**client_options(url=f"{server.url}?model=gpt-realtime"))
        seen = collect(client, "response.*")
        try:
            client.connect(timeout=WAIT)
            with pytest.raises(ConnectionClosed):
                client.send_text("hi", timeout=WAIT, response={"output_modalities": ["audio"]})
            # 100 ms of audio per chunk: transcript delta, audio delta, transcript, cut.
            assert [event.type for event in seen if event.type.endswith(".delta")] == [
                "response.output_audio_transcript.delta",
                "response.output_audio.delta",
                "response.output_audio_transcript.delta",
            ]
        finally:
            client.close(timeout=WAIT)


@pytest.mark.parametrize("after_deltas", [0, 99])
def test_drop_during_response_before_any_delta_or_instead_of_response_done(
    make_rig: Callable[..., Rig], after_deltas: int
) -> None:
    rig = make_rig(reply="abcd", delta_chunks=2)
    rig.server.drop_during_response(after_deltas)
    client = rig.make_client()
    seen = collect(client, "response.*")
    client.connect(timeout=WAIT)
    with pytest.raises(ConnectionClosed):
        client.send_text("hi", timeout=WAIT)
    types = [event.type for event in seen]
    if after_deltas == 0:
        assert types == ["response.created"]
    else:  # the whole text and its done events, then no response.done
        assert types[0] == "response.created" and "response.done" not in types
        assert types.count("response.output_text.delta") == 2
        assert types[-1] == "response.output_item.done"


def test_drop_during_every_response_until_cleared(make_rig: Callable[..., Rig]) -> None:
    rig = make_rig()
    rig.server.drop_during_response(times=None)
    for _ in range(2):
        client = rig.make_client()
        client.connect(timeout=WAIT)
        with pytest.raises(ConnectionClosed):
            client.send_text("hi", timeout=WAIT)
        client.close(timeout=WAIT)
    rig.server.clear_faults()
    with rig.make_client() as client:
        assert client.send_text("hi", timeout=WAIT).status == "completed"
    with pytest.raises(ValueError, match="after_deltas"):
        rig.server.drop_during_response(-1)


# Half-open peers


def test_a_half_open_server_answers_no_pings() -> None:
    with LocalRealtimeServer(api_key=KEY) as server:
        client = RealtimeClient(
            **client_options(
                url=f"{server.url}?model=gpt-realtime", ping_interval=0.5, ping_timeout=0.25
            )
        )
        try:
            client.connect(timeout=WAIT)
            server.half_open()
            client.send(user_message("anyone there?"))
            client.response.create()
            server.wait_for_received("response.create")  # it arrived, and is not answered
            started = time.monotonic()
            with pytest.raises(ConnectionClosed, match="pong"):
                client.wait_for("response.done", timeout=10)
            assert time.monotonic() - started < 4  # noticed by the keepalive
        finally:
            client.close(timeout=WAIT)
        (record,) = server.connections
        assert [e["type"] for e in record.received] == [
            "conversation.item.create",
            "response.create",
        ]
        assert record.items == []  # recorded, never handled


def test_half_open_swallows_events_until_restored(make_rig: Callable[..., Rig]) -> None:
    rig = make_rig(reply="back")
    client = rig.make_client(ping_interval=None)
    errors = collect(client, "error")
    client.connect(timeout=WAIT)
    rig.server.half_open()
    client.send(user_message("lost"))
    client.response.create()
    rig.server.wait_for_received("response.create")
    rig.server.push({"type": "rate_limits.updated", "rate_limits": []})
    rig.server.storm_errors(2)
    with pytest.raises(RealtimeTimeoutError):
        client.wait_for("*", timeout=0.3)
    assert client.connected and rig.server.connections[0].open
    rig.server.half_open(False)
    reply = client.send_text("hello again", timeout=WAIT)
    assert reply.text == "back" and errors == []
    # What arrived while silent changed nothing: only the last turn is in the conversation.
    items = rig.server.connections[0].items
    assert [item["role"] for item in items] == ["user", "assistant"]
    assert items[0]["content"][0]["text"] == "hello again"


def test_a_new_connection_to_a_half_open_server_gets_no_session(
    make_rig: Callable[..., Rig],
) -> None:
    rig = make_rig()
    rig.server.half_open()
    client = rig.make_client()
    with pytest.raises(RealtimeTimeoutError, match=r"no session\.created"):
        client.connect(timeout=0.5)
    client.close(timeout=WAIT)
    assert rig.server.connections[0].status == 101
    rig.server.clear_faults()  # a switch, not a counted fault: still half-open
    with pytest.raises(RealtimeTimeoutError):
        rig.make_client().connect(timeout=0.3)
    rig.server.half_open(False)
    with rig.make_client() as client:
        assert client.connected


# Error storms


def test_storm_errors_reach_every_open_connection(make_rig: Callable[..., Rig]) -> None:
    rig = make_rig()
    clients = [rig.make_client(), rig.make_client()]
    storms = [collect_until(client, "error", 5) for client in clients]
    for client in clients:
        client.connect(timeout=WAIT)
    rig.server.storm_errors(5)
    for seen, full in storms:
        assert full.wait(WAIT)
        assert len({event.event_id for event in seen}) == 5
        for event in seen:
            assert event.error.type == "server_error" and event.error.code == "server_error"
            assert event.error.message.startswith("The server had an error")
            assert event.error.param is None and event.error.event_id is None
    for client in clients:  # a storm is not fatal
        assert client.send_text("still here?", timeout=WAIT).status == "completed"


def test_storm_error_kinds_and_pacing(make_rig: Callable[..., Rig]) -> None:
    rig = make_rig()
    client = rig.make_client()
    seen, full = collect_until(client, "error", 5)
    client.connect(timeout=WAIT)
    rig.server.storm_errors(2, code="rate_limit_exceeded", message="Slow down.")
    started = time.monotonic()
    rig.server.storm_errors(3, code=None, interval=0.05)
    assert time.monotonic() - started >= 0.1  # two pauses between three errors
    assert full.wait(WAIT)
    assert [(e.error.type, e.error.code, e.error.message) for e in seen[:2]] == [
        ("invalid_request_error", "rate_limit_exceeded", "Slow down.")
    ] * 2
    assert [(e.error.type, e.error.code) for e in seen[2:]] == [("server_error", None)] * 3
    with pytest.raises(ValueError, match="count"):
        rig.server.storm_errors(0)
    with pytest.raises(ValueError, match="interval"):
        rig.server.storm_errors(1, interval=-1)


# Expiry on demand


def test_expire_sessions_ends_every_session_as_real_servers_do(
    make_rig: Callable[..., Rig],
) -> None:
    rig = make_rig(reply="a long answer, streamed slowly", delta_chunks=10, delta_interval=0.05)
    client = rig.make_client()
    errors = collect(client, "error")
    client.connect(timeout=WAIT)
    closed = client.expect("client.closed")
    first_delta = client.expect("response.output_text.delta")
    handle = client.create_response()
    first_delta.wait(WAIT)
    rig.server.expire_sessions()
    event = closed.wait(WAIT)
    assert event.code == 1001 and event.reason == "invalid_request_error.session_expired"
    assert event.retryable
    assert [e.error.code for e in errors] == ["session_expired"]
    with pytest.raises(ConnectionClosed):
        handle.wait(WAIT)  # the response in progress never finished
    wait_until(lambda: not rig.server.connections[0].open)


# TLS


def test_a_tls_server_serves_clients_that_trust_its_ca(tls_ca: tuple[trustme.CA, str]) -> None:
    ca, ca_path = tls_ca
    with LocalRealtimeServer(api_key=KEY, reply="secure", ssl_context=tls_context(ca)) as server:
        assert server.url.startswith("wss://127.0.0.1:")
        assert server.azure_endpoint.startswith("https://127.0.0.1:")
        client = RealtimeClient(
            api_key=KEY, url=server.url + "?model=gpt-realtime", ca_certs=ca_path
        )
        with client:
            assert client.send_text("hi", timeout=WAIT).text == "secure"
        assert server.connections[0].status == 101


def test_a_tls_server_is_refused_without_its_ca_and_the_key_stays_hidden(
    tls_ca: tuple[trustme.CA, str],
) -> None:
    ca, _ = tls_ca
    with LocalRealtimeServer(api_key=KEY, ssl_context=tls_context(ca)) as server:
        client = RealtimeClient(**client_options(url=server.url + "?model=gpt-realtime"))
        try:
            with pytest.raises(TransportError, match=r"(?i)certificate verif") as raised:
                client.connect(timeout=WAIT)
        finally:
            client.close(timeout=WAIT)
        assert server.connections == []  # TLS failed before any upgrade request
    error: BaseException | None = raised.value
    while error is not None:
        assert KEY not in str(error) and KEY not in repr(error)
        error = error.__cause__ or error.__context__
    assert KEY not in str(raised.getrepr())


def test_faults_over_tls(tls_ca: tuple[trustme.CA, str]) -> None:
    ca, ca_path = tls_ca
    server = LocalRealtimeServer(api_key=KEY, ssl_context=tls_context(ca)).start()
    options = client_options(url=server.url + "?model=gpt-realtime", ca_certs=ca_path)
    try:
        server.hang_handshakes(times=1)
        client = RealtimeClient(**options)
        with pytest.raises(RealtimeTimeoutError):
            client.connect(timeout=0.5)
        client.close(timeout=WAIT)
        join_connection_threads()
        server.drop_during_response(after_deltas=1)
        client = RealtimeClient(**options)
        client.connect(timeout=WAIT)
        with pytest.raises(ConnectionClosed):
            client.send_text("hi", timeout=WAIT)
        client.close(timeout=WAIT)
        server.hang_handshakes()
        port = int(server.azure_endpoint.rsplit(":", 1)[1])
        context = ssl.create_default_context(cafile=ca_path)
        with (
            socket.create_connection(("127.0.0.1", port), timeout=WAIT) as raw,
            context.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
        ):
            tls.sendall(upgrade_request(port))
            wait_until(lambda: len(server.connections) == 3)
            started = time.monotonic()
            server.stop()
            assert time.monotonic() - started < 2
            assert tls.recv(1024) == b""
    finally:
        server.stop()


# The server's conversation in the record


def _session_update(beta: bool) -> dict[str, Any]:
    tools = [
        {
            "type": "function",
            "name": "lookup",
            "description": "Look something up.",
            "parameters": {"type": "object", "properties": {"q": {"type": "string"}}},
        }
    ]
    if beta:
        return {
            "instructions": "Be brief.",
            "tools": tools,
            "voice": "echo",
            "input_audio_format": "g711_ulaw",
            "output_audio_format": "g711_alaw",
            "turn_detection": None,
            "input_audio_transcription": {"model": "whisper-1"},
        }
    return {
        "type": "realtime",
        "instructions": "Be brief.",
        "tools": tools,
        "audio": {
            "input": {"format": {"type": "audio/pcmu"}, "turn_detection": None},
            "output": {"voice": "cedar", "format": {"type": "audio/pcma"}},
        },
    }


def _message(item_id: str, role: str, text: str, beta: bool) -> dict[str, Any]:
    kind = "input_text" if role == "user" else "text" if beta else "output_text"
    return {
        "id": item_id,
        "type": "message",
        "role": role,
        "content": [{"type": kind, "text": text}],
    }


@pytest.mark.parametrize("dialect", ["ga", "beta"])
def test_the_record_holds_the_servers_conversation_and_session(
    make_rig: Callable[..., Rig], dialect: str
) -> None:
    beta = dialect == "beta"
    rig = make_rig(reply="done")
    client = rig.make_client(protocol=dialect)
    client.connect(timeout=WAIT)
    updated = client.expect("session.updated")
    client.session.update(session=_session_update(beta))
    updated.wait(WAIT)
    # A replayed history: client-chosen ids, one placed at the start with "root".
    history: list[dict[str, Any]] = [
        ({"item": _message("msg_002", "user", "second", beta)}),
        ({"item": _message("msg_001", "user", "first", beta), "previous_item_id": "root"}),
        ({"item": _message("msg_003", "assistant", "third", beta), "previous_item_id": "msg_002"}),
        {
            "item": {
                "id": "fc_004",
                "type": "function_call",
                "call_id": "call_1",
                "name": "lookup",
                "arguments": '{"q": "x"}',
            }
        },
        {
            "item": {
                "id": "fco_005",
                "type": "function_call_output",
                "call_id": "call_1",
                "output": "{}",
            }
        },
    ]
    for fields in history:
        added = client.expect("conversation.item.added")  # one at a time: this item's
        client.conversation.item.create(**fields)
        assert added.wait(WAIT).item.id == fields["item"]["id"]
    refused = client.expect("error")
    event_id = client.conversation.item.create(item=_message("msg_001", "user", "again", beta))
    error = refused.wait(WAIT).error
    assert (error.type, error.code, error.param) == (
        "invalid_request_error",
        "invalid_value",
        "item.id",
    )
    assert "msg_001" in error.message and "already exists" in error.message
    assert error.event_id == event_id
    assert client.send_text("and now?", timeout=WAIT).text == "done"

    (record,) = rig.server.connections
    ids = [item["id"] for item in record.items]
    assert ids[:5] == ["msg_001", "msg_002", "msg_003", "fc_004", "fco_005"]
    assert len(ids) == 7 and record.items[5]["role"] == "user"
    assert record.items[6]["role"] == "assistant"
    assert record.items[6]["content"][0]["text"] == "done"
    assert record.items[0]["content"][0]["text"] == "first"
    session = record.session
    assert session["instructions"] == "Be brief."
    assert [tool["name"] for tool in session["tools"]] == ["lookup"]
    if beta:
        assert session["voice"] == "echo" and session["output_audio_format"] == "g711_alaw"
        assert session["turn_detection"] is None
    else:
        assert session["audio"]["output"]["voice"] == "cedar"
        assert session["audio"]["input"]["format"] == {"type": "audio/pcmu"}
        assert session["audio"]["input"]["turn_detection"] is None
    # Copies: changing a record changes neither the server nor the next record.
    record.items[0]["content"][0]["text"] = "changed"
    record.session["instructions"] = "changed"
    client.close(timeout=WAIT)
    wait_until(lambda: not rig.server.connections[0].open)  # its side has seen the close
    (later,) = rig.server.connections
    assert later.items[0]["content"][0]["text"] == "first"
    assert later.session["instructions"] == "Be brief."
    assert not later.open and len(later.items) == 7  # kept after the connection ended
    assert "items" not in repr(later) and "session=" not in repr(later)


def test_refused_item_ids_and_predecessors(make_rig: Callable[..., Rig]) -> None:
    rig = make_rig()
    client = rig.make_client()
    client.connect(timeout=WAIT)
    cases: list[tuple[dict[str, Any], str, str]] = [
        ({"item": {**_message("", "user", "x", False)}}, "invalid_value", "item.id"),
        ({"item": {**_message("m", "user", "x", False), "id": 7}}, "invalid_type", "item.id"),
        (
            {"item": _message("m", "user", "x", False), "previous_item_id": "nope"},
            "invalid_value",
            "previous_item_id",
        ),
    ]
    for fields, code, param in cases:
        refused = client.expect("error")
        client.send({"type": "conversation.item.create", **fields})
        error = refused.wait(WAIT).error
        assert (error.code, error.param) == (code, param)
    assert rig.server.connections[0].items == []


def test_records_without_a_session_hold_no_conversation(make_rig: Callable[..., Rig]) -> None:
    rig = make_rig()
    rig.server.reject_handshake(503, times=1)
    rig.server.fail_after_accept(
        4000, {"type": "invalid_request_error", "code": "model_not_found"}, times=1
    )
    for kind in (InternalServerError, BadRequestError):
        client = rig.make_client()
        with pytest.raises(kind):
            client.connect(timeout=WAIT)
        client.close(timeout=WAIT)
    refused, failed = rig.server.connections
    assert (refused.status, failed.status) == (503, 101)
    assert refused.items == failed.items == [] and refused.session == failed.session == {}


# Pushes


@pytest.mark.timeout(60)
def test_a_push_to_a_connection_that_stopped_reading_is_bounded_and_cuts_it(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with LocalRealtimeServer(api_key=KEY) as server:
        reader = RealtimeClient(**client_options(url=f"{server.url}?model=gpt-realtime"))
        stalled = socket.socket()
        stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # full soon
        stalled.settimeout(WAIT)
        try:
            reader.connect(timeout=WAIT)
            port = int(server.url.rsplit(":", 1)[1].split("/")[0])
            stalled.connect(("127.0.0.1", port))
            stalled.sendall(upgrade_request(port))
            assert read_request(stalled).startswith(b"HTTP/1.1 101 ")
            server.wait_for_connections(2, WAIT)  # then it reads nothing more
            got = reader.expect("rate_limits.updated")
            returned = threading.Event()
            size = 8 * 2**20  # more than the kernel buffers between the server and the peer

            def push() -> None:
                server.push(
                    {"type": "rate_limits.updated", "rate_limits": [], "padding": "x" * size}
                )
                returned.set()

            started = time.monotonic()
            threading.Thread(target=push, daemon=True).start()
            assert returned.wait(CUT_AFTER + WAIT), "push() is blocked on the stalled peer"
            assert time.monotonic() - started >= CUT_AFTER - 0.5  # it gave the peer its time
            assert len(got.wait(WAIT).padding) == size  # the reading client got it all
            wait_until(lambda: not server.connections[1].open)
            assert "stopped reading" in caplog.text
            assert server.connections[0].open
        finally:
            stalled.close()
            reader.close(timeout=WAIT)
