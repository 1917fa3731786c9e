"""One-call turns, response handles and the event iterator, against the simulated server."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from conftest import KEY

from realtime_sync import (
    BadRequestError,
    ClientClosed,
    ConnectionClosed,
    RealtimeClient,
    RealtimeTimeoutError,
    Reply,
    ResponseError,
    WouldDeadlockError,
)
from realtime_sync.testing import InProcessTransport, LocalRealtimeServer

WAIT = 5.0
Make = Callable[..., tuple[RealtimeClient, Any]]


@pytest.fixture(params=["in-process", "socket"])
def make(request: pytest.FixtureRequest) -> Iterator[Make]:
    """Clients against the in-process transport and against the socket server alike."""
    clients: list[RealtimeClient] = []
    servers: list[LocalRealtimeServer] = []

    def build(
        protocol: str = "ga", reconnect: Any = True, **server_options: Any
    ) -> tuple[RealtimeClient, Any]:
        if request.param == "in-process":
            server: Any = InProcessTransport(api_key=KEY, **server_options)
            client = RealtimeClient(
                api_key=KEY,
                transport=server,
                protocol=protocol,  # type: ignore[arg-type]
                reconnect=reconnect,
            )
        else:
            server = LocalRealtimeServer(api_key=KEY, **server_options).start()
            servers.append(server)
            client = RealtimeClient(
                api_key=KEY,
                url=server.url,
                protocol=protocol,  # type: ignore[arg-type]
                reconnect=reconnect,
            )
        clients.append(client)
        client.connect(timeout=WAIT)
        return client, server

    yield build
    for client in clients:
        client.close(timeout=WAIT)
    for server in servers:
        server.stop()


@pytest.mark.parametrize("protocol", ["ga", "beta"])
def test_send_text_is_one_call(make: Make, protocol: str) -> None:
    client, server = make(protocol, reply=lambda text: f"You asked: {text}")
    reply = client.send_text("What is 2+2?", timeout=WAIT)
    assert isinstance(reply, Reply)
    assert reply.text == "You asked: What is 2+2?"
    assert reply.status == "completed" and reply.id and reply.id.startswith("resp_")
    assert reply.usage is not None and reply.usage.total_tokens
    assert reply.function_calls == () and reply.audio == b"" and reply.transcript == ""
    assert [e["type"] for e in server.received] == ["conversation.item.create", "response.create"]
    assert "bytes>" in repr(reply)  # audio is summarised, never dumped


def test_a_server_error_answering_the_turn_raises_from_send_text(make: Make) -> None:
    client, _ = make()
    with pytest.raises(BadRequestError) as raised:
        client.send_text("hi", timeout=WAIT, response={"no_such_field": 1})
    assert raised.value.code == "unknown_parameter"
    assert client.send_text("still fine", timeout=WAIT).status == "completed"


def test_requests_during_a_response_are_queued_not_refused(make: Make) -> None:
    client, _ = make(delta_interval=0.02)
    errors: list[Any] = []
    client.on("error", errors.append)
    handles = [client.create_response() for _ in range(3)]
    replies = [handle.wait(WAIT) for handle in handles]
    assert len({reply.id for reply in replies}) == 3
    assert errors == []


@pytest.mark.parametrize("started", ["before", "racing"])
def test_a_response_the_server_started_itself_delays_ours(make: Make, started: str) -> None:
    client, _ = make(delta_interval=0.02)
    errors: list[Any] = []
    client.on("error", errors.append)
    theirs = client.expect("response.created")
    client.send({"type": "response.create"})  # as server VAD would: not ours to track
    if started == "before":
        theirs.wait(WAIT)
    reply = client.create_response().wait(WAIT)
    assert reply.status == "completed"
    assert reply.id != theirs.wait(WAIT).response.id
    # Racing, ours may be refused as busy once: it was asked again, and the caller saw none.
    assert all(e.error.code == "conversation_already_has_active_response" for e in errors)


def test_streaming_text_in_the_calling_thread(make: Make) -> None:
    client, _ = make(reply="one two three", delta_chunks=3)
    handle = client.create_response()
    assert "".join(handle.text_stream(timeout=WAIT)) == "one two three"
    assert handle.wait(WAIT).text == "one two three"
    assert list(handle.text_stream(timeout=WAIT)) == []  # consumed: a second pass ends


def test_cancel_a_response_in_progress(make: Make) -> None:
    client, _ = make(reply="a long answer " * 5, delta_chunks=10, delta_interval=0.1)
    handle = client.create_response()
    first = next(handle.text_stream(timeout=WAIT))
    handle.cancel()
    with pytest.raises(ResponseError) as raised:
        handle.wait(WAIT)
    assert raised.value.status == "cancelled" and raised.value.reason == "client_cancelled"
    assert raised.value.reply.text.startswith(first)
    assert client.send_text("next", timeout=WAIT).status == "completed"


def test_cancel_a_queued_request(make: Make) -> None:
    client, _ = make(delta_interval=0.05)
    running = client.create_response()
    queued = client.create_response()
    queued.cancel()
    with pytest.raises(ResponseError, match="before it began"):
        queued.wait(WAIT)
    assert running.wait(WAIT).status == "completed"


def test_timeouts_leave_the_response_going(make: Make) -> None:
    client, _ = make(delta_chunks=2, delta_interval=0.5)
    handle = client.create_response()
    with pytest.raises(RealtimeTimeoutError):
        handle.wait(0.05)
    with pytest.raises(RealtimeTimeoutError):
        next(handle.text_stream(timeout=0.05))
    assert handle.wait(WAIT).status == "completed"


def test_the_session_ending_fails_waiting_turns(make: Make) -> None:
    client, server = make(delta_interval=0.5, reconnect=False)
    handle = client.create_response()
    queued = client.create_response()
    server.drop_connections()
    for waiting in (handle, queued):
        with pytest.raises(ConnectionClosed):
            waiting.wait(WAIT)


def test_our_close_fails_waiting_turns_with_client_closed(make: Make) -> None:
    client, _ = make(delta_interval=0.5)
    handle = client.create_response()
    client.close(timeout=WAIT)
    with pytest.raises(ClientClosed):
        handle.wait(WAIT)


def test_a_blocking_turn_from_a_handler_is_refused(make: Make) -> None:
    client, _ = make()
    refused: list[BaseException] = []
    done = threading.Event()

    def in_handler(event: Any) -> None:
        try:
            client.send_text("from a handler", timeout=WAIT)
        except WouldDeadlockError as exc:
            refused.append(exc)
        done.set()

    client.once("response.done", in_handler)
    client.create_response().wait(WAIT)
    assert done.wait(WAIT) and refused


def test_events_iterate_in_the_callers_thread_until_the_end(make: Make) -> None:
    client, _ = make()
    stream = client.events(timeout=WAIT)
    client.send_text("hello", timeout=WAIT)
    client.close(timeout=WAIT)
    types = [event.type for event in stream]
    assert types[0] == "conversation.item.added" and types[-1] == "client.closed"
    assert "response.done" in types


def test_events_end_when_quiet_or_closed(make: Make) -> None:
    client, _ = make()
    assert list(client.events(timeout=0.1)) == []
    with client.events(timeout=WAIT) as stream:
        client.send_text("hello", timeout=WAIT)
        first = next(stream)
    assert first.type == "conversation.item.added"
    assert "response.done" in [e.type for e in stream]  # what came before close()


def test_concurrent_turns_each_answer_their_own_message(make: Make) -> None:
    client, _ = make(reply=lambda text: f"echo {text}", delta_interval=0.001)
    answers: dict[str, str] = {}

    def ask(name: str) -> None:
        for n in range(4):
            question = f"{name}-{n}"
            answers[question] = client.send_text(question, timeout=WAIT).text

    threads = [threading.Thread(target=ask, args=(f"t{t}",)) for t in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(4 * WAIT)
    assert len(answers) == 24
    assert all(answer == f"echo {question}" for question, answer in answers.items())


def test_cancel_before_the_response_exists_cancels_it(make: Make) -> None:
    client, _ = make(delta_chunks=10, delta_interval=0.05)
    handle = client.create_response()
    handle.cancel()  # response.created has not arrived yet
    with pytest.raises(ResponseError) as raised:
        handle.wait(WAIT)
    assert raised.value.status == "cancelled"


@pytest.mark.parametrize("keys", [1, 15, 16])
def test_metadata_of_the_caller_is_kept_and_our_tag_cannot_be_spoofed(
    make: Make, keys: int
) -> None:
    client, _ = make()
    metadata = {f"k{n}": "v" for n in range(keys - 1)} | {"realtime_sync_turn": "forged"}
    reply = client.create_response(response={"metadata": metadata}).wait(WAIT)
    assert reply.status == "completed"
    echoed = dict(reply.response.metadata or {})
    assert echoed.get("realtime_sync_turn") != "forged"
    assert all(echoed[f"k{n}"] == "v" for n in range(keys - 1))
    assert client.send_text("next", timeout=WAIT).status == "completed"  # nothing wedged
