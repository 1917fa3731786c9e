"""Tools the model calls: run on a pool, answered, one response per batch, kept in sync."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from conftest import KEY

from realtime_sync import RealtimeClient, ResponseError
from realtime_sync.testing import InProcessTransport

WAIT = 5.0


@pytest.fixture
def transport() -> InProcessTransport:
    return InProcessTransport(api_key=KEY)


@pytest.fixture
def client(transport: InProcessTransport) -> Iterator[RealtimeClient]:
    client = RealtimeClient(api_key=KEY, transport=transport)
    yield client
    client.close(timeout=WAIT)


def sent(transport: InProcessTransport, event_type: str) -> list[dict[str, Any]]:
    return [event for event in transport.received if event["type"] == event_type]


def outputs(transport: InProcessTransport) -> list[Any]:
    return [
        json.loads(event["item"]["output"])
        for event in sent(transport, "conversation.item.create")
        if event["item"]["type"] == "function_call_output"
    ]


def test_a_tool_call_is_run_and_the_turn_ends_with_the_answer(
    transport: InProcessTransport, client: RealtimeClient
) -> None:
    threads: list[str] = []

    @client.tool
    def get_weather(city: str, unit: str = "c") -> dict[str, Any]:
        """The current weather in a city.

        Args:
            city: Where.
            unit: ``c`` or ``f``.
        """
        threads.append(threading.current_thread().name)
        return {"city": city, "temperature": 21, "unit": unit}

    client.connect(timeout=WAIT)
    reply = client.send_text('call get_weather {"city": "Paris"}', timeout=WAIT)
    assert reply.text == 'Result of get_weather: {"city":"Paris","temperature":21,"unit":"c"}'
    assert threads and "dispatch" not in threads[0]  # never on the dispatcher thread
    (update,) = sent(transport, "session.update")
    (definition,) = update["session"]["tools"]
    assert definition["name"] == "get_weather"
    assert definition["parameters"]["required"] == ["city"]
    assert definition["parameters"]["properties"]["city"]["description"] == "Where."


def test_two_parallel_calls_get_exactly_one_response_create(
    transport: InProcessTransport, client: RealtimeClient
) -> None:
    both_running = threading.Barrier(2, timeout=WAIT)

    @client.tool
    def double(n: int) -> int:
        both_running.wait()  # the two calls run at the same time, on the pool
        return 2 * n

    client.connect(timeout=WAIT)
    reply = client.send_text('call double {"n": 2} and call double {"n": 5}', timeout=WAIT)
    assert outputs(transport) == [4, 10]
    assert len(sent(transport, "response.create")) == 2  # the turn's, and one follow-up
    assert reply.status == "completed" and "Result of double" in reply.text


def test_a_tool_that_raises_tells_the_model_and_the_session_goes_on(
    transport: InProcessTransport, client: RealtimeClient
) -> None:
    @client.tool
    def explode(reason: str) -> str:
        raise ValueError(f"cannot: {reason}")

    client.connect(timeout=WAIT)
    reply = client.send_text('call explode {"reason": "no fuel"}', timeout=WAIT)
    assert outputs(transport) == [{"error": "ValueError: cannot: no fuel"}]
    assert reply.status == "completed"
    assert client.send_text("still here?", timeout=WAIT).status == "completed"


def test_slow_tools_time_out_and_bad_arguments_are_reported(
    transport: InProcessTransport, client: RealtimeClient
) -> None:
    release = threading.Event()

    @client.tool(timeout=0.2)
    def slow() -> str:
        release.wait(WAIT)
        return "late"

    @client.tool
    def exact(n: int) -> int:
        return n

    client.connect(timeout=WAIT)
    try:
        client.send_text('call slow {} and call exact {"n": "seven"}', timeout=WAIT)
    finally:
        release.set()
    timed_out, refused = outputs(transport)
    assert "did not finish within 0.2 s" in timed_out["error"]
    assert "ToolArgumentsError" in refused["error"] and "n" in refused["error"]


def test_tools_added_while_connected_reach_the_session(
    transport: InProcessTransport, client: RealtimeClient
) -> None:
    client.connect(timeout=WAIT)
    assert sent(transport, "session.update") == []  # no tools, no update
    updated = client.expect("session.updated")
    client.add_tool(
        lambda city: city.upper(),
        name="shout",
        description="Upper-cases.",
        parameters={"type": "object", "properties": {"city": {"type": "string"}}},
    )
    assert [t.name for t in updated.wait(WAIT).session.tools] == ["shout"]
    reply = client.send_text('call shout {"city": "lyon"}', timeout=WAIT)
    assert reply.text == "Result of shout: LYON"


def test_registered_tools_join_the_tools_the_session_has_from_elsewhere(
    transport: InProcessTransport, client: RealtimeClient
) -> None:
    # E.g. an accepted call's configuration, or the app's own session.update: registering
    # or removing a tool must not wipe them out.
    external = {
        "type": "function",
        "name": "external",
        "description": "Set by someone else.",
        "parameters": {"type": "object", "properties": {}},
    }
    client.connect(timeout=WAIT)

    def tools_after(change: Any) -> list[str]:
        updated = client.expect("session.updated")
        change()
        return [tool.name for tool in updated.wait(WAIT).session.tools]

    assert tools_after(lambda: client.session.update(session={"tools": [external]})) == ["external"]

    def shout(city: str) -> str:
        """Upper-cases."""
        return city.upper()

    assert tools_after(lambda: client.tool(shout)) == ["external", "shout"]
    assert tools_after(lambda: client.tools.remove("shout")) == ["external"]


def test_manual_mode_leaves_the_calls_to_the_app(transport: InProcessTransport) -> None:
    client = RealtimeClient(api_key=KEY, transport=transport, auto_tools=False)
    client.add_tool(lambda: "never run", name="lookup", parameters={"type": "object"})
    with client:
        reply = client.send_text("call lookup {}", timeout=WAIT)
        (call,) = reply.function_calls
        assert call.name == "lookup" and call.arguments == "{}"
        client.conversation.item.create(
            item={"type": "function_call_output", "call_id": call.call_id, "output": "42"}
        )
        assert client.create_response().wait(WAIT).text == "Result of lookup: 42"
    assert len(sent(transport, "response.create")) == 2


def test_timeouts_run_together_and_a_hung_tool_holds_nothing_up(
    transport: InProcessTransport, client: RealtimeClient
) -> None:
    release = threading.Event()

    @client.tool(timeout=0.3)
    def hang(n: int) -> int:
        release.wait(WAIT)
        return n

    @client.tool
    def fast() -> str:
        return "fast"

    client.connect(timeout=WAIT)
    try:
        calls = " and ".join(f'call hang {{"n": {n}}}' for n in range(6))
        started = time.monotonic()
        client.send_text(calls, timeout=WAIT)
        assert time.monotonic() - started < 2.0  # six 0.3 s timeouts at once, not in turn
        assert client.send_text("call fast {}", timeout=WAIT).text == "Result of fast: fast"
    finally:
        release.set()


def test_cancel_while_tools_run_asks_for_no_follow_up(
    transport: InProcessTransport, client: RealtimeClient
) -> None:
    release = threading.Event()

    @client.tool
    def slow() -> str:
        release.wait(WAIT)
        return "done"

    client.connect(timeout=WAIT)
    client.conversation.item.create(
        item={
            "type": "message",
            "role": "user",
            "content": [{"type": "input_text", "text": "call slow {}"}],
        }
    )
    called = client.expect("response.done")  # the response that makes the call
    handle = client.create_response()
    called.wait(WAIT)
    handle.cancel()
    release.set()
    with pytest.raises(ResponseError, match="tools ran"):
        handle.wait(WAIT)
    transport.wait_for_received("conversation.item.create", count=2, timeout=WAIT)
    assert len(sent(transport, "response.create")) == 1  # no follow-up


def test_calls_of_a_response_that_did_not_complete_are_not_run(
    transport: InProcessTransport, client: RealtimeClient
) -> None:
    ran: list[str] = []
    client.add_tool(lambda: ran.append("ran") or "x", name="spy", parameters={"type": "object"})
    client.connect(timeout=WAIT)
    done = client.expect("response.done")
    call = {"type": "function_call", "name": "spy", "call_id": "c1", "arguments": "{"}
    transport.push(
        {
            "type": "response.done",
            "response": {"id": "resp_x", "status": "cancelled", "output": [call]},
        }
    )
    done.wait(WAIT)
    assert client.send_text("next", timeout=WAIT).status == "completed"
    assert ran == [] and len(sent(transport, "response.create")) == 1


def test_a_new_session_starts_with_an_empty_conversation(
    transport: InProcessTransport, client: RealtimeClient
) -> None:
    client.connect(timeout=WAIT)
    client.send_text("first session", timeout=WAIT)
    client.close(timeout=WAIT)
    client.connect(timeout=WAIT)
    assert client.conversation.items == ()
    client.send_text("second session", timeout=WAIT)
    assert client.conversation.items[0].text == "second session"
