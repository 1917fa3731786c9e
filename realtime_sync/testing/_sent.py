"""Assertions on what a client sent: matching received client events, and readable diffs.

An event matches expected fields when every expected field matches: a mapping matches a
mapping that has its keys with matching values (other keys are ignored, at any depth), a
list matches a list of the same length item by item, anything else by ``==`` (with the
expected value first, so ``unittest.mock.ANY`` matches anything).
"""

from __future__ import annotations

import reprlib
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from ._catalogue import JsonObject

__all__ = ["fields_match", "missing_message", "unexpected_message"]

_MAX_SHOWN = 5  # events of the asked type a message details

_short = reprlib.Repr()
_short.maxstring = 80
_short.maxother = 80
_short.maxdict = 8
_short.maxlist = 8
_short.maxlevel = 4


def fields_match(expected: object, actual: object) -> bool:
    """Whether ``actual`` has what ``expected`` asks for (see the module's docstring)."""
    return not _differences(expected, actual, "")


def _differences(expected: object, actual: object, path: str) -> list[str]:
    """One line per place where ``actual`` does not have what ``expected`` asks for."""
    if isinstance(expected, Mapping):
        if not isinstance(actual, Mapping):
            return [f"{path or 'the event'}: expected an object, got {_short.repr(actual)}"]
        lines = []
        for key, value in expected.items():
            where = f"{path}.{key}" if path else str(key)
            if key not in actual:
                lines.append(f"{where}: missing (expected {_short.repr(value)})")
            else:
                lines += _differences(value, actual[key], where)
        return lines
    if isinstance(expected, Sequence) and not isinstance(expected, (str, bytes)):
        if not isinstance(actual, Sequence) or isinstance(actual, (str, bytes)):
            return [f"{path}: expected a list, got {_short.repr(actual)}"]
        if len(actual) != len(expected):
            return [
                f"{path}: expected {len(expected)} items, got {len(actual)}: {_short.repr(actual)}"
            ]
        lines = []
        for index, (want, have) in enumerate(zip(expected, actual, strict=True)):
            lines += _differences(want, have, f"{path}[{index}]")
        return lines
    if expected == actual:
        return []
    return [f"{path}: expected {_short.repr(expected)}, got {_short.repr(actual)}"]


def _wanted(event_type: str, fields: Mapping[str, Any]) -> str:
    shown = ", ".join(f"{name}={_short.repr(value)}" for name, value in fields.items())
    return f"{event_type!r} event" + (f" with {shown}" if shown else "")


def _inventory(events: Sequence[JsonObject]) -> str:
    counts = Counter(str(event.get("type")) for event in events)
    if not counts:
        return "The client sent no event at all."
    listed = ", ".join(f"{name} x{count}" for name, count in counts.items())
    return f"Client events received, by type (first seen first): {listed}."


def missing_message(
    event_type: str, fields: Mapping[str, Any], events: Sequence[JsonObject]
) -> str:
    """Why no event of ``events`` is the ``event_type`` event with ``fields`` asked for."""
    lines = [f"The client sent no {_wanted(event_type, fields)}."]
    candidates = [
        (position, event)
        for position, event in enumerate(events, 1)
        if event.get("type") == event_type
    ]
    if candidates:
        lines.append(f"It sent {len(candidates)} {event_type!r} event(s); how they differ:")
        for position, event in candidates[-_MAX_SHOWN:]:
            lines.append(f"  client event #{position} of {len(events)}:")
            lines += [f"    {line}" for line in _differences(fields, event, "")]
        if len(candidates) > _MAX_SHOWN:
            lines.append(f"  (and {len(candidates) - _MAX_SHOWN} earlier ones)")
    lines.append(_inventory(events))
    return "\n".join(lines)


def unexpected_message(
    event_type: str, fields: Mapping[str, Any], matching: Sequence[tuple[int, JsonObject]]
) -> str:
    """Why the ``matching`` events (with their 1-based positions) should not have been sent."""
    lines = [f"Expected no {_wanted(event_type, fields)}; the client sent {len(matching)}:"]
    lines += [f"  client event #{position}: {_short.repr(event)}" for position, event in matching]
    return "\n".join(lines)
