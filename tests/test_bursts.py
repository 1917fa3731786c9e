"""Frames read in one go are handed to the dispatcher in one go: nothing lost or reordered,
and each connection's end still comes after its last frame."""

from __future__ import annotations

import json
import socket
import threading
from typing import Any

import pytest
from conftest import KEY
from rawpeer import RawPeer, text_frame, upgrade_reply

from realtime_sync import RealtimeClient, _websocket
from realtime_sync._frames import ReadAhead

WAIT = 5.0


@pytest.mark.parametrize("count", [1, 63, 64, 65, 1000])
def test_a_burst_arrives_whole_in_order_and_before_the_end(count: int) -> None:
    def burst_then_close(peer: RawPeer, conn: socket.socket, request: bytes) -> None:
        conn.sendall(upgrade_reply(request))
        conn.sendall(text_frame({"type": "session.created", "session": {"id": "sess_1"}}))
        peer.release.wait(WAIT)
        deltas = b"".join(
            text_frame({"type": "response.output_text.delta", "delta": str(n)})
            for n in range(count)
        )
        conn.sendall(deltas + bytes([0x88, 0x02, 0x03, 0xE8]))  # then a close frame, 1000

    seen: list[Any] = []
    ended = threading.Event()
    with RawPeer(burst_then_close) as peer:
        client = RealtimeClient(api_key=KEY, url=peer.url, reconnect=False)
        client.on("response.output_text.delta", lambda event: seen.append(event.delta))
        client.on("client.closed", lambda event: (seen.append(event), ended.set()))
        client.connect(timeout=WAIT)
        peer.release.set()
        assert ended.wait(WAIT)
        client.close(timeout=WAIT)
    assert seen[:-1] == [str(n) for n in range(count)]
    assert seen[-1].code == 1000


def test_frames_go_over_in_bursts_of_at_most_the_cap(monkeypatch: pytest.MonkeyPatch) -> None:
    sizes: list[int] = []
    hand_over = _websocket.WebSocketConnection._hand_over

    def counting(self: Any) -> None:
        if self._app.burst:
            sizes.append(len(self._app.burst))
        hand_over(self)

    monkeypatch.setattr(_websocket.WebSocketConnection, "_hand_over", counting)
    test_a_burst_arrives_whole_in_order_and_before_the_end(1000)
    assert max(sizes) <= _websocket._BURST
    assert len(sizes) < 1001 / 2  # most frames shared a hand-over with others


def test_a_backlog_is_reported_once_per_stretch_and_observable() -> None:
    from realtime_sync.testing import LocalRealtimeServer

    with LocalRealtimeServer(api_key=KEY) as server:
        client = RealtimeClient(api_key=KEY, url=server.url, reconnect=False, backlog_warning=0.2)
        warnings: list[Any] = []
        seen: list[str] = []
        done = threading.Event()
        slow = threading.Event()
        client.on("client.backlog", warnings.append)

        def handler(event: Any) -> None:
            if slow.is_set():
                threading.Event().wait(0.03)  # a handler slower than the events
            seen.append(event.delta)
            if event.delta == "last":
                done.set()

        client.on("response.output_text.delta", handler)
        with client:
            assert client.backlog == (0, client.backlog[1])
            slow.set()
            for n in range(30):  # about 0.9 s of handling queued at once
                server.push({"type": "response.output_text.delta", "delta": str(n)})
            server.push({"type": "response.output_text.delta", "delta": "last"})
            assert done.wait(WAIT)
            assert len(warnings) == 1
            assert warnings[0].seconds > 0.2 and warnings[0].events >= 1
            assert client.backlog[1] > 0.2  # the last one waited too
            slow.clear()
            done.clear()
            server.push({"type": "response.output_text.delta", "delta": "last"})
            assert done.wait(WAIT)
            assert client.backlog[1] < 0.2 and len(warnings) == 1
        assert seen[:30] == [str(n) for n in range(30)]


def _session_then(send_after_created: Any) -> Any:
    """A peer script: upgrade, session.created, then ``send_after_created(peer, conn)``."""

    def script(peer: RawPeer, conn: socket.socket, request: bytes) -> None:
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        conn.sendall(upgrade_reply(request))
        conn.sendall(text_frame({"type": "session.created", "session": {"id": "sess_1"}}))
        send_after_created(peer, conn)
        peer.release.wait(WAIT)

    return script


def _delta(text: str) -> bytes:
    return text_frame({"type": "response.output_text.delta", "delta": text})


def test_a_frame_cut_by_a_pause_does_not_hold_back_the_frames_before_it() -> None:
    # One write carries a whole frame and the first half of the next; the rest comes only
    # once the first was delivered. Read ahead, the half frame must not be waited for.
    second = _delta("b" * 300)
    rest_sent = threading.Event()

    def cut_in_two(peer: RawPeer, conn: socket.socket) -> None:
        conn.sendall(_delta("a") + second[:150])
        first_seen.wait(WAIT * 2)  # longer than the client is given: a hold-up shows
        conn.sendall(second[150:])
        rest_sent.set()

    first_seen = threading.Event()
    seen: list[str] = []
    rest_was_sent: list[bool] = []
    both = threading.Event()

    def on_delta(event: Any) -> None:
        seen.append(event.delta)
        if event.delta == "a":
            rest_was_sent.append(rest_sent.is_set())
            first_seen.set()
        else:
            both.set()

    with RawPeer(_session_then(cut_in_two)) as peer:
        client = RealtimeClient(api_key=KEY, url=peer.url, reconnect=False)
        client.on("response.output_text.delta", on_delta)
        with client:
            assert first_seen.wait(WAIT), "the whole frame waited for the half one after it"
            assert both.wait(WAIT)
        peer.release.set()
    assert rest_was_sent == [False]
    assert seen == ["a", "b" * 300]


def test_frames_of_every_length_arrive_whole_however_the_bytes_are_cut() -> None:
    # 7-, 16- and 64-bit lengths, frames larger than the read-ahead, headers and payloads
    # split at every kind of boundary by writes of odd sizes with pauses between them.
    sizes = [0, 1, 125, 126, 127, 65535, 65536, 70000, 1, 300_000, 5, 2]
    texts = [chr(ord("a") + n % 26) * size for n, size in enumerate(sizes)]
    stream = b"".join(_delta(text) for text in texts)
    pieces = [1, 2, 3, 7, 64, 129, 1000, 65536, 3]

    def dribble(peer: RawPeer, conn: socket.socket) -> None:
        at = n = 0
        while at < len(stream):
            piece = pieces[n % len(pieces)]
            conn.sendall(stream[at : at + piece])
            at += piece
            n += 1
            if n % 5 == 0:
                threading.Event().wait(0.002)  # let the reader catch up mid-frame

    seen: list[str] = []
    done = threading.Event()

    def on_delta(event: Any) -> None:
        seen.append(event.delta)
        if len(seen) == len(texts):
            done.set()

    with RawPeer(_session_then(dribble)) as peer:
        client = RealtimeClient(api_key=KEY, url=peer.url, reconnect=False)
        client.on("response.output_text.delta", on_delta)
        with client:
            assert done.wait(WAIT * 2)
        peer.release.set()
    assert [len(text) for text in seen] == sizes
    assert seen == texts


def test_a_burst_of_small_frames_takes_few_reads_of_the_socket(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Read frame by frame, each costs three reads (header, length, payload).
    import websocket._core

    reads: list[int] = []
    real_recv = websocket._core.recv

    def counting(sock: Any, bufsize: int) -> bytes:
        reads.append(bufsize)
        return real_recv(sock, bufsize)

    monkeypatch.setattr(websocket._core, "recv", counting)
    test_a_burst_arrives_whole_in_order_and_before_the_end(1000)
    assert len(reads) < 100, f"{len(reads)} reads for about 1000 frames"


@pytest.mark.parametrize(
    ("data", "ready"),
    [
        (b"", False),
        (b"\x81", False),
        (b"\x81\x00", True),  # an empty frame
        (b"\x81\x03ab", False),
        (b"\x81\x03abc", True),
        (b"\x81\x03abcd", True),  # and the start of the next
        (b"\x81\x7e\x00", False),  # a 16-bit length cut short
        (b"\x81\x7e\x00\x7e" + b"x" * 125, False),
        (b"\x81\x7e\x00\x7e" + b"x" * 126, True),
        (b"\x81\x7f" + (65536).to_bytes(8, "big") + b"x" * 65535, False),
        (b"\x81\x7f" + (65536).to_bytes(8, "big") + b"x" * 65536, True),
        (b"\x81\x82mask", False),  # masked: the key counts as header
        (b"\x81\x82maskxy", True),
    ],
)
def test_a_frame_is_ready_only_when_all_of_it_is_buffered(data: bytes, ready: bool) -> None:
    frames = ReadAhead(lambda size: b"")
    frames._data = b"\x81\x01z" + data  # behind one frame already served
    frames._at = 3
    assert frames.frame_ready() is ready


def test_a_frame_stalled_after_a_whole_one_is_bounded_by_the_send_timeout() -> None:
    # The whole frame and the start of the next come in one read; then nothing. The stall
    # must end the connection within send_timeout, not wait for pings (here: none).
    def stall(peer: RawPeer, conn: socket.socket) -> None:
        conn.sendall(_delta("whole") + _delta("x" * 500)[:100])

    seen: list[Any] = []
    closed = threading.Event()
    with RawPeer(_session_then(stall)) as peer:
        client = RealtimeClient(
            api_key=KEY, url=peer.url, reconnect=False, send_timeout=0.5, ping_interval=None
        )
        client.on("response.output_text.delta", lambda event: seen.append(event.delta))
        client.on("client.closed", lambda event: (seen.append(event), closed.set()))
        client.connect(timeout=WAIT)
        assert closed.wait(WAIT), "a stalled frame was waited for without bound"
        client.close(timeout=WAIT)
        peer.release.set()
    assert seen[0] == "whole"
    assert seen[1].retryable and seen[1].error is not None


class _Chunks:
    """A socket read for the frame reader: hands out the given chunks, one per call."""

    def __init__(self, *chunks: bytes) -> None:
        self.chunks = list(chunks)

    def __call__(self, bufsize: int) -> bytes:
        return self.chunks.pop(0)


def test_the_reader_keeps_only_what_follows_a_large_frame() -> None:
    large = _delta("y" * 8_000_000)
    small = _delta("after")
    frames = ReadAhead(_Chunks(large[:-10], large[-10:] + small[:5]))
    assert len(frames.recv_frame().data) == len(large) - 10  # 2 bytes and an 8-byte length
    assert len(frames._data) == 5  # not the 8 MB already served


def test_the_reader_reads_frames_from_chunks_cut_anywhere() -> None:
    stream = b"".join(_delta(text) for text in ["a", "b" * 200, "c" * 70_000, "d"])
    for cut in (1, 2, 3, 5, 64, 1000):
        pieces = [stream[i : i + cut] for i in range(0, len(stream), cut)]
        frames = ReadAhead(_Chunks(*pieces))
        texts = [json.loads(frames.recv_frame().data)["delta"] for _ in range(4)]
        assert texts == ["a", "b" * 200, "c" * 70_000, "d"]
        assert not frames.buffered()
