"""Sessions that survive: reconnecting, replaying, queueing the gap, rolling over.

Against the local server on real sockets: what the user sees (events, exceptions) and what
the server's record shows (the replay, queued sends arriving once and in order).
"""

from __future__ import annotations

import base64
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import trustme
from conftest import KEY, client_threads

from realtime_sync import (
    AuthenticationError,
    ClientClosed,
    ClosedEvent,
    ConnectionClosed,
    InternalError,
    NotConnectedError,
    RealtimeClient,
    ReconnectedEvent,
    ReconnectingEvent,
    ReconnectPolicy,
    ResponseInterruptedError,
    SendQueueFullError,
    SessionRolledOverEvent,
    SessionState,
)
from realtime_sync.testing import InProcessTransport, LocalRealtimeServer

WAIT = 5.0
FAST = ReconnectPolicy(initial_delay=0.05, max_delay=0.2)

Make = Callable[..., RealtimeClient]


@pytest.fixture
def make(server: LocalRealtimeServer) -> Iterator[Make]:
    """Clients of the socket server with a fast reconnect policy; closed at the end."""
    clients: list[RealtimeClient] = []

    def build(policy: ReconnectPolicy | bool = FAST, **options: Any) -> RealtimeClient:
        client = RealtimeClient(api_key=KEY, url=server.url, reconnect=policy, **options)
        clients.append(client)
        return client

    yield build
    for client in clients:
        client.close(timeout=WAIT)


Start = Callable[..., tuple[RealtimeClient, "Seen"]]


@pytest.fixture
def start(make: Make) -> Start:
    """A connected client of the socket server (options as for ``make``), and what it saw."""

    def connected(*args: Any, **options: Any) -> tuple[RealtimeClient, Seen]:
        client = make(*args, **options)
        seen = Seen(client)
        client.connect(timeout=WAIT)
        return client, seen

    return connected


class Seen:
    """The client-side events a test watches, with a condition to wait on."""

    def __init__(self, client: RealtimeClient) -> None:
        self.events: list[Any] = []
        self._condition = threading.Condition()
        client.on("client.*", self._add)
        client.on("session.created", self._add)

    def _add(self, event: Any) -> None:
        with self._condition:
            self.events.append(event)
            self._condition.notify_all()

    def of(self, event_type: str) -> list[Any]:
        with self._condition:
            return [event for event in self.events if event.type == event_type]

    def wait(self, event_type: str, count: int = 1, timeout: float = WAIT) -> list[Any]:
        with self._condition:
            assert self._condition.wait_for(lambda: len(self.of(event_type)) >= count, timeout), (
                f"{count} x {event_type}: got {[e.type for e in self.events]}"
            )
            return self.of(event_type)


def item_creates(received: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [event["item"] for event in received if event["type"] == "conversation.item.create"]


# --- reconnecting -------------------------------------------------------------------------


def test_a_drop_reconnects_and_replays_configuration_and_conversation(
    server: LocalRealtimeServer, start: Start
) -> None:
    client, seen = start()
    client.session.update(session={"type": "realtime", "instructions": "Be brief."})
    client.session.update(session={"type": "realtime", "audio": {"output": {"voice": "alloy"}}})
    first = client.send_text("first question", timeout=WAIT)
    before = [(item.id, item.role, item.text) for item in client.conversation.items]

    server.drop_connections()
    (reconnecting,) = seen.wait("client.reconnecting")
    (reconnected,) = seen.wait("client.reconnected")

    assert isinstance(reconnecting, ReconnectingEvent)
    assert reconnecting.attempt == 1 and 0 <= reconnecting.delay <= FAST.initial_delay
    assert isinstance(reconnecting.cause, ConnectionClosed)
    assert isinstance(reconnected, ReconnectedEvent)
    assert reconnected.attempts == 1 and reconnected.downtime < WAIT
    assert seen.of("client.closed") == []
    # The new connection got the configuration as the user sent it, then the items in order.
    server.wait_for_received("conversation.item.create", count=1 + len(before), timeout=WAIT)
    replay = server.connections[-1].received
    assert replay[0] == {
        "type": "session.update",
        "event_id": replay[0]["event_id"],
        "session": {
            "type": "realtime",
            "instructions": "Be brief.",
            "audio": {"output": {"voice": "alloy"}},
        },
    }
    replayed = item_creates(replay)
    assert [item["id"] for item in replayed] == [item_id for item_id, _, _ in before]
    assert replayed[0]["content"] == [{"type": "input_text", "text": "first question"}]
    assert replayed[1]["role"] == "assistant"
    assert replayed[1]["content"] == [{"type": "output_text", "text": first.text}]
    assert reconnected.report.replayed == tuple(item_id for item_id, _, _ in before)
    assert reconnected.report.session_updated and reconnected.report.not_replayed == ()
    # The conversation goes on where it was.
    assert [(i.id, i.role, i.text) for i in client.conversation.items] == before
    second = client.send_text("second question", timeout=WAIT)
    assert second.text == "You said: second question"
    assert [i.role for i in client.conversation.items] == ["user", "assistant"] * 2


def test_handlers_and_waits_carry_over_a_reconnect(server: LocalRealtimeServer, make: Make) -> None:
    client = make()
    seen = Seen(client)
    created: list[str] = []
    client.on("session.created", lambda event: created.append(event.session.id))
    client.connect(timeout=WAIT)
    waiting = client.expect("response.done")  # registered before the loss
    server.drop_connections()
    seen.wait("client.reconnected")
    client.response.create()
    assert waiting.wait(WAIT).response.status == "completed"
    assert len(created) == 2 and created[0] != created[1]
    order = [event.type for event in seen.events]
    assert order.index("client.reconnecting") < order.index("session.created", 1)
    assert order.index("session.created", 1) < order.index("client.reconnected")


def test_a_response_cut_off_by_a_drop_is_interrupted(
    server: LocalRealtimeServer, start: Start
) -> None:
    slow = LocalRealtimeServer(api_key=KEY, delta_interval=0.3, delta_chunks=8).start()
    try:
        client = RealtimeClient(api_key=KEY, url=slow.url, reconnect=FAST)
        seen = Seen(client)
        client.connect(timeout=WAIT)
        handle = client.create_response()
        next(iter(handle.text_stream(timeout=WAIT)))  # it is under way
        slow.drop_connections()
        with pytest.raises(ResponseInterruptedError) as raised:
            handle.wait(WAIT)
        assert raised.value.status == "incomplete" and raised.value.reason == "connection_lost"
        assert isinstance(raised.value.__cause__, ConnectionClosed)
        seen.wait("client.reconnected")
        assert client.send_text("again", timeout=WAIT).text == "You said: again"
        client.close(timeout=WAIT)
    finally:
        slow.stop()


def test_retry_interrupted_asks_again_and_the_message_is_not_duplicated() -> None:
    slow = LocalRealtimeServer(api_key=KEY, delta_interval=0.3, delta_chunks=8).start()
    try:
        policy = ReconnectPolicy(initial_delay=0.05, max_delay=0.2, retry_interrupted=True)
        client = RealtimeClient(api_key=KEY, url=slow.url, reconnect=policy)
        client.connect(timeout=WAIT)
        replies: list[Any] = []
        turn = threading.Thread(
            target=lambda: replies.append(client.send_text("tell me", timeout=3 * WAIT))
        )
        under_way = client.expect("response.output_text.delta")
        turn.start()
        under_way.wait(WAIT)
        slow.drop_connections()
        turn.join(4 * WAIT)
        assert replies and "tell me" in replies[0].text
        messages = [i for i in client.conversation.items if i.role == "user"]
        assert [m.text for m in messages] == ["tell me"]
        last = slow.connections[-1].received
        assert [e["type"] for e in last].count("response.create") == 1
        client.close(timeout=WAIT)
    finally:
        slow.stop()


# --- the gap --------------------------------------------------------------------------------


def test_sends_during_the_gap_arrive_once_in_order_after_the_replay(
    server: LocalRealtimeServer, start: Start
) -> None:
    client, seen = start()
    client.send_text("before", timeout=WAIT)
    server.reject_handshake(503)  # every attempt fails until the sends are made
    server.drop_connections()
    seen.wait("client.reconnecting")
    ids = [
        client.conversation.item.create(
            item={
                "type": "message",
                "role": "user",
                "content": [{"type": "input_text", "text": f"gap {n}"}],
            }
        )
        for n in range(20)
    ]
    assert not client.connected and client.state is SessionState.RECONNECTING
    server.clear_faults()
    (reconnected,) = seen.wait("client.reconnected")
    assert client.state is SessionState.OPEN
    assert reconnected.report.sent == 20
    received = server.wait_for_received("conversation.item.create", count=1 + 2 + 20, timeout=WAIT)
    sent_ids = [event["event_id"] for event in received if event["event_id"] in ids]
    assert sent_ids == ids  # each once, in order
    last = server.connections[-1].received
    first_gap = next(i for i, e in enumerate(last) if e.get("event_id") == ids[0])
    assert all(e["type"] == "session.update" or "id" in e["item"] for e in last[:first_gap])


def test_gap_audio_is_dropped_and_reported_by_default(
    server: LocalRealtimeServer, start: Start
) -> None:
    client, seen = start(ReconnectPolicy(initial_delay=0.3, max_delay=0.3))
    client.send_text("hi", timeout=WAIT)
    server.drop_connections()
    seen.wait("client.reconnecting")
    chunk = base64.b64encode(bytes(4800)).decode()  # 100 ms at 24 kHz PCM16
    for _ in range(5):
        client.input_audio_buffer.append(audio=chunk)
    (reconnected,) = seen.wait("client.reconnected")
    assert reconnected.report.dropped == 5
    assert reconnected.report.dropped_audio_ms == pytest.approx(500)
    assert "input_audio_buffer.append" not in [e["type"] for e in server.connections[-1].received]


def test_gap_audio_can_be_queued_up_to_a_duration(
    server: LocalRealtimeServer, start: Start
) -> None:
    policy = ReconnectPolicy(
        initial_delay=0.3, max_delay=0.3, gap_audio="queue", gap_audio_seconds=0.3
    )
    client, seen = start(policy)
    client.send_text("hi", timeout=WAIT)
    server.drop_connections()
    seen.wait("client.reconnecting")
    chunk = base64.b64encode(bytes(4800)).decode()  # 100 ms
    for _ in range(5):
        client.input_audio_buffer.append(audio=chunk)
    (reconnected,) = seen.wait("client.reconnected")
    assert reconnected.report.sent == 3 and reconnected.report.dropped == 2
    server.wait_for_received("input_audio_buffer.append", count=3, timeout=WAIT)


def test_a_full_gap_queue_refuses_the_send(server: LocalRealtimeServer, start: Start) -> None:
    client, seen = start(ReconnectPolicy(initial_delay=5, max_delay=5, queue_max_events=3))
    client.send_text("hi", timeout=WAIT)
    server.drop_connections()
    seen.wait("client.reconnecting")
    for _ in range(3):
        client.response.create()
    with pytest.raises(SendQueueFullError):
        client.response.create()
    client.close(timeout=WAIT)
    (closed,) = seen.wait("client.closed")
    assert closed.requested and closed.unsent == 3


# --- giving up, and what is never retried ---------------------------------------------------


def test_close_during_the_backoff_returns_at_once(
    server: LocalRealtimeServer, start: Start
) -> None:
    client, seen = start(ReconnectPolicy(initial_delay=30, max_delay=30))
    waiting = client.expect("response.done")
    server.drop_connections()
    seen.wait("client.reconnecting")
    started = time.monotonic()
    client.close(timeout=WAIT)
    assert time.monotonic() - started < 1.0
    (closed,) = seen.wait("client.closed")
    assert closed.requested and closed.attempts == 1
    with pytest.raises(ClientClosed):
        waiting.wait(WAIT)
    with pytest.raises(NotConnectedError):
        client.response.create()
    assert len(server.connections) == 1


def test_an_authentication_failure_is_never_retried(
    server: LocalRealtimeServer, start: Start
) -> None:
    client, seen = start()
    waiting = client.expect("response.done")
    server.reject_handshake(401)
    server.drop_connections()
    (closed,) = seen.wait("client.closed")
    assert isinstance(closed.error, AuthenticationError) and not closed.retryable
    assert closed.attempts == 1 and len(seen.of("client.reconnecting")) == 1
    with pytest.raises(AuthenticationError):
        waiting.wait(WAIT)
    assert len(server.connections) == 2


@pytest.mark.parametrize(("code", "error_code"), [(3000, "invalid_api_key"), (4000, None)])
def test_fatal_closes_are_not_retried(
    server: LocalRealtimeServer, start: Start, code: int, error_code: str | None
) -> None:
    _, seen = start()
    if error_code is None:  # a 4000 refusal of the session's start on the next attempt
        server.fail_after_accept(4000, {"code": "beta_api_shape_disabled", "message": "no"})
        server.drop_connections()
    else:
        server.push(
            {
                "type": "error",
                "error": {"type": "invalid_request_error", "code": error_code, "message": "x"},
            }
        )
        server.close_connections(code, "invalid_request_error.invalid_api_key")
    (closed,) = seen.wait("client.closed")
    assert not closed.retryable


def test_retry_after_is_honoured(server: LocalRealtimeServer, start: Start) -> None:
    _, seen = start()
    server.reject_handshake(429, headers={"Retry-After": "1"}, times=1)
    server.drop_connections()
    first, second = seen.wait("client.reconnecting", count=2)
    assert first.delay <= FAST.initial_delay
    assert second.attempt == 2 and second.delay >= 1.0
    (reconnected,) = seen.wait("client.reconnected", timeout=WAIT + 2)
    assert reconnected.attempts == 2 and reconnected.downtime >= 1.0


def test_the_client_gives_up_after_max_attempts(server: LocalRealtimeServer, start: Start) -> None:
    client, seen = start(ReconnectPolicy(initial_delay=0.01, max_delay=0.02, max_attempts=3))
    server.reject_handshake(503)
    server.drop_connections()
    (closed,) = seen.wait("client.closed")
    assert [event.attempt for event in seen.of("client.reconnecting")] == [1, 2, 3]
    assert closed.attempts == 3 and closed.error.status_code == 503 and not closed.requested
    assert len(server.connections) == 4
    assert not client.connected
    server.clear_faults()
    client.connect(timeout=WAIT)  # a fresh start works
    assert client.connected


def test_a_token_provider_is_called_for_every_attempt(server: LocalRealtimeServer) -> None:
    tokens: list[str] = []

    def provider() -> str:
        tokens.append(KEY)
        return KEY

    client = azure_client(server, provider)
    seen = Seen(client)
    with client:
        server.reject_handshake(503, times=1)
        server.drop_connections()
        seen.wait("client.reconnected")
    assert len(tokens) == 3


def test_a_first_connect_is_not_retried(server: LocalRealtimeServer, make: Make) -> None:
    server.reject_handshake(503, times=1)
    client = make()
    with pytest.raises(Exception, match="503"):
        client.connect(timeout=WAIT)
    assert len(server.connections) == 1
    client.connect(timeout=WAIT)


def test_reconnect_false_ends_with_the_first_loss(
    server: LocalRealtimeServer, start: Start
) -> None:
    client, seen = start(False)
    server.drop_connections()
    (closed,) = seen.wait("client.closed")
    assert closed.retryable and seen.of("client.reconnecting") == []
    with pytest.raises(NotConnectedError):
        client.response.create()


def test_a_silent_peer_is_replaced(server: LocalRealtimeServer, start: Start) -> None:
    _, seen = start(ping_interval=0.6, ping_timeout=0.3)
    server.answer_pings(False)
    lost_at = time.monotonic()
    seen.wait("client.reconnecting")
    noticed = time.monotonic() - lost_at
    server.answer_pings(True)
    seen.wait("client.reconnected")
    assert noticed < 0.6 + 0.3 + 0.5  # the contract: ping interval + ping timeout + 0.5 s


# --- session lifetime -----------------------------------------------------------------------


def test_an_expired_session_is_rolled_over_with_its_conversation() -> None:
    with LocalRealtimeServer(api_key=KEY, session_lifetime=1.5) as server:
        # Never quiet (audio keeps coming): only the server's expiry ends the session.
        policy = ReconnectPolicy(expiring_notice=0.5, quiet_seconds=3600)
        client = RealtimeClient(api_key=KEY, url=server.url, reconnect=policy)
        seen = Seen(client)
        with client:
            client.input_audio_buffer.append(audio=base64.b64encode(bytes(480)).decode())
            client.send_text("remember me", timeout=WAIT)
            (expiring,) = seen.wait("client.session_expiring")
            (rolled,) = seen.wait("client.session_rolled_over")
            assert isinstance(rolled, SessionRolledOverEvent) and rolled.reason == "expired"
            assert rolled.previous_session_id != rolled.session.id
            assert expiring.session_id == rolled.previous_session_id
            assert seen.of("client.reconnecting") == [] and seen.of("client.closed") == []
            server.wait_for_received("conversation.item.create", count=3, timeout=WAIT)
            replayed = item_creates(server.connections[1].received)
            assert replayed[0]["content"][0]["text"] == "remember me"
            assert client.send_text("still here?", timeout=WAIT).text


def test_a_quiet_session_is_rolled_over_before_it_expires() -> None:
    with LocalRealtimeServer(api_key=KEY, session_lifetime=3) as server:
        policy = ReconnectPolicy(rollover_window=2.5, quiet_seconds=0.1)
        client = RealtimeClient(api_key=KEY, url=server.url, reconnect=policy)
        seen = Seen(client)
        with client:
            client.send_text("hello", timeout=WAIT)
            (rolled,) = seen.wait("client.session_rolled_over")
            assert rolled.reason == "proactive" and rolled.report.replayed
            errors = [e for e in server.connections[0].received if e["type"] == "error"]
            assert errors == []
            assert not any(isinstance(e, ClosedEvent) for e in seen.events)


def test_rollover_false_ends_the_client_at_expiry() -> None:
    with LocalRealtimeServer(api_key=KEY, session_lifetime=1) as server:
        client = RealtimeClient(
            api_key=KEY, url=server.url, reconnect=ReconnectPolicy(rollover=False)
        )
        seen = Seen(client)
        with client:
            (closed,) = seen.wait("client.closed")
            assert closed.code == 1001 and "expired" in str(closed.error)


# --- resources ------------------------------------------------------------------------------


def test_threads_are_back_to_baseline_after_reconnects_and_close(
    server: LocalRealtimeServer,
) -> None:
    baseline = {t.name for t in client_threads()}
    client = RealtimeClient(api_key=KEY, url=server.url, reconnect=FAST)
    seen = Seen(client)
    client.connect(timeout=WAIT)
    for n in range(1, 4):
        server.drop_connections()
        seen.wait("client.reconnected", count=n)
    client.close(timeout=WAIT)
    deadline = time.monotonic() + WAIT
    while {t.name for t in client_threads()} - baseline and time.monotonic() < deadline:
        time.sleep(0.02)
    assert {t.name for t in client_threads()} - baseline == set()


def test_in_process_reconnects_too() -> None:
    transport = InProcessTransport(api_key=KEY)
    client = RealtimeClient(api_key=KEY, transport=transport, reconnect=FAST)
    seen = Seen(client)
    with client:
        client.send_text("one", timeout=WAIT)
        transport.drop_connections()
        seen.wait("client.reconnected")
        assert client.send_text("two", timeout=WAIT).text == "You said: two"


def test_replayed_items_make_no_conversation_events(
    server: LocalRealtimeServer, start: Start
) -> None:
    client, seen = start()
    client.send_text("one", timeout=WAIT)
    updates: list[Any] = []
    client.on("client.conversation.*", updates.append)
    server.drop_connections()
    seen.wait("client.reconnected")
    server.wait_for_received("conversation.item.create", count=3, timeout=WAIT)
    client.send_text("two", timeout=WAIT)  # its events come after the replay's echoes
    replayed = {item.id for item in client.conversation.items[:2]}
    assert updates and not [u for u in updates if getattr(u, "item_id", None) in replayed]
    assert not [u for u in updates if u.type.endswith("item_completed") and u.item.id in replayed]


def test_a_dispatcher_failure_while_reconnecting_leaves_the_client_usable(
    server: LocalRealtimeServer, start: Start
) -> None:
    client, seen = start(ReconnectPolicy(initial_delay=0.3, max_delay=0.3))
    original = client._dispatcher._decode

    def broken(data: bytes | str) -> Any:
        if b"session.created" in (data if isinstance(data, bytes) else data.encode()):
            raise SystemExit("internal failure")
        return original(data)

    waiting = client.expect("response.done")
    client._dispatcher._decode = broken
    server.drop_connections()
    with pytest.raises(InternalError):
        waiting.wait(WAIT)
    assert seen.of("client.reconnecting")
    client._dispatcher._decode = original
    client.close(timeout=WAIT)
    client.connect(timeout=WAIT)
    assert client.send_text("works", timeout=WAIT).text == "You said: works"


# --- each fault of the local server, as the user sees it ---------------------------------


def test_a_hung_handshake_is_given_up_on_and_the_next_attempt_works(
    server: LocalRealtimeServer, start: Start
) -> None:
    _, seen = start(connect_timeout=1.0)
    server.hang_handshakes(times=1)
    server.drop_connections()
    _, second = seen.wait("client.reconnecting", count=2, timeout=WAIT)
    assert "no session within 1.0 s" in str(second.cause)
    (reconnected,) = seen.wait("client.reconnected")
    assert reconnected.attempts == 2
    assert [c.status for c in server.connections] == [101, 0, 101]


def test_a_drop_mid_response_interrupts_it_and_the_server_gets_the_conversation_back(
    server: LocalRealtimeServer, start: Start
) -> None:
    client, seen = start()
    client.send_text("first", timeout=WAIT)
    server.drop_during_response(after_deltas=2)
    with pytest.raises(ResponseInterruptedError):
        client.send_text("second", timeout=WAIT)
    (reconnected,) = seen.wait("client.reconnected")
    mine = client.conversation.items
    # The cut-off answer had text already: it is replayed as far as it got.
    assert [i.role for i in mine] == ["user", "assistant", "user", "assistant"]
    server.wait_for_received("conversation.item.create", count=2 + 4, timeout=WAIT)
    record = server.connections[-1]
    assert [item["id"] for item in record.items] == [i.id for i in mine]
    assert [item["role"] for item in record.items] == [i.role for i in mine]
    assert record.session["instructions"] == server.connections[0].session["instructions"]
    assert reconnected.report.replayed == tuple(i.id for i in mine)


def test_a_half_open_server_is_left_and_rejoined_when_it_answers(
    server: LocalRealtimeServer, start: Start
) -> None:
    client, seen = start(ping_interval=0.6, ping_timeout=0.3, connect_timeout=1.0)
    server.half_open()
    seen.wait("client.reconnecting", count=2, timeout=WAIT)  # new attempts get no session
    assert not client.connected
    server.half_open(False)
    seen.wait("client.reconnected", timeout=WAIT)
    assert client.send_text("back", timeout=WAIT).text == "You said: back"


def test_an_error_storm_is_not_a_reason_to_reconnect(
    server: LocalRealtimeServer, make: Make
) -> None:
    client = make()
    seen = Seen(client)
    errors: list[Any] = []
    client.on("error", errors.append)
    client.connect(timeout=WAIT)
    invalid = client.expect("client.invalid_frame")  # before the frames: they may be quick
    server.storm_errors(200)
    server.push("{not json")
    server.push(b"\x00\x01binary")
    assert client.send_text("still fine?", timeout=WAIT).text == "You said: still fine?"
    invalid.wait(WAIT)
    assert len(errors) == 200
    assert seen.of("client.reconnecting") == [] and len(server.connections) == 1


def test_expire_sessions_rolls_over(server: LocalRealtimeServer, start: Start) -> None:
    client, seen = start()
    client.send_text("keep me", timeout=WAIT)
    server.expire_sessions()
    (rolled,) = seen.wait("client.session_rolled_over")
    assert rolled.reason == "expired" and seen.of("client.reconnecting") == []
    server.wait_for_received("conversation.item.create", count=3, timeout=WAIT)
    assert [item["role"] for item in server.connections[-1].items] == ["user", "assistant"]


def test_reconnecting_over_tls_trusts_the_same_ca(tmp_path: Any) -> None:
    ca = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    ca_path = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_path))
    with LocalRealtimeServer(api_key=KEY, ssl_context=context) as server:
        client = RealtimeClient(api_key=KEY, url=server.url, ca_certs=str(ca_path), reconnect=FAST)
        seen = Seen(client)
        with client:
            assert server.url.startswith("wss://")
            server.drop_connections()
            seen.wait("client.reconnected")
            assert client.send_text("secure", timeout=WAIT).text == "You said: secure"


def test_an_expiry_is_not_logged_as_an_unheard_error(
    server: LocalRealtimeServer, start: Start, caplog: pytest.LogCaptureFixture
) -> None:
    _, seen = start()
    with caplog.at_level("WARNING", logger="realtime_sync"):
        server.expire_sessions()
        seen.wait("client.session_rolled_over")
    assert "session_expired" not in caplog.text


# --- found by probing: each failed before its fix ---------------------------------------


def test_two_closers_during_the_backoff_make_one_client_closed(
    server: LocalRealtimeServer,
) -> None:
    for _ in range(10):
        client = RealtimeClient(
            api_key=KEY, url=server.url, reconnect=ReconnectPolicy(initial_delay=5, max_delay=5)
        )
        seen = Seen(client)
        client.connect(timeout=WAIT)
        waiting = client.expect("response.done")
        server.drop_connections()
        seen.wait("client.reconnecting")
        go = threading.Barrier(2)
        closers = [threading.Thread(target=close_together, args=(client, go)) for _ in range(2)]
        for closer in closers:
            closer.start()
        for closer in closers:
            closer.join(2 * WAIT)
        seen.wait("client.closed")
        with pytest.raises(ClientClosed):
            waiting.wait(WAIT)
        assert len(seen.of("client.closed")) == 1
        with pytest.raises(ClientClosed):  # a wait made after the close fails at once
            client.wait_for("response.done", timeout=WAIT)


def close_together(client: RealtimeClient, go: threading.Barrier) -> None:
    go.wait(WAIT)
    client.close(timeout=WAIT)


def test_a_hanging_token_provider_neither_holds_close_nor_stops_the_attempts(
    server: LocalRealtimeServer,
) -> None:
    calls: list[float] = []
    release = threading.Event()

    def provider() -> str:
        calls.append(time.monotonic())
        if len(calls) > 1:
            release.wait(3 * WAIT)  # hangs on every reconnect
        return KEY

    client = azure_client(server, provider, connect_timeout=0.5)
    seen = Seen(client)
    try:
        client.connect(timeout=WAIT)
        server.drop_connections()
        _, second = seen.wait("client.reconnecting", count=2)
        assert "token provider did not return" in str(second.cause)
        assert wait_until(lambda: len(calls) >= 3, WAIT)  # each attempt asks anew
        started = time.monotonic()
        client.close(timeout=1.0)
        assert time.monotonic() - started < 1.5
        (closed,) = seen.wait("client.closed")
        assert closed.requested
    finally:
        release.set()


@pytest.mark.parametrize("failure", [RuntimeError("no token"), KeyboardInterrupt()])
def test_a_raising_token_provider_is_one_failed_attempt(
    server: LocalRealtimeServer, failure: BaseException
) -> None:
    calls: list[int] = []

    def provider() -> str:
        calls.append(1)
        if len(calls) == 2:
            raise failure
        return KEY

    client = azure_client(server, provider)
    seen = Seen(client)
    with client:
        server.drop_connections()
        (reconnected,) = seen.wait("client.reconnected")
        assert reconnected.attempts == 2 and len(calls) == 3


@pytest.mark.parametrize(
    "content",
    [
        [{"type": "input_text", "text": 42}],
        [{"type": "input_text", "text": {"not": "text"}}],
    ],
)
def test_an_item_the_server_described_oddly_does_not_stop_the_replay(
    server: LocalRealtimeServer, start: Start, content: list[Any]
) -> None:
    client, seen = start()
    client.send_text("fine", timeout=WAIT)
    server.push(
        {
            "type": "conversation.item.added",
            "previous_item_id": None,
            "item": {"id": "item_odd", "type": "message", "role": "user", "content": content},
        }
    )
    pushed = client.expect("client.invalid_frame")  # it may or may not decode: either way
    assert client.conversation.items is not None
    server.drop_connections()
    (reconnected,) = seen.wait("client.reconnected")
    pushed.cancel()
    assert "item_odd" not in reconnected.report.replayed
    assert client.send_text("after", timeout=WAIT).text == "You said: after"
    assert not client._supervisor.gap.holding


def test_connect_right_after_a_handlers_close_during_an_outage(
    server: LocalRealtimeServer,
) -> None:
    client = RealtimeClient(
        api_key=KEY, url=server.url, reconnect=ReconnectPolicy(initial_delay=1, max_delay=1)
    )
    seen = Seen(client)
    closed_it = threading.Event()

    def close_on_reconnecting(event: Any) -> None:
        client.close()
        closed_it.set()
        time.sleep(0.3)  # the handler goes on a while: connect() must wait for its end

    client.on("client.reconnecting", close_on_reconnecting)
    client.connect(timeout=WAIT)
    server.drop_connections()
    assert closed_it.wait(WAIT)
    client.off("client.reconnecting")
    client.connect(timeout=WAIT)
    assert client.connected and len(seen.of("client.closed")) == 1
    client.close(timeout=WAIT)


def test_no_timer_outlives_a_close_at_any_moment_of_an_outage(
    server: LocalRealtimeServer,
) -> None:
    from realtime_sync import _clock

    policy = ReconnectPolicy(initial_delay=0.02, max_delay=0.05, max_attempts=None)
    for trial in range(40):
        client = RealtimeClient(api_key=KEY, url=server.url, reconnect=policy)
        client.connect(timeout=WAIT)
        server.drop_connections()
        # Close at a different moment of the outage each time (a spread, not a sync).
        time.sleep(trial * 0.0025)
        client.close(timeout=WAIT)
        assert wait_until(lambda: not _clock._clock._heap, 1.0), (trial, _clock._clock._heap)


def test_an_unquiet_rollover_window_keeps_one_timer_per_session() -> None:
    from realtime_sync import _clock

    with LocalRealtimeServer(api_key=KEY, session_lifetime=4) as server:
        policy = ReconnectPolicy(rollover_window=3.9, quiet_seconds=60)
        client = RealtimeClient(api_key=KEY, url=server.url, reconnect=policy)
        due = threading.Event()
        with client:
            started = time.monotonic()
            client.input_audio_buffer.append(audio=bytes(480))  # never quiet
            while time.monotonic() - started < 2.9:  # busy turns, well into the window
                client.send_text("busy", timeout=WAIT)
                if client._supervisor._rollover_due:  # the window opens halfway, at ~2 s
                    due.set()
            assert due.is_set()
            assert len(_clock._clock._heap) <= 4
            assert len(client._supervisor._timers) <= 2


def azure_client(
    server: LocalRealtimeServer, provider: Callable[[], str], **options: Any
) -> RealtimeClient:
    """An Azure client of the local server whose token comes from ``provider``."""
    return RealtimeClient.azure(
        endpoint=server.azure_endpoint,
        deployment="gpt-realtime",
        azure_ad_token_provider=provider,
        reconnect=FAST,
        **options,
    )


def thread_names() -> set[str]:
    return {thread.name for thread in threading.enumerate()}


def wait_until(condition: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


# --- found by review: each failed before its fix -----------------------------------------


def test_a_handlers_close_while_an_attempt_connects_makes_one_client_closed(
    server: LocalRealtimeServer,
) -> None:
    client = RealtimeClient(api_key=KEY, url=server.url, reconnect=FAST, connect_timeout=WAIT)
    seen = Seen(client)

    def close_once_the_attempt_hangs(event: Any) -> None:
        # On the dispatcher thread, while the attempt's handshake goes unanswered.
        assert wait_until(lambda: len(server.connections) == 2, WAIT)
        client.close()

    client.on("client.reconnecting", close_once_the_attempt_hangs)
    client.connect(timeout=WAIT)
    waiting = client.expect("response.done")
    server.hang_handshakes()
    server.drop_connections()
    (closed,) = seen.wait("client.closed")
    with pytest.raises(ClientClosed):
        waiting.wait(WAIT)
    assert wait_until(lambda: not client_threads(), WAIT)
    server.clear_faults()
    assert len(seen.of("client.closed")) == 1 and closed.requested
    with pytest.raises(ClientClosed):
        client.wait_for("response.done", timeout=WAIT)


def test_the_new_sessions_announcements_of_replayed_items_are_not_dispatched(
    server: LocalRealtimeServer, start: Start
) -> None:
    client, seen = start()
    client.send_text("hello", timeout=WAIT)
    before = {item.id: (item.text, item.transcript) for item in client.conversation.items}
    announced: list[Any] = []
    client.on("conversation.item.*", announced.append)
    server.drop_connections()
    seen.wait("client.reconnected")
    server.wait_for_received("conversation.item.create", count=3, timeout=WAIT)
    client.send_text("again", timeout=WAIT)
    assert {event.item.id for event in announced}.isdisjoint(before)
    # Nor does the client's copy change (the echo describes the audio as text).
    after = {item.id: (item.text, item.transcript) for item in client.conversation.items}
    assert {key: after[key] for key in before} == before


def test_a_server_that_accepts_and_drops_at_once_still_meets_max_attempts(
    server: LocalRealtimeServer,
) -> None:
    policy = ReconnectPolicy(initial_delay=0.01, max_delay=0.02, max_attempts=4)
    client = RealtimeClient(api_key=KEY, url=server.url, reconnect=policy)
    seen = Seen(client)
    client.on("session.created", lambda event: server.drop_connections())
    client.connect(timeout=WAIT)
    (closed,) = seen.wait("client.closed", timeout=2 * WAIT)
    assert closed.attempts == 4 and not closed.requested
    assert [e.attempt for e in seen.of("client.reconnecting")] == [1, 2, 3, 4]


def test_close_during_a_rollover_is_a_requested_close_that_fails_waits() -> None:
    with LocalRealtimeServer(api_key=KEY, session_lifetime=2) as server:
        policy = ReconnectPolicy(rollover_window=1.9, quiet_seconds=0)
        client = RealtimeClient(api_key=KEY, url=server.url, reconnect=policy)
        seen = Seen(client)
        with client:
            waiting = client.expect("response.done")
            real_abandon = client._abandon_link

            def close_just_after(core: Any, error: Exception, *, polite: bool) -> None:
                real_abandon(core, error, polite=polite)
                threading.Thread(target=client.close).start()

            client._abandon_link = close_just_after  # type: ignore[method-assign]
            (closed,) = seen.wait("client.closed")
        assert closed.requested and closed.error is None
        with pytest.raises(ClientClosed):
            waiting.wait(WAIT)
        with pytest.raises(ClientClosed):
            client.wait_for("response.done", timeout=WAIT)


def test_a_response_begun_as_the_session_rolls_over_does_not_hold_up_turns() -> None:
    with LocalRealtimeServer(api_key=KEY, session_lifetime=2) as server:
        policy = ReconnectPolicy(rollover_window=1.9, quiet_seconds=0)
        client = RealtimeClient(api_key=KEY, url=server.url, reconnect=policy)
        seen = Seen(client)
        with client:
            real_abandon = client._abandon_link

            def server_speaks_first(core: Any, error: Exception, *, polite: bool) -> None:
                # Server VAD began a response on the old session at that very moment.
                response = {
                    "id": "resp_vad",
                    "object": "realtime.response",
                    "status": "in_progress",
                }
                server.push({"type": "response.created", "response": response})
                real_abandon(core, error, polite=polite)

            client._abandon_link = server_speaks_first  # type: ignore[method-assign]
            seen.wait("client.session_rolled_over")
            assert client.send_text("after", timeout=WAIT).text == "You said: after"


def test_a_server_that_expires_every_session_at_once_is_given_up_on(
    server: LocalRealtimeServer,
) -> None:
    policy = ReconnectPolicy(max_attempts=3, initial_delay=0.01, max_delay=0.02)
    client = RealtimeClient(api_key=KEY, url=server.url, reconnect=policy)
    seen = Seen(client)
    client.connect(timeout=WAIT)
    client.on("session.created", lambda event: server.expire_sessions())
    server.expire_sessions()
    (closed,) = seen.wait("client.closed", timeout=2 * WAIT)
    assert closed.attempts == 3 and len(server.connections) <= 4


def test_connect_after_close_is_not_disturbed_by_a_slowly_closing_rolled_session() -> None:
    with LocalRealtimeServer(api_key=KEY, session_lifetime=2) as server:
        policy = ReconnectPolicy(rollover_window=1.9, quiet_seconds=0)
        client = RealtimeClient(api_key=KEY, url=server.url, reconnect=policy)
        seen = Seen(client)
        real_abandon = client._abandon_link

        def slowly(core: Any, error: Exception, *, polite: bool) -> None:
            link = client._link
            if polite and link is not None and link.core is core:
                close = link.connection.close

                def slow_close(timeout: float) -> bool:
                    time.sleep(1.0)  # a server slow to answer the close frame
                    return close(timeout)

                link.connection.close = slow_close  # type: ignore[method-assign]
            real_abandon(core, error, polite=polite)

        client._abandon_link = slowly  # type: ignore[method-assign]
        client.connect(timeout=WAIT)
        seen.wait("client.session_rolled_over", timeout=WAIT)
        client._abandon_link = real_abandon  # type: ignore[method-assign]
        client.close(timeout=WAIT)
        client.connect(timeout=WAIT)
        time.sleep(1.5)  # the first rolled session's slow close has ended by now
        assert seen.of("client.reconnecting") == []
        assert client.send_text("hi", timeout=WAIT).text == "You said: hi"
        client.close(timeout=WAIT)


@pytest.mark.parametrize(
    ("status", "error_code"),
    [(403, None), (None, "insufficient_quota"), (None, "account_deactivated")],
)
def test_refusals_on_a_reconnect_attempt_end_the_client(
    server: LocalRealtimeServer, start: Start, status: int | None, error_code: str | None
) -> None:
    _, seen = start()
    if status is not None:
        server.reject_handshake(status)
    else:
        server.fail_after_accept(
            1008, {"type": "invalid_request_error", "code": error_code, "message": "no"}
        )
    server.drop_connections()
    (closed,) = seen.wait("client.closed")
    assert not closed.retryable and closed.attempts == 1


@pytest.mark.parametrize("error_code", ["insufficient_quota", "billing_hard_limit_reached"])
def test_a_fatal_error_ending_a_session_is_not_retried(
    server: LocalRealtimeServer, start: Start, error_code: str
) -> None:
    client, seen = start()
    errored = client.expect("error")
    server.push({"type": "error", "error": {"type": "invalid_request_error", "code": error_code}})
    errored.wait(WAIT)
    server.close_connections(1011)
    (closed,) = seen.wait("client.closed")
    assert seen.of("client.reconnecting") == [] and not closed.retryable


@pytest.mark.parametrize("code", [1012, 1013])
def test_restart_and_try_again_later_closes_are_retried(
    server: LocalRealtimeServer, start: Start, code: int
) -> None:
    _, seen = start()
    server.close_connections(code)
    seen.wait("client.reconnected")


def test_the_expiry_notice_comes_with_reconnect_off_too() -> None:
    with LocalRealtimeServer(api_key=KEY, session_lifetime=2) as server:
        client = RealtimeClient(api_key=KEY, url=server.url, reconnect=False)
        seen = Seen(client)
        with client:
            (notice,) = seen.wait("client.session_expiring")
            assert notice.seconds_left <= 2


# --- what carries over, end to end ------------------------------------------------------


def test_a_tool_running_across_a_drop_answers_after_the_replay(
    server: LocalRealtimeServer, make: Make, start: Start
) -> None:
    client = make()
    seen = Seen(client)
    running = threading.Event()
    finish = threading.Event()

    @client.tool
    def slow_lookup(city: str) -> str:
        """Look a city up, slowly."""
        running.set()
        finish.wait(WAIT)
        return f"sunny in {city}"

    client.connect(timeout=WAIT)
    replies: list[Any] = []
    turn = threading.Thread(
        target=lambda: replies.append(
            client.send_text('call slow_lookup {"city": "Oslo"}', timeout=3 * WAIT)
        )
    )
    turn.start()
    assert running.wait(WAIT)
    server.drop_connections()
    seen.wait("client.reconnected")
    finish.set()
    turn.join(3 * WAIT)
    assert replies and replies[0].text == "Result of slow_lookup: sunny in Oslo"
    last = server.connections[-1].received
    replayed_call = next(
        e for e in last if e["type"] == "conversation.item.create" and "call_id" in e["item"]
    )
    output = next(
        e
        for e in last
        if e["type"] == "conversation.item.create" and e["item"]["type"] == "function_call_output"
    )
    assert last.index(replayed_call) < last.index(output)  # the call first, then its answer
    assert [u["type"] for u in last].count("session.update") >= 1  # the tools came back


@pytest.mark.parametrize("protocol", ["ga", "beta"])
def test_spoken_replies_come_back_as_their_transcript_and_keep_their_audio(
    server: LocalRealtimeServer, protocol: str
) -> None:
    client = RealtimeClient(
        api_key=KEY,
        url=server.url,
        protocol=protocol,  # type: ignore[arg-type]
        reconnect=FAST,
    )
    seen = Seen(client)
    modalities = {"ga": {"output_modalities": ["audio"]}, "beta": {"modalities": ["audio", "text"]}}
    with client:
        reply = client.send_text("speak to me", response=modalities[protocol], timeout=WAIT)
        assert reply.audio and reply.transcript
        spoken = client.conversation.items[-1]
        server.drop_connections()
        seen.wait("client.reconnected")
        server.wait_for_received("conversation.item.create", count=3, timeout=WAIT)
        replayed = item_creates(server.connections[-1].received)[-1]
        part = "output_text" if protocol == "ga" else "text"
        assert replayed["content"] == [{"type": part, "text": reply.transcript}]
        kept = client.conversation.get(spoken.id)
        assert kept is not None and kept.audio == spoken.audio and kept.transcript


def test_the_key_stays_secret_through_reconnects(
    server: LocalRealtimeServer, make: Make, caplog: pytest.LogCaptureFixture
) -> None:
    client = make()
    seen = Seen(client)
    with caplog.at_level("DEBUG"):
        client.connect(timeout=WAIT)
        server.reject_handshake(503, body={"error": {"message": f"bad key {KEY}"}}, times=1)
        server.push({"type": "error", "error": {"type": "server_error", "message": f"{KEY}!"}})
        server.close_connections(1011, f"oops {KEY}"[:120])
        seen.wait("client.reconnected")
        client.close(timeout=WAIT)
    shown = [
        caplog.text,
        *map(repr, seen.events),
        *(str(e.cause) for e in seen.of("client.reconnecting")),
    ]
    assert seen.of("client.reconnecting")
    assert not [text for text in shown if KEY in text]


def test_sessions_that_answer_between_drops_never_exhaust_the_attempts(
    server: LocalRealtimeServer,
) -> None:
    policy = ReconnectPolicy(initial_delay=0, max_delay=0, max_attempts=2)
    client = RealtimeClient(api_key=KEY, url=server.url, reconnect=policy)
    seen = Seen(client)
    with client:
        for n in range(1, 6):  # more drops in a few seconds than max_attempts
            server.drop_connections()
            seen.wait("client.reconnected", count=n)
            assert client.send_text("ok?", timeout=WAIT).text == "You said: ok?"
    assert [e.attempt for e in seen.of("client.reconnecting")] == [1] * 5
