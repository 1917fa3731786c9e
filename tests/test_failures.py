"""Every way a connection can fail raises its typed exception, in time, and leaks nothing."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from conftest import KEY, client_threads

from realtime_sync import (
    APIError,
    AuthenticationError,
    BadRequestError,
    ClientClosed,
    ClosedEvent,
    ConnectionClosed,
    InternalServerError,
    NotConnectedError,
    PermissionDeniedError,
    RateLimitError,
    RealtimeClient,
    RealtimeError,
    RealtimeTimeoutError,
    TransportError,
)
from realtime_sync.testing import LocalRealtimeServer

pytestmark = pytest.mark.timeout(30)

MakeClient = Callable[..., RealtimeClient]


def connect_error(client: RealtimeClient, timeout: float = 3.0) -> tuple[BaseException, float]:
    """The exception connect() raises, and how long it took to raise it."""
    started = time.monotonic()
    with pytest.raises(RealtimeError) as caught:
        client.connect(timeout=timeout)
    return caught.value, time.monotonic() - started


def assert_threads_gone() -> None:
    for thread in client_threads():
        thread.join(5)
    assert client_threads() == []


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (400, BadRequestError),
        (401, AuthenticationError),
        (403, PermissionDeniedError),
        (404, BadRequestError),
        (429, RateLimitError),
        (500, InternalServerError),
        (503, InternalServerError),
    ],
)
def test_http_refusals_raise_typed_errors(
    server: LocalRealtimeServer, make_client: MakeClient, status: int, expected: type[APIError]
) -> None:
    body = {"error": {"message": f"refused {status}", "type": "test_error", "code": f"c{status}"}}
    server.reject_handshake(status, body=body, headers={"x-request-id": "req_123"})
    error, elapsed = connect_error(make_client())
    assert type(error) is expected
    assert isinstance(error, APIError)
    assert error.status_code == status
    assert error.code == f"c{status}"
    assert error.type == "test_error"
    assert error.request_id == "req_123"
    assert error.body == body
    assert error.close_code is None
    assert f"refused {status}" in str(error)
    assert elapsed < 3
    assert_threads_gone()


def test_rate_limit_carries_retry_after(
    server: LocalRealtimeServer, make_client: MakeClient
) -> None:
    server.reject_handshake(
        429, body={"error": {"message": "slow down"}}, headers={"Retry-After": "7"}
    )
    error, _ = connect_error(make_client())
    assert isinstance(error, RateLimitError)
    assert error.retry_after == 7.0
    assert error.headers["retry-after"] == "7"


def test_non_json_refusal_body(server: LocalRealtimeServer, make_client: MakeClient) -> None:
    server.reject_handshake(502, body="<html>bad gateway</html>")
    error, _ = connect_error(make_client())
    assert isinstance(error, InternalServerError)
    assert error.body == "<html>bad gateway</html>"
    assert "502" in str(error)


def test_wrong_key_is_error_then_close_3000(
    server: LocalRealtimeServer, make_client: MakeClient
) -> None:
    wrong = "rs-wrong-key-0000000000000000"
    error, elapsed = connect_error(make_client(api_key=wrong))
    assert isinstance(error, AuthenticationError)
    assert error.status_code is None
    assert error.close_code == 3000
    assert error.code == "invalid_api_key"
    assert wrong not in str(error) and KEY not in str(error)
    assert elapsed < 3
    assert_threads_gone()


@pytest.mark.parametrize("auth", ["header", "subprotocol", "query"])
def test_wrong_key_fails_the_same_in_every_auth_mode(make_client: MakeClient, auth: str) -> None:
    error, _ = connect_error(make_client(api_key="rs-wrong-key-1111111111111111", auth=auth))
    assert isinstance(error, AuthenticationError)


def test_close_4000_is_a_bad_request(server: LocalRealtimeServer, make_client: MakeClient) -> None:
    server.fail_after_accept(
        4000,
        {"type": "invalid_request_error", "code": "model_not_found", "message": "no such model"},
    )
    error, _ = connect_error(make_client(model="gpt-nonexistent"))
    assert isinstance(error, BadRequestError)
    assert error.close_code == 4000
    assert error.code == "model_not_found"
    assert "no such model" in str(error)


def test_beta_shutdown_says_to_use_ga() -> None:
    with LocalRealtimeServer(api_key=KEY, emulate_beta_shutdown=True) as server:
        client = RealtimeClient(api_key=KEY, url=server.url, protocol="beta")
        error, _ = connect_error(client)
        assert isinstance(error, BadRequestError)
        assert error.code == "beta_api_shape_disabled"
        assert error.close_code == 4000
        assert "protocol='ga'" in str(error)
        ga = RealtimeClient(api_key=KEY, url=server.url)
        with ga:
            assert ga.session.current is not None


def test_server_error_type_maps_to_internal_server_error(
    server: LocalRealtimeServer, make_client: MakeClient
) -> None:
    server.fail_after_accept(1011, {"type": "server_error", "code": None, "message": "oops"})
    error, _ = connect_error(make_client())
    assert isinstance(error, InternalServerError)
    assert error.close_code == 1011


def test_faults_can_be_limited_and_cleared(
    server: LocalRealtimeServer, make_client: MakeClient
) -> None:
    server.reject_handshake(503, times=1)
    client = make_client()
    error, _ = connect_error(client)
    assert isinstance(error, InternalServerError)
    client.connect(timeout=5)  # the second attempt is not refused
    client.close()
    server.reject_handshake(401)
    server.clear_faults()
    client.connect(timeout=5)


@contextlib.contextmanager
def silent_tcp_server() -> Iterator[int]:
    """A TCP listener that accepts connections and never says a word."""
    listener = socket.create_server(("127.0.0.1", 0))
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            with contextlib.suppress(OSError):
                accepted.append(listener.accept()[0])

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        stop.set()
        thread.join(5)
        for conn in accepted:
            conn.close()
        listener.close()


def test_silent_server_times_out_instead_of_hanging() -> None:
    with silent_tcp_server() as port:
        client = RealtimeClient(api_key=KEY, url=f"ws://127.0.0.1:{port}/v1/realtime")
        error, elapsed = connect_error(client, timeout=1.0)
        # A second attempt is not refused as "already connected" while the first winds down.
        second, _ = connect_error(client, timeout=0.2)
    assert isinstance(error, RealtimeTimeoutError)
    assert isinstance(error, TimeoutError)
    assert "upgrade did not complete" in str(error)
    # Not before its 1 s, and not the 10 s default timeout either (slack for a busy machine).
    assert 0.9 < elapsed < 3
    assert isinstance(second, RealtimeTimeoutError)
    assert_threads_gone()


def test_accepted_but_no_session_created_times_out() -> None:
    from websockets.sync.server import ServerConnection, serve

    done = threading.Event()

    def mute(connection: ServerConnection) -> None:
        done.wait(10)

    with serve(mute, "127.0.0.1", 0) as mute_server:
        thread = threading.Thread(target=mute_server.serve_forever, daemon=True)
        thread.start()
        port = mute_server.socket.getsockname()[1]
        client = RealtimeClient(api_key=KEY, url=f"ws://127.0.0.1:{port}/v1/realtime")
        error, elapsed = connect_error(client, timeout=1.0)
        done.set()
        mute_server.shutdown()
        thread.join(5)
    assert isinstance(error, RealtimeTimeoutError)
    assert "sent no session.created" in str(error)
    assert elapsed < 2.5
    assert_threads_gone()


def test_close_during_the_handshake_ends_connect() -> None:
    """close() wins the race with connect() by construction (see test_client.py's race)."""
    from websockets.sync.server import ServerConnection, serve

    accepted = threading.Event()
    done = threading.Event()

    def mute(connection: ServerConnection) -> None:
        accepted.set()  # upgraded, and session.created never comes
        done.wait(10)

    with serve(mute, "127.0.0.1", 0) as mute_server:
        thread = threading.Thread(target=mute_server.serve_forever, daemon=True)
        thread.start()
        port = mute_server.socket.getsockname()[1]
        client = RealtimeClient(api_key=KEY, url=f"ws://127.0.0.1:{port}/v1/realtime")
        outcome: list[tuple[BaseException, float]] = []
        connecting = threading.Thread(
            target=lambda: outcome.append(connect_error(client, timeout=10))
        )
        connecting.start()
        assert accepted.wait(5)
        client.close(timeout=2)
        connecting.join(5)
        done.set()
        mute_server.shutdown()
        thread.join(5)
    ((error, elapsed),) = outcome
    assert isinstance(error, ClientClosed)  # ours, not the server's doing
    # Ended by close(), not by connect()'s own 10 s timeout.
    assert elapsed < 5
    assert_threads_gone()


def test_connection_refused_is_a_transport_error() -> None:
    probe = socket.create_server(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    client = RealtimeClient(api_key=KEY, url=f"ws://127.0.0.1:{port}/v1/realtime")
    error, elapsed = connect_error(client)
    assert isinstance(error, TransportError)
    assert f"127.0.0.1:{port}" in str(error)
    assert elapsed < 3
    assert_threads_gone()


def test_session_expiry_is_a_connection_closed_with_the_error(
    server: LocalRealtimeServer, make_client: MakeClient
) -> None:
    client = make_client(reconnect=False)
    closed: list[ClosedEvent] = []
    client.on("client.closed", closed.append)
    client.on("error", lambda ev: None)
    client.connect(timeout=5)
    server.push(
        {
            "type": "error",
            "error": {
                "type": "invalid_request_error",
                "code": "session_expired",
                "message": "Your session hit the maximum duration of 60 minutes.",
            },
        }
    )
    server.close_connections(1001, "session_expired")
    with pytest.raises(ConnectionClosed) as caught:
        client.wait_for("response.done", timeout=5)
    assert caught.value.code == 1001
    assert caught.value.error is not None and caught.value.error.error.code == "session_expired"
    assert "expired" in str(caught.value)
    assert len(closed) == 1 and not closed[0].requested
    assert not client.connected


def test_local_server_session_lifetime() -> None:
    with LocalRealtimeServer(api_key=KEY, session_lifetime=0.5) as server:
        client = RealtimeClient(reconnect=False, api_key=KEY, url=server.url)
        client.on("error", lambda ev: None)
        client.connect(timeout=5)
        with pytest.raises(ConnectionClosed) as caught:
            client.wait_for("response.done", timeout=5)
        client.close()
    assert caught.value.code == 1001


def test_dropped_connection_is_a_connection_closed(
    server: LocalRealtimeServer, make_client: MakeClient
) -> None:
    client = make_client(reconnect=False)
    client.connect(timeout=5)
    server.drop_connections()
    with pytest.raises(ConnectionClosed) as caught:
        client.wait_for("response.done", timeout=5)
    assert caught.value.code is None
    assert_threads_gone()


def test_unanswered_pings_end_the_session(
    server: LocalRealtimeServer, make_client: MakeClient
) -> None:
    client = make_client(reconnect=False, ping_interval=0.5, ping_timeout=0.25)
    client.connect(timeout=5)
    server.answer_pings(False)
    started = time.monotonic()
    with pytest.raises(ConnectionClosed, match="pong"):
        client.wait_for("response.done", timeout=10)
    # Noticed within a few ping periods (about 0.8 s here), not at the wait's own 10 s.
    assert time.monotonic() - started < 4
    assert_threads_gone()


def test_sending_after_the_server_dropped_raises(
    server: LocalRealtimeServer, make_client: MakeClient
) -> None:
    client = make_client(reconnect=False)
    ended = threading.Event()
    client.on("client.closed", lambda ev: ended.set())
    client.connect(timeout=5)
    server.drop_connections()
    assert ended.wait(5)
    with pytest.raises(NotConnectedError):
        client.send({"type": "response.create"})


def test_configuration_errors() -> None:
    from realtime_sync import ConfigurationError

    with pytest.raises(ConfigurationError, match="ping_interval"):
        RealtimeClient(api_key=KEY, ping_interval=5, ping_timeout=10)
    with pytest.raises(ConfigurationError, match="auth"):
        RealtimeClient(api_key=KEY, auth="cookie")
    with pytest.raises(ConfigurationError, match="protocol"):
        RealtimeClient(api_key=KEY, protocol="v2")


def test_missing_key_is_a_configuration_error(monkeypatch: pytest.MonkeyPatch) -> None:
    from realtime_sync import ConfigurationError

    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(ConfigurationError, match="OPENAI_API_KEY"):
        RealtimeClient()


def test_key_and_base_url_from_environment(
    server: LocalRealtimeServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.setenv(
        "OPENAI_BASE_URL", server.url.removesuffix("/realtime").replace("ws://", "http://")
    )
    client = RealtimeClient()
    with client:
        assert client.session.current is not None
    record: Any = server.connections[-1]
    assert record.headers["authorization"] == f"Bearer {KEY}"
    assert record.query["model"] == "gpt-realtime-2.1"


@contextlib.contextmanager
def server_that_stops_reading() -> Iterator[int]:
    """Upgrades, sends session.created, then never reads again (a hung peer)."""
    listener = socket.create_server(("127.0.0.1", 0))
    held: list[socket.socket] = []

    def serve() -> None:
        conn, _ = listener.accept()
        held.append(conn)
        request = b""
        while b"\r\n\r\n" not in request:
            request += conn.recv(4096)
        key = next(
            line.split(b":", 1)[1].strip()
            for line in request.split(b"\r\n")
            if line.lower().startswith(b"sec-websocket-key:")
        )
        accept = base64.b64encode(
            hashlib.sha1(key + b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11").digest()
        )
        conn.sendall(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
            b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + accept + b"\r\n\r\n"
        )
        payload = json.dumps({"type": "session.created", "session": {"id": "sess_hung"}}).encode()
        conn.sendall(bytes([0x81, len(payload)]) + payload)  # one small unmasked text frame

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        thread.join(5)
        for conn in held:
            conn.close()
        listener.close()


def test_close_is_bounded_while_a_send_is_stuck() -> None:
    with server_that_stops_reading() as port:
        client = RealtimeClient(
            reconnect=False,
            api_key=KEY,
            url=f"ws://127.0.0.1:{port}/v1/realtime",
            ping_interval=None,
        )
        client.connect(timeout=5)
        stuck = threading.Event()
        failures: list[BaseException] = []

        def flood() -> None:
            chunk = b"\x00" * 2_000_000
            try:
                while True:  # fills the socket buffers, then blocks inside send()
                    stuck.set()
                    client.input_audio_buffer.append(audio=chunk)
            except RealtimeError as exc:
                failures.append(exc)

        sender = threading.Thread(target=flood, daemon=True)
        sender.start()
        assert stuck.wait(5)
        # Past the first appends the buffers are full; a send now sits holding the lock.
        # (Polling a third-party lock, bounded: there is no event to wait on.)
        deadline = time.monotonic() + 5
        while _send_lock_free(client) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert not _send_lock_free(client), "the sender never blocked"
        started = time.monotonic()
        client.close(timeout=1.0)
        # Slack for a busy machine; a close() waiting on the stuck send would never return.
        assert time.monotonic() - started < 3.0
        sender.join(5)
    assert failures  # the stuck send was woken by the shutdown and raised, not hung
    assert_threads_gone()


def _send_lock_free(client: RealtimeClient) -> bool:
    sock = client._link.connection._app.sock if client._link else None  # test-only peek
    lock = getattr(sock, "lock", None)
    if lock is None or not lock.acquire(blocking=False):
        return False
    lock.release()
    return True
