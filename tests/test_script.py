"""Scripting the local server's model: answers per turn or by rule, each kind of answer,
timing, assertions on what the client sent, leftovers, and threads.

Every server event a client receives here is checked against the official ``openai``
models of its dialect (the oracle of ``test_server_voice``), on the socket server and
in-process.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any
from unittest import mock

import pytest
from conftest import KEY
from test_server_voice import assert_server_event

from realtime_sync import APIError, RealtimeClient, ResponseError
from realtime_sync.events import ServerEvent
from realtime_sync.testing import (
    Failure,
    InProcessTransport,
    LocalRealtimeServer,
    Refusal,
    Script,
    Speech,
    Text,
    ToolCall,
    Turn,
    synthesize_speech,
)

pytestmark = pytest.mark.timeout(30)

WAIT = 5.0
AUDIO = {"type": "realtime", "output_modalities": ["audio"]}


class Recorded:
    """Every server event a client handled, checked against the official models."""

    def __init__(self, client: RealtimeClient, dialect: str) -> None:
        self.dialect = dialect
        self.events: list[dict[str, Any]] = []
        self.arrivals: list[float] = []  # when each event was handled
        self.failures: list[str] = []  # checked when the test ends
        self._lock = threading.Lock()
        client.on("*", self._record)

    def _record(self, event: Any) -> None:
        if not isinstance(event, ServerEvent):
            return  # the client's own events
        payload = event.to_dict()
        try:
            assert_server_event(payload, self.dialect)
        except BaseException as failure:  # the client would only log it
            self.failures.append(str(failure))
        with self._lock:
            self.events.append(payload)
            self.arrivals.append(time.monotonic())

    def of(self, event_type: str) -> list[dict[str, Any]]:
        with self._lock:
            return [event for event in self.events if event["type"] == event_type]


class Backend:
    """A local server (socket or in-process) and clients on it whose events are checked."""

    def __init__(self, kind: str, **options: Any) -> None:
        self.controls: LocalRealtimeServer | InProcessTransport
        if kind == "socket":
            self.controls = LocalRealtimeServer(api_key=KEY, **options).start()
        else:
            self.controls = InProcessTransport(api_key=KEY, **options)
        self.kind = kind
        self.script: Script = self.controls.script
        self.clients: list[RealtimeClient] = []
        self.records: list[Recorded] = []

    def connect(self, dialect: str = "ga", **options: Any) -> tuple[RealtimeClient, Recorded]:
        if isinstance(self.controls, LocalRealtimeServer):
            options["url"] = self.controls.url
        else:
            options["transport"] = self.controls
        client = RealtimeClient(api_key=KEY, protocol=dialect, **options)  # type: ignore[arg-type]
        self.clients.append(client)
        recorded = Recorded(client, dialect)
        self.records.append(recorded)
        client.connect(timeout=WAIT)
        return client, recorded

    def close(self) -> None:
        for client in self.clients:
            client.close(timeout=WAIT)
        if isinstance(self.controls, LocalRealtimeServer):
            self.controls.stop()
        for recorded in self.records:
            assert recorded.failures == []


MakeBackend = Callable[..., Backend]


@pytest.fixture(params=["socket", "in-process"])
def make_backend(request: pytest.FixtureRequest) -> Iterator[MakeBackend]:
    backends: list[Backend] = []

    def make(**options: Any) -> Backend:
        backend = Backend(request.param, **options)
        backends.append(backend)
        return backend

    yield make
    for backend in backends:
        backend.close()


@pytest.fixture
def make_local() -> Iterator[MakeBackend]:
    """In-process backends only: for what does not depend on the transport."""
    backends: list[Backend] = []

    def make(**options: Any) -> Backend:
        backend = Backend("in-process", **options)
        backends.append(backend)
        return backend

    yield make
    for backend in backends:
        backend.close()


@pytest.fixture
def local(make_local: MakeBackend) -> Backend:
    return make_local()


# --- order and rules ---------------------------------------------------------------------------


@pytest.mark.parametrize("dialect", ["ga", "beta"])
def test_turn_answers_go_in_order_then_reply_takes_over(
    make_backend: MakeBackend, dialect: str
) -> None:
    backend = make_backend(reply="Fallback")
    first = backend.script.respond("First")
    second = backend.script.respond("Second", times=2)
    client, _ = backend.connect(dialect)
    texts = [client.send_text(f"turn {n}", timeout=WAIT).text for n in range(1, 5)]
    assert texts == ["First", "Second", "Second", "Fallback"]
    assert [turn.user_text for turn in first.turns] == ["turn 1"]
    assert [turn.number for turn in second.turns] == [2, 3]
    assert first.exhausted and second.exhausted and not first.leftover
    assert [turn.number for turn in backend.script.turns] == [1, 2, 3, 4]
    backend.script.verify()


def test_rules_come_before_turn_answers_and_are_used_as_often_as_declared(
    local: Backend,
) -> None:
    script = local.script
    script.respond("in order")
    weather = script.when(contains="weather").respond("rule")
    script.when(matches=re.compile(r"\bBYE\b", re.IGNORECASE)).respond("Goodbye", times=None)
    client, _ = local.connect()
    assert client.send_text("the weather?", timeout=WAIT).text == "rule"
    assert client.send_text("hello", timeout=WAIT).text == "in order"
    # The weather rule is used up; nothing is left in turn order: the server's own answer.
    assert client.send_text("weather again", timeout=WAIT).text == "You said: weather again"
    assert client.send_text("bye", timeout=WAIT).text == "Goodbye"
    assert client.send_text("Bye now", timeout=WAIT).text == "Goodbye"
    assert client.send_text("goodbye", timeout=WAIT).text == "You said: goodbye"  # \b
    assert weather.used == 1
    assert [turn.user_text for turn in weather.turns] == ["the weather?"]
    script.verify()


def test_a_rule_needs_every_criterion_and_a_predicate_sees_the_turn(
    local: Backend,
) -> None:
    seen: list[Turn] = []

    def after_tools(turn: Turn) -> bool:
        seen.append(turn)
        return bool(turn.function_outputs)

    script = local.script
    script.when(after_tools, contains="Paris").respond("It is sunny in Paris.")
    script.respond(ToolCall("get_weather", {"city": "Paris"}, call_id="call_paris"))
    client, _ = local.connect()

    @client.tool
    def get_weather(city: str) -> str:
        """The weather in a city."""
        return f"sunny in {city}"

    assert client.send_text("Weather in Paris?", timeout=WAIT).text == "It is sunny in Paris."
    first, second = seen
    assert (first.number, first.user_text, first.function_outputs) == (1, "Weather in Paris?", ())
    assert second.number == 2
    assert [output["call_id"] for output in second.function_outputs] == ["call_paris"]
    assert second.function_outputs[0]["output"] == "sunny in Paris"
    assert second.response == {"metadata": mock.ANY}  # the client's own turn marker
    script.verify()


def test_a_rule_matches_what_the_server_heard(make_backend: MakeBackend) -> None:
    backend = make_backend()
    backend.script.when(contains="weather").respond("Heard you.")
    client, _ = backend.connect()
    updated = client.expect("session.updated")
    # Committed by hand: no server VAD, which would commit and answer by itself.
    client.session.update(
        session={"type": "realtime", "audio": {"input": {"turn_detection": None}}}
    )
    updated.wait(WAIT)
    client.input_audio_buffer.append(audio=synthesize_speech("what is the weather"))
    client.input_audio_buffer.commit()
    assert client.create_response().wait(WAIT).text == "Heard you."
    assert backend.script.turns[0].user_text == "what is the weather"
    backend.script.verify()


def test_scripted_answers_take_precedence_over_reply(make_local: MakeBackend) -> None:
    calls: list[str] = []

    def reply(text: str) -> str:
        calls.append(text)
        return "from reply"

    backend = make_local(reply=reply)
    backend.script.respond("from the script")
    client, _ = backend.connect()
    assert client.send_text("one", timeout=WAIT).text == "from the script"
    assert client.send_text("two", timeout=WAIT).text == "from reply"
    assert calls == ["two"]  # the reply callable never runs for a scripted turn


# --- what an answer holds ----------------------------------------------------------------------


@pytest.mark.parametrize("dialect", ["ga", "beta"])
def test_a_string_follows_the_modalities_text_and_speech_force_theirs(
    make_backend: MakeBackend, dialect: str
) -> None:
    backend = make_backend()
    script = backend.script
    script.respond("plain text")
    script.respond(Speech("spoken anyway"))
    script.respond(Text("written anyway"))
    script.respond("plain speech")
    client, _ = backend.connect(dialect)
    modalities = "output_modalities" if dialect == "ga" else "modalities"
    spoken = ["audio"] if dialect == "ga" else ["text", "audio"]

    reply = client.send_text("1", timeout=WAIT)
    assert (reply.text, reply.transcript, reply.audio) == ("plain text", "", b"")
    reply = client.send_text("2", timeout=WAIT)
    assert (reply.text, reply.transcript) == ("", "spoken anyway")
    assert len(reply.audio) == 60 * len("spoken anyway") * 48  # PCM16 at 24 kHz
    assert reply.response.raw[modalities] == spoken  # what the response produced
    updated = client.expect("session.updated")  # before sending: it cannot slip past
    client.session.update(session=AUDIO)
    updated.wait(timeout=WAIT)
    reply = client.send_text("3", timeout=WAIT)
    assert (reply.text, reply.transcript, reply.response.raw[modalities]) == (
        "written anyway",
        "",
        ["text"],
    )
    reply = client.send_text("4", timeout=WAIT)
    assert (reply.text, reply.transcript) == ("", "plain speech")
    script.verify()


@pytest.mark.parametrize("dialect", ["ga", "beta"])
def test_tool_calls_are_streamed_in_order_and_their_outputs_answered(
    make_backend: MakeBackend, dialect: str
) -> None:
    backend = make_backend()
    script = backend.script
    script.respond(
        ToolCall("get_weather", {"city": "Paris"}, call_id="call_weather"),
        ToolCall("get_time"),
    )
    script.respond("Sunny, at noon.")
    client, recorded = backend.connect(dialect)

    @client.tool
    def get_weather(city: str) -> str:
        """The weather in a city."""
        return "sunny"

    @client.tool
    def get_time() -> str:
        """The time."""
        return "noon"

    assert client.send_text("Weather and time?", timeout=WAIT).text == "Sunny, at noon."
    calls = [event["item"] for event in recorded.of("response.output_item.done")][:2]
    assert [(c["name"], c["arguments"]) for c in calls] == [
        ("get_weather", '{"city":"Paris"}'),
        ("get_time", "{}"),
    ]
    assert calls[0]["call_id"] == "call_weather"
    assert calls[1]["call_id"].startswith("call_")
    script.assert_sent(
        "conversation.item.create",
        item={"type": "function_call_output", "call_id": "call_weather", "output": "sunny"},
    )
    script.verify()


def test_tool_call_arguments_given_as_a_string_go_as_they_are(
    local: Backend,
) -> None:
    local.script.respond(ToolCall("get_weather", '{"city": '))
    client, _ = local.connect(auto_tools=False)
    (call,) = client.send_text("Weather?", timeout=WAIT).function_calls
    assert (call.name, call.arguments) == ("get_weather", '{"city": ')


@pytest.mark.parametrize("dialect", ["ga", "beta"])
def test_a_refusal_is_an_error_event_for_the_response_create(
    make_backend: MakeBackend, dialect: str
) -> None:
    backend = make_backend()
    backend.script.respond(Refusal("rate_limit_exceeded", "Slow down.", type="rate_limit_error"))
    backend.script.respond("After the refusal")
    client, recorded = backend.connect(dialect)
    # Reducers settle a turn before handlers run: wait for the event's handlers.
    error = client.expect("error")
    with pytest.raises(APIError, match=r"Slow down\.") as raised:
        client.send_text("Hi", timeout=WAIT)
    assert raised.value.code == "rate_limit_exceeded"
    (create,) = backend.script.sent("response.create")
    assert error.wait(WAIT).to_dict()["error"] == {
        "type": "rate_limit_error",
        "code": "rate_limit_exceeded",
        "message": "Slow down.",
        "param": None,
        "event_id": create["event_id"],
    }
    assert recorded.of("response.created") == []
    assert client.send_text("Again", timeout=WAIT).text == "After the refusal"
    backend.script.verify()


@pytest.mark.parametrize("dialect", ["ga", "beta"])
def test_a_failure_ends_the_response_failed_after_its_outputs(
    make_backend: MakeBackend, dialect: str
) -> None:
    backend = make_backend()
    backend.script.respond("Half an ans", Failure("server_error", "The model crashed."))
    backend.script.respond(Failure())
    client, _ = backend.connect(dialect)
    finished = client.expect("response.done")
    with pytest.raises(ResponseError) as raised:
        client.send_text("Hi", timeout=WAIT)
    assert (raised.value.status, raised.value.reason) == ("failed", "server_error")
    assert raised.value.reply is not None and raised.value.reply.text == "Half an ans"
    done = finished.wait(WAIT).to_dict()["response"]
    assert done["status"] == "failed"
    assert done["status_details"] == {
        "type": "failed",
        "error": {"type": "server_error", "code": "server_error", "message": "The model crashed."},
    }
    assert [item["status"] for item in done["output"]] == ["completed"]
    with pytest.raises(ResponseError) as raised:
        client.send_text("Again", timeout=WAIT)
    assert raised.value.reply is not None and raised.value.reply.output == ()
    backend.script.verify()


def test_an_answer_with_no_output_completes_empty(local: Backend) -> None:
    local.script.respond()
    client, _ = local.connect()
    reply = client.send_text("Hi", timeout=WAIT)
    assert (reply.status, reply.output) == ("completed", ())


# --- timing ------------------------------------------------------------------------------------


def test_delay_holds_the_response_back(make_backend: MakeBackend) -> None:
    backend = make_backend()
    backend.script.respond("Late", delay=0.3)
    client, _ = backend.connect()
    created = client.expect("response.created")
    started = time.monotonic()
    handle = client.create_response()
    created.wait(timeout=WAIT)
    assert time.monotonic() - started >= 0.3
    assert handle.wait(WAIT).text == "Late"


def test_a_cancel_during_the_delay_cancels_the_response_at_once(make_backend: MakeBackend) -> None:
    backend = make_backend()
    backend.script.respond("Never said", delay=WAIT * 4)
    client, _ = backend.connect()
    finished = client.expect("response.done")
    handle = client.create_response()
    backend.controls.wait_for_received("response.create", timeout=WAIT)
    client.response.cancel()  # the handle would wait for response.created to cancel
    with pytest.raises(ResponseError) as raised:
        handle.wait(WAIT)  # far sooner than the delay
    assert raised.value.status == "cancelled"
    assert finished.wait(WAIT).to_dict()["response"]["output"] == []


def test_delta_interval_spaces_the_deltas_of_one_answer(make_backend: MakeBackend) -> None:
    backend = make_backend(delta_chunks=4)
    backend.script.respond("abcdefgh", delta_interval=0.05)
    backend.script.respond("fast")
    client, recorded = backend.connect()
    started = time.monotonic()
    assert client.send_text("slow", timeout=WAIT).text == "abcdefgh"
    with recorded._lock:
        deltas = [
            arrived
            for arrived, event in zip(recorded.arrivals, recorded.events, strict=True)
            if event["type"] == "response.output_text.delta"
        ]
    assert len(deltas) == 4
    assert deltas[-1] - started >= 4 * 0.05  # each delta waited its interval
    assert client.send_text("fast", timeout=WAIT).text == "fast"


# --- what the client sent ------------------------------------------------------------------------


def test_assert_sent_matches_nested_fields_and_waits_for_the_event(
    make_backend: MakeBackend,
) -> None:
    backend = make_backend()
    client, _ = backend.connect()
    client.session.update(session={"type": "realtime", "instructions": "Be brief."})
    event = backend.script.assert_sent(
        "session.update", session={"instructions": "Be brief.", "type": mock.ANY}
    )
    assert event["session"]["instructions"] == "Be brief."
    assert backend.script.sent("session.update") == [event]
    backend.script.assert_not_sent("session.update", session={"instructions": "Be verbose."})
    backend.script.assert_not_sent("response.cancel")


def test_assert_sent_says_how_each_event_of_the_type_differs(
    local: Backend,
) -> None:
    client, _ = local.connect()
    client.session.update(session={"type": "realtime", "instructions": "Be verbose."})
    client.session.update(session={"type": "realtime", "tools": []})
    with pytest.raises(AssertionError) as raised:
        local.script.assert_sent("session.update", session={"instructions": "Be brief."}, timeout=0)
    assert str(raised.value) == (
        "The client sent no 'session.update' event with session={'instructions': 'Be brief.'}.\n"
        "It sent 2 'session.update' event(s); how they differ:\n"
        "  client event #1 of 2:\n"
        "    session.instructions: expected 'Be brief.', got 'Be verbose.'\n"
        "  client event #2 of 2:\n"
        "    session.instructions: missing (expected 'Be brief.')\n"
        "Client events received, by type (first seen first): session.update x2."
    )
    with pytest.raises(AssertionError, match=r"(?s)no 'response.create' event\.\n.*x2\.$"):
        local.script.assert_sent("response.create", timeout=0)
    with pytest.raises(AssertionError) as raised:
        local.script.assert_not_sent("session.update", session={"tools": []})
    assert str(raised.value).startswith(
        "Expected no 'session.update' event with session={'tools': []}; the client sent 1:\n"
        "  client event #2: {"
    )


def test_lists_match_item_by_item_and_shapes_are_named(local: Backend) -> None:
    client, _ = local.connect()
    client.send({"type": "conversation.item.create", "item": {"type": "message", "role": "user",
                 "content": [{"type": "input_text", "text": "a"}]}})  # fmt: skip
    script = local.script
    script.assert_sent("conversation.item.create", item={"content": [{"text": "a"}]}, timeout=0)
    message = "content: expected 2 items, got 1"
    with pytest.raises(AssertionError, match=message):
        script.assert_sent("conversation.item.create", item={"content": [{}, {}]}, timeout=0)
    with pytest.raises(AssertionError, match=r"item\.role: expected an object, got 'user'"):
        script.assert_sent("conversation.item.create", item={"role": {"x": 1}}, timeout=0)
    with pytest.raises(AssertionError, match=r"item\.type: expected a list, got 'message'"):
        script.assert_sent("conversation.item.create", item={"type": ["message"]}, timeout=0)


def test_assert_sent_with_nothing_sent_says_so(local: Backend) -> None:
    with pytest.raises(AssertionError, match=r"\nThe client sent no event at all\.$"):
        local.script.assert_sent("response.create", timeout=0)


# --- leftovers -----------------------------------------------------------------------------------


def test_leftovers_fail_verify_with_what_where_and_how_often(
    local: Backend,
) -> None:
    script = local.script
    script.respond("Hello")
    line = _line_after()
    script.respond(ToolCall("get_weather", {"city": "Paris"}), "It is sunny", delay=0.5)
    script.when(contains="bye").respond(Speech("Goodbye"), times=None)
    script.respond("Twice", times=2)
    script.respond("Maybe", optional=True)
    client, _ = local.connect()
    client.send_text("Hi", timeout=WAIT)
    with pytest.raises(AssertionError) as raised:
        script.verify()
    assert str(raised.value) == (
        "3 scripted answer(s) of the local Realtime server were not used as declared:\n"
        f"  - rule #1 (when the user text contains 'bye', added at test_script.py:{line + 1}): "
        "speech 'Goodbye'; used 0 time(s), declared for every turn\n"
        f"  - answer #2 (in turn order, added at test_script.py:{line}): "
        """tool call get_weather({"city":"Paris"}), then 'It is sunny', after 0.5 s; """
        "used 0 of 1 time(s)\n"
        f"  - answer #3 (in turn order, added at test_script.py:{line + 2}): 'Twice'; "
        "used 0 of 2 time(s)\n"
        "The client asked for 1 response(s):\n"
        "  1. after user text 'Hi': answer #1"
    )
    assert [entry.label.split(" (")[0] for entry in script.leftovers] == [
        "rule #1",
        "answer #2",
        "answer #3",
    ]
    assert "used 0 of 2" in repr(script.leftovers[-1])


def _line_after() -> int:
    """The line after the caller's (where the next declaration is)."""
    import inspect

    frame = inspect.currentframe()
    assert frame is not None and frame.f_back is not None
    return frame.f_back.f_lineno + 1


def test_the_script_as_a_context_manager_verifies_on_a_clean_exit(
    local: Backend,
) -> None:
    with pytest.raises(AssertionError, match="'never used'; used 0 of 1"), local.script:
        local.script.respond("never used")
    local.script.reset()
    local.script.respond("never used")

    def failing_block() -> None:
        with local.script:
            raise KeyError("the test's own failure")

    with pytest.raises(KeyError):  # its own error, not the leftovers
        failing_block()
    local.script.reset()
    assert local.script.answers == [] and local.script.leftovers == []
    with local.script:
        pass


def test_a_predicate_that_raises_is_a_server_error_and_reported(
    local: Backend,
) -> None:
    def broken(turn: Turn) -> bool:
        raise ZeroDivisionError("in the predicate")

    local.script.when(broken).respond("never")
    client, _ = local.connect()
    with pytest.raises(APIError) as raised:
        client.send_text("Hi", timeout=WAIT)
    assert raised.value.type == "server_error"
    with pytest.raises(AssertionError) as verified:
        local.script.verify()
    assert "Rule predicates raised (the client got a server_error):\n" in str(verified.value)
    assert "on turn 1: ZeroDivisionError('in the predicate')" in str(verified.value)
    assert "when test_a_predicate_that_raises_is_a_server_error_and_reported.<locals>.broken" in (
        str(verified.value)
    )
    # The turn counts, answered by the predicate's failure.
    assert str(verified.value).endswith(
        "The client asked for 1 response(s):\n"
        "  1. after user text 'Hi': ZeroDivisionError in the predicate of rule #1"
    )
    assert [turn.number for turn in local.script.turns] == [1]


# --- declarations checked at once ----------------------------------------------------------------


def test_malformed_declarations_are_refused_where_they_are_made(
    local: Backend,
) -> None:
    script = local.script
    with pytest.raises(ValueError, match="Refusal replaces the whole response"):
        script.respond("text", Refusal("x", "y"))
    with pytest.raises(ValueError, match="Refusal replaces the whole response"):
        script.respond(Refusal("x", "y"), "text")
    with pytest.raises(ValueError, match="takes no delay"):
        script.respond(Refusal("x", "y"), delay=1)
    with pytest.raises(ValueError, match="Failure must be the last part"):
        script.respond(Failure(), "text")
    with pytest.raises(TypeError, match="not int"):
        script.respond(42)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="delay must be a finite number"):
        script.respond("x", delay=-1)
    with pytest.raises(ValueError, match="delta_interval must be a finite number"):
        script.respond("x", delta_interval=float("nan"))
    with pytest.raises(ValueError, match="times must be at least 1"):
        script.respond("x", times=0)
    with pytest.raises(ValueError, match="needs a predicate"):
        script.when()
    with pytest.raises(TypeError, match="must be callable"):
        script.when("weather")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="not JSON-serialisable"):
        ToolCall("f", {"when": object()})
    with pytest.raises(TypeError, match="mapping or a JSON string"):
        ToolCall("f", [1])  # type: ignore[arg-type]
    for constant in (float("nan"), float("inf"), -float("inf")):  # no JSON parser reads them
        with pytest.raises(TypeError, match="not JSON-serialisable"):
            ToolCall("f", {"x": [constant]})
    with pytest.raises(ValueError, match="name must be a non-empty string"):
        ToolCall("")
    with pytest.raises(ValueError, match="call_id must be a non-empty string"):
        ToolCall("f", call_id="")
    with pytest.raises(TypeError, match="text must be a string"):
        Text(5)  # type: ignore[arg-type]
    assert script.answers == []


# --- threads -------------------------------------------------------------------------------------


def test_concurrent_clients_and_declarations_use_each_answer_once(
    make_backend: MakeBackend,
) -> None:
    backend = make_backend()
    script = backend.script
    threads, turns = 4, 8
    start = threading.Barrier(threads)

    def declare(worker: int) -> None:
        start.wait(WAIT)
        for turn in range(turns):
            script.respond(f"{worker}-{turn}")

    adders = [threading.Thread(target=declare, args=(w,)) for w in range(threads)]
    for thread in adders:
        thread.start()
    for thread in adders:
        thread.join(WAIT)
    labels = [entry.label.split(" (")[0] for entry in script.answers]
    assert labels == [f"answer #{n}" for n in range(1, threads * turns + 1)]

    clients = [backend.connect()[0] for _ in range(threads)]
    texts: list[str] = []
    lock = threading.Lock()

    def talk(client: RealtimeClient) -> None:
        start.wait(WAIT)
        for _ in range(turns):
            text = client.send_text("next", timeout=WAIT).text
            with lock:
                texts.append(text)

    talkers = [threading.Thread(target=talk, args=(client,)) for client in clients]
    for thread in talkers:
        thread.start()
    for thread in talkers:
        thread.join(WAIT * 2)
    expected = sorted(f"{w}-{t}" for w in range(threads) for t in range(turns))
    assert sorted(texts) == expected
    assert all(entry.used == 1 for entry in script.answers)
    assert sorted(turn.number for turn in script.turns) == list(range(1, threads * turns + 1))
    script.verify()
