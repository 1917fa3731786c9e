"""JSON for the wire: orjson when it is installed, the standard library otherwise.

``encode_client_event`` is the one way client events are encoded: it checks the event and
encodes it in one go, and what it accepts, refuses and writes is the same with either
backend. What it refuses it names by path (``session.tools[0].parameters.x: ...``), so a
mistake is found where it was made and nothing half-valid reaches the wire.
"""

from __future__ import annotations

import json
import math
import uuid
from collections.abc import Callable, Mapping
from enum import Enum
from typing import Any, NoReturn

from ._errors import InvalidEventError
from ._models import Model, ReadOnlyDict, ReadOnlyList
from ._secrets import redact

__all__ = ["MAX_DEPTH", "dumps", "encode_client_event", "loads"]

loads: Callable[[str | bytes], Any]
dumps: Callable[[Any], bytes]

MAX_DEPTH = 500
"""Deepest nesting of objects and arrays a client event may have."""

_SEARCH_LIMIT = 64 * 1024


def _default(value: Any) -> Any:
    """What the encoders do with values JSON has no type for: a few become JSON."""
    kind = type(value)
    if kind is ReadOnlyDict or kind is ReadOnlyList:
        return value._data
    if isinstance(value, Model):
        return value.to_dict()
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, float):  # a float subclass orjson does not take as a float
        return float(value)
    raise TypeError(f"object of type {kind.__name__!r} is not JSON serializable")


_strict_encoder = json.JSONEncoder(
    ensure_ascii=False,
    separators=(",", ":"),
    allow_nan=False,
    check_circular=False,  # the walk before it refuses cycles, as nesting too deep
    default=_default,
)


def _made_once(encoder: json.JSONEncoder) -> Callable[[Mapping[str, Any]], str]:
    """``encoder.encode`` for a dict, with the C encoder made once instead of on every call
    (a third of the time a small event takes), from the encoder's own settings."""
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None or encoder.check_circular:  # no C encoder; or state of its own per call
        return encoder.encode
    iterencode = make(
        None,  # check_circular=False: no markers
        encoder.default,
        json.encoder.encode_basestring_ascii
        if encoder.ensure_ascii
        else json.encoder.encode_basestring,
        encoder.indent,
        encoder.key_separator,
        encoder.item_separator,
        encoder.sort_keys,
        encoder.skipkeys,
        encoder.allow_nan,
    )
    return lambda payload: "".join(iterencode(payload, 0))


_encode_strictly = _made_once(_strict_encoder)


def _is_flat(payload: Mapping[str, Any]) -> bool:
    """Whether the event is string keys to strings, integers, booleans and None only (as an
    audio append is): then only a lone surrogate can be wrong, and UTF-8 encoding finds it,
    so nothing needs walking, and a long string is never read in Python."""
    for key, value in payload.items():
        if type(key) is not str or type(value) not in _FLAT:
            return False
    return True


def _encode_with_stdlib(payload: Mapping[str, Any]) -> bytes:
    # The standard encoder turns int, float, bool and None keys into strings, and takes
    # no notice of lone surrogates: the walk catches the first, the UTF-8 encoding the other.
    if not _is_flat(payload):
        _refuse_problem(payload, check_strings=False)
    try:
        return _encode_strictly(payload).encode("utf-8")
    except UnicodeEncodeError:
        _refuse_problem(payload, check_strings=True)
        raise  # pragma: no cover  # the walk names every string UTF-8 cannot encode
    except RecursionError:  # within MAX_DEPTH, but called from deep in a stack already
        raise InvalidEventError("event: nested too deeply to encode here") from None


_fast_encode: Callable[[Mapping[str, Any]], bytes] | None = None
"""The accelerated encoder, when orjson is installed: returns the bytes only when they are
certainly right, raises :class:`InvalidEventError` for what is certainly wrong, and leaves
everything else (a value orjson refuses but JSON has) to the standard library."""

try:
    import orjson
except ImportError:
    loads = json.loads
    _encoder = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))

    def dumps(value: Any) -> bytes:
        """Encode ``value`` as compact UTF-8 JSON."""
        return _encoder.encode(value).encode()

else:
    loads = orjson.loads
    dumps = orjson.dumps
    # Dates and dataclasses go to _default (which refuses them) as the stdlib would.
    _ORJSON_OPTIONS = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS

    def _encode_with_orjson(payload: Mapping[str, Any]) -> bytes:
        try:
            data: bytes = orjson.dumps(payload, default=_default, option=_ORJSON_OPTIONS)
        except TypeError:  # orjson.JSONEncodeError: non-str key, surrogate, bad type, depth
            _refuse_problem(payload, check_strings=True)
            # Nothing wrong by our rules: an integer over 64 bits, deep nesting, a key of a
            # str subclass... The standard library writes those.
            return _encode_with_stdlib(payload)
        # orjson writes NaN and infinities as null: look for them, unless there can be none.
        # A long text (audio, an image) is cheaper walked past than searched for "null".
        if not _is_flat(payload) and (len(data) > _SEARCH_LIMIT or b"null" in data):
            _refuse_problem(payload, check_strings=False)
        return data

    _fast_encode = _encode_with_orjson


def encode_client_event(event: object, *, event_id: str | None = None) -> bytes:
    """Check a client event and encode it as compact UTF-8 JSON for the wire.

    ``event`` is a mapping with a non-empty string ``type`` (or a typed client event, a
    :class:`Model`). ``event_id``, when given, is added if the event has none (None or
    empty); an ``event_id`` the event has must be a string. Values may be what JSON has
    (dicts, lists, tuples, strings, numbers, booleans, None) plus models, other mappings,
    enums (their value) and UUIDs (their text).

    Raises :class:`InvalidEventError` naming the offending path for: not a mapping, a
    missing or non-string ``type``, a non-string key, a string with a lone surrogate (key
    or value), NaN or an infinity, bytes (JSON has none: send base64 text), any other
    type JSON cannot hold, and nesting deeper than :data:`MAX_DEPTH` (or circular).
    """
    payload: Mapping[str, Any]
    if type(event) is dict:
        payload = event
    elif isinstance(event, Model):
        payload = event.to_dict()
    elif isinstance(event, Mapping):
        payload = event
    else:
        hint = " (decode JSON text with json.loads first)" if isinstance(event, str) else ""
        raise InvalidEventError(
            "a client event is a mapping with a string 'type', e.g. "
            f"{{'type': 'response.create'}}, not {_type_name(event)}{hint}"
        )
    event_type = payload.get("type")
    if not isinstance(event_type, str) or not event_type:
        got = "none" if event_type is None else repr(event_type)
        raise InvalidEventError(
            f"a client event needs a non-empty string 'type', e.g. 'response.create' "
            f"(got {redact(got)[:80]})"
        )
    current = payload.get("event_id")
    if current is None or current == "":
        if event_id is not None:
            payload = {**payload, "event_id": event_id}
    elif not isinstance(current, str):
        raise InvalidEventError(f"event_id: must be a string, not {_type_name(current)}")
    fast = _fast_encode
    return fast(payload) if fast is not None else _encode_with_stdlib(payload)


def _type_name(value: object) -> str:
    return "None" if value is None else type(value).__name__


# --- naming what is wrong --------------------------------------------------------------------

_Where = tuple[Any, str | int] | None  # (the parent's place, key or index); None: the event
_SIMPLE = frozenset({int, bool, type(None)})
_FLAT = _SIMPLE | {str}


def _refuse_problem(payload: Mapping[str, Any], *, check_strings: bool) -> None:
    """Raise :class:`InvalidEventError` for the first thing in ``payload`` JSON cannot hold.

    Visits every container (without recursion: no depth makes it fail) but reads strings
    only when ``check_strings`` is set, and then with one UTF-8 encoding each, in C.
    """
    todo: list[tuple[Any, int, _Where]] = [(payload, 0, None)]
    pop, push = todo.pop, todo.append
    while todo:
        value, depth, where = pop()
        kind = type(value)
        if kind is str:
            if check_strings:
                _check_string(value, where, None)
            continue
        if kind in _SIMPLE:
            continue
        if kind is float:
            if not math.isfinite(value):
                _refuse(where, f"{value!r} is not valid JSON (JSON has no NaN or infinity)")
            continue
        if kind is ReadOnlyDict or kind is ReadOnlyList:
            value = value._data
        elif isinstance(value, Model):
            value = value.to_dict()
        elif isinstance(value, Enum):
            push((value.value, depth, where))
            continue
        if isinstance(value, Mapping):
            if depth >= MAX_DEPTH:
                _refuse(where, f"nested more than {MAX_DEPTH} levels deep (or circular)")
            children = []
            for key, item in value.items():
                if not isinstance(key, str):
                    _refuse(
                        where,
                        f"key {key!r} of type {type(key).__name__!r} is not a string "
                        "(JSON object keys are strings)",
                    )
                if check_strings:
                    _check_string(key, where, key)
                children.append((item, depth + 1, (where, key)))
            todo.extend(reversed(children))  # the first problem in document order is named
        elif isinstance(value, (list, tuple)):
            if depth >= MAX_DEPTH:
                _refuse(where, f"nested more than {MAX_DEPTH} levels deep (or circular)")
            indexed = list(enumerate(value))
            todo.extend((item, depth + 1, (where, index)) for index, item in reversed(indexed))
        elif isinstance(value, str):
            if check_strings:
                _check_string(value, where, None)
        elif isinstance(value, float):
            push((float(value), depth, where))
        elif isinstance(value, (int, uuid.UUID)):
            continue
        elif isinstance(value, (bytes, bytearray, memoryview)):
            _refuse(
                where,
                f"{type(value).__name__} is not JSON: send binary data as base64 text "
                "(base64.b64encode(data).decode('ascii'))",
            )
        elif isinstance(value, (set, frozenset)):
            _refuse(
                where, f"object of type {kind.__name__!r} is not JSON serializable (use a list)"
            )
        else:
            _refuse(where, f"object of type {kind.__name__!r} is not JSON serializable")


def _check_string(text: str, where: _Where, key: str | None) -> None:
    try:
        str.encode(text, "utf-8")  # the str method, whatever a subclass does
    except UnicodeEncodeError as exc:
        code = ord(text[exc.start])
        what = f"key {text!r}" if key is not None else "string"
        _refuse(
            where,
            f"{what} has a lone surrogate (U+{code:04X} at index {exc.start}), "
            "which UTF-8 cannot encode",
        )


def _refuse(where: _Where, problem: str) -> NoReturn:
    raise InvalidEventError(redact(f"{_path(where)}: {problem}"))


def _path(where: _Where) -> str:
    keys: list[str | int] = []
    while where is not None:
        where, key = where
        keys.append(key)
    text = ""
    for key in reversed(keys):
        if isinstance(key, int):
            text += f"[{key}]"
        elif key.isidentifier():
            text += f".{key}" if text else key
        else:
            text += f"[{key!r}]"
    return text or "event"
