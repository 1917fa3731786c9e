"""The session simulator on its own: frames in and out through plain callables, no sockets.

This is the contract an in-process transport relies on: ``send`` gets complete JSON text
frames, ``close`` a code and a reason, and nothing here needs ``websockets``.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from conftest import user_message

from realtime_sync.testing._simulator import SessionSimulator, SimulatorOptions

pytestmark = pytest.mark.timeout(20)

WAIT = 5.0  # bound for things that happen at once unless the code is broken
Event = dict[str, Any]


class Wire:
    """The transport side of one simulated session: what was sent and how it closed."""

    def __init__(self) -> None:
        self.frames: list[str] = []
        self.closes: list[tuple[int, str]] = []
        self.recorded: list[Event] = []
        self.threads: list[threading.Thread] = []
        self._cond = threading.Condition()

    def send(self, frame: str) -> None:
        assert isinstance(frame, str)
        with self._cond:
            self.frames.append(frame)
            self._cond.notify_all()

    def close(self, code: int, reason: str) -> None:
        self.closes.append((code, reason))

    def events(self) -> list[Event]:
        with self._cond:
            return [json.loads(frame) for frame in self.frames]

    def wait_for(self, event_type: str, count: int = 1) -> list[Event]:
        """Every event sent so far, once ``count`` of type ``event_type`` were sent."""
        with self._cond:
            assert self._cond.wait_for(
                lambda: sum(json.loads(f)["type"] == event_type for f in self.frames) >= count,
                WAIT,
            ), [json.loads(f)["type"] for f in self.frames]
        return self.events()


MakeSimulator = Callable[..., tuple[SessionSimulator, Wire]]


@pytest.fixture
def make_simulator() -> Iterator[MakeSimulator]:
    made: list[SessionSimulator] = []

    def make(
        dialect: str = "ga",
        model: str = "gpt-realtime",
        *,
        send: Callable[[Wire, str], None] = Wire.send,
        on_received: Callable[[Wire, Event], None] | None = None,
        **options: Any,
    ) -> tuple[SessionSimulator, Wire]:
        wire = Wire()
        simulator = SessionSimulator(
            dialect=dialect,  # type: ignore[arg-type]
            model=model,
            send=lambda frame: send(wire, frame),
            close=wire.close,
            options=SimulatorOptions(**options),
            register_thread=wire.threads.append,
            on_received=wire.recorded.append
            if on_received is None
            else lambda event: on_received(wire, event),
        )
        made.append(simulator)
        return simulator, wire

    yield make
    for simulator in made:
        simulator.stop(WAIT)


def test_open_sends_session_created_first(make_simulator: MakeSimulator) -> None:
    simulator, wire = make_simulator("beta", "gpt-4o-realtime-preview-2024-12-17")
    assert wire.frames == []  # nothing before open()
    simulator.open()
    (created,) = wire.events()
    assert created["type"] == "session.created"
    assert list(created)[:2] == ["type", "event_id"]
    assert created["session"]["model"] == "gpt-4o-realtime-preview-2024-12-17"
    assert created["session"]["modalities"] == ["text"]
    assert wire.closes == []


def test_receive_refuses_what_is_not_an_event(make_simulator: MakeSimulator) -> None:
    simulator, wire = make_simulator()
    simulator.open()
    frames: list[str | bytes] = [b"\x00", "{not json", '{"a":' * 100_000 + "1" + "}" * 100_000]
    frames.append("[1, 2]")
    for frame in frames:
        assert simulator.receive(frame) is None
    codes = [event["error"]["code"] for event in wire.events()[1:]]
    assert codes == ["invalid_event", "invalid_json", "invalid_json", "invalid_event"]
    assert wire.recorded == []  # none of them counts as a received event
    assert wire.closes == []


def test_receive_records_then_answers_and_returns_the_event(
    make_simulator: MakeSimulator,
) -> None:
    seen_when_recorded: list[int] = []
    recorded: list[Event] = []

    def record(wire: Wire, event: Event) -> None:
        seen_when_recorded.append(len(wire.frames))
        recorded.append(event)

    simulator, wire = make_simulator(on_received=record)
    simulator.open()
    event = simulator.receive(json.dumps({"type": "input_audio_buffer.clear", "event_id": "a"}))
    assert event == {"type": "input_audio_buffer.clear", "event_id": "a"}
    assert recorded == [event]
    assert seen_when_recorded == [1]  # recorded before its answer: only session.created was out
    assert wire.events()[-1]["type"] == "input_audio_buffer.cleared"
    unknown = simulator.receive(json.dumps({"type": "no.such.event", "event_id": "b"}))
    assert unknown == {"type": "no.such.event", "event_id": "b"}  # received, then refused
    error = wire.events()[-1]["error"]
    assert (error["code"], error["param"], error["event_id"]) == ("invalid_value", "type", "b")


@pytest.mark.parametrize("dialect", ["ga", "beta"])
def test_a_response_streams_on_a_registered_thread(
    make_simulator: MakeSimulator, dialect: str
) -> None:
    simulator, wire = make_simulator(dialect, reply=lambda text: f"Echo {text}", delta_chunks=2)
    simulator.open()
    simulator.receive(json.dumps(user_message("hi")))
    simulator.receive(json.dumps({"type": "response.create"}))
    events = wire.wait_for("rate_limits.updated")
    (worker,) = wire.threads
    assert worker.name == "realtime_sync-local-server-response"
    done = next(e for e in events if e["type"] == "response.done")["response"]
    assert done["status"] == "completed"
    assert done["output"][0]["content"][0]["text"] == "Echo hi"
    simulator.stop(WAIT)
    assert not worker.is_alive()


def test_expire_sends_session_expired_then_closes_1001(make_simulator: MakeSimulator) -> None:
    simulator, wire = make_simulator(
        session_lifetime=30, reply="x" * 20, delta_chunks=20, delta_interval=60
    )  # a response that would not end by itself during the test
    simulator.open()
    simulator.receive(json.dumps({"type": "response.create"}))
    wire.wait_for("response.content_part.added")
    simulator.expire()
    (worker,) = wire.threads
    assert not worker.is_alive()  # the response ended with the session
    last = wire.events()[-1]
    assert last["error"]["code"] == "session_expired"
    assert "30 seconds" in last["error"]["message"]
    assert wire.closes == [(1001, "invalid_request_error.session_expired")]


def test_refuse_sends_the_error_then_closes(make_simulator: MakeSimulator) -> None:
    simulator, wire = make_simulator()
    error = {"type": "invalid_request_error", "code": "model_not_found", "message": "no"}
    simulator.refuse(4000, error)
    (event,) = wire.events()
    assert event["type"] == "error"
    assert event["error"] == error
    assert wire.closes == [(4000, "invalid_request_error.model_not_found")]


def test_a_failing_send_propagates_unchanged_and_ends_the_response_thread(
    make_simulator: MakeSimulator,
) -> None:
    class Gone(Exception):
        pass

    def send(wire: Wire, frame: str) -> None:
        if gone.is_set() or json.loads(frame)["type"] == "response.output_text.delta":
            raise Gone
        wire.send(frame)

    gone = threading.Event()
    simulator, wire = make_simulator(send=send, reply="abcdef", delta_chunks=6)
    simulator.open()
    simulator.receive(json.dumps({"type": "response.create"}))
    (worker,) = wire.threads
    worker.join(WAIT)
    assert not worker.is_alive()  # it ended quietly, no server_error sent
    assert "error" not in [e["type"] for e in wire.events()]
    gone.set()
    with pytest.raises(Gone):
        simulator.receive(json.dumps({"type": "input_audio_buffer.clear"}))
    with pytest.raises(Gone):
        simulator.receive(b"binary")


def test_options_validate() -> None:
    with pytest.raises(ValueError, match="delta_chunks"):
        SimulatorOptions(delta_chunks=0)
    with pytest.raises(ValueError, match="delta_interval"):
        SimulatorOptions(delta_interval=float("nan"))
    with pytest.raises(ValueError, match="session_lifetime"):
        SimulatorOptions(session_lifetime=0)
    assert SimulatorOptions().answer("") != SimulatorOptions().answer("ping") == "You said: ping"
    assert SimulatorOptions(reply="Hi").answer("ping") == "Hi"


def test_simulator_and_admission_need_no_websockets() -> None:
    # The package's __init__ imports the socket server (and says which extra is missing);
    # a bare package object lets the other modules import on their own.
    code = (
        "import sys, types, pathlib\n"
        "sys.modules['websockets'] = None\n"
        "import realtime_sync\n"
        "package = types.ModuleType('realtime_sync.testing')\n"
        "package.__path__ = [str(pathlib.Path(realtime_sync.__file__).parent / 'testing')]\n"
        "sys.modules['realtime_sync.testing'] = package\n"
        "import realtime_sync.testing._simulator, realtime_sync.testing._admission\n"
        "import realtime_sync.testing._recorder\n"
        "print(sorted(name for name in sys.modules if name.startswith('websockets')))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=30, check=True
    )
    assert result.stdout.strip() == "['websockets']"  # only the blocked entry
