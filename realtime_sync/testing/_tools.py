"""Function calling in simulated sessions: when a response calls tools, and what it says after.

A user asks for a call in plain text: ``call <name> <json-object>``, e.g. ``call get_weather
{"city": "Paris"}``; several requests in one text (``call a {...} and call b {...}``) are
parallel calls of one response. A request counts when ``<name>`` is a function tool of the
response (its ``tools``, else the session's) and ``tool_choice`` is not ``"none"``; the
arguments are sent as the compact JSON of the object.

Once the conversation holds ``function_call_output`` items after the last user message, the
next default answer reports them: ``"Result of <name>: <output>"``, one sentence per output
joined by a space.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import attrs

__all__ = ["FunctionCall", "pending_outputs", "requested_calls", "results_answer"]

_REQUEST = re.compile(r"\bcall\s+([A-Za-z0-9_.-]+)\s*(?=\{)")
_DECODER = json.JSONDecoder()


@attrs.frozen
class FunctionCall:
    """One function call a response makes."""

    name: str
    arguments: str  # compact JSON


def _function_names(tools: object) -> set[str]:
    names = set()
    if isinstance(tools, list):
        for tool in tools:
            if isinstance(tool, Mapping) and tool.get("type", "function") == "function":
                name = tool.get("name")
                if isinstance(name, str):
                    names.add(name)
    return names


def requested_calls(text: str, tools: object, tool_choice: object) -> list[FunctionCall]:
    """The calls ``text`` asks for, among the function ``tools`` (none if ``tool_choice`` is
    ``"none"``)."""
    if tool_choice == "none":
        return []
    names = _function_names(tools)
    calls = []
    for match in _REQUEST.finditer(text):
        name = match.group(1)
        if name not in names:
            continue
        try:
            arguments, _end = _DECODER.raw_decode(text, match.end())
        except ValueError:
            continue
        if isinstance(arguments, dict):
            encoded = json.dumps(arguments, separators=(",", ":"), ensure_ascii=False)
            calls.append(FunctionCall(name, encoded))
    return calls


def pending_outputs(items: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The ``function_call_output`` items after the last user message."""
    outputs: list[Mapping[str, Any]] = []
    for item in reversed(items):
        if item.get("type") == "message" and item.get("role") == "user":
            break
        if item.get("type") == "function_call_output":
            outputs.append(item)
    outputs.reverse()
    return outputs


def results_answer(outputs: Iterable[Mapping[str, Any]], items: Iterable[Mapping[str, Any]]) -> str:
    """``"Result of <name>: <output>"`` for each output (the name of its call, by ``call_id``)."""
    names = {
        item.get("call_id"): item.get("name")
        for item in items
        if item.get("type") == "function_call"
    }
    sentences = []
    for output in outputs:
        name = names.get(output.get("call_id")) or "the function"
        sentences.append(f"Result of {name}: {output.get('output', '')}")
    return " ".join(sentences)
