"""What a test sees of a local server and what it injects, whatever the transport.

A :class:`Recorder` keeps, under one condition lock, every connection's handshake and
received client events, and the handshake faults a test asked for. The socket server
uses one; an in-process transport can use another and offer the same observation API
(:attr:`~Recorder.received`, :meth:`~Recorder.wait_for_received`, ...).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Generic, TypeVar

import attrs

from .._endpoints import Dialect
from .._secrets import register_secret
from ._admission import (
    Admission,
    AdmissionSettings,
    AuthMethod,
    HttpRefusal,
    OpeningFailure,
    admit,
    mask_headers,
    mask_query,
    mask_subprotocols,
    split_target,
)
from ._catalogue import JsonObject, check_close, close_reason
from ._options import SimulatorOptions

__all__ = ["Connection", "ConnectionRecord", "Recorder", "ServerControls"]


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
    """HTTP status of the handshake response: 101 when upgraded, else the rejection's."""
    received: list[JsonObject]
    """Client events received on this connection (parsed JSON objects), in order."""
    open: bool
    """Whether the WebSocket connection was open when the snapshot was taken."""


_T = TypeVar("_T")
_P = TypeVar("_P", HttpRefusal, OpeningFailure)


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


@attrs.define(eq=False)
class _Fault(Generic[_P]):
    payload: _P
    remaining: int | None  # None: until clear_faults()


def check_times(times: int | None) -> None:
    """Refuse a fault count that is neither ``None`` nor positive."""
    if times is not None and times < 1:
        raise ValueError("times must be at least 1, or None for 'until clear_faults()'")


class Recorder(Generic[_T]):
    """Connections, received client events and injected faults of one server."""

    def __init__(self) -> None:
        self.lock = threading.Condition()
        """Guards everything here; transports may guard their own shared state with it."""
        self._connections: list[Connection[_T]] = []
        self._received: list[JsonObject] = []
        self._reject: _Fault[HttpRefusal] | None = None
        self._fail: _Fault[OpeningFailure] | None = None

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

    # Faults

    def reject(self, refusal: HttpRefusal, times: int | None) -> None:
        """Answer the next ``times`` handshakes (``None``: all) with ``refusal``."""
        check_times(times)
        with self.lock:
            self._reject = _Fault(refusal, times)

    def fail(self, failure: OpeningFailure, times: int | None) -> None:
        """Open the next ``times`` connections (``None``: all) with ``failure``."""
        check_times(times)
        with self.lock:
            self._fail = _Fault(failure, times)

    def clear_faults(self) -> None:
        """Cancel :meth:`reject` and :meth:`fail`."""
        with self.lock:
            self._reject = self._fail = None

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

    def refusal(self, connection: Connection[_T]) -> HttpRefusal | None:
        """The HTTP answer instead of an upgrade: an injected one first, else admission's."""
        outcome = connection.admission.outcome
        return self.take_rejection() or (outcome if isinstance(outcome, HttpRefusal) else None)

    def opening_failure(self, connection: Connection[_T]) -> OpeningFailure | None:
        """The error-then-close instead of a session: an injected one first, else
        admission's."""
        outcome = connection.admission.outcome
        return self.take_failure() or (outcome if isinstance(outcome, OpeningFailure) else None)

    def take_rejection(self) -> HttpRefusal | None:
        """Consume one use of the injected rejection, if any."""
        with self.lock:
            return self._take(self._reject)

    def take_failure(self) -> OpeningFailure | None:
        """Consume one use of the injected opening failure, if any."""
        with self.lock:
            return self._take(self._fail)

    @staticmethod
    def _take(fault: _Fault[_P] | None) -> _P | None:
        if fault is None or fault.remaining == 0:
            return None
        if fault.remaining is not None:
            fault.remaining -= 1
        return fault.payload

    # Observation (the test's thread)

    @property
    def received(self) -> list[JsonObject]:
        """Every client event received, all connections, in order (a new list)."""
        with self.lock:
            return list(self._received)

    def snapshots(self) -> list[ConnectionRecord]:
        """One :class:`ConnectionRecord` per handshake so far, oldest first."""
        with self.lock:
            return [connection.snapshot() for connection in self._connections]

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


class ServerControls:
    """What a test sees of a local server and the faults it injects at the handshake;
    shared by the socket server and the in-process transport, which each keep a
    :class:`Recorder` as ``_recorder``."""

    _recorder: Recorder[Any]
    _settings: AdmissionSettings
    _options: SimulatorOptions

    def _configure(
        self,
        api_key: str | None,
        *,
        models: Iterable[str] | None,
        emulate_beta_shutdown: bool,
        **options: Any,
    ) -> None:
        """Take what both servers are told: whom to let in, and how sessions answer
        (``options`` as for :class:`SimulatorOptions`, which checks them: ValueError)."""
        self._options = SimulatorOptions(**options)
        self._settings = AdmissionSettings(
            api_key=api_key, models=models, emulate_beta_shutdown=emulate_beta_shutdown
        )
        register_secret(api_key)  # from now on no log line shows it

    @property
    def received(self) -> list[JsonObject]:
        """Every client event received (parsed JSON objects), all connections, in order.

        A new list on each access; the events themselves are shared, treat them as
        read-only.
        """
        return self._recorder.received

    @property
    def connections(self) -> list[ConnectionRecord]:
        """One :class:`ConnectionRecord` per handshake answered so far, oldest first."""
        return self._recorder.snapshots()

    def wait_for_received(
        self,
        type: str | None = None,
        *,
        count: int = 1,
        predicate: Callable[[JsonObject], bool] | None = None,
        timeout: float = 5.0,
    ) -> list[JsonObject]:
        """Block until ``count`` received client events match; return all that match.

        An event matches when its ``type`` equals ``type`` (any type if ``None``) and
        ``predicate`` (if given) returns true for it. Raises the builtin
        :exc:`TimeoutError` after ``timeout`` seconds.
        """
        return self._recorder.wait_for_received(type, count, predicate, timeout)

    def wait_for_connections(self, count: int = 1, timeout: float = 5.0) -> None:
        """Block until ``count`` handshakes were accepted and answered with a first event.

        The first event is ``session.created``, or the error before a close; so a
        :meth:`push` after this call reaches the connection after ``session.created``.
        Raises the builtin :exc:`TimeoutError` after ``timeout`` seconds.
        """
        self._recorder.wait_for_connections(count, timeout)

    # Test controls

    def reject_handshake(
        self,
        status: int,
        body: bytes | str | Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        *,
        times: int | None = None,
    ) -> None:
        """Answer the next upgrade requests with HTTP ``status`` instead of 101.

        ``body`` may be bytes, text, or a mapping sent as JSON (default: an OpenAI-style
        JSON error). ``headers`` are added to the response (e.g. ``Retry-After``). Applies
        to the next ``times`` handshakes, or until :meth:`clear_faults` when ``None``.
        Replaces a previous rejection.
        """
        if not 200 <= status <= 599:
            raise ValueError(f"cannot reject a handshake with HTTP status {status}")
        self._recorder.reject(HttpRefusal(status, body, dict(headers or {})), times)

    def fail_after_accept(
        self, code: int, error: Mapping[str, Any], *, times: int | None = None
    ) -> None:
        """Accept the next upgrades, then send an ``error`` event and close with ``code``.

        ``error`` fills the event's ``error`` object (``type``, ``code``, ``message``,
        ``param``); the close reason is ``"<type>.<code>"``, as real servers send (3000 for
        ``invalid_api_key``, 4000 for a bad model). ``times`` works as in
        :meth:`reject_handshake`. Replaces a previous failure.
        """
        check_close(code, close_reason(error))
        payload = {
            "type": "invalid_request_error",
            "code": None,
            "message": "Injected failure.",
            "param": None,
            **error,
            "event_id": None,
        }
        self._recorder.fail(OpeningFailure(code, payload), times)

    def clear_faults(self) -> None:
        """Cancel :meth:`reject_handshake` and :meth:`fail_after_accept`."""
        self._recorder.clear_faults()
