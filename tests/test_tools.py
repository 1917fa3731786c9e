"""Tools: schemas from signatures and docstrings, checked against the official types; calls
with good and bad arguments; results and errors as the model sees them; the registry."""

from __future__ import annotations

import dataclasses
import datetime
import enum
import functools
import json
import math
import sys
import threading
import types
import uuid
from collections.abc import Mapping, Sequence
from typing import Annotated, Any, Final, Literal, NewType, Optional, TypedDict, Union

import attrs
import pytest
import typing_extensions
from hypothesis import given, settings
from hypothesis import strategies as st

from realtime_sync import ConfigurationError, RealtimeError
from realtime_sync._dialects import session_for_dialect
from realtime_sync._json import encode_client_event
from realtime_sync._secrets import register_secret
from realtime_sync._tools import (
    Tool,
    ToolArgumentsError,
    ToolRegistry,
    error_output,
    result_output,
)

SECRET = "rs-tools-secret-5b1e0c7d9a3f"
register_secret(SECRET)


def schema_of(function: Any, **options: Any) -> dict[str, Any]:
    return Tool.from_function(function, **options).definition()["parameters"]


def properties_of(function: Any) -> dict[str, Any]:
    return schema_of(function)["properties"]


# --- module-level types (this module's annotations are strings, resolved by name) -------------


class Unit(enum.Enum):
    CELSIUS = "c"
    FAHRENHEIT = "f"


class Level(enum.IntEnum):
    LOW = 1
    HIGH = 2


class Mixed(enum.Enum):
    TEXT = "x"
    NUMBER = 3


class Odd(enum.Enum):
    THING = object()


class Nothing(enum.Enum):
    pass


@dataclasses.dataclass(frozen=True)
class Point:
    """A point on the map.

    Attributes:
        lat: Latitude in degrees.
        lon: Longitude in degrees.
    """

    lat: float
    lon: float
    label: str = ""
    tags: list[str] = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class Route:
    start: Point
    stops: list[Point]
    mode: Literal["walk", "drive"] = "walk"


@dataclasses.dataclass
class Positive:
    value: int

    def __post_init__(self) -> None:
        if self.value <= 0:
            raise ValueError("value must be positive")


class Filters(TypedDict, total=False):
    """Search filters."""

    max_price: float
    brands: list[str]


class Address(TypedDict):
    street: str
    city: str


@attrs.define
class Booking:
    """A booking.

    :param guests: How many people.
    """

    guests: int = attrs.field(validator=attrs.validators.ge(1))
    name: str = "guest"
    _code: str = "none"
    extras: list[str] = attrs.Factory(list)


@dataclasses.dataclass
class Node:
    value: int
    children: list[Node]


Celsius = NewType("Celsius", float)
Miles = typing_extensions.TypeAliasType("Miles", float)


class Profile(typing_extensions.TypedDict):
    name: typing_extensions.Required[str]
    nickname: typing_extensions.NotRequired[str]


@dataclasses.dataclass
class Settings:
    limit: Final[int] = 5
    untyped: Final = 3
    computed: int = dataclasses.field(init=False, default=0)


@attrs.define
class Counter:
    start: int = 0
    total: int = attrs.field(init=False, default=0)


class NoSignature:
    """Takes anything."""

    __signature__ = "not a signature"

    def __call__(self, **values: Any) -> Any:
        return values


class Unknown:
    pass


# --- tools used in several tests ----------------------------------------------------------------


def get_weather(city: str, unit: Unit = Unit.CELSIUS, days: int = 1) -> dict[str, Any]:
    """Get the current weather for a city.

    Uses the public forecast service; more words the model does not need.

    Args:
        city: The city name,
            for example "Paris".
        unit (Unit): Temperature unit.
        days: How many days to forecast.

    Returns:
        The forecast.
    """
    return {"city": city, "unit": unit, "days": days}


def plan_route(route: Route, avoid: set[str] | None = None, booking: Booking | None = None) -> Any:
    """Plan a route."""
    return {"route": route, "avoid": avoid, "booking": booking}


def kitchen_sink(
    *,
    text: str,
    count: int,
    ratio: float,
    flag: bool,
    nothing: None,
    anything: Any,
    unannotated,  # type: ignore[no-untyped-def]
    items: list[int],
    seq: Sequence[str],
    pair: tuple[int, str],
    many: tuple[float, ...],
    mapping: dict[str, int],
    loose: Mapping[str, Any],
    choice: Literal["a", "b"],
    level: Level,
    maybe: int | None,
    either: int | str,
    filters: Filters,
    address: Address,
    point: Point,
    temperature: Celsius,
    described: Annotated[str, "A described string."],
    bounded: Annotated[int, {"minimum": 0, "maximum": 10}, "From 0 to 10."] = 5,
) -> None:
    """Take one of everything."""


ALL_TOOLS: list[Any] = [get_weather, plan_route, kitchen_sink]


# --- a small JSON Schema checker for the subset we emit ----------------------------------------

KEYWORDS = {
    "type",
    "description",
    "default",
    "enum",
    "properties",
    "required",
    "additionalProperties",
    "items",
    "prefixItems",
    "minItems",
    "maxItems",
    "uniqueItems",
    "anyOf",
    "minimum",
    "maximum",
}
JSON_TYPES = {"string", "integer", "number", "boolean", "null", "array", "object"}


def check_schema(schema: Any, path: str = "$") -> None:
    """Fail unless ``schema`` is a well-formed JSON schema of the subset we emit."""
    assert isinstance(schema, dict), path
    assert set(schema) <= KEYWORDS, (path, set(schema) - KEYWORDS)
    kinds = schema.get("type")
    if kinds is not None:
        listed = [kinds] if isinstance(kinds, str) else kinds
        assert listed and set(listed) <= JSON_TYPES and len(set(listed)) == len(listed), path
    if "enum" in schema:
        assert schema["enum"] and all(valid({"type": kinds}, v) for v in schema["enum"]), path
    if "properties" in schema:
        for name, sub in schema["properties"].items():
            check_schema(sub, f"{path}.{name}")
    if "required" in schema:
        assert set(schema["required"]) <= set(schema.get("properties", {})), path
        assert len(set(schema["required"])) == len(schema["required"]), path
    for key in ("items", "additionalProperties"):
        if isinstance(schema.get(key), dict):
            check_schema(schema[key], f"{path}.{key}")
    for index, sub in enumerate(schema.get("prefixItems", [])):
        check_schema(sub, f"{path}[{index}]")
    for index, sub in enumerate(schema.get("anyOf", [])):
        check_schema(sub, f"{path}|{index}")
    if "default" in schema and "anyOf" not in schema:
        assert valid({k: v for k, v in schema.items() if k != "default"}, schema["default"]), path
    json.dumps(schema, allow_nan=False)


def valid(schema: Mapping[str, Any], value: Any) -> bool:
    """Whether ``value`` (parsed JSON) is valid against ``schema`` (the subset we emit)."""
    kinds = schema.get("type")
    if kinds is not None:
        listed = [kinds] if isinstance(kinds, str) else kinds
        if not any(is_kind(kind, value) for kind in listed):
            return False
    if "enum" in schema and not any(same(value, choice) for choice in schema["enum"]):
        return False
    if "anyOf" in schema and not any(valid(sub, value) for sub in schema["anyOf"]):
        return False
    if "minimum" in schema and is_kind("number", value) and value < schema["minimum"]:
        return False
    if "maximum" in schema and is_kind("number", value) and value > schema["maximum"]:
        return False
    if isinstance(value, dict):
        properties = schema.get("properties", {})
        if any(name not in value for name in schema.get("required", [])):
            return False
        for name, item in value.items():
            if name in properties:
                if not valid(properties[name], item):
                    return False
            elif schema.get("additionalProperties") is False or not valid(
                schema.get("additionalProperties") or {}, item
            ):
                return False
    if isinstance(value, list):
        if len(value) < schema.get("minItems", 0) or len(value) > schema.get("maxItems", 1e9):
            return False
        prefix = schema.get("prefixItems", [])
        if any(not valid(sub, item) for sub, item in zip(prefix, value, strict=False)):
            return False
        if "items" in schema and any(not valid(schema["items"], v) for v in value[len(prefix) :]):
            return False
        if schema.get("uniqueItems"):
            encoded = [json.dumps(v, sort_keys=True) for v in value]
            if len(set(encoded)) != len(encoded):
                return False
    return True


def is_kind(kind: str, value: Any) -> bool:
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    return {
        "string": isinstance(value, str),
        "integer": number and float(value).is_integer(),
        "number": number,
        "boolean": isinstance(value, bool),
        "null": value is None,
        "array": isinstance(value, list),
        "object": isinstance(value, dict),
    }[kind]


def same(a: Any, b: Any) -> bool:
    return json.dumps(a) == json.dumps(b) or (
        is_kind("number", a) and is_kind("number", b) and a == b
    )


# --- schemas: types -----------------------------------------------------------------------------


def test_scalar_types_become_json_types() -> None:
    properties = properties_of(kitchen_sink)
    assert properties["text"] == {"type": "string"}
    assert properties["count"] == {"type": "integer"}
    assert properties["ratio"] == {"type": "number"}
    assert properties["flag"] == {"type": "boolean"}
    assert properties["nothing"] == {"type": "null"}
    assert properties["temperature"] == {"type": "number"}  # a NewType is its base type


def test_any_and_missing_annotations_constrain_nothing() -> None:
    properties = properties_of(kitchen_sink)
    assert properties["anything"] == {}
    assert properties["unannotated"] == {}

    def untyped(a, b: object):  # type: ignore[no-untyped-def]
        """Untyped."""

    assert properties_of(untyped) == {"a": {}, "b": {}}


def test_sequences_tuples_and_sets_become_arrays() -> None:
    properties = properties_of(kitchen_sink)
    assert properties["items"] == {"type": "array", "items": {"type": "integer"}}
    assert properties["seq"] == {"type": "array", "items": {"type": "string"}}
    assert properties["many"] == {"type": "array", "items": {"type": "number"}}
    assert properties["pair"] == {
        "type": "array",
        "prefixItems": [{"type": "integer"}, {"type": "string"}],
        "minItems": 2,
        "maxItems": 2,
    }

    def containers(a: list, b: set[str], c: frozenset[int], d: tuple[()], e: list[Any]) -> None:  # type: ignore[type-arg]
        """Containers."""

    assert properties_of(containers) == {
        "a": {"type": "array"},
        "b": {"type": "array", "items": {"type": "string"}, "uniqueItems": True},
        "c": {"type": "array", "items": {"type": "integer"}, "uniqueItems": True},
        "d": {"type": "array", "maxItems": 0},
        "e": {"type": "array"},
    }


def test_mappings_become_objects() -> None:
    properties = properties_of(kitchen_sink)
    assert properties["mapping"] == {"type": "object", "additionalProperties": {"type": "integer"}}
    assert properties["loose"] == {"type": "object"}

    def plain(a: dict) -> None:  # type: ignore[type-arg]
        """Plain."""

    assert properties_of(plain) == {"a": {"type": "object"}}

    def int_keys(a: dict[int, str]) -> None:
        """Int keys."""

    with pytest.raises(ConfigurationError, match=r"parameter 'a'.*keys are strings"):
        Tool.from_function(int_keys)


def test_literal_becomes_an_enum_with_its_type() -> None:
    def literals(
        *,
        a: Literal["x", "y"],
        b: Literal[1, 2],
        c: Literal[True],
        d: Literal["x", 1],
        e: Literal[1, 2.5],
        f: Literal[Unit.CELSIUS],
    ) -> None:
        """Literals."""

    assert properties_of(literals) == {
        "a": {"type": "string", "enum": ["x", "y"]},
        "b": {"type": "integer", "enum": [1, 2]},
        "c": {"type": "boolean", "enum": [True]},
        "d": {"type": ["string", "integer"], "enum": ["x", 1]},
        "e": {"type": "number", "enum": [1, 2.5]},
        "f": {"type": "string", "enum": ["c"]},
    }


def test_enum_classes_become_enums_of_their_values() -> None:
    def enums(unit: Unit, level: Level, mixed: Mixed) -> None:
        """Enums."""

    assert properties_of(enums) == {
        "unit": {"type": "string", "enum": ["c", "f"]},
        "level": {"type": "integer", "enum": [1, 2]},
        "mixed": {"type": ["string", "integer"], "enum": ["x", 3]},
    }

    def odd(value: Odd) -> None:
        """Odd."""

    with pytest.raises(ConfigurationError, match=r"parameter 'value'.*enum"):
        Tool.from_function(odd)


def test_optional_is_nullable_and_required_unless_defaulted() -> None:
    def optionals(
        *,
        a: Optional[int],  # noqa: UP045  # the spelling under test
        b: int | None,
        c: str | None = None,
        d: Literal["x", "y"] | None = None,
        e: list[int] | None = None,
        f: Point | None = None,
        g: Union[int, str, None] = None,  # noqa: UP007
        h: Any | None = None,
    ) -> None:
        """Optionals."""

    schema = schema_of(optionals)
    assert schema["required"] == ["a", "b"]
    properties = schema["properties"]
    assert properties["a"] == {"type": ["integer", "null"]}
    assert properties["b"] == {"type": ["integer", "null"]}
    assert properties["c"] == {"type": ["string", "null"], "default": None}
    assert properties["d"] == {
        "type": ["string", "null"],
        "enum": ["x", "y", None],
        "default": None,
    }
    assert properties["e"] == {
        "anyOf": [{"type": "array", "items": {"type": "integer"}}, {"type": "null"}],
        "default": None,
    }
    point = properties["f"]
    assert point["anyOf"][1] == {"type": "null"}
    assert point["anyOf"][0]["properties"]["lat"] == {
        "type": "number",
        "description": "Latitude in degrees.",
    }
    assert point["anyOf"][0]["description"] == "A point on the map."
    assert properties["g"] == {"type": ["integer", "string", "null"], "default": None}
    assert properties["h"] == {"default": None}


def test_unions_merge_plain_types_and_use_any_of_otherwise() -> None:
    assert properties_of(kitchen_sink)["either"] == {"type": ["integer", "string"]}

    def unions(a: int | list[str], b: Point | Address) -> None:
        """Unions."""

    properties = properties_of(unions)
    assert properties["a"] == {
        "anyOf": [{"type": "integer"}, {"type": "array", "items": {"type": "string"}}]
    }
    assert [sub["type"] for sub in properties["b"]["anyOf"]] == ["object", "object"]


def test_defaults_are_not_required_and_shown_when_json() -> None:
    marker = object()

    def defaults(
        *,
        a: str,
        b: int = 3,
        c: Unit = Unit.FAHRENHEIT,
        d: tuple[int, ...] = (1, 2),
        e: Any = marker,
        f: float = math.inf,
    ) -> None:
        """Defaults."""

    schema = schema_of(defaults)
    assert schema["required"] == ["a"]
    assert schema["additionalProperties"] is False
    properties = schema["properties"]
    assert properties["b"] == {"type": "integer", "default": 3}
    assert properties["c"] == {"type": "string", "enum": ["c", "f"], "default": "f"}
    assert properties["d"]["default"] == [1, 2]
    assert properties["e"] == {}  # no JSON for the default: not shown
    assert properties["f"] == {"type": "number"}

    def no_parameters() -> str:
        """Say hello."""
        return "hello"

    assert schema_of(no_parameters) == {
        "type": "object",
        "properties": {},
        "additionalProperties": False,
    }


def test_annotated_gives_descriptions_and_schema_keywords() -> None:
    properties = properties_of(kitchen_sink)
    assert properties["described"] == {"type": "string", "description": "A described string."}
    assert properties["bounded"] == {
        "type": "integer",
        "minimum": 0,
        "maximum": 10,
        "description": "From 0 to 10.",
        "default": 5,
    }

    def both(city: Annotated[str, "From Annotated."]) -> None:
        """Both.

        Args:
            city: From the docstring.
        """

    assert properties_of(both)["city"]["description"] == "From Annotated."

    def bad(city: Annotated[str, {"pattern": object()}]) -> None:
        """Bad."""

    with pytest.raises(ConfigurationError, match="not JSON"):
        Tool.from_function(bad)


def test_dataclasses_typeddicts_and_attrs_classes_become_nested_objects() -> None:
    properties = properties_of(kitchen_sink)
    assert properties["point"] == {
        "type": "object",
        "description": "A point on the map.",
        "properties": {
            "lat": {"type": "number", "description": "Latitude in degrees."},
            "lon": {"type": "number", "description": "Longitude in degrees."},
            "label": {"type": "string", "default": ""},
            "tags": {"type": "array", "items": {"type": "string"}},
        },
        "required": ["lat", "lon"],
        "additionalProperties": False,
    }
    assert properties["filters"] == {
        "type": "object",
        "description": "Search filters.",
        "properties": {
            "max_price": {"type": "number"},
            "brands": {"type": "array", "items": {"type": "string"}},
        },
        "additionalProperties": False,
    }
    assert properties["address"]["required"] == ["street", "city"]
    booking = properties_of(plan_route)["booking"]
    assert booking["anyOf"][1] == {"type": "null"}
    assert booking["anyOf"][0] == {
        "type": "object",
        "description": "A booking.",
        "properties": {
            "guests": {"type": "integer", "description": "How many people."},
            "name": {"type": "string", "default": "guest"},
            "code": {"type": "string", "default": "none"},  # the attrs alias of _code
            "extras": {"type": "array", "items": {"type": "string"}},
        },
        "required": ["guests"],
        "additionalProperties": False,
    }
    route = properties_of(plan_route)["route"]
    assert route["properties"]["stops"]["items"] == properties["point"]
    assert route["properties"]["mode"] == {
        "type": "string",
        "enum": ["walk", "drive"],
        "default": "walk",
    }
    assert "description" not in route  # the docstring dataclasses makes up is not used


def test_recursive_and_unknown_types_are_refused_naming_the_parameter() -> None:
    def recursive(tree: Node) -> None:
        """Recursive."""

    with pytest.raises(ConfigurationError, match=r"'recursive'.*'tree'.*Node contains itself"):
        Tool.from_function(recursive)

    def unknown(thing: Unknown) -> None:
        """Unknown."""

    with pytest.raises(ConfigurationError, match=r"parameter 'thing': cannot describe"):
        Tool.from_function(unknown)

    def nested_unknown(point: list[dict[str, Unknown]]) -> None:
        """Nested unknown."""

    with pytest.raises(ConfigurationError, match="parameter 'point'"):
        Tool.from_function(nested_unknown)


def test_var_arguments_are_refused_unless_parameters_are_given() -> None:
    def star(*names: str) -> None:
        """Star."""

    def double_star(city: str, **options: Any) -> str:
        """Double star."""
        return json.dumps({"city": city, **options}, sort_keys=True)

    with pytest.raises(ConfigurationError, match=r"\*names .*parameters="):
        Tool.from_function(star)
    with pytest.raises(ConfigurationError, match=r"\*\*options .*parameters="):
        Tool.from_function(double_star)

    schema = {"type": "object", "properties": {"city": {"type": "string"}, "x": {}}}
    tool = Tool.from_function(double_star, parameters=schema)
    assert tool.definition()["parameters"] == schema
    assert tool.call('{"city": "Oslo", "x": 1, "y": 2}') == '{"city": "Oslo", "x": 1, "y": 2}'


def test_methods_partials_and_callable_objects() -> None:
    class Service:
        """The service."""

        def __init__(self) -> None:
            self.calls = 0

        def lookup(self, key: str) -> str:
            """Look a key up."""
            self.calls += 1
            return key.upper()

        @classmethod
        def build(cls, size: int) -> int:
            """Build one."""
            return size

        def __call__(self, query: str, limit: int = 3) -> list[str]:
            """Search for things."""
            return [query] * limit

    service = Service()
    tool = Tool.from_function(service.lookup)
    assert tool.name == "lookup"
    assert tool.description == "Look a key up."
    assert tool.definition()["parameters"]["required"] == ["key"]  # self is not a parameter
    assert tool.call('{"key": "abc"}') == "ABC"
    assert service.calls == 1
    assert schema_of(Service.build)["properties"] == {"size": {"type": "integer"}}

    searcher = Tool.from_function(service)
    assert (searcher.name, searcher.description) == ("Service", "Search for things.")
    assert searcher.call('{"query": "q", "limit": 2}') == '["q","q"]'

    partial = Tool.from_function(functools.partial(get_weather, unit=Unit.FAHRENHEIT))
    assert partial.name == "get_weather"
    assert partial.description == "Get the current weather for a city."
    assert partial.definition()["parameters"]["properties"]["unit"]["default"] == "f"
    assert json.loads(partial.call('{"city": "Rome"}'))["unit"] == "f"

    @functools.wraps(get_weather)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        return get_weather(*args, **kwargs)

    assert Tool.from_function(wrapped).definition() == Tool.from_function(get_weather).definition()


def test_async_functions_are_refused() -> None:
    async def fetch(url: str) -> str:
        """Fetch."""
        return url

    async def stream(url: str) -> Any:
        """Stream."""
        yield url

    for function in (fetch, stream):
        with pytest.raises(ConfigurationError, match="async"):
            Tool.from_function(function)


# --- schemas: docstrings ------------------------------------------------------------------------


def test_google_docstrings_give_summary_and_parameter_descriptions() -> None:
    tool = Tool.from_function(get_weather)
    assert tool.description == "Get the current weather for a city."
    properties = tool.definition()["parameters"]["properties"]
    assert properties["city"]["description"] == 'The city name, for example "Paris".'
    assert properties["unit"]["description"] == "Temperature unit."
    assert properties["days"]["description"] == "How many days to forecast."


def test_rest_docstrings() -> None:
    def search(query: str, limit: int = 10, *, exact: bool = False) -> None:
        """Search the catalogue
        for products.

        :param query: What to look for,
            in plain words.
        :param int limit: How many results.
        :type limit: int
        :keyword exact: Match exactly.
        :returns: Nothing.
        """

    tool = Tool.from_function(search)
    assert tool.description == "Search the catalogue for products."
    properties = tool.definition()["parameters"]["properties"]
    assert properties["query"]["description"] == "What to look for, in plain words."
    assert properties["limit"]["description"] == "How many results."
    assert properties["exact"]["description"] == "Match exactly."


def test_numpy_docstrings() -> None:
    def convert(amount: float, source: str, target: str = "EUR") -> None:
        """Convert money between currencies.

        Parameters
        ----------
        amount : float
            How much,
            in the source currency.
        source, target : str
            ISO 4217 codes.

        Returns
        -------
        float
            The converted amount.
        """

    tool = Tool.from_function(convert)
    assert tool.description == "Convert money between currencies."
    properties = tool.definition()["parameters"]["properties"]
    assert properties["amount"]["description"] == "How much, in the source currency."
    assert properties["source"]["description"] == "ISO 4217 codes."
    assert properties["target"]["description"] == "ISO 4217 codes."


def test_docstring_edge_cases_and_explicit_description() -> None:
    def sections_only(a: int) -> None:
        """
        Args:
            a: The a.
        """

    tool = Tool.from_function(sections_only)
    assert tool.description == ""
    assert tool.definition()["parameters"]["properties"]["a"]["description"] == "The a."

    def undocumented(a: int) -> None:
        pass

    assert Tool.from_function(undocumented).description == ""
    explicit = Tool.from_function(get_weather, description="Weather, now.")
    assert explicit.description == "Weather, now."
    assert explicit.definition()["parameters"] == schema_of(get_weather)

    def entries_without_text(a: int, b: int) -> None:
        """Sum.

        Args:
            a:
            b (int): The b.
            not an entry
        """

    properties = properties_of(entries_without_text)
    assert properties == {
        "a": {"type": "integer"},
        "b": {"type": "integer", "description": "The b."},
    }


# --- schemas: from __future__ import annotations in the user's module --------------------------

FUTURE_MODULE = '''
from __future__ import annotations

import dataclasses
from typing import Annotated, Literal, TypedDict


@dataclasses.dataclass
class Item:
    sku: str
    quantity: int = 1


class Customer(TypedDict):
    name: str
    vip: bool


def order(
    items: list[Item],
    customer: Customer,
    priority: Literal["low", "high"] | None = None,
    note: Annotated[str, "Free text."] = "",
) -> dict:
    """Place an order.

    Args:
        items: What to order.
    """
    return {"items": items, "customer": customer, "priority": priority, "note": note}


def broken(thing: Missing) -> None:
    """Refers to a name that does not exist."""


@dataclasses.dataclass
class Damaged:
    part: Missing


def repair(item: Damaged) -> str:
    """Takes a record whose annotations cannot be resolved."""
    return type(item).__name__
'''


@pytest.fixture
def future_module(monkeypatch: pytest.MonkeyPatch) -> types.ModuleType:
    module = types.ModuleType("realtime_sync_test_future_tools")
    monkeypatch.setitem(sys.modules, module.__name__, module)
    exec(compile(FUTURE_MODULE, "<future tools>", "exec"), module.__dict__)
    return module


def test_future_annotations_in_the_users_module(future_module: types.ModuleType) -> None:
    tool = Tool.from_function(future_module.order)
    schema = tool.definition()["parameters"]
    assert schema["required"] == ["items", "customer"]
    assert schema["properties"]["items"] == {
        "type": "array",
        "items": {
            "type": "object",
            "properties": {
                "sku": {"type": "string"},
                "quantity": {"type": "integer", "default": 1},
            },
            "required": ["sku"],
            "additionalProperties": False,
        },
        "description": "What to order.",
    }
    assert schema["properties"]["customer"]["required"] == ["name", "vip"]
    assert schema["properties"]["priority"]["enum"] == ["low", "high", None]
    assert schema["properties"]["note"]["description"] == "Free text."
    result = tool.call(
        '{"items": [{"sku": "A1"}], "customer": {"name": "Ann", "vip": true}, "priority": "high"}'
    )
    assert json.loads(result) == {
        "items": [{"sku": "A1", "quantity": 1}],
        "customer": {"name": "Ann", "vip": True},
        "priority": "high",
        "note": "",
    }


def test_unresolvable_annotations_are_a_clear_error(future_module: types.ModuleType) -> None:
    with pytest.raises(ConfigurationError, match=r"'broken'.*resolve.*NameError.*Missing"):
        Tool.from_function(future_module.broken)
    # With an explicit schema the function is still usable; its values pass through as JSON.
    tool = Tool.from_function(
        future_module.broken, parameters={"type": "object", "properties": {"thing": {}}}
    )
    assert tool.call('{"thing": {"a": 1}}') == "null"
    with pytest.raises(ConfigurationError, match=r"'item'.*Damaged.*NameError"):
        Tool.from_function(future_module.repair)
    repair = Tool.from_function(
        future_module.repair, parameters={"type": "object", "properties": {"item": {}}}
    )
    assert repair.call('{"item": {"part": 1}}') == "dict"

    @dataclasses.dataclass
    class Local:  # under this module's string annotations, not resolvable by name
        x: int

    def uses_local(value: Local) -> None:
        """Uses a class local to a function."""

    with pytest.raises(ConfigurationError, match="NameError"):
        Tool.from_function(uses_local)


# --- schemas: names, options, definitions -------------------------------------------------------


@pytest.mark.parametrize("name", ["a", "get_weather", "Get-Weather-2", "x" * 64, "_", "-"])
def test_valid_tool_names(name: str) -> None:
    assert Tool.from_function(get_weather, name=name).definition()["name"] == name


@pytest.mark.parametrize(
    "name", ["", "x" * 65, "get weather", "get.weather", "wetter_für", "name\n", "a/b", "$"]
)
def test_invalid_tool_names_are_refused(name: str) -> None:
    with pytest.raises(ConfigurationError, match="not allowed"):
        Tool.from_function(get_weather, name=name)


def test_lambdas_and_nameless_callables_need_a_name() -> None:
    with pytest.raises(ConfigurationError, match=r"'<lambda>' is not allowed.*name="):
        Tool.from_function(lambda: None)
    assert Tool.from_function(lambda: "ok", name="ping").call("") == "ok"
    with pytest.raises(ConfigurationError, match="must be callable, not a str"):
        Tool.from_function("get_weather")  # type: ignore[arg-type]


def test_tool_options_are_checked() -> None:
    for timeout in (0, -1, math.nan, True, "5"):
        with pytest.raises(ConfigurationError, match="timeout"):
            Tool.from_function(get_weather, timeout=timeout)  # type: ignore[arg-type]
    assert Tool.from_function(get_weather, timeout=2).timeout == 2.0
    assert Tool.from_function(get_weather, timeout=math.inf).timeout == math.inf
    assert Tool.from_function(get_weather).timeout is None
    with pytest.raises(ConfigurationError, match="must be a JSON schema object"):
        Tool.from_function(get_weather, parameters=["city"])  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="describe an object"):
        Tool.from_function(get_weather, parameters={"type": "string"})
    with pytest.raises(ConfigurationError, match="not JSON"):
        Tool.from_function(get_weather, parameters={"type": "object", "x": math.nan})
    with pytest.raises(ConfigurationError, match=r"does not describe 'city', which .* requires"):
        Tool.from_function(get_weather, parameters={"type": "object", "properties": {"days": {}}})
    with pytest.raises(ConfigurationError, match=r"'town'.*does not take"):
        Tool.from_function(get_weather, parameters={"type": "object", "properties": {"town": {}}})
    with pytest.raises(ConfigurationError, match="description"):
        Tool(name="x", description=None, parameters={}, function=print)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="dialect"):
        Tool.from_function(get_weather).definition("v1")  # type: ignore[arg-type]


def test_tools_are_immutable_copies_and_compare_by_value() -> None:
    schema: dict[str, Any] = {"type": "object", "properties": {"city": {"type": "string"}}}
    tool = Tool.from_function(get_weather, parameters=schema)
    schema["properties"]["city"]["type"] = "integer"
    assert tool.parameters["properties"]["city"]["type"] == "string"
    with pytest.raises(TypeError):
        tool.parameters["type"] = "array"  # type: ignore[index]
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        tool.name = "other"  # type: ignore[misc]
    definition = tool.definition()
    definition["parameters"]["properties"].clear()
    assert tool.definition()["parameters"]["properties"] == {"city": {"type": "string"}}
    assert tool == Tool.from_function(
        get_weather, parameters=schema | {"properties": {"city": {"type": "string"}}}
    )
    assert hash(tool) == hash(Tool.from_function(get_weather, parameters=tool.parameters))
    assert tool != Tool.from_function(get_weather)
    assert "get_weather" in repr(tool)


def test_direct_construction_matches_from_function() -> None:
    made = Tool.from_function(get_weather, timeout=5)
    direct = Tool(
        name="get_weather",
        description=made.description,
        parameters=made.parameters,
        function=get_weather,
        timeout=5,
    )
    assert direct == made
    assert direct.call('{"city": "Lima"}') == made.call('{"city": "Lima"}')


def test_both_dialects_use_the_same_function_entry() -> None:
    tool = Tool.from_function(get_weather)
    assert tool.definition("ga") == tool.definition("beta")
    assert set(tool.definition()) == {"type", "name", "description", "parameters"}
    assert tool.definition()["type"] == "function"


# --- schemas: checked against the official openai types and our own wire checks --------------


@pytest.fixture(params=ALL_TOOLS, ids=lambda function: function.__name__)
def tool(request: pytest.FixtureRequest) -> Tool:
    return Tool.from_function(request.param)


def test_schemas_are_well_formed(tool: Tool) -> None:
    check_schema(tool.definition()["parameters"])
    assert tool.definition()["parameters"]["type"] == "object"


def test_definitions_validate_against_the_official_ga_types(tool: Tool) -> None:
    from openai.types.realtime import RealtimeFunctionTool, SessionUpdateEvent
    from openai.types.realtime.realtime_function_tool_param import RealtimeFunctionToolParam

    definition = tool.definition("ga")
    model = RealtimeFunctionTool.model_validate(definition)
    assert not model.model_extra
    assert model.model_dump(exclude_none=True) == definition
    assert set(definition) <= set(RealtimeFunctionToolParam.__annotations__)
    event = SessionUpdateEvent.model_validate(
        {"type": "session.update", "session": {"type": "realtime", "tools": [definition]}}
    )
    assert event.session.tools is not None
    official = event.session.tools[0]
    assert isinstance(official, RealtimeFunctionTool)
    assert official.parameters == definition["parameters"]


def test_definitions_validate_against_the_official_beta_types(tool: Tool) -> None:
    from openai.types.beta.realtime import SessionUpdateEvent
    from openai.types.beta.realtime.session import Tool as BetaSessionTool
    from openai.types.beta.realtime.session_update_event_param import SessionTool

    definition = tool.definition("beta")
    model = BetaSessionTool.model_validate(definition)
    assert not model.model_extra
    assert model.model_dump(exclude_none=True) == definition
    assert set(definition) <= set(SessionTool.__annotations__)
    event = SessionUpdateEvent.model_validate(
        {"type": "session.update", "session": {"tools": [definition]}}
    )
    assert event.session.tools is not None
    assert event.session.tools[0].model_dump(exclude_none=True) == definition


def test_definitions_pass_our_own_session_update_checks(tool: Tool) -> None:
    for dialect in ("ga", "beta"):
        session = session_for_dialect({"tools": [tool.definition(dialect)]}, dialect)
        encoded = encode_client_event({"type": "session.update", "session": session})
        assert json.loads(encoded)["session"]["tools"] == [tool.definition(dialect)]


# --- calls --------------------------------------------------------------------------------------


def test_call_converts_arguments_to_the_annotated_types() -> None:
    seen: dict[str, Any] = {}

    def record(**values: Any) -> None:
        seen.update(values)
        del seen["record"]  # locals() of the caller include the free variable

    def typed(
        *,
        count: int,
        ratio: float,
        unit: Unit,
        level: Level,
        choice: Literal["a", "b"],
        pair: tuple[int, str],
        many: tuple[float, ...],
        unique: set[str],
        frozen: frozenset[int],
        point: Point,
        filters: Filters,
        booking: Booking,
        maybe: int | None,
        either: float | str,
        mapping: dict[str, Level],
        temperature: Celsius,
        anything: Any = None,
    ) -> None:
        """Typed."""
        record(**locals())

    tool = Tool.from_function(typed)
    arguments = {
        "count": 2.0,
        "ratio": 3,
        "unit": "f",
        "level": 2,
        "choice": "b",
        "pair": [1, "x"],
        "many": [1, 2.5],
        "unique": ["x", "y", "x"],
        "frozen": [1],
        "point": {"lat": 1, "lon": 2.5, "tags": ["t"]},
        "filters": {"brands": ["b"]},
        "booking": {"guests": 2, "code": "K9"},
        "maybe": None,
        "either": 4,
        "mapping": {"a": 1},
        "temperature": 21,
        "anything": {"free": [1]},
    }
    assert tool.call(json.dumps(arguments)) == "null"
    assert seen == {
        "count": 2,
        "ratio": 3.0,
        "unit": Unit.FAHRENHEIT,
        "level": Level.HIGH,
        "choice": "b",
        "pair": (1, "x"),
        "many": (1.0, 2.5),
        "unique": {"x", "y"},
        "frozen": frozenset({1}),
        "point": Point(lat=1.0, lon=2.5, tags=["t"]),
        "filters": {"brands": ["b"]},
        "booking": Booking(guests=2, code="K9"),
        "maybe": None,
        "either": 4.0,
        "mapping": {"a": Level.LOW},
        "temperature": 21.0,
        "anything": {"free": [1]},
    }
    assert type(seen["count"]) is int and type(seen["ratio"]) is float
    assert type(seen["either"]) is float
    point = seen["point"]
    assert type(point.lat) is float and point.label == ""


def test_call_with_nested_records_and_unions() -> None:
    tool = Tool.from_function(plan_route)
    result = json.loads(
        tool.call(
            '{"route": {"start": {"lat": 0, "lon": 0}, "stops": [{"lat": 1, "lon": 1}],'
            ' "mode": "drive"}, "avoid": ["tolls", "ferries"]}'
        )
    )
    assert result == {
        "route": {
            "start": {"lat": 0.0, "lon": 0.0, "label": "", "tags": []},
            "stops": [{"lat": 1.0, "lon": 1.0, "label": "", "tags": []}],
            "mode": "drive",
        },
        "avoid": ["ferries", "tolls"],  # a set, sorted in the output
        "booking": None,
    }

    def union(value: int | str | Point) -> str:
        """Union."""
        return type(value).__name__

    union_tool = Tool.from_function(union)
    assert union_tool.call('{"value": 1}') == "int"
    assert union_tool.call('{"value": "1"}') == "str"
    assert union_tool.call('{"value": {"lat": 1, "lon": 2}}') == "Point"


def test_empty_arguments_are_an_empty_object() -> None:
    def ping() -> str:
        """Ping."""
        return "pong"

    tool = Tool.from_function(ping)
    for arguments in ("", "  ", "{}", b"{}", {}):
        assert tool.call(arguments) == "pong"


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ("{", r"not valid JSON \(Expecting"),
        ('{"city": NaN}', "NaN is not JSON"),
        (b"\xff", "not UTF-8"),
        ("[]", r"must be a JSON object, got \[\]"),
        ('"Paris"', 'must be a JSON object, got "Paris"'),
        ("null", "must be a JSON object, got null"),
        ("{}", "missing required argument 'city'"),
        ('{"city": "Oslo", "town": 1}', r"unknown argument 'town' \(accepted: 'city', 'unit'"),
        ('{"city": 3}', "'city': expected a string, got 3"),
        ('{"city": "Oslo", "days": 1.5}', "'days': expected an integer, got 1.5"),
        ('{"city": "Oslo", "days": true}', "'days': expected an integer, got true"),
        ('{"city": "Oslo", "days": "2"}', "'days': expected an integer, got \"2\""),
        ('{"city": "Oslo", "unit": "k"}', r"'unit': expected one of \"c\", \"f\", got \"k\""),
        ('{"city": null}', "'city': expected a string, got null"),
    ],
)
def test_bad_arguments_are_refused_before_calling(arguments: Any, message: str) -> None:
    calls: list[Any] = []

    def weather(city: str, unit: Unit = Unit.CELSIUS, days: int = 1) -> None:
        """Weather."""
        calls.append(city)

    tool = Tool.from_function(weather)
    with pytest.raises(ToolArgumentsError, match=message) as caught:
        tool.call(arguments)
    assert caught.value.tool == "weather"
    assert str(caught.value).startswith("invalid arguments for tool 'weather': ")
    assert calls == []


def test_nested_bad_values_are_named_by_path_and_all_reported() -> None:
    tool = Tool.from_function(plan_route)
    arguments = {
        "route": {"start": {"lat": "north", "lon": 0}, "stops": [{"lat": 1, "lon": 1}, {}]},
        "avoid": "tolls",
        "booking": {"guests": 0},
        "extra": 1,
    }
    with pytest.raises(ToolArgumentsError) as caught:
        tool.call(json.dumps(arguments))
    message = str(caught.value)
    assert "unknown argument 'extra'" in message
    assert "'route': 'route.start.lat': expected a number" not in message
    assert "'route.start.lat': expected a number, got \"north\"" in message
    assert "'avoid': expected an array or null, got \"tolls\"" in message
    assert "'booking': expected Booking or null" in message

    with pytest.raises(ToolArgumentsError, match=r"'route\.stops\[1\]': missing required field"):
        tool.call('{"route": {"start": {"lat": 0, "lon": 0}, "stops": [{"lat": 1, "lon": 1}, {}]}}')
    with pytest.raises(ToolArgumentsError, match=r"'route\.start': unknown field 'alt'"):
        tool.call('{"route": {"start": {"lat": 0, "lon": 0, "alt": 9}, "stops": []}}')
    with pytest.raises(ToolArgumentsError, match=r"'route\.mode': expected one of"):
        tool.call('{"route": {"start": {"lat": 0, "lon": 0}, "stops": [], "mode": "fly"}}')


def test_record_validators_are_argument_errors() -> None:
    def book(booking: Booking, amount: Positive) -> None:
        """Book."""

    tool = Tool.from_function(book)
    with pytest.raises(ToolArgumentsError, match=r"'booking': ValueError: .*guests"):
        tool.call('{"booking": {"guests": 0}, "amount": {"value": 1}}')
    with pytest.raises(ToolArgumentsError, match="'amount': ValueError: value must be positive"):
        tool.call('{"booking": {"guests": 1}, "amount": {"value": 0}}')


def test_containers_check_their_shape() -> None:
    def shapes(pair: tuple[int, str], mapping: dict[str, int], unique: set[Any]) -> None:
        """Shapes."""

    tool = Tool.from_function(shapes)
    good = {"pair": [1, "a"], "mapping": {}, "unique": []}
    tool.call(json.dumps(good))
    with pytest.raises(ToolArgumentsError, match="'pair': expected 2 items, got 3"):
        tool.call(json.dumps({**good, "pair": [1, "a", 2]}))
    with pytest.raises(ToolArgumentsError, match=r"'pair\[1\]': expected a string"):
        tool.call(json.dumps({**good, "pair": [1, 2]}))
    with pytest.raises(ToolArgumentsError, match=r"'mapping\.k': expected an integer"):
        tool.call(json.dumps({**good, "mapping": {"k": "v"}}))
    with pytest.raises(ToolArgumentsError, match="'mapping': expected an object"):
        tool.call(json.dumps({**good, "mapping": []}))
    with pytest.raises(ToolArgumentsError, match="'unique': unhashable"):
        tool.call(json.dumps({**good, "unique": [[1]]}))


def test_schema_and_call_agree_on_what_is_valid() -> None:
    tool = Tool.from_function(plan_route)
    schema = tool.definition()["parameters"]
    start = {"lat": 0, "lon": 0}
    cases = [
        {"route": {"start": start, "stops": []}},
        {"route": {"start": start, "stops": [start], "mode": "drive"}, "avoid": None},
        {"route": {"start": start, "stops": []}, "booking": {"guests": 3, "extras": ["x"]}},
        {"route": {"start": {"lat": 1.0, "lon": 2, "label": "x", "tags": []}, "stops": []}},
        {},
        {"route": None},
        {"route": {"start": start}},
        {"route": {"start": start, "stops": [], "mode": "fly"}},
        {"route": {"start": {"lat": "0", "lon": 0}, "stops": []}},
        {"route": {"start": start, "stops": []}, "avoid": [1]},
        {"route": {"start": start, "stops": []}, "other": 1},
        {"route": {"start": start, "stops": []}, "booking": {"guests": 3, "code": 5}},
        {"route": {"start": start, "stops": []}, "booking": {"guests": 1.0}},
    ]
    for arguments in cases:
        try:
            tool.parse_arguments(json.dumps(arguments))
            accepted = True
        except ToolArgumentsError:
            accepted = False
        assert accepted == valid(schema, arguments), arguments


def fuzz_target(
    *,
    count: int,
    ratio: float = 0.0,
    unit: Unit = Unit.CELSIUS,
    pick: Literal["a", 1, True] | None = None,
    tags: list[str] | None = None,
    pair: tuple[int, str] = (0, ""),
    point: Point | None = None,
    scores: dict[str, float] | None = None,
    anything: Any = None,
) -> None:
    """A target for generated arguments."""


SMALL_INTS = st.integers(-(10**6), 10**6)
FLOATS = st.floats(allow_nan=False, allow_infinity=False, width=32)
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | SMALL_INTS | FLOATS | st.sampled_from(["", "a", "c", "x"]),
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(st.sampled_from(["lat", "lon", "label", "x"]), children, max_size=3)
    ),
    max_leaves=8,
)
VALID_VALUES = {
    "count": SMALL_INTS | st.just(2.0),
    "ratio": FLOATS | SMALL_INTS,
    "unit": st.sampled_from(["c", "f"]),
    "pick": st.sampled_from(["a", 1, True, None, 1.0]),
    "tags": st.lists(st.text(max_size=3), max_size=3) | st.none(),
    "pair": st.tuples(SMALL_INTS, st.text(max_size=2)).map(list),
    "point": st.none()
    | st.fixed_dictionaries(
        {"lat": SMALL_INTS, "lon": FLOATS},
        optional={"label": st.text(max_size=2), "tags": st.lists(st.text(max_size=2))},
    ),
    "scores": st.none() | st.dictionaries(st.text(max_size=2), FLOATS | SMALL_INTS, max_size=2),
    "anything": JSON_VALUES,
}


@st.composite
def fuzz_arguments(draw: st.DrawFn) -> dict[str, Any]:
    arguments: dict[str, Any] = {}
    for name, values in VALID_VALUES.items():
        choice = draw(st.sampled_from(["valid"] * 6 + ["any", "absent"]))
        if choice != "absent":
            arguments[name] = draw(values if choice == "valid" else JSON_VALUES)
    if draw(st.integers(0, 4)) == 0:
        arguments[draw(st.sampled_from(["extra", "Count"]))] = draw(JSON_VALUES)
    return arguments


@settings(max_examples=300, deadline=None, derandomize=True)
@given(arguments=fuzz_arguments())
def test_generated_arguments_are_accepted_exactly_when_the_schema_says(
    arguments: dict[str, Any],
) -> None:
    tool = Tool.from_function(fuzz_target)
    try:
        tool.call(json.dumps(arguments))
        accepted = True
    except ToolArgumentsError:
        accepted = False
    assert accepted == valid(tool.definition()["parameters"], arguments)


def test_parse_arguments_returns_the_converted_keywords() -> None:
    tool = Tool.from_function(get_weather)
    assert tool.parse_arguments('{"city": "Oslo", "unit": "f"}') == {
        "city": "Oslo",
        "unit": Unit.FAHRENHEIT,
    }
    assert tool.parse_arguments({"city": "Oslo", "days": 2.0}) == {"city": "Oslo", "days": 2}


def test_positional_only_and_keyword_only_parameters() -> None:
    def mixed(a: int, /, b: int = 2, *, c: int = 3) -> list[int]:
        """Mixed."""
        return [a, b, c]

    tool = Tool.from_function(mixed)
    assert tool.call('{"a": 1}') == "[1,2,3]"
    assert tool.call('{"a": 1, "b": 5, "c": 7}') == "[1,5,7]"

    def defaulted(a: int = 1, b: int = 2, /) -> list[int]:
        """Defaulted."""
        return [a, b]

    assert Tool.from_function(defaulted).call('{"b": 9}') == "[1,9]"


def test_explicit_parameters_are_enforced_with_the_signature() -> None:
    def lookup(key: str, verbose: bool = False) -> str:
        """Lookup."""
        return f"{key}:{verbose}"

    schema = {
        "type": "object",
        "properties": {"key": {"type": "string"}, "verbose": {"type": "boolean"}},
        "required": ["key", "verbose"],
        "additionalProperties": False,
    }
    tool = Tool.from_function(lookup, parameters=schema)
    assert tool.call('{"key": "k", "verbose": true}') == "k:True"
    with pytest.raises(ToolArgumentsError, match="missing required argument 'verbose'"):
        tool.call('{"key": "k"}')  # required by the schema, though defaulted in Python

    def flexible(**options: Any) -> str:
        """Flexible."""
        return json.dumps(options, sort_keys=True)

    closed = Tool.from_function(
        flexible,
        parameters={"type": "object", "properties": {"a": {}}, "additionalProperties": False},
    )
    assert closed.call('{"a": 1}') == '{"a": 1}'
    with pytest.raises(ToolArgumentsError, match="unknown argument 'b'"):
        closed.call('{"a": 1, "b": 2}')
    opened = Tool.from_function(flexible, parameters={"type": "object"})
    assert opened.call('{"b": 2}') == '{"b": 2}'


def test_exceptions_from_the_function_propagate() -> None:
    def failing(city: str) -> None:
        """Fail."""
        raise LookupError(f"no such city: {city}")

    with pytest.raises(LookupError, match="no such city: Atlantis"):
        Tool.from_function(failing).call('{"city": "Atlantis"}')


def test_tool_arguments_error_is_one_of_ours() -> None:
    assert issubclass(ToolArgumentsError, RealtimeError)
    assert issubclass(ToolArgumentsError, ValueError)
    assert ToolArgumentsError("x").tool is None


def test_qualifiers_aliases_and_fields_left_out_of_init() -> None:
    def configure(profile: Profile, distance: Miles, settings: Settings, counter: Counter) -> Any:
        """Configure."""
        return [profile, distance, settings, counter]

    properties = properties_of(configure)
    assert properties["profile"]["required"] == ["name"]
    assert properties["profile"]["properties"] == {
        "name": {"type": "string"},
        "nickname": {"type": "string"},
    }
    assert properties["distance"] == {"type": "number"}
    assert properties["settings"]["properties"] == {
        "limit": {"type": "integer", "default": 5},
        "untyped": {"default": 3},
    }
    assert properties["counter"]["properties"] == {"start": {"type": "integer", "default": 0}}
    output = Tool.from_function(configure).call(
        '{"profile": {"name": "Ann"}, "distance": 3, "settings": {"limit": 2}, "counter": {}}'
    )
    assert json.loads(output) == [
        {"name": "Ann"},
        3.0,
        {"limit": 2, "untyped": 3, "computed": 0},
        {"start": 0, "total": 0},
    ]
    with pytest.raises(ToolArgumentsError, match=r"'settings': unknown field 'computed'"):
        Tool.from_function(configure).call(
            '{"profile": {"name": "A"}, "distance": 1, "settings": {"computed": 1}, "counter": {}}'
        )


def test_classes_are_tools_too() -> None:
    tool = Tool.from_function(Point)
    assert (tool.name, tool.description) == ("Point", "A point on the map.")
    expected = dict(properties_of(kitchen_sink)["point"])
    del expected["description"]  # the class summary is the tool's description
    assert tool.definition()["parameters"] == expected
    assert json.loads(tool.call('{"lat": 1, "lon": 2}')) == {
        "lat": 1.0,
        "lon": 2.0,
        "label": "",
        "tags": [],
    }


class Plain:
    """A plain class."""

    def __init__(self, size: int, unit: Unit = Unit.CELSIUS) -> None:
        self.size = size
        self.unit = unit

    def __str__(self) -> str:
        return f"{self.size}{self.unit.value}"


def test_plain_classes_are_described_by_their_init() -> None:
    tool = Tool.from_function(Plain)
    assert tool.definition()["parameters"]["properties"] == {
        "size": {"type": "integer"},
        "unit": {"type": "string", "enum": ["c", "f"], "default": "c"},
    }
    assert tool.call('{"size": 3, "unit": "f"}') == '"3f"'


def test_empty_enums_are_refused() -> None:
    def empty(value: Nothing) -> None:
        """Empty."""

    with pytest.raises(ConfigurationError, match=r"parameter 'value': enum Nothing has no values"):
        Tool.from_function(empty)


def test_more_unions_in_schemas_and_calls() -> None:
    def unions(
        *,
        a: int | list[int] | None,
        b: Annotated[int, "A count."] | str,
        c: bool | int,
        d: float | str,
        e: dict[str, int] | None,
        f: Literal[True, None, "x"],
        g: None = None,
        h: Literal["a", "b"] | int = 0,
    ) -> list[Any]:
        """Unions."""
        return [type(value).__name__ for value in (a, b, c, d, e, f, g)]

    properties = properties_of(unions)
    assert properties["a"] == {
        "anyOf": [
            {"type": "integer"},
            {"type": "array", "items": {"type": "integer"}},
            {"type": "null"},
        ]
    }
    assert properties["b"] == {"type": ["integer", "string"], "description": "A count."}
    assert properties["c"] == {"type": ["boolean", "integer"]}
    assert properties["f"] == {"type": ["boolean", "null", "string"], "enum": [True, None, "x"]}
    assert properties["g"] == {"type": "null", "default": None}
    tool = Tool.from_function(unions)
    base = {"a": None, "b": 1, "c": True, "d": 2, "e": None, "f": True}
    assert json.loads(tool.call(json.dumps(base))) == [
        "NoneType", "int", "bool", "float", "NoneType", "bool", "NoneType"
    ]  # fmt: skip
    other = {"a": [1], "b": "1", "c": 1, "d": "2", "e": {"k": 1}, "f": None, "g": None}
    assert json.loads(tool.call(json.dumps(other))) == [
        "list", "str", "int", "str", "dict", "NoneType", "NoneType"
    ]  # fmt: skip
    assert json.loads(tool.call(json.dumps({**base, "f": "x"})))[5] == "str"
    for key, value, message in [
        ("f", 1, r"'f': expected one of true, null, \"x\", got 1"),
        ("e", [], "'e': expected an object or null, got \\[\\]"),
        ("a", "1", "'a': expected an integer or an array or null"),
        ("g", 0, "'g': expected null, got 0"),
        ("c", None, "'c': expected a boolean or an integer, got null"),
        ("h", "c", r"'h': expected one of \"a\", \"b\" or an integer, got \"c\""),
    ]:
        with pytest.raises(ToolArgumentsError, match=message):
            tool.call(json.dumps({**base, key: value}))


def test_kitchen_sink_call() -> None:
    arguments = {
        "text": "t",
        "count": 1,
        "ratio": 0.5,
        "flag": False,
        "nothing": None,
        "anything": [1, {"x": None}],
        "unannotated": "u",
        "items": [1, 2],
        "seq": ["s"],
        "pair": [1, "p"],
        "many": [],
        "mapping": {"m": 1},
        "loose": {"free": [True]},
        "choice": "a",
        "level": 1,
        "maybe": None,
        "either": "e",
        "filters": {},
        "address": {"street": "Main", "city": "Oslo"},
        "point": {"lat": 0, "lon": 0},
        "temperature": -3.5,
        "described": "d",
    }
    tool = Tool.from_function(kitchen_sink)
    assert valid(tool.definition()["parameters"], arguments)
    assert tool.call(json.dumps(arguments)) == "null"
    with pytest.raises(ToolArgumentsError, match="'bounded': expected an integer"):
        tool.call(json.dumps({**arguments, "bounded": "5"}))


def test_callable_object_docstrings_and_unreadable_signatures() -> None:
    class Greeter:
        """Greet people by name."""

        def __call__(self, name: str) -> str:
            return f"hi {name}"

    greeter = Tool.from_function(Greeter())
    assert (greeter.name, greeter.description) == ("Greeter", "Greet people by name.")
    assert greeter.call('{"name": "Ann"}') == "hi Ann"

    with pytest.raises(ConfigurationError, match=r"signature .* cannot be read; pass parameters="):
        Tool.from_function(NoSignature())
    tool = Tool.from_function(NoSignature(), parameters={"type": "object", "properties": {"x": {}}})
    assert (tool.name, tool.description) == ("NoSignature", "Takes anything.")
    assert tool.call('{"x": 1, "y": [2]}') == '{"x":1,"y":[2]}'


def test_explicit_parameters_pass_values_of_unknown_types_through() -> None:
    def takes_unknown(thing: Unknown, raw: dict) -> str:  # type: ignore[type-arg]
        """Takes a value we cannot describe."""
        return type(thing).__name__ + " " + type(raw).__name__

    tool = Tool.from_function(
        takes_unknown, parameters={"type": "object", "properties": {"thing": {}, "raw": {}}}
    )
    assert tool.call('{"thing": {"a": 1}, "raw": {"b": 2}}') == "dict dict"
    with pytest.raises(ToolArgumentsError, match="'raw': expected an object"):
        tool.call('{"thing": 1, "raw": 2}')


def test_arguments_of_the_wrong_kind_are_refused() -> None:
    tool = Tool.from_function(get_weather)
    with pytest.raises(ToolArgumentsError, match="must be JSON text, not int"):
        tool.call(5)  # type: ignore[arg-type]
    with pytest.raises(ToolArgumentsError, match="'city': expected a string"):
        tool.call(bytearray(b'{"city": 1}'))  # type: ignore[arg-type]


# --- results and errors as the model sees them -------------------------------------------------


class Color(enum.Enum):
    RED = "red"


@attrs.frozen
class Pair:
    left: int
    right: Any


class Shown:
    def __str__(self) -> str:
        return "<shown>"


class Unprintable:
    def __str__(self) -> str:
        raise RuntimeError("no")


class FakePydantic:
    def model_dump(self, mode: str = "python") -> dict[str, Any]:
        return {"mode": mode, "when": datetime.date(2026, 1, 2)}


class BrokenPydantic:
    def model_dump(self, mode: str = "python") -> dict[str, Any]:
        raise ValueError("cannot dump")

    def __str__(self) -> str:
        return "broken"


class Answer(int):
    pass


class Word(str):
    __slots__ = ()


@pytest.mark.parametrize(
    ("value", "output"),
    [
        ("plain text", "plain text"),
        ("", ""),
        (Word("sub"), "sub"),
        (None, "null"),
        (True, "true"),
        (42, "42"),
        (Answer(7), "7"),
        (1.5, "1.5"),
        (math.nan, '"nan"'),
        (-math.inf, '"-inf"'),
        ({"temp": 21, "unit": "c", "ok": None}, '{"temp":21,"unit":"c","ok":null}'),
        (
            {1: "a", None: "b", Color.RED: "c", (1, 2): "d"},
            '{"1":"a","null":"b","red":"c","(1, 2)":"d"}',
        ),
        ([1, (2, 3)], "[1,[2,3]]"),
        ({"b", "a", "c"}, '["a","b","c"]'),
        (frozenset({3, 1}), "[1,3]"),
        ("naïve ✓", "naïve ✓"),
        (["naïve"], '["naïve"]'),
        ([Word("w"), Answer(1), Level.LOW], '["w",1,1]'),
        (Color.RED, '"red"'),
        (Level.HIGH, "2"),
        (Point(1, 2), '{"lat":1,"lon":2,"label":"","tags":[]}'),
        (Pair(1, Point(0, 0)), '{"left":1,"right":{"lat":0,"lon":0,"label":"","tags":[]}}'),
        (datetime.datetime(2026, 1, 2, 3, 4, 5), '"2026-01-02T03:04:05"'),
        (datetime.date(2026, 1, 2), '"2026-01-02"'),
        (uuid.UUID(int=1), '"00000000-0000-0000-0000-000000000001"'),
        (b"bytes \xff", '"bytes \ufffd"'),
        (Shown(), '"<shown>"'),
        (Unprintable(), '"<Unprintable object>"'),
        (FakePydantic(), '{"mode":"json","when":"2026-01-02"}'),
        (BrokenPydantic(), '"broken"'),
        ("lone \ud800 surrogate", "lone \ufffd surrogate"),
    ],
)
def test_result_output(value: Any, output: str) -> None:
    assert result_output(value) == output
    encode_client_event(  # every output can go on the wire
        {
            "type": "conversation.item.create",
            "item": {"type": "function_call_output", "call_id": "c1", "output": output},
        }
    )


def test_result_output_survives_cycles_and_depth() -> None:
    cyclic: list[Any] = [1]
    cyclic.append(cyclic)
    assert result_output(cyclic) == '[1,"[1, [...]]"]'
    deep: Any = "bottom"
    for _ in range(300):
        deep = [deep]
    assert json.loads(result_output(deep))  # cut off deep down, still JSON


def test_result_output_of_our_models() -> None:
    from realtime_sync.events import decode_event

    event = decode_event('{"type": "response.output_text.delta", "delta": "hi", "extra": 1}')
    assert json.loads(result_output(event)) == {
        "type": "response.output_text.delta",
        "delta": "hi",
        "extra": 1,
    }


def test_results_and_errors_mask_secrets() -> None:
    assert SECRET not in result_output(f"key={SECRET}")
    assert SECRET not in result_output({"key": SECRET})
    output = error_output(ValueError(f"bad key {SECRET} for city"))
    assert json.loads(output) == {"error": "ValueError: bad key *** for city"}

    def leaky(city: str) -> None:
        """Leaky."""

    with pytest.raises(ToolArgumentsError) as caught:
        Tool.from_function(leaky).call(json.dumps({"city": 1, SECRET: 2}))
    assert SECRET not in str(caught.value)
    assert SECRET not in error_output(caught.value)


def test_error_output() -> None:
    assert error_output(ValueError("bad city")) == '{"error": "ValueError: bad city"}'
    assert error_output(KeyError("city")) == '{"error": "KeyError: \'city\'"}'
    assert error_output(RuntimeError()) == '{"error": "RuntimeError"}'
    assert error_output(TimeoutError("  ")) == '{"error": "TimeoutError"}'
    assert json.loads(error_output(ValueError("ünïcode"))) == {"error": "ValueError: ünïcode"}
    long = json.loads(error_output(ValueError("x" * 10_000)))["error"]
    assert len(long) == 2000 and long.endswith("…")

    class Weird(Exception):
        def __str__(self) -> str:
            raise RuntimeError("no")

    assert error_output(Weird()) == '{"error": "Weird: <Weird object>"}'
    with pytest.raises(ToolArgumentsError) as caught:
        Tool.from_function(get_weather).call("{}")
    assert json.loads(error_output(caught.value)) == {
        "error": "ToolArgumentsError: invalid arguments for tool 'get_weather': "
        "missing required argument 'city'"
    }


# --- the registry -------------------------------------------------------------------------------


def test_registry_decorator_forms_return_the_function() -> None:
    registry = ToolRegistry()

    @registry.tool
    def first(a: int) -> int:
        """First."""
        return a

    @registry.tool(name="second_tool", description="Second.", timeout=2.5)
    def second() -> None:
        pass

    def third(city: str) -> str:
        """Third."""
        return city

    assert registry.add(third) is third
    assert first(1) == 1 and second() is None
    assert registry.names() == ("first", "second_tool", "third")
    assert registry["second_tool"].description == "Second."
    assert registry["second_tool"].timeout == 2.5
    assert registry.get("first") is not None and registry.get("missing") is None
    assert "third" in registry and "missing" not in registry
    assert registry["first"] in registry
    assert len(registry) == 3
    assert [tool.name for tool in registry] == list(registry.names())
    assert registry.tools() == tuple(registry)
    assert registry.definitions() == [tool.definition() for tool in registry]
    assert registry.definitions("beta") == registry.definitions("ga")
    assert repr(registry) == "ToolRegistry(['first', 'second_tool', 'third'])"
    with pytest.raises(KeyError):
        registry["missing"]
    with pytest.raises(ConfigurationError, match="dialect"):
        registry.definitions("v1")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match=r"tool\(name='named'\)"):
        registry.tool("named")  # type: ignore[call-overload]


def test_registry_takes_tools_and_refuses_options_with_them() -> None:
    registry = ToolRegistry()
    tool = Tool.from_function(get_weather, name="weather")
    assert registry.add(tool) is tool
    assert registry["weather"] is tool
    with pytest.raises(ConfigurationError, match="a Tool already has them"):
        registry.add(tool, timeout=3)  # type: ignore[call-overload]


def test_registry_duplicates_need_replace_and_equal_tools_change_nothing() -> None:
    registry = ToolRegistry()
    changes: list[int] = []
    registry.subscribe(lambda: changes.append(registry.version))
    registry.add(get_weather)
    registry.add(get_weather)  # the same tool again: no change
    assert changes == [1]

    def get_weather_v2(city: str) -> str:
        """Another weather."""
        return "sunny"

    with pytest.raises(ConfigurationError, match=r"'get_weather' is already registered.*replace"):
        registry.add(get_weather_v2, name="get_weather")
    with pytest.raises(ConfigurationError, match="already registered"):
        registry.add(get_weather, timeout=3)  # same function, other settings
    registry.add(get_weather_v2, name="get_weather", replace=True)
    assert registry["get_weather"].function is get_weather_v2
    assert changes == [1, 2]
    registry.add(get_weather, name="other")
    assert registry.names() == ("get_weather", "other")  # a replaced tool keeps its place


def test_registry_remove_and_clear() -> None:
    registry = ToolRegistry()
    changes: list[int] = []
    registry.subscribe(lambda: changes.append(registry.version))

    class Holder:
        def method(self, x: int) -> int:
            """Method."""
            return x

    holder = Holder()
    registry.add(get_weather)
    registry.add(get_weather, name="weather_again")
    registry.add(holder.method)
    registry.add(plan_route)
    registry.remove(get_weather)  # by function: every tool calling it
    assert registry.names() == ("method", "plan_route")
    registry.remove(holder.method)  # bound methods compare equal, not identical
    registry.remove(registry["plan_route"])
    assert len(registry) == 0
    with pytest.raises(KeyError):
        registry.remove("plan_route")
    with pytest.raises(KeyError):
        registry.remove(Tool.from_function(get_weather))
    with pytest.raises(KeyError):
        registry.remove(print)
    registry.clear()  # already empty: no change
    registry.add(get_weather)
    registry.add(plan_route, name="plan")
    registry.remove("plan")
    registry.clear()
    assert registry.tools() == ()
    assert changes == list(range(1, 12))  # removing by function was one change
    assert registry.version == 11


def test_registry_listeners() -> None:
    registry = ToolRegistry()
    calls: list[str] = []

    def failing() -> None:
        calls.append("failing")
        raise RuntimeError("listener failed")

    unsubscribe_failing = registry.subscribe(failing)
    unsubscribe_quiet = registry.subscribe(lambda: calls.append(f"quiet {registry.version}"))
    with pytest.raises(RuntimeError, match="listener failed"):
        registry.add(get_weather)
    assert calls == ["failing", "quiet 1"]  # the others still ran
    assert "get_weather" in registry  # and the change stands
    unsubscribe_failing()
    unsubscribe_failing()  # twice is harmless
    registry.remove("get_weather")
    assert calls == ["failing", "quiet 1", "quiet 2"]
    unsubscribe_quiet()
    registry.add(get_weather)
    assert calls == ["failing", "quiet 1", "quiet 2"]


def test_registry_listener_may_read_the_registry() -> None:
    registry = ToolRegistry()
    synced: list[tuple[int, list[str]]] = []

    def sync() -> None:
        version, tools = registry.snapshot()
        synced.append((version, [tool.name for tool in tools]))

    registry.subscribe(sync)
    registry.add(get_weather)
    registry.add(plan_route)
    assert synced == [(1, ["get_weather"]), (2, ["get_weather", "plan_route"])]


def test_registry_is_thread_safe() -> None:
    registry = ToolRegistry()
    seen: list[int] = []
    lock = threading.Lock()

    def listener() -> None:
        with lock:
            seen.append(registry.version)

    registry.subscribe(listener)
    tools = [Tool.from_function(get_weather, name=f"tool_{index}") for index in range(200)]
    barrier = threading.Barrier(4)

    def work(part: list[Tool]) -> None:
        barrier.wait()
        for tool in part:
            registry.add(tool)
            registry.definitions()
        for tool in part[::2]:
            registry.remove(tool.name)

    threads = [threading.Thread(target=work, args=(tools[i::4],)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not any(thread.is_alive() for thread in threads)
    assert len(registry) == 100
    assert registry.version == 300
    assert len(seen) == 300
    assert max(seen) == 300
