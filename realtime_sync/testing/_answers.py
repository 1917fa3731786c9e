"""What a scripted model answers: the parts of one response a test declares.

A test hands these to :meth:`~._script.Script.respond`: plain strings and :class:`Text`,
:class:`Speech` and :class:`ToolCall` outputs, in order, optionally ended by a
:class:`Failure`; or a :class:`Refusal` alone. :class:`Answer` bundles one response's
parts with its timing; :mod:`._planning` turns it into the output items the responder
streams.
"""

from __future__ import annotations

import json
import math
import reprlib
from collections.abc import Mapping
from typing import Any, TypeAlias

import attrs

__all__ = ["Answer", "Failure", "Output", "Refusal", "Speech", "Text", "ToolCall"]

_short = reprlib.Repr()
_short.maxstring = 60
_short.maxother = 60


def _nonempty(_instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, str) or not value:
        raise ValueError(f"{attribute.name} must be a non-empty string, not {value!r}")


def _text(_instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, str):
        raise TypeError(f"{attribute.name} must be a string, not {type(value).__name__}")


def _arguments(value: Mapping[str, Any] | str) -> str:
    """Compact JSON of a mapping; a string as given (it may be invalid JSON on purpose)."""
    if isinstance(value, str):
        return value
    if not isinstance(value, Mapping):
        raise TypeError(
            f"ToolCall arguments must be a mapping or a JSON string, not {type(value).__name__}"
        )
    try:
        return json.dumps(dict(value), separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"ToolCall arguments are not JSON-serialisable: {exc}") from None


@attrs.frozen
class Text:
    """An assistant message in text, even when the response asks for audio."""

    text: str = attrs.field(validator=_text)
    """What the message says, streamed in ``delta_chunks`` text deltas."""


@attrs.frozen
class Speech:
    """A spoken assistant message (audio and its transcript), even when the response asks
    for text only."""

    transcript: str = attrs.field(validator=_text)
    """What is said; the audio is the server's synthesised speech of it (60 ms a character,
    in the response's output audio format), streamed 100 ms a delta."""


@attrs.frozen
class ToolCall:
    """A function call the model makes; the tool need not be declared in the session."""

    name: str = attrs.field(validator=_nonempty)
    """The function's name."""
    arguments: str = attrs.field(default="{}", converter=_arguments)
    """The call's arguments: a mapping, sent as compact JSON, or a string sent as given
    (invalid JSON tests how a client copes with it)."""
    call_id: str | None = attrs.field(default=None)
    """The call's ``call_id``; ``None``: a fresh ``call_...`` id for every use."""

    @call_id.validator
    def _check_call_id(self, attribute: attrs.Attribute[Any], value: object) -> None:
        if value is not None:
            _nonempty(self, attribute, value)


@attrs.frozen
class Refusal:
    """An ``error`` event instead of a response: no response starts, and the error names the
    ``response.create``'s ``event_id`` (a client raises it from the call that asked)."""

    code: str | None
    """The error's ``code``, e.g. ``"rate_limit_exceeded"``; ``None`` as in server errors."""
    message: str = attrs.field(validator=_text)
    """The error's ``message``."""
    type: str = attrs.field(default="invalid_request_error", validator=_nonempty)
    """The error's ``type``: ``"invalid_request_error"``, ``"server_error"``..."""
    param: str | None = None
    """The parameter the error is about, if any."""


@attrs.frozen
class Failure:
    """The response fails: ``response.done`` with status ``failed`` and ``status_details``
    ``{"type": "failed", "error": {...}}``, after the outputs given before it."""

    code: str | None = "server_error"
    """The error's ``code`` in ``status_details.error``."""
    message: str = attrs.field(default="The response failed.", validator=_text)
    """The error's ``message``."""
    type: str = attrs.field(default="server_error", validator=_nonempty)
    """The error's ``type``."""

    def status_details(self) -> dict[str, Any]:
        """The ``status_details`` of the failed response."""
        return {
            "type": "failed",
            "error": {"type": self.type, "code": self.code, "message": self.message},
        }


Output: TypeAlias = str | Text | Speech | ToolCall
"""One output item: a string is a message spoken or written as the response's output
modalities ask (like ``reply=``)."""


def _seconds(name: str, value: float | None) -> None:
    if value is not None and not (
        isinstance(value, (int, float)) and math.isfinite(value) and value >= 0
    ):
        raise ValueError(f"{name} must be a finite number of seconds, 0 or more, not {value!r}")


@attrs.frozen
class Answer:
    """One scripted response: its outputs in order, how it ends, and its timing."""

    outputs: tuple[Output, ...]
    """The output items, streamed one after the other."""
    ending: Failure | Refusal | None
    """A refusal instead of the response, a failure after the outputs, or ``None``: the
    response completes."""
    delay: float
    """Seconds between the ``response.create`` and its ``response.created``."""
    delta_interval: float | None
    """Seconds before each delta; ``None``: the server's ``delta_interval``."""

    @classmethod
    def of(cls, parts: tuple[object, ...], *, delay: float, delta_interval: float | None) -> Answer:
        """Check what a test passed to :meth:`~._script.Script.respond` and bundle it."""
        _seconds("delay", delay)
        _seconds("delta_interval", delta_interval)
        outputs: list[Output] = []
        ending: Failure | Refusal | None = None
        for position, part in enumerate(parts):
            if ending is not None:
                raise ValueError(
                    f"{type(ending).__name__} must be the last part of an answer; "
                    f"{part!r} comes after it"
                )
            if isinstance(part, Refusal):
                if parts[1:] or position:
                    raise ValueError("a Refusal replaces the whole response: give it alone")
                if delay or delta_interval is not None:
                    raise ValueError("a Refusal is sent at once: it takes no delay")
                ending = part
            elif isinstance(part, Failure):
                ending = part
            elif isinstance(part, (str, Text, Speech, ToolCall)):
                outputs.append(part)
            else:
                raise TypeError(
                    "an answer is made of strings, Text, Speech, ToolCall, and a final "
                    f"Failure, or a Refusal alone; not {type(part).__name__}"
                )
        return cls(tuple(outputs), ending, float(delay), delta_interval)

    def describe(self) -> str:
        """A short description for messages, e.g. ``tool call f({}), then 'Done'``."""
        if isinstance(self.ending, Refusal):
            return f"refusal ({self.ending.code}: {_short.repr(self.ending.message)})"
        parts = [_describe(output) for output in self.outputs]
        if isinstance(self.ending, Failure):
            parts.append(f"failure ({self.ending.code})")
        text = ", then ".join(parts) or "an empty response"
        if self.delay:
            text += f", after {self.delay:g} s"
        return text


def _describe(output: Output) -> str:
    if isinstance(output, str):
        return _short.repr(output)
    if isinstance(output, Text):
        return f"text {_short.repr(output.text)}"
    if isinstance(output, Speech):
        return f"speech {_short.repr(output.transcript)}"
    return f"tool call {output.name}({_short.repr(output.arguments)[1:-1]})"
