"""A small HTTP CONNECT proxy on 127.0.0.1 for tests: it records each tunnel it opens
(target and ``Proxy-Authorization``) and relays bytes both ways until either side closes.
With ``credentials`` it answers 407 to a request without the matching Basic header."""

from __future__ import annotations

import base64
import select
import socket
import socketserver
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import attrs


@attrs.frozen
class Tunnel:
    target: str
    """``host:port`` of the CONNECT request."""
    authorization: str | None
    """The ``Proxy-Authorization`` header as sent, or None."""


class ConnectProxy(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, credentials: tuple[str, str] | None = None) -> None:
        super().__init__(("127.0.0.1", 0), _Relay)
        self.tunnels: list[Tunnel] = []
        self.expected = (
            "Basic " + base64.b64encode(":".join(credentials).encode()).decode()
            if credentials
            else None
        )

    @property
    def port(self) -> int:
        return int(self.server_address[1])


class _Relay(socketserver.BaseRequestHandler):
    server: ConnectProxy

    def handle(self) -> None:
        client: socket.socket = self.request
        client.settimeout(10)
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = client.recv(4096)
            if not chunk:
                return
            head += chunk
        request, *header_lines = head.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")
        method, target, _ = request.split(" ", 2)
        headers = dict(line.split(": ", 1) for line in header_lines if ": " in line)
        authorization = next(
            (v for k, v in headers.items() if k.lower() == "proxy-authorization"), None
        )
        self.server.tunnels.append(Tunnel(target, authorization))
        if method != "CONNECT":
            client.sendall(b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n")
            return
        if self.server.expected is not None and authorization != self.server.expected:
            client.sendall(
                b"HTTP/1.1 407 Proxy Authentication Required\r\n"
                b'Proxy-Authenticate: Basic realm="test"\r\nContent-Length: 0\r\n\r\n'
            )
            return
        host, port = target.rsplit(":", 1)
        with socket.create_connection((host, int(port)), timeout=10) as upstream:
            client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
            _pipe(client, upstream)


def _pipe(a: socket.socket, b: socket.socket) -> None:
    peers = {a: b, b: a}
    while True:
        readable, _, _ = select.select(list(peers), [], [], 30)
        if not readable:
            return
        for sock in readable:
            try:
                data = sock.recv(65536)
            except OSError:
                return
            if not data:
                return
            peers[sock].sendall(data)


@contextmanager
def connect_proxy(credentials: tuple[str, str] | None = None) -> Iterator[ConnectProxy]:
    proxy = ConnectProxy(credentials)
    thread = threading.Thread(target=proxy.serve_forever, daemon=True)
    thread.start()
    try:
        yield proxy
    finally:
        proxy.shutdown()
        proxy.server_close()
        thread.join(timeout=5)
