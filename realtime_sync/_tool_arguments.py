"""The model's arguments for a tool call, checked and converted to the annotated types.

:func:`convert` turns one parsed JSON value into what its annotation says (an ``int``, an
``Enum`` member, a dataclass...) or raises :class:`BadValue` naming where it went wrong;
:func:`show_value` and :func:`listed` quote values and names back to the model.
"""

from __future__ import annotations

import enum
import json
import types
import typing
from typing import Any, Union

from ._tool_schema import (
    ANYTHING,
    ARRAY_TYPES,
    NONE_TYPE,
    OBJECT_TYPES,
    SchemaError,
    fixed_items,
    is_record,
    is_typeddict,
    json_value,
    record_fields,
    same_json,
    unwrap,
)

__all__ = ["BadValue", "convert", "listed", "show_value"]

_MAX_SHOWN = 60  # characters of a bad value quoted back to the model


class BadValue(Exception):
    """A value the model sent that does not fit its annotation."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}")
        self.path = path
        self.message = message


def show_value(value: Any) -> str:
    try:
        text = json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= _MAX_SHOWN else text[: _MAX_SHOWN - 1] + "…"


_LABELS: dict[Any, str] = {
    str: "a string",
    int: "an integer",
    float: "a number",
    bool: "a boolean",
    NONE_TYPE: "null",
}


def _label(tp: Any) -> str:
    tp = unwrap(tp)[0]
    if tp is None or tp is NONE_TYPE:
        return "null"
    if isinstance(tp, type) and tp in _LABELS:
        return _LABELS[tp]
    origin = typing.get_origin(tp) or tp
    if origin in ARRAY_TYPES:
        return "an array"
    if origin in OBJECT_TYPES:
        return "an object"
    if origin is typing.Literal:
        return "one of " + ", ".join(
            show_value(json_value(choice)[1]) for choice in typing.get_args(tp)
        )
    if isinstance(tp, type):
        return tp.__name__
    return str(tp).replace("typing.", "")


def _matches_kind(tp: Any, value: Any) -> bool:
    """Whether ``value`` has the JSON kind ``tp`` expects (tried first among a union's)."""
    tp = unwrap(tp)[0]
    origin = typing.get_origin(tp) or tp
    if isinstance(value, bool):
        return tp is bool
    if isinstance(value, int):
        return tp is int
    if isinstance(value, float):
        return tp is float
    if isinstance(value, str):
        return tp is str
    if isinstance(value, list):
        return origin in ARRAY_TYPES
    if isinstance(value, dict):
        return origin in OBJECT_TYPES or is_record(tp)
    return False


def convert(value: Any, annotation: Any, path: str) -> Any:
    """``value`` (parsed JSON) as ``annotation`` says, or _BadValue."""
    tp = unwrap(annotation)[0]
    if any(tp is anything for anything in ANYTHING):
        return value
    if tp is None or tp is NONE_TYPE:
        if value is None:
            return None
        raise BadValue(path, f"expected null, got {show_value(value)}")
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        for member in tp:
            if same_json(member.value, value):
                return member
        allowed = ", ".join(show_value(member.value) for member in tp)
        raise BadValue(path, f"expected one of {allowed}, got {show_value(value)}")
    if tp is str or tp is bool:
        if type(value) is tp:
            return value
        raise BadValue(path, f"expected {_label(tp)}, got {show_value(value)}")
    if tp is int:
        if type(value) is int:
            return value
        if type(value) is float and value.is_integer():
            return int(value)
        raise BadValue(path, f"expected an integer, got {show_value(value)}")
    if tp is float:
        if type(value) in (int, float):
            return float(value)
        raise BadValue(path, f"expected a number, got {show_value(value)}")
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin is typing.Literal:
        for choice in args:
            plain = choice.value if isinstance(choice, enum.Enum) else choice
            if same_json(plain, value):
                return choice
        allowed = ", ".join(show_value(json_value(choice)[1]) for choice in args)
        raise BadValue(path, f"expected one of {allowed}, got {show_value(value)}")
    if origin is Union or origin is types.UnionType:
        return _convert_union(value, args, path)
    container = origin if origin is not None else tp
    if container in ARRAY_TYPES:
        return _convert_array(value, container, args, fixed_items(tp), path)
    if container in OBJECT_TYPES:
        if type(value) is not dict:
            raise BadValue(path, f"expected an object, got {show_value(value)}")
        if len(args) == 2:
            return {key: convert(item, args[1], f"{path}.{key}") for key, item in value.items()}
        return value
    if is_record(tp):
        return _convert_record(value, tp, path)
    return value  # a type we do not know (explicit parameters=): the function gets the JSON


def _convert_union(value: Any, members: tuple[Any, ...], path: str) -> Any:
    if value is None and any(unwrap(member)[0] in (None, NONE_TYPE) for member in members):
        return None
    ordered = sorted(members, key=lambda member: not _matches_kind(member, value))
    for member in ordered:
        try:
            return convert(value, member, path)
        except BadValue:
            continue
    accepted = " or ".join(_label(member) for member in members)
    raise BadValue(path, f"expected {accepted}, got {show_value(value)}")


def _convert_array(
    value: Any, container: Any, args: tuple[Any, ...], fixed: tuple[Any, ...] | None, path: str
) -> Any:
    if type(value) is not list:
        raise BadValue(path, f"expected an array, got {show_value(value)}")
    build = ARRAY_TYPES[container]
    if fixed is not None:
        if len(value) != len(fixed):
            raise BadValue(path, f"expected {len(fixed)} items, got {len(value)}")
        return tuple(
            convert(item, arg, f"{path}[{index}]")
            for index, (item, arg) in enumerate(zip(value, fixed, strict=True))
        )
    item_type = args[0] if args else Any
    items = [convert(item, item_type, f"{path}[{index}]") for index, item in enumerate(value)]
    try:
        return build(items)
    except TypeError as exc:  # unhashable items for a set
        raise BadValue(path, str(exc)) from None


def _convert_record(value: Any, cls: type, path: str) -> Any:
    if type(value) is not dict:
        raise BadValue(path, f"expected an object, got {show_value(value)}")
    try:
        fields = {item.name: item for item in record_fields(cls)}
    except SchemaError:  # annotations we cannot resolve (parameters= was given)
        return value
    unknown = [key for key in value if key not in fields]
    if unknown:
        raise BadValue(
            path, f"unknown field {listed(unknown)}; {cls.__name__} has {listed(list(fields))}"
        )
    missing = [name for name, item in fields.items() if item.required and name not in value]
    if missing:
        raise BadValue(path, f"missing required field {listed(missing)}")
    converted = {
        key: convert(item, fields[key].annotation, f"{path}.{key}") for key, item in value.items()
    }
    if is_typeddict(cls):
        return converted
    try:
        return cls(**converted)
    except (TypeError, ValueError) as exc:  # a validator or __post_init__ refused
        raise BadValue(path, f"{type(exc).__name__}: {exc}") from None


def listed(names: list[str]) -> str:
    return ", ".join(repr(name) for name in names) if names else "none"
