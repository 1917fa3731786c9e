"""The local server's HTTP side: a stdlib ``ThreadingHTTPServer`` on its own port.

``websockets`` serves only GET upgrades, so the REST endpoints (WebRTC call creation, call
control, client secrets) run here, next to it, started and stopped with it. This is only
the socket shell: :class:`~._calls.LocalCalls` decides every answer.
"""

from __future__ import annotations

import json
import logging
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from .._secrets import redact
from ._admission import lower_headers
from ._calls import HttpAnswer, LocalCalls, error_answer
from ._catalogue import JsonObject

__all__ = ["HttpSide"]

_log = logging.getLogger("realtime_sync.testing")
_MAX_BODY = 4 * 2**20
_JOIN_TIMEOUT = 5.0
_POLL_INTERVAL = 0.02


class _Server(ThreadingHTTPServer):
    # Handler threads are joined on close: each serves one request (HTTP/1.0, no
    # keep-alive) within the socket timeout, so none can outlive stop() for long.
    daemon_threads = False
    block_on_close = True
    # The listen backlog: socketserver's default of 5 resets connections as soon as a few
    # dozen clients connect at once, which a load test of the HTTP API does.
    request_queue_size = 128
    calls: LocalCalls
    halted: threading.Event

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that failed TLS or went away: its problem, not a server failure.
        _log.debug("local realtime server (http): a request failed", exc_info=True)


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    timeout = _JOIN_TIMEOUT  # a client that connects and sends nothing

    def do_POST(self) -> None:
        self._answer()

    def do_GET(self) -> None:
        self._answer()

    def _answer(self) -> None:
        length = (self.headers.get("Content-Length") or "0").strip()
        # int() took "-5" and "1_0", and raises past 4300 digits.
        if not (length.isascii() and length.isdigit() and len(length) <= 18):
            self._send(error_answer(400, None, "The Content-Length header is not a number."))
            return
        body = self.rfile.read(min(int(length), _MAX_BODY))
        headers = lower_headers(self.headers.items())
        answer = self.server.calls.handle(self.command, self.path.split("?")[0], headers, body)
        if answer.delay > 0 and self.server.halted.wait(answer.delay):
            return  # stopping: drop the request unanswered
        self._send(answer)

    def _send(self, answer: HttpAnswer) -> None:
        payload = _encoded(answer.body)
        self.send_response(answer.status)
        self.send_header("Content-Type", answer.content_type)
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("x-request-id", "req_local")
        for name, value in answer.headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:
        _log.debug("local realtime server (http): " + redact(format % args))


def _encoded(body: JsonObject | str | None) -> bytes:
    """An answer's body as sent: JSON, text (an SDP answer) as it is, or nothing."""
    if body is None:
        return b""
    return body.encode() if isinstance(body, str) else json.dumps(body).encode()


class HttpSide:
    """The HTTP server of one :class:`~._server.LocalRealtimeServer`."""

    def __init__(self, calls: LocalCalls, host: str, ssl_context: ssl.SSLContext | None) -> None:
        self._calls = calls
        self._host = host
        self._ssl = ssl_context
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._halted = threading.Event()

    def start(self) -> None:
        """Bind a free port on the host and serve in a daemon thread."""
        server = _Server((self._host, 0), _Handler)
        server.calls = self._calls
        server.halted = self._halted
        if self._ssl is not None:
            # The handshake happens on the handler's first read, in its thread and within
            # its timeout, never on the accepting thread.
            server.socket = self._ssl.wrap_socket(
                server.socket, server_side=True, do_handshake_on_connect=False
            )
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever,
            args=(_POLL_INTERVAL,),  # how long shutdown() may wait: every server stops
            name="realtime_sync-local-server-http",
            daemon=True,
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop serving and join the thread (delayed answers are dropped). Idempotent."""
        server, self._server = self._server, None
        if server is None:
            return
        self._halted.set()
        server.shutdown()
        server.server_close()
        if self._thread is not None:
            self._thread.join(_JOIN_TIMEOUT)

    @property
    def base_url(self) -> str:
        """``http(s)://<host>:<port>/v1``."""
        if self._server is None:
            raise RuntimeError("the server is not started; call start() first")
        port = self._server.server_address[1]
        host = f"[{self._host}]" if ":" in self._host else self._host
        return f"{'https' if self._ssl else 'http'}://{host}:{port}/v1"
