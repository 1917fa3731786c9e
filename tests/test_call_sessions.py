"""Every connection that joins one call plays the call's one session on the local server:
one conversation, one configuration, one response state, as on the real service."""

from __future__ import annotations

import base64
import contextlib
import json
import os
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from conftest import KEY
from rawpeer import read_request

from realtime_sync import RealtimeAPI, RealtimeClient
from realtime_sync.testing import LocalRealtimeServer
from realtime_sync.testing._shared_sessions import ENDING_GRACE, MAX_BACKLOG

SESSION = {
    "type": "realtime",
    "instructions": "You answer the phone.",
    "output_modalities": ["text"],
    "audio": {"input": {"turn_detection": None}},
}
TIMEOUT = 10.0

MakeClient = Callable[..., RealtimeClient]


def accepted_call(server: LocalRealtimeServer) -> str:
    call = server.calls.create_incoming()
    RealtimeAPI(KEY, base_url=server.http_base_url).calls.accept(call.call_id, session=SESSION)
    return call.call_id


def join(make_client: MakeClient, call_id: str, **options: Any) -> RealtimeClient:
    client = make_client(call_id=call_id, **options)
    client.connect(timeout=TIMEOUT)
    return client


def user_text(text: str) -> dict[str, Any]:
    return {"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]}


def texts(client: RealtimeClient) -> list[str]:
    return [item.text for item in client.conversation.items]


def add_item(sender: RealtimeClient, watchers: list[RealtimeClient], text: str) -> str:
    """Add a user message through ``sender``; return its id once every watcher has it."""
    seen = [
        w.expect("conversation.item.done", predicate=lambda e: _text_of(e) == text)
        for w in watchers
    ]
    sender.conversation.item.create(item=user_text(text))
    ids = {expectation.wait(TIMEOUT).item.id for expectation in seen}
    assert len(ids) == 1
    return ids.pop()


def _text_of(event: Any) -> str | None:
    content = getattr(event.item, "content", None) or []
    return next((part.text for part in content if getattr(part, "text", None)), None)


def test_two_joins_see_one_session(server: LocalRealtimeServer, make_client: MakeClient) -> None:
    call_id = accepted_call(server)
    first, second = join(make_client, call_id), join(make_client, call_id)
    assert first.session.current is not None and second.session.current is not None
    assert first.session.current.id == second.session.current.id
    assert second.session.current.instructions == "You answer the phone."
    # A session.update from one join is the other's session too.
    updated = second.expect("session.updated")
    first.session.update(session={"type": "realtime", "instructions": "Be brief."})
    assert updated.wait(TIMEOUT).session.instructions == "Be brief."
    records = server.connections
    assert records[0].session == records[1].session
    assert records[1].session["instructions"] == "Be brief."


def test_a_message_from_one_join_is_in_the_others_conversation_and_the_servers(
    server: LocalRealtimeServer, make_client: MakeClient
) -> None:
    call_id = accepted_call(server)
    first, second = join(make_client, call_id), join(make_client, call_id)
    item_id = add_item(first, [first, second], "Who is calling?")
    assert texts(second) == ["Who is calling?"]
    assert second.conversation.get(item_id) is not None
    for record in server.connections:
        assert [item["id"] for item in record.items] == [item_id]
    # Each connection's record keeps the events it received itself.
    assert [e["type"] for e in server.connections[0].received] == ["conversation.item.create"]
    assert server.connections[1].received == []


def test_a_response_requested_by_one_join_streams_to_both(
    server: LocalRealtimeServer, make_client: MakeClient
) -> None:
    call_id = accepted_call(server)
    first, second = join(make_client, call_id), join(make_client, call_id)
    deltas: list[str] = []
    second.on("response.output_text.delta", lambda event: deltas.append(event.delta))
    done = second.expect("response.done")
    reply = first.send_text("Who is calling?", timeout=TIMEOUT)
    assert reply.text == "You said: Who is calling?"
    response = done.wait(TIMEOUT).response
    assert response.id == reply.response.id
    assert "".join(deltas) == reply.text
    assert texts(second) == texts(first) == ["Who is calling?", reply.text]


def test_an_error_goes_only_to_the_join_that_caused_it(
    server: LocalRealtimeServer, make_client: MakeClient
) -> None:
    call_id = accepted_call(server)
    first, second = join(make_client, call_id), join(make_client, call_id)
    errors: list[Any] = []
    second.on("error", errors.append)
    refused = first.expect("error")
    first.send({"type": "response.cancel"})  # nothing to cancel
    assert refused.wait(TIMEOUT).error.code == "response_cancel_not_active"
    # Had the error gone to both, the second join would have had it before this answer.
    add_item(second, [first, second], "Still here.")
    assert errors == []


def test_one_join_leaving_leaves_the_other_working(
    server: LocalRealtimeServer, make_client: MakeClient
) -> None:
    call_id = accepted_call(server)
    first, second = join(make_client, call_id), join(make_client, call_id)
    add_item(first, [first, second], "Before.")
    first.close(timeout=TIMEOUT)
    reply = second.send_text("After.", timeout=TIMEOUT)
    assert reply.text == "You said: After."
    assert texts(second) == ["Before.", "After.", reply.text]
    assert [record.open for record in server.connections] == [False, True]


def test_hangup_closes_every_join(server: LocalRealtimeServer, make_client: MakeClient) -> None:
    call_id = accepted_call(server)
    first, second = join(make_client, call_id), join(make_client, call_id)
    closed = [client.expect("client.closed") for client in (first, second)]
    RealtimeAPI(KEY, base_url=server.http_base_url).calls.hangup(call_id)
    for expectation in closed:
        event = expectation.wait(TIMEOUT)
        assert (event.code, event.reason, event.requested) == (1000, "call ended", False)


def test_a_join_after_the_first_left_sees_the_earlier_conversation(
    server: LocalRealtimeServer, make_client: MakeClient
) -> None:
    call_id = accepted_call(server)
    first = join(make_client, call_id)
    item_id = add_item(first, [first], "Remember me.")
    session_id = first.session.current.id  # type: ignore[union-attr]
    first.close(timeout=TIMEOUT)
    later = join(make_client, call_id)
    assert later.session.current.id == session_id  # type: ignore[union-attr]
    assert [item["id"] for item in server.connections[-1].items] == [item_id]
    retrieved = later.expect("conversation.item.retrieved")
    later.conversation.item.retrieve(item_id=item_id)
    assert _text_of(retrieved.wait(TIMEOUT)) == "Remember me."
    # The answer is about the earlier message: it is in the session's conversation.
    assert later.create_response().wait(TIMEOUT).text == "You said: Remember me."


@pytest.mark.timeout(60)
def test_joins_sending_at_once_lose_nothing(
    server: LocalRealtimeServer, make_client: MakeClient
) -> None:
    call_id = accepted_call(server)
    clients = [join(make_client, call_id) for _ in range(2)]
    per_client = 100
    total = 2 * per_client
    everything = [threading.Event() for _ in clients]
    counts = [0, 0]

    def count(index: int) -> Callable[[Any], None]:
        def on_item(_event: Any) -> None:
            counts[index] += 1  # only the client's dispatcher thread runs this
            if counts[index] == total:
                everything[index].set()

        return on_item

    for index, client in enumerate(clients):
        client.on("conversation.item.done", count(index))
    start = threading.Barrier(len(clients), timeout=TIMEOUT)

    def send_many(index: int) -> None:
        start.wait()
        for n in range(per_client):
            clients[index].conversation.item.create(item=user_text(f"{index}-{n}"))

    senders = [threading.Thread(target=send_many, args=(index,)) for index in range(2)]
    for sender in senders:
        sender.start()
    for sender in senders:
        sender.join(TIMEOUT)
        assert not sender.is_alive()
    for event in everything:
        assert event.wait(30), counts
    expected = {f"{index}-{n}" for index in range(2) for n in range(per_client)}
    server_items = server.connections[0].items
    assert {item["content"][0]["text"] for item in server_items} == expected
    order = [item["id"] for item in server_items]
    for client in clients:  # every join saw every item, in the server's order
        assert [item.id for item in client.conversation.items] == order
    for index in range(2):  # each join's own events were taken in the order it sent them
        mine = [t for t in texts(clients[0]) if t.startswith(f"{index}-")]
        assert mine == [f"{index}-{n}" for n in range(per_client)]
    # Both still answer: a response asked by one reaches both.
    done = clients[1].expect("response.done")
    assert clients[0].create_response().wait(TIMEOUT).status == "completed"
    assert done.wait(TIMEOUT).response.status == "completed"


def test_expiry_and_drops_act_on_the_call_session(
    server: LocalRealtimeServer, make_client: MakeClient
) -> None:
    call_id = accepted_call(server)
    first, second = join(make_client, call_id), join(make_client, call_id)
    item_id = add_item(first, [first, second], "Keep this.")
    # A drop cuts every join; each joins again and finds the call's conversation.
    back = [client.expect("client.reconnected") for client in (first, second)]
    server.drop_connections()
    for expectation in back:
        expectation.wait(TIMEOUT)
    assert [item["id"] for item in server.connections[-1].items] == [item_id]
    assert first.session.current.id == second.session.current.id  # type: ignore[union-attr]
    expired = [client.expect("error") for client in (first, second)]
    server.expire_sessions()
    for expectation in expired:
        assert expectation.wait(TIMEOUT).error.code == "session_expired"


def test_the_session_lifetime_counts_once_for_the_call() -> None:
    with LocalRealtimeServer(api_key=KEY, session_lifetime=3.0) as local:
        call_id = accepted_call(local)
        clients = [
            RealtimeClient(KEY, url=local.url, call_id=call_id, reconnect=False) for _ in range(2)
        ]
        try:
            closed = []
            for index, client in enumerate(clients):
                if index:  # the scenario, not a synchronisation: a join well after the first
                    time.sleep(1.5)
                client.connect(timeout=TIMEOUT)
                closed.append(client.expect("client.closed"))
            # A lifetime per join would end the later one 1.5 s (one whole second or more
            # of expires_at) after the first.
            first, later = (client.session.current for client in clients)
            assert first is not None and later is not None
            assert later.expires_at == first.expires_at
            for expectation in closed:  # one expiry ends every join
                assert expectation.wait(TIMEOUT).code == 1001
        finally:
            for client in clients:
                client.close(timeout=TIMEOUT)


@contextlib.contextmanager
def raw_join(server: LocalRealtimeServer, call_id: str) -> Iterator[socket.socket]:
    """A join that reads its upgrade answer and nothing more (a small receive buffer, so
    that the server's writes to it block soon)."""
    host, port = server.url.split("/")[2].rsplit(":", 1)
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.settimeout(TIMEOUT)
    try:
        sock.connect((host, int(port)))
        nonce = base64.b64encode(os.urandom(16)).decode()
        sock.sendall(
            f"GET /v1/realtime?call_id={call_id} HTTP/1.1\r\nHost: {host}:{port}\r\n"
            "Upgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {nonce}\r\nSec-WebSocket-Version: 13\r\n"
            f"Authorization: Bearer {KEY}\r\n\r\n".encode()
        )
        assert read_request(sock).startswith(b"HTTP/1.1 101 ")
        yield sock
    finally:
        sock.close()


@pytest.mark.timeout(60)
def test_a_join_that_stops_reading_is_cut_and_slows_no_other(
    server: LocalRealtimeServer, make_client: MakeClient, caplog: pytest.LogCaptureFixture
) -> None:
    call_id = accepted_call(server)
    reader = join(make_client, call_id)
    text = "x" * 2**20  # each item goes out twice (added, done): 2 MiB per item to each join
    items = (MAX_BACKLOG + 8 * 2**20) // 2**20  # past the limit and the kernel's buffers
    with raw_join(server, call_id) as stalled:
        server.wait_for_connections(2, TIMEOUT)
        for n in range(items):  # the reader gets each item while the stalled join is full
            add_item(reader, [reader], f"{n}{text}")
        # Cut: what the kernel buffered, then the end of the stream, no close frame.
        received = 0
        while chunk := stalled.recv(2**16):
            received += len(chunk)
        assert received < MAX_BACKLOG
    assert "stopped reading" in caplog.text
    # The session goes on for the join that reads.
    assert reader.send_text("Still there?", timeout=TIMEOUT).text == "You said: Still there?"
    assert [record.open for record in server.connections] == [True, False]


@pytest.mark.timeout(60)
@pytest.mark.parametrize("ending", ["hangup", "expiry"])
def test_a_join_that_stopped_reading_is_cut_when_the_call_ends(
    server: LocalRealtimeServer, make_client: MakeClient, ending: str
) -> None:
    call_id = accepted_call(server)
    reader = join(make_client, call_id, reconnect=False)
    with raw_join(server, call_id) as stalled:
        server.wait_for_connections(2, TIMEOUT)
        for n in range(20):  # 8 MB for the stalled join: stuck, but under the limit
            add_item(reader, [reader], f"{n}{'x' * 200_000}")
        closed = reader.expect("client.closed")
        if ending == "hangup":
            RealtimeAPI(KEY, base_url=server.http_base_url).calls.hangup(call_id)
        else:
            server.expire_sessions()
        assert closed.wait(TIMEOUT).code == (1000 if ending == "hangup" else 1001)
        # Its close cannot get past what it has not read: it is cut after a grace period.
        deadline = time.monotonic() + ENDING_GRACE + TIMEOUT
        while server.connections[1].open:  # no event tells a cut: poll, bounded
            assert time.monotonic() < deadline, "the stalled join is still open"
            threading.Event().wait(0.05)
        received = 0
        while chunk := stalled.recv(2**16):  # what the kernel buffered, then the end
            received += len(chunk)
        assert received < 20 * 400_000
    assert [record.open for record in server.connections] == [False, False]


def read_exactly(sock: socket.socket, size: int) -> bytes:
    data = bytearray()
    while len(data) < size:
        chunk = sock.recv(min(size - len(data), 2**20))
        if not chunk:
            raise EOFError(f"the stream ended {size - len(data)} bytes short of a frame")
        data += chunk
    return bytes(data)


def read_frame(sock: socket.socket) -> tuple[int, bytes]:
    """One (unmasked, unfragmented) server frame: its opcode and payload."""
    first, second = read_exactly(sock, 2)
    length = second & 0x7F
    if length == 126:
        (length,) = struct.unpack("!H", read_exactly(sock, 2))
    elif length == 127:
        (length,) = struct.unpack("!Q", read_exactly(sock, 8))
    return first & 0x0F, read_exactly(sock, length)


def pushed_padding(size: int) -> dict[str, Any]:
    """A pushed event of about ``size`` bytes: more than a stalled peer's buffers hold."""
    return {"type": "rate_limits.updated", "rate_limits": [], "padding": "x" * size}


@pytest.mark.timeout(60)
def test_a_push_to_a_join_that_stopped_reading_returns_and_reaches_the_others(
    server: LocalRealtimeServer, make_client: MakeClient
) -> None:
    call_id = accepted_call(server)
    reader = join(make_client, call_id)
    with raw_join(server, call_id) as stalled:
        server.wait_for_connections(2, TIMEOUT)
        item_id = add_item(reader, [reader], "Before the push.")
        got = reader.expect("rate_limits.updated")
        returned = threading.Event()

        def push() -> None:
            server.push(pushed_padding(8 * 2**20))
            returned.set()

        threading.Thread(target=push, daemon=True).start()
        # It goes through the join's outbox: the stalled peer blocks only its writer.
        assert returned.wait(TIMEOUT), "push() is blocked on the join that stopped reading"
        assert len(got.wait(TIMEOUT).padding) == 8 * 2**20
        # The stalled join, reading again, gets it after the session's events before it.
        types = []
        while not types or types[-1] != "rate_limits.updated":
            opcode, payload = read_frame(stalled)
            assert opcode == 1
            types.append(json.loads(payload)["type"])
        assert types[0] == "session.created"
        assert types.index("conversation.item.done") < types.index("rate_limits.updated")
        assert server.connections[1].open
    assert [item["id"] for item in server.connections[0].items] == [item_id]


@pytest.mark.timeout(60)
def test_hangup_closes_a_join_after_the_events_queued_for_it(
    server: LocalRealtimeServer, make_client: MakeClient
) -> None:
    call_id = accepted_call(server)
    reader = join(make_client, call_id, reconnect=False)
    count = 20
    with raw_join(server, call_id) as stalled:
        server.wait_for_connections(2, TIMEOUT)
        for n in range(count):  # 8 MB for the stalled join: most of it waits in its outbox
            add_item(reader, [reader], f"{n}:{'x' * 200_000}")
        closed = reader.expect("client.closed")
        RealtimeAPI(KEY, base_url=server.http_base_url).calls.hangup(call_id)
        assert closed.wait(TIMEOUT).code == 1000
        done = []
        while (frame := read_frame(stalled))[0] != 8:  # up to the close frame
            event = json.loads(frame[1])
            if event["type"] == "conversation.item.done":
                done.append(event["item"]["content"][0]["text"].split(":")[0])
        # Every event queued before the hangup came before its close.
        assert done == [str(n) for n in range(count)]
        code, reason = struct.unpack("!H", frame[1][:2])[0], frame[1][2:].decode()
        assert (code, reason) == (1000, "call ended")


@pytest.mark.timeout(60)
def test_a_join_racing_the_expiry_starts_a_new_session(
    server: LocalRealtimeServer, make_client: MakeClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    call_id = accepted_call(server)
    first = join(make_client, call_id, reconnect=False)
    first_session = first.session.current.id  # type: ignore[union-attr]
    expired = first.expect("error")
    closed = first.expect("client.closed")
    attach = server._recorder.attach
    attached = 0

    def expire_as_the_second_joins(connection: Any, simulator: Any) -> None:
        # The call's session expires in the instant the second join comes in: after the
        # check that finds it alive, before the join's session.created.
        nonlocal attached
        attached += 1
        attach(connection, simulator)
        if attached == 1:
            simulator.expire()

    monkeypatch.setattr(server._recorder, "attach", expire_as_the_second_joins)
    second = make_client(call_id=call_id, reconnect=False)
    errors: list[Any] = []
    second.on("error", errors.append)
    second.connect(timeout=TIMEOUT)
    assert expired.wait(TIMEOUT).error.code == "session_expired"
    assert closed.wait(TIMEOUT).code == 1001
    # Not the expired session's close without its error: a new session of the call.
    assert second.session.current.id != first_session  # type: ignore[union-attr]
    assert second.send_text("Still there?", timeout=TIMEOUT).text == "You said: Still there?"
    assert errors == []
