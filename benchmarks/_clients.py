"""The client flavours under test, each as one callback-driven session.

- ``floor``: a bare ``websocket.WebSocketApp`` whose ``on_message`` does ``json.loads`` and
  calls the handler of the event's type; ``run_forever`` on a daemon thread, with pings
  every 20 s as realtime_sync has by default (hence a ping thread too).
- ``realtime_sync``: one ``RealtimeClient`` (reconnect off, conversation state on).
- ``openai``: the official SDK's sync ``client.realtime.connect()``, iterated on a thread.

The raw ``recv()`` loop and the openai main-thread loops of the blast and send measurements
are written out in ``_measure.py``: they have no callbacks to share.
Handlers receive each flavour's own event objects: dicts from the floor, typed objects
from the others; the ``Tally`` and ``Counter`` below take either.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Callable
from typing import Any

import _protocol as p
import websocket

CONNECT_TIMEOUT = 15.0
CLOSE_TIMEOUT = 5.0
PING_INTERVAL, PING_TIMEOUT = 20.0, 10.0  # realtime_sync's defaults, for the floor too
HEADERS = [f"Authorization: Bearer {p.API_KEY}"]
GO = {"type": "response.create"}
GO_JSON = json.dumps(GO)

Handlers = dict[str, Callable[[Any], None]]


class Counter:
    """Counts events; notes the time of the n-th and sets ``done``."""

    def __init__(self) -> None:
        self.reset(0)

    def reset(self, n: int) -> None:
        self.n, self.count, self.end = n, 0, 0.0
        self.done = threading.Event()

    def __call__(self, event: Any) -> None:
        self.count += 1
        if self.count == self.n:
            self.end = time.perf_counter()
            self.done.set()


class Tally:
    """One paced session's deltas: send -> callback latency of each, and the end marker."""

    def __init__(self, typed: bool) -> None:
        self.latencies: list[float] = []
        self.done = threading.Event()
        self.sent: int | None = None  # the server's count, from the end marker
        self.server_lag_ms = 0.0
        self.delta = self._typed_delta if typed else self._dict_delta
        self.end = self._typed_end if typed else self._dict_end

    def _typed_delta(self, event: Any) -> None:
        self.latencies.append(time.time() - float(event.event_id[4 : 4 + p.TS_WIDTH]))

    def _dict_delta(self, event: dict[str, Any]) -> None:
        self.latencies.append(time.time() - float(event["event_id"][4 : 4 + p.TS_WIDTH]))

    def _typed_end(self, event: Any) -> None:
        self._ended(event.response.id, event.response.metadata)

    def _dict_end(self, event: dict[str, Any]) -> None:
        self._ended(event["response"]["id"], event["response"]["metadata"])

    def _ended(self, response_id: str, metadata: Any) -> None:
        if response_id == p.END_RESPONSE_ID:
            self.sent = int(metadata["sent"])
            self.server_lag_ms = float(metadata["max_lag_ms"])
            self.done.set()

    def handlers(self) -> Handlers:
        return {p.TEXT_DELTA: self.delta, p.AUDIO_DELTA: self.delta, "response.done": self.end}


class FloorSession:
    """The floor: websocket-client's own callback loop plus ``json.loads``."""

    typed = False

    def __init__(self, port: int, scenario: str, params: dict[str, Any], handlers: Handlers):
        self._handlers = handlers
        self._created = threading.Event()
        self.app = websocket.WebSocketApp(
            p.url(port, scenario, **params), header=HEADERS, on_message=self._on_message
        )
        self._thread = threading.Thread(target=self._run, name="floor", daemon=True)

    def _run(self) -> None:
        # skip_utf8_validation: websocket-client's validator is pure Python (no wsaccel
        # here) and would dominate; realtime_sync skips it too, json.loads checks anyway.
        self.app.run_forever(
            skip_utf8_validation=True, ping_interval=PING_INTERVAL, ping_timeout=PING_TIMEOUT
        )

    def _on_message(self, app: websocket.WebSocketApp, message: bytes) -> None:
        event = json.loads(message)
        handler = self._handlers.get(event["type"])
        if handler is not None:
            handler(event)
        elif event["type"] == "session.created":
            self._created.set()

    def connect(self) -> None:
        self._thread.start()
        if not self._created.wait(CONNECT_TIMEOUT):
            self.close()
            raise TimeoutError("floor: no session.created")

    def go(self) -> None:
        self.app.send(GO_JSON)

    def close(self, wait: float = 0.3) -> None:
        # WebSocketApp.close() from another thread returns at once, but run_forever's thread
        # usually sleeps on in epoll until its next timeout (ping_timeout, 10 s): the closed
        # socket was dropped from the epoll set without waking it. Waiting that out here
        # would make teardown the slow part; the thread is a daemon and ends on its own.
        self.app.close(timeout=CLOSE_TIMEOUT)
        if self._thread.ident is not None:
            self._thread.join(wait)

    @property
    def running(self) -> bool:
        return self._thread.is_alive()


class SyncSession:
    """realtime_sync: typed events to callbacks on its dispatcher thread."""

    typed = True

    def __init__(
        self,
        port: int,
        scenario: str,
        params: dict[str, Any],
        handlers: Handlers,
        **options: Any,
    ) -> None:
        from realtime_sync import RealtimeClient

        self.client = RealtimeClient(
            api_key=p.API_KEY, url=p.url(port, scenario, **params), reconnect=False, **options
        )
        for event_type, handler in handlers.items():
            self.client.on(event_type, handler)

    def connect(self) -> None:
        self.client.connect(timeout=CONNECT_TIMEOUT)

    def go(self) -> None:
        self.client.send(GO)

    def close(self) -> None:
        self.client.close(timeout=CLOSE_TIMEOUT)


_openai_clients: dict[int, Any] = {}


def openai_client(port: int) -> Any:
    """One ``openai.OpenAI`` per process (as an application would have), pointed at the
    loopback server: ``websocket_base_url`` is where ``realtime.connect()`` goes; the HTTP
    ``base_url`` is never used by it, and retries are off."""
    if port not in _openai_clients:
        import openai

        _openai_clients[port] = openai.OpenAI(
            api_key=p.API_KEY,
            base_url=f"http://127.0.0.1:{port}/v1",
            websocket_base_url=f"ws://127.0.0.1:{port}/v1",
            max_retries=0,
        )
    return _openai_clients[port]


def openai_connect(port: int, scenario: str, params: dict[str, Any]) -> Any:
    """An entered ``RealtimeConnection`` (the handshake done; nothing read yet)."""
    manager = openai_client(port).realtime.connect(
        model=p.MODEL,
        extra_query=p.query(scenario, **params),
        # proxy=None: never route loopback through a proxy from the environment.
        websocket_connection_options={
            "open_timeout": CONNECT_TIMEOUT,
            "close_timeout": CLOSE_TIMEOUT,
            "proxy": None,
        },
    )
    return manager.enter()


class OpenAISession:
    """The official SDK: ``for event in connection`` on a thread of ours, handlers by type."""

    typed = True

    def __init__(self, port: int, scenario: str, params: dict[str, Any], handlers: Handlers):
        self._args = (port, scenario, params)
        self._handlers = handlers
        self._created = threading.Event()
        self.conn: Any = None
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._iterate, name="openai", daemon=True)

    def _iterate(self) -> None:
        handlers = self._handlers
        try:
            for event in self.conn:
                handler = handlers.get(event.type)
                if handler is not None:
                    handler(event)
                elif event.type == "session.created":
                    self._created.set()
        except Exception as exc:  # a close from our side can surface as an error here
            self.error = exc

    def connect(self) -> None:
        self.conn = openai_connect(*self._args)
        self._thread.start()
        if not self._created.wait(CONNECT_TIMEOUT):
            self.close()
            raise TimeoutError("openai: no session.created")

    def go(self) -> None:
        self.conn.response.create()

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
        if self._thread.ident is not None:
            self._thread.join(CLOSE_TIMEOUT)


SESSIONS: dict[str, Callable[..., Any]] = {
    "floor": FloorSession,
    "realtime_sync": SyncSession,
    "openai": OpenAISession,
}


def close_all(sessions: list[Any]) -> None:
    """Close sessions in parallel (a few threads): sequential closes of 100 sessions would
    make teardown, not the measurement, the slow part."""
    if not sessions:
        return
    pending = list(sessions)
    lock = threading.Lock()

    def worker() -> None:
        while True:
            with lock:
                if not pending:
                    return
                session = pending.pop()
            with contextlib.suppress(Exception):  # one failure must not leave the rest open
                session.close()

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(min(8, len(pending)))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(CLOSE_TIMEOUT * 4)
