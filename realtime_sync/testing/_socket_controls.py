"""The test controls of :class:`~._server.LocalRealtimeServer` that act on its sockets:
pushed events, drops, closes, a call's hangup and muted pongs (the others, shared with the
in-process transport, are :class:`~._faults.ServerControls`).

No control waits on a client for long: a call join gets pushed events and its hangup close
through its outbox (:mod:`._shared_sessions`), after the events already queued for it; any
other connection that cannot take a pushed frame, or its close, within
:data:`CUT_AFTER` seconds (its client stopped reading) is cut, as a real server gives up
on a peer that does not read.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Mapping
from typing import Any

from websockets.exceptions import ConnectionClosed
from websockets.sync.server import ServerConnection

from ._catalogue import check_close, pushed_frame
from ._faults import ServerControls
from ._logs import server_log as _log
from ._recorder import Recorder
from ._shared_sessions import CallSessions, Member

__all__ = ["CALL_ENDED", "CLOSE_TIMEOUT", "CUT_AFTER", "SocketControls"]

CLOSE_TIMEOUT = 2.0
"""Seconds a closing handshake may take; bounds stop()."""
CUT_AFTER = CLOSE_TIMEOUT + 1.0
"""Seconds a close, or a pushed frame, has to go out before its connection is cut."""
CALL_ENDED = (1000, "call ended")
"""The close code and reason of a call's connections once it is hung up."""


class SocketControls(ServerControls):
    """The socket server's own controls (thread-safe)."""

    _recorder: Recorder[ServerConnection]
    _cond: threading.Condition
    _closers: list[threading.Thread]
    _members: dict[ServerConnection, Member]
    _call_sessions: CallSessions
    _pongs: threading.Event

    def push(self, event: Mapping[str, Any] | str | bytes) -> None:
        """Send a server event to every open connection that got its first event.

        A mapping is JSON-encoded and gets an ``event_id`` if it has none; a ``str`` is
        sent verbatim as a text frame (so it may be malformed JSON); ``bytes`` as a binary
        frame. A call join gets it after the session's events already queued for it.
        Never waits on a client for long: a connection whose client stopped reading is cut,
        a call join once 16 MiB wait for it, any other when the frame has not gone out
        within 3 s (logged as a warning); push returns by then.
        """
        self._broadcast(pushed_frame(event))

    def _broadcast(self, frame: str | bytes) -> None:
        senders: list[tuple[ServerConnection, threading.Thread]] = []
        for connection in self._recorder.open_connections():
            ws = connection.transport
            with self._cond:
                member = self._members.get(ws)
            if member is not None:
                member.put(frame)  # never blocks
                continue
            sender = threading.Thread(
                target=self._send_pushed, args=(ws, frame), name="realtime_sync-local-server-push"
            )
            sender.daemon = True
            sender.start()
            senders.append((ws, sender))
        # In parallel: one client that stopped reading costs every other one nothing.
        deadline = time.monotonic() + CUT_AFTER
        for ws, sender in senders:
            sender.join(max(0.0, deadline - time.monotonic()))
            if sender.is_alive():
                _log.warning(
                    "local realtime server: cutting a connection that stopped reading "
                    "(a pushed event waited %.0f s)",
                    CUT_AFTER,
                )
                self._cut(ws)  # also ends the sender's send
                sender.join(CUT_AFTER)

    @staticmethod
    def _send_pushed(ws: ServerConnection, frame: str | bytes) -> None:
        with contextlib.suppress(ConnectionClosed):  # closed meanwhile
            ws.send(frame)

    def drop_connections(self) -> None:
        """Cut every open connection's TCP stream without a close frame."""
        for connection in self._recorder.open_connections():
            self._cut(connection.transport)

    @staticmethod
    def _cut(ws: ServerConnection) -> None:
        with contextlib.suppress(OSError):  # already gone
            ws.socket.shutdown(socket.SHUT_RDWR)

    def close_connections(self, code: int = 1000, reason: str = "") -> None:
        """Start a closing handshake with ``code`` and ``reason`` on every open connection.

        Returns at once; the handshakes finish in the background (bounded by a short
        timeout when a client does not answer, or stopped reading: then it is cut).
        """
        check_close(code, reason)
        for connection in self._recorder.open_connections():
            self._close_in_background(connection.transport, code, reason)

    def _close_in_background(self, ws: ServerConnection, code: int, reason: str) -> None:
        # A send blocked on a peer that stopped reading holds the connection's lock, so
        # close() would wait for it for good; like a real server giving up on a closing
        # handshake, cut the connection when the close has not ended in time.
        watchdog = threading.Timer(CUT_AFTER, self._cut, (ws,))
        watchdog.daemon = True

        def run() -> None:
            try:
                with contextlib.suppress(ConnectionClosed):  # the client left first
                    ws.close(code, reason)
            finally:
                watchdog.cancel()

        closer = threading.Thread(target=run, name="realtime_sync-local-server-close", daemon=True)
        with self._cond:
            self._closers += [closer, watchdog]
        watchdog.start()
        closer.start()

    def _end_call(self, call_id: str) -> None:
        """End a call that was hung up: its session, and every connection that joined it
        (1000, ``call ended``): a join after the events queued for it."""
        self._call_sessions.end(call_id, *CALL_ENDED)
        with self._cond:
            members = set(self._members)
        for connection in self._recorder.open_connections():
            ws = connection.transport
            if connection.admission.call_id == call_id and ws not in members:
                self._close_in_background(ws, *CALL_ENDED)  # not a join (playback, refusal)

    def answer_pings(self, enabled: bool) -> None:
        """Answer client pings (``True``, the default) or silently ignore them (``False``).

        Applies at once to open and future connections; the connections stay up and keep
        exchanging events.
        """
        if enabled:
            self._pongs.set()
        else:
            self._pongs.clear()
