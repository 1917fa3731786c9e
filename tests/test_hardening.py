"""Defects found by review and fault probes: each test here failed on the code before the fix.

A frame or a handler must never kill the dispatcher; a redirect must never carry our
credentials; a silent peer is reported on time; waits learn why they ended.
"""

from __future__ import annotations

import inspect
import logging
import re
import socket
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from conftest import KEY, client_threads, user_message
from rawpeer import RawPeer, text_frame, upgrade_reply

from realtime_sync import (
    AlreadyConnectedError,
    BadRequestError,
    ClientClosed,
    ClosedEvent,
    ConnectionClosed,
    HandlerErrorEvent,
    InternalError,
    InternalServerError,
    InvalidEventError,
    InvalidFrameEvent,
    NotConnectedError,
    RealtimeClient,
    RealtimeTimeoutError,
    RedirectError,
    Transport,
    TransportConnection,
    TransportEnded,
    TransportError,
    WouldDeadlockError,
)
from realtime_sync import _endpoints as endpoints
from realtime_sync._endpoints import ANNOUNCED_SHUTDOWNS, DEFAULT_MODELS, Handshake
from realtime_sync._transport import EndSink, FrameSink
from realtime_sync.testing import LocalRealtimeServer

MakeClient = Callable[..., RealtimeClient]
# Long enough for two busy cores, far shorter than the waits that show a hang.
WAIT = 5.0


def closing_events_of(script: Callable[[RawPeer, socket.socket, bytes], None]) -> list[Any]:
    """Connect to a raw peer running ``script``; every client.closed until the first."""
    with RawPeer(script) as peer:
        client = RealtimeClient(api_key=KEY, url=peer.url, reconnect=False)
        closed: list[ClosedEvent] = []
        ended = threading.Event()
        client.on("client.closed", closed.append)
        client.on("client.closed", lambda ev: ended.set())
        client.connect(timeout=WAIT)
        assert ended.wait(WAIT)
        client.close(timeout=WAIT)
    return closed


# --- 1. a frame that cannot be decoded ------------------------------------------------------


@pytest.mark.parametrize("depth", [1000, 100_000])
def test_a_depth_bomb_frame_is_an_invalid_frame_and_the_session_goes_on(
    server: LocalRealtimeServer, make_client: MakeClient, depth: int
) -> None:
    client = make_client()
    invalid: list[InvalidFrameEvent] = []
    client.on("client.invalid_frame", invalid.append)
    client.connect(timeout=WAIT)
    server.push("[" * depth)
    done = client.expect("response.done")
    client.response.create()
    assert done.wait(WAIT).response.status == "completed"
    assert len(invalid) == 1
    assert client.connected


# --- 2. handlers and the dispatcher's own failures ------------------------------------------


@pytest.mark.parametrize("exception", [SystemExit(3), KeyboardInterrupt(), GeneratorExit()])
def test_a_handler_raising_a_base_exception_is_reported_and_the_session_goes_on(
    make_client: MakeClient, exception: BaseException
) -> None:
    client = make_client()
    reports: list[HandlerErrorEvent] = []
    client.on("client.handler_error", reports.append)

    def fatal(event: Any) -> None:
        raise exception

    client.on("response.created", fatal)
    client.connect(timeout=WAIT)
    for _ in range(2):  # the second turn proves the dispatcher survived the first
        done = client.expect("response.done")
        client.response.create()
        assert done.wait(WAIT).response.status == "completed"
    assert [r.exception for r in reports] == [exception, exception]
    assert client.connected


def test_a_dispatcher_failure_closes_the_client_and_fails_every_wait(
    server: LocalRealtimeServer, make_client: MakeClient
) -> None:
    client = make_client()
    closed: list[ClosedEvent] = []
    client.on("client.closed", closed.append)
    client.connect(timeout=WAIT)
    waiting = client.expect("response.done")
    # A BaseException inside the dispatcher's own machinery (not in a handler): the decoder.
    original = client._dispatcher._decode

    def broken(data: bytes | str) -> Any:
        if b"rate_limits" in (data if isinstance(data, bytes) else data.encode()):
            raise SystemExit("internal failure")
        return original(data)

    client._dispatcher._decode = broken
    server.push({"type": "rate_limits.updated", "rate_limits": []})
    with pytest.raises(InternalError) as raised:
        waiting.wait(WAIT)
    assert isinstance(raised.value.__cause__, SystemExit)
    assert len(closed) == 1 and closed[0].error is raised.value
    assert not client.connected
    with pytest.raises(InternalError):  # a wait made after the failure fails at once
        client.wait_for("response.done", timeout=WAIT)
    # The client can start over.
    client._dispatcher._decode = original
    client.close(timeout=WAIT)
    client.connect(timeout=WAIT)
    done = client.expect("response.done")
    client.response.create()
    assert done.wait(WAIT).response.status == "completed"


# --- 3. connect() registers its wait before the connection starts ----------------------------


class _LateCaller:
    """A transport whose start() returns late: the calling thread is delayed after the
    connection started, so session.created arrives before connect() gets to wait."""

    def __init__(self, inner: Transport, delay: float) -> None:
        self.inner, self.delay = inner, delay

    def open(
        self, handshake: Handshake, *, on_frame: FrameSink, on_end: EndSink, name: str
    ) -> TransportConnection:
        connection = self.inner.open(handshake, on_frame=on_frame, on_end=on_end, name=name)
        delay = self.delay
        original_start = connection.start

        def start() -> None:
            original_start()
            time.sleep(delay)  # the caller is descheduled: nothing to synchronise on

        connection.start = start  # type: ignore[method-assign]
        return connection


def test_connect_catches_a_session_created_that_came_before_it_waited(
    server: LocalRealtimeServer,
) -> None:
    plain = RealtimeClient(api_key=KEY, url=server.url)
    client = RealtimeClient(
        api_key=KEY, url=server.url, transport=_LateCaller(plain._transport, 0.5)
    )
    try:
        session = client.connect(
            timeout=WAIT
        )  # before the fix it missed the event: any wait failed
        assert session.id
    finally:
        client.close(timeout=WAIT)


# --- 4. redirects never carry credentials --------------------------------------------------


@pytest.fixture
def elsewhere() -> Iterator[RawPeer]:
    """The host a redirect points to: it records whatever reaches it."""

    def listen(peer: RawPeer, conn: socket.socket, request: bytes) -> None:
        peer.release.wait(WAIT)

    with RawPeer(listen) as peer:
        yield peer


@pytest.mark.parametrize("status", [301, 302, 307, 308])
@pytest.mark.parametrize("auth", ["header", "subprotocol", "query"])
def test_a_redirect_is_refused_and_the_key_never_reaches_its_target(
    elsewhere: RawPeer, status: int, auth: str
) -> None:
    location = f"ws://127.0.0.1:{elsewhere.port}/v1/realtime?model=gpt-realtime-2.1"

    def redirect(peer: RawPeer, conn: socket.socket, request: bytes) -> None:
        conn.sendall(
            f"HTTP/1.1 {status} Moved\r\nLocation: {location}\r\nContent-Length: 0\r\n\r\n".encode()
        )
        peer.release.wait(WAIT)

    with RawPeer(redirect) as origin:
        client = RealtimeClient(
            api_key=KEY, url=f"ws://127.0.0.1:{origin.port}/v1/realtime", auth=auth
        )
        with pytest.raises(RedirectError) as raised:
            client.connect(timeout=WAIT)
        client.close(timeout=WAIT)
        assert KEY.encode() in origin.requests[0]  # the key went where it was meant to go
    error = raised.value
    assert error.status_code == status
    assert error.location == location
    assert not ClosedEvent(code=None, reason=None, requested=False, error=error).retryable
    assert not any(KEY.encode() in request for request in elsewhere.requests)
    assert elsewhere.requests in ([], [b""])  # not a byte of a request was sent there


# --- 5. a peer that goes silent is reported on time ----------------------------------------


@pytest.mark.parametrize(("interval", "timeout"), [(1.0, 0.5), (1.2, 1.0)])
def test_a_half_open_peer_is_reported_within_interval_plus_timeout(
    interval: float, timeout: float
) -> None:
    def silent(peer: RawPeer, conn: socket.socket, request: bytes) -> None:
        conn.sendall(upgrade_reply(request))
        conn.sendall(text_frame({"type": "session.created", "session": {"id": "sess_1"}}))
        peer.release.wait(30)  # reads nothing, answers nothing, never closes

    with RawPeer(silent) as peer:
        client = RealtimeClient(
            reconnect=False,
            api_key=KEY,
            url=peer.url,
            ping_interval=interval,
            ping_timeout=timeout,
        )
        closed = threading.Event()
        client.on("client.closed", lambda ev: closed.set())
        client.connect(timeout=WAIT)
        started = time.monotonic()
        assert closed.wait(15)
        elapsed = time.monotonic() - started
        client.close(timeout=WAIT)
    # The first ping goes out `interval` after the upgrade; its pong is missed `timeout`
    # later, noticed within a quarter of that. Before the fix websocket-client's teardown
    # waited 3 s more for a close frame (4.5 s for 1.0/0.5), and its read loop, waking only
    # every `timeout`, could miss the window between pings altogether (over 10 s for 1.2/1.0).
    assert elapsed < interval + timeout + 0.5, elapsed
    for thread in client_threads():
        thread.join(WAIT)
    assert client_threads() == []


def test_a_peer_that_dies_mid_frame_is_a_retryable_drop() -> None:
    go = threading.Event()

    def die(peer: RawPeer, conn: socket.socket, request: bytes) -> None:
        conn.sendall(upgrade_reply(request))
        conn.sendall(text_frame({"type": "session.created", "session": {"id": "sess_1"}}))
        go.wait(WAIT)
        conn.sendall(bytes([0x81, 126]) + (500).to_bytes(2, "big") + b'{"type": "resp')
        conn.close()  # 485 bytes short

    with RawPeer(die) as peer:
        client = RealtimeClient(reconnect=False, api_key=KEY, url=peer.url)
        seen: list[str] = []
        client.on("*", lambda ev: seen.append(ev.type))
        client.connect(timeout=WAIT)
        closed = client.expect("client.closed")
        go.set()
        event = closed.wait(WAIT)
        client.close(timeout=WAIT)
    assert isinstance(event.error, ConnectionClosed) and event.code is None
    assert event.retryable
    assert seen == ["session.created", "client.closed"]  # no half frame was dispatched


@pytest.mark.parametrize("round_", range(10))
def test_close_racing_senders_waiters_and_other_closers(
    make_client: MakeClient, round_: int
) -> None:
    client = make_client()
    client.connect(timeout=WAIT)
    start = threading.Barrier(9)
    outcomes: list[str] = []

    def send() -> None:
        start.wait()
        for _ in range(50):
            try:
                client.send({"type": "input_audio_buffer.clear"})
            except (NotConnectedError, TransportError):
                outcomes.append("refused")
                return
        outcomes.append("sent")

    def wait() -> None:
        start.wait()
        try:
            client.wait_for("response.done", timeout=WAIT)
            outcomes.append("answered")
        except ClientClosed:
            outcomes.append("closed")

    def close() -> None:
        start.wait()
        client.close(timeout=WAIT)
        outcomes.append("close")

    workers = [threading.Thread(target=f) for f in [send] * 4 + [wait] * 2 + [close] * 3]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(2 * WAIT)
    assert not any(worker.is_alive() for worker in workers)
    assert len(outcomes) == 9 and outcomes.count("close") == 3
    assert outcomes.count("closed") == 2  # nothing asked for a response
    assert not client.connected
    for thread in client_threads():
        thread.join(WAIT)
    assert client_threads() == []


# --- 6. log noise --------------------------------------------------------------------------


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def warning_level_logging() -> Iterator[_Collect]:
    """What ``logging.basicConfig(level=WARNING)`` sets up: a root handler at NOTSET."""
    root = logging.getLogger()
    handler = _Collect()
    saved = root.level, root.handlers[:]
    root.setLevel(logging.WARNING)
    root.addHandler(handler)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        root.setLevel(saved[0])


def test_a_normal_close_logs_nothing_at_warning_level(
    server: LocalRealtimeServer, make_client: MakeClient, warning_level_logging: _Collect
) -> None:
    for _ in range(3):
        client = make_client()
        client.connect(timeout=WAIT)
        server.close_connections(1000, "")  # the server ends it: websocket-client's "goodbye"
        client.wait_for("client.closed", timeout=WAIT) if client.connected else None
        client.close(timeout=WAIT)
    websocket_lines = [r for r in warning_level_logging.records if r.name == "websocket"]
    assert websocket_lines == []


# --- 8. errors that say what happened ------------------------------------------------------


def test_waits_pending_at_close_get_client_closed(make_client: MakeClient) -> None:
    client = make_client()
    client.connect(timeout=WAIT)
    pending = client.expect("response.done")
    client.close(timeout=WAIT)
    with pytest.raises(ClientClosed):
        pending.wait(WAIT)
    assert not isinstance(ClientClosed("x"), ConnectionClosed)


def test_already_connected_has_its_own_class(make_client: MakeClient) -> None:
    client = make_client()
    client.connect(timeout=WAIT)
    with pytest.raises(AlreadyConnectedError, match="already connected"):
        client.connect(timeout=WAIT)


def test_retry_after_is_on_every_api_error(
    server: LocalRealtimeServer, make_client: MakeClient
) -> None:
    server.reject_handshake(503, headers={"Retry-After": "7"})
    with pytest.raises(InternalServerError) as raised:
        make_client().connect(timeout=WAIT)
    assert raised.value.retry_after == 7.0


def test_no_unheard_error_warning_while_a_wait_takes_the_error(
    make_client: MakeClient, caplog: pytest.LogCaptureFixture
) -> None:
    client = make_client()
    client.connect(timeout=WAIT)
    error = client.expect("error")
    client.send({"type": "conversation.item.delete", "item_id": "missing"})
    assert error.wait(WAIT).error.param == "item_id"
    client.send(user_message("still here"))  # the session went on
    assert "no on('error') handler" not in caplog.text


# --- 9. bad input from the user is refused at the call site ---------------------------------


@pytest.mark.parametrize(
    ("event", "named"),
    [
        ({"type": "session.update", "session": {"x": object()}}, "session.x"),
        ({"type": "session.update", "session": {"instructions": "\ud800"}}, "session.instructions"),
        ({"type": "session.update", "session": {"temperature": float("nan")}}, "temperature"),
        ({"type": "session.update", "session": {"tools": [{"t": float("inf")}]}}, "tools[0].t"),
        ("response.create", "mapping"),
        (["response.create"], "mapping"),
    ],
)
def test_bad_events_are_refused_before_anything_is_sent(
    server: LocalRealtimeServer, make_client: MakeClient, event: Any, named: str
) -> None:
    client = make_client()
    client.connect(timeout=WAIT)
    with pytest.raises(InvalidEventError, match=re.escape(named)):
        client.send(event)
    with pytest.raises(InvalidEventError):
        client.input_audio_buffer.append(audio=b"\x00" * 4801)  # half a PCM16 sample
    client.input_audio_buffer.clear()  # the connection still works, and is the first event
    (first,) = server.wait_for_received("input_audio_buffer.clear")
    assert server.received == [first]


# --- 10. secrets a server echoes -----------------------------------------------------------


def test_a_key_echoed_in_a_refusal_is_masked_in_body_and_headers(
    server: LocalRealtimeServer, make_client: MakeClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    server.reject_handshake(
        400,
        body={"error": {"message": f"bad key {KEY}", "type": "invalid_request_error"}},
        headers={"X-Echo": f"Bearer {KEY}"},
    )
    with pytest.raises(BadRequestError) as raised:
        make_client().connect(timeout=WAIT)
    error = raised.value
    for shown in (str(error), repr(error.body), repr(error.headers), caplog.text):
        assert KEY not in shown


# --- 11. the default model ---------------------------------------------------------------


def test_the_default_model_has_no_announced_shutdown_and_old_ones_warn(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    from openai.types.realtime import realtime_session_create_request_param as official

    assert DEFAULT_MODELS["ga"] not in ANNOUNCED_SHUTDOWNS
    assert f'"{DEFAULT_MODELS["ga"]}"' in inspect.getsource(official)  # a model OpenAI lists
    monkeypatch.setattr(endpoints, "_warned_models", set())
    with caplog.at_level(logging.WARNING, logger="realtime_sync"):
        RealtimeClient(api_key=KEY, model="gpt-realtime-mini")
        RealtimeClient(api_key=KEY, model="gpt-realtime-mini")
        RealtimeClient(api_key=KEY)
    warnings = [r.getMessage() for r in caplog.records if "announced shutdown" in r.getMessage()]
    assert len(warnings) == 1 and "2027-01-20" in warnings[0]


# --- found by review after the restructure ------------------------------------------------


def test_connect_from_a_handler_refuses_at_once_and_opens_nothing(
    server: LocalRealtimeServer, make_client: MakeClient
) -> None:
    client = make_client(close_timeout=3)
    outcome: list[BaseException] = []
    tried = threading.Event()

    def reconnect(event: Any) -> None:
        started = time.monotonic()
        try:
            client.connect(timeout=WAIT)
        except WouldDeadlockError as exc:
            outcome.append(exc)
        outcome.append(TimeoutError(time.monotonic() - started))
        tried.set()

    client.on("client.closed", reconnect)
    client.connect(timeout=WAIT)
    client.close(timeout=WAIT)
    assert tried.wait(WAIT)
    assert isinstance(outcome[0], WouldDeadlockError)
    assert outcome[1].args[0] < 1.0  # it used to wait out close_timeout first
    assert len(server.connections) == 1  # and then open a connection


class _Stuck:
    """A connection stuck where nothing can wake it (TCP connect, a TLS handshake)."""

    def __init__(self, on_end: EndSink) -> None:
        self.on_end = on_end
        self.opened = False
        self.finished = False

    def start(self) -> None:
        pass

    def send(self, data: bytes) -> None:
        raise NotConnectedError("stuck")

    def close(self, timeout: float) -> bool:
        return False

    def abort(self) -> None:
        pass


class _FirstStuckThen:
    """Opens one stuck connection, then real ones (or raises from start() if told to)."""

    def __init__(self, inner: Transport) -> None:
        self.inner = inner
        self.stuck: list[_Stuck] = []
        self.fail_start = False

    def open(
        self, handshake: Handshake, *, on_frame: FrameSink, on_end: EndSink, name: str
    ) -> TransportConnection:
        if not self.stuck:
            self.stuck.append(_Stuck(on_end))
            return self.stuck[0]
        connection = self.inner.open(handshake, on_frame=on_frame, on_end=on_end, name=name)
        if self.fail_start:
            self.fail_start = False

            def broken() -> None:
                raise OSError("cannot start a thread")

            connection.start = broken  # type: ignore[method-assign]
        return connection


def test_a_connect_timeout_is_not_reported_as_our_close_and_a_stuck_attempt_holds_nothing_up(
    server: LocalRealtimeServer,
) -> None:
    plain = RealtimeClient(api_key=KEY, url=server.url)
    transport = _FirstStuckThen(plain._transport)
    client = RealtimeClient(api_key=KEY, url=server.url, transport=transport, close_timeout=3)
    seen: list[Any] = []
    client.on("*", seen.append)
    with pytest.raises(RealtimeTimeoutError) as raised:
        client.connect(timeout=0.3)
    started = time.monotonic()
    client.connect(timeout=WAIT)
    assert time.monotonic() - started < 1.0  # it used to wait out close_timeout
    (stuck,) = transport.stuck
    stuck.on_end(TransportEnded("unreachable", opened=False, detail="gave up"))  # at last
    done = client.expect("response.done")
    client.response.create()
    done.wait(WAIT)
    assert client.connected
    client.close(timeout=WAIT)
    types = [e.type for e in seen]
    # The stuck attempt's end comes once, in order, carrying why it ended; its late report
    # from the transport is dropped.
    assert types[0] == "client.closed" and types[1] == "session.created"
    assert seen[0].error is raised.value and seen[0].retryable and not seen[0].requested
    assert types.count("client.closed") == 2 and types[-1] == "client.closed"
    assert seen[-1].requested


def test_the_closing_event_of_a_connect_timeout_says_so() -> None:
    events: list[ClosedEvent] = []
    transport = _FirstStuckThen(RealtimeClient(api_key=KEY)._transport)
    client = RealtimeClient(api_key=KEY, transport=transport)
    client.on("client.closed", events.append)
    with pytest.raises(RealtimeTimeoutError) as raised:
        client.connect(timeout=0.2)
    transport.stuck[0].on_end(TransportEnded("unreachable", opened=False))
    # Nothing else is attached, so the closing event is dispatched: wait for it.
    deadline = time.monotonic() + WAIT
    while not events and time.monotonic() < deadline:
        time.sleep(0.01)
    (event,) = events
    assert not event.requested and event.retryable
    assert event.error is raised.value


def test_a_transport_that_fails_to_start_leaves_the_client_usable(
    server: LocalRealtimeServer,
) -> None:
    transport = _FirstStuckThen(RealtimeClient(api_key=KEY, url=server.url)._transport)
    transport.stuck.append(_Stuck(lambda ended: None))  # skip the stuck one
    transport.fail_start = True
    client = RealtimeClient(api_key=KEY, url=server.url, transport=transport)
    with pytest.raises(OSError, match="cannot start"):
        client.connect(timeout=WAIT)
    client.connect(timeout=WAIT)  # used to raise AlreadyConnectedError forever
    client.close(timeout=WAIT)
    assert client_threads() == []


def test_an_empty_close_frame_is_a_close_not_a_drop() -> None:
    def close_empty(peer: RawPeer, conn: socket.socket, request: bytes) -> None:
        conn.sendall(upgrade_reply(request))
        conn.sendall(text_frame({"type": "session.created", "session": {"id": "sess_1"}}))
        conn.sendall(bytes([0x88, 0x00]))  # a close frame without a status code
        peer.release.wait(WAIT)

    (event,) = closing_events_of(close_empty)
    assert event.code == 1005
    assert "without a close frame" not in str(event.error) and event.retryable


def test_close_leaves_no_thread_behind_at_once(make_client: MakeClient) -> None:
    for _ in range(20):
        client = make_client()
        client.connect(timeout=WAIT)
        client.close(timeout=WAIT)
        assert [t for t in client_threads() if "dispatch" in t.name] == []


def test_an_error_shared_by_many_waiters_does_not_grow_its_traceback(
    make_client: MakeClient,
) -> None:
    client = make_client()
    client.connect(timeout=WAIT)
    waits = [client.expect("response.done") for _ in range(50)]
    client.close(timeout=WAIT)
    depths = []
    for wait in waits:
        try:
            wait.wait(WAIT)
        except ClientClosed as exc:
            depths.append(len(traceback.extract_tb(exc.__traceback__)))
    assert len(depths) == 50 and max(depths) == min(depths)


# --- found by fault probes after the restructure -------------------------------------------


def test_a_predicate_raising_a_base_exception_fails_only_its_wait(
    make_client: MakeClient,
) -> None:
    client = make_client()
    client.connect(timeout=WAIT)

    def fatal(event: Any) -> bool:
        raise SystemExit("from a predicate")

    doomed = client.expect("response.done", predicate=fatal)
    done = client.expect("response.done")
    client.response.create()
    assert done.wait(WAIT).response.status == "completed"
    with pytest.raises(SystemExit):
        doomed.wait(WAIT)
    assert client.connected


@pytest.mark.parametrize("event_type", ["client.closed", "client.handler_error", "client.x"])
def test_a_server_event_cannot_pass_for_a_client_event(
    server: LocalRealtimeServer, make_client: MakeClient, event_type: str
) -> None:
    client = make_client()
    fake: list[Any] = []
    client.on("client.closed", fake.append)
    client.on("client.handler_error", fake.append)
    client.connect(timeout=WAIT)
    invalid = client.expect("client.invalid_frame")
    server.push({"type": event_type, "requested": True})
    assert "client." in invalid.wait(WAIT).reason
    assert fake == [] and client.connected


def test_a_closed_handler_of_the_old_connection_cannot_close_the_new_one(
    server: LocalRealtimeServer, make_client: MakeClient
) -> None:
    client = make_client(reconnect=False)
    cleaning = threading.Event()
    release = threading.Event()

    def cleanup(event: Any) -> None:
        cleaning.set()
        release.wait(WAIT)  # slow cleanup, then "make sure it is closed"
        client.close(timeout=WAIT)

    client.on("client.closed", cleanup)
    client.connect(timeout=WAIT)
    server.drop_connections()
    assert cleaning.wait(WAIT)
    reconnect = threading.Thread(target=client.connect, kwargs={"timeout": WAIT})
    reconnect.start()
    release.set()
    reconnect.join(2 * WAIT)
    assert client.connected  # the old connection's handler ran before the new one existed


def test_binary_frames_are_invalid_frames_and_fragmented_text_is_whole() -> None:
    event = b'{"type": "rate_limits.updated", "rate_limits": []}'

    def frames(peer: RawPeer, conn: socket.socket, request: bytes) -> None:
        conn.sendall(upgrade_reply(request))
        conn.sendall(text_frame({"type": "session.created", "session": {"id": "sess_1"}}))
        conn.sendall(bytes([0x82, len(event)]) + event)  # the same JSON, as a binary frame
        half = len(event) // 2
        conn.sendall(bytes([0x01, half]) + event[:half])  # text, in two fragments
        conn.sendall(bytes([0x80, len(event) - half]) + event[half:])
        peer.release.wait(WAIT)

    with RawPeer(frames) as peer:
        client = RealtimeClient(api_key=KEY, url=peer.url)
        seen: list[Any] = []
        arrived = threading.Event()
        client.on("client.invalid_frame", seen.append)
        client.on("rate_limits.updated", seen.append)
        client.on("rate_limits.updated", lambda ev: arrived.set())
        client.connect(timeout=WAIT)
        assert arrived.wait(WAIT)
        client.close(timeout=WAIT)
    assert [e.type for e in seen] == ["client.invalid_frame", "rate_limits.updated"]
    assert seen[0].data == event and "binary" in seen[0].reason


def test_key_echoed_in_close_reasons_and_reason_phrases_is_masked() -> None:
    def refuse(peer: RawPeer, conn: socket.socket, request: bytes) -> None:
        conn.sendall(f"HTTP/1.1 500 Oops {KEY}\r\nContent-Length: 0\r\n\r\n".encode())

    with RawPeer(refuse) as peer:
        client = RealtimeClient(reconnect=False, api_key=KEY, url=peer.url)
        with pytest.raises(InternalServerError) as raised:
            client.connect(timeout=WAIT)
    assert KEY not in str(raised.value) and KEY not in raised.value.message

    def close_with_key(peer: RawPeer, conn: socket.socket, request: bytes) -> None:
        conn.sendall(upgrade_reply(request))
        conn.sendall(text_frame({"type": "session.created", "session": {"id": "sess_1"}}))
        reason = f"bye {KEY}".encode()
        conn.sendall(bytes([0x88, 2 + len(reason)]) + (1011).to_bytes(2, "big") + reason)
        peer.release.wait(WAIT)

    (event,) = closing_events_of(close_with_key)
    assert event.code == 1011
    for shown in (str(event.to_dict()), str(event.reason), str(event.error), event.error.reason):
        assert KEY not in shown


@pytest.mark.parametrize("timeout", [float("inf"), 1e12])
def test_unbounded_timeouts_mean_forever(make_client: MakeClient, timeout: float) -> None:
    client = make_client(connect_timeout=timeout)
    client.connect(timeout=timeout)
    done = client.expect("response.done")
    client.response.create()
    assert done.wait(timeout).response.status == "completed"
    client.close(timeout=timeout)
