"""A real WebSocket server on loopback that speaks the OpenAI Realtime protocol.

:class:`LocalRealtimeServer` runs ``websockets``' threaded server in a daemon thread and
answers like api.openai.com (GA dialect) or a beta-dialect endpoint (Azure's legacy
``api-version`` path, or any connection that sends ``OpenAI-Beta: realtime=v1``). This
module is only the socket shell: :mod:`._admission` decides each handshake,
:mod:`._simulator` plays each session (:mod:`._shared_sessions` one per call, for all of
its joins), :mod:`._catalogue` holds the protocol data,
:mod:`._recorder` what a test observes and :mod:`._faults` the faults it injects. Here are
the threads, TLS, and the faults that need a socket (hung handshakes, a half-open peer's
silence; the connection class is in :mod:`._server_connection`, the controls that act on
open sockets, such as pushes, drops, closes and hangups, in :mod:`._socket_controls`).
"""

from __future__ import annotations

import contextlib
import functools
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterable, Sequence

import attrs

try:
    from websockets.exceptions import ConnectionClosed
    from websockets.http11 import Request, Response
    from websockets.protocol import State
    from websockets.sync.server import Server, ServerConnection, serve
    from websockets.typing import Subprotocol
except ImportError as exc:  # pragma: no cover - depends on the installed extras
    raise ImportError(
        "realtime_sync.testing needs the optional 'websockets' package (>= 13): "
        "pip install realtime_sync[server]"
    ) from exc

from .._endpoints import Dialect
from ._admission import AuthMethod, HttpRefusal, lower_headers, split_subprotocols
from ._calls import LocalCalls, apply_preset
from ._catalogue import KNOWN_MODELS
from ._http_server import HttpSide
from ._logs import server_log as _log
from ._logs import wire_log as _wire_log
from ._playback import PlaybackSource, as_playback, play
from ._recorder import Connection, ConnectionRecord, Recorder
from ._script import Script
from ._server_connection import connection_class, http_response
from ._shared_sessions import CallSessions, Endpoint, Member
from ._simulator import SessionSimulator
from ._socket_controls import CALL_ENDED, CLOSE_TIMEOUT, SocketControls
from ._translation import simulator_class

__all__ = ["AuthMethod", "ConnectionRecord", "Dialect", "LocalRealtimeServer"]

_OPEN_TIMEOUT = 5.0  # seconds a client has to send its upgrade request
_JOIN_TIMEOUT = 5.0  # seconds stop() waits for each group of threads
_MAX_MESSAGE = 32 * 2**20  # a 15 MiB audio append is about 20 MiB once base64-encoded
_MAX_QUEUE = 256  # frames buffered per connection before websockets stops reading


class LocalRealtimeServer(SocketControls):
    """A local OpenAI Realtime server for tests, on a real loopback WebSocket.

    Use it as a context manager (or call :meth:`start` / :meth:`stop`)::

        with LocalRealtimeServer(api_key="sk-test", reply="Hi!") as server:
            ...  # connect a client to f"{server.url}?model=gpt-realtime" with key "sk-test"
            server.wait_for_received("response.create")

    Endpoints: ``/v1/realtime?model=...`` (OpenAI), ``/openai/v1/realtime?model=...``
    (Azure GA) and ``/openai/realtime?api-version=...&deployment=...`` (Azure legacy,
    beta dialect); anything else gets HTTP 404. A wrong or missing key gets an ``error``
    (``invalid_api_key``) and close code 3000; a missing query parameter or a ``model`` not
    in ``models`` gets an ``error`` and close code 4000, as real servers answer. Every
    other connection starts with ``session.created`` and is answered as the
    :mod:`realtime_sync.testing` documentation describes: every client event type of both
    dialects; text, spoken and function call responses streamed on a response thread of
    the connection (``delta_interval`` seconds before each delta, spoken audio paced by
    ``audio_pacing``), while the connection goes on reading and answering client events in
    arrival order.

    Every connection that joins one call (``?call_id=``) plays the call's one session
    (:mod:`._shared_sessions`): one conversation, configuration and response state; each
    join gets its own ``session.created``, every event of the session goes to every join,
    and an ``error`` answering a client event only to the join that sent it. The session
    outlives its joins until the call is hung up. A join that stops reading is cut once
    16 MiB of events wait for it; it delays no other join. Pushed events and the hangup's
    close reach a join after the events queued for it.

    With ``ssl_context`` it serves TLS: :attr:`url` is ``wss://...`` and
    :attr:`azure_endpoint` ``https://...``.

    Test controls (:meth:`reject_handshake`, :meth:`fail_after_accept`,
    :meth:`hang_handshakes`, :meth:`push`, :meth:`storm_errors`, :meth:`drop_connections`,
    :meth:`drop_during_response`, :meth:`close_connections`, :meth:`expire_sessions`,
    :meth:`answer_pings`, :meth:`half_open`, :meth:`clear_faults`) are thread-safe. The
    ``reply`` callable runs on the connection's handler thread when the ``response.create``
    arrives; it must not call :meth:`stop`. If it raises, the client gets a
    ``server_error`` event instead of a response. A connection's response thread ends with
    the connection; :meth:`stop` joins it.
    """

    def __init__(
        self,
        api_key: str | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        reply: str | Callable[[str], str] | None = None,
        delta_chunks: int = 4,
        delta_interval: float = 0.0,
        emulate_beta_shutdown: bool = False,
        session_lifetime: float | None = None,
        models: Iterable[str] | None = KNOWN_MODELS,
        audio_pacing: float | None = None,
        transcribe: Callable[[bytes], str] | None = None,
        late_transcripts: bool = False,
        ssl_context: ssl.SSLContext | None = None,
        playback: PlaybackSource | None = None,
    ) -> None:
        """Configure the server; nothing listens until :meth:`start`.

        Args:
            api_key: The key clients must present; ``None`` accepts any non-empty key,
                but some key is still required.
            host: Interface to listen on.
            port: TCP port; 0 picks a free one.
            reply: The answer text of every response: a fixed string, or a callable that
                receives the last user text of the conversation ("" when there is none).
                By default the server answers ``"You said: <text>"``, or a greeting.
            delta_chunks: How many text delta events a response streams (fewer when the
                text is shorter than that many characters; at least one).
            delta_interval: Seconds the response thread waits before each delta (text,
                audio or function call arguments; 0, the default, streams as fast as the
                socket allows). Set it, e.g. to 0.05, to act while a response is in
                progress: send ``response.cancel`` or a second ``response.create`` after
                the first delta arrives.
            emulate_beta_shutdown: Answer beta-dialect connections on ``/v1/realtime``
                with the ``beta_api_shape_disabled`` error and close code 4000, as
                api.openai.com does since May 2026.
            session_lifetime: If set, each session ends after that many seconds with a
                ``session_expired`` error and close code 1001.
            models: The models ``/v1/realtime`` serves; any other ``model`` gets a
                ``model_not_found`` error and close code 4000, as real servers answer.
                Default: :data:`KNOWN_MODELS` (the realtime models of the official
                ``openai`` package and the client's defaults). ``None`` accepts any name.
                Azure paths accept any deployment name.
            audio_pacing: Speed of spoken answers' audio deltas relative to real time:
                ``None`` or 0 (the default) as fast as possible, 1.0 each 100 ms delta
                when the audio before it has played, 2.0 twice as fast.
            transcribe: What the server hears in committed input audio: called with the
                buffer's bytes (in the session's input format). By default the server
                reads back its own synthesised speech (:func:`synthesize_speech`), and
                hears ``"(<n> ms of audio)"`` in anything else.
            late_transcripts: Send input audio transcriptions only once a response is in
                progress (right after its ``response.created``), as real servers often
                do; by default they follow the committed item at once.
            ssl_context: Serve TLS with this server-side context (holding the server's
                certificate chain and key, e.g. from ``trustme``); clients connect to
                ``wss://`` and must trust its CA. ``None``: plain ``ws://``.
            playback: Play this recording (a :class:`Playback`, or a file at its recorded
                pace) to every connection instead of simulating sessions (:mod:`._playback`).
        """
        self.script = Script(self)
        """The answers the simulated model gives, declared by the test (see :class:`Script`)."""
        self._configure(
            api_key,
            models=models,
            emulate_beta_shutdown=emulate_beta_shutdown,
            reply=reply,
            delta_chunks=delta_chunks,
            delta_interval=delta_interval,
            session_lifetime=session_lifetime,
            audio_pacing=audio_pacing,
            transcribe=transcribe,
            late_transcripts=late_transcripts,
            script=self.script,
        )
        self._host = host
        self._port = port
        self._ssl = ssl_context
        self.calls = LocalCalls(api_key, models, self._end_call)
        """Incoming calls, ephemeral keys and the HTTP API's controls (:class:`LocalCalls`)."""
        self._settings = attrs.evolve(self._settings, directory=self.calls)
        self._http = HttpSide(self.calls, host, ssl_context)  # its own port: REST endpoints
        self._playback = as_playback(playback)
        self._call_sessions = CallSessions(
            live=lambda call_id: self.calls.call_session(call_id) is not None,
            lifetime=self._options.session_lifetime,
            register_thread=self._register_worker,
        )

        self._recorder: Recorder[ServerConnection] = Recorder()
        # The recorder's condition guards every piece of shared state below too.
        self._cond = self._recorder.lock
        self._states: dict[ServerConnection, Connection[ServerConnection]] = {}
        self._tracked: list[tuple[ServerConnection, threading.Thread]] = []
        self._closers: list[threading.Thread] = []
        self._workers: list[threading.Thread] = []  # response threads
        self._members: dict[ServerConnection, Member] = {}  # the call joins
        self._pongs = threading.Event()
        self._pongs.set()
        self._server: Server | None = None
        self._serve_thread: threading.Thread | None = None
        self._bound_port: int | None = None
        self._stopped = False

    # Lifecycle

    def start(self) -> LocalRealtimeServer:
        """Bind the socket and serve in a daemon thread; return ``self``."""
        with self._cond:
            if self._server is not None or self._stopped:
                raise RuntimeError("a LocalRealtimeServer can be started only once")
            self._server = serve(
                self._handle,
                self._host,
                self._port,
                compression=None,  # deflate only costs CPU on loopback and hides frame sizes
                process_request=self._process_request,
                process_response=self._process_response,
                select_subprotocol=self._select_subprotocol,
                create_connection=connection_class(self._pongs, self._faults.silent, self._track),
                open_timeout=_OPEN_TIMEOUT,
                close_timeout=CLOSE_TIMEOUT,
                max_size=_MAX_MESSAGE,
                max_queue=_MAX_QUEUE,
                # Pings every 20 s, but no close for a missing pong: a half-open emulation
                # (whose pings never go out) must not end itself.
                ping_timeout=None,
                logger=_wire_log,
                ssl=self._ssl,
            )
            self._bound_port = self._server.socket.getsockname()[1]
            self._serve_thread = threading.Thread(
                target=self._server.serve_forever,
                name="realtime_sync-local-server",
                daemon=True,
            )
            self._serve_thread.start()
            self._http.start()
        _log.info("local realtime server listening on %s", self.azure_endpoint)
        return self

    def stop(self) -> None:
        """Close every connection (code 1001), stop listening and join all threads.

        Idempotent. Takes at most a few seconds even when clients don't answer the
        closing handshake.
        """
        with self._cond:
            server, serve_thread = self._server, self._serve_thread
            if server is None or self._stopped:
                return
            self._stopped = True
            hung = [ws for ws, connection in self._states.items() if connection.hung]
        self._halted.set()
        self._http.stop()
        for ws in hung:  # their handshakes wait for the socket to end
            self._cut(ws)
        deadline = time.monotonic() + CLOSE_TIMEOUT + 0.5
        # Close open connections here rather than in websockets' shutdown(), which sleeps
        # 0.1 s at a time while connection threads wind down: that adds up over a suite.
        with self._cond:
            tracked = list(self._tracked)
        closers = [
            threading.Thread(target=ws.close, args=(1001,), name="realtime_sync-local-server-close")
            for ws, _ in tracked
            if ws.state is State.OPEN
        ]
        for closer in closers:
            closer.start()
        self._call_sessions.end_all()
        for thread in closers + [
            thread
            for ws, thread in tracked
            if ws.state is not State.CONNECTING and thread is not threading.current_thread()
        ]:
            thread.join(max(0.0, deadline - time.monotonic()))
        # shutdown() can block on a connection whose peer stopped reading; run it aside
        # and cut the sockets if it overstays.
        stopper = threading.Thread(
            target=server.shutdown, name="realtime_sync-local-server-stop", daemon=True
        )
        stopper.start()
        stopper.join(max(0.5, deadline + 0.5 - time.monotonic()))
        if stopper.is_alive():
            _log.warning("local realtime server: closing handshakes overran; aborting sockets")
            with self._cond:
                sockets = [ws.socket for ws, _ in self._tracked]
            for sock in sockets:
                with contextlib.suppress(OSError):  # already closed
                    sock.shutdown(socket.SHUT_RDWR)
            stopper.join(_JOIN_TIMEOUT)
            closers = [closer for closer in closers if closer.is_alive()]
        if serve_thread is not None:
            serve_thread.join(_JOIN_TIMEOUT)
        with self._cond:
            threads = [thread for _, thread in self._tracked] + self._closers + closers
            threads += self._workers
            for ws, _ in self._tracked:
                threads.append(ws.recv_events_thread)
                if ws.keepalive_thread is not None:
                    threads.append(ws.keepalive_thread)
        deadline = time.monotonic() + _JOIN_TIMEOUT
        for thread in threads:
            if thread is not threading.current_thread():
                thread.join(max(0.0, deadline - time.monotonic()))
        _log.info("local realtime server stopped")

    def __enter__(self) -> LocalRealtimeServer:
        """Start the server."""
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        """Stop the server."""
        self.stop()

    # Addresses

    @property
    def url(self) -> str:
        """``ws://<host>:<port>/v1/realtime`` (``wss://`` with TLS), without a query
        (clients add ``?model=``)."""
        return f"{'wss' if self._ssl else 'ws'}://{self._netloc()}/v1/realtime"

    @property
    def azure_endpoint(self) -> str:
        """``http://<host>:<port>`` (``https://`` with TLS), the base an Azure-style
        client builds its URL on."""
        return f"{'https' if self._ssl else 'http'}://{self._netloc()}"

    @property
    def http_base_url(self) -> str:
        """``http://<host>:<port>/v1`` (``https://`` with TLS): the REST endpoints (call
        control, client secrets; Azure's under ``/openai/v1`` on the same port), for
        ``RealtimeAPI(base_url=...)`` or ``openai.OpenAI(base_url=...)``."""
        return self._http.base_url

    def _netloc(self) -> str:
        if self._bound_port is None:
            raise RuntimeError("the server is not started; call start() first")
        host = f"[{self._host}]" if ":" in self._host else self._host
        return f"{host}:{self._bound_port}"

    # Internals: handshake (runs on the connection's thread)

    def _track(self, ws: ServerConnection) -> None:
        with self._cond:
            self._tracked.append((ws, threading.current_thread()))

    def _register_worker(self, thread: threading.Thread) -> None:
        with self._cond:
            self._workers.append(thread)

    def _process_request(self, ws: ServerConnection, request: Request) -> Response | None:
        with self._cond:  # _handle() finds the connection by its socket
            connection = self._states[ws] = self._recorder.handshake(
                ws,
                lambda: ws.state is State.OPEN,
                target=request.path,
                headers=lower_headers(request.headers.raw_items()),
                offered=split_subprotocols(request.headers.get_all("Sec-WebSocket-Protocol")),
                settings=self._settings,
            )
        if self._faults.take_hang():
            self._hang(ws, connection)
            return http_response(HttpRefusal(503, None))  # never sent: the socket is gone
        refusal = self._faults.refusal(connection)
        if refusal is None:
            return None
        _log.info("local realtime server: refusing a handshake with HTTP %d", refusal.status)
        return http_response(refusal)

    def _hang(self, ws: ServerConnection, connection: Connection[ServerConnection]) -> None:
        """Leave the upgrade request unanswered until the client gives up or stop()."""
        _log.info("local realtime server: leaving a handshake unanswered")
        with self._cond:
            connection.hung = True
            stopped = self._stopped
        if stopped:  # stop() may have listed the hung ones before this one
            self._cut(ws)
        # The reader thread ends when the socket does: the client closed it, or stop()
        # cut it. The protocol is CLOSED by then, so the handshake sends nothing.
        ws.recv_events_thread.join()

    def _process_response(
        self, ws: ServerConnection, _request: Request, response: Response
    ) -> Response | None:
        with self._cond:
            connection = self._states.get(ws)
        if connection is not None and not connection.hung:
            self._recorder.set_status(connection, response.status_code)
        return None

    def _select_subprotocol(
        self, ws: ServerConnection, _offered: Sequence[Subprotocol]
    ) -> Subprotocol | None:
        with self._cond:
            chosen = self._states[ws].admission.subprotocol
        return None if chosen is None else Subprotocol(chosen)

    # Internals: session (runs on the connection's thread)

    def _send(self, connection: Connection[ServerConnection], frame: str) -> None:
        """Send one event frame; the first one also marks the connection established."""
        if connection.established:  # only ever set by this connection's own threads
            connection.transport.send(frame)
        else:
            # One small frame on a fresh connection does not block the lock for long.
            self._recorder.first_send(connection, lambda: connection.transport.send(frame))

    def _endpoint(self, ws: ServerConnection, connection: Connection[ServerConnection]) -> Endpoint:
        return Endpoint(
            send=functools.partial(self._send, connection),
            close=ws.close,
            drop=functools.partial(self._cut, ws),
            record=functools.partial(self._recorder.record, connection),
        )

    def _simulator(
        self, connection: Connection[ServerConnection], endpoint: Endpoint
    ) -> SessionSimulator:
        """A session for ``connection``'s admission, playing to ``endpoint``."""
        admission = connection.admission
        simulator = simulator_class(connection.path)(  # translation or Realtime
            dialect=admission.dialect,
            model=admission.model,
            send=endpoint.send,
            close=endpoint.close,
            options=self._options,
            register_thread=self._register_worker,
            on_received=endpoint.record,
            take_response_drop=self._faults.take_response_drop,
            take_transcription_failure=self._faults.take_transcription_failure,
            drop=endpoint.drop,
            intent=admission.intent,
        )
        if admission.preset is not None:  # a joined call, or an ephemeral key's session
            apply_preset(simulator, admission.preset)
        return simulator

    def _handle(self, ws: ServerConnection) -> None:
        with self._cond:
            connection = self._states[ws]
        admission = connection.admission
        _log.info(
            "local realtime server: %s connection on %s (auth: %s)",
            admission.dialect,
            connection.path,
            admission.auth,
        )
        failure = self._faults.opening_failure(connection)
        endpoint = self._endpoint(ws, connection)
        if failure is None and admission.call_id is not None and self._playback is None:
            self._join_call(ws, connection, admission.call_id, endpoint)
            return
        simulator = self._simulator(connection, endpoint)
        try:
            if failure is not None:
                simulator.refuse(failure.code, failure.error)
                return
            self._recorder.attach(connection, simulator)  # a session: in the record from now
            if self._playback is not None:
                play(self._playback, ws, endpoint.send, simulator.open, endpoint.record)
                return
            simulator.open()
            self._serve(ws, simulator)
        except ConnectionClosed:
            pass  # the client left; nothing more to do
        finally:
            self._recorder.establish(connection)  # never leave wait_for_connections() hanging
            simulator.stop(_JOIN_TIMEOUT)  # no response thread outlives its connection

    def _join_call(
        self,
        ws: ServerConnection,
        connection: Connection[ServerConnection],
        call_id: str,
        endpoint: Endpoint,
    ) -> None:
        """Play the call's shared session to this connection until it closes; the session
        lives on (its lifetime timer, not this loop, expires it)."""
        member = None
        try:
            member = self._call_sessions.join(
                call_id,
                endpoint,
                functools.partial(self._simulator, connection),
                functools.partial(self._attach_member, connection),
            )
            if member is None:  # hung up since the handshake was admitted
                ws.close(*CALL_ENDED)
                return
            while True:
                member.receive(ws.recv(), answer=not self._faults.silent.is_set())
        except ConnectionClosed:
            pass  # the client left; the call's session goes on
        finally:
            self._recorder.establish(connection)
            with self._cond:
                self._members.pop(ws, None)
            if member is not None:
                member.leave()

    def _attach_member(self, connection: Connection[ServerConnection], member: Member) -> None:
        """Before a join's session.created: pushes to it go through its outbox."""
        with self._cond:
            self._members[connection.transport] = member
        self._recorder.attach(connection, member.simulator)

    def _serve(self, ws: ServerConnection, simulator: SessionSimulator) -> None:
        lifetime = self._options.session_lifetime
        deadline = None if lifetime is None else time.monotonic() + lifetime
        while True:
            timeout = None if deadline is None else deadline - time.monotonic()
            try:
                if timeout is not None and timeout <= 0:
                    # recv() would still hand out queued messages; a busy session expires too.
                    raise TimeoutError
                message = ws.recv(timeout)
            except TimeoutError:
                simulator.expire()
                return
            simulator.receive(message, answer=not self._faults.silent.is_set())
