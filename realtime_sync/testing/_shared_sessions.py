"""One Realtime session shared by every connection that joins a call.

On the real service a call (SIP or WebRTC) is one Realtime session, and every sideband
connection that joins it by ``call_id`` sees that session: one conversation, one session
configuration, one response in progress. :class:`CallSessions` gives the local server the
same: the first join of a call creates its :class:`SharedSession` (from the ``accept``
configuration), later joins attach to it. Like :class:`~._simulator.SessionSimulator`,
nothing here knows of sockets: a transport hands each joining connection in as an
:class:`Endpoint` (callables) and feeds its client frames to :meth:`Member.receive`.

The rules, as a test sees them:

- Each join gets its own ``session.created``, describing the shared session as it is at
  that moment (same session id for every join); it sees every event sent after it and
  none sent before it.
- Client events from any join go into the one simulator, in the order the simulator takes
  them; every server event the session produces goes to every joined connection, in the
  same order, except ``error`` events answering a client event (an invalid event, a
  refused request, a failing ``reply``), which go to the connection that sent it only.
  Errors a session raises by itself (a response failing on its own, ``session_expired``)
  go to all.
- A join leaving (closing, dropped) ends nothing for the others, and the session outlives
  its last join: the call lives until it is hung up (:meth:`CallSessions.end`), so a later
  join sees the earlier conversation, and a response in progress streams on for whoever
  is joined.
- The session ends at hangup (every join gets close 1000 ``call ended`` after the events
  already queued for it), when it expires (``session_lifetime`` counts from the first
  join; every join gets ``session_expired`` and close 1001), or when a response drop
  (``drop_during_response``) cuts every join, as a server crash would. A join that has
  not got its close or cut :data:`ENDING_GRACE` seconds later (its writer is stuck on a
  peer that stopped reading) is cut then, as a real server gives up on a closing
  handshake. A later join of a call whose session ended that way (expired or dropped, but
  not hung up) starts a new session; so does a join racing the expiry once the
  ``session_expired`` went out: no join gets the close without that error.

Threads: each joined connection has an outbox and a writer thread that sends what is in
it, so the simulator (which sends with its lock held) never waits for a socket: a slow,
stalled or closing connection delays only its own events, never the session or the other
joins, and no broadcast can deadlock against a connection that is closing.

An outbox is bounded, as a real server bounds what it buffers for a slow client: a join
whose unsent events pass :data:`MAX_BACKLOG` characters (a peer that stopped reading) is
cut without a close frame, like a drop (no close frame could get past what it has not
read), with a warning in the ``realtime_sync.testing`` log; the session and the other
joins go on. A test's pushed frames (:meth:`Member.put`) take the same outbox, after the
session's events queued before them.
"""

from __future__ import annotations

import contextlib
import json
import queue
import threading
from collections.abc import Callable, Iterator

import attrs

from ._catalogue import JsonObject
from ._logs import server_log as _log
from ._simulator import SessionSimulator, is_error_frame

__all__ = ["ENDING_GRACE", "MAX_BACKLOG", "CallSessions", "Endpoint", "Member", "SharedSession"]

MAX_BACKLOG = 16 * 2**20
"""Characters of event frames one join may have waiting to be sent before it is cut: about
four minutes of 24 kHz audio deltas, far more than a reading client ever lets pile up."""
ENDING_GRACE = 3.0
"""Seconds a join has to get its close (whose handshake the server bounds at 2 s) or cut
once its session ended, before it is cut."""


@attrs.frozen
class Endpoint:
    """What a session can do to one connection."""

    send: Callable[[str | bytes], None]
    """Sends one text (JSON) or binary frame; raises when the connection is gone."""
    close: Callable[[int, str], None]
    """Closes the connection with a code and reason (may wait for the closing handshake)."""
    drop: Callable[[], None]
    """Cuts the connection without a close frame (must not block)."""
    record: Callable[[JsonObject], None]
    """Records a client event received on the connection, before it is answered."""


Ending = Callable[[Endpoint], None]
"""How a session ends for each joined connection: a close, or a cut."""


@attrs.frozen
class _Last:
    """The last entry of an outbox: what the writer does before it ends."""

    ending: Ending | None
    """Close or cut the connection; None: nothing (the connection left)."""


class Member:
    """One connection joined to a :class:`SharedSession`; its writer thread sends what the
    session puts in its outbox, in order, until the connection leaves or fails."""

    def __init__(self, session: SharedSession, endpoint: Endpoint) -> None:
        self._session = session
        self._endpoint = endpoint
        self._outbox: queue.SimpleQueue[str | bytes | _Last] = queue.SimpleQueue()
        self._backlog_lock = threading.Lock()
        self._backlog = 0  # characters queued and not sent yet (the one being sent included)
        self._cut = False  # the backlog passed MAX_BACKLOG: nothing more is queued
        self._writer = threading.Thread(
            target=self._write, name="realtime_sync-local-server-call-writer", daemon=True
        )

    @property
    def simulator(self) -> SessionSimulator:
        """The session's simulator (for the recorder's view of the conversation)."""
        return self._session.simulator

    def receive(self, frame: str | bytes, *, answer: bool = True) -> None:
        """Feed one client frame of this connection to the shared session (any thread;
        concurrent calls from several joins are safe)."""
        self._session.receive(self, frame, answer=answer)

    def leave(self) -> None:
        """The connection is gone: send it nothing more; the session goes on."""
        self._session.leave(self)

    def record(self, event: JsonObject) -> None:
        """Record a client event received on this connection."""
        self._endpoint.record(event)

    def put(self, item: str | bytes | _Last) -> None:
        """Queue a frame (or the last entry) for the writer; never blocks. A frame that
        would take the backlog past :data:`MAX_BACKLOG` cuts the connection instead."""
        if not isinstance(item, _Last):
            with self._backlog_lock:
                if self._cut:
                    return
                self._backlog += len(item)
                self._cut = self._backlog > MAX_BACKLOG
                if not self._cut:
                    self._outbox.put(item)
                    return
            _log.warning(
                "local realtime server: cutting a call join that stopped reading "
                "(more than %d characters of events waiting)",
                MAX_BACKLOG,
            )
            self._endpoint.drop()  # also ends the writer's send, blocked on the full socket
            return
        self._outbox.put(item)

    def start(self, register_thread: Callable[[threading.Thread], None]) -> None:
        """Start the writer thread."""
        register_thread(self._writer)
        self._writer.start()

    def cut_if_stuck(self) -> None:
        """Cut the connection if its writer has not ended (a send blocked for good)."""
        if self._writer.is_alive():
            self._endpoint.drop()

    def _write(self) -> None:
        while not isinstance(item := self._outbox.get(), _Last):
            try:
                self._endpoint.send(item)
            except Exception:  # a send that raises means the connection is gone
                return
            with self._backlog_lock:
                self._backlog -= len(item)
        if item.ending is not None:
            with contextlib.suppress(Exception):  # the connection may be gone already
                item.ending(self._endpoint)


class SharedSession:
    """One simulated session played to every connection that joined it (thread-safe)."""

    def __init__(
        self,
        make: Callable[[Endpoint], SessionSimulator],
        *,
        lifetime: float | None,
        register_thread: Callable[[threading.Thread], None],
    ) -> None:
        """Create the session's simulator with ``make`` (given the endpoint that reaches
        every join); with ``lifetime``, the session expires that many seconds from now."""
        self._register_thread = register_thread
        # The members and the ending; taken last (but for register_thread's lock).
        self._lock = threading.Lock()
        self._members: list[Member] = []
        self._ended = False  # closed, dropped, hung up or stopped: no more events
        self._expiring = False  # its session_expired went out: its close follows
        # Who the event being handled on this thread came from (None on a response
        # thread), and whether it is a join's session.created (for that join only).
        self._local = threading.local()
        self.simulator = make(
            Endpoint(send=self._send, close=self._close, drop=self._drop, record=self._record)
        )
        self._timer: threading.Timer | None = None
        self._grace: threading.Timer | None = None  # cuts the joins stuck after the ending
        if lifetime is not None:
            self._timer = self._start_timer(lifetime, self.simulator.expire, "expiry")

    def _start_timer(self, seconds: float, work: Callable[[], None], name: str) -> threading.Timer:
        timer = threading.Timer(seconds, work)
        timer.name = f"realtime_sync-local-server-call-{name}"
        timer.daemon = True
        self._register_thread(timer)
        timer.start()
        return timer

    @property
    def ended(self) -> bool:
        """Whether the session is ending (expiring), closed, was cut, or was ended: a new
        join needs a new one."""
        with self._lock:
            return self._ended or self._expiring

    def join(self, endpoint: Endpoint, attached: Callable[[Member], None]) -> Member | None:
        """Attach a connection: ``attached`` runs first (with the new member), then the
        connection gets ``session.created`` and from then on every event of the session.
        None when the session began to end meanwhile (the member is dropped unstarted,
        its session.created unsent): the join needs a new session."""
        member = Member(self, endpoint)
        attached(member)
        # Under the simulator's lock no other event goes out: the join misses none sent
        # after its session.created and gets none sent before it. The expiry sends its
        # error and its close without that lock: the check below is what keeps a join
        # from getting the close alone.
        with self.simulator.lock:
            with self._from(member, opening=True):
                self.simulator.open()
            with self._lock:
                if self._ended or self._expiring:
                    return None
                self._members.append(member)
        member.start(self._register_thread)
        return member

    def receive(self, member: Member, frame: str | bytes, *, answer: bool) -> None:
        """Hand one client frame of ``member`` to the simulator."""
        with self._from(member, opening=False):
            self.simulator.receive(frame, answer=answer)

    def leave(self, member: Member) -> None:
        """Detach a connection; its writer ends after what is already queued."""
        with self._lock:
            if member in self._members:
                self._members.remove(member)
        member.put(_Last(None))

    def end(self, ending: Ending | None) -> None:
        """End the session: no more events. At hangup, ``ending`` reaches each join after
        what is queued for it (a stuck one is cut :data:`ENDING_GRACE` later); at server
        stop (None) the transport closes the joins. Returns at once; the response thread
        ends by itself."""
        if ending is not None:
            self._finish(ending)
        with self._lock:
            self._ended = True  # no ending after this
            # Hangup keeps the grace timer; server stop cancels it (and joins its own closes).
            timers = (self._timer,) if ending is not None else (self._timer, self._grace)
        for timer in timers:
            if timer is not None:
                timer.cancel()
        self.simulator.stop(0)

    @contextlib.contextmanager
    def _from(self, member: Member, *, opening: bool) -> Iterator[None]:
        """While handling ``member``'s opening or client frame on this thread."""
        self._local.origin, self._local.opening = member, opening
        try:
            yield
        finally:
            self._local.origin, self._local.opening = None, False

    # The simulator's endpoint

    def _send(self, frame: str | bytes) -> None:
        # The simulator sends text frames only (bytes are a test's pushes, in Member.put).
        error = isinstance(frame, str) and is_error_frame(frame)
        origin: Member | None = getattr(self._local, "origin", None)
        if origin is not None and (self._local.opening or error):
            origin.put(frame)  # a join's session.created, or the answer to its event
            return
        with self._lock:
            if origin is None and error and _is_expiry(frame):
                self._expiring = True  # its close follows, outside the simulator's lock
            for member in self._members:
                member.put(frame)

    def _record(self, event: JsonObject) -> None:
        origin: Member | None = getattr(self._local, "origin", None)
        if origin is not None:  # always set: events only arrive through receive()
            origin.record(event)

    def _close(self, code: int, reason: str) -> None:
        self._finish(lambda endpoint: endpoint.close(code, reason))

    def _drop(self) -> None:
        self._finish(lambda endpoint: endpoint.drop())

    def _finish(self, ending: Ending) -> None:
        with self._lock:
            if self._ended:
                return
            self._ended = True
            members = list(self._members)
            for member in members:
                member.put(_Last(ending))

            def cut_stuck() -> None:
                for member in members:
                    member.cut_if_stuck()

            # Under the lock: end() (server stop) cancels this timer, never one set after.
            self._grace = self._start_timer(ENDING_GRACE, cut_stuck, "grace")
        if self._timer is not None:
            self._timer.cancel()


def _is_expiry(frame: str | bytes) -> bool:
    """Whether an error frame is the session's ``session_expired``."""
    error = json.loads(frame).get("error")
    return isinstance(error, dict) and error.get("code") == "session_expired"


class CallSessions:
    """The shared sessions of the calls joined so far, by call id (thread-safe)."""

    def __init__(
        self,
        *,
        live: Callable[[str], bool],
        lifetime: float | None,
        register_thread: Callable[[threading.Thread], None],
    ) -> None:
        """``live`` tells whether a call may be joined now (accepted, not hung up);
        ``lifetime`` is each session's; ``register_thread`` gets every thread started."""
        self._live = live
        self._lifetime = lifetime
        self._register_thread = register_thread
        # Held while a join is sent its session.created, so that a hangup that ends the
        # call's session cannot slip between the liveness check and the join.
        self._lock = threading.Lock()
        self._sessions: dict[str, SharedSession] = {}
        # Ended ones (replaced by a later join, or hung up): stop() still cancels their timers.
        self._retired: list[SharedSession] = []

    def join(
        self,
        call_id: str,
        endpoint: Endpoint,
        make: Callable[[Endpoint], SessionSimulator],
        attached: Callable[[Member], None],
    ) -> Member | None:
        """Join ``endpoint`` to the call's session, creating it with ``make`` for the
        first join (or after it ended, or began to expire: then ``attached`` may run
        twice); None when the call was hung up meanwhile."""
        with self._lock:
            if not self._live(call_id):
                return None
            while True:
                session = self._sessions.get(call_id)
                if session is None or session.ended:
                    if session is not None:
                        self._retired.append(session)
                    session = SharedSession(
                        make, lifetime=self._lifetime, register_thread=self._register_thread
                    )
                    self._sessions[call_id] = session
                member = session.join(endpoint, attached)
                if member is not None:
                    return member

    def end(self, call_id: str, code: int, reason: str) -> None:
        """The call was hung up: end its session, if it has one, closing each join with
        ``code`` and ``reason`` once it got the events queued for it."""
        with self._lock:
            session = self._sessions.pop(call_id, None)
            if session is not None:
                self._retired.append(session)
        if session is not None:
            session.end(lambda endpoint: endpoint.close(code, reason))

    def end_all(self) -> None:
        """End every session (the server is stopping)."""
        with self._lock:
            sessions = [*self._sessions.values(), *self._retired]
            self._sessions, self._retired = {}, []
        for session in sessions:
            session.end(None)
