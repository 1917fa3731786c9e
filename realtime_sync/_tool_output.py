"""What a tool call's result, or its exception, becomes in ``function_call_output.output``.

:func:`result_output` turns any return value into text (a ``str`` as it is, anything else
as compact JSON); :func:`error_output` turns an exception into ``{"error": "Type: message"}``.
Both mask registered secrets.
"""

from __future__ import annotations

import collections.abc
import dataclasses
import datetime
import decimal
import enum
import json
import math
import pathlib
import re
import uuid
from collections.abc import Mapping
from typing import Any

import attrs

from ._models import Model
from ._secrets import redact

__all__ = ["error_output", "result_output"]

_SURROGATE = re.compile("[\ud800-\udfff]")
_MAX_ERROR = 2000  # characters of an error message the model sees
_MAX_DEPTH = 100  # nesting of a result turned into JSON before the rest is str()-ed


def _clean(text: str) -> str:
    """``text`` that UTF-8 can carry (lone surrogates replaced), secrets masked."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = _SURROGATE.sub("\ufffd", text)
    return redact(text)


def _to_text(value: Any) -> str:
    try:
        return str(value)
    except Exception:
        return f"<{type(value).__name__} object>"


def _key(key: Any) -> str:
    if isinstance(key, str):
        return key
    if isinstance(key, enum.Enum):
        return _key(key.value)
    if key is None or isinstance(key, (bool, int, float)):
        return json.dumps(key)
    return _to_text(key)


def _jsonable(value: Any, depth: int, active: set[int]) -> Any:
    """``value`` as plain JSON data; what JSON has no form for becomes its ``str()``."""
    if value is None or type(value) in (str, bool, int):
        return value
    if isinstance(value, enum.Enum):
        return _jsonable(value.value, depth, active)
    if isinstance(value, str):
        return str(value)
    if isinstance(value, int):  # bool cannot be subclassed: an int subclass
        return int(value)
    if isinstance(value, float):
        return float(value) if math.isfinite(value) else _to_text(value)
    if isinstance(value, (datetime.date, datetime.time)):
        return value.isoformat()
    if isinstance(value, (uuid.UUID, decimal.Decimal, pathlib.PurePath)):
        return str(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).decode("utf-8", "replace")
    if depth >= _MAX_DEPTH or id(value) in active:
        return _to_text(value)
    active.add(id(value))
    try:
        return _jsonable_container(value, depth + 1, active)
    finally:
        active.discard(id(value))


def _jsonable_container(value: Any, depth: int, active: set[int]) -> Any:
    if isinstance(value, Model):
        value = value.to_dict()
    if isinstance(value, Mapping):
        return {_key(key): _jsonable(item, depth, active) for key, item in value.items()}
    if isinstance(value, (list, tuple, collections.abc.Sequence)) and not isinstance(value, str):
        return [_jsonable(item, depth, active) for item in value]
    if isinstance(value, (set, frozenset)):
        items = [_jsonable(item, depth, active) for item in value]
        return sorted(items, key=lambda item: json.dumps(item, sort_keys=True))
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = dataclasses.fields(value)
        return {item.name: _jsonable(getattr(value, item.name), depth, active) for item in fields}
    if attrs.has(type(value)):
        fields = attrs.fields(type(value))
        return {item.name: _jsonable(getattr(value, item.name), depth, active) for item in fields}
    dump = getattr(value, "model_dump", None)  # a pydantic model
    if callable(dump) and not isinstance(value, type):
        try:
            return _jsonable(dump(mode="json"), depth, active)
        except Exception:
            return _to_text(value)
    return _to_text(value)


def result_output(value: Any) -> str:
    """What a tool's return value becomes in ``function_call_output.output``.

    A ``str`` is sent as it is; anything else as compact JSON: None is ``null``, dataclasses,
    attrs classes, pydantic models and our models become objects, tuples and sets arrays
    (sets sorted), enums their values, dates ISO 8601 text, and what JSON cannot hold
    (an arbitrary object, NaN) its ``str()``. Registered secrets are masked.
    """
    if isinstance(value, str):
        return _clean(str(value))
    data = _jsonable(value, 0, set())
    return _clean(json.dumps(data, ensure_ascii=False, separators=(",", ":"), allow_nan=False))


def error_output(exc: BaseException) -> str:
    """The ``function_call_output.output`` for a call that failed: ``{"error": "Type: message"}``.

    The message is the exception's ``str()`` with registered secrets masked, cut to 2000
    characters; there is no traceback (that belongs in the application's logs).
    """
    message = _clean(_to_text(exc)).strip()
    text = f"{type(exc).__name__}: {message}" if message else type(exc).__name__
    if len(text) > _MAX_ERROR:
        text = text[: _MAX_ERROR - 1] + "…"
    return json.dumps({"error": text}, ensure_ascii=False)
