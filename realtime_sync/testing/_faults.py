"""The faults a test injects into a local server, and the test controls both servers share.

:class:`Faults` holds what a test asked for: counted faults (a rejected, failed or hung
handshake, a response cut off mid-stream, a failed input audio transcription) and the
half-open switch. Its lock is its own and is always taken last: a response thread asks
whether to drop its connection while it holds its session's lock.

:class:`ServerControls` is the test-facing API of :class:`~._server.LocalRealtimeServer`
and :class:`~._inprocess.InProcessTransport`: what a test observes (through each one's
:class:`~._recorder.Recorder`) and the faults it injects. A transport provides the few
things that need its wires: :meth:`ServerControls._broadcast` and
:meth:`ServerControls._in_background`.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Generic, Literal, TypeVar

import attrs

from .._secrets import register_secret
from ._admission import AdmissionSettings, HttpRefusal, OpeningFailure
from ._catalogue import JsonObject, check_close, check_times, close_reason, pushed_frame
from ._options import SimulatorOptions
from ._recorder import Connection, ConnectionRecord, Recorder

__all__ = ["Faults", "ServerControls"]

_P = TypeVar("_P")

# The official specification's example of a failed transcription.
TRANSCRIPTION_ERROR_CODE = "audio_unintelligible"
TRANSCRIPTION_ERROR_MESSAGE = "The audio could not be transcribed."

# What api.openai.com says in a server_error event.
SERVER_ERROR_MESSAGE = (
    "The server had an error while processing your request. Sorry about that! You can retry "
    "your request, or contact us through our help center at help.openai.com if the error "
    "persists."
)


@attrs.define(eq=False)
class _Fault(Generic[_P]):
    payload: _P
    remaining: int | None  # None: until clear_faults()


class Faults:
    """The faults injected into one server; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()  # taken last: hold no other lock's waiters under it
        self._reject: _Fault[HttpRefusal] | None = None
        self._fail: _Fault[OpeningFailure] | None = None
        self._hang: _Fault[bool] | None = None
        self._drop: _Fault[int] | None = None
        self._transcription: _Fault[JsonObject] | None = None
        self.silent = threading.Event()
        """Set while the server plays a half-open peer (:meth:`ServerControls.half_open`)."""

    def set(
        self,
        kind: Literal["reject", "fail", "hang", "drop", "transcription"],
        payload: HttpRefusal | OpeningFailure | bool | int | JsonObject,
        times: int | None,
    ) -> None:
        """Inject a counted fault (replacing one of the same kind)."""
        check_times(times, "'until clear_faults()'")
        with self._lock:
            setattr(self, f"_{kind}", _Fault(payload, times))

    def clear(self) -> None:
        """Cancel every counted fault (the half-open switch stays as it is)."""
        with self._lock:
            self._reject = self._fail = self._hang = self._drop = None
            self._transcription = None

    def take_rejection(self) -> HttpRefusal | None:
        """Consume one use of the injected rejection, if any."""
        with self._lock:
            return self._take(self._reject)

    def take_failure(self) -> OpeningFailure | None:
        """Consume one use of the injected opening failure, if any."""
        with self._lock:
            return self._take(self._fail)

    def take_hang(self) -> bool:
        """Consume one use of the injected hang; whether to leave a handshake unanswered."""
        with self._lock:
            hang = self._take(self._hang)
        return hang is not None

    def take_response_drop(self) -> int | None:
        """Consume one use of the injected response drop: after how many deltas, or None."""
        with self._lock:
            return self._take(self._drop)

    def take_transcription_failure(self) -> JsonObject | None:
        """Consume one use of the injected transcription failure: the ``error`` object of
        the ``...input_audio_transcription.failed`` event to send instead of a transcript."""
        with self._lock:
            error = self._take(self._transcription)
        return None if error is None else dict(error)

    def refusal(self, connection: Connection[Any]) -> HttpRefusal | None:
        """The HTTP answer instead of an upgrade: an injected one first, else admission's."""
        outcome = connection.admission.outcome
        return self.take_rejection() or (outcome if isinstance(outcome, HttpRefusal) else None)

    def opening_failure(self, connection: Connection[Any]) -> OpeningFailure | None:
        """The error-then-close instead of a session: an injected one first, else
        admission's."""
        outcome = connection.admission.outcome
        return self.take_failure() or (outcome if isinstance(outcome, OpeningFailure) else None)

    @staticmethod
    def _take(fault: _Fault[_P] | None) -> _P | None:
        if fault is None or fault.remaining == 0:
            return None
        if fault.remaining is not None:
            fault.remaining -= 1
        return fault.payload


class ServerControls:
    """What a test sees of a local server and the faults it injects; shared by the socket
    server and the in-process transport, which each keep a :class:`Recorder` as
    ``_recorder``."""

    _recorder: Recorder[Any]
    _settings: AdmissionSettings
    _options: SimulatorOptions
    _faults: Faults

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
        self._faults = Faults()
        self._halted = threading.Event()  # set when the server stops: storms end early
        register_secret(api_key)  # from now on no log line shows it

    # What a transport provides

    def _broadcast(self, frame: str | bytes) -> None:
        """Send one frame to every open connection that got its first event."""
        raise NotImplementedError

    def _in_background(self, work: Callable[[], None]) -> None:
        """Run ``work`` (which may wait for a closing handshake) without blocking the test."""
        work()

    # Observation

    @property
    def received(self) -> list[JsonObject]:
        """Every client event received (parsed JSON objects), all connections, in order.

        A new list on each access; the events themselves are shared, treat them as
        read-only.
        """
        return self._recorder.received

    @property
    def connections(self) -> list[ConnectionRecord]:
        """One :class:`ConnectionRecord` per handshake so far, oldest first (a hung one
        included, with status 0)."""
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

    # Test controls: the handshake

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
        self._faults.set("reject", HttpRefusal(status, body, dict(headers or {})), times)

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
        self._faults.set("fail", OpeningFailure(code, payload), times)

    def hang_handshakes(self, times: int | None = None) -> None:
        """Leave the next upgrade requests unanswered, as an overloaded or black-holed
        endpoint (or a proxy that lost its upstream) does.

        The socket server accepts the TCP connection (and TLS) and reads the upgrade
        request, then never sends an HTTP response; the in-process transport records the
        handshake and neither opens nor refuses. The client's own connect timeout is what
        ends it: when it gives up (closes its socket, or ``close()`` / ``abort()`` in
        process) the server lets go of the connection. :meth:`stop` ends hung ones too.
        A hung handshake is in :attr:`connections` with status 0 and uses up no
        :meth:`reject_handshake` or :meth:`fail_after_accept`. Applies to the next
        ``times`` attempts, or until :meth:`clear_faults` when ``None``; handshakes
        already hanging stay hung. Replaces a previous hang.
        """
        self._faults.set("hang", True, times)

    # Test controls: sessions

    def drop_during_response(self, after_deltas: int = 1, *, times: int | None = 1) -> None:
        """Cut the connection in the middle of the next responses, as a network failure or
        a server crash does while a response streams.

        Right after a response sends its ``after_deltas``-th delta event (text, audio,
        audio transcript and function call argument deltas count; 0: right after its
        ``response.created``), the connection is dropped without a close frame (the socket
        server shuts the TCP stream down, like :meth:`drop_connections`; in process the
        connection ends as dropped), so no ``response.done`` arrives. A response with fewer
        deltas, or cancelled first, is dropped when it would finish: after the done events
        of the outputs it completed, before ``response.done``. Applies to the next
        ``times`` responses on any connection, or every response until
        :meth:`clear_faults` when ``None``. Replaces a previous drop.
        """
        if isinstance(after_deltas, bool) or after_deltas < 0:
            raise ValueError("after_deltas must be 0 or more")
        self._faults.set("drop", after_deltas, times)

    def fail_transcriptions(
        self,
        times: int | None = 1,
        *,
        code: str | None = TRANSCRIPTION_ERROR_CODE,
        message: str = TRANSCRIPTION_ERROR_MESSAGE,
    ) -> None:
        """Fail the next input audio transcriptions, as real servers do when they cannot
        transcribe an item.

        Instead of its ``...input_audio_transcription.delta`` and ``completed`` events, a
        committed item gets ``conversation.item.input_audio_transcription.failed`` with
        ``content_index`` 0 and ``error`` ``{"type": "transcription_error", "code": code,
        "message": message, "param": null}`` (the defaults are the official example's); its
        transcript stays null. The item and its ``input_audio_buffer.committed`` are as
        usual. Applies to the next ``times`` transcriptions on any connection (Realtime
        sessions with input audio transcription on, and transcription sessions), or every
        one until :meth:`clear_faults` when ``None``. Replaces a previous failure.
        """
        error: JsonObject = {
            "type": "transcription_error",
            "code": code,
            "message": message,
            "param": None,
        }
        self._faults.set("transcription", error, times)

    def half_open(self, enabled: bool = True) -> None:
        """Play a half-open TCP peer (``True``) or a healthy one again (``False``).

        When a NAT or load balancer forgets a connection, or the peer's host vanishes,
        the client's socket stays "open" but nothing comes back. While enabled, every open
        and new connection goes silent: no pongs, no events (responses in progress stream
        into the void, :meth:`push` and :meth:`storm_errors` are swallowed; a new
        connection is upgraded but gets no ``session.created``). Client events are still
        received and recorded in :attr:`received`, but never handled: they change nothing
        in the session and get no answer. Closes the server starts (:meth:`close_connections`,
        :meth:`expire_sessions`, :meth:`stop`) still go out, so tests end promptly.
        ``half_open(False)`` makes connections answer again; what was swallowed is lost.
        :meth:`clear_faults` leaves this switch as it is.
        """
        if enabled:
            self._faults.silent.set()
        else:
            self._faults.silent.clear()

    def storm_errors(
        self,
        count: int,
        *,
        code: str | None = "server_error",
        message: str | None = None,
        interval: float = 0.0,
    ) -> None:
        """Send ``count`` ``error`` events to every open connection, as a struggling
        server does (a burst of ``server_error`` events, or of refusals).

        Each event is ``{"type": "error", "error": {"type": ..., "code": code, "message":
        message, "param": null, "event_id": null}}`` with its own ``event_id``; the error's
        type is ``"server_error"`` when ``code`` is ``"server_error"`` or ``None`` (real
        ``server_error`` events carry a null code), else ``"invalid_request_error"``.
        ``message`` defaults to the text api.openai.com sends with a ``server_error``.
        They go out as fast as the connections take them, or ``interval`` seconds apart;
        returns once all were sent (early if the server stops). The connections stay open.
        """
        if isinstance(count, bool) or count < 1:
            raise ValueError("count must be at least 1")
        if not (math.isfinite(interval) and interval >= 0):
            raise ValueError("interval must be a finite number of seconds, 0 or more")
        server_side = code in (None, "server_error")
        error: JsonObject = {
            "type": "server_error" if server_side else "invalid_request_error",
            "code": code,
            "message": message
            if message is not None
            else SERVER_ERROR_MESSAGE
            if server_side
            else f"Injected error ({code}).",
            "param": None,
            "event_id": None,
        }
        for index in range(count):
            if index and interval and self._halted.wait(interval):
                return
            self._broadcast(pushed_frame({"type": "error", "error": dict(error)}))

    def expire_sessions(self) -> None:
        """End every open session now, as real servers do at a session's maximum
        duration (60 minutes; Azure 30): an ``error`` with code ``session_expired``, then
        close code 1001 (the same as ``session_lifetime``).

        A response in progress stops first, without its ``response.done``. Returns at
        once; the closing handshakes finish in the background.
        """
        for connection in self._recorder.open_connections():
            simulator = connection.simulator
            if simulator is not None:
                self._in_background(simulator.expire)

    def clear_faults(self) -> None:
        """Cancel :meth:`reject_handshake`, :meth:`fail_after_accept`,
        :meth:`hang_handshakes`, :meth:`drop_during_response` and
        :meth:`fail_transcriptions`.

        The switches (:meth:`half_open`, and the socket server's ``answer_pings``) stay as
        they are; handshakes already hanging stay hung.
        """
        self._faults.clear()
