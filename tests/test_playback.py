"""Playing a recording back: turns and their cues, the recorded pace, the rewrites, and the
local server playing a real recording (and a conformance trace) to a fresh client."""

from __future__ import annotations

import base64
import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import CONFORMANCE, KEY

from realtime_sync import RealtimeClient
from realtime_sync.testing import LocalRealtimeServer, Playback, PlaybackError
from realtime_sync.testing._playback import PlaybackCursor, PlaybackTurn, ScheduledEvent

pytestmark = pytest.mark.timeout(30)

WAIT = 10.0  # seconds any wait for the server may take before the test fails


def line(when: float | None, direction: str, event: dict[str, Any]) -> str:
    """One line as RealtimeClient.record() writes it."""
    return json.dumps({"time": when, "direction": direction, "event": event})


def received(when: float, kind: str, **fields: Any) -> str:
    return line(when, "received", {"type": kind, **fields})


def sent(when: float, kind: str, **fields: Any) -> str:
    return line(when, "sent", {"type": kind, **fields})


def nested(depth: int) -> str:
    """A server event whose ``x`` is ``depth`` arrays, one in the other."""
    return '{"type": "error", "x": ' + "[" * depth + "]" * depth + "}"


# Turns: what the client's events release


def test_a_recording_is_cut_into_turns_where_the_server_answered_the_client() -> None:
    playback = Playback.from_lines(
        [
            received(100.0, "session.created"),
            sent(101.0, "session.update"),
            received(101.1, "session.updated"),
            sent(102.0, "input_audio_buffer.append"),
            sent(102.1, "input_audio_buffer.append"),
            sent(103.0, "input_audio_buffer.commit"),
            received(103.05, "input_audio_buffer.committed"),
            sent(104.0, "conversation.item.create"),
            sent(104.0, "response.create"),
            received(104.2, "conversation.item.added"),
            received(104.3, "response.created"),
            sent(104.4, "input_audio_buffer.append"),  # appends answer nothing: no new turn
            received(105.0, "response.done"),
        ]
    )

    assert [
        (turn.cue, [(e.offset, e.event["type"]) for e in turn.events]) for turn in playback.turns
    ] == [
        (None, [(0.0, "session.created")]),
        (("session.update", 1), [(pytest.approx(0.1), "session.updated")]),
        (("input_audio_buffer.commit", 1), [(pytest.approx(0.05), "input_audio_buffer.committed")]),
        (
            ("response.create", 1),  # the last client event before the answer is the cue
            [
                (pytest.approx(0.2), "conversation.item.added"),
                (pytest.approx(0.3), "response.created"),
                (pytest.approx(1.0), "response.done"),
            ],
        ),
    ]
    assert not playback.needs_opening
    assert playback.duration == pytest.approx(0.1 + 0.05 + 1.0)


def test_a_recording_without_session_created_gets_the_servers_own_opening() -> None:
    playback = Playback.from_lines([sent(1.0, "response.create"), received(1.5, "response.done")])
    assert playback.needs_opening
    assert playback.turns == (
        PlaybackTurn(("response.create", 1), (ScheduledEvent(0.5, {"type": "response.done"}),)),
    )


def two_turns(speed: float | None) -> PlaybackCursor:
    playback = Playback.from_lines(
        [
            received(0.0, "session.created"),
            received(0.5, "conversation.created"),
            sent(10.0, "response.create"),
            received(10.25, "response.created"),
            received(11.0, "response.done"),
        ],
        speed=speed,
    )
    return PlaybackCursor(playback)


def types(events: list[dict[str, Any]]) -> list[str]:
    return [event["type"] for event in events]


def test_the_cursor_keeps_the_recorded_pace_from_each_cue() -> None:
    cursor = two_turns(speed=1.0)
    assert cursor.due(50.0) == ([{"type": "session.created"}], 0.5)
    assert cursor.due(50.4) == ([], pytest.approx(0.1))
    assert types(cursor.due(50.5)[0]) == ["conversation.created"]
    assert cursor.due(60.0) == ([], None)  # waits for the client's response.create
    cursor.client_event({"type": "session.update"}, 60.0)  # not the cue
    assert cursor.due(60.0) == ([], None)
    cursor.client_event({"type": "response.create"}, 70.0)
    assert cursor.due(70.1) == ([], pytest.approx(0.15))
    assert types(cursor.due(70.25)[0]) == ["response.created"]
    assert types(cursor.due(80.0)[0]) == ["response.done"]  # late: sent at once
    assert cursor.finished
    assert cursor.due(90.0) == ([], None)


def test_speed_divides_the_waits_and_none_plays_as_fast_as_possible() -> None:
    twice = two_turns(speed=2.0)
    assert twice.due(0.0) == ([{"type": "session.created"}], 0.25)
    fast = two_turns(speed=None)
    assert types(fast.due(0.0)[0]) == ["session.created", "conversation.created"]
    fast.client_event({"type": "response.create"}, 0.0)
    assert types(fast.due(0.0)[0]) == ["response.created", "response.done"]


def test_a_cue_sent_early_waits_for_the_turn_before_it_to_finish() -> None:
    cursor = two_turns(speed=1.0)
    cursor.client_event({"type": "response.create"}, 0.0)  # before conversation.created
    assert types(cursor.due(0.0)[0]) == ["session.created"]
    assert types(cursor.due(0.5)[0]) == ["conversation.created"]
    # The turn starts when the one before it ended (0.5), not at its cue (0.0).
    assert cursor.due(0.6) == ([], pytest.approx(0.15))


def test_the_identifiers_the_client_chose_become_the_connecting_clients() -> None:
    metadata = {"realtime_sync_turn": "evt_recorded", "topic": "weather"}
    playback = Playback.from_lines(
        [
            sent(1.0, "response.create", event_id="evt_recorded", response={"metadata": metadata}),
            received(1.1, "response.created", response={"id": "resp_1", "metadata": metadata}),
            received(1.2, "response.output_text.delta", delta="weather"),
            sent(2.0, "response.cancel", event_id="evt_cancel_recorded"),
            received(
                2.1,
                "error",
                error={"code": "response_cancel_not_active", "event_id": "evt_cancel_recorded"},
            ),
        ],
        speed=None,
    )
    cursor = PlaybackCursor(playback)
    live_tag = {"realtime_sync_turn": "evt_live", "topic": "sports"}
    cursor.client_event(
        {"type": "response.create", "event_id": "evt_live", "response": {"metadata": live_tag}}, 0.0
    )
    cursor.client_event({"type": "response.cancel", "event_id": "evt_cancel_live"}, 0.0)

    created, delta, error = cursor.due(0.0)[0]
    assert created["response"] == {"id": "resp_1", "metadata": live_tag}
    assert delta["delta"] == "weather"  # text is never an echo of an identifier
    assert error["error"]["event_id"] == "evt_cancel_live"
    # The playback itself is untouched: the next connection starts from the recording.
    assert playback.turns[0].events[0].event["response"]["metadata"] == metadata


@pytest.mark.parametrize(
    ("session", "silence"),
    [
        ({"audio": {"output": {"format": {"type": "audio/pcmu"}}}}, b"\xff"),
        ({"output_audio_format": "g711_alaw"}, b"\xd5"),
        ({"audio": {"output": {"format": {"type": "audio/pcm", "rate": 24000}}}}, b"\x00"),
    ],
)
def test_elided_audio_becomes_silence_in_the_sessions_format(
    session: dict[str, Any], silence: bytes
) -> None:
    playback = Playback.from_lines(
        [
            received(0.0, "session.updated", session=session),
            received(0.1, "response.output_audio.delta", delta="<6 bytes of audio>"),
            received(0.2, "response.content_part.done", part={"audio": "<3 bytes of audio>"}),
        ]
    )
    delta, part = (scheduled.event for scheduled in playback.turns[0].events[1:])
    assert base64.b64decode(delta["delta"]) == silence * 6
    assert base64.b64decode(part["part"]["audio"]) == silence * 3


# Files


def test_conformance_traces_play_as_one_turn_of_server_events() -> None:
    trace = Playback.load(CONFORMANCE / "beta_text_response.jsonl")
    assert len(trace.turns) == 1 and trace.turns[0].cue is None
    assert trace.event_types[0] == "response.created" and len(trace.event_types) == 85
    assert trace.needs_opening and trace.duration == 0.0

    wrapped = Playback.load(CONFORMANCE / "error_events.jsonl")  # {"_source": ..., "event": ...}
    assert wrapped.event_types == ["error", "error", "error", "rate_limits.updated"]


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        (["{not json"], "line 1: not a JSON object"),
        (["", "[1, 2]"], "line 2: not a JSON object"),
        ([line(1.0, "sideways", {"type": "error"})], "line 1: direction must be"),
        (['{"event": {"no": "type"}}'], "line 1: no event with a string 'type'"),
        ([line(None, "sent", {"type": "response.create"})], "no server event to play"),
        (['{"time": "noon", "event": {"type": "error"}}'], "line 1: 'time' must be"),
        (['{"time": true, "event": {"type": "error"}}'], "line 1: 'time' must be"),
        # Python's json reads these; no other JSON parser does, so they must not be played.
        (["", '{"type": "response.done", "x": NaN}'], "line 2: NaN is not JSON"),
        (['{"time": Infinity, "event": {"type": "error"}}'], "line 1: Infinity is not JSON"),
        (['{"type": "error", "x": [-Infinity]}'], "line 1: -Infinity is not JSON"),
        # Too deep for json (RecursionError), or for the recursive code that plays it.
        ([nested(5000)], "line 1: nested more than 200 levels deep"),
        ([nested(300)], "line 1: nested more than 200 levels deep"),
    ],
)
def test_what_is_not_a_recording_is_refused_with_its_line(lines: list[str], message: str) -> None:
    with pytest.raises(PlaybackError, match=message):
        Playback.from_lines(lines, source="rec.jsonl")


def test_the_deepest_line_allowed_plays() -> None:
    deepest = nested(199)  # the object and 199 arrays: 200 levels
    playback = Playback.from_lines([deepest], speed=None)
    (event,) = PlaybackCursor(playback).due(0.0)[0]
    assert event == json.loads(deepest)
    with pytest.raises(PlaybackError, match="nested more than 200"):
        Playback.from_lines([nested(200)])


def test_a_file_starting_with_a_byte_order_mark_is_read(tmp_path: Path) -> None:
    path = tmp_path / "bom.jsonl"
    path.write_text(received(1.0, "session.created") + "\n", encoding="utf-8-sig")
    assert Playback.load(path).event_types == ["session.created"]


@pytest.mark.parametrize("speed", [-1.0, float("nan"), float("inf"), True, False])
def test_a_speed_that_is_no_factor_is_refused(speed: float) -> None:
    with pytest.raises(ValueError, match="speed"):
        Playback.from_lines([received(0.0, "session.created")], speed=speed)


# The local server playing a recording


def hold_session(url: str, record: Path | None = None) -> tuple[list[str], list[str]]:
    """What a client does in the recording: a session update and two text turns. Returns
    the types of the server events it got, and its answers."""
    seen: list[str] = []
    client = RealtimeClient(api_key=KEY, url=url, reconnect=False)
    client.on(
        "*", lambda event: None if event.type.startswith("client.") else seen.append(event.type)
    )
    recording = client.record(record) if record is not None else None
    answers = []
    with client:
        client.session.update(session={"instructions": "Be brief."})
        for text in ("one", "two"):
            # rate_limits.updated follows response.done: waited for, so no close cuts it off
            # (at the recorded pace it comes a moment after the answer).
            limits = client.expect("rate_limits.updated")
            answers.append(client.send_text(text, timeout=WAIT).text)
            limits.wait(WAIT)
    if recording is not None:
        recording.close()
    return seen, answers


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str], list[str]]:
    """A recording of a real session with the local server, and what its client saw."""
    path = tmp_path_factory.mktemp("playback") / "session.jsonl"
    with LocalRealtimeServer(api_key=KEY, delta_interval=0.01) as server:
        seen, answers = hold_session(server.url, record=path)
    return path, seen, answers


@pytest.mark.parametrize("speed", [1.0, None], ids=["recorded-pace", "fast"])
def test_a_recording_replayed_to_a_fresh_client_gives_it_the_same_server_events(
    recorded: tuple[Path, list[str], list[str]], speed: float | None
) -> None:
    path, seen, answers = recorded
    playback = Playback.load(path, speed=speed)
    with LocalRealtimeServer(api_key=KEY, playback=playback) as server:
        replayed, replayed_answers = hold_session(server.url)
        client_events = [event["type"] for event in server.received]

    assert replayed == seen
    assert replayed_answers == answers == ["You said: one", "You said: two"]
    assert client_events == [
        "session.update",
        *["conversation.item.create", "response.create"] * 2,
    ]


def test_a_server_given_a_path_plays_it_at_the_recorded_pace(tmp_path: Path) -> None:
    path = tmp_path / "slow.jsonl"
    path.write_text(
        "\n".join(
            [
                sent(5.0, "response.create"),
                received(5.0, "response.created", response={"id": "resp_1"}),
                received(5.4, "response.done", response={"id": "resp_1", "status": "completed"}),
            ]
        )
    )
    with (
        LocalRealtimeServer(api_key=KEY, playback=path) as server,
        RealtimeClient(api_key=KEY, url=server.url, reconnect=False) as client,
    ):
        done = client.expect("response.done")
        started = time.monotonic()
        client.response.create()
        done.wait(WAIT)
        # The server sends response.done 0.4 s after it got the request, sent after `started`.
        assert time.monotonic() - started >= 0.4


def test_fast_playback_ignores_the_recorded_gaps() -> None:
    playback = Playback.from_lines(
        [
            sent(0.0, "response.create"),
            received(0.0, "response.created", response={"id": "resp_1"}),
            received(600.0, "response.done", response={"id": "resp_1", "status": "completed"}),
        ],
        speed=None,
    )
    with (
        LocalRealtimeServer(api_key=KEY, playback=playback) as server,
        RealtimeClient(api_key=KEY, url=server.url, reconnect=False) as client,
    ):
        done = client.expect("response.done")
        client.response.create()
        assert done.wait(WAIT).response.status == "completed"  # not ten minutes later


def test_a_server_side_trace_plays_after_the_servers_own_session_created() -> None:
    """The real beta response of the conformance fixtures, to a GA client: its text deltas
    (beta names, heard under GA names) add up to the text of its done event."""
    deltas: list[str] = []
    finished = threading.Event()
    playback = Playback.load(CONFORMANCE / "beta_text_response.jsonl", speed=None)
    with LocalRealtimeServer(api_key=KEY, playback=playback) as server:
        client = RealtimeClient(api_key=KEY, url=server.url, reconnect=False)
        client.on("response.output_text.delta", lambda event: deltas.append(event.delta))
        text_done: list[str] = []
        client.on("response.output_text.done", lambda event: text_done.append(event.text))
        client.on("response.done", lambda _event: finished.set())
        with client:
            assert client.session.id is not None and client.session.id.startswith("sess_")
            assert finished.wait(WAIT)
    assert len(deltas) == 77
    assert "".join(deltas) == text_done[0]


def test_an_error_names_the_connecting_clients_event() -> None:
    recording = [
        sent(1.0, "response.cancel", event_id="evt_recorded_cancel"),
        received(
            1.01,
            "error",
            error={
                "type": "invalid_request_error",
                "code": "response_cancel_not_active",
                "message": "Cancellation failed: no active response found",
                "param": None,
                "event_id": "evt_recorded_cancel",
            },
        ),
    ]
    playback = Playback.from_lines(recording, speed=None)
    with (
        LocalRealtimeServer(api_key=KEY, playback=playback) as server,
        RealtimeClient(api_key=KEY, url=server.url, reconnect=False) as client,
    ):
        error = client.expect("error")
        event_id = client.response.cancel()
        assert error.wait(WAIT).error.event_id == event_id != "evt_recorded_cancel"


def test_the_servers_controls_still_act_on_a_played_session() -> None:
    playback = Playback.from_lines([received(0.0, "session.created", session={"id": "sess_1"})])
    expired = threading.Event()
    with LocalRealtimeServer(api_key=KEY, playback=playback) as server:
        client = RealtimeClient(api_key=KEY, url=server.url, reconnect=False)
        client.on(
            "error", lambda event: expired.set() if event.error.code == "session_expired" else None
        )
        with client:
            assert client.session.id == "sess_1"
            pushed = client.expect("rate_limits.updated")  # before it can arrive
            server.push({"type": "rate_limits.updated", "rate_limits": []})
            pushed.wait(WAIT)
            server.expire_sessions()
            assert expired.wait(WAIT)
