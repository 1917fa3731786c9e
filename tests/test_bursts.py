"""Frames read in one go are handed to the dispatcher in one go: nothing lost or reordered,
and each connection's end still comes after its last frame."""

from __future__ import annotations

import socket
import threading
from typing import Any

import pytest
from conftest import KEY
from rawpeer import RawPeer, text_frame, upgrade_reply

from realtime_sync import RealtimeClient, _websocket

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
