"""Sessions that survive: reconnecting after a loss, rolling over before the end.

The :class:`Supervisor` is the first of the dispatcher's reducers, so it sees each
connection's closing event before anything else does. When a connection that had a
session ends and the :class:`~._reconnect.ReconnectPolicy` says a new one may work, the
closing event becomes ``client.reconnecting`` (waits and handlers carry over; a response in
progress is interrupted), sends are queued (:class:`~._gap.SendQueue`), and an attempt is
scheduled after a backoff. Each attempt is an ordinary connection whose own closing event
comes back here: retried, or the final ``client.closed``. When an attempt's
``session.created`` arrives, the new session is brought back (:mod:`._replay`), the queued
sends follow in order, and ``client.reconnected`` is dispatched right after it.

Session lifetime: at each ``session.created`` the session's end is known (``expires_at``,
else 60 minutes, 30 on Azure); ``client.session_expiring`` comes ``expiring_notice`` seconds
before, and from ``rollover_window`` seconds before, the first quiet moment closes the
connection and opens the next one at once (``client.session_rolled_over``). A session the
server ends with ``session_expired`` is rolled over the same way.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, Protocol

import attrs
from attrs import define, frozen

from ._clock import Scheduled, call_later
from ._conversation import ConversationState
from ._errors import APIError, ConnectionClosed, NotConnectedError, TransportError
from ._gap import SendQueue
from ._local_events import (
    ClosedEvent,
    ReconnectedEvent,
    ReconnectingEvent,
    SessionExpiringEvent,
    SessionRolledOverEvent,
)
from ._objects import Session
from ._reconnect import ReconnectPolicy, default_session_seconds
from ._replay import ReplayReport, merge_session, replay_events
from ._server_events import ResponseEvent, SessionEvent
from ._session import Notice, SessionCore

__all__ = ["Supervisor"]

logger = logging.getLogger("realtime_sync")


class _Host(Protocol):
    """What the supervisor needs of the client."""

    def _open_link(self) -> SessionCore | None: ...

    def _abandon_link(self, core: SessionCore, error: Exception, *, polite: bool) -> None: ...

    def _send_now(self, event: Mapping[str, Any]) -> str: ...

    def _send_data(self, data: bytes) -> None: ...


class _Turns(Protocol):
    def idle(self) -> bool: ...

    def interrupt(self, error: BaseException, *, retry: bool) -> None: ...


@frozen
class _Due(Notice):
    """A deadline of a session, queued behind its events."""

    kind: str  # "expiring" or "rollover"
    session_id: str | None = None
    expires_at: float = 0.0


@define(eq=False)
class _Episode:
    """One outage (or rollover), from the loss to the new session."""

    kind: str  # "reconnect" or "rollover"
    reason: str  # for a rollover: "proactive" or "expired"
    lost_at: float
    previous_session_id: str | None
    attempts: int = 0
    pending: Scheduled | None = None  # the backoff, then the attempt's timeout


class Supervisor:
    """Reconnects, replays and rolls over (see the module description)."""

    def __init__(
        self,
        policy: ReconnectPolicy | None,
        *,
        host: _Host,
        state: ConversationState,
        turns: _Turns,
        dialect: str,
        azure: bool,
        connect_timeout: float,
        submit: Callable[[SessionCore, Any], None],
        emit: Callable[[Any], None],
        source: Callable[[], SessionCore | None],
        name: str,
    ) -> None:
        self.policy = policy
        self.gap = SendQueue(policy or ReconnectPolicy())
        """Events sent while disconnected."""
        self._host = host
        self._state = state
        self._turns = turns
        self._dialect = dialect
        self._azure = azure
        self._connect_timeout = connect_timeout
        self._submit = submit
        self._emit = emit
        self._source = source
        self._name = name
        # Guards everything below: user threads (connect, close, send), the dispatcher
        # thread and the clock thread all come here.
        self._lock = threading.Lock()
        self._stopped = True
        self._established = False  # a session started since connect(): losses are retried
        self._episode: _Episode | None = None
        self._config: dict[str, Any] = {}  # the session configuration the user sent
        self._timers: list[Scheduled] = []
        self._rollover_due = False
        self._rolling: SessionCore | None = None
        self._last_audio = 0.0

    # --- user threads -----------------------------------------------------------------------

    def start(self) -> None:
        """``connect()``: a fresh start, nothing carried over from before."""
        with self._lock:
            self._stopped = False
            self._established = False
            self._episode = None
            self._config = {}
            self._rollover_due = False
            self._rolling = None

    def stop(self) -> bool:
        """``close()``: no more attempts or rollovers. True when an outage was under way
        (its final ``client.closed`` is then still to come)."""
        with self._lock:
            self._stopped = True
            self._cancel_timers()
            episode = self._episode
            if episode is not None and episode.pending is not None:
                episode.pending.cancel()
            return episode is not None

    def abort(self) -> None:
        """The dispatcher failed and closed the client: forget the outage, if any, and
        what was queued for it."""
        self.stop()
        with self._lock:
            self._episode = None
            self._established = False
            with self.gap.lock:
                self.gap.discard()

    @property
    def stopped(self) -> bool:
        """True before ``connect()`` and after ``close()``: no attempt may start."""
        return self._stopped

    @property
    def reconnecting(self) -> bool:
        """True from a loss to the new session (or the final ``client.closed``)."""
        return self._episode is not None

    def may_queue(self) -> bool:
        """Whether a send that found no usable connection may wait for the next one: a
        session had started since ``connect()`` and ``close()`` was not called."""
        return self.policy is not None and self._established and not self._stopped

    def sent(self, event: Mapping[str, Any]) -> None:
        """Note what a sent (or queued) event changes: the configuration to replay, the
        time of the last audio."""
        kind = event.get("type")
        if kind == "session.update" and isinstance(event.get("session"), Mapping):
            with self._lock:
                self._config = merge_session(self._config, event["session"])
        elif kind == "input_audio_buffer.append":
            self._last_audio = time.monotonic()

    # --- the dispatcher thread --------------------------------------------------------------

    def receive(self, event: Any) -> Any:
        kind = type(event)
        if kind is ClosedEvent:
            return self._on_closed(event)
        if kind is SessionEvent and event.type == "session.created":
            return self._on_created(event)
        if kind is _Due:
            return self._on_due(event)
        if kind is ResponseEvent and event.type == "response.done" and self._rollover_due:
            core = self._source()
            if core is not None:  # look again once the turns have seen it end
                self._submit(core, _Due("rollover"))
        return event

    def _on_closed(self, event: ClosedEvent) -> Any:
        core = self._source()
        policy = self.policy
        with self._lock:
            self._cancel_timers()
            rolling, self._rolling = core is not None and core is self._rolling, None
            self._rollover_due = False
            episode = self._episode
            if self._stopped or policy is None or not self._established or event.requested:
                return self._final(event, episode)
            if episode is None:
                expired = _expired(event.error)
                if rolling or (expired and policy.rollover):
                    reason = "proactive" if rolling else "expired"
                    episode = _Episode("rollover", reason, time.monotonic(), _id(core))
                elif event.retryable and not expired:
                    episode = _Episode("reconnect", "", time.monotonic(), _id(core))
                else:
                    return self._final(event, episode)
            elif not event.retryable or (
                policy.max_attempts is not None and episode.attempts >= policy.max_attempts
            ):
                return self._final(event, episode)
            episode.attempts += 1
            silent = episode.kind == "rollover" and episode.attempts == 1
            delay = 0.0 if silent else policy.delay(episode.attempts, _retry_after(event.error))
            self._episode = episode
            with self.gap.lock:
                self.gap.hold()
            episode.pending = call_later(delay, lambda: self._launch(episode))
        if event.error is not None:
            logger.info(
                "connection lost (%s); attempt %d in %.2f s", event.error, episode.attempts, delay
            )
        self._turns.interrupt(
            event.error or ConnectionClosed("the connection was closed"),
            retry=policy.retry_interrupted,
        )
        if silent:
            return None
        return ReconnectingEvent(attempt=episode.attempts, delay=delay, cause=event.error)

    def _final(self, event: ClosedEvent, episode: _Episode | None) -> ClosedEvent:
        """With the lock held: the client's last event; nothing queued will go out."""
        self._episode = None
        self._established = False
        with self.gap.lock:
            unsent = self.gap.discard()
        if unsent:
            logger.warning("%d events sent while reconnecting were never sent", unsent)
        if episode is None and not unsent:
            return event
        attempts = 0 if episode is None else episode.attempts
        return attrs.evolve(event, attempts=attempts, unsent=unsent)

    def _on_created(self, event: SessionEvent) -> Any:
        core = self._source()
        with self._lock:
            episode, self._episode = self._episode, None
            self._established = True
            if episode is not None and episode.pending is not None:
                episode.pending.cancel()
            if core is not None:
                self._schedule(core, event.session)
        if episode is None or self._stopped:  # close() came meanwhile: nothing to restore
            return event
        report = self._restore()
        downtime = time.monotonic() - episode.lost_at
        if episode.kind == "rollover":
            self._emit(
                SessionRolledOverEvent(
                    previous_session_id=episode.previous_session_id,
                    session=event.session,
                    reason=episode.reason,
                    downtime=downtime,
                    report=report,
                )
            )
        else:
            self._emit(
                ReconnectedEvent(
                    session=event.session,
                    attempts=episode.attempts,
                    downtime=downtime,
                    report=report,
                )
            )
        return event

    def _restore(self) -> ReplayReport:
        """Send the replay, then what was queued; report what was carried over."""
        config: dict[str, Any] = {}
        events: list[dict[str, Any]] = []
        skipped: list[Any] = []
        if self.policy is not None and self.policy.replay:
            with self._lock:
                config = dict(self._config)
            events, skipped = replay_events(self._state.items, self._dialect)
            self._state.carry_over({event["item"]["id"] for event in events})
        sent = dropped = 0
        dropped_ms = 0.0
        try:
            with self.gap.lock:
                if config:
                    self._host._send_now({"type": "session.update", "session": config})
                for replayed in events:
                    self._host._send_now(replayed)
                sent, dropped, dropped_ms = self.gap.release(self._host._send_data)
        except (NotConnectedError, TransportError) as exc:
            # The new connection is gone already: its end comes next and starts over.
            logger.info("the new connection was lost during the replay: %s", exc)
        if skipped:
            logger.info("%d items could not be replayed", len(skipped))
        return ReplayReport(
            replayed=tuple(replayed["item"]["id"] for replayed in events),
            not_replayed=tuple(skipped),
            session_updated=bool(config),
            sent=sent,
            dropped=dropped,
            dropped_audio_ms=dropped_ms,
        )

    def _on_due(self, due: _Due) -> Any:
        if due.kind == "expiring":
            return SessionExpiringEvent(
                session_id=due.session_id,
                expires_at=due.expires_at,
                seconds_left=max(0.0, due.expires_at - time.time()),
            )
        with self._lock:
            self._rollover_due = True
        self._roll_when_quiet()
        return None

    def _roll_when_quiet(self) -> None:
        """Roll the session over now if nothing is going on; else look again shortly."""
        core = self._source()
        policy = self.policy
        if core is None or policy is None:
            return
        # Asked before taking our lock: the turns send (and so reach us) under theirs.
        idle = self._turns.idle()
        with self._lock:
            if not self._rollover_due or self._stopped or self._episode is not None:
                return
            quiet = time.monotonic() - self._last_audio >= policy.quiet_seconds
            if not (quiet and idle):
                self._timers.append(call_later(0.25, lambda: self._submit(core, _Due("rollover"))))
                return
            self._rollover_due = False
            self._rolling = core
        logger.info("rolling the session over before it expires")
        self._host._abandon_link(
            core, ConnectionClosed("the session was rolled over before its end"), polite=True
        )

    # --- with the lock held -----------------------------------------------------------------

    def _schedule(self, core: SessionCore, session: Session) -> None:
        """Set the deadlines of a new session."""
        self._cancel_timers()
        policy = self.policy
        if policy is None:
            return
        now = time.time()
        given = session.expires_at
        expires_at = float(given) if isinstance(given, (int, float)) else 0.0
        if expires_at <= now:
            expires_at = now + (policy.session_seconds or default_session_seconds(self._azure))
        left = expires_at - now
        due = _Due("expiring", session.id, expires_at)
        self._timers.append(
            call_later(left - policy.expiring_notice, lambda: self._submit(core, due))
        )
        if policy.rollover:
            self._timers.append(
                # Never in the first half of a session's life: a window longer than the
                # session must not roll it over at once, and its successor after it.
                call_later(
                    max(left - policy.rollover_window, left / 2),
                    lambda: self._submit(core, _Due("rollover")),
                )
            )

    def _cancel_timers(self) -> None:
        for timer in self._timers:
            timer.cancel()
        self._timers = []

    # --- the clock thread, then an attempt's own thread -------------------------------------

    def _launch(self, episode: _Episode) -> None:
        threading.Thread(
            target=self._attempt, args=(episode,), name=f"{self._name}-reconnect", daemon=True
        ).start()

    def _attempt(self, episode: _Episode) -> None:
        with self._lock:
            if self._stopped or self._episode is not episode:
                return
        core = self._host._open_link()
        if core is None:  # close() came first
            return
        attempt = episode.attempts

        def give_up() -> None:
            if not core.started and not core.closed:
                self._host._abandon_link(
                    core,
                    ConnectionClosed(
                        f"reconnect attempt {attempt}: no session within {self._connect_timeout} s"
                    ),
                    polite=False,
                )

        with self._lock:
            if self._episode is episode:
                episode.pending = call_later(self._connect_timeout, give_up)


def _id(core: SessionCore | None) -> str | None:
    session = None if core is None else core.session
    return None if session is None else session.id


def _expired(error: Exception | None) -> bool:
    """Whether the server ended the session for its maximum duration."""
    if not isinstance(error, ConnectionClosed) or error.error is None:
        return False
    return bool(error.error.error.code == "session_expired")


def _retry_after(error: Exception | None) -> float | None:
    return error.retry_after if isinstance(error, APIError) else None
