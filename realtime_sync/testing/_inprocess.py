"""An in-process transport: the local server's session simulator, without sockets.

``RealtimeClient(transport=InProcessTransport(...))`` runs everything the socket server runs
(handshake admission, the session simulator, the recorder) in this process, so unit tests
of code built on the client need neither a port nor the ``websockets`` package. Frames pass
as strings: sending runs the simulator on the sender's thread, and responses stream on the
simulator's own response thread, exactly as behind a socket. The faults a test injects
(:mod:`._faults`) act here as on the socket server, with no socket to cut: a drop ends the
connection as ``"dropped"``, a hung handshake waits for the client to give up.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Collection, Mapping
from typing import Any

from .._endpoints import Handshake
from .._errors import NotConnectedError
from .._transport import EndKind, EndSink, FrameSink, TransportEnded, binary_frame
from ._admission import (
    lower_headers,
)
from ._catalogue import KNOWN_MODELS, check_close, pushed_frame
from ._faults import ServerControls
from ._recorder import Recorder
from ._script import Script
from ._simulator import SessionSimulator
from ._translation import simulator_class

__all__ = ["InProcessTransport"]

_JOIN_TIMEOUT = 5.0


class InProcessTransport(ServerControls):
    """A :class:`~realtime_sync.Transport` backed by the local server's session simulator.

    ::

        transport = InProcessTransport(api_key="test", reply="Hi there")
        with RealtimeClient(api_key="test", transport=transport) as client:
            ...
        assert transport.received[0]["type"] == "response.create"

    The client's URL, headers and subprotocols are checked as the socket server checks
    them (a wrong key closes with 3000, an unknown model with 4000, an unknown path is an
    HTTP 404), so the client's own URL and auth settings are exercised too.

    Test controls are those of the socket server, thread-safe, except ``answer_pings``
    (there are no pings in process): :meth:`reject_handshake`, :meth:`fail_after_accept`,
    :meth:`hang_handshakes`, :meth:`push`, :meth:`storm_errors`, :meth:`drop_connections`,
    :meth:`drop_during_response`, :meth:`close_connections`, :meth:`expire_sessions`,
    :meth:`half_open` (events to the client are swallowed) and :meth:`clear_faults`.
    """

    def __init__(
        self,
        api_key: str | None = None,
        *,
        reply: str | Callable[[str], str] | None = None,
        delta_chunks: int = 4,
        delta_interval: float = 0.0,
        session_lifetime: float | None = None,
        models: Collection[str] | None = KNOWN_MODELS,
        emulate_beta_shutdown: bool = False,
        audio_pacing: float | None = None,
        transcribe: Callable[[bytes], str] | None = None,
        late_transcripts: bool = False,
    ) -> None:
        """Arguments as for :class:`~realtime_sync.testing.LocalRealtimeServer`."""
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
        self._recorder: Recorder[InProcessConnection] = Recorder()

    def open(
        self, handshake: Handshake, *, on_frame: FrameSink, on_end: EndSink, name: str
    ) -> InProcessConnection:
        return InProcessConnection(self, handshake, on_frame=on_frame, on_end=on_end, name=name)

    # --- test controls that depend on the transport (the rest: ServerControls) -----------

    def push(self, event: Mapping[str, Any] | str | bytes) -> None:
        """Deliver a server event to every open connection: a mapping (JSON-encoded, with an
        ``event_id`` if it has none), or a raw frame as given (it may be malformed)."""
        self._broadcast(pushed_frame(event))

    def _broadcast(self, frame: str | bytes) -> None:
        for connection in self._recorder.open_connections():
            connection.transport.deliver(frame)

    def drop_connections(self) -> None:
        """End every open connection as if the network had dropped it."""
        for connection in self._recorder.open_connections():
            connection.transport.end("dropped", detail="dropped by the test")

    def close_connections(self, code: int = 1000, reason: str = "") -> None:
        """Close every open connection from the server's side with ``code`` and ``reason``."""
        check_close(code, reason)
        for connection in self._recorder.open_connections():
            connection.transport.end("closed", code=code, reason=reason or None)  # as on a socket


class InProcessConnection:
    """One client connection to a simulated session."""

    def __init__(
        self,
        transport: InProcessTransport,
        handshake: Handshake,
        *,
        on_frame: FrameSink,
        on_end: EndSink,
        name: str,
    ) -> None:
        self._transport = transport
        self._handshake = handshake
        self._on_frame = on_frame
        self._on_end = on_end
        self._name = name
        # Orders every frame before the end report, and the end report exactly once.
        self._lock = threading.Lock()
        self._opened = False
        self._ended = False
        self._simulator: SessionSimulator | None = None
        self._expiry: threading.Timer | None = None

    # --- the client's side ------------------------------------------------------------------

    def start(self) -> None:
        if self._ended:  # close() came first
            return
        recorder = self._transport._recorder
        record = recorder.handshake(
            self,
            lambda: not self._ended,
            target=self._handshake.url,
            headers=lower_headers(self._handshake.headers.items()),
            offered=self._handshake.subprotocols,
            settings=self._transport._settings,
        )
        admission = record.admission
        faults = self._transport._faults
        if faults.take_hang():
            recorder.hang(record)  # neither opened nor refused: close() or abort() ends it
            return
        refusal = faults.refusal(record)
        if refusal is not None:
            recorder.set_status(record, refusal.status)
            body, content_type = refusal.encoded_body()
            headers = {"content-type": content_type}
            headers.update((name.lower(), value) for name, value in refusal.headers.items())
            self.end("refused", status=refusal.status, headers=headers, body=body)
            return
        recorder.set_status(record, 101)
        self._opened = True
        simulator = self._simulator = simulator_class(record.path)(  # translation or Realtime
            dialect=admission.dialect,
            model=admission.model,
            send=self.deliver,
            close=lambda code, reason: self.end("closed", code=code, reason=reason),
            options=self._transport._options,
            on_received=lambda event: recorder.record(record, event),
            take_response_drop=faults.take_response_drop,
            take_transcription_failure=faults.take_transcription_failure,
            drop=lambda: self.end("dropped", detail="dropped by the test during a response"),
            intent=admission.intent,
        )
        failure = faults.opening_failure(record)
        if failure is not None:
            recorder.first_send(record, lambda: simulator.refuse(failure.code, failure.error))
            return
        recorder.attach(record, simulator)  # a session: in the record from now
        recorder.first_send(record, simulator.open)
        lifetime = self._transport._options.session_lifetime
        if lifetime is not None:
            self._expiry = threading.Timer(lifetime, simulator.expire)
            self._expiry.name = f"{self._name}-expiry"
            self._expiry.daemon = True
            self._expiry.start()

    @property
    def opened(self) -> bool:
        return self._opened

    @property
    def finished(self) -> bool:
        return self._ended

    def send(self, data: bytes) -> None:
        simulator = self._simulator
        if simulator is None or self._ended:
            raise NotConnectedError("the connection is closed; the event was not sent")
        simulator.receive(data.decode("utf-8"), answer=not self._transport._faults.silent.is_set())

    def close(self, timeout: float) -> bool:
        self.end("closed", code=1000, reason="", stop_timeout=timeout)
        return True

    def abort(self) -> None:
        self.end("dropped", detail="aborted")

    # --- the simulated server's side --------------------------------------------------------

    def deliver(self, frame: str | bytes) -> None:
        """A frame from the server; nothing is delivered after the end, nor while the
        transport plays a half-open peer."""
        if self._transport._faults.silent.is_set():
            return
        with self._lock:
            if not self._ended:
                self._on_frame(binary_frame(frame) if isinstance(frame, bytes) else frame)

    def end(self, kind: EndKind, *, stop_timeout: float = _JOIN_TIMEOUT, **details: Any) -> None:
        """End the connection once: stop the simulated session, report the end."""
        with self._lock:
            if self._ended:
                return
            self._ended = True
            self._on_end(TransportEnded(kind, self._opened, **details))
        if self._expiry is not None:
            self._expiry.cancel()
        if self._simulator is not None:  # no response thread outlives its connection
            self._simulator.stop(stop_timeout)
