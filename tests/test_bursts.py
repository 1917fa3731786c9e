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
