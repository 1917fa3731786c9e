"""Connection attempts stuck before the WebSocket opens, on real sockets.

A proxy that never answers CONNECT, a server that never answers the TLS ClientHello or the
upgrade request: abort() cannot wake a socket thread in the first two, so the transport's
connect timeout has to end it, and with it the attempt's socket. Nothing may pile up across
attempts either.
"""

from __future__ import annotations

import contextlib
import os
import socket
import socketserver
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from conftest import KEY, client_threads
from connect_proxy import connect_proxy

from realtime_sync import (
    ConfigurationError,
    RealtimeClient,
    RealtimeTimeoutError,
    RealtimeTranslationClient,
    ReconnectPolicy,
    TransportError,
)
from realtime_sync._websocket import WebSocketTransport
from realtime_sync.testing import LocalRealtimeServer

TIMEOUT = 1.0  # the clients' connect_timeout
SETTLE = TIMEOUT + 3.0  # how long a stuck attempt may take to end, at most
WAIT = 10.0


class SilentPeer:
    """A listener on 127.0.0.1 that accepts connections, holds them and never sends a byte
    (nor reads one): a proxy stuck before its CONNECT reply, a TLS or HTTP server stuck
    before its first. ``full``: it accepts none, and its queue is full, so connects to it
    hang unanswered, as to an address a broken network drops."""

    def __init__(self, *, full: bool = False) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0), backlog=0 if full else 128)
        self.port = int(self.listener.getsockname()[1])
        self.held: list[socket.socket] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, name="silent-peer", daemon=True)
        if full:
            for _ in range(4):
                queued = socket.socket()
                queued.setblocking(False)
                queued.connect_ex(("127.0.0.1", self.port))
                self.held.append(queued)
            with socket.socket() as probe:
                probe.settimeout(0.3)
                assert probe.connect_ex(("127.0.0.1", self.port)) != 0, "the queue is not full"
        else:
            self._thread.start()

    def _accept(self) -> None:
        self.listener.settimeout(0.1)
        while not self._stop.is_set():
            try:
                self.held.append(self.listener.accept()[0])
            except OSError:
                continue

    def sockets(self) -> set[str]:
        """Its own sockets, as /proc/self/fd names them."""
        return {
            f"socket:[{os.fstat(sock.fileno()).st_ino}]" for sock in [self.listener, *self.held]
        }

    def close(self) -> None:
        self._stop.set()
        if self._thread.ident is not None:
            self._thread.join(timeout=5)
        for sock in self.held:
            sock.close()
        self.listener.close()


@pytest.fixture
def silent_peer() -> Iterator[Callable[[str], SilentPeer]]:
    """Silent peers for a step of connecting (a full queue for the TCP connect); closed
    after the test, which lets go of whatever is still stuck on them."""
    made: list[SilentPeer] = []

    def make(step: str) -> SilentPeer:
        made.append(SilentPeer(full=step == "TCP connect"))
        return made[-1]

    yield make
    for peer in made:
        peer.close()


@pytest.fixture
def clients() -> Iterator[list[RealtimeClient]]:
    """Clients closed after the test."""
    made: list[RealtimeClient] = []
    yield made
    for client in made:
        client.close(timeout=5)


def socket_threads() -> set[threading.Thread]:
    """The clients' live socket threads (one per connection attempt)."""
    return {thread for thread in client_threads() if thread.name.endswith("-socket")}


def open_files() -> set[tuple[str, str]]:
    """This process's open file descriptors, with what each is (a socket's inode is
    unique: a socket opened later is never mistaken for one closed meanwhile)."""
    files = set()
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):  # the listing's own, closed by now
            files.add((fd, os.readlink(f"/proc/self/fd/{fd}")))
    return files


class Leaks:
    """What the test's clients started since it was made and has not ended yet."""

    def __init__(self, peer: SilentPeer | None = None) -> None:
        self._peer = peer
        self._threads = socket_threads()
        self._files = open_files()

    def threads(self) -> set[threading.Thread]:
        return socket_threads() - self._threads

    def files(self) -> set[tuple[str, str]]:
        own = self._peer.sockets() if self._peer is not None else set()
        return {file for file in open_files() - self._files if file[1] not in own}

    def none_after(self, timeout: float) -> bool:
        """Whether both are gone within ``timeout`` seconds."""
        return settles(lambda: not self.threads() and not self.files(), timeout)


def settles(done: Callable[[], bool], timeout: float) -> bool:
    """Poll ``done`` until it holds or ``timeout`` seconds pass."""
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.02)
    return True


def stuck_client(step: str, port: int, **options: Any) -> RealtimeClient:
    """A client whose connect gets stuck at ``step`` against a silent peer on ``port``."""
    if step == "TCP connect":
        url = f"ws://127.0.0.1:{port}/v1/realtime"
    elif step == "proxy CONNECT":  # tunnels to a host it never reaches
        options.update(http_proxy_host="127.0.0.1", http_proxy_port=port, proxy_type="http")
        url = "wss://realtime.example.invalid/v1/realtime"
    elif step == "TLS handshake":
        url = f"wss://127.0.0.1:{port}/v1/realtime"
    else:
        url = f"ws://127.0.0.1:{port}/v1/realtime"
    return RealtimeClient(api_key=KEY, url=url, reconnect=False, **options)


STEPS = ["TCP connect", "proxy CONNECT", "TLS handshake", "HTTP upgrade"]


@pytest.mark.parametrize("step", STEPS)
def test_a_silent_peer_fails_the_attempt_at_the_connect_timeout_and_frees_its_thread_and_fd(
    silent_peer: Callable[[str], SilentPeer], clients: list[RealtimeClient], step: str
) -> None:
    silent = silent_peer(step)
    client = stuck_client(step, silent.port, connect_timeout=TIMEOUT)
    clients.append(client)
    leaks = Leaks(silent)
    started = time.monotonic()
    # connect() waits longer than the transport's bound: the end comes from the transport.
    with pytest.raises(TransportError, match=r"no answer.* within the connect timeout \(1 s\)"):
        client.connect(timeout=WAIT)
    assert TIMEOUT * 0.9 <= time.monotonic() - started < TIMEOUT + 2
    assert silent.held, "the client never reached the silent peer"
    assert leaks.none_after(SETTLE), (leaks.threads(), leaks.files())


@pytest.mark.parametrize("step", STEPS)
def test_a_connect_timeout_shorter_than_the_attempt_still_ends_the_attempt(
    silent_peer: Callable[[str], SilentPeer], clients: list[RealtimeClient], step: str
) -> None:
    silent = silent_peer(step)
    # The attempt's own bound is the client's connect_timeout: connect() gives up first,
    # and the socket thread follows when that bound passes (at once for the upgrade, which
    # connect()'s abort() can wake).
    client = stuck_client(step, silent.port, connect_timeout=TIMEOUT * 1.5)
    clients.append(client)
    leaks = Leaks(silent)
    started = time.monotonic()
    with pytest.raises(RealtimeTimeoutError):
        client.connect(timeout=TIMEOUT)
    given_up = time.monotonic()
    assert TIMEOUT * 0.9 <= given_up - started < TIMEOUT + 2
    assert leaks.none_after(SETTLE), (leaks.threads(), leaks.files())
    if step == "HTTP upgrade":  # woken by abort(), not by the connect timeout
        assert time.monotonic() - given_up < TIMEOUT * 0.5


def test_the_upgrade_is_woken_by_abort_long_before_the_connect_timeout(
    silent_peer: Callable[[str], SilentPeer], clients: list[RealtimeClient]
) -> None:
    silent = silent_peer("HTTP upgrade")
    client = stuck_client("HTTP upgrade", silent.port, connect_timeout=WAIT)
    clients.append(client)
    leaks = Leaks(silent)
    with pytest.raises(RealtimeTimeoutError, match="upgrade did not complete"):
        client.connect(timeout=TIMEOUT)
    assert leaks.none_after(1.0), (leaks.threads(), leaks.files())


class _Holding(socketserver.BaseRequestHandler):
    """A proxy's handler that takes the connection and never answers the CONNECT."""

    release: threading.Event

    def handle(self) -> None:
        self.release.wait(WAIT * 3)


def test_reconnect_attempts_through_a_proxy_gone_silent_go_on_and_do_not_pile_up(
    server: LocalRealtimeServer, clients: list[RealtimeClient]
) -> None:
    release = threading.Event()
    holding = type("Holding", (_Holding,), {"release": release})
    with connect_proxy() as proxy:
        client = RealtimeClient(
            api_key=KEY,
            url=server.url,
            http_proxy_host="127.0.0.1",
            http_proxy_port=proxy.port,
            connect_timeout=TIMEOUT,
            reconnect=ReconnectPolicy(initial_delay=0.05, max_delay=0.1),
        )
        clients.append(client)
        attempts: list[Any] = []
        fourth = threading.Event()

        def on_reconnecting(event: Any) -> None:
            attempts.append(event)
            if len(attempts) >= 4:
                fourth.set()

        client.on("client.reconnecting", on_reconnecting)
        client.connect(timeout=WAIT)
        assert len(proxy.tunnels) == 1
        leaks = Leaks()
        try:
            proxy.RequestHandlerClass = holding  # from now on, CONNECT goes unanswered
            server.drop_connections()
            # Each attempt given up waits for its connection's end: one that never came
            # stalled reconnecting for good.
            assert fourth.wait(WAIT * 2), attempts  # three attempts failed
            # At most the attempt under way is left: every failed one's thread ended.
            assert settles(lambda: len(leaks.threads()) <= 1, SETTLE), leaks.threads()
            client.close(timeout=WAIT)
            assert settles(lambda: not leaks.threads(), SETTLE), leaks.threads()
        finally:
            release.set()  # let the proxy's held handlers go


@pytest.mark.parametrize("make", [RealtimeClient, RealtimeTranslationClient])
def test_both_clients_bound_each_step_of_connecting_by_their_connect_timeout(
    make: Callable[..., RealtimeClient | RealtimeTranslationClient],
) -> None:
    client = make(api_key=KEY, connect_timeout=2.5)
    try:
        assert isinstance(client._transport, WebSocketTransport)
        assert client._transport.connect_timeout == 2.5
    finally:
        client.close(timeout=5)
    with pytest.raises(ConfigurationError, match="connect_timeout must be positive"):
        make(api_key=KEY, connect_timeout=0)
