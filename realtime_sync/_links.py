"""The client's connections: opening and closing them, and sending on the current one.

A mixin over the client's wiring. Each connection attempt is a :class:`_Link` (its
:class:`~realtime_sync._session.SessionCore` and its transport connection); ``connect()``
makes the first, the :class:`~realtime_sync._supervisor.Supervisor` the ones that replace
a lost session, and ``send()`` goes to the current one, or to the supervisor's send queue
between two.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Iterator, Mapping
from typing import IO, Any
from urllib.parse import unquote, urlsplit

from attrs import define

from . import audio
from ._dispatch import Dispatcher
from ._endpoints import Handshake, Target
from ._errors import (
    AlreadyConnectedError,
    ConfigurationError,
    InternalError,
    NotConnectedError,
    RealtimeError,
    RealtimeTimeoutError,
    TransportError,
    WouldDeadlockError,
)
from ._http import HttpProxy
from ._json import encode_client_event
from ._models import Model
from ._objects import Session
from ._recording import Recording
from ._resources import input_audio_format
from ._secrets import register_secret
from ._session import SessionCore, SessionState
from ._supervisor import Attempt, Supervisor
from ._transport import Transport, TransportConnection, TransportEnded
from ._websocket import WebSocketTransport

__all__ = ["Links", "make_transport"]

logger = logging.getLogger("realtime_sync")

_LIVE_STATES = frozenset({SessionState.CONNECTING, SessionState.OPEN})


# websocket-client's (SOCKS ones with python-socks installed); None: "http" with a host.
_PROXY_TYPES = (None, "http", "socks4", "socks4a", "socks5", "socks5h")


def make_transport(
    transport: Transport | None,
    *,
    ping_interval: float | None,
    ping_timeout: float | None,
    send_timeout: float | None,
    connect_timeout: float | None,
    sslopt: Mapping[str, Any] | None,
    ca_certs: str | None,
    http_proxy_host: str | None,
    http_proxy_port: int | str | None,
    http_proxy_auth: tuple[str, str] | None,
    http_no_proxy: list[str] | None,
    proxy_type: str | None,
) -> Transport:
    """The clients' constructors: check the connection options; return ``transport``, or
    websocket-client's with them (the proxy settings that were given)."""
    if ping_interval and ping_timeout and ping_interval <= ping_timeout:
        raise ConfigurationError(
            f"ping_interval ({ping_interval}) must be greater than ping_timeout "
            f"({ping_timeout}): a pong has to be due before the next ping goes out"
        )
    if ping_timeout is not None and ping_timeout <= 0:
        raise ConfigurationError("ping_timeout must be positive (or None)")
    if transport is not None:
        return transport
    ssl_options = dict(sslopt or {})
    if ca_certs is not None:
        ssl_options["ca_certs"] = ca_certs
    if proxy_type not in _PROXY_TYPES:
        raise ConfigurationError(
            f"proxy_type must be one of {', '.join(map(repr, _PROXY_TYPES[1:]))}; "
            f"got {proxy_type!r}"
        )
    checked = HttpProxy.given(http_proxy_host, http_proxy_port, http_proxy_auth)
    if checked is not None:
        http_proxy_port, http_proxy_auth = checked.port, checked.auth
        checked.tunnel_headers()  # masks the Basic token websocket-client's trace shows
    else:  # websocket-client takes the variables' proxy, if any
        for name in ("http_proxy", "https_proxy"):
            _mask_proxy_variable(os.environ.get(name, os.environ.get(name.upper())))
    proxy = {
        "http_proxy_host": http_proxy_host,
        "http_proxy_port": http_proxy_port,
        "http_proxy_auth": http_proxy_auth,
        "http_no_proxy": http_no_proxy,
        # websocket-client refuses a proxy host without a type; "http" is its documented
        # default, which run_forever does not apply.
        "proxy_type": proxy_type or ("http" if http_proxy_host else None),
    }
    return WebSocketTransport(
        ping_interval=ping_interval,
        ping_timeout=ping_timeout,
        send_timeout=send_timeout,
        connect_timeout=connect_timeout,
        sslopt=ssl_options,
        proxy={name: value for name, value in proxy.items() if value is not None},
    )


def _mask_proxy_variable(value: str | None) -> None:
    """Mask the password in a proxy variable's URL, read as websocket-client reads it
    (whatever its scheme), and the Basic token of it its trace shows."""
    if not value:
        return
    try:
        parts = urlsplit(value.replace(" ", ""))
    except ValueError:  # not a URL: websocket-client fails on it
        return
    if parts.password:
        auth = (unquote(parts.username or ""), unquote(parts.password))
        register_secret(auth[1])
        HttpProxy(parts.hostname or "", 0, auth).tunnel_headers()


@define(eq=False)
class _Link:
    """One connection attempt: its state core and its transport connection."""

    core: SessionCore
    connection: TransportConnection


class Links:
    """Connection lifecycle and sending (see the module description)."""

    _target: Target
    _transport: Transport
    _dispatcher: Dispatcher
    _supervisor: Supervisor
    _recording: Recording | None
    _connect_timeout: float
    _close_timeout: float
    _name: str
    _event_id_prefix: str
    _event_ids: Iterator[int]

    @property
    def url(self) -> str:
        """The endpoint URL with any credential masked."""
        return self._target.display_url

    @property
    def connected(self) -> bool:
        """True while a session is open (after ``session.created``, before the close)."""
        link = self._link
        return (
            link is not None
            and link.core.state is SessionState.OPEN
            and not link.connection.finished
        )

    @property
    def backlog(self) -> tuple[int, float]:
        """``(items waiting, seconds the last dispatched one had waited)``: how far
        dispatching runs behind the socket (a burst of frames counts as one item)."""
        return self._dispatcher.backlog, self._dispatcher.lag

    @property
    def state(self) -> SessionState | None:
        """Where the current connection is in its life; None before the first ``connect()``."""
        link = self._link
        if self._supervisor.reconnecting:
            return SessionState.RECONNECTING
        return None if link is None else link.core.state

    def _init_links(self) -> None:
        self._lock = threading.Lock()
        self._link: _Link | None = None
        self._link_numbers = iter(range(1, 1 << 62))
        # Carries the final client.closed of a close() between two connections.
        self._closing: SessionCore | None = None

    @property
    def _session(self) -> Session | None:
        """The current connection's session, None before ``session.created``."""
        link = self._link
        return None if link is None else link.core.session

    # --- lifecycle --------------------------------------------------------------------------

    def connect(self, timeout: float | None = None) -> Session:
        """Open a session; block until ``session.created`` and its handlers ran; return it.

        Raises :class:`~realtime_sync.AuthenticationError`,
        :class:`~realtime_sync.RateLimitError` and the other :class:`APIError` classes when
        the server refuses, :class:`TransportError` when the network does,
        :class:`RealtimeTimeoutError` when no session starts within ``timeout`` seconds
        (default: the client's ``connect_timeout``), :class:`AlreadyConnectedError` when a
        session is open, opening or being replaced after a loss, :class:`ClientClosed`
        when ``close()`` interrupts it, and :class:`WouldDeadlockError` from a handler
        (whose thread would have to deliver ``session.created``: connect from another
        thread). The first connection is not retried: a refusal is raised here; once a
        session has started, losses are handled by the reconnect policy.
        """
        if self._dispatcher.on_dispatcher_thread():
            raise WouldDeadlockError(
                "connect() from an event handler: handlers run on the dispatcher thread, "
                "which is the thread that would deliver session.created. Connect from another "
                "thread (for instance one started by the handler)."
            )
        timeout = self._connect_timeout if timeout is None else timeout
        deadline = time.monotonic() + timeout
        dispatcher = self._dispatcher
        closing = self._closing
        if closing is not None:  # a close() between two connections: its end comes first
            dispatcher.wait_detached(closing, deadline - time.monotonic())
        if self._supervisor.reconnecting:
            raise AlreadyConnectedError(
                "the client is reconnecting after a lost connection; wait for "
                "client.reconnected, or call close() before connecting again"
            )
        previous = self._link
        if previous is not None and (previous.connection.finished or previous.core.close_requested):
            if not previous.connection.finished:
                # Being closed or given up on, but its transport has not ended: stuck in TCP
                # connect or TLS, or a close() still waiting for the peer. Report its end
                # ourselves: its client.closed comes now, in order, and what it delivers
                # later is dropped.
                dispatcher.submit(
                    previous.core,
                    TransportEnded(
                        "dropped",
                        opened=previous.connection.opened,
                        detail="replaced by a new connection",
                    ),
                )
            # Let its last events and their handlers run before the new connection exists,
            # so that nothing they do (a close(), say) can reach the new one.
            if not dispatcher.wait_detached(previous.core, deadline - time.monotonic()):
                raise RealtimeTimeoutError(
                    f"could not start a session within {timeout} s: the handlers of the "
                    "previous connection's last events are still running"
                )
        handshake = self._target.handshake()  # a token provider may take its time: no lock
        with self._lock:
            previous = self._link
            if previous is not None and (
                (previous.core.state in _LIVE_STATES and not previous.connection.finished)
                or self._supervisor.reconnecting
            ):
                raise AlreadyConnectedError(
                    "already connected (or connecting); call close() before connecting again"
                )
            self._supervisor.start()
            link = self._new_link(handshake)
        core, connection = link.core, link.connection
        # Registered before the connection starts: however fast the server, it is caught.
        created = dispatcher.expect("session.created", None)
        failure = self._start_link(link)
        if failure is not None:
            self._supervisor.stop()
            dispatcher.wait_detached(core, deadline - time.monotonic())
            raise failure
        started = time.monotonic()
        try:
            event = created.wait(deadline - time.monotonic())
        except RealtimeTimeoutError:
            # Out of time: cut the connection and let its threads end on their own.
            stage = (
                "the server accepted the WebSocket but sent no session.created"
                if connection.opened
                else "the WebSocket upgrade did not complete"
            )
            error = RealtimeTimeoutError(
                f"could not start a session at {core.display_url} within {timeout} s: {stage}"
            )
            self._supervisor.stop()
            core.abandon(error)
            connection.abort()
            raise error from None
        except RealtimeError:
            self._supervisor.stop()
            self._wind_down(link, self._close_timeout)
            raise
        logger.info("session started in %.0f ms", (time.monotonic() - started) * 1000)
        session: Session = event.session
        return session

    def _new_link(self, handshake: Handshake) -> _Link:
        """A new connection, attached to the dispatcher but not started (lock held)."""
        core = SessionCore(handshake.display_url)
        name = f"{self._name}.{next(self._link_numbers)}-socket"
        sink = self._dispatcher.sink(core)
        connection = self._transport.open(handshake, on_frame=sink, on_end=sink, name=name)
        link = self._link = _Link(core, connection)
        logger.info("connecting to %s (%s dialect)", core.display_url, self._target.dialect)
        self._dispatcher.attach(core)
        return link

    def _start_link(self, link: _Link) -> BaseException | None:
        """Start the connection; what the transport raised if it failed to (its end is
        then queued)."""
        try:
            link.connection.start()
        except BaseException as exc:  # the transport failed to start: report its end
            self._dispatcher.submit(
                link.core, TransportEnded("unreachable", opened=False, detail=str(exc), cause=exc)
            )
            return exc
        return None

    def _open_link(self, attempt: Attempt) -> None:
        """For the supervisor: prepare and start a reconnect attempt's connection, unless
        close() came first or the attempt was given up while it was being prepared."""
        handshake: Handshake | None = None
        try:
            handshake = self._target.handshake()  # may call a token provider: no lock
        except BaseException as exc:  # the provider failed: this attempt failed
            failure: BaseException = exc
        with self._lock:
            if not self._supervisor.claim(attempt, giving_up=False):
                return
            if handshake is None:
                attempt.core = self._failed_attempt(
                    f"reconnect attempt {attempt.number} could not be prepared: {failure}",
                    failure,
                )
                return
            link = self._new_link(handshake)
            attempt.core = link.core
        self._start_link(link)

    def _give_up_attempt(self, attempt: Attempt, error: Exception) -> None:
        """For the supervisor: an attempt had no session within the connect timeout."""
        with self._lock:
            preparing = self._supervisor.claim(attempt, giving_up=True)
            core = attempt.core
        if preparing:  # its token provider has not returned: the next attempt calls it anew
            self._failed_attempt(f"{error} (its token provider did not return)", None)
        elif core is not None and not core.started and not core.closed:
            self._abandon_link(core, error, polite=False)

    def _failed_attempt(self, detail: str, cause: BaseException | None) -> SessionCore:
        """A connection that never was, reported as unreachable: the attempt failed."""
        return self._ended_unopened(
            TransportEnded("unreachable", opened=False, detail=detail, cause=cause)
        )

    def _ended_unopened(self, ended: TransportEnded, *, requested: bool = False) -> SessionCore:
        """A core for a connection that never opened, whose end is reported at once: the
        dispatcher turns it into a closing event like any other."""
        core = SessionCore(self._target.display_url)
        if requested:
            core.request_close()
        self._dispatcher.attach(core)
        self._dispatcher.submit(core, ended)
        return core

    def _abandon_link(self, core: SessionCore, error: Exception, *, polite: bool) -> None:
        """For the supervisor: end a connection for a reason of ours (a rollover, a timed
        out attempt); its closing event carries ``error``."""
        link = self._link
        if link is None or link.core is not core:
            return
        core.abandon(error)
        if polite:  # a close frame, without holding the caller up
            threading.Thread(
                target=link.connection.close,
                args=(self._close_timeout,),
                name=f"{self._name}-rollover-close",
                daemon=True,
            ).start()
        else:
            link.connection.abort()

    def close(self, timeout: float | None = None) -> None:
        """End the session and stop the threads; idempotent, callable from any thread
        (a handler included); returns within ``timeout`` seconds (default: the client's
        ``close_timeout``). Events already received are still dispatched; waits still
        pending then raise :class:`~realtime_sync.ClientClosed`. Stops reconnecting too.
        """
        timeout = self._close_timeout if timeout is None else timeout
        deadline = time.monotonic() + timeout
        with self._lock:  # no new connection after this
            outage = self._supervisor.stop()
            link = self._link
        if link is None:
            return
        self._wind_down(link, timeout)
        if outage and link.core.closed and self._supervisor.reconnecting:
            # Between two connections: the last one's end was reported as a reconnect, and
            # no other end is coming, so the final client.closed comes from here.
            core = self._closing = self._ended_unopened(
                TransportEnded("closed", opened=False), requested=True
            )
            if not self._dispatcher.on_dispatcher_thread():
                self._dispatcher.wait_detached(core, deadline - time.monotonic())

    def _wind_down(self, link: _Link, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        link.core.request_close()
        if not link.connection.close(timeout):
            logger.warning(
                "the socket thread of %s did not stop within %s s; it is a daemon and will "
                "end when the operating system gives up on the connection",
                link.core.display_url,
                timeout,
            )
        if not self._dispatcher.on_dispatcher_thread():
            self._dispatcher.wait_detached(link.core, deadline - time.monotonic())

    def _dispatcher_failed(self, error: InternalError) -> None:
        """The dispatcher thread failed and closed the session: cut the connection too."""
        self._supervisor.abort()
        link = self._link
        if link is not None:
            link.connection.abort()

    # --- sending ----------------------------------------------------------------------------

    def send(self, event: Mapping[str, Any] | Model) -> str:
        """Send one client event; return its ``event_id`` (generated when absent).

        Thread-safe. The event is checked first: anything that is not valid JSON for the
        wire raises :class:`InvalidEventError` naming the offending field, and nothing is
        sent. While the client reconnects, the event is queued and sent, in order, once the
        new session has been brought back (:class:`SendQueueFullError` when the queue is
        full; audio follows the policy's ``gap_audio``). Raises :class:`NotConnectedError`
        when no connection is open and none is coming, rather than dropping the event, and
        :class:`TransportError` when the socket fails mid-send.
        """
        event_id, data, event = self._encode(event)
        supervisor = self._supervisor
        gap = supervisor.gap
        while True:
            link = self._link
            with gap.lock:
                if gap.holding:
                    gap.offer(event_id, data, self._audio_ms(event))
                    self._record_sent(event, event_id)
                    break
            if link is not None and link.connection.opened and not link.core.close_requested:
                self._record_sent(event, event_id)
                try:
                    link.connection.send(data)
                    break
                except (NotConnectedError, TransportError):
                    if not supervisor.may_queue():
                        raise
            elif not supervisor.may_queue():
                raise NotConnectedError(
                    f"not connected: call connect() before sending {event['type']!r}"
                )
            with gap.lock:
                # The connection is gone and a new one will come: queue it, unless the new
                # one came meanwhile (then send there).
                if self._link is link and supervisor.may_queue():
                    gap.hold()
                    gap.offer(event_id, data, self._audio_ms(event))
                    break
        supervisor.sent(event)
        return event_id

    def _encode(self, event: Mapping[str, Any] | Model) -> tuple[str, bytes, Mapping[str, Any]]:
        if isinstance(event, Model):
            event = event.to_dict()
        # A plain dict first: isinstance against an ABC costs ten times as much per send.
        event_id = (
            event.get("event_id") if type(event) is dict or isinstance(event, Mapping) else None
        )
        if not event_id:
            event_id = f"{self._event_id_prefix}{next(self._event_ids)}"
        data = encode_client_event(event, event_id=event_id)  # checks it all; nothing sent yet
        return str(event_id), data, event

    def _audio_ms(self, event: Mapping[str, Any]) -> float | None:
        """The duration of an ``input_audio_buffer.append`` (None for other events)."""
        if event.get("type") != "input_audio_buffer.append":
            return None
        fmt = input_audio_format(self._session)
        encoded = event.get("audio")
        if not isinstance(encoded, str):
            return 0.0
        size = len(encoded) * 3 // 4 - encoded.count("=", -2)  # base64's decoded length
        return size / (audio.format_rate(fmt) * audio.format_sample_width(fmt) / 1000)

    # --- recording ---------------------------------------------------------------------------

    def record(self, target: str | os.PathLike[str] | IO[str], *, audio: bool = False) -> Recording:
        """Record every event sent and received from now on, as JSON lines with times, to
        a file path or text stream; audio payloads are elided unless ``audio=True``, and
        the API key is never written. Returns the :class:`Recording` (``close()`` it, or
        use it in a ``with``); a new recording replaces the previous one."""
        previous, self._recording = self._recording, Recording(target, audio=audio)
        if previous is not None:
            previous.close()
        return self._recording

    def _record_received(self, event: Any) -> Any:
        """A dispatcher reducer: received events go to the recording."""
        recording = self._recording
        if recording is not None and not recording.closed:
            recording.received(event)
        return event

    def _record_sent(self, event: Mapping[str, Any], event_id: str) -> None:
        recording = self._recording
        if recording is not None:  # before the send: a request precedes its answer
            recording.sent({**event, "event_id": event_id})

    def _send_now(self, event: Mapping[str, Any]) -> str:
        """For the supervisor: send on the current connection, past the send queue."""
        event_id, data, event = self._encode(event)
        self._record_sent(event, event_id)
        self._send_data(data)
        return event_id

    def _send_data(self, data: bytes) -> None:
        link = self._link
        if link is None:
            raise NotConnectedError("no connection")
        link.connection.send(data)
