"""The machinery behind every typed protocol object.

A :class:`Model` is a frozen attrs class that keeps the JSON object it was decoded from in
``raw``. Declared fields give typed attribute access; everything else the server sent stays
in ``raw`` and is reachable as an attribute too (``event.obfuscation``), and ``to_dict()``
gives back exactly what was received. Adding a model is declaring fields: how to decode
each one is derived once per class from its annotations.
"""

from __future__ import annotations

import copy
import types
import typing
from collections.abc import Callable, Mapping
from typing import Any, ClassVar, TypeVar, Union

import attrs
from attrs import field, frozen

__all__ = ["DecodeError", "Model", "to_json", "wire_fields"]

M = TypeVar("M", bound="Model")
Converter = Callable[[Any], Any]


class DecodeError(ValueError):
    """A field's value has a shape its model cannot hold (an object where a list belongs...)."""


@frozen(kw_only=True)
class Model:
    """Base of all protocol objects: typed fields over the JSON object received."""

    raw: Mapping[str, Any] = field(repr=False)
    """The JSON object exactly as received, undeclared fields included. Do not mutate."""

    # Per-class decoding plan: (field name, converter or None), built on first use.
    _plan: ClassVar[tuple[tuple[str, Converter | None], ...] | None] = None

    @classmethod
    def from_dict(cls: type[M], data: Mapping[str, Any]) -> M:
        """Decode a JSON object; unknown fields are kept, missing ones are None.

        Raises :class:`DecodeError` when a nested value has the wrong shape.
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

    def to_dict(self) -> dict[str, Any]:
        """The JSON object this model stands for, as a fresh deep copy."""
        return copy.deepcopy(dict(self.raw))

    def __getattr__(self, name: str) -> Any:
        # Only reached when normal lookup fails: serve undeclared wire fields from raw.
        if name.startswith("__") or name == "raw":
            raise AttributeError(name)
        try:
            return self.raw[name]
        except KeyError:
            raise AttributeError(
                f"{type(self).__name__!r} has no field {name!r} and the server sent none"
            ) from None


def wire_fields(cls: type[Model]) -> tuple[str, ...]:
    """Names of the declared wire fields of ``cls``."""
    return tuple(name for name, _ in (cls.__dict__.get("_plan") or _build_plan(cls)))


def _build_plan(cls: type[Model]) -> tuple[tuple[str, Converter | None], ...]:
    hints = typing.get_type_hints(cls)
    plan = tuple(
        (f.name, _converter_for(hints[f.name]))
        for f in attrs.fields(cls)
        if f.name != "raw" and f.metadata.get("wire", True)
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
            # other value is kept as is.
            return _dict_converter(_model_converter(models[0]))
        return None
    if _is_model(tp):
        return _model_converter(tp)
    if origin in (tuple, list) and typing.get_args(tp):
        item = typing.get_args(tp)[0]
        if _is_model(item):
            convert_item = _model_converter(item)

            def convert_list(value: Any) -> tuple[Any, ...]:
                if not isinstance(value, list):
                    raise DecodeError(f"expected a list, got {type(value).__name__}")
                return tuple(convert_item(v) if v is not None else None for v in value)

            return convert_list
    return None


def _model_converter(model: type[Model]) -> Converter:
    def convert(value: Any) -> Model:
        if not isinstance(value, dict):
            raise DecodeError(
                f"expected an object for {model.__name__}, got {type(value).__name__}"
            )
        return model.from_dict(value)

    return convert


def _dict_converter(convert: Converter) -> Converter:
    def convert_dicts(value: Any) -> Any:
        return convert(value) if isinstance(value, dict) else value

    return convert_dicts


def to_json(value: Any) -> Any:
    """Plain JSON data from a mix of models, mappings and sequences."""
    if isinstance(value, Model):
        return value.to_dict()
    if isinstance(value, Mapping):
        return {key: to_json(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_json(item) for item in value]
    return value
