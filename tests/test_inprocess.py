"""The in-process transport: the same simulated sessions as the socket server, no sockets."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from conftest import KEY, client_threads, user_message

from realtime_sync import (
    AuthenticationError,
    BadRequestError,
    ClosedEvent,
    ConnectionClosed,
    RateLimitError,
    RealtimeClient,
    RealtimeError,
)
from realtime_sync.testing import InProcessTransport

WAIT = 5.0


@pytest.fixture
def transport() -> InProcessTransport:
    return InProcessTransport(api_key=KEY, reply="Hi there")


@pytest.fixture
def client(transport: InProcessTransport) -> Iterator[RealtimeClient]:
    client = RealtimeClient(api_key=KEY, transport=transport)
    yield client
    client.close(timeout=WAIT)


def test_a_turn_in_process_is_recorded_like_on_the_socket_server(
    transport: InProcessTransport, client: RealtimeClient
) -> None:
    session = client.connect(timeout=WAIT)
    assert session.id and client.connected
    client.send(user_message("hello"))
    done = client.expect("response.done")
    client.response.create()
    response = done.wait(WAIT).response
    assert response.status == "completed"
    assert response.output[0].content[0].text == "Hi there"
    assert [e["type"] for e in transport.received] == [
        "conversation.item.create",
        "response.create",
    ]
    (record,) = transport.connections
    assert record.path == "/v1/realtime" and record.auth == "header" and record.open
    client.close(timeout=WAIT)
    assert not transport.connections[0].open
    assert client_threads() == []


def test_the_clients_credentials_and_model_are_checked() -> None:
    transport = InProcessTransport(api_key=KEY)
    with pytest.raises(AuthenticationError):
        RealtimeClient(api_key="rs-wrong-key-0000", transport=transport).connect(timeout=WAIT)
    with pytest.raises(BadRequestError, match="model"):
        RealtimeClient(api_key=KEY, model="no-such-model", transport=transport).connect(
            timeout=WAIT
        )
    for auth in ("header", "subprotocol", "query"):
        client = RealtimeClient(api_key=KEY, auth=auth, transport=transport)  # type: ignore[arg-type]
        client.connect(timeout=WAIT)
        client.close(timeout=WAIT)
    assert [c.auth for c in transport.connections][-3:] == ["header", "subprotocol", "query"]


def test_handshake_faults(transport: InProcessTransport) -> None:
    transport.reject_handshake(429, headers={"Retry-After": "2"}, times=1)
    with pytest.raises(RateLimitError) as raised:
        RealtimeClient(api_key=KEY, transport=transport).connect(timeout=WAIT)
    assert raised.value.retry_after == 2.0
    transport.fail_after_accept(4000, {"code": "model_not_found", "message": "gone"}, times=1)
    with pytest.raises(BadRequestError, match="gone"):
        RealtimeClient(api_key=KEY, transport=transport).connect(timeout=WAIT)
    client = RealtimeClient(api_key=KEY, transport=transport)
    client.connect(timeout=WAIT)  # both faults were for one attempt only
    client.close(timeout=WAIT)


@pytest.mark.parametrize(
    ("fault", "code", "retryable"),
    [("drop", None, True), ("close", 1011, True), ("close", 1000, False)],
)
def test_the_server_ending_a_session(
    transport: InProcessTransport,
    fault: str,
    code: int | None,
    retryable: bool,
) -> None:
    client = RealtimeClient(api_key=KEY, transport=transport, reconnect=False)
    client.connect(timeout=WAIT)
    pending = client.expect("response.done")
    closed = client.expect("client.closed")
    if fault == "drop":
        transport.drop_connections()
    else:
        transport.close_connections(code or 1000, "bye")
    event: ClosedEvent = closed.wait(WAIT)
    assert event.code == code and event.retryable is retryable
    with pytest.raises(ConnectionClosed):
        pending.wait(WAIT)
    assert not client.connected
    client.close(timeout=WAIT)


def test_pushed_events_and_garbage_reach_handlers(
    transport: InProcessTransport, client: RealtimeClient
) -> None:
    seen: list[Any] = []
    client.on("rate_limits.updated", seen.append)
    client.on("client.invalid_frame", seen.append)
    client.connect(timeout=WAIT)
    invalid = client.expect("client.invalid_frame")
    transport.push("not json")
    invalid.wait(WAIT)
    limits = client.expect("rate_limits.updated")
    transport.push({"type": "rate_limits.updated", "rate_limits": []})
    limits.wait(WAIT)
    assert [e.type for e in seen] == ["client.invalid_frame", "rate_limits.updated"]


def test_session_expiry() -> None:
    transport = InProcessTransport(api_key=KEY, session_lifetime=0.2)
    client = RealtimeClient(api_key=KEY, transport=transport, reconnect=False)
    client.connect(timeout=WAIT)
    event = client.expect("client.closed").wait(WAIT)
    assert event.code == 1001 and event.retryable
    assert event.error.error.error.code == "session_expired"
    client.close(timeout=WAIT)


def test_concurrent_senders_all_arrive_in_order(
    transport: InProcessTransport, client: RealtimeClient
) -> None:
    client.connect(timeout=WAIT)

    def send(n: int) -> None:
        for i in range(50):
            client.send({"type": "input_audio_buffer.clear", "event_id": f"t{n}-{i}"})

    threads = [threading.Thread(target=send, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(WAIT)
    ids = [e["event_id"] for e in transport.received]
    assert len(ids) == 200
    for n in range(4):
        assert [i for i in ids if i.startswith(f"t{n}-")] == [f"t{n}-{i}" for i in range(50)]


def test_works_without_the_websockets_package_and_the_socket_server_names_the_extra() -> None:
    code = (
        "import sys; sys.modules['websockets'] = None\n"
        "from realtime_sync import RealtimeClient\n"
        "from realtime_sync.testing import InProcessTransport\n"
        "t = InProcessTransport(api_key='rs-test-key-1234', reply='ok')\n"
        "with RealtimeClient(api_key='rs-test-key-1234', transport=t) as c:\n"
        "    done = c.expect('response.done'); c.response.create()\n"
        "    print(done.wait(5).response.output[0].content[0].text)\n"
        "try:\n    from realtime_sync.testing import LocalRealtimeServer\n"
        "except ImportError as exc:\n    print(exc)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=30, check=True
    )
    lines = result.stdout.splitlines()
    assert lines[0] == "ok"
    assert "pip install realtime_sync[server]" in lines[1]


class _AppClient(RealtimeClient):
    """A user's subclass with its own state: every constructor must run its __init__."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.turns = 0


@pytest.mark.parametrize(
    ("api_version", "path", "dialect"),
    [(None, "/openai/v1/realtime", "ga"), ("2024-10-01-preview", "/openai/realtime", "beta")],
)
def test_azure_clients_are_built_through_init_and_run_in_process(
    api_version: str | None, path: str, dialect: str
) -> None:
    transport = InProcessTransport(api_key=KEY)
    client = _AppClient.azure(
        endpoint="https://my-resource.openai.azure.com",
        deployment="my-deployment",
        api_key=KEY,
        api_version=api_version,
        transport=transport,
    )
    assert isinstance(client, _AppClient) and client.turns == 0
    assert client.dialect == dialect
    client.connect(timeout=WAIT)
    client.close(timeout=WAIT)
    (record,) = transport.connections
    assert (record.path, record.auth, record.dialect) == (path, "api-key", dialect)


def test_both_constructors_take_the_same_proxy_arguments() -> None:
    options = {"http_proxy_host": "proxy.internal", "http_proxy_port": 3128}
    plain = RealtimeClient(api_key=KEY, **options)  # type: ignore[arg-type]
    azure = RealtimeClient.azure(
        endpoint="https://r.openai.azure.com", deployment="d", api_key=KEY, **options
    )
    expected = {**options, "proxy_type": "http"}  # websocket-client's default, made explicit
    assert plain._transport.proxy == azure._transport.proxy == expected  # type: ignore[attr-defined]


def test_refused_handshakes_are_not_counted_as_accepted_connections(
    transport: InProcessTransport,
) -> None:
    transport.reject_handshake(503, times=1)
    with pytest.raises(RealtimeError):
        RealtimeClient(api_key=KEY, transport=transport).connect(timeout=WAIT)
    assert transport.connections[0].status == 503
    with pytest.raises(TimeoutError):  # as on the socket server
        transport.wait_for_connections(1, timeout=0.1)


def test_a_close_before_the_start_opens_nothing(transport: InProcessTransport) -> None:
    client = RealtimeClient(api_key=KEY, transport=transport)
    connection = transport.open(
        client._target.handshake(), on_frame=lambda f: None, on_end=lambda e: None, name="t"
    )
    connection.close(timeout=WAIT)
    connection.start()
    assert transport.connections == []
    assert [t for t in threading.enumerate() if t.name.startswith("t-")] == []


def test_binary_pushes_reach_the_client_as_invalid_frames(
    transport: InProcessTransport, client: RealtimeClient
) -> None:
    client.connect(timeout=WAIT)
    invalid = client.expect("client.invalid_frame")
    transport.push(b"\x00\xff")
    assert invalid.wait(WAIT).data == b"\x00\xff"
