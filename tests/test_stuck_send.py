"""A send to a peer that stopped reading fails in bounded time and ends the connection.

The peers here complete the upgrade, send ``session.created`` and never read again, with a
small receive buffer: a few large ``input_audio_buffer.append`` events fill the kernel
buffers, and the next send cannot complete (issue 8, "Dead peers").
"""

from __future__ import annotations

import inspect
import json
import logging
import socket
import struct
import threading
import time
import traceback
from typing import Any

import pytest
import websocket
from conftest import KEY, client_threads
from rawpeer import RawPeer, deaf, text_frame, upgrade_reply

from realtime_sync import (
    ConfigurationError,
    ConnectionClosed,
    NotConnectedError,
    RealtimeClient,
    TransportError,
)
from realtime_sync._endpoints import Handshake
from realtime_sync._transport import TransportEnded
from realtime_sync._websocket import WebSocketTransport

# Long enough for two busy cores, far shorter than the waits that show a hang.
WAIT = 5.0
RCVBUF = 4096
CHUNK = b"\0" * 786_432  # 1 MiB of base64
MAX_SENDS = 200  # far more than the buffers of a peer that reads nothing can take


def stuck_client(
    url: str,
    *,
    send_timeout: float,
    ping_interval: float | None = None,
    ping_timeout: float | None = None,
) -> RealtimeClient:
    """A client for ``url`` with this send timeout, never reconnecting (when it could)."""
    params = inspect.signature(RealtimeClient).parameters
    options: dict[str, Any] = {}
    if "reconnect" in params:
        options["reconnect"] = False
    if "send_timeout" in params:
        options["send_timeout"] = send_timeout
    else:  # not wired into the client yet: give it the transport directly
        options["transport"] = WebSocketTransport(
            ping_interval=ping_interval,
            ping_timeout=ping_timeout,
            sslopt=None,
            proxy={},
            send_timeout=send_timeout,
        )
    return RealtimeClient(
        api_key=KEY,
        url=url,
        auth="query",  # the key in the URL: error texts that name the URL must mask it
        ping_interval=ping_interval,
        ping_timeout=ping_timeout,
        **options,
    )


def fill_until_stuck(client: RealtimeClient) -> tuple[BaseException, float]:
    """Append audio until a send fails; that failure and how long its send took."""
    for _ in range(MAX_SENDS):
        started = time.monotonic()
        try:
            client.input_audio_buffer.append(audio=CHUNK)
        except (TransportError, NotConnectedError) as exc:
            return exc, time.monotonic() - started
    raise AssertionError(f"{MAX_SENDS} MiB went to a peer that reads nothing")


def full_text(exc: BaseException) -> str:
    return "".join(traceback.format_exception(exc))


@pytest.fixture
def baseline() -> list[threading.Thread]:
    """The client threads alive before the test (others' leftovers are not ours)."""
    return client_threads()


def assert_no_thread_left(baseline: list[threading.Thread]) -> None:
    for thread in client_threads():
        if thread not in baseline:
            thread.join(WAIT)
    assert [t for t in client_threads() if t not in baseline] == []


def test_a_stuck_send_fails_within_the_send_timeout_and_ends_the_session(
    baseline: list[threading.Thread],
) -> None:
    send_timeout = 1.0
    with RawPeer(deaf, rcvbuf=RCVBUF) as peer:
        client = stuck_client(peer.url, send_timeout=send_timeout)
        client.connect(timeout=WAIT)
        closed = client.expect("client.closed")
        error, took = fill_until_stuck(client)
        failed = time.monotonic()
        event = closed.wait(WAIT)
        until_closed = time.monotonic() - failed
        with pytest.raises(NotConnectedError):
            client.send({"type": "response.create"})
        client.close(timeout=WAIT)
    assert type(error) is TransportError, full_text(error)
    assert send_timeout <= took < send_timeout + 2, took
    assert "timed out after 1 s" in str(error) and "partial frame" in str(error)
    assert until_closed < 2, until_closed
    assert not event.requested and isinstance(event.error, ConnectionClosed)
    assert "stopped reading" in str(event.error) and event.code is None and event.retryable
    for text in (full_text(error), full_text(event.error), repr(event), repr(client)):
        assert KEY not in text
    assert_no_thread_left(baseline)


def _frames(stream: bytes) -> tuple[list[tuple[int, bytes]], bytes | None]:
    """Client frames in ``stream`` (opcode byte, unmasked payload) and a cut-off last one's
    unmasked payload (None when the stream ends on a frame boundary)."""
    frames: list[tuple[int, bytes]] = []
    at = 0
    while at < len(stream):
        head = stream[at : at + 14]
        if len(head) < 2:
            return frames, b""
        length, offset = head[1] & 0x7F, 2
        assert head[1] & 0x80, "a client frame must be masked"
        if length == 126:
            if len(head) < 4:
                return frames, b""
            (length,) = struct.unpack("!H", head[2:4])
            offset = 4
        elif length == 127:
            if len(head) < 10:
                return frames, b""
            (length,) = struct.unpack("!Q", head[2:10])
            offset = 10
        if len(head) < offset + 4:
            return frames, b""
        mask = head[offset : offset + 4]
        start = at + offset + 4
        masked = stream[start : start + length]
        key = (mask * (len(masked) // 4 + 1))[: len(masked)]
        payload = (int.from_bytes(masked, "big") ^ int.from_bytes(key, "big")).to_bytes(
            len(masked), "big"
        )
        if len(masked) < length:
            return frames, payload
        frames.append((head[0], payload))
        at = start + length
    return frames, None


def test_nothing_follows_a_partial_frame_on_the_wire(
    baseline: list[threading.Thread],
) -> None:
    drain = threading.Event()
    received: list[bytes] = []
    drained = threading.Event()

    def deaf_then_drain(peer: RawPeer, conn: socket.socket, request: bytes) -> None:
        conn.sendall(upgrade_reply(request))
        conn.sendall(text_frame({"type": "session.created", "session": {"id": "sess_1"}}))
        drain.wait(30)
        try:
            while chunk := conn.recv(1 << 20):  # to the client's FIN: all it ever wrote
                received.append(chunk)
        finally:
            drained.set()

    with RawPeer(deaf_then_drain, rcvbuf=RCVBUF) as peer:
        client = stuck_client(peer.url, send_timeout=1.0)
        client.connect(timeout=WAIT)
        closed = client.expect("client.closed")
        refused: list[BaseException] = []

        def small_sends() -> None:  # ends up waiting for the send lock the stuck send holds
            for _ in range(1_000_000):
                try:
                    client.input_audio_buffer.clear()
                except NotConnectedError as exc:
                    refused.append(exc)
                    return

        sender = threading.Thread(target=small_sends, name="small-sends")
        sender.start()
        started = time.monotonic()
        # Larger than any socket buffer (4 MiB at most by default): stuck mid-frame.
        with pytest.raises(TransportError, match="timed out") as stuck:
            client.input_audio_buffer.append(audio=bytes(9 << 20))
        took = time.monotonic() - started
        sender.join(WAIT)
        closed.wait(WAIT)
        drain.set()
        assert drained.wait(WAIT)
        client.close(timeout=WAIT)
    assert took < 1.0 + 2, took
    assert len(refused) == 1, "the other sender was refused, not failed mid-frame"
    assert KEY not in full_text(stuck.value) + full_text(refused[0])
    frames, partial = _frames(b"".join(received))
    # Whole events, and no close frame: it would have followed the partial frame.
    assert {opcode for opcode, _ in frames} == {0x81}
    assert all(json.loads(data)["type"] for _, data in frames)
    assert partial, "the big append should have been cut off mid-frame"
    # Its text to the end of the stream: another frame's header and masked bytes are not.
    assert all(32 <= b < 127 for b in partial), partial[-200:]
    assert_no_thread_left(baseline)


class _Warnings(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def test_a_ping_stuck_behind_a_stuck_send_does_not_delay_the_pong_timeout(
    baseline: list[threading.Thread], monkeypatch: pytest.MonkeyPatch
) -> None:
    # websocket-client joins its ping thread for 3 s when the connection ends, and its
    # ping thread was waiting for the send lock held by the stuck send: the end came 3 s
    # late, with a warning, and the ping thread died of an AttributeError.
    interval, timeout = 1.0, 0.5
    crashes: list[threading.ExceptHookArgs] = []
    monkeypatch.setattr(threading, "excepthook", crashes.append)
    warnings = _Warnings()
    logging.getLogger("websocket").addHandler(warnings)
    try:
        with RawPeer(deaf, rcvbuf=RCVBUF) as peer:
            client = stuck_client(
                peer.url, send_timeout=30, ping_interval=interval, ping_timeout=timeout
            )
            client.connect(timeout=WAIT)
            closed = client.expect("client.closed")
            started = time.monotonic()
            error, _ = fill_until_stuck(client)
            event = closed.wait(WAIT)
            elapsed = time.monotonic() - started
            client.close(timeout=WAIT)
        assert_no_thread_left(baseline)
    finally:
        logging.getLogger("websocket").removeHandler(warnings)
    assert isinstance(error, TransportError), full_text(error)
    assert elapsed < interval + timeout + 1, elapsed
    assert isinstance(event.error, ConnectionClosed) and "no pong" in str(event.error)
    assert KEY not in full_text(error) + full_text(event.error)
    assert not [m for m in warnings.messages if "Ping thread" in m], warnings.messages
    assert crashes == []


def ping_until_stuck(ws: websocket.WebSocket) -> float:
    """Ping until a ping times out (131-byte frames: about 30,000 fill the buffers); how
    long that ping took."""
    for _ in range(1_000_000):
        started = time.monotonic()
        try:
            ws.ping(b"p" * 125)
        except websocket.WebSocketTimeoutException:
            return time.monotonic() - started
    raise AssertionError("a million pings went to a peer that reads nothing")


def test_any_write_that_times_out_cuts_the_connection_pings_included(
    baseline: list[threading.Thread],
) -> None:
    ended: list[TransportEnded] = []
    session = threading.Event()
    done = threading.Event()

    def on_frame(frame: object) -> None:  # session.created
        session.set()

    def on_end(end: TransportEnded) -> None:
        ended.append(end)
        done.set()

    with RawPeer(deaf, rcvbuf=RCVBUF) as peer:
        transport = WebSocketTransport(None, None, None, {}, send_timeout=0.5)
        handshake = Handshake(url=peer.url, headers={}, subprotocols=(), display_url=peer.url)
        connection = transport.open(
            handshake, on_frame=on_frame, on_end=on_end, name="realtime_sync-stuck-ping"
        )
        connection.start()
        assert session.wait(WAIT)
        # websocket-client's own socket, as its ping thread uses it: not through send().
        ws = connection._app.sock
        assert ws is not None
        took = ping_until_stuck(ws)
        assert done.wait(WAIT)
        with pytest.raises(NotConnectedError):
            connection.send(b'{"type": "response.create"}')
        assert connection.close(WAIT)
    (end,) = ended
    assert end.kind == "dropped" and end.opened and end.code is None
    assert "stopped reading" in end.detail and "0.5 s" in end.detail
    assert 0.5 <= took < 0.5 + 2, took
    assert_no_thread_left(baseline)


@pytest.mark.parametrize("value", [0, -1.0])
def test_send_timeout_must_be_positive_or_none(value: float) -> None:
    with pytest.raises(ConfigurationError, match="send_timeout"):
        WebSocketTransport(
            ping_interval=None, ping_timeout=None, sslopt=None, proxy={}, send_timeout=value
        )
    assert WebSocketTransport(None, None, None, {}).send_timeout == 10.0
