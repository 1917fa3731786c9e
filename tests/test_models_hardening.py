"""Decoded events are safe to hold: decoding never raises, events are immutable all the way
down, hash like they compare, keep secrets out of their reprs, and all give JSON-safe dicts.
"""

from __future__ import annotations

import collections.abc
import copy
import functools
import json
import pickle
import types
import typing
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import attrs
import pytest
from conftest import CONFORMANCE

import realtime_sync._client_events
import realtime_sync._item_objects
import realtime_sync._objects
import realtime_sync._server_events
import realtime_sync._session_objects
from realtime_sync._models import ReadOnlyDict, ReadOnlyList, plain_json, wire_fields
from realtime_sync._secrets import register_secret
from realtime_sync.events import (
    ClosedEvent,
    ConversationItem,
    ConversationItemEvent,
    ErrorDetail,
    ErrorEvent,
    GenericEvent,
    HandlerErrorEvent,
    InvalidFrameEvent,
    Model,
    ResponseEvent,
    ServerEvent,
    Session,
    SessionEvent,
    SessionUpdateEvent,
    TextDeltaEvent,
    Tool,
    decode_event,
    decode_payload,
)

try:
    import orjson
except ImportError:  # optional: without it, its cases are skipped
    orjson = None

# Not shaped like any real key; registered once, for the whole test session.
SECRET = "rs-hardening-secret-5e1d2c3b4a"
register_secret(SECRET)

LOADERS = [
    pytest.param(json.loads, id="stdlib"),
    pytest.param(
        getattr(orjson, "loads", None),
        id="orjson",
        marks=pytest.mark.skipif(orjson is None, reason="orjson is not installed"),
    ),
]

DEEP = 1000  # stdlib json hits the recursion limit; orjson still parses it (its limit is 1024)

EXAMPLES = json.loads((CONFORMANCE / "openapi_realtime_examples.json").read_text("utf-8"))
SERVER_EXAMPLES = [
    pytest.param(payload, id=f"{dialect}:{name}")
    for dialect, group in (("ga", EXAMPLES["server"]), ("beta", EXAMPLES["beta"]["server"]))
    for name, payload in group.items()
]

SESSION_EVENT: dict[str, Any] = {
    "type": "session.updated",
    "event_id": "event_1",
    "session": {
        "id": "sess_1",
        "modalities": ["text", "audio"],
        "tools": [
            {
                "type": "function",
                "name": "lookup",
                "parameters": {"type": "object", "properties": {"q": {"type": "string"}}},
            },
            {"type": "mcp", "server_label": "docs", "allowed_tools": ["search"]},
        ],
        "tracing": {"workflow_name": "w", "metadata": {"tags": ["a", "b"]}},
    },
    "extra": {"nested": [1, {"deep": [2, 3]}]},
}


class _Unprintable(Exception):
    def __str__(self) -> str:
        raise RuntimeError("no")


def nested_list(depth: int) -> list[Any]:
    value: list[Any] = []
    for _ in range(depth - 1):
        value = [value]
    return value


def all_models() -> Iterator[type[Model]]:
    pending = [Model]
    seen: set[type[Model]] = set()
    while pending:
        cls = pending.pop()
        if cls not in seen:
            seen.add(cls)
            yield cls
            pending.extend(cls.__subclasses__())


OBJECT_MODULES = (
    realtime_sync._objects,
    realtime_sync._session_objects,
    realtime_sync._item_objects,
)


def module_models() -> list[type[Model]]:
    modules = (*OBJECT_MODULES, realtime_sync._server_events, realtime_sync._client_events)
    return [
        cls
        for module in modules
        for cls in vars(module).values()
        if isinstance(cls, type) and issubclass(cls, Model) and cls.__module__ == module.__name__
    ]


# --- 1. decoding never raises --------------------------------------------------------------


@pytest.mark.parametrize("loader", LOADERS)
@pytest.mark.parametrize(
    "frame",
    [
        pytest.param("[" * DEEP + "]" * DEEP, id="array-1000-deep"),
        pytest.param("[" * 1100 + "]" * 1100, id="array-1100-deep"),
        pytest.param("[" * DEEP, id="unclosed-1000-deep"),
        pytest.param(
            '{"type": "error", "error": {"message": ' + "[" * DEEP + "]" * DEEP + "}}",
            id="deep-in-a-known-field",
        ),
        pytest.param(
            '{"type": "session.updated", "session": {"tools": ' + "[" * DEEP + "]" * DEEP + "}}",
            id="deep-where-models-belong",
        ),
        pytest.param(
            '{"type": "x.unknown", "data": ' + '{"a":' * DEEP + "1" + "}" * DEEP + "}",
            id="deep-objects-in-an-untyped-event",
        ),
    ],
)
def test_deeply_nested_frames_never_raise(
    monkeypatch: pytest.MonkeyPatch, loader: Callable[[Any], Any], frame: str
) -> None:
    monkeypatch.setattr(realtime_sync._server_events, "loads", loader)
    for data in (frame, frame.encode()):
        event = decode_event(data)
        if isinstance(event, InvalidFrameEvent):
            assert event.reason.startswith(("not valid JSON", "not a JSON object"))
            assert event.data == data
        else:  # the decoder managed it: a typed or generic event that still works
            assert isinstance(event, ServerEvent)
            assert isinstance(event, GenericEvent) or type(event) is ErrorEvent
            assert repr(event) and hash(event) == hash(event)
            copied = event.to_dict()  # (too deep to compare: == would hit the recursion limit)
            assert list(copied) == list(loader(frame)) and copied["type"] == event.type


def test_stdlib_recursion_error_gives_invalid_frame_event(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(realtime_sync._server_events, "loads", json.loads)
    event = decode_event("[" * DEEP + "]" * DEEP)
    assert isinstance(event, InvalidFrameEvent)
    assert event.reason == "not valid JSON: nested too deeply to decode"


@pytest.mark.parametrize(
    ("error", "described"),
    [
        (RuntimeError("boom"), "ErrorEvent: RuntimeError: boom"),
        (RecursionError(), "ErrorEvent: RecursionError"),
        (KeyError("k"), "ErrorEvent: KeyError: 'k'"),
        (_Unprintable(), "ErrorEvent: _Unprintable"),
    ],
)
def test_any_failure_of_a_typed_class_gives_a_generic_event(
    monkeypatch: pytest.MonkeyPatch, error: Exception, described: str
) -> None:
    def fail(cls: type[Model], data: Mapping[str, Any]) -> Model:
        raise error

    monkeypatch.setattr(ErrorDetail, "from_dict", classmethod(fail))
    frame = '{"type": "error", "error": {"message": "m"}}'
    event = decode_event(frame)
    assert type(event) is GenericEvent
    assert event.decode_error == described
    assert event.error == {"message": "m"}


def test_a_failure_outside_the_typed_classes_gives_invalid_frame_event(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def fail(payload: Mapping[str, Any]) -> ServerEvent:
        raise MemoryError

    monkeypatch.setattr(realtime_sync._server_events, "decode_payload", fail)
    event = decode_event('{"type": "response.output_text.delta", "delta": "x"}')
    assert isinstance(event, InvalidFrameEvent)
    assert event.reason == "could not be decoded: MemoryError"


@pytest.mark.parametrize("loader", LOADERS)
def test_a_frame_of_the_wrong_type_gives_invalid_frame_event(
    monkeypatch: pytest.MonkeyPatch, loader: Callable[[Any], Any]
) -> None:
    monkeypatch.setattr(realtime_sync._server_events, "loads", loader)
    event = decode_event(42)  # type: ignore[arg-type]
    assert isinstance(event, InvalidFrameEvent)
    assert event.reason.startswith(("could not be parsed", "not valid JSON"))


def test_events_holding_absurdly_deep_data_still_work() -> None:
    deep = nested_list(5000)  # deeper than any recursion limit; built, not parsed
    event = decode_payload({"type": "error", "error": {"message": deep}})
    assert type(event) is ErrorEvent
    assert repr(event).endswith("error=ErrorDetail(<nested too deeply to show>))")
    assert repr(event.error) == "ErrorDetail(<nested too deeply to show>)"
    assert hash(event) == hash(decode_payload({"type": "error", "error": {"message": deep}}))
    copied = event.to_dict()
    inner = copied["error"]["message"]
    for _ in range(4999):
        assert type(inner) is list and inner is not deep
        inner = inner[0]
    assert inner == []


# --- 2. hashing agrees with equality --------------------------------------------------------


def test_every_model_shares_the_hash_and_repr_of_model() -> None:
    for cls in all_models():
        assert cls.__hash__ is Model.__hash__, cls
        assert cls.__repr__ is Model.__repr__, cls


@pytest.mark.parametrize("payload", SERVER_EXAMPLES)
def test_equal_events_hash_equal(payload: dict[str, Any]) -> None:
    first = decode_payload(payload)
    second = decode_payload(json.loads(json.dumps(payload)))
    assert first == second
    assert hash(first) == hash(second)
    assert len({first, second}) == 1

    def check_nested(one: Any, other: Any) -> None:
        for name in wire_fields(type(one)):
            mine, theirs = getattr(one, name), getattr(other, name)
            if isinstance(mine, Model):
                assert mine == theirs and hash(mine) == hash(theirs)
                check_nested(mine, theirs)
            elif isinstance(mine, tuple):
                for item, their_item in zip(mine, theirs, strict=True):
                    if isinstance(item, Model):
                        assert hash(item) == hash(their_item)
                        check_nested(item, their_item)

    check_nested(first, second)


def test_hash_ignores_key_order_and_follows_content() -> None:
    reordered = dict(reversed(list(SESSION_EVENT.items())))
    reordered["session"] = dict(reversed(list(SESSION_EVENT["session"].items())))
    first, second = decode_payload(SESSION_EVENT), decode_payload(reordered)
    assert first == second and hash(first) == hash(second)
    changed = copy.deepcopy(SESSION_EVENT)
    changed["session"]["tools"][0]["parameters"]["properties"]["q"]["type"] = "number"
    assert decode_payload(changed) != first
    assert hash(decode_payload(changed)) != hash(first)
    assert hash(first) == hash(first)  # cached, and the same


def test_client_events_and_user_models_hash() -> None:
    session = {"tools": [{"type": "function", "parameters": {"type": "object"}}]}
    first = SessionUpdateEvent.build(session=session)
    assert hash(first) == hash(SessionUpdateEvent.build(session=copy.deepcopy(session)))
    assert first in {SessionUpdateEvent.build(session=session)}

    @attrs.frozen(kw_only=True)
    class Custom(Model):
        detail: ErrorDetail | None
        labels: Sequence[str] | None

    custom = Custom.from_dict({"detail": {"message": SECRET}, "labels": ["a"], "x": {"y": 1}})
    assert hash(custom) == hash(Custom.from_dict(custom.to_dict()))
    assert SECRET not in repr(custom)
    assert custom.labels == ["a"]


def test_pickled_and_copied_events_stay_equal_and_hash_equal() -> None:
    event = decode_payload(SESSION_EVENT)
    hash(event)  # filled, and not part of the state
    for other in (pickle.loads(pickle.dumps(event)), copy.copy(event), copy.deepcopy(event)):
        assert other == event and hash(other) == hash(event)
    for view in (event.raw, event.session.modalities):
        for other_view in (pickle.loads(pickle.dumps(view)), copy.deepcopy(view)):
            assert type(other_view) is type(view) and other_view == view


def test_local_events_hash_like_they_compare() -> None:
    error = ValueError("x")
    closed = ClosedEvent(code=1000, reason="bye", requested=False, error=error)
    assert hash(closed) == hash(ClosedEvent(code=1000, reason="bye", requested=False, error=error))
    frame = InvalidFrameEvent(data=b"\xff", reason="r")
    assert frame == InvalidFrameEvent(data=b"\xff", reason="r")
    assert hash(frame) == hash(InvalidFrameEvent(data=b"\xff", reason="r"))
    # An event nobody foresaw (unhashable) does not make the report unhashable.
    report = HandlerErrorEvent(event={"type": "x"}, handler=print, exception=error)
    assert hash(report) == hash(
        HandlerErrorEvent(event={"type": "x"}, handler=print, exception=error)
    )
    typed = HandlerErrorEvent(event=decode_payload(SESSION_EVENT), handler=print, exception=error)
    assert len({typed, HandlerErrorEvent(decode_payload(SESSION_EVENT), print, error)}) == 1


# --- 3. read-only all the way down ----------------------------------------------------------


def test_raw_and_everything_reachable_from_it_is_read_only() -> None:
    payload = copy.deepcopy(SESSION_EVENT)
    event = decode_payload(payload)
    raw = event.raw
    with pytest.raises(TypeError):
        raw["x"] = 1  # type: ignore[index]
    with pytest.raises(TypeError):
        del raw["type"]  # type: ignore[attr-defined]
    with pytest.raises(AttributeError):
        raw.update({"x": 1})  # type: ignore[attr-defined]
    with pytest.raises(TypeError):
        raw["session"]["tools"][0] = {}
    with pytest.raises(AttributeError):
        raw["session"]["tools"].append({})
    with pytest.raises(TypeError):
        raw["session"]["tools"][0]["parameters"]["x"] = 1
    with pytest.raises(AttributeError):
        raw._data = {}  # type: ignore[misc]
    # Undeclared fields, as attributes, are views too.
    with pytest.raises(TypeError):
        event.extra["nested"] = []
    with pytest.raises(AttributeError):
        event.extra["nested"][1]["deep"].append(4)
    # So are declared free-form objects and arrays.
    tool = event.session.tools[0]
    assert isinstance(tool, Tool)
    with pytest.raises(TypeError):
        tool.parameters["x"] = 1  # type: ignore[index]
    with pytest.raises(TypeError):
        tool.parameters["properties"]["q"]["type"] = "number"
    with pytest.raises(AttributeError):
        event.session.modalities.append("x")  # type: ignore[attr-defined]
    with pytest.raises(AttributeError):
        event.session.tools[1].allowed_tools.append("x")  # type: ignore[union-attr]
    with pytest.raises(TypeError):
        event.session.tracing.metadata["tags"][0] = "z"  # type: ignore[union-attr]
    assert payload == SESSION_EVENT  # nothing got through
    assert event.raw == SESSION_EVENT


def test_read_only_views_read_like_the_json() -> None:
    event = decode_payload(SESSION_EVENT)
    raw = event.raw
    assert raw == SESSION_EVENT and SESSION_EVENT == raw  # noqa: SIM300  # both ways
    assert raw == event.raw and raw != {"type": "other"}
    assert raw == types.MappingProxyType(SESSION_EVENT)
    assert raw != ["not", "a", "mapping"]
    assert len(raw) == len(SESSION_EVENT) and list(raw) == list(SESSION_EVENT)
    assert "session" in raw and "missing" not in raw
    assert raw.get("missing") is None and raw.get("missing", 5) == 5
    assert raw.get("type") == "session.updated"
    assert isinstance(raw.get("session"), ReadOnlyDict)
    assert dict(raw.items())["event_id"] == "event_1"
    nested = raw["extra"]["nested"]
    assert isinstance(nested, ReadOnlyList)
    assert nested == [1, {"deep": [2, 3]}] and nested == (1, {"deep": [2, 3]})
    assert [1, {"deep": [2, 3]}] == nested  # noqa: SIM300  # the list's side too
    assert nested == ReadOnlyList(SESSION_EVENT["extra"]["nested"])
    assert nested != "not a list"
    assert nested[0] == 1 and nested[-1]["deep"] == [2, 3]
    assert isinstance(nested[1], ReadOnlyDict)
    assert isinstance(nested[1:], ReadOnlyList) and nested[1:] == [{"deep": [2, 3]}]
    assert [type(item) for item in nested] == [int, ReadOnlyDict]
    assert 1 in nested and {"deep": [2, 3]} in nested and 7 not in nested
    assert nested.index(1) == 0 and nested.count(1) == 1
    assert len(nested) == 2 and next(reversed(nested)) == {"deep": [2, 3]}
    assert ReadOnlyList(nested) == nested and ReadOnlyDict(raw) == raw
    for view in (raw, nested):
        with pytest.raises(TypeError):
            hash(view)
    assert repr(raw) == repr(SESSION_EVENT)
    assert repr(nested) == repr(SESSION_EVENT["extra"]["nested"])


class _Items(list[Any]):
    pass


def test_values_a_caller_put_in_raw_are_handled() -> None:
    # from_dict() takes any mapping: values JSON never gives still freeze and hash.
    detail = ErrorDetail.from_dict({"message": "m"})
    deep: dict[str, Any] = {"leaf": 1}
    for _ in range(30):
        deep = {"d": deep}
    data = {
        "proxy": types.MappingProxyType({"k": [1]}),
        "items": _Items([1, {"x": 2}]),
        "tags": {"a", "b"},
        "detail": detail,
        "deep": deep,
    }
    event = GenericEvent.from_dict({"type": "x", **data})
    assert isinstance(event.proxy, ReadOnlyDict) and event.proxy == {"k": [1]}
    assert isinstance(event.proxy["k"], ReadOnlyList)
    assert isinstance(event.items, ReadOnlyList) and event.items[1] == {"x": 2}
    assert event.tags == {"a", "b"} and event.detail is detail
    with pytest.raises(AttributeError):
        event.items._data = []  # type: ignore[misc]
    same = GenericEvent.from_dict({"type": "x", **data})
    assert hash(event) == hash(same)
    other_deep = copy.deepcopy(deep)
    other_deep["d"]["d"]["d"] = {"leaf": 2}
    assert hash(GenericEvent.from_dict({"type": "x", **data, "deep": other_deep})) != hash(event)


def test_to_dict_is_a_mutable_deep_copy() -> None:
    event = decode_payload(SESSION_EVENT)
    copied = event.to_dict()
    assert copied == SESSION_EVENT
    assert type(copied["session"]["tools"]) is list
    assert type(copied["session"]["tools"][0]["parameters"]) is dict
    copied["session"]["tools"][0]["parameters"]["x"] = 1
    copied["extra"]["nested"].append(5)
    assert event.to_dict() == SESSION_EVENT
    assert list(copied) == list(SESSION_EVENT)  # key order kept


def test_plain_json_copies_views_tuples_and_mappings() -> None:
    event = decode_payload(SESSION_EVENT)
    marker = object()
    data = {"raw": event.raw, "t": (1, [2]), "m": types.MappingProxyType({"k": [3]}), "o": marker}
    copied = plain_json(data)
    assert copied == {"raw": SESSION_EVENT, "t": [1, [2]], "m": {"k": [3]}, "o": marker}
    assert type(copied["raw"]) is dict and type(copied["t"]) is list
    assert type(copied["m"]) is dict and copied["o"] is marker


def test_events_decode_again_from_their_read_only_raw() -> None:
    # The client renames beta events this way: {**event.raw, "type": ga_name}.
    beta = {
        "type": "conversation.item.created",
        "previous_item_id": None,
        "item": {
            "id": "item_1",
            "type": "message",
            "role": "user",
            "content": [{"type": "input_text", "text": "hi"}, None],
        },
    }
    event = decode_payload(beta)
    renamed = decode_payload({**event.raw, "type": "conversation.item.added"})
    assert type(renamed) is ConversationItemEvent
    assert isinstance(renamed.item, ConversationItem)
    assert isinstance(renamed.item.content, tuple)
    assert renamed.item.content[0].text == "hi" and renamed.item.content[1] is None
    assert renamed.to_dict() == {**beta, "type": "conversation.item.added"}
    assert renamed.item.raw == beta["item"]
    # And a model from a view holds it as is.
    again = ConversationItemEvent.from_dict(event.raw)
    assert again == event and hash(again) == hash(event) and again.to_dict() == beta
    assert again.raw == beta
    # Views where lists of models belong, or a model: still checked.
    wrong = decode_payload({**decode_payload({"type": "x", "item": [1]}).raw, "type": beta["type"]})
    assert type(wrong) is GenericEvent and "expected an object" in (wrong.decode_error or "")
    listed = decode_payload({"type": "rate_limits.updated", "rate_limits": [{"name": "tokens"}]})
    renamed_limits = decode_payload({**listed.raw})
    assert renamed_limits == listed and renamed_limits.rate_limits[0].name == "tokens"
    not_listed = decode_payload({"type": "rate_limits.updated", "rate_limits": {"a": 1}})
    assert "expected a list" in (not_listed.decode_error or "")  # type: ignore[attr-defined]


def test_decode_event_can_rename_types_in_one_pass() -> None:
    # What the client needs for beta connections, without decoding twice.
    from realtime_sync._dialects import BETA_TO_GA

    frame = '{"type": "response.text.delta", "delta": "hi", "item_id": "i"}'
    event = decode_event(frame, rename=BETA_TO_GA)
    assert type(event) is TextDeltaEvent
    assert event.type == event.raw["type"] == "response.output_text.delta"
    assert event == decode_payload({**decode_event(frame).raw, "type": event.type})
    unchanged = decode_event('{"type": "error", "error": {}}', rename=BETA_TO_GA)
    assert type(unchanged) is ErrorEvent and unchanged.type == "error"
    assert isinstance(decode_event("[]", rename=BETA_TO_GA), InvalidFrameEvent)


def test_build_accepts_views() -> None:
    event = decode_payload(SESSION_EVENT)
    tools = event.raw["session"]["tools"]
    built = SessionUpdateEvent.build(session={"tools": tools})
    assert built.to_dict() == {
        "type": "session.update",
        "session": {"tools": SESSION_EVENT["session"]["tools"]},
    }


# --- 4. arrays of models are tuples, and annotated so ---------------------------------------


def _annotation_types(tp: Any) -> Iterator[Any]:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        for arg in typing.get_args(tp):
            yield from _annotation_types(arg)
    else:
        yield tp


@pytest.mark.parametrize("cls", module_models(), ids=lambda cls: cls.__name__)
def test_annotations_name_immutable_containers(cls: type[Model]) -> None:
    hints = typing.get_type_hints(cls)
    for name in wire_fields(cls):
        for tp in _annotation_types(hints[name]):
            origin = typing.get_origin(tp)
            assert origin not in (list, dict), f"{cls.__name__}.{name}: {tp}"
            if origin is tuple:
                (item, dots) = typing.get_args(tp)
                assert isinstance(item, type) and issubclass(item, Model) and dots is Ellipsis
            if origin is collections.abc.Sequence:
                (item,) = typing.get_args(tp)
                assert not (isinstance(item, type) and issubclass(item, Model)), (cls, name)


def _admits(tp: Any, value: Any) -> bool:
    for member in _annotation_types(tp):
        origin = typing.get_origin(member) or member
        if origin is Any or (isinstance(origin, type) and isinstance(value, origin)):
            return True
    return False


def _check_values(obj: Model, path: str) -> int:
    checked = 0
    hints = typing.get_type_hints(type(obj))
    for name in wire_fields(type(obj)):
        value = getattr(obj, name)
        if value is None or isinstance(value, (str, int, float)):
            continue  # scalars are kept as sent
        assert _admits(hints[name], value), f"{path}.{name}: {type(value).__name__}"
        checked += 1
        if isinstance(value, Model):
            checked += _check_values(value, f"{path}.{name}")
        elif isinstance(value, tuple):
            for n, item in enumerate(value):
                if isinstance(item, Model):
                    checked += _check_values(item, f"{path}.{name}[{n}]")
    return checked


def test_decoded_values_agree_with_their_annotations() -> None:
    checked = 0
    for param in SERVER_EXAMPLES:
        (payload,) = param.values
        checked += _check_values(decode_payload(payload), payload["type"])
    assert checked > 50
    event = decode_payload(SESSION_EVENT)
    assert _check_values(event, "session") > 5
    assert isinstance(event.session.tools, tuple)
    assert isinstance(event.session.modalities, collections.abc.Sequence)
    assert event.session.modalities == ["text", "audio"]
    assert isinstance(event.session.tools[0].parameters, collections.abc.Mapping)
    done = decode_payload(EXAMPLES["server"]["response.done"])
    assert isinstance(done, ResponseEvent) and isinstance(done.response.output, tuple)


# --- 5. the client's own events: to_dict() --------------------------------------------------


class _Handlers:
    def method(self, event: Any) -> None:
        pass


class _BadRepr:
    def __repr__(self) -> str:
        raise RuntimeError("no")

    def __call__(self, event: Any) -> None:
        pass


def _strict_json(data: Any) -> Any:
    return json.loads(json.dumps(data, allow_nan=False, ensure_ascii=False).encode("utf-8"))


def test_closed_event_to_dict() -> None:
    requested = ClosedEvent(code=1000, reason="bye", requested=True)
    assert requested.to_dict() == {
        "type": "client.closed",
        "code": 1000,
        "reason": "bye",
        "requested": True,
        "error": None,
        "retryable": False,
        "attempts": 0,
        "unsent": 0,
    }
    failed = ClosedEvent(
        code=None, reason=None, requested=False, error=ConnectionError(f"lost {SECRET}")
    )
    data = failed.to_dict()
    assert data["error"] == "ConnectionError: lost ***"
    assert _strict_json(data) == data


def test_handler_error_event_to_dict() -> None:
    event = decode_payload({"type": "response.output_text.delta", "delta": "hi"})
    report = HandlerErrorEvent(event=event, handler=_Handlers().method, exception=KeyError())
    data = report.to_dict()
    assert data == {
        "type": "client.handler_error",
        "event": {"type": "response.output_text.delta", "delta": "hi"},
        "handler": f"{__name__}._Handlers.method",
        "exception": "KeyError",
    }
    assert _strict_json(data) == data
    nested = HandlerErrorEvent(
        event=InvalidFrameEvent(data=b"x", reason="r"),
        handler=functools.partial(print, SECRET),
        exception=_Unprintable(),
    ).to_dict()
    assert nested["event"] == {"type": "client.invalid_frame", "data": "x", "reason": "r"}
    assert nested["handler"].startswith("functools.partial(") and SECRET not in nested["handler"]
    assert nested["exception"] == "_Unprintable: <message cannot be shown>"
    odd = HandlerErrorEvent(event=_BadRepr(), handler=_BadRepr(), exception=ValueError(""))
    assert odd.to_dict()["handler"] == "<_BadRepr object>"
    plain = HandlerErrorEvent(event={"type": "x"}, handler=print, exception=ValueError())
    assert plain.to_dict()["event"] == "{'type': 'x'}"
    assert plain.to_dict()["handler"] == "builtins.print"

    def unnamed(event: Any) -> None:
        pass

    unnamed.__module__ = None  # type: ignore[assignment]
    report = HandlerErrorEvent(event=1, handler=unnamed, exception=ValueError())
    assert report.to_dict()["handler"] == unnamed.__qualname__


class _Unrepresentable:
    def __repr__(self) -> str:
        raise RuntimeError("no")


def test_unrepresentable_values_still_give_text() -> None:
    report = HandlerErrorEvent(event=_Unrepresentable(), handler=print, exception=ValueError())
    assert report.to_dict()["event"] == "<_Unrepresentable object>"


def test_invalid_frame_event_to_dict_is_text() -> None:
    as_bytes = InvalidFrameEvent(data=b'{"type": \xff}', reason="not valid JSON: x")
    assert as_bytes.to_dict() == {
        "type": "client.invalid_frame",
        "data": '{"type": \ufffd}',
        "reason": "not valid JSON: x",
    }
    as_text = InvalidFrameEvent(data="bad \ud800 text", reason="r")
    assert as_text.to_dict()["data"] == "bad ? text"
    for event in (as_bytes, as_text):
        assert _strict_json(event.to_dict()) == event.to_dict()


# --- 6. secrets stay out of reprs -----------------------------------------------------------


def test_secrets_the_server_echoes_stay_out_of_reprs() -> None:
    frame = json.dumps(
        {
            "type": "error",
            "event_id": f"event_{SECRET}",
            "error": {
                "type": "invalid_request_error",
                "code": "invalid_api_key",
                "message": f"Incorrect API key provided: {SECRET}.",
                "param": None,
            },
            "echo": {"key": SECRET},
        }
    )
    event = decode_event(frame)
    assert type(event) is ErrorEvent
    shown = [repr(event), str(event), repr(event.error), str(event.error), repr(event.raw)]
    shown += [repr(event.echo), f"{event!r}", repr([event])]
    for text in shown:
        assert SECRET not in text
        assert "***" in text
    # The values themselves are intact.
    assert event.error.message == f"Incorrect API key provided: {SECRET}."
    assert event.raw["echo"]["key"] == SECRET
    generic = decode_payload({"type": "x.unknown", "note": SECRET})
    assert SECRET not in repr(generic)
    reports = [
        HandlerErrorEvent(event=event, handler=print, exception=ValueError(SECRET)),
        ClosedEvent(code=1008, reason=SECRET, requested=False, error=ValueError(SECRET)),
        InvalidFrameEvent(data=SECRET.encode(), reason=f"bad {SECRET}"),
    ]
    for report in reports:
        assert SECRET not in repr(report) and SECRET not in str(report)


def test_client_event_reprs_mask_secrets() -> None:
    event = SessionUpdateEvent.build(
        session={"tools": [{"type": "mcp", "authorization": SECRET, "server_label": "x"}]}
    )
    assert SECRET not in repr(event)
    assert event.session["tools"][0]["authorization"] == SECRET
    session = Session.from_dict({"client_secret": {"value": SECRET}})
    assert SECRET not in repr(session) and session.client_secret.value == SECRET  # type: ignore[union-attr]


def test_text_delta_decode_is_unchanged() -> None:
    # The receive path: decoding makes exactly the typed event, with no extra state.
    frame = b'{"type":"response.output_text.delta","delta":"Hi","obfuscation":"x"}'
    event = decode_event(frame)
    assert type(event) is TextDeltaEvent and event.delta == "Hi" and event.obfuscation == "x"
    assert event == decode_event(frame)
    assert isinstance(event, SessionEvent) is False
