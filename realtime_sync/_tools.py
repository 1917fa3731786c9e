"""Tools: Python functions the model may call, described to it in JSON Schema.

This module is pure: no sockets, no threads of its own. It turns a function into the
``{"type": "function", ...}`` entry of a session's ``tools`` (the same in both dialects),
parses and checks the arguments the model sends in a function call, converts them to the
annotated types, calls the function and turns its result, or its exception, into the
string a ``function_call_output`` item carries. Running calls (threads, timeouts) is the
tool runner's business.

:class:`Tool` and :class:`ToolRegistry` are here; the work is done by ``_tool_schema``
(signature to JSON Schema, with ``_tool_docstrings`` for parameter descriptions),
``_tool_arguments`` (the model's arguments to the annotated types) and ``_tool_output``
(results and exceptions to output text).
"""

from __future__ import annotations

import collections.abc
import inspect
import json
import re
import threading
from collections.abc import Callable, Iterator, Mapping
from typing import Any, TypeVar, overload

import attrs

from ._endpoints import Dialect
from ._errors import ConfigurationError, RealtimeError
from ._models import ReadOnlyDict, plain_json
from ._secrets import redact
from ._timeouts import check_seconds
from ._tool_arguments import BadValue, convert, listed, show_value
from ._tool_docstrings import parse_docstring
from ._tool_output import error_output, result_output
from ._tool_schema import (
    EMPTY,
    SchemaError,
    callable_hints,
    default_name,
    docstring_of,
    function_schema,
    hint_target,
    qualname,
    signature_of,
)

__all__ = [
    "Tool",
    "ToolArgumentsError",
    "ToolRegistry",
    "error_output",
    "result_output",
]

F = TypeVar("F", bound=Callable[..., Any])

_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")


class ToolArgumentsError(RealtimeError, ValueError):
    """The arguments the model sent for a tool call cannot be used: not JSON, not an object,
    a required argument missing, an unknown one, or a value of the wrong type. The function
    was not called; :func:`error_output` gives what to send back so the model can retry."""

    def __init__(self, message: str, *, tool: str | None = None) -> None:
        super().__init__(message)
        self.tool = tool
        """The name of the tool that was called."""


# --- Tool ---------------------------------------------------------------------------------------


def _check_name(_instance: Any, _attribute: Any, name: Any) -> None:
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise ConfigurationError(
            f"tool name {name!r} is not allowed: use 1 to 64 letters, digits, '_' or '-'"
            " (pass name=...)"
        )


def _check_description(_instance: Any, _attribute: Any, description: Any) -> None:
    if not isinstance(description, str):
        raise ConfigurationError(f"a tool description is a str, not {type(description).__name__}")


def _check_function(_instance: Any, _attribute: Any, function: Any) -> None:
    if not callable(function):
        raise ConfigurationError(
            f"a tool's function must be callable, not a {type(function).__name__}"
        )
    target = hint_target(function)
    if inspect.iscoroutinefunction(target) or inspect.isasyncgenfunction(target):
        raise ConfigurationError(
            f"{qualname(target)} is async; realtime_sync calls tools synchronously: "
            "pass a plain function"
        )


def _freeze_parameters(parameters: Mapping[str, Any]) -> Mapping[str, Any]:
    if not isinstance(parameters, Mapping):
        raise ConfigurationError(
            f"tool parameters must be a JSON schema object, not {type(parameters).__name__}"
        )
    plain = plain_json(parameters)
    try:
        json.dumps(plain, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ConfigurationError(f"tool parameters are not JSON: {exc}") from None
    if plain.get("type", "object") != "object":
        raise ConfigurationError(
            f"tool parameters must describe an object ('type': 'object'), not {plain['type']!r}"
        )
    return ReadOnlyDict(plain)


def _check_timeout(timeout: float | None) -> float | None:
    return None if timeout is None else check_seconds(timeout, "a tool timeout")


def _check_dialect(dialect: str) -> None:
    if dialect not in ("ga", "beta"):
        raise ConfigurationError(f"unknown dialect {dialect!r}: 'ga' or 'beta'")


@attrs.frozen
class _Plan:
    """How to call a tool's function with the model's arguments, from its signature."""

    parameters: tuple[inspect.Parameter, ...]  # the named ones, in order
    hints: Mapping[str, Any]
    var_keyword: bool


def _plan(function: Callable[..., Any]) -> _Plan:
    signature = signature_of(function)
    if signature is None:
        return _Plan((), {}, var_keyword=True)
    try:
        hints: Mapping[str, Any] = callable_hints(function)
    except SchemaError:  # the schema was given: convert nothing we cannot name
        hints = {}
    named = tuple(
        parameter
        for parameter in signature.parameters.values()
        if parameter.kind not in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD)
    )
    var_keyword = any(
        parameter.kind is parameter.VAR_KEYWORD for parameter in signature.parameters.values()
    )
    annotations = {
        parameter.name: hints.get(parameter.name, parameter.annotation)
        for parameter in named
        if not isinstance(hints.get(parameter.name, parameter.annotation), str)
    }
    return _Plan(named, annotations, var_keyword)


def _function_repr(function: Callable[..., Any]) -> str:
    return f"<{qualname(hint_target(function))}>"


@attrs.frozen
class Tool:
    """A function the model may call, with the name, description and JSON schema it is
    shown under. Immutable; :meth:`from_function` derives everything from the function.

    ``timeout`` (seconds, None for none) is how long the tool runner lets a call take.
    Equal tools (same name, description, schema, function and timeout) compare equal.
    """

    name: str = attrs.field(validator=_check_name)
    """The name the model calls it by: 1 to 64 of ``A-Z a-z 0-9 _ -``."""
    description: str = attrs.field(validator=_check_description)
    """What the tool does and when to use it, for the model."""
    parameters: Mapping[str, Any] = attrs.field(converter=_freeze_parameters, hash=False)
    """JSON schema (``"type": "object"``) of the arguments; a read-only copy."""
    function: Callable[..., Any] = attrs.field(validator=_check_function, repr=_function_repr)
    """What is called with the arguments, as keyword arguments."""
    timeout: float | None = attrs.field(default=None, converter=_check_timeout)
    """Seconds a call may take, for the tool runner; None: no limit of its own."""
    _plan: _Plan = attrs.field(init=False, repr=False, eq=False, hash=False)

    def __attrs_post_init__(self) -> None:
        plan = _plan(self.function)
        properties = self.parameters.get("properties")
        if isinstance(properties, Mapping):
            function = qualname(hint_target(self.function))
            accepted = {parameter.name for parameter in plan.parameters}
            foreign = [key for key in properties if key not in accepted]
            if foreign and not plan.var_keyword:
                raise ConfigurationError(
                    f"tool {self.name!r}: parameters names {listed(foreign)}, which "
                    f"{function} does not take"
                )
            needed = [p.name for p in plan.parameters if p.default is EMPTY]
            undescribed = [name for name in needed if name not in properties]
            if undescribed:
                raise ConfigurationError(
                    f"tool {self.name!r}: parameters does not describe {listed(undescribed)}, "
                    f"which {function} requires"
                )
        object.__setattr__(self, "_plan", plan)

    @classmethod
    def from_function(
        cls,
        function: Callable[..., Any],
        *,
        name: str | None = None,
        description: str | None = None,
        parameters: Mapping[str, Any] | None = None,
        timeout: float | None = None,
    ) -> Tool:
        """A tool for ``function``: its name, the first paragraph of its docstring as the
        description, and a schema made from its signature, annotations and the parameter
        descriptions of its docstring (Google, reST or NumPy style), unless given.

        Raises :class:`~realtime_sync.ConfigurationError` for a name the API refuses, an
        annotation JSON Schema cannot express, ``*args``/``**kwargs`` without
        ``parameters``, or an async function.
        """
        _check_function(None, None, function)
        if name is None:
            name = default_name(function)
        _check_name(None, None, name)
        assert isinstance(name, str)
        summary, docs = parse_docstring(docstring_of(function))
        if parameters is None:
            parameters = function_schema(function, name, docs)
        return cls(
            name=name,
            description=summary if description is None else description,
            parameters=parameters,
            function=function,
            timeout=timeout,
        )

    def definition(self, dialect: Dialect = "ga") -> dict[str, Any]:
        """The tool's entry in a ``session.update``'s ``session.tools`` (a fresh dict).

        Both dialects take ``{"type": "function", "name", "description", "parameters"}``.
        """
        _check_dialect(dialect)
        return {
            "type": "function",
            "name": self.name,
            "description": self.description,
            "parameters": plain_json(self.parameters),
        }

    def parse_arguments(self, arguments: str | bytes | Mapping[str, Any]) -> dict[str, Any]:
        """The keyword arguments for the function from the model's ``arguments`` (JSON text,
        or already parsed), converted to the annotated types.

        Empty text counts as ``{}``. Raises :class:`ToolArgumentsError` naming every problem:
        not JSON, not an object, unknown or missing arguments, values of the wrong type.
        """
        raw = self._load(arguments)
        plan = self._plan
        accepted = {parameter.name for parameter in plan.parameters}
        properties = self.parameters.get("properties")
        closed = self.parameters.get("additionalProperties") is False
        described = properties if closed and isinstance(properties, Mapping) else None
        problems: list[str] = []
        unknown = [
            key
            for key in raw
            if (key not in accepted and not plan.var_keyword)
            or (described is not None and key not in described)
        ]
        if unknown:
            problems.append(f"unknown argument {listed(unknown)} (accepted: {_accepted(self)})")
        required = [p.name for p in plan.parameters if p.default is EMPTY]
        schema_required = self.parameters.get("required")
        if isinstance(schema_required, collections.abc.Sequence) and not isinstance(
            schema_required, str
        ):
            required += [key for key in schema_required if isinstance(key, str)]
        missing = [key for key in dict.fromkeys(required) if key not in raw]
        if missing:
            problems.append(f"missing required argument {listed(missing)}")
        converted: dict[str, Any] = {}
        for key, value in raw.items():
            if key in unknown:
                continue
            try:
                converted[key] = convert(value, plan.hints.get(key, Any), key)
            except BadValue as exc:
                problems.append(f"{exc.path!r}: {exc.message}")
        if problems:
            raise self._refuse("; ".join(problems))
        return converted

    def call(self, arguments: str | bytes | Mapping[str, Any]) -> str:
        """Call the function with the model's ``arguments`` and return the output to send.

        Raises :class:`ToolArgumentsError` (the function was not called) or whatever the
        function raised; :func:`error_output` turns either into the output the model sees.
        The result goes through :func:`result_output`. ``timeout`` is not applied here.
        """
        keywords = self.parse_arguments(arguments)
        positional = [
            keywords.pop(parameter.name, parameter.default)
            for parameter in self._plan.parameters
            if parameter.kind is parameter.POSITIONAL_ONLY
        ]
        return result_output(self.function(*positional, **keywords))

    def _load(self, arguments: str | bytes | Mapping[str, Any]) -> dict[str, Any]:
        if isinstance(arguments, Mapping):
            raw: Any = dict(arguments)
        else:
            try:
                text = (
                    bytes(arguments).decode("utf-8")
                    if isinstance(arguments, (bytes, bytearray))
                    else arguments
                )
            except UnicodeDecodeError as exc:
                raise self._refuse(f"arguments are not UTF-8 ({exc})") from None
            if not isinstance(text, str):
                raise self._refuse(f"arguments must be JSON text, not {type(text).__name__}")
            if not text.strip():
                return {}
            try:
                raw = json.loads(text, parse_constant=_refuse_constant)
            except (ValueError, RecursionError) as exc:
                raise self._refuse(f"arguments are not valid JSON ({exc})") from None
        if not isinstance(raw, dict):
            raise self._refuse(f"arguments must be a JSON object, got {show_value(raw)}")
        return raw

    def _refuse(self, problem: str) -> ToolArgumentsError:
        return ToolArgumentsError(
            redact(f"invalid arguments for tool {self.name!r}: {problem}"), tool=self.name
        )


def _accepted(tool: Tool) -> str:
    properties = tool.parameters.get("properties")
    names = (
        list(properties)
        if isinstance(properties, Mapping)
        else [parameter.name for parameter in tool._plan.parameters]
    )
    return listed(names)


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


# --- registry -----------------------------------------------------------------------------------


class ToolRegistry:
    """The tools of a client, by name, in registration order. Thread-safe.

    Every change (add, replace, remove, clear) increments :attr:`version` and then calls the
    listeners given to :meth:`subscribe`, in the thread that made the change, outside the
    registry's lock, so a listener may read the registry (and send a ``session.update``).
    Registering an equal tool again changes nothing.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._tools: dict[str, Tool] = {}
        self._version = 0
        self._listeners: list[Callable[[], object]] = []

    @overload
    def add(self, function: Tool, *, replace: bool = False) -> Tool: ...

    @overload
    def add(
        self,
        function: F,
        *,
        name: str | None = None,
        description: str | None = None,
        parameters: Mapping[str, Any] | None = None,
        timeout: float | None = None,
        replace: bool = False,
    ) -> F: ...

    def add(
        self,
        function: Any,
        *,
        name: str | None = None,
        description: str | None = None,
        parameters: Mapping[str, Any] | None = None,
        timeout: float | None = None,
        replace: bool = False,
    ) -> Any:
        """Register ``function`` (see :meth:`Tool.from_function`) or a :class:`Tool`, and
        return it unchanged.

        A different tool under a name already registered is refused with
        :class:`~realtime_sync.ConfigurationError` unless ``replace=True``.
        """
        if isinstance(function, Tool):
            if (name, description, parameters, timeout) != (None, None, None, None):
                raise ConfigurationError(
                    "name, description, parameters and timeout are for functions; "
                    "a Tool already has them"
                )
            tool = function
        else:
            tool = Tool.from_function(
                function,
                name=name,
                description=description,
                parameters=parameters,
                timeout=timeout,
            )
        with self._lock:
            current = self._tools.get(tool.name)
            if current == tool:
                return function
            if current is not None and not replace:
                raise ConfigurationError(
                    f"a tool named {tool.name!r} is already registered "
                    f"({_function_repr(current.function)}); pass replace=True to replace it "
                    "or name= to register this one under another name"
                )
            self._tools[tool.name] = tool
            self._version += 1
        self._notify()
        return function

    @overload
    def tool(self, function: F, /) -> F: ...

    @overload
    def tool(
        self,
        function: None = None,
        /,
        *,
        name: str | None = None,
        description: str | None = None,
        parameters: Mapping[str, Any] | None = None,
        timeout: float | None = None,
        replace: bool = False,
    ) -> Callable[[F], F]: ...

    def tool(
        self,
        function: Any = None,
        /,
        *,
        name: str | None = None,
        description: str | None = None,
        parameters: Mapping[str, Any] | None = None,
        timeout: float | None = None,
        replace: bool = False,
    ) -> Any:
        """Register a function as a tool: ``@registry.tool`` or
        ``@registry.tool(name=..., timeout=...)``. The function is returned unchanged."""
        options: dict[str, Any] = {
            "name": name,
            "description": description,
            "parameters": parameters,
            "timeout": timeout,
            "replace": replace,
        }
        if function is not None:
            if isinstance(function, str):
                raise ConfigurationError(
                    f"use @tool(name={function!r}) to name a tool, not @tool({function!r})"
                )
            return self.add(function, **options)

        def register(function: F) -> F:
            return self.add(function, **options)

        return register

    def remove(self, tool: str | Tool | Callable[..., Any]) -> None:
        """Unregister a tool given by name, as a :class:`Tool`, or by its function (every
        tool calling it). Raises ``KeyError`` when none matches."""
        with self._lock:
            if isinstance(tool, str):
                names = [tool] if tool in self._tools else []
            elif isinstance(tool, Tool):
                names = [tool.name] if self._tools.get(tool.name) == tool else []
            else:
                names = [name for name, item in self._tools.items() if item.function == tool]
            if not names:
                raise KeyError(tool)
            for name in names:
                del self._tools[name]
            self._version += 1
        self._notify()

    def clear(self) -> None:
        """Unregister every tool."""
        with self._lock:
            if not self._tools:
                return
            self._tools.clear()
            self._version += 1
        self._notify()

    def get(self, name: str) -> Tool | None:
        """The tool registered as ``name``, or None."""
        with self._lock:
            return self._tools.get(name)

    def __getitem__(self, name: str) -> Tool:
        with self._lock:
            return self._tools[name]

    def __contains__(self, name: object) -> bool:
        with self._lock:
            if isinstance(name, Tool):
                return self._tools.get(name.name) == name
            return name in self._tools

    def __len__(self) -> int:
        with self._lock:
            return len(self._tools)

    def __iter__(self) -> Iterator[Tool]:
        return iter(self.tools())

    def tools(self) -> tuple[Tool, ...]:
        """The registered tools, in registration order."""
        with self._lock:
            return tuple(self._tools.values())

    def names(self) -> tuple[str, ...]:
        """The registered tool names, in registration order."""
        with self._lock:
            return tuple(self._tools)

    @property
    def version(self) -> int:
        """How many changes the registry has had; compare to tell whether tools changed."""
        with self._lock:
            return self._version

    def snapshot(self) -> tuple[int, tuple[Tool, ...]]:
        """:attr:`version` and :meth:`tools`, read together."""
        with self._lock:
            return self._version, tuple(self._tools.values())

    def definitions(self, dialect: Dialect = "ga") -> list[dict[str, Any]]:
        """The ``session.tools`` list for a ``session.update`` (fresh dicts)."""
        _check_dialect(dialect)
        return [tool.definition(dialect) for tool in self.tools()]

    def subscribe(self, listener: Callable[[], object]) -> Callable[[], None]:
        """Call ``listener()`` after every change; returns a function that unsubscribes it.

        Listeners run in the changing thread, in subscription order; if one raises, the rest
        still run and the first exception then propagates to the caller of the change (which
        has been made).
        """
        with self._lock:
            self._listeners.append(listener)

        def unsubscribe() -> None:
            with self._lock:
                if listener in self._listeners:
                    self._listeners.remove(listener)

        return unsubscribe

    def _notify(self) -> None:
        with self._lock:
            listeners = tuple(self._listeners)
        failure: Exception | None = None
        for listener in listeners:
            try:
                listener()
            except Exception as exc:
                if failure is None:
                    failure = exc
        if failure is not None:
            raise failure

    def __repr__(self) -> str:
        return f"ToolRegistry({list(self.names())!r})"
