"""A scripted TCP peer for tests that need a server misbehaving below the protocol:
answering the upgrade with a redirect, or going silent after it."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import socket
import struct
import threading
from collections.abc import Callable
from typing import Any

_WEBSOCKET_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def read_request(conn: socket.socket) -> bytes:
    """Read one HTTP request head (up to the blank line)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(4096)
        if not chunk:
            break
        data += chunk
    return data


def upgrade_reply(request: bytes) -> bytes:
    """The 101 answer to a WebSocket upgrade request."""
    key = ""
    for line in request.decode("latin-1").split("\r\n"):
        name, _, value = line.partition(":")
        if name.strip().lower() == "sec-websocket-key":
            key = value.strip()
    accept = base64.b64encode(hashlib.sha1((key + _WEBSOCKET_GUID).encode()).digest()).decode()
    return (
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Accept: {accept}\r\n\r\n"
    ).encode()


def text_frame(event: dict[str, Any]) -> bytes:
    """An unmasked server text frame carrying ``event`` as JSON."""
    payload = json.dumps(event).encode()
    if len(payload) < 126:
        return bytes([0x81, len(payload)]) + payload
    if len(payload) < 65536:
        return bytes([0x81, 126]) + struct.pack("!H", len(payload)) + payload
    return bytes([0x81, 127]) + struct.pack("!Q", len(payload)) + payload


class RawPeer:
    """Accepts connections on 127.0.0.1 and runs ``script(conn, request)`` for each one.

    Every request head it read is kept in ``requests``; ``release`` ends scripts that wait.
    ``rcvbuf`` sets the receive buffer of the connections it accepts (set on the listener, so
    it also bounds the window they announce): small, a peer that stops reading is full fast.
    """

    def __init__(
        self,
        script: Callable[[RawPeer, socket.socket, bytes], None],
        *,
        rcvbuf: int | None = None,
    ) -> None:
        self.script = script
        self.requests: list[bytes] = []
        self.accepted = 0
        self.release = threading.Event()
        self._listener = socket.create_server(("127.0.0.1", 0))
        if rcvbuf is not None:
            self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.port: int = self._listener.getsockname()[1]
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._connections: list[socket.socket] = []

    @property
    def url(self) -> str:
        """The Realtime endpoint URL of this peer."""
        return f"ws://127.0.0.1:{self.port}/v1/realtime"

    def __enter__(self) -> RawPeer:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.release.set()
        with contextlib.suppress(OSError):  # wakes the accept() in progress
            self._listener.shutdown(socket.SHUT_RDWR)
        self._listener.close()
        # The accept loop first: a connection it accepted as the listener closed would
        # otherwise join the list after the loop below, and be left to the collector.
        self._thread.join(5)
        for conn in self._connections:
            with contextlib.suppress(OSError):
                conn.close()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            self.accepted += 1
            self._connections.append(conn)
            threading.Thread(target=self._run, args=(conn,), daemon=True).start()

    def _run(self, conn: socket.socket) -> None:
        with contextlib.suppress(OSError):
            conn.settimeout(5)
            request = read_request(conn)
            self.requests.append(request)
            self.script(self, conn, request)


def deaf(peer: RawPeer, conn: socket.socket, request: bytes) -> None:
    """A script: start a session, then never read again (a wedged or half-open peer)."""
    conn.sendall(upgrade_reply(request))
    conn.sendall(text_frame({"type": "session.created", "session": {"id": "sess_1"}}))
    peer.release.wait(60)
