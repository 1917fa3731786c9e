"""The I/O shell: the one module that touches websocket-client and the socket thread.

websocket-client's ``WebSocketApp.run_forever`` runs on a daemon thread with its built-in
ping thread. Its callbacks here do almost nothing: hand each frame to the dispatcher and
record how the connection ended, so the socket thread is always free to answer pings.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

import websocket
from attrs import frozen

from ._endpoints import Handshake
from ._errors import NotConnectedError, TransportError

__all__ = ["Connection", "TransportOptions", "join_started"]

# How long close() waits for the server's close frame before cutting the socket.
CLOSE_HANDSHAKE_GRACE = 1.0


def join_started(thread: threading.Thread, timeout: float) -> None:
    """Join ``thread`` for at most ``timeout`` seconds; one not started yet is not waited for
    (a close() racing connect() can come before the threads start)."""
    if thread.ident is not None and thread is not threading.current_thread():
        thread.join(max(0.0, timeout))


@frozen
class TransportOptions:
    """Socket-level settings passed through to websocket-client."""

    ping_interval: float | None
    """Seconds between our pings; None or 0 disables them."""
    ping_timeout: float | None
    """Seconds to wait for a pong before declaring the connection dead."""
    sslopt: Mapping[str, Any] | None
    """websocket-client ``sslopt`` (e.g. ``{"ca_certs": path}``); verification stays on."""
    proxy: Mapping[str, Any]
    """websocket-client proxy keywords (``http_proxy_host``, ``proxy_type``, ...)."""


# What ended a connection: (close code, close reason, exception or None).
EndCallback = Callable[[int | None, str | None, BaseException | None], None]


class Connection:
    """One WebSocket connection, from upgrade to teardown.

    ``on_frame`` receives each text frame (bytes) on the socket thread; ``on_end`` is called
    exactly once, on the socket thread, after the last frame.
    """

    def __init__(
        self,
        handshake: Handshake,
        options: TransportOptions,
        *,
        on_frame: Callable[[bytes], None],
        on_end: EndCallback,
        thread_name: str,
    ) -> None:
        self._handshake = handshake
        self._options = options
        self._on_frame = on_frame
        self._on_end = on_end
        self.opened = threading.Event()
        """Set once the WebSocket upgrade succeeded."""
        self._error: BaseException | None = None
        self._socket: websocket.WebSocket | None = None
        # Set by close()/abort(): our own flag, because run_forever resets keep_running.
        self._stopping = False
        self.finished = False
        """True once the socket thread is done with the connection (it may still be exiting)."""
        self._close_code: int | None = None
        self._close_reason: str | None = None
        self._app = websocket.WebSocketApp(
            handshake.url,
            header=dict(handshake.headers),
            subprotocols=list(handshake.subprotocols) or None,
            on_open=self._handle_open,
            on_message=self._handle_message,
            on_error=self._handle_error,
            on_close=self._handle_close,
        )
        self._thread = threading.Thread(target=self._run, name=thread_name, daemon=True)

    # --- socket thread ----------------------------------------------------------------------

    def _run(self) -> None:
        options = self._options
        try:
            if self._stopping:  # closed before the thread got going
                return
            self._app.run_forever(
                sslopt=dict(options.sslopt or {}),
                ping_interval=options.ping_interval or 0,
                ping_timeout=options.ping_timeout if options.ping_interval else None,
                # Validation in pure Python caps receive at a few MB/s; json.loads checks
                # UTF-8 anyway.
                skip_utf8_validation=True,
                **options.proxy,
            )
        except BaseException as exc:  # run_forever re-raises a few; report, don't lose
            self._error = self._error or exc
        finally:
            # websocket-client's teardown skips closing the socket once a close frame was
            # exchanged (its close() returns early when no longer "connected"): close it here.
            if self._socket is not None:
                self._socket.shutdown()  # type: ignore[no-untyped-call]
            self.finished = True
            self._on_end(self._close_code, self._close_reason, self._error)

    def _handle_open(self, app: websocket.WebSocketApp) -> None:
        self._socket = app.sock
        if self._stopping:  # close() raced the handshake: do not start a session
            self.abort()
            return
        self.opened.set()

    def _handle_message(self, app: websocket.WebSocketApp, data: bytes | str) -> None:
        self._on_frame(data)  # type: ignore[arg-type]

    def _handle_error(self, app: websocket.WebSocketApp, exc: BaseException) -> None:
        self._socket = self._socket or app.sock
        # A close frame also arrives here, as an exception; on_close gets its code.
        if self._error is None and not (
            isinstance(exc, websocket.WebSocketConnectionClosedException)
            and getattr(exc, "status_code", None) is not None
        ):
            self._error = exc

    def _handle_close(
        self, app: websocket.WebSocketApp, code: int | None, reason: str | None
    ) -> None:
        self._close_code, self._close_reason = code, reason

    # --- any thread -------------------------------------------------------------------------

    def start(self) -> None:
        self._thread.start()

    @property
    def alive(self) -> bool:
        """True while the socket thread runs."""
        return self._thread.is_alive()

    def send(self, data: bytes) -> None:
        """Send one text frame. Thread-safe. Raises instead of dropping the frame."""
        sock = self._app.sock
        if sock is None or not sock.connected:
            raise NotConnectedError("the connection is closed; the event was not sent")
        try:
            sock.send(data, websocket.ABNF.OPCODE_TEXT)
        except websocket.WebSocketConnectionClosedException as exc:
            raise NotConnectedError(
                f"the connection closed; the event was not sent ({exc})"
            ) from exc
        except (OSError, websocket.WebSocketException) as exc:
            raise TransportError(f"sending failed; the event may not have arrived: {exc}") from exc

    def close(self, timeout: float) -> bool:
        """Close politely, then firmly; return True if the socket thread ended in time.

        Sends a close frame and gives the server a moment to answer with its own; if it
        does not, shuts the socket down, which wakes the socket thread at once.
        """
        self._stopping = True
        deadline = time.monotonic() + timeout
        grace = min(CLOSE_HANDSHAKE_GRACE, timeout / 2)
        sock = self._app.sock
        closer = None
        if self.opened.is_set() and sock is not None and sock.connected:
            # Sent from a helper thread: a send() stuck on a peer that stopped reading holds
            # the socket's send lock, and must not hold close() past its timeout too.
            closer = threading.Thread(
                target=self._send_close_frame, args=(sock,), name=f"{self._thread.name}-close"
            )
            closer.start()
            join_started(self._thread, grace)
        if self._thread.is_alive():
            self.abort()
            join_started(self._thread, deadline - time.monotonic())
        if closer is not None:  # the shutdown has woken it if it was stuck
            closer.join(max(0.0, deadline - time.monotonic()))
        return not self._thread.is_alive()

    @staticmethod
    def _send_close_frame(sock: websocket.WebSocket) -> None:
        # Already broken? Then the shutdown in close() ends the connection.
        with contextlib.suppress(OSError, websocket.WebSocketException):
            sock.send_close(websocket.STATUS_NORMAL)

    def abort(self) -> None:
        """Cut the connection now, without a close frame; wakes a blocked socket thread.

        A thread still in TCP connect or the TLS handshake cannot be woken (websocket-client
        exposes the socket only after them); it ends when the operating system gives up.
        """
        self._stopping = True
        self._app.keep_running = False
        sock = self._app.sock
        raw = getattr(sock, "sock", None)
        if raw is not None:
            with contextlib.suppress(OSError):  # not connected yet, or already gone
                raw.shutdown(socket.SHUT_RDWR)
