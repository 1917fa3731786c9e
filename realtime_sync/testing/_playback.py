"""Playing a recorded session back: the server side of a recording, to whatever client connects.

**What "replay" means.** A recording holds what one client sent and what the server sent
it. Playing it back to a new connection sends the *server's* side again, event for event
as recorded (ids, texts, usage...), whatever that client sends; nothing is simulated and
nothing the client sends changes what comes. The client's recorded events only pace the
playback:

- the server events are cut into *turns* where the recording shows the server answering the
  client: each run of server events that follows client events starts a turn, and its
  *cue* is the last of those client events (the run's ``input_audio_buffer.append`` events
  are never cues: real servers answer no append). The first turn, the server events before
  any client event (``session.created``...), has no cue;
- a turn with a cue plays once the connecting client has sent as many events of the cue's
  type as the recording had up to the cue (its second ``response.create`` releases the turn
  the second recorded ``response.create`` started), and not before the turn before it has
  played; events the client sends that are no cue are recorded by the server and not
  answered;
- within a turn, each event goes out as long after the turn began (the client's cue, or the
  connection for the first turn) as it came after the recorded cue (or the turn's first
  event), divided by ``speed``: 1.0 the original timing, 2.0 twice as fast, ``None`` as fast
  as possible. Events recorded without a time (server-side traces) go out at once.

So a client that does what the recorded client did meets what it met, at the same pace; a
client that never sends a cue waits for that turn forever, with the connection open. When
the recording has no ``session.created`` (a recording started after connecting, a trace
of one response), the server opens with its own ``session.created`` first (in the
connection's dialect), so that clients can connect. After the last turn the connection stays
open and silent. Every connection plays the whole recording, from the start. The server's
handshake faults, ``push()``, closes, drops and ``expire_sessions()`` work as usual;
``drop_during_response`` and ``session_lifetime`` act only on simulated sessions.

Two rewrites keep the played events usable. The identifiers the recorded client chose (its
events' ``event_id``, its items' ``id``, values of a ``metadata`` object) are replaced
where the server's events echo them (``id``, ``event_id``, ``item_id``,
``previous_item_id``, ``metadata`` values) by those the connecting client chose in the
matching event (the n-th of the same type): so an ``error`` still names the event that
caused it, and a response still carries the tag its request gave it. Audio the recorder
elided (``"<N bytes of audio>"``) becomes N bytes of silence in the session's output format.

**Files read** (JSON Lines; blank lines skipped): recordings written by
``RealtimeClient.record()`` (``{"time": ..., "direction": "sent" | "received", "event":
{...}}``), and server-side traces such as those in ``tests/conformance/``: a bare server
event per line (``{"type": ..., ...}``), or one wrapped as ``{"event": {...}, ...}``.
"""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import math
import os
import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeAlias

import attrs

from ._catalogue import JsonObject

__all__ = [
    "Playback",
    "PlaybackCursor",
    "PlaybackError",
    "PlaybackSession",
    "PlaybackSource",
    "as_playback",
    "play",
]

_log = logging.getLogger("realtime_sync.testing")

# Real servers answer no append: appends stream while a response plays, and must not start
# a turn in the middle of it.
_NEVER_CUES = frozenset({"input_audio_buffer.append"})
_ELIDED_AUDIO = re.compile(r"<(\d+) bytes of audio>")
_AUDIO_DELTAS = frozenset({"response.output_audio.delta", "response.audio.delta"})
_Path = tuple[str | int, ...]  # where a value is in an event: keys and list indexes
# Where a server event may echo an identifier the client chose (text never: a delta that
# happens to equal a metadata value stays as recorded).
_ECHOES = frozenset({"id", "event_id", "item_id", "previous_item_id", "metadata"})
# The deepest nesting of objects and arrays a line may have: events are played by recursive
# code (two frames a level), and recordings nest far less.
_MAX_DEPTH = 200
# The byte that encodes silence in each output format (G.711 encodes zero as 0xFF / 0xD5).
_SILENCE = {"audio/pcmu": 0xFF, "g711_ulaw": 0xFF, "audio/pcma": 0xD5, "g711_alaw": 0xD5}


class PlaybackError(ValueError):
    """A file that is not a recording or server-side trace (the message names the line)."""


@attrs.frozen
class ScheduledEvent:
    """One server event of a turn."""

    offset: float
    """Recorded seconds after the turn's start (its cue, or its first event)."""
    event: JsonObject


@attrs.frozen
class PlaybackTurn:
    """Server events played together, once the client has sent the turn's cue."""

    cue: tuple[str, int] | None
    """The client event that releases the turn: its type and which one of that type it is
    (1 for the first); ``None`` for the first turn, played on connection."""
    events: tuple[ScheduledEvent, ...]


@attrs.frozen
class Playback:
    """A recording made ready to play: its turns and pace. Immutable: one serves every
    connection. Build it with :meth:`load` or :meth:`from_lines`."""

    turns: tuple[PlaybackTurn, ...]
    speed: float | None = 1.0
    """1.0 the recorded timing, 2.0 twice as fast, ``None`` (or 0) as fast as possible."""
    source: str = "<recording>"
    """Where it was read from (for messages)."""
    client_ids: Mapping[tuple[str, int], Mapping[_Path, str]] = attrs.field(
        factory=dict, repr=False
    )
    """The identifiers each recorded client event chose, by (type, ordinal)."""

    def __attrs_post_init__(self) -> None:
        speed = self.speed
        if speed is not None and (
            isinstance(speed, bool) or not (math.isfinite(speed) and speed >= 0)
        ):
            raise ValueError("speed must be None or a finite factor, 0 or more")

    @classmethod
    def load(cls, path: str | os.PathLike[str], *, speed: float | None = 1.0) -> Playback:
        """Read a recording or trace file (see the module's documentation).

        Raises :exc:`OSError` when it cannot be read, :exc:`PlaybackError` when it is not a
        recording or holds no server event.
        """
        with open(path, encoding="utf-8-sig") as lines:  # a byte order mark is no JSON
            return cls.from_lines(lines, speed=speed, source=os.fspath(path))

    @classmethod
    def from_lines(
        cls, lines: Iterable[str], *, speed: float | None = 1.0, source: str = "<recording>"
    ) -> Playback:
        """A playback of JSON lines, as :meth:`load` reads them."""
        builder = _TurnBuilder()
        for number, line in enumerate(lines, 1):
            if line.strip():
                builder.add(*_entry(line, f"{source}, line {number}"))
        turns = builder.turns
        if not turns:
            raise PlaybackError(f"{source}: no server event to play")
        return cls(turns, speed, source, builder.client_ids)

    @property
    def event_types(self) -> list[str]:
        """The types of the server events played, in order (an opening the server adds
        not included)."""
        return [scheduled.event["type"] for turn in self.turns for scheduled in turn.events]

    @property
    def needs_opening(self) -> bool:
        """The recording does not start with ``session.created``: the server sends its own."""
        return self.event_types[0] != "session.created"

    @property
    def duration(self) -> float:
        """Seconds of recorded offsets, summed over the turns (the least a playback at
        speed 1.0 takes, whatever the client's own pace)."""
        return sum(max((e.offset for e in turn.events), default=0.0) for turn in self.turns)


PlaybackSource: TypeAlias = Playback | str | os.PathLike[str]
"""A playback, or the path of a file to read as one."""


def as_playback(source: PlaybackSource | None) -> Playback | None:
    """``source`` itself, or the file it names read at its recorded pace."""
    return source if source is None or isinstance(source, Playback) else Playback.load(source)


def _entry(line: str, where: str) -> tuple[float | None, str, JsonObject]:
    """(time, direction, event) of one line in any of the formats read."""
    try:
        record = _DECODER.decode(line)
    except _NotJson as exc:
        raise PlaybackError(f"{where}: {exc} is not JSON") from None
    except RecursionError:
        raise PlaybackError(f"{where}: nested more than {_MAX_DEPTH} levels deep") from None
    except ValueError:
        raise PlaybackError(f"{where}: not a JSON object (is this a JSONL recording?)") from None
    if not isinstance(record, dict):
        raise PlaybackError(f"{where}: not a JSON object")
    deep_enough = line.count("{") + line.count("[") > _MAX_DEPTH  # or no need to look
    if deep_enough and _nested_deeper(record, _MAX_DEPTH):  # it would fail to play
        raise PlaybackError(f"{where}: nested more than {_MAX_DEPTH} levels deep")
    direction = record.get("direction", "received")
    event = record.get("event", record)
    when = record.get("time")
    if direction not in ("sent", "received"):
        raise PlaybackError(f"{where}: direction must be 'sent' or 'received'")
    if not isinstance(event, dict) or not isinstance(event.get("type"), str):
        raise PlaybackError(f"{where}: no event with a string 'type'")
    if when is not None and (
        isinstance(when, bool) or not (isinstance(when, (int, float)) and math.isfinite(when))
    ):
        raise PlaybackError(f"{where}: 'time' must be a number of seconds")
    return (None if when is None else float(when)), direction, event


class _NotJson(Exception):
    """NaN, Infinity or -Infinity: Python's json reads them, no other JSON parser does."""


def _refuse_constant(name: str) -> Any:
    raise _NotJson(name)


_DECODER = json.JSONDecoder(parse_constant=_refuse_constant)


def _nested_deeper(value: object, limit: int) -> bool:
    """Whether ``value`` nests objects and arrays more than ``limit`` levels deep."""
    todo: list[tuple[object, int]] = [(value, 1)]  # containers only
    while todo:
        each, depth = todo.pop()
        if depth > limit:
            return True
        children = each.values() if isinstance(each, dict) else each
        assert isinstance(children, Iterable)
        todo.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))
    return False


class _TurnBuilder:
    """Cuts a recording's entries into turns (see the module's documentation)."""

    def __init__(self) -> None:
        self.client_ids: dict[tuple[str, int], dict[_Path, str]] = {}
        self._turns: list[tuple[tuple[str, int] | None, list[ScheduledEvent]]] = []
        self._counts: dict[str, int] = {}
        self._cue: tuple[str, int, float | None] | None = None  # not answered yet
        self._anchor: float | None = None  # the recorded start of the current turn
        self._silence = 0  # the byte of silence in the current output format

    @property
    def turns(self) -> tuple[PlaybackTurn, ...]:
        return tuple(PlaybackTurn(cue, tuple(events)) for cue, events in self._turns)

    def add(self, when: float | None, direction: str, event: JsonObject) -> None:
        kind = event["type"]
        if direction == "sent":
            ordinal = self._counts[kind] = self._counts.get(kind, 0) + 1
            self.client_ids[(kind, ordinal)] = _identifiers(event)
            if kind not in _NEVER_CUES:
                self._cue = (kind, ordinal, when)
            return
        if self._cue is not None or not self._turns:  # the server answers: a new turn
            cue, self._cue = self._cue, None
            self._anchor = when if cue is None else cue[2]
            self._turns.append((None if cue is None else cue[:2], []))
        if self._anchor is None:  # a cue recorded without a time
            self._anchor = when
        offset = 0.0 if when is None or self._anchor is None else max(0.0, when - self._anchor)
        self._follow_format(event)
        _restore_audio(event, self._silence)
        self._turns[-1][1].append(ScheduledEvent(offset, event))

    def _follow_format(self, event: JsonObject) -> None:
        session = event.get("session") if event["type"].startswith("session.") else None
        if not isinstance(session, dict):
            return
        audio = session.get("audio")
        output = audio.get("output") if isinstance(audio, dict) else None
        ga_format = output.get("format") if isinstance(output, dict) else None
        chosen = session.get("output_audio_format")  # beta
        if isinstance(ga_format, dict):
            chosen = ga_format.get("type")
        if isinstance(chosen, str):
            self._silence = _SILENCE.get(chosen, 0)


def _restore_audio(event: JsonObject, silence: int) -> None:
    """Elided audio (``"<N bytes of audio>"``) back to N bytes of silence, in place."""

    def restored(value: Any) -> Any:
        match = _ELIDED_AUDIO.fullmatch(value) if isinstance(value, str) else None
        if match is None:
            return value
        return base64.b64encode(bytes([silence]) * int(match.group(1))).decode("ascii")

    if event["type"] in _AUDIO_DELTAS:
        event["delta"] = restored(event.get("delta"))
    item, part = event.get("item"), event.get("part")
    parts = item.get("content") if isinstance(item, dict) else [part]
    for each in parts if isinstance(parts, list) else ():
        if isinstance(each, dict) and "audio" in each:
            each["audio"] = restored(each["audio"])


def _identifiers(value: Any, path: _Path = (), chosen: bool = False) -> dict[_Path, str]:
    """The identifiers a client chose in an event, by where they are: strings under an
    ``id`` or ``event_id`` key, or in a ``metadata`` object."""
    found: dict[_Path, str] = {}
    if isinstance(value, str) and chosen:
        found[path] = value
    elif isinstance(value, dict):
        for key, each in value.items():
            named = key in ("id", "event_id") or (bool(path) and path[-1] == "metadata")
            found.update(_identifiers(each, (*path, key), named))
    elif isinstance(value, list):
        for index, each in enumerate(value):
            found.update(_identifiers(each, (*path, index)))
    return found


def _renamed(value: Any, renames: Mapping[str, str], echo: bool = False) -> Any:
    """A copy of ``value`` with the identifiers ``renames`` has replaced where they are
    echoed (see :data:`_ECHOES`)."""
    if isinstance(value, str):
        return renames.get(value, value) if echo else value
    if isinstance(value, dict):
        return {key: _renamed(each, renames, echo or key in _ECHOES) for key, each in value.items()}
    if isinstance(value, list):
        return [_renamed(each, renames, echo) for each in value]
    return value


class PlaybackCursor:
    """Where one connection's playback is: pure, the time is passed in (any monotonic
    clock, in seconds). Not thread-safe: :class:`PlaybackSession` guards it."""

    def __init__(self, playback: Playback) -> None:
        self._playback = playback
        self._arrivals: dict[str, list[float]] = {}  # when each client event type came
        self._renames: dict[str, str] = {}  # recorded client identifier -> the live one
        self._turn = 0
        self._next = 0  # the next event of the current turn
        self._started: float | None = None  # when the current turn began playing
        self._free_at = -math.inf  # when the previous turn's last event was due

    @property
    def finished(self) -> bool:
        """Every event was handed out."""
        return self._turn >= len(self._playback.turns)

    def client_event(self, event: Mapping[str, Any], now: float) -> None:
        """Note an event the connecting client sent, at ``now``."""
        kind = event.get("type")
        if not isinstance(kind, str):
            return
        arrivals = self._arrivals.setdefault(kind, [])
        arrivals.append(now)
        recorded = self._playback.client_ids.get((kind, len(arrivals)), {})
        if recorded:
            live = _identifiers(event)
            for path, name in recorded.items():
                if live.get(path, name) != name:
                    self._renames[name] = live[path]

    def due(self, now: float) -> tuple[list[JsonObject], float | None]:
        """The events to send at ``now``, in order, and the seconds until the next one is
        due (``None``: it waits for a client event, or the playback is finished)."""
        turns, speed = self._playback.turns, self._playback.speed
        out: list[JsonObject] = []
        while self._turn < len(turns):
            turn = turns[self._turn]
            if self._started is None:
                cued_at = self._cued_at(turn.cue, now)
                if cued_at is None:
                    return out, None
                self._started = max(cued_at, self._free_at)
            while self._next < len(turn.events):
                scheduled = turn.events[self._next]
                due_at = self._started + (scheduled.offset / speed if speed else 0.0)
                if due_at > now:
                    return out, due_at - now
                out.append(_renamed(scheduled.event, self._renames))
                self._next += 1
                self._free_at = due_at
            self._turn, self._next, self._started = self._turn + 1, 0, None
        return out, None

    def _cued_at(self, cue: tuple[str, int] | None, now: float) -> float | None:
        if cue is None:
            return now
        kind, ordinal = cue
        arrivals = self._arrivals.get(kind, ())
        return arrivals[ordinal - 1] if len(arrivals) >= ordinal else None


class PlaybackSession:
    """Plays a :class:`Playback` to one connection, on a thread of its own.

    The transport calls :meth:`start`, :meth:`receive` with every client frame, and
    :meth:`stop` when the connection ends. ``send`` sends one JSON text frame; when it
    raises, the connection is gone and the playback ends quietly.
    """

    def __init__(
        self,
        playback: Playback,
        *,
        send: Callable[[str], None],
        on_received: Callable[[JsonObject], None] | None = None,
    ) -> None:
        self._cursor = PlaybackCursor(playback)
        self._send = send
        self._on_received = on_received
        self._cond = threading.Condition()
        self._stopped = False
        self._thread = threading.Thread(
            target=self._run, name="realtime_sync-local-server-playback", daemon=True
        )

    def start(self) -> None:
        """Start playing: the first turn goes out at once."""
        self._thread.start()

    def receive(self, frame: str | bytes) -> None:
        """Take one client frame: recorded (``on_received``), and a cue if it is one.
        Frames that are not JSON objects are ignored: a recording answers nothing."""
        with contextlib.suppress(ValueError, RecursionError):
            event = json.loads(frame) if isinstance(frame, str) else None
            if isinstance(event, dict):
                if self._on_received is not None:
                    self._on_received(event)
                with self._cond:
                    self._cursor.client_event(event, time.monotonic())
                    self._cond.notify_all()

    def stop(self, timeout: float) -> None:
        """Stop playing and join the thread."""
        with self._cond:
            self._stopped = True
            self._cond.notify_all()
        if self._thread.ident is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)

    def _run(self) -> None:
        while True:
            with self._cond:
                if self._stopped or self._cursor.finished:
                    return
                events, wait = self._cursor.due(time.monotonic())
                if not events:
                    self._cond.wait(wait)
                    continue
            try:  # outside the lock: a slow socket must not hold up receive()
                for event in events:
                    self._send(json.dumps(event, separators=(",", ":"), ensure_ascii=False))
            except Exception as exc:  # the transport's own error: the connection is gone
                _log.debug("playback ended: the connection is gone (%r)", exc)
                return


def play(
    playback: Playback,
    frames: Iterable[str | bytes],
    send: Callable[[str], None],
    open_session: Callable[[], None],
    on_received: Callable[[JsonObject], None] | None = None,
    *,
    join_timeout: float = 5.0,
) -> None:
    """Play ``playback`` on one connection, until ``frames`` (its client frames) ends;
    the playback thread is joined before it returns.

    ``send`` sends one text frame, ``open_session`` the server's own ``session.created``
    (called when the recording has none), ``on_received`` records each client event.
    """
    session = PlaybackSession(playback, send=send, on_received=on_received)
    if playback.needs_opening:
        open_session()
    session.start()
    try:
        for frame in frames:
            session.receive(frame)
    finally:
        session.stop(join_timeout)
