"""Time to recover from each fault the local server can inject.

For every fault: a connected client (the default reconnect policy unless the fault needs
another), the fault, and the time until ``client.reconnected`` or
``client.session_rolled_over`` is dispatched, over several trials; then a turn on the new
session proves it works. Prints one line per fault: median and maximum seconds, and what
the client saw. Run: ``python benchmarks/recovery.py [trials]``.
"""

from __future__ import annotations

import statistics
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from realtime_sync import RealtimeClient
from realtime_sync.testing import LocalRealtimeServer

KEY = "rs-bench-key-5a1c7e2f9b3d4e60"
WAIT = 30.0

Fault = Callable[[LocalRealtimeServer, RealtimeClient], None]


def _drop(server: LocalRealtimeServer, client: RealtimeClient) -> None:
    server.drop_connections()


def _close(code: int, reason: str = "") -> Fault:
    return lambda server, client: server.close_connections(code, reason)


def _refuse_then_drop(status: int, headers: dict[str, str] | None = None) -> Fault:
    def fault(server: LocalRealtimeServer, client: RealtimeClient) -> None:
        server.reject_handshake(status, headers=headers, times=1)
        server.drop_connections()

    return fault


def _hang_then_drop(server: LocalRealtimeServer, client: RealtimeClient) -> None:
    server.hang_handshakes(times=1)
    server.drop_connections()


def _silence(server: LocalRealtimeServer, client: RealtimeClient) -> None:
    server.answer_pings(False)


def _drop_mid_response(server: LocalRealtimeServer, client: RealtimeClient) -> None:
    server.drop_during_response(after_deltas=1)
    client.create_response()


def _expire_now(server: LocalRealtimeServer, client: RealtimeClient) -> None:
    server.expire_sessions()


FAULTS: list[tuple[str, Fault, dict[str, Any]]] = [
    ("TCP drop, no close frame", _drop, {}),
    ("drop mid-response (after 1 delta)", _drop_mid_response, {}),
    ("close 1011 (server error)", _close(1011, "server_error"), {}),
    ("close 1012 (service restart)", _close(1012), {}),
    ("drop, then HTTP 503 once", _refuse_then_drop(503), {}),
    ("drop, then HTTP 429 Retry-After: 1", _refuse_then_drop(429, {"Retry-After": "1"}), {}),
    ("drop, then a hung handshake (connect_timeout 2 s)", _hang_then_drop, {"connect_timeout": 2}),
    ("half-open peer (pings 1 s / 0.5 s)", _silence, {"ping_interval": 1.0, "ping_timeout": 0.5}),
    ("session_expired + 1001", _expire_now, {}),
]


def trial(fault: Fault, client_options: dict[str, Any]) -> float:
    with LocalRealtimeServer(api_key=KEY) as server:
        client = RealtimeClient(api_key=KEY, url=server.url, **client_options)
        back = threading.Event()
        client.on("client.reconnected", lambda event: back.set())
        client.on("client.session_rolled_over", lambda event: back.set())
        with client:
            started = time.monotonic()
            fault(server, client)
            if not back.wait(WAIT):
                raise RuntimeError("no recovery within 30 s")
            recovered = time.monotonic() - started
            server.answer_pings(True)
            client.send_text("still there?", timeout=WAIT)
        return recovered


def main() -> None:
    trials = int(sys.argv[1]) if len(sys.argv) > 1 else 10
    print(f"{'fault':50} {'median s':>9} {'max s':>7}  (n={trials})")
    for name, fault, client_options in FAULTS:
        times = [trial(fault, client_options) for _ in range(trials)]
        print(f"{name:50} {statistics.median(times):9.3f} {max(times):7.3f}")


if __name__ == "__main__":
    main()
