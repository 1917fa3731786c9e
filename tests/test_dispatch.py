"""Handler registration and the dispatcher thread, without sockets.

A :class:`Dispatcher` is driven directly: raw JSON frames go in through ``submit()`` and a
transport's end report, which a scripted session core turns into the test's
:class:`ClosedEvent`, ends its thread. Synchronisation is by ``threading.Event``
only; nothing here sleeps.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from realtime_sync import (
    BETA_SERVER_EVENTS,
    GA_SERVER_EVENTS,
    ClientClosed,
    ClosedEvent,
    ConfigurationError,
    ConnectionClosed,
    ErrorEvent,
    HandlerErrorEvent,
    InvalidFrameEvent,
    RealtimeTimeoutError,
    ResponseEvent,
    TextDeltaEvent,
    UnknownEventTypeError,
    WouldDeadlockError,
)
from realtime_sync._dispatch import Dispatcher, HandlerRegistry, check_event_pattern
from realtime_sync._session import SessionCore
from realtime_sync._transport import TransportEnded
from realtime_sync.events import CLIENT_SIDE_EVENTS

pytestmark = pytest.mark.timeout(30)

JOIN_TIMEOUT = 10.0
WAIT = 10.0  # generous bound for things that happen at once unless the code is broken


def frame(event_type: str, **fields: Any) -> bytes:
    return json.dumps({"type": event_type, **fields}).encode()


def closing(**overrides: Any) -> ClosedEvent:
    settings: dict[str, Any] = {"code": 1000, "reason": "", "requested": True}
    settings.update(overrides)
    return ClosedEvent(**settings)


class ScriptedCore(SessionCore):
    """A session core whose closing event is the one the test chose."""

    def __init__(self) -> None:
        super().__init__("ws://test.invalid/realtime")
        self.closing_event = closing()

    def connection_lost(self, ended: TransportEnded) -> ClosedEvent:
        self.closed = True
        return self.closing_event


END = TransportEnded("closed", opened=True, code=1000)


class Harness:
    """A registry and a dispatcher with one connection attached."""

    def __init__(self, **options: Any) -> None:
        self.registry = HandlerRegistry()
        self.dispatcher = Dispatcher(self.registry, name="test", **options)
        self.core = ScriptedCore()
        self.dispatcher.attach(self.core)

    def send(self, event_type: str, **fields: Any) -> None:
        self.dispatcher.submit(self.core, frame(event_type, **fields))

    def close(self, event: ClosedEvent | None = None) -> None:
        """End the connection with ``event`` and wait for the thread to end."""
        if event is not None:
            self.core.closing_event = event
        self.dispatcher.submit(self.core, END)
        self.join()

    def join(self) -> None:
        assert self.dispatcher.wait_detached(self.core, JOIN_TIMEOUT), "dispatcher did not end"
        assert not [t for t in threading.enumerate() if t.name == "test-dispatch"]


@pytest.fixture
def harness() -> Iterator[Harness]:
    h = Harness()
    yield h
    if not h.core.closed:
        h.dispatcher.submit(h.core, END)
        h.dispatcher.wait_detached(h.core, JOIN_TIMEOUT)


class BackgroundWait:
    """An expectation registered now and waited on in another thread, so every event
    submitted after construction is one it may receive."""

    def __init__(
        self,
        dispatcher: Dispatcher,
        pattern: str,
        predicate: Callable[[Any], bool] | None = None,
        timeout: float | None = WAIT,
    ) -> None:
        self.result: Any = None
        self.error: BaseException | None = None
        self.expectation = dispatcher.expect(pattern, predicate)
        self.thread = threading.Thread(target=self._run, args=(timeout,), daemon=True)
        self.thread.start()

    def _run(self, timeout: float | None) -> None:
        try:
            self.result = self.expectation.wait(timeout)
        except BaseException as exc:
            self.error = exc

    def outcome(self) -> tuple[Any, BaseException | None]:
        self.thread.join(JOIN_TIMEOUT)
        assert not self.thread.is_alive(), "wait_for did not return"
        return self.result, self.error


# --- check_event_pattern --------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(GA_SERVER_EVENTS | BETA_SERVER_EVENTS | CLIENT_SIDE_EVENTS))
def test_known_event_types_are_accepted(name: str) -> None:
    check_event_pattern(name)


@pytest.mark.parametrize(
    "pattern",
    ["*", "response.*", "conversation.item.*", "input_audio_buffer.*", "client.*", "session.*"],
)
def test_wildcards_and_prefixes_are_accepted(pattern: str) -> None:
    check_event_pattern(pattern)


def test_typo_is_rejected_with_suggestion() -> None:
    with pytest.raises(UnknownEventTypeError) as info:
        check_event_pattern("respnse.done")
    message = str(info.value)
    assert "'respnse.done'" in message
    assert "Did you mean" in message
    assert "'response.done'" in message
    assert isinstance(info.value, ConfigurationError)


@pytest.mark.parametrize("pattern", ["foo.*", "respnse.*", ".*", "x"])
def test_patterns_matching_nothing_are_rejected(pattern: str) -> None:
    with pytest.raises(UnknownEventTypeError):
        check_event_pattern(pattern)


def test_unknown_prefix_message_names_the_prefix() -> None:
    with pytest.raises(UnknownEventTypeError, match=r"'foo\.'"):
        check_event_pattern("foo.*")


@pytest.mark.parametrize("pattern", [None, 42, b"response.done", ("response.done",)])
def test_non_string_pattern_is_a_type_error(pattern: Any) -> None:
    with pytest.raises(TypeError, match="must be a string"):
        check_event_pattern(pattern)


# --- HandlerRegistry ------------------------------------------------------------------------


def test_registry_rejects_non_callable() -> None:
    with pytest.raises(TypeError, match="callable"):
        HandlerRegistry().add("error", "not a function")  # type: ignore[arg-type]


def test_take_returns_handlers_in_registration_order() -> None:
    registry = HandlerRegistry()
    handlers = [lambda ev, n=n: n for n in range(5)]
    registry.add("*", handlers[0])
    registry.add("response.done", handlers[1])
    registry.add("response.*", handlers[2])
    registry.add("error", handlers[3])
    registry.add("response.done", handlers[4])
    assert [e.handler for e in registry.take("response.done")] == [
        handlers[0],
        handlers[1],
        handlers[2],
        handlers[4],
    ]
    assert [e.handler for e in registry.take("error")] == [handlers[0], handlers[3]]
    assert [e.handler for e in registry.take("session.created")] == [handlers[0]]
    registry.remove("*")
    assert registry.take("session.created") == ()


def _remove_fixture() -> tuple[HandlerRegistry, Callable[[Any], None], Callable[[Any], None]]:
    registry = HandlerRegistry()

    def first(ev: Any) -> None: ...

    def second(ev: Any) -> None: ...

    registry.add("error", first)
    registry.add("error", second)
    registry.add("response.done", first)
    registry.add("response.*", second)
    registry.add("*", first)
    return registry, first, second


def test_remove_by_pattern() -> None:
    registry, first, _ = _remove_fixture()
    assert registry.remove("error") == 2
    assert [e.handler for e in registry.take("error")] == [first]  # the "*" one
    assert registry.remove("error") == 0
    assert registry.remove("nothing.registered") == 0


def test_remove_by_handler() -> None:
    registry, first, second = _remove_fixture()
    assert registry.remove(handler=first) == 3
    assert [e.handler for e in registry.take("error")] == [second]
    assert [e.handler for e in registry.take("response.done")] == [second]
    assert registry.take("session.created") == ()


def test_remove_by_pattern_and_handler() -> None:
    registry, first, second = _remove_fixture()
    assert registry.remove("error", first) == 1
    assert [e.handler for e in registry.take("error")] == [second, first]
    assert registry.remove("response.*", first) == 0
    assert registry.remove("response.*", second) == 1


def test_remove_all() -> None:
    registry, _, _ = _remove_fixture()
    assert registry.remove() == 5
    assert registry.remove() == 0
    assert registry.take("error") == ()


def test_remove_bound_method_by_equal_handler() -> None:
    class Listener:
        def on_event(self, ev: Any) -> None: ...

    listener = Listener()
    registry = HandlerRegistry()
    registry.add("error", listener.on_event)
    assert registry.remove(handler=listener.on_event) == 1


def test_take_consumes_once_registrations() -> None:
    registry = HandlerRegistry()

    def once(ev: Any) -> None: ...

    def always(ev: Any) -> None: ...

    registry.add("response.*", once, once=True)
    registry.add("response.done", always)
    assert [e.handler for e in registry.take("response.done")] == [once, always]
    assert [e.handler for e in registry.take("response.done")] == [always]
    assert [e.handler for e in registry.take("response.created")] == []


# --- dispatching ----------------------------------------------------------------------------


def test_handlers_called_in_registration_order_across_pattern_kinds(harness: Harness) -> None:
    calls: list[tuple[str, str]] = []

    def recorder(label: str) -> Callable[[Any], None]:
        return lambda ev: calls.append((label, ev.type))

    harness.registry.add("*", recorder("star"))
    harness.registry.add("response.done", recorder("exact-1"))
    harness.registry.add("response.*", recorder("prefix"))
    harness.registry.add("error", recorder("error"))
    harness.registry.add("response.done", recorder("exact-2"))
    harness.registry.add("*", recorder("star-2"))
    harness.send("response.done", response={"id": "resp_1"})
    harness.send("response.created")
    harness.send("session.created", session={"id": "s"})
    harness.close()
    assert calls == [
        ("star", "response.done"),
        ("exact-1", "response.done"),
        ("prefix", "response.done"),
        ("exact-2", "response.done"),
        ("star-2", "response.done"),
        ("star", "response.created"),
        ("prefix", "response.created"),
        ("star-2", "response.created"),
        ("star", "session.created"),
        ("star-2", "session.created"),
        ("star", "client.closed"),
        ("star-2", "client.closed"),
    ]


def test_handlers_get_typed_events(harness: Harness) -> None:
    seen: list[Any] = []
    harness.registry.add("*", seen.append)
    harness.send("response.output_text.delta", delta="hi", obfuscation="x")
    harness.dispatcher.submit(harness.core, b"definitely not json")
    closed = closing(reason="bye")
    harness.close(closed)
    delta, invalid, last = seen
    assert isinstance(delta, TextDeltaEvent)
    assert delta.delta == "hi"
    assert delta.obfuscation == "x"
    assert isinstance(invalid, InvalidFrameEvent)
    assert invalid.data == b"definitely not json"
    assert last is closed


def test_once_fires_once(harness: Harness) -> None:
    once_calls: list[str] = []
    every_calls: list[str] = []
    harness.registry.add("error", lambda ev: once_calls.append(ev.event_id), once=True)
    harness.registry.add("*", lambda ev: every_calls.append(ev.type), once=True)
    harness.registry.add("error", lambda ev: every_calls.append(ev.event_id))
    for n in range(3):
        harness.send("error", event_id=f"e{n}", error={"code": "x"})
    harness.close()
    assert once_calls == ["e0"]
    assert every_calls == ["error", "e0", "e1", "e2"]


def test_registering_during_dispatch_affects_later_events(harness: Harness) -> None:
    late_calls: list[str] = []
    added = threading.Event()

    def late(ev: Any) -> None:
        late_calls.append(ev.event_id)

    def register_late(ev: Any) -> None:
        if not added.is_set():
            harness.registry.add("error", late)
            harness.registry.add("response.done", late)
            added.set()

    harness.registry.add("error", register_late)
    harness.send("error", event_id="first", error={})
    harness.send("error", event_id="second", error={})
    harness.send("response.done", event_id="third")
    harness.close()
    assert added.is_set()
    assert late_calls == ["second", "third"]


def test_removing_during_dispatch_affects_later_events(harness: Harness) -> None:
    calls: list[str] = []

    def counted(ev: Any) -> None:
        calls.append(ev.event_id)

    def remover(ev: Any) -> None:
        if ev.event_id == "first":
            harness.registry.remove(handler=counted)

    harness.registry.add("error", remover)
    harness.registry.add("error", counted)
    harness.send("error", event_id="first", error={})
    harness.send("error", event_id="second", error={})
    harness.close()
    assert "second" not in calls


def test_events_dispatched_in_submit_order(harness: Harness) -> None:
    seen: list[int] = []
    typed: list[bool] = []

    def record(ev: Any) -> None:
        seen.append(int(ev.event_id))
        typed.append(isinstance(ev, TextDeltaEvent))

    harness.registry.add("response.output_text.delta", record)
    for n in range(1000):
        harness.send("response.output_text.delta", event_id=str(n), delta=str(n))
    harness.close()
    assert seen == list(range(1000))
    assert all(typed)


def test_events_from_many_threads_keep_each_threads_order(harness: Harness) -> None:
    seen: list[tuple[int, int]] = []
    harness.registry.add("error", lambda ev: seen.append(tuple(ev.error.seq)))
    start = threading.Event()

    def producer(worker: int) -> None:
        start.wait(WAIT)
        for n in range(200):
            harness.send("error", error={"seq": [worker, n]})

    threads = [threading.Thread(target=producer, args=(w,)) for w in range(4)]
    for thread in threads:
        thread.start()
    start.set()
    for thread in threads:
        thread.join(JOIN_TIMEOUT)
    harness.close()
    assert len(seen) == 800
    for worker in range(4):
        assert [n for w, n in seen if w == worker] == list(range(200))


def test_raising_handler_does_not_stop_others_and_is_reported(harness: Harness) -> None:
    after: list[str] = []
    reports: list[HandlerErrorEvent] = []
    failure = RuntimeError("handler failed")

    def broken(ev: Any) -> None:
        raise failure

    harness.registry.add("error", broken)
    harness.registry.add("error", lambda ev: after.append(ev.event_id))
    harness.registry.add("client.handler_error", reports.append)
    harness.send("error", event_id="e1", error={"code": "boom"})
    harness.send("error", event_id="e2", error={"code": "boom"})
    harness.close()
    assert after == ["e1", "e2"]
    assert len(reports) == 2
    report = reports[0]
    assert isinstance(report, HandlerErrorEvent)
    assert report.type == "client.handler_error"
    assert isinstance(report.event, ErrorEvent)
    assert report.event.event_id == "e1"
    assert report.handler is broken
    assert report.exception is failure
    assert reports[1].event.event_id == "e2"


def test_raising_handler_is_logged(harness: Harness, caplog: pytest.LogCaptureFixture) -> None:
    def broken(ev: Any) -> None:
        raise ValueError("bad value in handler")

    harness.registry.add("error", broken)
    harness.send("error", error={})
    harness.close()
    records = [r for r in caplog.records if r.name == "realtime_sync"]
    assert any("broken" in r.getMessage() and r.exc_info for r in records)
    assert "bad value in handler" in caplog.text


def test_raising_handler_error_handler_does_not_loop(harness: Harness) -> None:
    error_handler_calls: list[HandlerErrorEvent] = []
    later: list[str] = []

    def broken(ev: Any) -> None:
        raise RuntimeError("first")

    def broken_error_handler(report: HandlerErrorEvent) -> None:
        error_handler_calls.append(report)
        raise RuntimeError("second")

    harness.registry.add("error", broken)
    harness.registry.add("client.handler_error", broken_error_handler)
    harness.registry.add("response.done", lambda ev: later.append(ev.type))
    harness.send("error", error={})
    harness.send("response.done")
    harness.close()
    assert len(error_handler_calls) == 1
    assert error_handler_calls[0].handler is broken
    assert later == ["response.done"]


def test_raising_catch_all_handler_does_not_loop(harness: Harness) -> None:
    calls: list[str] = []

    def broken_everywhere(ev: Any) -> None:
        calls.append(ev.type)
        raise RuntimeError("always")

    harness.registry.add("*", broken_everywhere)
    harness.send("error", error={})
    harness.close()
    # Each event, then the report of its failure, once: the failing report is not reported,
    # and nothing comes after client.closed (its handlers' failures are logged only).
    assert calls == ["error", "client.handler_error", "client.closed"]


def test_reducers_run_in_order_before_handlers_and_may_replace_the_event() -> None:
    order: list[str] = []

    def first(ev: Any) -> Any:
        order.append(f"first:{ev.type}")
        if ev.type == "session.created":
            return ResponseEvent.build(type="response.done", event_id="replaced")
        return ev

    def second(ev: Any) -> Any:
        order.append(f"second:{ev.type}")
        return ev

    harness = Harness(reducers=[first, second])
    harness.registry.add("*", lambda ev: order.append(f"handler:{ev.type}"))
    harness.send("session.created", session={})
    harness.close()
    assert order == [
        "first:session.created",
        "second:response.done",
        "handler:response.done",
        "first:client.closed",
        "second:client.closed",
        "handler:client.closed",
    ]


# --- wait_for -------------------------------------------------------------------------------


def test_wait_for_returns_next_matching_event(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    waiting = BackgroundWait(harness.dispatcher, "response.done")
    harness.send("response.created", event_id="1")
    harness.send("response.done", event_id="2")
    harness.send("response.done", event_id="3")
    result, error = waiting.outcome()
    assert error is None
    assert isinstance(result, ResponseEvent)
    assert result.event_id == "2"
    harness.close()


def test_wait_for_with_predicate(harness: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    offered: list[str] = []

    def wanted(ev: Any) -> bool:
        offered.append(ev.event_id)
        return ev.response.id == "resp_b"

    waiting = BackgroundWait(harness.dispatcher, "response.*", wanted)
    harness.send("response.done", event_id="1", response={"id": "resp_a"})
    harness.send("error", event_id="2", error={})
    harness.send("response.created", event_id="3", response={"id": "resp_b"})
    harness.send("response.done", event_id="4", response={"id": "resp_b"})
    result, error = waiting.outcome()
    assert error is None
    assert result.event_id == "3"
    assert offered == ["1", "3"]  # only events matching the pattern reach the predicate
    harness.close()


def test_wait_for_sees_event_after_its_handlers(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    handled: list[str] = []
    harness.registry.add("response.done", lambda ev: handled.append(ev.event_id))
    waiting = BackgroundWait(harness.dispatcher, "response.done")
    harness.send("response.done", event_id="1")
    result, error = waiting.outcome()
    assert error is None
    assert result.event_id == "1"
    assert handled == ["1"]
    harness.close()


def test_several_waiters_get_the_same_event(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = BackgroundWait(harness.dispatcher, "error")
    second = BackgroundWait(harness.dispatcher, "*")
    harness.send("error", event_id="e", error={})
    (a, a_error), (b, b_error) = first.outcome(), second.outcome()
    assert a_error is None
    assert b_error is None
    assert a is b
    harness.close()


def test_wait_for_times_out(harness: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    harness.send("response.created")
    with pytest.raises(RealtimeTimeoutError, match=r"'response\.done'") as info:
        harness.dispatcher.wait_for("response.done", None, 0.2)
    assert isinstance(info.value, TimeoutError)
    # The dispatcher is unaffected: a later wait gets the next event.
    waiting = BackgroundWait(harness.dispatcher, "response.done")
    harness.send("response.done", event_id="later")
    result, error = waiting.outcome()
    assert error is None
    assert result.event_id == "later"
    harness.close()


def test_wait_for_from_handler_raises_would_deadlock(harness: Harness) -> None:
    caught: list[BaseException] = []
    done = threading.Event()

    def handler(ev: Any) -> None:
        try:
            harness.dispatcher.wait_for("response.done", None, 1.0)
        except BaseException as exc:
            caught.append(exc)
        finally:
            done.set()

    harness.registry.add("response.created", handler)
    harness.send("response.created")
    assert done.wait(WAIT)
    harness.close()
    (error,) = caught
    assert isinstance(error, WouldDeadlockError)
    assert isinstance(error, RuntimeError)
    assert "handler" in str(error)
    assert "'response.done'" in str(error)


def test_raising_predicate_propagates_to_waiter(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    failure = KeyError("no such field")
    later: list[str] = []

    def predicate(ev: Any) -> bool:
        raise failure

    waiting = BackgroundWait(harness.dispatcher, "response.done", predicate)
    harness.registry.add("response.done", lambda ev: later.append(ev.event_id))
    harness.send("response.done", event_id="1")
    harness.send("response.done", event_id="2")
    result, error = waiting.outcome()
    assert result is None
    assert error is failure
    harness.close()
    assert later == ["1", "2"]  # the dispatcher went on


def test_requested_close_fails_pending_waiters(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = BackgroundWait(harness.dispatcher, "response.done")
    second = BackgroundWait(harness.dispatcher, "error", lambda ev: True)
    harness.close(closing(code=1000, reason="bye"))
    for waiting in (first, second):
        result, error = waiting.outcome()
        assert result is None
        assert isinstance(error, ClientClosed)  # ended by us, not by the server


def test_close_with_error_fails_waiters_with_that_error(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    failure = ConnectionClosed("server went away", code=1006)
    waiting = BackgroundWait(harness.dispatcher, "response.done")
    harness.close(closing(code=1006, reason=None, requested=False, error=failure))
    result, error = waiting.outcome()
    assert result is None
    assert error is failure


def test_waiting_for_the_closed_event_receives_it(harness: Harness) -> None:
    waiting = BackgroundWait(harness.dispatcher, "client.closed")
    others = BackgroundWait(harness.dispatcher, "response.done")
    harness.close()
    event, error = waiting.outcome()
    assert error is None
    assert isinstance(event, ClosedEvent)
    assert isinstance(others.outcome()[1], ClientClosed)


def test_wait_for_after_finish_raises_immediately(harness: Harness) -> None:
    harness.close(closing(code=1000, reason="done"))
    with pytest.raises(ClientClosed):
        harness.dispatcher.wait_for("response.done", None, None)


def test_wait_for_after_failed_finish_raises_that_error(harness: Harness) -> None:
    failure = ConnectionClosed("dropped", code=None)
    harness.close(closing(code=None, reason=None, requested=False, error=failure))
    with pytest.raises(ConnectionClosed) as info:
        harness.dispatcher.wait_for("*", None, None)
    assert info.value is failure


# --- bugs -----------------------------------------------------------------------------------


def test_wait_for_ignores_event_already_being_dispatched(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    entered = threading.Event()
    release = threading.Event()

    def slow_handler(ev: Any) -> None:
        if ev.event_id == "old":
            entered.set()
            release.wait(WAIT)

    harness.registry.add("response.done", slow_handler)
    harness.send("response.done", event_id="old")
    assert entered.wait(WAIT)
    # The old response.done is being handled; now a caller starts waiting for the next one.
    waiting = BackgroundWait(harness.dispatcher, "response.done")
    release.set()
    harness.send("response.done", event_id="new")
    result, error = waiting.outcome()
    harness.close()
    assert error is None
    assert result.event_id == "new"


def test_wait_for_receives_handler_error_events(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    reported = threading.Event()
    failure = RuntimeError("broken handler")

    def broken(ev: Any) -> None:
        raise failure

    harness.registry.add("error", broken)
    harness.registry.add("client.handler_error", lambda ev: reported.set())
    waiting = BackgroundWait(harness.dispatcher, "client.handler_error")
    harness.send("error", error={})
    assert reported.wait(WAIT)
    harness.close()  # a waiter that missed the report is failed here instead
    result, error = waiting.outcome()
    assert error is None
    assert isinstance(result, HandlerErrorEvent)
    assert result.exception is failure
