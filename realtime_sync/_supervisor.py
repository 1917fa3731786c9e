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
server ends with ``session_expired`` is rolled over the same way. A client that does not
reconnect (``reconnect=False``, the translation client) gets the notice only.
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
from ._errors import (
    APIError,
    ConnectionClosed,
    InvalidEventError,
    NotConnectedError,
    TransportError,
)
from ._gap import SendQueue
from ._local_events import (
    ClosedEvent,
    ReconnectedEvent,
    ReconnectingEvent,
    SessionExpiringEvent,
    SessionRolledOverEvent,
)
from ._reconnect import ReconnectPolicy, default_session_seconds
from ._replay import NotReplayed, ReplayReport, merge_session, replay_events
from ._server_events import ConversationItemEvent, ResponseEvent, SessionEvent
from ._session import Notice, SessionCore

__all__ = ["Attempt", "Supervisor"]

logger = logging.getLogger("realtime_sync")

_RECHECK_SECONDS = 0.25  # how often an unquiet session is looked at again for a rollover
_NOTICE_ONLY = ReconnectPolicy(rollover=False)
_SETTLING_SECONDS = 10.0  # a reconnected session lost sooner continues the same outage
# The announcements that end an item's echo: GA's item.done, beta's item.created.
_LAST_ECHOES = frozenset({"conversation.item.done", "conversation.item.created"})


class _Host(Protocol):
    """What the supervisor needs of the client."""

    def _open_link(self, attempt: Attempt) -> None: ...

    def _give_up_attempt(self, attempt: Attempt, error: Exception) -> None: ...

    def _abandon_link(self, core: SessionCore, error: Exception, *, polite: bool) -> None: ...

    def _send_now(self, event: Mapping[str, Any]) -> str: ...

    def _send_data(self, data: bytes) -> None: ...


class _Lifetime(Protocol):
    """What the supervisor reads of a session: the Realtime one, or a translation's."""

    @property
    def id(self) -> str | None: ...

    @property
    def expires_at(self) -> int | None: ...


class _Created(Protocol):
    @property
    def session(self) -> _Lifetime: ...


class _Turns(Protocol):
    def idle(self) -> bool: ...

    def interrupt(self, error: BaseException, *, retry: bool) -> None: ...


@frozen
class _Due(Notice):
    """A deadline of a session, queued behind its events."""

    kind: str  # "expiring" or "rollover"
    session_id: str | None = None
    expires_at: float = 0.0
    look: bool = False  # a look after a response ended, not the window's start


@define(eq=False)
class _Episode:
    """One outage (or rollover), from the loss to the new session."""

    kind: str  # "reconnect" or "rollover"
    reason: str  # for a rollover: "proactive" or "expired"
    lost_at: float
    previous_session_id: str | None
    attempts: int = 0
    pending: Scheduled | None = None  # the backoff, then the attempt's timeout
    closing: bool = False  # close() was called: one final client.closed is due

    def arm(self, timer: Scheduled) -> None:
        """Replace the pending timer (lock held)."""
        if self.pending is not None:
            self.pending.cancel()
        self.pending = timer


@define(eq=False)
class Attempt:
    """One reconnect attempt, from preparing its handshake (a token provider may take its
    time) to its connection."""

    number: int
    episode: _Episode
    state: str = "preparing"  # then "opened", or "given_up" when preparing took too long
    core: SessionCore | None = None


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
        session_event: type[Any] = SessionEvent,
        lifetime: ReconnectPolicy = _NOTICE_ONLY,
    ) -> None:
        """``session_event`` is the class of the client's ``session.created``; ``lifetime``
        the notice's settings when ``policy`` is None (not reconnecting)."""
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
        self._session_event = session_event
        self._lifetime = lifetime
        # Guards everything below: user threads (connect, close, send), the dispatcher
        # thread and the clock thread all come here.
        self._lock = threading.Lock()
        self._stopped = True
        self._established = False  # a session started since connect(): losses are retried
        self._episode: _Episode | None = None
        self._config: dict[str, Any] = {}  # the session configuration the user sent
        self._timers: list[Scheduled] = []
        self._rollover_due = False
        self._recheck: Scheduled | None = None  # the next look for a quiet moment
        self._rolling: SessionCore | None = None
        self._last_audio = 0.0
        self._final_sent = False  # the client's last client.closed was made
        self._echoes: set[str] = set()  # replayed items whose announcement is still due
        # Reconnects that ended soon after their session started, before it answered
        # anything, count on: a server that accepts and then drops cannot reset the
        # attempts (and max_attempts) each time.
        self._unsettled_attempts = 0
        self._settles_at = 0.0

    # --- user threads -----------------------------------------------------------------------

    def start(self) -> None:
        """``connect()``: a fresh start, nothing carried over from before."""
        with self._lock:
            self._stopped = False
            self._established = False
            self._final_sent = False
            self._unsettled_attempts = 0
            self._settles_at = 0.0
            self._episode = None
            self._config = {}
            self._rollover_due = False
            self._rolling = None

    def stop(self) -> bool:
        """``close()``: no more attempts or rollovers. True, to one caller only, when an
        outage was under way: that caller makes its final ``client.closed``."""
        with self._lock:
            self._stopped = True
            self._cancel_timers()
            episode = self._episode
            if episode is None or episode.closing:
                return False
            if episode.pending is not None:
                episode.pending.cancel()
            episode.closing = True
            return True

    def claim(self, attempt: Attempt, *, giving_up: bool) -> bool:
        """Settle a preparing attempt, under the client's lock: it opens (True when it may)
        or, ``giving_up``, it took too long (True when it was still preparing)."""
        with self._lock:
            if attempt.state != "preparing":
                return False
            if giving_up:
                attempt.state = "given_up"
                return not self._stopped
            if self._stopped or self._episode is not attempt.episode:
                return False
            attempt.state = "opened"
            return True

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
        if kind is self._session_event and event.type == "session.created":
            return self._on_created(event)
        if kind is _Due:
            return self._on_due(event)
        if kind is ResponseEvent and event.type == "response.done":
            self._settles_at = 0.0  # a session that answers works: its outage is over
            core = self._source()
            if core is not None and self._rollover_due:  # look again once turns saw it end
                self._submit(core, _Due("rollover", look=True))
        elif kind is ConversationItemEvent and self._echoes:
            return self._unless_echo(event)
        return event

    def _unless_echo(self, event: ConversationItemEvent) -> Any:
        """The new session's announcement of an item the replay created: the client
        already has it as it was, so neither its state nor its handlers hear it again."""
        item_id = event.item.id
        if item_id not in self._echoes or event.type == "conversation.item.retrieved":
            return event
        if event.type in _LAST_ECHOES:
            self._echoes.discard(item_id)
        return None

    def _on_closed(self, event: ClosedEvent) -> Any:
        core = self._source()
        policy = self.policy
        with self._lock:
            if self._final_sent:  # a closing event after the last one: nothing to say
                return None
            rolling, self._rolling = core is not None and core is self._rolling, None
            if rolling and self._stopped:  # close() came as it was being replaced
                event = attrs.evolve(event, requested=True, error=None, retryable=False)
            self._echoes = set()
            self._cancel_timers()
            self._rollover_due = False
            episode = self._episode
            if self._stopped or policy is None or not self._established or event.requested:
                return self._final(event, episode)
            if episode is None:
                expired = _expired(event.error)
                if rolling or (expired and policy.rollover):
                    reason = "proactive" if rolling else "expired"
                    episode = _Episode("rollover", reason, time.monotonic(), _id(core))
                    if expired and time.monotonic() < self._settles_at:
                        # Expired as soon as it began: a server in a loop, not a lifetime.
                        episode.attempts = self._unsettled_attempts
                elif event.retryable and not expired:
                    episode = _Episode("reconnect", "", time.monotonic(), _id(core))
                    if time.monotonic() < self._settles_at:
                        episode.attempts = self._unsettled_attempts
                else:
                    return self._final(event, episode)
            if episode.attempts and (
                not event.retryable or policy.gives_up_after(episode.attempts)
            ):
                return self._final(event, episode)
            episode.attempts += 1
            silent = episode.kind == "rollover" and episode.attempts == 1
            delay = 0.0 if silent else policy.delay(episode.attempts, _retry_after(event.error))
            self._episode = episode
            with self.gap.lock:
                self.gap.hold()
            episode.arm(call_later(delay, lambda: self._launch(episode)))
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
        if episode is not None and episode.pending is not None:
            episode.pending.cancel()
        self._episode = None
        self._established = False
        self._final_sent = True
        with self.gap.lock:
            unsent = self.gap.discard()
        if unsent:
            logger.warning("%d events sent while reconnecting were never sent", unsent)
        if episode is None and not unsent:
            return event
        attempts = 0 if episode is None else episode.attempts
        return attrs.evolve(event, attempts=attempts, unsent=unsent)

    def _on_created(self, event: _Created) -> Any:
        core = self._source()
        with self._lock:
            episode, self._episode = self._episode, None
            self._established = True
            if episode is not None and episode.pending is not None:
                episode.pending.cancel()
            if episode is not None:
                self._unsettled_attempts = episode.attempts
                self._settles_at = time.monotonic() + _SETTLING_SECONDS
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
        """Send the replay, then what was queued; report what was carried over.

        Whatever goes wrong with one item (the server described it in a shape that cannot
        be sent back), the rest goes on and the queue is released: only the loss of the
        new connection stops it, and that connection's end starts the next attempt."""
        config: dict[str, Any] = {}
        events: list[dict[str, Any]] = []
        skipped: list[NotReplayed] = []
        if self.policy is not None and self.policy.replay:
            with self._lock:
                config = dict(self._config)
            events, skipped = replay_events(
                self._state.items, self._dialect, session_type=config.get("type")
            )
        replayed: list[str] = []
        updated = False
        sent = dropped = 0
        dropped_ms = 0.0
        with self.gap.lock:
            try:
                if config:
                    updated = self._send_replay({"type": "session.update", "session": config})
                for event in events:
                    item_id = event["item"]["id"]
                    if self._send_replay(event):
                        replayed.append(item_id)
                    else:
                        skipped.append(NotReplayed(item_id, "it cannot be sent as it was"))
                sent, dropped, dropped_ms = self.gap.release(self._host._send_data)
            except (NotConnectedError, TransportError) as exc:
                logger.info("the new connection was lost during the replay: %s", exc)
        if self.policy is not None and self.policy.replay:
            self._state.carry_over(set(replayed))
            self._echoes = set(replayed)
        if skipped:
            logger.info("%d items could not be replayed", len(skipped))
        return ReplayReport(
            replayed=tuple(replayed),
            not_replayed=tuple(skipped),
            session_updated=updated,
            sent=sent,
            dropped=dropped,
            dropped_audio_ms=dropped_ms,
        )

    def _send_replay(self, event: Mapping[str, Any]) -> bool:
        """Send one replayed event; False when it cannot be encoded (it is skipped)."""
        try:
            self._host._send_now(event)
        except InvalidEventError as exc:
            logger.warning("%s not replayed: %s", event["type"], exc)
            return False
        return True

    def _on_due(self, due: _Due) -> Any:
        if due.kind == "expiring":
            return SessionExpiringEvent(
                session_id=due.session_id,
                expires_at=due.expires_at,
                seconds_left=max(0.0, due.expires_at - time.time()),
            )
        with self._lock:
            if not due.look:
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
                if self._recheck is None:  # one look pending at a time
                    self._recheck = call_later(_RECHECK_SECONDS, lambda: self._look_again(core))
                return
            # Its closing event starts the next connection, as for a loss: so whatever
            # slipped in meanwhile (a send, a response the server began) is settled the
            # same way, and a close() meanwhile ends the client as usual.
            self._rollover_due = False
            self._rolling = core
        logger.info("rolling the session over before it expires")
        self._host._abandon_link(
            core, ConnectionClosed("the session was rolled over before its end"), polite=True
        )

    # --- with the lock held -----------------------------------------------------------------

    def _schedule(self, core: SessionCore, session: _Lifetime) -> None:
        """Set the deadlines of a new session."""
        self._cancel_timers()
        policy = self.policy or self._lifetime  # not reconnecting: the notice, no rollover
        now = time.time()
        given = session.expires_at
        try:
            expires_at = float(given) if isinstance(given, (int, float)) else 0.0
        except OverflowError:  # an integer beyond any float (the stdlib JSON parser's)
            expires_at = 0.0
        if not expires_at > now:  # past, missing, or NaN (the stdlib parser reads NaN)
            expires_at = now + (policy.session_seconds or default_session_seconds(self._azure))
        left = expires_at - now
        due = _Due("expiring", session.id, expires_at)
        self._timers.append(
            call_later(left - policy.expiring_notice, lambda: self._submit(core, due))
        )
        if self.policy is not None and policy.rollover:
            self._timers.append(
                # Never in the first half of a session's life: a window longer than the
                # session must not roll it over at once, and its successor after it.
                call_later(
                    max(left - policy.rollover_window, left / 2),
                    lambda: self._submit(core, _Due("rollover")),
                )
            )

    def _look_again(self, core: SessionCore) -> None:
        with self._lock:
            self._recheck = None
        self._submit(core, _Due("rollover"))

    def _cancel_timers(self) -> None:
        for timer in self._timers:
            timer.cancel()
        self._timers = []
        if self._recheck is not None:
            self._recheck.cancel()
            self._recheck = None

    # --- the clock thread, then an attempt's own thread -------------------------------------

    def _launch(self, episode: _Episode) -> None:
        threading.Thread(
            target=self._attempt, args=(episode,), name=f"{self._name}-reconnect", daemon=True
        ).start()

    def _attempt(self, episode: _Episode) -> None:
        with self._lock:
            if self._stopped or self._episode is not episode:
                return
            attempt = Attempt(episode.attempts, episode)
            error = ConnectionClosed(
                f"reconnect attempt {attempt.number}: no session within {self._connect_timeout} s"
            )
            # Armed before the attempt is prepared: a token provider that hangs counts too.
            episode.arm(
                call_later(
                    self._connect_timeout, lambda: self._host._give_up_attempt(attempt, error)
                )
            )
        self._host._open_link(attempt)


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
