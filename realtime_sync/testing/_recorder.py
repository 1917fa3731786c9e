"""What a test sees of a local server, whatever the transport.

A :class:`Recorder` keeps, under one condition lock, every connection's handshake,
received client events and session simulator. The socket server uses one; the in-process
transport another, and both offer the same observation API through
:class:`~._faults.ServerControls` (:attr:`~Recorder.received`,
:meth:`~Recorder.wait_for_received`, ...). The faults a test injects are in
:mod:`._faults`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Generic, TypeVar

import attrs

from .._endpoints import Dialect
from .._secrets import register_secret
from ._admission import (
    Admission,
    AdmissionSettings,
    AuthMethod,
    admit,
    mask_headers,
    mask_query,
    mask_subprotocols,
    split_target,
)
from ._catalogue import JsonObject
from ._simulator import SessionSimulator

__all__ = ["Connection", "ConnectionRecord", "Recorder"]


def _masked_headers_repr(values: Mapping[str, str]) -> str:
    return repr(mask_headers(values))


def _masked_query_repr(values: Mapping[str, str]) -> str:
    return repr(mask_query(values))


def _masked_list_repr(values: Sequence[str]) -> str:
    return repr(mask_subprotocols(values))


@attrs.frozen
class ConnectionRecord:
    """What one WebSocket handshake looked like and what followed, at snapshot time.

    :attr:`LocalRealtimeServer.connections` builds these; every field is a fresh copy that
    later traffic does not change (the event dicts in :attr:`received` are shared: treat them
    as read-only). ``repr()`` masks credentials; the fields hold them as received.
    """

    path: str
    """Request path without the query string, e.g. ``"/v1/realtime"``."""
    query: dict[str, str] = attrs.field(repr=_masked_query_repr)
    """Query parameters (the last value wins when a name repeats)."""
    headers: dict[str, str] = attrs.field(repr=_masked_headers_repr)
    """Request headers with lower-case names; repeated headers are joined with ``", "``."""
    subprotocols: list[str] = attrs.field(repr=_masked_list_repr)
    """Subprotocols the client offered, in order."""
    subprotocol: str | None
    """Subprotocol the server selected, or ``None``."""
    auth: AuthMethod | None
    """How the accepted key was presented; with a wrong key, the first method tried;
    ``None`` when the client presented no key."""
    dialect: Dialect
    """``"beta"`` or ``"ga"``, decided from the headers, subprotocols and path."""
    status: int
    """HTTP status of the handshake response: 101 when upgraded, else the rejection's; 0
    while (or when forever) unanswered, as with ``hang_handshakes``."""
    received: list[JsonObject]
    """Client events received on this connection (parsed JSON objects), in order."""
    open: bool
    """Whether the WebSocket connection was open when the snapshot was taken."""
    items: list[JsonObject] = attrs.field(factory=list, repr=False)
    """The server's conversation at snapshot time, in conversation order: deep copies of
    its items as ``conversation.item.retrieve`` would show them (client-chosen ids kept).
    Empty when no session started (a refused, failed or hung handshake)."""
    session: JsonObject = attrs.field(factory=dict, repr=False)
    """The server's session configuration at snapshot time (a deep copy, as the last
    ``session.updated`` showed it); ``{}`` when no session started."""


_T = TypeVar("_T")


@attrs.define(eq=False)
class Connection(Generic[_T]):
    """Bookkeeping of one handshake; guarded by its recorder's lock."""

    transport: _T
    """The transport's own handle of the connection."""
    transport_open: Callable[[], bool]
    """Whether the transport still has the connection open (cheap; called under the lock)."""
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    subprotocols: list[str]
    admission: Admission
    status: int = 0
    received: list[JsonObject] = attrs.Factory(list)
    established: bool = False  # the first server event (or failure) was sent
    hung: bool = False  # the handshake is left unanswered (hang_handshakes)
    simulator: SessionSimulator | None = None  # once the session is being played

    def is_open(self) -> bool:
        """Upgraded and not closed yet."""
        return self.status == 101 and self.transport_open()

    def snapshot(self) -> ConnectionRecord:
        """A :class:`ConnectionRecord` of the connection as it is now."""
        return ConnectionRecord(
            path=self.path,
            query=dict(self.query),
            headers=dict(self.headers),
            subprotocols=list(self.subprotocols),
            subprotocol=self.admission.subprotocol,
            auth=self.admission.auth,
            dialect=self.admission.dialect,
            status=self.status,
            received=list(self.received),
            open=self.is_open(),
        )


def _with_conversation(
    record: ConnectionRecord, simulator: SessionSimulator | None
) -> ConnectionRecord:
    if simulator is None:
        return record
    items, session = simulator.conversation()
    return attrs.evolve(record, items=items, session=session)


class Recorder(Generic[_T]):
    """Connections and received client events of one server."""

    def __init__(self) -> None:
        self.lock = threading.Condition()
        """Guards everything here; transports may guard their own shared state with it."""
        self._connections: list[Connection[_T]] = []
        self._received: list[JsonObject] = []

    # Recording (the transport's threads)

    def add(self, connection: Connection[_T]) -> None:
        """Record a new handshake."""
        with self.lock:
            self._connections.append(connection)

    def set_status(self, connection: Connection[_T], status: int) -> None:
        """Record the HTTP status the handshake was answered with."""
        with self.lock:
            connection.status = status
            self.lock.notify_all()

    def first_send(self, connection: Connection[_T], send: Callable[[], None]) -> None:
        """Send the connection's first event and mark it established, atomically.

        Under the lock, so that a test control called after the client saw this event
        finds the connection, and a pushed event never overtakes it. Established even when
        ``send`` raises: :meth:`wait_for_connections` must not wait for it forever.
        """
        with self.lock:
            try:
                send()
            finally:
                connection.established = True
                self.lock.notify_all()

    def establish(self, connection: Connection[_T]) -> None:
        """Mark the connection established (it will never send a first event)."""
        with self.lock:
            connection.established = True
            self.lock.notify_all()

    def attach(self, connection: Connection[_T], simulator: SessionSimulator) -> None:
        """Record the simulator that plays the connection's session."""
        with self.lock:
            connection.simulator = simulator

    def hang(self, connection: Connection[_T]) -> None:
        """Record that the handshake is left unanswered."""
        with self.lock:
            connection.hung = True

    def record(self, connection: Connection[_T], event: JsonObject) -> None:
        """Record a client event received on ``connection``, before it is answered."""
        with self.lock:
            self._received.append(event)
            connection.received.append(event)
            self.lock.notify_all()

    def open_connections(self) -> list[Connection[_T]]:
        """Connections that got their first event and are still open."""
        with self.lock:
            return [c for c in self._connections if c.established and c.is_open()]

    def handshake(
        self,
        transport: _T,
        transport_open: Callable[[], bool],
        *,
        target: str,
        headers: Mapping[str, str],
        offered: Sequence[str],
        settings: AdmissionSettings,
    ) -> Connection[_T]:
        """Decide and record one upgrade request; every key it presented is registered as
        a secret, so that no later log line shows it, right or wrong."""
        path, query = split_target(target)
        admission = admit(path, query, headers, offered, settings)
        for key in admission.keys:
            register_secret(key)
        connection = Connection(
            transport, transport_open, path, query, dict(headers), list(offered), admission
        )
        self.add(connection)
        return connection

    # Observation (the test's thread)

    @property
    def received(self) -> list[JsonObject]:
        """Every client event received, all connections, in order (a new list)."""
        with self.lock:
            return list(self._received)

    def snapshots(self) -> list[ConnectionRecord]:
        """One :class:`ConnectionRecord` per handshake so far, oldest first."""
        with self.lock:
            taken = [(c.snapshot(), c.simulator) for c in self._connections]
        # The conversations outside this lock: a simulator holds its own lock while it
        # sends, and must never wait for this one meanwhile.
        return [_with_conversation(record, simulator) for record, simulator in taken]

    def wait_for_received(
        self,
        type: str | None,
        count: int,
        predicate: Callable[[JsonObject], bool] | None,
        timeout: float,
    ) -> list[JsonObject]:
        """Block until ``count`` received client events match; return all that match."""
        matches: list[JsonObject] = []
        scanned = 0
        deadline = time.monotonic() + timeout
        with self.lock:
            while True:
                for event in self._received[scanned:]:
                    if (type is None or event.get("type") == type) and (
                        predicate is None or predicate(event)
                    ):
                        matches.append(event)
                scanned = len(self._received)
                if len(matches) >= count:
                    return matches
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    recent = [event.get("type") for event in self._received[-10:]]
                    raise TimeoutError(
                        f"waited {timeout} s for {count} client event(s)"
                        f"{f' of type {type!r}' if type else ''}"
                        f"{' matching the predicate' if predicate else ''}; got {len(matches)} "
                        f"of {scanned} received; last received types: {recent}"
                    )
                self.lock.wait(remaining)

    def wait_for_connections(self, count: int, timeout: float) -> None:
        """Block until ``count`` connections were established."""
        deadline = time.monotonic() + timeout
        with self.lock:
            while (accepted := sum(c.established for c in self._connections)) < count:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(
                        f"waited {timeout} s for {count} accepted connection(s); got {accepted} "
                        f"of {len(self._connections)} handshake(s)"
                    )
                self.lock.wait(remaining)
