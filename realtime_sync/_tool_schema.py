"""JSON Schema for a tool's parameters, from a function's signature, annotations and docstring.

:func:`function_schema` describes a function's parameters as the ``parameters`` object of a
tool; the helpers that read annotations (``Annotated``, ``NewType``, dataclass, attrs and
TypedDict fields) are shared with the conversion of arguments in ``_tool_arguments``.

How a signature becomes a schema:

================================  ===============================================
annotation                        schema
================================  ===============================================
``str`` ``int`` ``float``         ``{"type": "string"}``, ``"integer"``, ``"number"``
``bool`` ``None``                 ``"boolean"``, ``"null"``
``Any``, none, ``object``         ``{}`` (anything)
``list[X]`` ``Sequence[X]``       ``{"type": "array", "items": X}``
``tuple[X, ...]``                 the same; ``tuple[X, Y]`` has ``prefixItems``
``set[X]`` ``frozenset[X]``       an array with ``"uniqueItems": true``
``dict[str, X]`` ``Mapping``      ``{"type": "object", "additionalProperties": X}``
``Literal[...]``, ``Enum``        ``"enum"`` of the values (and their ``"type"``)
``X | None``, ``Optional[X]``     ``"type": [..., "null"]``, or ``anyOf`` with null
``X | Y``                         ``"type": [X, Y]`` for plain types, else ``anyOf``
dataclass, ``TypedDict``, attrs   a nested object (fields with defaults optional)
``Annotated[X, "text"]``          X with that ``"description"`` (a mapping in the
                                  metadata is merged into X's schema)
================================  ===============================================

A parameter with a default is not ``required`` and shows its ``default`` when JSON can
hold it; ``X | None`` without a default is required (the model must send ``null``).
"""

from __future__ import annotations

import collections.abc
import dataclasses
import enum
import functools
import inspect
import math
import types
import typing
from collections.abc import Callable, Mapping
from typing import Any, Union

import attrs

from ._errors import ConfigurationError
from ._tool_docstrings import parse_docstring

__all__ = [
    "ANYTHING",
    "ARRAY_TYPES",
    "EMPTY",
    "NONE_TYPE",
    "OBJECT_TYPES",
    "SchemaError",
    "callable_hints",
    "default_name",
    "docstring_of",
    "fixed_items",
    "function_schema",
    "hint_target",
    "is_record",
    "is_typeddict",
    "json_value",
    "qualname",
    "record_fields",
    "same_json",
    "signature_of",
    "unwrap",
]

NONE_TYPE = type(None)
EMPTY = inspect.Parameter.empty
ANYTHING: tuple[Any, ...] = (Any, object, EMPTY)
_PRIMITIVES: dict[Any, str] = {
    str: "string",
    int: "integer",
    float: "number",
    bool: "boolean",
    NONE_TYPE: "null",
}
# Containers, by the origin of their annotation: what JSON they are and what Python
# value a JSON array or object becomes.
ARRAY_TYPES: dict[Any, Callable[[list[Any]], Any]] = {
    list: list,
    tuple: tuple,
    set: set,
    frozenset: frozenset,
    collections.abc.Sequence: list,
    collections.abc.MutableSequence: list,
    collections.abc.Collection: list,
    collections.abc.Iterable: list,
    collections.abc.Set: frozenset,
    collections.abc.MutableSet: set,
}
_UNIQUE_ARRAYS = frozenset({set, frozenset, collections.abc.Set, collections.abc.MutableSet})
OBJECT_TYPES = frozenset({dict, collections.abc.Mapping, collections.abc.MutableMapping})
# Wrappers of TypedDict and dataclass fields that say nothing about the value.
_QUALIFIERS = frozenset({"Required", "NotRequired", "ReadOnly", "Final"})
_CONTAINER_KEYWORDS = ("properties", "items", "prefixItems", "additionalProperties")


class SchemaError(Exception):
    """An annotation we cannot describe; becomes a ConfigurationError naming the parameter."""


# --- annotations --------------------------------------------------------------------------------


def unwrap(tp: Any) -> tuple[Any, list[Any]]:
    """``tp`` without ``Annotated``, ``NewType``, type aliases and TypedDict qualifiers, and the
    ``Annotated`` metadata found on the way."""
    metadata: list[Any] = []
    while True:
        origin = typing.get_origin(tp)
        if origin is typing.Annotated:
            metadata.extend(tp.__metadata__)
            tp = tp.__origin__
        elif origin is not None and getattr(origin, "_name", None) in _QUALIFIERS:
            tp = typing.get_args(tp)[0]
        elif getattr(tp, "_name", None) in _QUALIFIERS and not typing.get_args(tp):
            return Any, metadata  # a bare Final: the type is whatever the value is
        elif hasattr(tp, "__supertype__"):  # NewType
            tp = tp.__supertype__
        elif type(tp).__name__ == "TypeAliasType":  # `type X = ...` (3.12)
            tp = tp.__value__
        else:
            return tp, metadata


def _annotated_description(metadata: list[Any]) -> str | None:
    texts = [item.strip() for item in metadata if isinstance(item, str) and item.strip()]
    return texts[-1] if texts else None


def is_typeddict(tp: Any) -> bool:
    return (
        isinstance(tp, type)
        and issubclass(tp, dict)
        and hasattr(tp, "__required_keys__")
        and hasattr(tp, "__total__")
    )


def is_record(tp: Any) -> bool:
    """Whether ``tp`` is a class we describe and build field by field."""
    return isinstance(tp, type) and (
        dataclasses.is_dataclass(tp) or attrs.has(tp) or is_typeddict(tp)
    )


def _resolve_hints(obj: Any) -> dict[str, Any]:
    try:
        return typing.get_type_hints(obj, include_extras=True)
    except Exception as exc:  # NameError for an undefined name, TypeError for bad syntax...
        raise SchemaError(
            f"cannot resolve the annotations of {qualname(obj)} ({type(exc).__name__}: {exc})"
        ) from None


def qualname(obj: Any) -> str:
    return str(getattr(obj, "__qualname__", None) or getattr(obj, "__name__", None) or obj)


@attrs.frozen
class _Field:
    """One field of a dataclass, attrs class or TypedDict, as the model sees it."""

    name: str  # the key in JSON and the keyword of the constructor
    annotation: Any
    required: bool
    default: Any
    doc: str | None


@functools.lru_cache(maxsize=512)
def record_fields(cls: type) -> tuple[_Field, ...]:
    hints = _resolve_hints(cls)
    docs = parse_docstring(_own_doc(cls))[1]
    fields: list[_Field] = []
    if dataclasses.is_dataclass(cls):
        for item in dataclasses.fields(cls):
            if not item.init:
                continue
            no_default = item.default is dataclasses.MISSING
            required = no_default and item.default_factory is dataclasses.MISSING
            default = EMPTY if no_default else item.default
            annotation = hints.get(item.name, Any)
            fields.append(_Field(item.name, annotation, required, default, docs.get(item.name)))
    elif attrs.has(cls):
        for attribute in attrs.fields(cls):
            if not attribute.init:
                continue
            required = attribute.default is attrs.NOTHING
            default = attribute.default
            if required or isinstance(default, attrs.Factory):  # type: ignore[arg-type]
                default = EMPTY
            key = attribute.alias or attribute.name
            annotation = hints.get(attribute.name, Any)
            doc = docs.get(key) or docs.get(attribute.name)
            fields.append(_Field(key, annotation, required, default, doc))
    else:  # TypedDict
        required_keys = cls.__required_keys__  # type: ignore[attr-defined]
        for key, annotation in hints.items():
            # A Required[]/NotRequired[] written as a string (from __future__ import
            # annotations) is missed by __required_keys__ on some Pythons; the hint has it.
            qualifier = getattr(typing.get_origin(annotation), "_name", None)
            required = qualifier == "Required" or (
                qualifier != "NotRequired" and key in required_keys
            )
            fields.append(_Field(key, annotation, required, EMPTY, docs.get(key)))
    return tuple(fields)


def _own_doc(cls: type) -> str | None:
    """A class's own docstring: not inherited, and not the one dataclasses makes up."""
    doc = cls.__dict__.get("__doc__")
    if not isinstance(doc, str):
        return None
    if dataclasses.is_dataclass(cls) and doc.startswith(f"{cls.__name__}("):
        return None
    return doc


# --- schemas ------------------------------------------------------------------------------------


def json_value(value: Any) -> tuple[bool, Any]:
    """``value`` as JSON, for a schema's ``default`` or ``enum``: (False, None) if it is not."""
    if isinstance(value, enum.Enum):
        value = value.value
    if value is None or isinstance(value, (str, bool, int)):
        return True, value
    if isinstance(value, float):
        return math.isfinite(value), value
    if isinstance(value, (list, tuple)):
        items = [json_value(item) for item in value]
        return all(ok for ok, _ in items), [item for _, item in items]
    if isinstance(value, Mapping) and all(isinstance(key, str) for key in value):
        entries = {key: json_value(item) for key, item in value.items()}
        return all(ok for ok, _ in entries.values()), {k: v for k, (_, v) in entries.items()}
    return False, None


def same_json(a: Any, b: Any) -> bool:
    """Whether two JSON scalars are the same value (``true`` is not ``1``, ``1`` is ``1.0``)."""
    if a is None or b is None:
        return a is b
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return a == b
    return isinstance(a, str) and isinstance(b, str) and a == b


def _enum_schema(values: list[Any], what: str) -> dict[str, Any]:
    json_values: list[Any] = []
    for value in values:
        ok, as_json = json_value(value)
        if not ok or isinstance(as_json, (list, dict)):
            raise SchemaError(f"{what} has a value JSON cannot hold as an enum: {value!r}")
        if not any(same_json(as_json, seen) for seen in json_values):
            json_values.append(as_json)
    if not json_values:
        raise SchemaError(f"{what} has no values")
    kinds: list[str] = []
    for value in json_values:
        kind = (
            "null"
            if value is None
            else "boolean"
            if isinstance(value, bool)
            else "string"
            if isinstance(value, str)
            else "integer"
            if isinstance(value, int)
            else "number"
        )
        if kind not in kinds:
            kinds.append(kind)
    if "integer" in kinds and "number" in kinds:
        kinds.remove("integer")
    schema: dict[str, Any] = {"type": kinds[0] if len(kinds) == 1 else kinds}
    schema["enum"] = json_values
    return schema


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    """``schema`` that also accepts null: a ``"type"`` list where that is plain, or anyOf."""
    kind = schema.get("type")
    if kind is not None and not any(key in schema for key in _CONTAINER_KEYWORDS):
        kinds = [kind] if isinstance(kind, str) else list(kind)
        result = dict(schema)
        if "null" not in kinds:
            result["type"] = [*kinds, "null"]
        if "enum" in result and None not in result["enum"]:
            result["enum"] = [*result["enum"], None]
        return result
    if set(schema) == {"anyOf"}:
        return {"anyOf": [*schema["anyOf"], {"type": "null"}]}
    return {"anyOf": [schema, {"type": "null"}]}


def _union_schema(members: tuple[Any, ...], stack: tuple[type, ...]) -> dict[str, Any]:
    nullable = any(unwrap(member)[0] in (None, NONE_TYPE) for member in members)
    schemas = [
        _schema(member, stack) for member in members if unwrap(member)[0] not in (None, NONE_TYPE)
    ]
    if not schemas:
        return {"type": "null"}
    if any(set(schema) <= {"description"} for schema in schemas):
        return {}  # Any absorbs the rest
    if len(schemas) == 1:
        schema = schemas[0]
    elif all("type" in schema and set(schema) <= {"type", "description"} for schema in schemas):
        kinds: list[str] = []
        for item in schemas:
            for kind in [item["type"]] if isinstance(item["type"], str) else item["type"]:
                if kind not in kinds:
                    kinds.append(kind)
        schema = {"type": kinds[0] if len(kinds) == 1 else kinds}
        descriptions = [item["description"] for item in schemas if "description" in item]
        if descriptions:
            schema["description"] = descriptions[0]
    else:
        schema = {"anyOf": schemas}
    return _nullable(schema) if nullable else schema


def _record_schema(cls: type, stack: tuple[type, ...]) -> dict[str, Any]:
    if cls in stack:
        raise SchemaError(f"{cls.__qualname__} contains itself; recursive types are not supported")
    properties: dict[str, Any] = {}
    required: list[str] = []
    for item in record_fields(cls):
        try:
            properties[item.name] = _property_schema(
                item.annotation, item.doc, item.default, (*stack, cls)
            )
        except SchemaError as exc:
            raise SchemaError(f"field {item.name!r} of {cls.__qualname__}: {exc}") from None
        if item.required:
            required.append(item.name)
    schema: dict[str, Any] = {"type": "object"}
    summary = parse_docstring(_own_doc(cls))[0]
    if summary:
        schema["description"] = summary
    schema["properties"] = properties
    if required:
        schema["required"] = required
    schema["additionalProperties"] = False
    return schema


def _schema(annotation: Any, stack: tuple[type, ...] = ()) -> dict[str, Any]:
    """The JSON schema of values of ``annotation``."""
    tp, metadata = unwrap(annotation)
    schema = _bare_schema(tp, stack)
    for item in metadata:
        if isinstance(item, Mapping):
            ok, extra = json_value(item)
            if not ok:
                raise SchemaError(f"Annotated metadata {item!r} is not JSON")
            schema.update(extra)
    description = _annotated_description(metadata)
    if description:
        schema["description"] = description
    return schema


def _bare_schema(tp: Any, stack: tuple[type, ...]) -> dict[str, Any]:
    if any(tp is anything for anything in ANYTHING):
        return {}
    if tp is None:
        return {"type": "null"}
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return _enum_schema([member.value for member in tp], f"enum {tp.__qualname__}")
    if isinstance(tp, type) and tp in _PRIMITIVES:
        return {"type": _PRIMITIVES[tp]}
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin is typing.Literal:
        return _enum_schema(list(args), f"{tp!r}")
    if origin is Union or origin is types.UnionType:
        return _union_schema(args, stack)
    container = origin if origin is not None else tp
    if container in ARRAY_TYPES:
        return _array_schema(container, args, fixed_items(tp), stack)
    if container in OBJECT_TYPES:
        if args:
            key = unwrap(args[0])[0]
            if key is not str and not any(key is anything for anything in ANYTHING):
                raise SchemaError(f"{tp!r}: JSON object keys are strings, not {key!r}")
            values = _schema(args[1], stack)
            if values:
                return {"type": "object", "additionalProperties": values}
        return {"type": "object"}
    if is_record(tp):
        return _record_schema(tp, stack)
    raise SchemaError(
        f"cannot describe {tp!r} in JSON Schema (use str, int, float, bool, lists, dicts, "
        "Literal, Enum, dataclasses, TypedDict or attrs classes, or pass parameters=)"
    )


def fixed_items(tp: Any) -> tuple[Any, ...] | None:
    """The item types of a fixed-length tuple annotation (``tuple[int, str]``, ``tuple[()]``),
    or None for any other array."""
    if typing.get_origin(tp) is not tuple or tp is typing.Tuple:  # noqa: UP006  # bare Tuple
        return None
    args = typing.get_args(tp)
    if len(args) == 2 and args[1] is Ellipsis:
        return None
    return () if args == ((),) else args  # tuple[()] has args ((),) before 3.11


def _array_schema(
    container: Any, args: tuple[Any, ...], fixed: tuple[Any, ...] | None, stack: tuple[type, ...]
) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "array"}
    if fixed is not None:
        if fixed:
            schema["prefixItems"] = [_schema(arg, stack) for arg in fixed]
            schema["minItems"] = len(fixed)
        schema["maxItems"] = len(fixed)
        return schema
    if args:
        items = _schema(args[0], stack)
        if items:
            schema["items"] = items
    if container in _UNIQUE_ARRAYS:
        schema["uniqueItems"] = True
    return schema


def _property_schema(
    annotation: Any, doc: str | None, default: Any, stack: tuple[type, ...]
) -> dict[str, Any]:
    """The schema of one parameter or field: its type's, with its description and default."""
    schema = _schema(annotation, stack)
    description = _annotated_description(unwrap(annotation)[1]) or doc
    if description:
        schema["description"] = description
    if default is not EMPTY:
        ok, value = json_value(default)
        if ok:
            schema["default"] = value
    return schema


def hint_target(function: Callable[..., Any]) -> Any:
    """What holds the annotations and docstring of ``function``: the function behind a
    partial or a bound method, the ``__call__`` of a callable object."""
    target: Any = function
    while True:
        if isinstance(target, functools.partial):
            target = target.func
        elif inspect.ismethod(target):
            target = target.__func__
        else:
            break
    if not (
        inspect.isfunction(target) or inspect.isbuiltin(target) or isinstance(target, type)
    ) and callable(target):
        call = getattr(type(target), "__call__", None)  # noqa: B004
        if inspect.isfunction(call):
            return call
    return target


def _is_callable_object(function: Callable[..., Any], target: Any) -> bool:
    return target is getattr(type(function), "__call__", None)  # noqa: B004


def docstring_of(function: Callable[..., Any]) -> str | None:
    target = hint_target(function)
    if isinstance(target, type):
        return _own_doc(target)
    doc = getattr(target, "__doc__", None)  # raw: the parser cleans it, once
    if not isinstance(doc, str) and _is_callable_object(function, target):
        doc = _own_doc(type(function))
    return doc if isinstance(doc, str) else None


def default_name(function: Callable[..., Any]) -> Any:
    target = hint_target(function)
    if _is_callable_object(function, target):
        return type(function).__name__
    return getattr(target, "__name__", None)


def callable_hints(function: Callable[..., Any]) -> dict[str, Any]:
    """The resolved annotations of ``function``'s parameters (a class: of its ``__init__``,
    and its fields)."""
    target = hint_target(function)
    hints = _resolve_hints(target)
    init = getattr(target, "__init__", None) if isinstance(target, type) else None
    if inspect.isfunction(init):
        hints = {**_resolve_hints(init), **hints}
    return hints


def signature_of(function: Callable[..., Any]) -> inspect.Signature | None:
    try:
        return inspect.signature(function)
    except (ValueError, TypeError):  # some builtins have none
        return None


def function_schema(
    function: Callable[..., Any], name: str, docs: Mapping[str, str]
) -> dict[str, Any]:
    signature = signature_of(function)
    if signature is None:
        raise ConfigurationError(
            f"tool {name!r}: the signature of {function!r} cannot be read; pass parameters="
        )
    try:
        hints = callable_hints(function)
    except SchemaError as exc:
        raise ConfigurationError(f"tool {name!r}: {exc}") from None
    properties: dict[str, Any] = {}
    required: list[str] = []
    for parameter in signature.parameters.values():
        if parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
            stars = "*" if parameter.kind is parameter.VAR_POSITIONAL else "**"
            raise ConfigurationError(
                f"tool {name!r}: {stars}{parameter.name} cannot be described to the model; "
                "name every parameter, or pass parameters= with a JSON schema"
            )
        annotation = hints.get(parameter.name, parameter.annotation)
        if isinstance(annotation, str):  # not among the hints that were resolved
            raise ConfigurationError(
                f"tool {name!r}: parameter {parameter.name!r}: cannot resolve the annotation "
                f"{annotation!r}; pass parameters="
            )
        try:
            properties[parameter.name] = _property_schema(
                annotation, docs.get(parameter.name), parameter.default, ()
            )
        except SchemaError as exc:
            raise ConfigurationError(
                f"tool {name!r}: parameter {parameter.name!r}: {exc}"
            ) from None
        if parameter.default is EMPTY:
            required.append(parameter.name)
    schema: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        schema["required"] = required
    schema["additionalProperties"] = False
    return schema
