"""The local server's socket-level pieces: the HTTP answer to a refused upgrade, and the
connection class that can mute pongs or go silent like a half-open peer."""

from __future__ import annotations

import contextlib
import http
import socket
import threading
from collections.abc import Callable
from typing import Any

from websockets.datastructures import Headers
from websockets.frames import Frame, Opcode
from websockets.http11 import Response
from websockets.protocol import Event
from websockets.server import ServerProtocol
from websockets.sync.server import Server, ServerConnection

from ._admission import HttpRefusal

__all__ = ["connection_class", "http_response"]


def http_response(refusal: HttpRefusal) -> Response:
    status = refusal.status
    payload, content_type = refusal.encoded_body()
    try:
        phrase = http.HTTPStatus(status).phrase
    except ValueError:
        phrase = "Unknown"
    response_headers = Headers(
        [
            ("Connection", "close"),
            ("Content-Type", content_type),
            ("Content-Length", str(len(payload))),
        ]
    )
    for name, value in refusal.headers.items():
        if name in response_headers:
            del response_headers[name]  # a custom header replaces a default one
        response_headers[name] = value
    return Response(status, phrase, response_headers, payload)


def connection_class(
    pongs: threading.Event, silent: threading.Event, track: Callable[[ServerConnection], None]
) -> type[ServerConnection]:
    """A ServerConnection that can stop answering pings, or go silent but for close frames
    (a half-open peer), and registers itself."""

    class _RealtimeServerConnection(ServerConnection):
        def __init__(
            self, sock: socket.socket, protocol: ServerProtocol, server: Server, **kwargs: Any
        ) -> None:
            threading.current_thread().name = "realtime_sync-local-server-conn"
            # The sans-I/O protocol queues a PONG for every PING it parses, before any
            # application code sees the ping; filtering at send_frame is the only place to
            # emulate a peer that stopped answering pings while the connection stays up.
            # Close frames always go: a test's closes (and stop()) end connections promptly.
            send_frame = protocol.send_frame

            def send_frame_unless_muted(frame: Frame) -> None:
                if frame.opcode is Opcode.CLOSE or not (
                    silent.is_set() or (frame.opcode is Opcode.PONG and not pongs.is_set())
                ):
                    send_frame(frame)

            protocol.send_frame = send_frame_unless_muted  # type: ignore[method-assign]
            super().__init__(sock, protocol, server, **kwargs)
            track(self)

        def process_event(self, event: Event) -> None:
            super().process_event(event)
            if isinstance(event, Frame) and event.opcode is Opcode.CLOSE:
                # Our close frame and FIN are sent by now. The threaded server would then
                # wait, with no timeout, for the client to close TCP; like real servers
                # (RFC 6455 7.1.1: the server closes first), end the connection instead.
                with contextlib.suppress(OSError):
                    self.socket.shutdown(socket.SHUT_RD)

    return _RealtimeServerConnection
