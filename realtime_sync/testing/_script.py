"""Scripting the model of a local server: declared answers per turn or by rule, checks on
what the client sent, and leftovers.

Every :class:`~._server.LocalRealtimeServer` and :class:`~._inprocess.InProcessTransport`
has a :class:`Script` (its ``script``), shared by all its connections. Each accepted
``response.create`` is a :class:`Turn`; :mod:`._planning` asks the script for its answer
with the session's lock held, the test thread adds answers and checks them: one re-entrant
lock guards the script's state, and predicates run under it on the server's thread.
"""

from __future__ import annotations

import copy
import os
import re
import reprlib
import sys
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

import attrs

from ._answers import Answer, Failure, Output, Refusal
from ._catalogue import JsonObject, check_times
from ._sent import fields_match, missing_message, unexpected_message

__all__ = ["Rule", "Script", "ScriptedAnswer", "Turn"]

_HERE = os.path.dirname(os.path.abspath(__file__))
_MAX_TURNS_SHOWN = 10  # turns a leftovers message lists

_short = reprlib.Repr()
_short.maxstring = 60


class _Observed(Protocol):
    """What a script reads of its server: the client events it received."""

    @property
    def received(self) -> list[JsonObject]: ...

    def wait_for_received(
        self,
        type: str | None = None,
        *,
        count: int = 1,
        predicate: Callable[[JsonObject], bool] | None = None,
        timeout: float = 5.0,
    ) -> list[JsonObject]: ...


@attrs.frozen
class Turn:
    """One response the client asked for (an accepted ``response.create``), as a rule's
    predicate and :attr:`ScriptedAnswer.turns` see it."""

    number: int
    """1 for the server's first response, across all its connections."""
    user_text: str
    """The last user message's text, or what the server heard of the last user audio
    (see ``transcribe``); ``""`` when the prompt has no user message."""
    function_outputs: tuple[Mapping[str, Any], ...] = attrs.field(repr=False)
    """The ``function_call_output`` items after the last user message, in order: not empty
    on the turn that follows tool calls."""
    response: Mapping[str, Any] = attrs.field(repr=False)
    """The ``response.create``'s ``response`` parameters (``{}`` when it had none)."""


def _origin() -> str:
    """``file.py:line`` of the first caller outside this package's testing modules."""
    frame = sys._getframe(1)
    while frame.f_back is not None and os.path.dirname(frame.f_code.co_filename) == _HERE:
        frame = frame.f_back
    return f"{os.path.basename(frame.f_code.co_filename)}:{frame.f_lineno}"


@attrs.frozen
class _Condition:
    """When a rule answers: every criterion given must hold."""

    predicate: Callable[[Turn], object] | None
    contains: str | None
    pattern: re.Pattern[str] | None

    def holds(self, turn: Turn) -> bool:
        if self.contains is not None and self.contains not in turn.user_text:
            return False
        if self.pattern is not None and self.pattern.search(turn.user_text) is None:
            return False
        return self.predicate is None or bool(self.predicate(turn))

    def describe(self) -> str:
        criteria = []
        if self.contains is not None:
            criteria.append(f"the user text contains {_short.repr(self.contains)}")
        if self.pattern is not None:
            criteria.append(f"the user text matches /{self.pattern.pattern}/")
        if self.predicate is not None:
            name = getattr(self.predicate, "__qualname__", None) or repr(self.predicate)
            criteria.append(f"{name}(turn)")
        return " and ".join(criteria)


class ScriptedAnswer:
    """One answer of a script: what it answers, when, how often, and how often it did.

    :meth:`Script.respond` and :meth:`Rule.respond` return it; read it to check which
    turns it answered.
    """

    def __init__(
        self,
        script: Script,
        answer: Answer,
        condition: _Condition | None,
        *,
        times: int | None,
        optional: bool,
        label: str,
    ) -> None:
        self._script = script
        self._answer = answer
        self._condition = condition
        self.times = times
        """How many turns it answers; ``None``: every turn it is offered."""
        self.optional = optional
        """Whether it may stay unused without failing :meth:`Script.verify`."""
        self.label = label
        """How messages name it, e.g. ``"answer #2 (in turn order, added at test_x.py:12)"``."""
        self._turns: list[Turn] = []

    @property
    def turns(self) -> list[Turn]:
        """The turns it answered, in order (a copy)."""
        with self._script._lock:
            return list(self._turns)

    @property
    def used(self) -> int:
        """How many turns it answered."""
        with self._script._lock:
            return len(self._turns)

    @property
    def exhausted(self) -> bool:
        """It answered ``times`` turns and answers no more."""
        with self._script._lock:
            return self.times is not None and len(self._turns) >= self.times

    @property
    def leftover(self) -> bool:
        """Not used as declared: fewer than ``times`` turns (at least one when ``times`` is
        ``None``), unless optional."""
        with self._script._lock:
            if self.optional:
                return False
            return len(self._turns) < (1 if self.times is None else self.times)

    @property
    def _short_label(self) -> str:
        """The label without where it was added, e.g. ``"rule #1"``."""
        return self.label.split(" (")[0]

    def _describe(self) -> str:
        used = len(self._turns)
        if self.times is None:
            count = f"used {used} time(s), declared for every turn"
        else:
            count = f"used {used} of {self.times} time(s)"
        return f"{self.label}: {self._answer.describe()}; {count}"

    def __repr__(self) -> str:
        with self._script._lock:
            return f"<ScriptedAnswer {self._describe()}>"


class Rule:
    """A condition waiting for its answer: :meth:`Script.when` returns it."""

    def __init__(self, script: Script, condition: _Condition) -> None:
        self._script = script
        self._condition = condition

    def respond(
        self,
        *parts: Output | Failure | Refusal,
        delay: float = 0.0,
        delta_interval: float | None = None,
        times: int | None = 1,
        optional: bool = False,
    ) -> ScriptedAnswer:
        """Answer turns that meet the condition; arguments as for :meth:`Script.respond`."""
        answer = Answer.of(parts, delay=delay, delta_interval=delta_interval)
        return self._script._add(answer, self._condition, times=times, optional=optional)


class Script:
    """What the simulated model answers, and checks of what the client sent.

    Each response the client asks for (a ``response.create``, on any connection) takes,
    in this order of precedence:

    1. the first rule (:meth:`when`), in the order they were added, whose condition holds
       and which has uses left;
    2. else the next answer in turn order (:meth:`respond`) with uses left;
    3. else the server's ``reply`` option, else its own default answer.

    Created by the server, as its ``script``; thread-safe. Leftovers, answers declared and
    not used as declared, fail :meth:`verify`, which the pytest fixture ``realtime_server``
    calls after each test and ``with server.script:`` on exit.
    """

    def __init__(self, server: _Observed) -> None:
        self._server = server
        self._lock = threading.RLock()
        self._in_order: list[ScriptedAnswer] = []
        self._rules: list[ScriptedAnswer] = []
        self._turns: list[tuple[Turn, str]] = []  # each with what answered it
        self._errors: list[str] = []  # predicates that raised

    # Declaring answers

    def respond(
        self,
        *parts: Output | Failure | Refusal,
        delay: float = 0.0,
        delta_interval: float | None = None,
        times: int | None = 1,
        optional: bool = False,
    ) -> ScriptedAnswer:
        """Add the answer of the next turn (after the turn answers added before it).

        Args:
            parts: The response's output items in order: a ``str`` (a message, spoken or
                written as the response's output modalities ask), :class:`Text`,
                :class:`Speech`, :class:`ToolCall` (several: parallel calls), then
                optionally a :class:`Failure`; or a :class:`Refusal` alone. None at all: a
                response with no output.
            delay: Seconds before the ``response.created``.
            delta_interval: Seconds before each delta (``None``: the server's option).
            times: How many turns it answers; ``None``: every turn from then on.
            optional: It may stay unused without failing :meth:`verify`.
        """
        answer = Answer.of(parts, delay=delay, delta_interval=delta_interval)
        return self._add(answer, None, times=times, optional=optional)

    def when(
        self,
        predicate: Callable[[Turn], object] | None = None,
        *,
        contains: str | None = None,
        matches: str | re.Pattern[str] | None = None,
    ) -> Rule:
        """A rule: the answer given to :meth:`Rule.respond` goes to the turns that meet
        every criterion given, before any turn answer.

        Args:
            predicate: Called with the :class:`Turn` on the server's thread, with the
                session's lock held: keep it quick, and call nothing on the server.
            contains: A substring of the turn's ``user_text`` (case-sensitive).
            matches: A regular expression searched in the turn's ``user_text`` (a string,
                or a compiled pattern with its flags).
        """
        if predicate is None and contains is None and matches is None:
            raise ValueError("when() needs a predicate, contains= or matches=")
        if predicate is not None and not callable(predicate):
            raise TypeError(f"the predicate must be callable, not {type(predicate).__name__}")
        pattern = re.compile(matches) if isinstance(matches, str) else matches
        return Rule(self, _Condition(predicate, contains, pattern))

    def _add(
        self, answer: Answer, condition: _Condition | None, *, times: int | None, optional: bool
    ) -> ScriptedAnswer:
        check_times(times, "every turn")
        origin = _origin()
        with self._lock:
            if condition is None:
                label = f"answer #{len(self._in_order) + 1} (in turn order, added at {origin})"
            else:
                label = (
                    f"rule #{len(self._rules) + 1} (when {condition.describe()}, added at {origin})"
                )
            entry = ScriptedAnswer(
                self, answer, condition, times=times, optional=optional, label=label
            )
            (self._in_order if condition is None else self._rules).append(entry)
        return entry

    def reset(self) -> None:
        """Forget every answer, turn and error so far."""
        with self._lock:
            self._in_order.clear()
            self._rules.clear()
            self._turns.clear()
            self._errors.clear()

    # What happened

    @property
    def answers(self) -> list[ScriptedAnswer]:
        """Every answer added: rules first, then turn answers, each in the order added."""
        with self._lock:
            return self._rules + self._in_order

    @property
    def turns(self) -> list[Turn]:
        """Every turn so far, scripted or not, in order."""
        with self._lock:
            return [turn for turn, _ in self._turns]

    @property
    def leftovers(self) -> list[ScriptedAnswer]:
        """The answers not used as declared (see :attr:`ScriptedAnswer.leftover`)."""
        with self._lock:
            return [entry for entry in self._rules + self._in_order if entry.leftover]

    def verify(self) -> None:
        """Raise :exc:`AssertionError` if an answer is left over or a predicate raised.

        The message lists each leftover (what it answers, where it was added, how often
        it was used) and the turns so far with what answered them.
        """
        with self._lock:
            leftovers = [entry for entry in self._rules + self._in_order if entry.leftover]
            if not leftovers and not self._errors:
                return
            lines = []
            if leftovers:
                lines.append(
                    f"{len(leftovers)} scripted answer(s) of the local Realtime server "
                    "were not used as declared:"
                )
                lines += [f"  - {entry._describe()}" for entry in leftovers]
            if self._errors:
                lines.append("Rule predicates raised (the client got a server_error):")
                lines += [f"  - {error}" for error in self._errors]
            lines.append(self._turns_summary())
        raise AssertionError("\n".join(lines))

    def _turns_summary(self) -> str:
        if not self._turns:
            return "The client asked for no response."
        lines = [f"The client asked for {len(self._turns)} response(s):"]
        shown = self._turns[-_MAX_TURNS_SHOWN:]
        if len(self._turns) > len(shown):
            lines.append(f"  ... ({len(self._turns) - len(shown)} earlier)")
        for turn, answered in shown:
            lines.append(
                f"  {turn.number}. after user text {_short.repr(turn.user_text)}: {answered}"
            )
        return "\n".join(lines)

    def __enter__(self) -> Script:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *_rest: object) -> None:
        """:meth:`verify`, unless the block raised (its error is the one to see)."""
        if exc_type is None:
            self.verify()

    # What the client sent

    def sent(self, event_type: str | None = None) -> list[JsonObject]:
        """The client events the server received (all connections, in order), or those of
        ``event_type``; treat them as read-only."""
        return [
            event
            for event in self._server.received
            if event_type is None or event.get("type") == event_type
        ]

    def assert_sent(self, event_type: str, /, *, timeout: float = 1.0, **fields: Any) -> JsonObject:
        """Return the first ``event_type`` event the client sent with ``fields``; wait for
        it up to ``timeout`` seconds, then raise :exc:`AssertionError` showing how the
        events of that type differ.

        ``fields`` match as in ``session={"instructions": "Be brief."}``: nested objects
        need only the keys given, lists match item by item, ``unittest.mock.ANY`` matches
        anything.
        """
        try:
            return self._server.wait_for_received(
                event_type, predicate=lambda event: fields_match(fields, event), timeout=timeout
            )[0]
        except TimeoutError:
            pass
        raise AssertionError(missing_message(event_type, fields, self._server.received))

    def assert_not_sent(self, event_type: str, /, **fields: Any) -> None:
        """Raise :exc:`AssertionError` if the client sent an ``event_type`` event with
        ``fields`` (matched as in :meth:`assert_sent`) so far."""
        matching = [
            (position, event)
            for position, event in enumerate(self._server.received, 1)
            if event.get("type") == event_type and fields_match(fields, event)
        ]
        if matching:
            raise AssertionError(unexpected_message(event_type, fields, matching))

    # The server's side

    def _answer_turn(
        self,
        user_text: str,
        function_outputs: Sequence[Mapping[str, Any]],
        response: Mapping[str, Any],
    ) -> Answer | None:
        """The answer of a new turn, or ``None``: not scripted. Records the turn.

        Called by the simulated sessions when they accept a ``response.create``; a
        predicate's exception propagates (and is reported by :meth:`verify`).
        """
        with self._lock:
            turn = Turn(
                number=len(self._turns) + 1,
                user_text=user_text,
                function_outputs=tuple(copy.deepcopy(list(function_outputs))),
                response=copy.deepcopy(dict(response)),
            )
            chosen = self._choose(turn)
            if chosen is None:
                self._turns.append((turn, "not scripted"))
                return None
            self._turns.append((turn, chosen._short_label))
            chosen._turns.append(turn)
            return chosen._answer

    def _choose(self, turn: Turn) -> ScriptedAnswer | None:
        for entry in self._rules:
            if entry.exhausted:
                continue
            assert entry._condition is not None
            try:
                holds = entry._condition.holds(turn)
            except Exception as exc:
                self._errors.append(f"{entry.label} on turn {turn.number}: {exc!r}")
                failure = f"{type(exc).__name__} in the predicate of {entry._short_label}"
                self._turns.append((turn, failure))
                raise
            if holds:
                return entry
        return next((entry for entry in self._in_order if not entry.exhausted), None)
