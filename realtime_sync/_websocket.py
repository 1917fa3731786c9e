"""The I/O shell: the one module that touches websocket-client (and ``_frames``, its reader).

websocket-client's ``WebSocketApp.run_forever`` runs on a daemon thread, whose read loop
also sends the keepalive pings. Its callbacks here do almost nothing: hand frames on and
record how the connection ended, so the socket thread is always free to answer pings. How it
ended is reported as a neutral :class:`~realtime_sync._transport.TransportEnded`.
"""

from __future__ import annotations

import contextlib
import logging
import selectors
import socket
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import websocket
from attrs import field, frozen

from ._endpoints import Handshake
from ._errors import ConfigurationError, NotConnectedError, TransportError
from ._frames import ReadAhead
from ._timeouts import wait_seconds
from ._transport import EndKind, EndSink, FrameSink, TransportEnded, binary_frame

__all__ = ["WebSocketConnection", "WebSocketTransport", "join_started"]

logger = logging.getLogger("realtime_sync")

# How long close() waits for the server's close frame before cutting the socket.
CLOSE_HANDSHAKE_GRACE = 1.0
_REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})


def join_started(thread: threading.Thread, timeout: float) -> None:
    """Join ``thread`` for at most ``timeout`` seconds; one not started yet is not waited for
    (a close() racing connect() can come before the threads start)."""
    if thread.ident is not None and thread is not threading.current_thread():
        thread.join(wait_seconds(timeout))


@frozen
class WebSocketTransport:
    """The default transport: websocket-client, one socket thread per connection."""

    ping_interval: float | None
    """Seconds between our pings; None or 0 disables them."""
    ping_timeout: float | None
    """Seconds to wait for a pong before declaring the connection dead."""
    sslopt: Mapping[str, Any] | None
    """websocket-client ``sslopt`` (e.g. ``{"ca_certs": path}``); verification stays on."""
    proxy: Mapping[str, Any] = field(repr=False)
    """websocket-client proxy keywords (``http_proxy_host``, ``proxy_type``, ...); not in
    the repr, as they may hold the proxy's password."""
    send_timeout: float | None = field(default=10.0, kw_only=True)
    """Seconds a write may wait on a peer that is not reading before the send fails and the
    connection is cut (None: forever). Over TLS this bounds writing a whole frame; over plain
    TCP, each wait for buffer space. It also bounds a stall in the middle of a received frame.
    """

    connect_timeout: float | None = field(default=None, kw_only=True)
    """Seconds each step of connecting (TCP connect, a proxy's CONNECT exchange, the TLS
    handshake, the upgrade) may wait on a silent peer before the attempt fails (None:
    forever). abort() cannot wake a thread in the first three, so this is what ends it."""

    @send_timeout.validator
    @connect_timeout.validator
    def _check_timeout(self, attribute: Any, value: float | None) -> None:
        if value is not None and not value > 0:
            raise ConfigurationError(f"{attribute.name} must be positive (or None), not {value!r}")

    def open(
        self, handshake: Handshake, *, on_frame: FrameSink, on_end: EndSink, name: str
    ) -> WebSocketConnection:
        return WebSocketConnection(
            handshake, self, on_frame=on_frame, on_end=on_end, thread_name=name
        )


class RedirectRefused(Exception):
    """Raised inside websocket-client when it is about to follow a redirect."""


class _UpgradeHeaders:
    """Request header lines that can go into one upgrade request only.

    websocket-client follows 3xx replies to the upgrade, re-sending the same headers, our
    credentials included, to whatever host ``Location`` names, and ``WebSocketApp`` has no
    switch to stop it. It renders these lines once per request it sends: a second
    rendering means a redirect is being followed, so we refuse there, before any request
    goes out to the new location. (By then websocket-client has opened a TCP, or TLS,
    connection to it; that connection is closed unused.)
    """

    def __init__(self, lines: Sequence[str]) -> None:
        self._lines = tuple(lines)
        self._rendered = False

    def __bool__(self) -> bool:
        return True  # always rendered, even with no lines: the guard must run

    def __contains__(self, name: object) -> bool:
        return False  # websocket-client asks whether we set its own Sec-WebSocket-* lines

    def __iter__(self) -> Iterator[str]:
        if self._rendered:
            raise RedirectRefused("the upgrade was redirected")
        self._rendered = True
        return iter(self._lines)


class _PromptApp(websocket.WebSocketApp):
    """A ``WebSocketApp`` whose read loop wakes often enough to notice a missing pong.

    websocket-client looks for the pong each time its read loop wakes, which an idle
    connection does every ``ping_timeout`` seconds; the look can only succeed between
    ``ping_timeout`` after a ping and the next ping, a window those wake-ups can keep missing
    (44 s to notice a silent peer with pings every 2.1 s and a 2 s timeout). Waking a few
    times per window bounds detection at about ping interval + ping timeout.
    """

    wake_every: float | None = None
    ping_every: float = 0.0  # seconds between keepalive pings, sent by the read loop
    on_send_timeout: Callable[[], None] | None = None
    # Frames read and not handed over yet, and what hands them over (set per connection).
    burst: list[Any]
    hand_over: Callable[[], None]

    def create_dispatcher(
        self,
        ping_timeout: float | None,
        dispatcher: Any = None,
        is_ssl: bool = False,
        handleDisconnect: Any = None,
    ) -> Any:
        inner = super().create_dispatcher(
            self.wake_every or ping_timeout, dispatcher, is_ssl, handleDisconnect
        )
        return _CutOnSendTimeout(inner, self._send_timed_out, self)

    def _send_timed_out(self) -> None:
        if self.on_send_timeout is not None:
            self.on_send_timeout()

    def cut(self) -> None:
        """Shut the socket down now: wakes its reader, fails its writers at once."""
        self.keep_running = False
        raw = getattr(self.sock, "sock", None)
        if raw is not None:
            with contextlib.suppress(OSError):  # not connected yet, or already gone
                raw.shutdown(socket.SHUT_RDWR)

    def _stop_ping_thread(self) -> None:
        # websocket-client joins its ping thread for up to 3 s (then warns); one stuck in a
        # send to a peer that stopped reading, or waiting behind one, holds the end up that
        # long. Ending on an error, our on_error cuts the socket anyway: cut it first.
        thread = self.ping_thread
        if self.has_errored and thread is not None and thread.is_alive():
            self.cut()
        super()._stop_ping_thread()


class _CutOnSendTimeout:
    """websocket-client's dispatcher, with a cut when a write times out.

    Every frame (ours, its pings, its close frames) is written through ``send`` under the
    socket's send lock. A write that timed out may have left part of a frame on the wire;
    cutting the socket before the lock is released means no frame can follow it.
    """

    def __init__(self, inner: Any, on_timeout: Callable[[], None], app: _PromptApp) -> None:
        self._inner = inner
        self._on_timeout = on_timeout
        self._app = app

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def read(
        self, sock: Any, read_callback: Callable[[], Any], check_callback: Callable[[], Any]
    ) -> None:
        """websocket-client's read loop (plain and TLS alike), handing frames over in
        bursts: while another whole frame is buffered, or more is on the socket, it is read
        first, so a burst of events costs the dispatcher one wake-up, not one each. When the
        socket has nothing more, what was read is handed over before waiting, even if part
        of the next frame is buffered (the rest of a fragmented message is waited for by
        websocket-client itself, with the frames before it still held)."""
        app = self._app
        sock = app.sock
        raw = sock.sock if sock is not None else None
        if sock is None or raw is None:
            return
        frames = sock.frame_buffer
        assert isinstance(frames, ReadAhead)  # installed by on_open, before the first read
        frame_ready = frames.frame_ready
        tls_pending = getattr(raw, "pending", None)  # decrypted bytes select() cannot see

        def pending() -> bool:
            return frame_ready() or bool(tls_pending is not None and tls_pending())

        selector = selectors.DefaultSelector()
        selector.register(raw, selectors.EVENT_READ)
        next_ping = time.monotonic() + app.ping_every
        try:
            while app.keep_running:
                if app.ping_every and time.monotonic() >= next_ping:
                    next_ping = time.monotonic() + app.ping_every
                    _ping(app)
                ready = pending()
                if not ready:
                    partial = frames.buffered()  # part of a frame, no whole one
                    ready = bool(
                        selector.select(0 if app.burst or partial else self._inner.ping_timeout)
                    )
                    if not ready:
                        app.hand_over()  # nothing more for now: what was read goes
                        # The rest of a partial frame is waited for in the read itself, whose
                        # timeout (send_timeout) bounds a stall; select() would wait unbounded.
                        ready = (
                            partial or pending() or bool(selector.select(self._inner.ping_timeout))
                        )
                if ready:
                    if not read_callback():
                        break
                    if len(app.burst) >= _BURST:
                        app.hand_over()
                check_callback()
        finally:
            selector.close()
            app.hand_over()

    def send(self, sock: socket.socket, data: bytes) -> int:
        try:
            return int(self._inner.send(sock, data))
        except websocket.WebSocketTimeoutException:
            self._on_timeout()
            raise


_BURST = 64  # frames at most per hand-over: the first of them waits for the last


def _ping(app: _PromptApp) -> None:
    """Send a keepalive ping from the read loop: no ping thread per connection. Skipped
    while another send holds the socket (a stuck one is the send timeout's to end); the
    missing pong is then noticed as it would be anyway."""
    sock = app.sock
    # Counted as sent even when skipped: a peer that stopped reading owes a pong too.
    app.last_ping_tm = time.time()
    locked = getattr(sock, "lock", None)
    if sock is None or (locked is not None and getattr(locked, "locked", bool)()):
        return
    try:
        sock.ping(app.ping_payload)
    except (OSError, websocket.WebSocketException):  # the read that follows finds out
        logger.debug("a keepalive ping could not be sent", exc_info=True)


class SendTimedOut(Exception):
    """Why a connection was cut: a send made no progress within the send timeout."""


def _wake_every(interval: float | None, timeout: float | None) -> float | None:
    """How often the read loop wakes to look for a missing pong (None: no pings)."""
    if not interval or not timeout:
        return None
    return max(0.05, min(timeout / 4, (interval - timeout) / 2))


class WebSocketConnection:
    """One WebSocket connection, from upgrade to teardown.

    ``on_frame`` receives each text frame (bytes) on the socket thread; ``on_end`` is called
    exactly once, on the socket thread, after the last frame.
    """

    def __init__(
        self,
        handshake: Handshake,
        options: WebSocketTransport,
        *,
        on_frame: FrameSink,
        on_end: EndSink,
        thread_name: str,
    ) -> None:
        self._handshake = handshake
        self._options = options
        self._on_frame = on_frame
        self._on_end = on_end
        self._opened = threading.Event()
        self._error: BaseException | None = None
        self._redirect: tuple[int, str, str | None] | None = None
        self._close_frame_received = False
        self._socket: websocket.WebSocket | None = None
        # Set by close()/abort(): our own flag, because run_forever resets keep_running.
        self._stopping = False
        self._finished = False
        self._close_code: int | None = None
        self._close_reason: str | None = None
        self._headers = _UpgradeHeaders(
            [f"{name}: {value}" for name, value in handshake.headers.items()]
        )
        self._app = _PromptApp(
            handshake.url,
            header=self._before_connect,  # type: ignore[arg-type]
            subprotocols=list(handshake.subprotocols) or None,
            on_open=self._handle_open,
            on_data=self._handle_data,
            on_error=self._handle_error,
            on_close=self._handle_close,
        )
        self._app.wake_every = _wake_every(options.ping_interval, options.ping_timeout)
        self._app.ping_every = options.ping_interval or 0.0
        self._app.burst = []
        self._app.hand_over = self._hand_over
        self._app.on_send_timeout = self._send_timed_out
        self._send_cut = False  # a send timed out and the socket was cut
        self._thread = threading.Thread(target=self._run, name=thread_name, daemon=True)

    # --- socket thread ----------------------------------------------------------------------

    def _run(self) -> None:
        options = self._options
        try:
            if self._stopping:  # closed before the thread got going
                return
            self._app.run_forever(
                sslopt=dict(options.sslopt or {}),
                # Pings come from our read loop (ping_every): one thread fewer per
                # connection. websocket-client still checks for the pong.
                ping_interval=0,
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
            self._hand_over()  # every frame goes before the end report
            self._finished = True
            self._on_end(self._ended())

    def _before_connect(self) -> _UpgradeHeaders:
        """websocket-client's header callable, called on the socket thread just before it
        connects, its new socket object in ``app.sock``: give that the connect timeout,
        which websocket-client applies to the raw socket it opens (its own default, None,
        would let a silent peer hold the thread and the fd for good)."""
        sock = self._app.sock
        if sock is not None:
            sock.settimeout(wait_seconds(self._options.connect_timeout))
        return self._headers

    def _ended(self) -> TransportEnded:
        """Describe the end in library-neutral terms."""
        exc, opened = self._error, self._opened.is_set()
        if self._redirect is not None:
            status, status_text, location = self._redirect
            return TransportEnded(
                "redirected", opened, status=status, status_text=status_text, location=location
            )
        if isinstance(exc, websocket.WebSocketBadStatusException):
            raw_body = exc.resp_body
            return TransportEnded(
                "refused",
                opened,
                status=int(exc.status_code),
                status_text=str(exc.status_message or ""),
                headers={str(k).lower(): str(v) for k, v in (exc.resp_headers or {}).items()},
                body=raw_body.encode() if isinstance(raw_body, str) else raw_body,
                cause=exc,
            )
        kind: EndKind
        code = self._close_code
        if code is None and self._close_frame_received:
            code = 1005  # RFC 6455: a close frame without a status code
        if code is not None or (exc is None and opened):
            kind = "closed"
        elif not opened:
            kind = "unreachable"
        elif isinstance(exc, websocket.WebSocketTimeoutException):
            kind = "timeout"
        else:
            kind = "dropped"
        return TransportEnded(
            kind,
            opened,
            code=code,
            reason=self._close_reason,
            detail=self._detail(exc),
            cause=exc,
        )

    def _detail(self, exc: BaseException | None) -> str:
        """The error's text; for a step of connecting that timed out, which bound it was."""
        text = "" if exc is None else str(exc) or type(exc).__name__
        bound = self._options.connect_timeout
        if exc is None or bound is None or self._opened.is_set():
            return text
        timeouts = (TimeoutError, websocket.WebSocketTimeoutException)
        # websocket-client re-raises a timeout reading the proxy's reply as a proxy error.
        if isinstance(exc, timeouts) or isinstance(exc.__context__, timeouts):
            by = " from the proxy" if isinstance(exc, websocket.WebSocketProxyException) else ""
            return f"no answer{by} within the connect timeout ({bound:g} s): {text}"
        return text

    def _handle_open(self, app: websocket.WebSocketApp) -> None:
        self._socket = app.sock
        if app.sock is not None:
            # Nothing was read past the upgrade's reply (it is read a byte at a time), so
            # the reader can be swapped before the first frame.
            app.sock.frame_buffer = ReadAhead(app.sock._recv)
            # Bounds each write (and a read stalled mid-frame; the read loop selects before
            # reading, so an idle connection never times out). Replaces the connect timeout,
            # which bounded each step up to here.
            app.sock.settimeout(self._options.send_timeout)
        if self._stopping:  # close() raced the handshake: do not start a session
            self.abort()
            return
        self._opened.set()

    def _handle_data(
        self, app: websocket.WebSocketApp, data: bytes, opcode: int, final: bool
    ) -> None:
        # A fragmented message ends in a continuation frame, which says nothing of its
        # kind: only a whole binary frame is known to be binary.
        self._app.burst.append(
            binary_frame(data) if opcode == websocket.ABNF.OPCODE_BINARY else data
        )

    def _hand_over(self) -> None:
        """Pass the frames read so far to ``on_frame``: one, or a list of several."""
        burst = self._app.burst
        if burst:
            self._app.burst = []
            self._on_frame(burst[0] if len(burst) == 1 else burst)

    def _handle_error(self, app: websocket.WebSocketApp, exc: BaseException) -> None:
        sock = app.sock
        self._socket = self._socket or sock
        status = sock.getstatus() if sock is not None else None
        if not self._opened.is_set() and status in _REDIRECT_STATUSES:
            assert sock is not None
            headers = sock.getheaders() or {}
            self._redirect = (int(status), "", headers.get("location"))
            return
        # A close frame also arrives here, as an exception carrying its status (None for an
        # empty close frame); on_close gets its code.
        if isinstance(exc, websocket.WebSocketConnectionClosedException) and hasattr(
            exc, "status_code"
        ):
            self._close_frame_received = True
            return
        self._error = self._error or exc
        if self._opened.is_set():
            # The peer is gone or silent: websocket-client's teardown would now send a close
            # frame and wait 3 s for an answer that cannot come. Cut the socket so it won't.
            self.abort()

    def _handle_close(
        self, app: websocket.WebSocketApp, code: int | None, reason: str | None
    ) -> None:
        self._close_code, self._close_reason = code, reason

    def _send_timed_out(self) -> None:
        """A write timed out, on whichever thread; called holding the socket's send lock."""
        self._send_cut = True
        if not self._stopping:  # not a close frame of ours: the peer is to blame
            self._error = self._error or SendTimedOut(
                f"the peer stopped reading: a send made no progress for "
                f"{self._options.send_timeout:g} s"
            )
        self.abort()

    # --- any thread -------------------------------------------------------------------------

    def start(self) -> None:
        self._thread.start()

    @property
    def opened(self) -> bool:
        return self._opened.is_set()

    @property
    def finished(self) -> bool:
        """True once the socket thread is done with the connection (it may still be exiting)."""
        return self._finished

    def send(self, data: bytes) -> None:
        """Send one text frame. Thread-safe. Raises instead of dropping the frame."""
        sock = self._app.sock
        if sock is None or not sock.connected or self._send_cut:
            raise NotConnectedError("the connection is closed; the event was not sent")
        try:
            sock.send(data, websocket.ABNF.OPCODE_TEXT)
        except websocket.WebSocketConnectionClosedException as exc:
            raise NotConnectedError(
                f"the connection closed; the event was not sent ({exc})"
            ) from exc
        except websocket.WebSocketTimeoutException as exc:
            raise TransportError(
                f"the send timed out after {self._options.send_timeout:g} s (the peer is not "
                "reading); the connection is being closed because a partial frame may have "
                "been written"
            ) from exc
        except (OSError, websocket.WebSocketException) as exc:
            if self._send_cut:  # cut under the send lock before this frame's first byte
                raise NotConnectedError(
                    "the connection was cut after a send timed out; the event was not sent"
                ) from exc
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
        if self._opened.is_set() and sock is not None and sock.connected:
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
            closer.join(wait_seconds(deadline - time.monotonic()))
        return not self._thread.is_alive()

    @staticmethod
    def _send_close_frame(sock: websocket.WebSocket) -> None:
        # Already broken? Then the shutdown in close() ends the connection.
        with contextlib.suppress(OSError, websocket.WebSocketException):
            sock.send_close(websocket.STATUS_NORMAL)

    def abort(self) -> None:
        """Cut the connection now, without a close frame; wakes a blocked socket thread.

        A thread still in TCP connect, a proxy's CONNECT exchange or the TLS handshake
        cannot be woken (websocket-client exposes the socket only after them); it ends when
        that step times out (the transport's ``connect_timeout``), or the peer gives up.
        """
        self._stopping = True
        self._app.cut()
