"""The machinery behind every typed protocol object.

A :class:`Model` is a frozen attrs class over the JSON object it was decoded from. Declared
fields give typed attribute access; everything else the server sent is reachable as an
attribute too (``event.obfuscation``), ``raw`` shows the whole object, and ``to_dict()``
gives back exactly what was received. Adding a model is declaring fields: how to decode each
one is derived once per class from its annotations.

Models are immutable all the way down: nested objects are models, arrays of them are
tuples, and every other container (``raw`` itself, a ``Mapping[str, Any]`` field such as a
tool's ``parameters``, an undeclared field) is a read-only view of the decoded JSON, made
when it is read so that decoding costs nothing extra. Models are hashable (equal models hash
equal) and their ``repr`` masks registered secrets.
"""

from __future__ import annotations

import collections.abc
import types
import typing
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, ClassVar, TypeVar, Union, overload

import attrs
from attrs import field, frozen

from ._secrets import redact

__all__ = [
    "DecodeError",
    "Model",
    "ReadOnlyDict",
    "ReadOnlyList",
    "plain_json",
    "to_json",
    "wire_fields",
]

M = TypeVar("M", bound="Model")
Converter = Callable[[Any], Any]

_SCALARS = frozenset({str, int, float, bool, type(None)})


class DecodeError(ValueError):
    """A field's value has a shape its model cannot hold (an object where a list belongs...)."""


# --- read-only views of decoded JSON ---------------------------------------------------------


class _View:
    """What both read-only views share: the container shown, and no way to change it."""

    __slots__ = ("_data",)
    _data: Any

    def __init__(self, data: Any) -> None:
        if type(data) is type(self):
            data = data._data  # a view of a view shows the same container
        object.__setattr__(self, "_data", data)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"{type(self).__name__} is read-only")

    def __reduce__(self) -> tuple[Any, ...]:
        return type(self), (self._data,)

    def __contains__(self, item: object) -> bool:
        return item in self._data

    def __len__(self) -> int:
        return len(self._data)

    def __repr__(self) -> str:
        return redact(repr(self._data))


class ReadOnlyDict(_View, Mapping[str, Any]):
    """A read-only view of a JSON object: nested objects and arrays come out as views too.

    Compares equal to a dict with the same content. ``Model.to_dict()`` gives a mutable copy.
    """

    __slots__ = ()
    _data: Mapping[str, Any]

    def __getitem__(self, key: str) -> Any:
        return _freeze(self._data[key])

    def get(self, key: str, default: Any = None) -> Any:
        value = self._data.get(key, _MISSING)
        return default if value is _MISSING else _freeze(value)

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __eq__(self, other: object) -> bool:
        if type(other) is ReadOnlyDict:
            other = other._data
        if isinstance(other, dict):
            return self._data == other
        return super().__eq__(other)

    __hash__ = None  # type: ignore[assignment]  # a view, like the dict it shows


class ReadOnlyList(_View, Sequence[Any]):
    """A read-only view of a JSON array: nested objects and arrays come out as views too.

    Compares equal to a list or tuple with the same items.
    """

    __slots__ = ()
    _data: Sequence[Any]

    @overload
    def __getitem__(self, index: int) -> Any: ...

    @overload
    def __getitem__(self, index: slice) -> ReadOnlyList: ...

    def __getitem__(self, index: int | slice) -> Any:
        if isinstance(index, slice):
            return ReadOnlyList(self._data[index])
        return _freeze(self._data[index])

    def __iter__(self) -> Iterator[Any]:
        return map(_freeze, self._data)

    def __eq__(self, other: object) -> bool:
        if type(other) is ReadOnlyList:
            other = other._data
        if isinstance(other, list):
            return self._data == other
        if isinstance(other, tuple):
            return list(self._data) == list(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]  # a view, like the list it shows


_MISSING: Any = object()


def _freeze(value: Any) -> Any:
    """``value`` as a read-only view when it is a container; as is otherwise."""
    kind = type(value)
    if kind is dict:
        return ReadOnlyDict(value)
    if kind is list:
        return ReadOnlyList(value)
    if kind in _SCALARS or kind is ReadOnlyDict or kind is ReadOnlyList:
        return value
    if isinstance(value, Mapping):
        return ReadOnlyDict(value)
    if isinstance(value, list):
        return ReadOnlyList(value)
    return value


def plain_json(value: Any) -> Any:
    """A deep copy of decoded JSON as plain dicts and lists (views and tuples included).

    Iterative, so that no nesting depth makes it fail. Non-container leaves are shared.
    """
    root = [None]
    todo: list[tuple[Any, Any, Any]] = [(root, 0, value)]
    pop, push = todo.pop, todo.extend
    while todo:
        target, key, item = pop()
        kind = type(item)
        if kind is ReadOnlyDict or kind is ReadOnlyList:
            item = item._data
            kind = type(item)
        if kind in _SCALARS:
            target[key] = item
        elif kind is dict or (kind is not list and kind is not tuple and isinstance(item, Mapping)):
            copied = dict.fromkeys(item)  # keeps the key order; values filled in below
            target[key] = copied
            push((copied, name, nested) for name, nested in item.items())
        elif kind is list or kind is tuple or isinstance(item, (list, tuple)):
            copied_list = [None] * len(item)
            target[key] = copied_list
            push((copied_list, index, nested) for index, nested in enumerate(item))
        else:
            target[key] = item
    return root[0]


# Deeper than this, a container adds only its kind to a hash: equal data still hashes equal,
# and no nesting depth makes hashing fail.
_HASH_DEPTH = 16


def _content_hash(value: Any, depth: int = 0) -> int:
    """A hash of JSON-like data that agrees with ``==`` (objects compare regardless of order)."""
    kind = type(value)
    if kind is ReadOnlyDict or kind is ReadOnlyList:
        value = value._data
        kind = type(value)
    if kind in _SCALARS:
        return hash(value)
    if kind is dict or isinstance(value, Mapping):
        if depth >= _HASH_DEPTH:
            return hash(Mapping)
        return hash(frozenset((key, _content_hash(item, depth + 1)) for key, item in value.items()))
    if kind is list or kind is tuple:
        if depth >= _HASH_DEPTH:
            return hash(Sequence)
        return hash(tuple(_content_hash(item, depth + 1) for item in value))
    try:
        return hash(value)
    except TypeError:  # some unhashable leaf a caller put there: equal values still agree
        return 0


# --- models ------------------------------------------------------------------------------


class _HashSlot:
    """Room for a model's hash, computed on first use (not an attrs field: no decode cost)."""

    __slots__ = ("_hash_cache",)
    _hash_cache: int


@frozen(kw_only=True)
class Model(_HashSlot):
    """Base of all protocol objects: typed fields over the JSON object received."""

    _raw: Mapping[str, Any] = field(repr=False)
    # The decoded JSON object itself (the ``raw=`` argument); read it through ``raw``.

    # Per-class decoding plan: (field name, converter or None), built on first use.
    _plan: ClassVar[tuple[tuple[str, Converter | None], ...] | None] = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        # attrs writes a __repr__ and a __hash__ into every class it decorates, and neither
        # would work here (secrets unmasked; dicts unhashable): every model uses these.
        cls.__repr__ = Model.__repr__  # type: ignore[method-assign]
        cls.__hash__ = Model.__hash__  # type: ignore[method-assign]

    @classmethod
    def from_dict(cls: type[M], data: Mapping[str, Any]) -> M:
        """Decode a JSON object; unknown fields are kept, missing ones are None.

        Raises :class:`DecodeError` when a nested value has the wrong shape. ``data`` is
        kept, not copied: do not change it afterwards.
        """
        plan = cls.__dict__.get("_plan") or _build_plan(cls)
        get = data.get
        values = {}
        for name, convert in plan:
            value = get(name)
            if convert is not None and value is not None:
                value = convert(value)
            values[name] = value
        return cls(raw=data, **values)

    @classmethod
    def build(cls: type[M], **fields: Any) -> M:
        """Make an instance from keyword arguments named as the wire fields.

        Nested values may be models or plain dicts; fields left out are not sent.
        """
        return cls.from_dict(to_json(fields))

    @property
    def raw(self) -> Mapping[str, Any]:
        """The JSON object exactly as received, undeclared fields included, read-only.

        Nested objects and arrays are read-only too; ``to_dict()`` gives a mutable copy.
        """
        data = self._raw
        return data if type(data) is ReadOnlyDict else ReadOnlyDict(data)

    def to_dict(self) -> dict[str, Any]:
        """The JSON object this model stands for, as a fresh deep copy."""
        copied: dict[str, Any] = plain_json(self._raw)
        return copied

    def __getattr__(self, name: str) -> Any:
        # Only reached when normal lookup fails: serve undeclared wire fields from raw.
        if name.startswith("__") or name in ("_raw", "_hash_cache"):
            raise AttributeError(name)
        try:
            return _freeze(self._raw[name])
        except KeyError:
            raise AttributeError(
                f"{type(self).__name__!r} has no field {name!r} and the server sent none"
            ) from None

    def __hash__(self) -> int:
        try:
            return self._hash_cache
        except AttributeError:
            pass
        value = hash((type(self), _content_hash(self._raw)))
        object.__setattr__(self, "_hash_cache", value)
        return value

    def __repr__(self) -> str:
        name = type(self).__name__
        try:
            shown = ", ".join(
                f"{f.name}={getattr(self, f.name)!r}" for f in attrs.fields(type(self)) if f.repr
            )
        except RecursionError:
            shown = "<nested too deeply to show>"
        return redact(f"{name}({shown})")


def wire_fields(cls: type[Model]) -> tuple[str, ...]:
    """Names of the declared wire fields of ``cls``."""
    return tuple(name for name, _ in (cls.__dict__.get("_plan") or _build_plan(cls)))


def _build_plan(cls: type[Model]) -> tuple[tuple[str, Converter | None], ...]:
    hints = typing.get_type_hints(cls)
    plan = tuple(
        (f.name, _converter_for(hints[f.name]))
        for f in attrs.fields(cls)
        if f.name != "_raw" and f.metadata.get("wire", True)
    )
    cls._plan = plan
    return plan


def _is_model(tp: Any) -> bool:
    return isinstance(tp, type) and issubclass(tp, Model)


def _converter_for(tp: Any) -> Converter | None:
    """How to turn a JSON value into the annotated type; None when it is used as is."""
    origin = typing.get_origin(tp)
    if origin in (Union, types.UnionType):
        members = [arg for arg in typing.get_args(tp) if arg is not type(None)]
        if len(members) == 1:
            return _converter_for(members[0])
        models = [arg for arg in members if _is_model(arg)]
        if len(models) == 1:
            # "A string or an object" (``str | ToolChoice``): objects become the model, any
            # other value is kept as is (an array as a read-only view).
            return _dict_converter(_model_converter(models[0]))
        return None
    if _is_model(tp):
        return _model_converter(tp)
    if origin in (tuple, list, collections.abc.Sequence) and typing.get_args(tp):
        item = typing.get_args(tp)[0]
        if _is_model(item):
            convert_item = _model_converter(item)

            def convert_list(value: Any) -> tuple[Any, ...]:
                if type(value) is ReadOnlyList:
                    value = value._data
                if not isinstance(value, list):
                    raise DecodeError(f"expected a list, got {type(value).__name__}")
                return tuple(convert_item(v) if v is not None else None for v in value)

            return convert_list
        return _freeze
    if origin in (dict, collections.abc.Mapping):
        return _freeze
    return None


def _model_converter(model: type[Model]) -> Converter:
    def convert(value: Any) -> Model:
        if not isinstance(value, dict):
            if type(value) is not ReadOnlyDict:
                raise DecodeError(
                    f"expected an object for {model.__name__}, got {type(value).__name__}"
                )
            value = value._data
        return model.from_dict(value)

    return convert


def _dict_converter(convert: Converter) -> Converter:
    def convert_dicts(value: Any) -> Any:
        if isinstance(value, dict) or type(value) is ReadOnlyDict:
            return convert(value)
        return _freeze(value)

    return convert_dicts


def to_json(value: Any) -> Any:
    """Plain JSON data from a mix of models, mappings and sequences."""
    if isinstance(value, Model):
        return value.to_dict()
    if isinstance(value, Mapping):
        return {key: to_json(item) for key, item in value.items()}
    if isinstance(value, (list, tuple, ReadOnlyList)):
        return [to_json(item) for item in value]
    return value
