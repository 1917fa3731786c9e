"""Soak: many connect/close cycles, and a compressed long session with several rollovers.

Resources must come back to where they were (threads, open file descriptors), and no
message may be lost or duplicated across a rollover.
"""

from __future__ import annotations

import base64
import os
import threading
import time
from typing import Any

import pytest
from conftest import KEY, client_threads

from realtime_sync import RealtimeClient, ReconnectPolicy
from realtime_sync.testing import LocalRealtimeServer

WAIT = 10.0


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def settle(condition: Any, timeout: float = WAIT) -> bool:
    """Poll ``condition`` until true (threads exit asynchronously after close())."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


@pytest.mark.timeout(180)
def test_a_thousand_connect_close_cycles_leave_nothing_behind(
    server: LocalRealtimeServer,
) -> None:
    client = RealtimeClient(api_key=KEY, url=server.url)
    client.connect(timeout=WAIT)  # warm up: lazily created threads and sockets
    client.close(timeout=WAIT)
    assert settle(lambda: not client_threads())
    fds = open_fds()
    started = time.monotonic()
    for _ in range(1000):
        client.connect(timeout=WAIT)
        client.close(timeout=WAIT)
    elapsed = time.monotonic() - started
    assert settle(lambda: not client_threads()), [t.name for t in client_threads()]
    # Nor the process's timer thread: with no session open, no deadline keeps it.
    assert settle(lambda: "realtime_sync-clock" not in {t.name for t in threading.enumerate()})
    # The server closes its side asynchronously; allow it a moment, then compare.
    assert settle(lambda: open_fds() <= fds + 2), (open_fds(), fds)
    assert len(server.connections) == 1001
    print(f"1000 connect/close cycles: {elapsed:.1f} s")


@pytest.mark.timeout(120)
def test_a_compressed_hour_rolls_over_without_losing_or_repeating_a_message() -> None:
    """Sessions of 2 s, turns and audio for 10 s: several rollovers, proactive at quiet
    moments and at expiry, with every turn answered exactly once."""
    policy = ReconnectPolicy(
        initial_delay=0.05,
        max_delay=0.2,
        retry_interrupted=True,
        rollover_window=0.8,
        quiet_seconds=0.05,
        gap_audio="queue",
    )
    with LocalRealtimeServer(api_key=KEY, session_lifetime=2.0, delta_interval=0.01) as server:
        fds = open_fds()
        client = RealtimeClient(api_key=KEY, url=server.url, reconnect=policy)
        rolled: list[Any] = []
        client.on("client.session_rolled_over", rolled.append)
        closed: list[Any] = []
        client.on("client.closed", closed.append)
        chunk = base64.b64encode(bytes(2400)).decode()  # 50 ms of silence
        stop = threading.Event()
        appended = 0

        def speak() -> None:
            nonlocal appended
            while not stop.wait(0.03):
                client.input_audio_buffer.append(audio=chunk)
                appended += 1

        replies: list[str] = []
        with client:
            voice = threading.Thread(target=speak)
            started = time.monotonic()
            turn = 0
            while (elapsed := time.monotonic() - started) < 10.0:
                # Stretches of 2.5 s with audio coming (never quiet: the server's expiry
                # ends the session), then 2.5 s of turns alone (rolled over when quiet).
                speaking = int(elapsed / 2.5) % 2 == 0
                if speaking and not voice.is_alive():
                    stop.clear()
                    voice = threading.Thread(target=speak)
                    voice.start()
                elif not speaking and voice.is_alive():
                    stop.set()
                    voice.join(WAIT)
                replies.append(client.send_text(f"message {turn}", timeout=WAIT).text)
                turn += 1
            stop.set()
            voice.join(WAIT)
            users = [item.text for item in client.conversation.items if item.role == "user"]
        assert closed and closed[-1].requested and len(closed) == 1
        assert len(rolled) >= 4 and {r.reason for r in rolled} == {"proactive", "expired"}
        assert replies == [f"You said: message {n}" for n in range(turn)]
        # Every message once, in order, in the client's conversation, which replays
        # carried from session to session.
        assert users == [f"message {n}" for n in range(turn)]
        assert appended > 0
        assert settle(lambda: not client_threads())
        assert settle(lambda: open_fds() <= fds + 2)
        print(f"{turn} turns, {len(rolled)} rollovers: {sorted({r.reason for r in rolled})}")
