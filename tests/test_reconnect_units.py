"""Unit tests of the reconnect machinery's pure parts: the policy and its backoff
(``_reconnect``), state replay (``_replay``), the gap's send queue (``_gap``), the process
timer (``_clock``) and the conversation's carry-over across sessions (``_conversation``).

No sockets and no sleeps beyond a few tens of milliseconds. Replayed events are checked
against the official ``openai`` package's models of ``conversation.item.create``, strictly
and with no undeclared key, as ``test_conformance.py`` does for everything a client sends.
"""

from __future__ import annotations

import base64
import json
import logging
import math
import random
import statistics
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import attrs
import pydantic
import pytest
from openai.types.beta.realtime import ConversationItemCreateEvent as BetaItemCreate
from openai.types.realtime import ConversationItemCreateEvent as GAItemCreate
from test_conformance import undeclared_keys
from test_conversation import message as msg

from realtime_sync import NotConnectedError, SendQueueFullError, decode_event
from realtime_sync._clock import _Clock, _clock, call_later
from realtime_sync._conversation import ConversationState, Item
from realtime_sync._failures import retry_after
from realtime_sync._gap import SendQueue
from realtime_sync._reconnect import LONGEST_RETRY_AFTER, ReconnectPolicy, default_session_seconds
from realtime_sync._replay import NotReplayed, ReplayReport, merge_session, replay_events

DIALECTS = ("ga", "beta")
WAIT = 2.0  # seconds: the bound of every wait for another thread (never reached when passing)


def wait_until(condition: Callable[[], bool], timeout: float = WAIT) -> bool:
    """Poll ``condition`` every few ms until it holds or ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.002)
    return condition()


# --- _reconnect: ReconnectPolicy ------------------------------------------------------------------


def test_policy_defaults() -> None:
    policy = ReconnectPolicy()
    assert policy.max_attempts == 10
    assert policy.initial_delay == 0.5 and policy.max_delay == 30.0
    assert policy.replay is True and policy.retry_interrupted is False
    assert policy.queue_max_events == 1000 and policy.queue_max_bytes == 8 * 1024 * 1024
    assert policy.gap_audio == "drop" and policy.gap_audio_seconds == 10.0
    assert policy.rollover is True
    assert policy.expiring_notice == 60.0 and policy.rollover_window == 120.0
    assert policy.quiet_seconds == 1.0 and policy.session_seconds is None


def test_policy_is_frozen() -> None:
    policy = ReconnectPolicy()
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        policy.max_attempts = 3  # type: ignore[misc]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("max_attempts", None),
        ("max_attempts", 1),
        ("initial_delay", 0.0),
        ("initial_delay", 0),
        ("max_delay", 0.0),
        ("max_delay", 1e9),
        ("queue_max_events", 1),
        ("queue_max_bytes", 1),
        ("gap_audio", "drop"),
        ("gap_audio", "queue"),
        ("gap_audio_seconds", 0.0),
        ("expiring_notice", 0.0),
        ("rollover_window", 0.0),
        ("quiet_seconds", 0.0),
        ("session_seconds", None),
        ("session_seconds", 0.001),
    ],
)
def test_policy_accepts_boundary_values(field: str, value: Any) -> None:
    policy = ReconnectPolicy(**{field: value})
    assert getattr(policy, field) == value


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("max_attempts", 0),
        ("max_attempts", -1),
        ("initial_delay", -0.001),
        ("initial_delay", math.nan),
        ("max_delay", -1.0),
        ("max_delay", math.nan),
        ("queue_max_events", 0),
        ("queue_max_events", -5),
        ("queue_max_bytes", 0),
        ("queue_max_bytes", -1),
        ("gap_audio", "buffer"),
        ("gap_audio", ""),
        ("gap_audio", None),
        ("gap_audio", "DROP"),
        ("gap_audio_seconds", -0.5),
        ("gap_audio_seconds", math.nan),
        ("expiring_notice", -1.0),
        ("rollover_window", -1.0),
        ("quiet_seconds", -0.1),
        ("session_seconds", 0),
        ("session_seconds", 0.0),
        ("session_seconds", -60.0),
        ("session_seconds", math.nan),
    ],
)
def test_policy_rejects_out_of_range_values(field: str, value: Any) -> None:
    with pytest.raises(ValueError, match=field):
        ReconnectPolicy(**{field: value})


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("max_attempts", "3"),
        ("initial_delay", None),
        ("initial_delay", "0.5"),
        ("max_delay", None),
        ("max_delay", "30"),
        ("queue_max_events", None),
        ("queue_max_events", "10"),
        ("queue_max_bytes", None),
        ("gap_audio_seconds", None),
        ("expiring_notice", None),
        ("rollover_window", "x"),
        ("quiet_seconds", None),
        ("session_seconds", "60"),
    ],
)
def test_policy_rejects_values_of_the_wrong_type(field: str, value: Any) -> None:
    with pytest.raises((TypeError, ValueError)):
        ReconnectPolicy(**{field: value})


@pytest.mark.parametrize("attempt", [1, 2, 3, 4, 5, 6, 7, 8, 12, 100])
def test_delay_is_full_jitter_within_the_capped_exponential(attempt: int) -> None:
    policy = ReconnectPolicy(initial_delay=0.25, max_delay=8.0)
    cap = min(8.0, 0.25 * 2 ** (attempt - 1))
    rng = random.Random(attempt)
    draws = [policy.delay(attempt, rng=rng) for _ in range(2000)]
    assert all(0.0 <= draw <= cap for draw in draws)
    # Full jitter: the draws cover the whole range, down near 0 and up near the cap.
    assert min(draws) < 0.02 * cap and max(draws) > 0.98 * cap


def test_delay_is_reproducible_with_a_seeded_rng() -> None:
    policy = ReconnectPolicy()
    first = [policy.delay(n, rng=random.Random(7)) for n in range(1, 10)]
    second = [policy.delay(n, rng=random.Random(7)) for n in range(1, 10)]
    assert first == second


@pytest.mark.parametrize(("attempt", "cap"), [(1, 0.5), (3, 2.0), (5, 8.0), (9, 30.0)])
def test_delay_mean_is_about_half_the_cap(attempt: int, cap: float) -> None:
    policy = ReconnectPolicy(initial_delay=0.5, max_delay=30.0)
    rng = random.Random(20240601 + attempt)
    draws = [policy.delay(attempt, rng=rng) for _ in range(20000)]
    # Uniform on [0, cap]: mean cap/2, standard error cap/sqrt(12 * 20000) (about 0.002 cap).
    assert statistics.fmean(draws) == pytest.approx(cap / 2, rel=0.05)
    # And spread like a uniform: its variance is cap**2 / 12.
    assert statistics.pvariance(draws) == pytest.approx(cap**2 / 12, rel=0.1)


@pytest.mark.parametrize("attempt", [63, 64, 100, 1024, 10_000, 10**9])
def test_delay_saturates_at_max_delay_for_huge_attempts(attempt: int) -> None:
    policy = ReconnectPolicy(initial_delay=0.5, max_delay=30.0)
    rng = random.Random(attempt)
    draws = [policy.delay(attempt, rng=rng) for _ in range(2000)]
    assert all(0.0 <= draw <= 30.0 for draw in draws)
    assert max(draws) > 29.0
    assert statistics.fmean(draws) == pytest.approx(15.0, rel=0.1)


def test_delay_does_not_overflow_with_a_huge_initial_delay() -> None:
    policy = ReconnectPolicy(initial_delay=1e300, max_delay=5.0)
    assert 0.0 <= policy.delay(10_000, rng=random.Random(1)) <= 5.0


def test_delay_with_zero_delays_is_zero() -> None:
    assert ReconnectPolicy(initial_delay=0.0).delay(5, rng=random.Random(0)) == 0.0
    assert ReconnectPolicy(max_delay=0.0).delay(5, rng=random.Random(0)) == 0.0


def test_delay_without_rng_uses_the_module_random() -> None:
    policy = ReconnectPolicy(initial_delay=1.0, max_delay=4.0)
    for attempt in (1, 2, 3, 50):
        assert 0.0 <= policy.delay(attempt) <= min(4.0, 2.0 ** (attempt - 1))


def test_retry_after_is_a_floor() -> None:
    policy = ReconnectPolicy(initial_delay=0.5, max_delay=30.0)
    rng = random.Random(3)
    # Longer than any draw: the server's Retry-After wins, even beyond max_delay.
    assert all(policy.delay(1, retry_after=0.75, rng=rng) == 0.75 for _ in range(200))
    assert policy.delay(20, retry_after=120.0, rng=rng) == 120.0
    # Shorter than the cap: never below it, sometimes above it (the jitter).
    draws = [policy.delay(4, retry_after=1.0, rng=rng) for _ in range(2000)]
    assert all(1.0 <= draw <= 4.0 for draw in draws)
    assert any(draw == 1.0 for draw in draws) and any(draw > 3.9 for draw in draws)
    # None and 0 are no floor at all.
    with_none = [policy.delay(2, None, random.Random(9)) for _ in range(3)]
    with_zero = [policy.delay(2, 0.0, random.Random(9)) for _ in range(3)]
    plain = [policy.delay(2, rng=random.Random(9)) for _ in range(3)]
    assert with_none == with_zero == plain


def test_gives_up_after() -> None:
    policy = ReconnectPolicy(max_attempts=3)
    assert [policy.gives_up_after(n) for n in (1, 2, 3, 4, 100)] == [
        False,
        False,
        True,
        True,
        True,
    ]
    assert ReconnectPolicy(max_attempts=1).gives_up_after(1)
    forever = ReconnectPolicy(max_attempts=None)
    assert not any(forever.gives_up_after(n) for n in (1, 10, 10**9))


def test_default_session_seconds() -> None:
    assert default_session_seconds(azure=True) == 1800.0
    assert default_session_seconds(azure=False) == 3600.0
    assert default_session_seconds(True) == 30 * 60
    assert default_session_seconds(False) == 60 * 60


# --- _replay: merge_session -----------------------------------------------------------------------


def test_merge_session_merges_nested_objects_and_replaces_the_rest() -> None:
    config = {
        "type": "realtime",
        "instructions": "be brief",
        "audio": {
            "input": {"format": {"type": "audio/pcm", "rate": 24000}, "turn_detection": None},
            "output": {"voice": "alloy"},
        },
        "tools": [{"type": "function", "name": "a"}, {"type": "function", "name": "b"}],
        "output_modalities": ["audio"],
    }
    snapshot = json.loads(json.dumps(config))
    update = {
        "audio": {"input": {"format": {"type": "audio/pcmu"}}, "output": {"speed": 1.2}},
        "tools": [{"type": "function", "name": "c"}],
        "output_modalities": ["text"],
        "instructions": "be kind",
        "tool_choice": "auto",
    }
    update_snapshot = json.loads(json.dumps(update))
    merged = merge_session(config, update)
    assert merged == {
        "type": "realtime",
        "instructions": "be kind",
        "audio": {
            "input": {"format": {"type": "audio/pcmu", "rate": 24000}, "turn_detection": None},
            "output": {"voice": "alloy", "speed": 1.2},
        },
        "tools": [{"type": "function", "name": "c"}],
        "output_modalities": ["text"],
        "tool_choice": "auto",
    }
    # Neither input was mutated, nested objects included.
    assert config == snapshot and update == update_snapshot


def test_merge_session_replaces_lists_even_with_empty_ones() -> None:
    merged = merge_session({"tools": [{"name": "a"}]}, {"tools": []})
    assert merged == {"tools": []}


def test_merge_session_an_object_replaces_a_scalar_and_the_other_way_round() -> None:
    assert merge_session({"turn_detection": None}, {"turn_detection": {"type": "server_vad"}}) == {
        "turn_detection": {"type": "server_vad"}
    }
    assert merge_session({"turn_detection": {"type": "server_vad"}}, {"turn_detection": None}) == {
        "turn_detection": None
    }


def test_merge_session_returns_a_new_dict() -> None:
    config = {"a": 1}
    merged = merge_session(config, {})
    assert merged == config and merged is not config
    merged["b"] = 2
    assert config == {"a": 1}


def test_merge_session_result_does_not_alias_nested_update_objects() -> None:
    config: dict[str, Any] = {"audio": {"output": {"voice": "alloy"}}}
    update: dict[str, Any] = {"audio": {"output": {"speed": 1.0}}}
    merged = merge_session(config, update)
    merged["audio"]["output"]["voice"] = "verse"
    assert config == {"audio": {"output": {"voice": "alloy"}}}
    assert update == {"audio": {"output": {"speed": 1.0}}}


def test_merge_session_repeatedly_accumulates_updates() -> None:
    config: dict[str, Any] = {}
    for update in (
        {"instructions": "one"},
        {"audio": {"output": {"voice": "alloy"}}},
        {"audio": {"input": {"noise_reduction": {"type": "near_field"}}}},
        {"instructions": "two"},
    ):
        config = merge_session(config, update)
    assert config == {
        "instructions": "two",
        "audio": {
            "output": {"voice": "alloy"},
            "input": {"noise_reduction": {"type": "near_field"}},
        },
    }


# --- _replay: replay_events -----------------------------------------------------------------------

_MODELS: dict[str, type[pydantic.BaseModel]] = {"ga": GAItemCreate, "beta": BetaItemCreate}


def assert_official(event: Mapping[str, Any], dialect: str) -> pydantic.BaseModel:
    """Fail unless ``event`` is a valid ``conversation.item.create`` of ``dialect``, strictly
    (it is JSON: no coercion) and with no key the official model does not declare."""
    model = _MODELS[dialect]
    try:
        parsed = model.model_validate(json.loads(json.dumps(event)), strict=True)
    except pydantic.ValidationError as error:
        pytest.fail(f"not a valid {dialect} conversation.item.create: {error}\n{event!r}")
    problems = undeclared_keys(event, parsed)
    if problems:
        pytest.fail(f"{dialect} event has undeclared keys: {problems}\n{event!r}")
    return parsed


def make_item(item_id: str, **fields: Any) -> Item:
    """An :class:`Item` snapshot; unspecified fields empty."""
    values: dict[str, Any] = {
        "id": item_id,
        "type": "message",
        "role": None,
        "status": "completed",
        "text": "",
        "transcript": "",
        "audio": b"",
        "call_id": None,
        "name": None,
        "arguments": None,
        "output": None,
        "truncated_ms": None,
        "item": None,
    }
    values.update(fields)
    return Item(**values)


def replay_one(item: Item, dialect: str) -> tuple[list[dict[str, Any]], list[NotReplayed]]:
    events, skipped = replay_events([item], dialect)
    for event in events:
        assert_official(event, dialect)
    return events, skipped


def test_the_validator_itself_rejects_bad_events() -> None:
    # The oracle must be able to fail: other-dialect content, unknown keys, wrong types.
    beta_assistant = {
        "type": "conversation.item.create",
        "item": {
            "type": "message",
            "role": "assistant",
            "content": [{"type": "text", "text": "x"}],
        },
    }
    assert_official(beta_assistant, "beta")
    with pytest.raises(pytest.fail.Exception):
        assert_official(beta_assistant, "ga")
    extra = {
        "type": "conversation.item.create",
        "item": {"type": "function_call_output", "call_id": "c", "output": "o", "result": "o"},
    }
    with pytest.raises(pytest.fail.Exception, match="undeclared"):
        assert_official(extra, "ga")
    typed = {
        "type": "conversation.item.create",
        "item": {"type": "function_call_output", "call_id": "c", "output": 5},
    }
    with pytest.raises(pytest.fail.Exception):
        assert_official(typed, "ga")


@pytest.mark.parametrize("dialect", DIALECTS)
@pytest.mark.parametrize("role", ["user", "system"])
def test_user_and_system_text_messages_are_replayed(dialect: str, role: str) -> None:
    item = make_item(f"{role}_1", role=role, text="hello there")
    events, skipped = replay_one(item, dialect)
    assert skipped == []
    assert events == [
        {
            "type": "conversation.item.create",
            "item": {
                "id": f"{role}_1",
                "type": "message",
                "role": role,
                "content": [{"type": "input_text", "text": "hello there"}],
            },
        }
    ]


@pytest.mark.parametrize("dialect", DIALECTS)
def test_a_user_audio_message_is_replayed_as_its_transcript(dialect: str) -> None:
    item = make_item(
        "u_audio", role="user", transcript="turn the lights on", audio=b"\x00\x01" * 100
    )
    events, skipped = replay_one(item, dialect)
    assert skipped == []
    (event,) = events
    assert event["item"] == {
        "id": "u_audio",
        "type": "message",
        "role": "user",
        "content": [{"type": "input_text", "text": "turn the lights on"}],
    }
    assert all(part["type"] != "input_audio" for part in event["item"]["content"])


@pytest.mark.parametrize("dialect", DIALECTS)
def test_a_user_message_with_text_prefers_the_text_over_the_transcript(dialect: str) -> None:
    item = make_item("u", role="user", text="typed", transcript="spoken")
    events, _ = replay_one(item, dialect)
    assert events[0]["item"]["content"] == [{"type": "input_text", "text": "typed"}]


@pytest.mark.parametrize("dialect", DIALECTS)
@pytest.mark.parametrize("role", ["user", "system"])
def test_a_message_without_text_or_transcript_is_not_replayed(dialect: str, role: str) -> None:
    item = make_item("silent", role=role, audio=b"\x00" * 480)
    events, skipped = replay_one(item, dialect)
    assert events == []
    assert skipped == [NotReplayed("silent", skipped[0].reason)]
    assert role in skipped[0].reason and "transcript" in skipped[0].reason


@pytest.mark.parametrize(("dialect", "part"), [("ga", "output_text"), ("beta", "text")])
def test_an_assistant_text_message_is_replayed_in_the_dialects_part_type(
    dialect: str, part: str
) -> None:
    item = make_item("a_text", role="assistant", text="It is sunny.")
    events, skipped = replay_one(item, dialect)
    assert skipped == []
    assert events == [
        {
            "type": "conversation.item.create",
            "item": {
                "id": "a_text",
                "type": "message",
                "role": "assistant",
                "content": [{"type": part, "text": "It is sunny."}],
            },
        }
    ]


@pytest.mark.parametrize(("dialect", "part"), [("ga", "output_text"), ("beta", "text")])
def test_an_assistant_audio_message_is_replayed_as_its_transcript(dialect: str, part: str) -> None:
    item = make_item("a_audio", role="assistant", transcript="Hello!", audio=b"\x01\x00" * 2400)
    events, skipped = replay_one(item, dialect)
    assert skipped == []
    assert events[0]["item"]["content"] == [{"type": part, "text": "Hello!"}]
    assert events[0]["item"]["role"] == "assistant"


@pytest.mark.parametrize("dialect", DIALECTS)
def test_an_assistant_message_with_nothing_is_not_replayed(dialect: str) -> None:
    item = make_item("a_empty", role="assistant", audio=b"\x01\x00" * 2400, truncated_ms=0)
    events, skipped = replay_one(item, dialect)
    assert events == []
    (skip,) = skipped
    assert skip.item_id == "a_empty" and "assistant" in skip.reason


@pytest.mark.parametrize("dialect", DIALECTS)
@pytest.mark.parametrize("role", [None, "developer", "tool"])
def test_a_message_with_an_unknown_role_is_not_replayed(dialect: str, role: str | None) -> None:
    events, skipped = replay_one(make_item("m", role=role, text="x"), dialect)
    assert events == []
    assert skipped[0].item_id == "m" and repr(role) in skipped[0].reason


@pytest.mark.parametrize("dialect", DIALECTS)
def test_a_completed_function_call_is_replayed(dialect: str) -> None:
    item = make_item(
        "fc_1",
        type="function_call",
        call_id="call_1",
        name="get_weather",
        arguments='{"city": "Paris"}',
    )
    events, skipped = replay_one(item, dialect)
    assert skipped == []
    assert events == [
        {
            "type": "conversation.item.create",
            "item": {
                "id": "fc_1",
                "type": "function_call",
                "call_id": "call_1",
                "name": "get_weather",
                "arguments": '{"city": "Paris"}',
            },
        }
    ]


@pytest.mark.parametrize("dialect", DIALECTS)
def test_a_completed_function_call_without_arguments_gets_empty_ones(dialect: str) -> None:
    for arguments in (None, ""):
        item = make_item("fc", type="function_call", call_id="c", name="now", arguments=arguments)
        events, _ = replay_one(item, dialect)
        assert events[0]["item"]["arguments"] == "{}"


@pytest.mark.parametrize("dialect", DIALECTS)
@pytest.mark.parametrize(
    "fields",
    [
        {"status": "in_progress"},
        {"status": "incomplete"},
        {"status": None},
        {"call_id": None},
        {"name": None},
        {"name": ""},
    ],
)
def test_an_unfinished_function_call_is_not_replayed(dialect: str, fields: dict[str, Any]) -> None:
    values: dict[str, Any] = {
        "type": "function_call",
        "call_id": "call_2",
        "name": "get_weather",
        "arguments": '{"ci',
    }
    values.update(fields)
    events, skipped = replay_one(make_item("fc_2", **values), dialect)
    assert events == []
    (skip,) = skipped
    assert skip.item_id == "fc_2" and "function call" in skip.reason


@pytest.mark.parametrize("dialect", DIALECTS)
def test_a_function_call_output_follows_its_call(dialect: str) -> None:
    call = make_item(
        "fc", type="function_call", call_id="call_9", name="lookup", arguments='{"q": 1}'
    )
    output = make_item("fo", type="function_call_output", call_id="call_9", output='{"a": 2}')
    events, skipped = replay_events([call, output], dialect)
    assert skipped == []
    for event in events:
        assert_official(event, dialect)
    assert events[1] == {
        "type": "conversation.item.create",
        "item": {
            "id": "fo",
            "type": "function_call_output",
            "call_id": "call_9",
            "output": '{"a": 2}',
        },
    }


@pytest.mark.parametrize("dialect", DIALECTS)
def test_a_function_call_output_without_its_replayed_call_is_not_replayed(dialect: str) -> None:
    cut_off = make_item(
        "fc", type="function_call", status="in_progress", call_id="call_x", name="f"
    )
    orphan_output = make_item("fo", type="function_call_output", call_id="call_x", output="1")
    never_called = make_item("fo2", type="function_call_output", call_id="call_y", output="2")
    events, skipped = replay_events([cut_off, orphan_output, never_called], dialect)
    assert events == []
    assert [skip.item_id for skip in skipped] == ["fc", "fo", "fo2"]
    assert "not replayed" in skipped[1].reason and "not replayed" in skipped[2].reason


@pytest.mark.parametrize("dialect", DIALECTS)
def test_an_output_before_its_call_is_not_replayed(dialect: str) -> None:
    # Replay sends items in order: an output ahead of its call would reference nothing.
    call = make_item("fc", type="function_call", call_id="c", name="f", arguments="{}")
    output = make_item("fo", type="function_call_output", call_id="c", output="1")
    events, skipped = replay_events([output, call], dialect)
    assert [event["item"]["id"] for event in events] == ["fc"]
    assert [skip.item_id for skip in skipped] == ["fo"]


@pytest.mark.parametrize("dialect", DIALECTS)
@pytest.mark.parametrize(
    "item_type",
    ["mcp_call", "mcp_list_tools", "mcp_approval_request", "mcp_approval_response", "image"],
)
def test_item_types_clients_cannot_create_are_not_replayed(dialect: str, item_type: str) -> None:
    events, skipped = replay_one(make_item("x", type=item_type, text="t"), dialect)
    assert events == []
    (skip,) = skipped
    assert skip.item_id == "x" and item_type in skip.reason


@pytest.mark.parametrize("dialect", DIALECTS)
def test_an_unannounced_item_is_not_replayed(dialect: str) -> None:
    # Deltas that arrived before their item: no type known.
    events, skipped = replay_one(make_item("x", type=None, role=None, text="t"), dialect)
    assert events == []
    assert skipped[0].item_id == "x" and "unannounced" in skipped[0].reason


def conversation_items() -> list[Item]:
    """One of every kind, in conversation order."""
    return [
        make_item("sys", role="system", text="You are terse."),
        make_item("u1", role="user", text="What's the weather in Paris?"),
        make_item("u_noise", role="user", audio=b"\x00" * 960),
        make_item("a_call", type="function_call", call_id="c1", name="weather", arguments="{}"),
        make_item("a_out", type="function_call_output", call_id="c1", output='{"sun": true}'),
        make_item("a_cut", type="function_call", status="in_progress", call_id="c2", name="w"),
        make_item("a_cut_out", type="function_call_output", call_id="c2", output="late"),
        make_item("mcp", type="mcp_call"),
        make_item("a1", role="assistant", transcript="Sunny.", audio=b"\x01\x00" * 480),
        make_item("a_blank", role="assistant"),
        make_item("u2", role="user", transcript="thanks", audio=b"\x00" * 960),
        make_item("a2", role="assistant", text="You're welcome."),
    ]


@pytest.mark.parametrize("dialect", DIALECTS)
def test_a_whole_conversation_keeps_ids_and_order(dialect: str) -> None:
    items = conversation_items()
    events, skipped = replay_events(items, dialect)
    for event in events:
        assert event["type"] == "conversation.item.create"
        assert_official(event, dialect)
    assert [event["item"]["id"] for event in events] == [
        "sys",
        "u1",
        "a_call",
        "a_out",
        "a1",
        "u2",
        "a2",
    ]
    assert [skip.item_id for skip in skipped] == ["u_noise", "a_cut", "a_cut_out", "mcp", "a_blank"]
    assert all(skip.reason for skip in skipped)
    # Every item is accounted for exactly once.
    replayed = {event["item"]["id"] for event in events}
    assert replayed | {skip.item_id for skip in skipped} == {item.id for item in items}
    assert not replayed & {skip.item_id for skip in skipped}
    # Nothing the server would refuse from a client: no audio, no status, no object.
    for event in events:
        assert set(event["item"]) <= {"id", "type", "role", "content", "call_id", "name"} | {
            "arguments",
            "output",
        }


def test_replay_events_accepts_any_iterable_and_empty() -> None:
    assert replay_events([], "ga") == ([], [])
    assert replay_events(iter(()), "beta") == ([], [])
    events, _ = replay_events((item for item in conversation_items()), "ga")
    assert len(events) == 7


def test_replay_events_does_not_share_state_between_calls() -> None:
    call = make_item("fc", type="function_call", call_id="c", name="f", arguments="{}")
    output = make_item("fo", type="function_call_output", call_id="c", output="1")
    replay_events([call], "ga")
    events, skipped = replay_events([output], "ga")
    assert events == [] and [skip.item_id for skip in skipped] == ["fo"]


def test_replay_report_to_dict_is_json_serialisable() -> None:
    _, skipped = replay_events(conversation_items(), "ga")
    report = ReplayReport(
        replayed=("sys", "u1"),
        not_replayed=tuple(skipped),
        session_updated=True,
        sent=3,
        dropped_audio_ms=1234.5,
        dropped=7,
    )
    data = report.to_dict()
    assert json.loads(json.dumps(data)) == data
    assert data == {
        "replayed": ["sys", "u1"],
        "not_replayed": [{"item_id": skip.item_id, "reason": skip.reason} for skip in skipped],
        "session_updated": True,
        "sent": 3,
        "dropped_audio_ms": 1234.5,
        "dropped": 7,
    }
    empty = ReplayReport().to_dict()
    assert json.loads(json.dumps(empty)) == {
        "replayed": [],
        "not_replayed": [],
        "session_updated": False,
        "sent": 0,
        "dropped_audio_ms": 0.0,
        "dropped": 0,
    }


# --- _gap: SendQueue ------------------------------------------------------------------------------


def queue(**policy: Any) -> SendQueue:
    return SendQueue(ReconnectPolicy(**policy))


def offer(
    gap: SendQueue, event_id: str, data: bytes = b"{}", audio_ms: float | None = None
) -> bool:
    with gap.lock:
        return gap.offer(event_id, data, audio_ms)


def release(gap: SendQueue, send: Callable[[bytes], None]) -> tuple[int, int, float]:
    with gap.lock:
        return gap.release(send)


def test_send_queue_full_error_is_a_not_connected_error() -> None:
    assert issubclass(SendQueueFullError, NotConnectedError)


def test_not_holding_offers_nothing() -> None:
    gap = queue()
    assert gap.holding is False
    assert offer(gap, "e1") is False
    assert offer(gap, "a1", b"audio", 20.0) is False
    assert not gap.contains("e1")
    sent: list[bytes] = []
    assert release(gap, sent.append) == (0, 0, 0.0)
    assert sent == []


def test_holding_queues_in_order_and_release_sends_in_order() -> None:
    gap = queue()
    gap.hold()
    payloads = [json.dumps({"type": "x", "n": n}).encode() for n in range(20)]
    for n, data in enumerate(payloads):
        assert offer(gap, f"e{n}", data) is True
    assert gap.contains("e0") and gap.contains("e19") and not gap.contains("e20")
    sent: list[bytes] = []
    assert release(gap, sent.append) == (20, 0, 0.0)
    assert sent == payloads
    assert gap.holding is False
    assert not gap.contains("e0")
    # No longer holding: sends go straight out again.
    assert offer(gap, "late") is False


def test_queue_max_events_refuses_and_queues_nothing() -> None:
    gap = queue(queue_max_events=3)
    gap.hold()
    for n in range(3):
        assert offer(gap, f"e{n}")
    with pytest.raises(SendQueueFullError, match="queue_max_events=3"):
        offer(gap, "e3")
    assert not gap.contains("e3")
    with pytest.raises(NotConnectedError):  # and catchable as its base class
        offer(gap, "e4")
    sent: list[bytes] = []
    assert release(gap, sent.append)[0] == 3
    assert len(sent) == 3


def test_queue_max_bytes_refuses_and_queues_nothing() -> None:
    gap = queue(queue_max_bytes=100)
    gap.hold()
    assert offer(gap, "a", b"x" * 60)
    with pytest.raises(SendQueueFullError, match="queue_max_bytes=100"):
        offer(gap, "b", b"y" * 41)
    assert not gap.contains("b")
    assert offer(gap, "c", b"z" * 40)  # exactly at the bound fits
    with pytest.raises(SendQueueFullError):
        offer(gap, "d", b"!")
    sent: list[bytes] = []
    assert release(gap, sent.append) == (2, 0, 0.0)
    assert sent == [b"x" * 60, b"z" * 40]


def test_a_single_event_larger_than_queue_max_bytes_is_refused() -> None:
    gap = queue(queue_max_bytes=10)
    gap.hold()
    with pytest.raises(SendQueueFullError):
        offer(gap, "big", b"x" * 11)
    assert not gap.contains("big")
    assert release(gap, lambda data: None) == (0, 0, 0.0)


def test_the_byte_bound_is_freed_by_release() -> None:
    gap = queue(queue_max_bytes=10, queue_max_events=2)
    gap.hold()
    assert offer(gap, "a", b"x" * 10)
    release(gap, lambda data: None)
    gap.hold()
    assert offer(gap, "b", b"y" * 10)  # the bound counts what waits now, not ever
    assert offer(gap, "c", b"")  # nor is an empty event over the byte bound
    with pytest.raises(SendQueueFullError, match="queue_max_events"):
        offer(gap, "d", b"")


def test_gap_audio_drop_counts_dropped_appends_and_ms() -> None:
    gap = queue(gap_audio="drop")
    gap.hold()
    assert offer(gap, "e1", b"commit")
    assert offer(gap, "a1", b"append1", 20.0) is True  # handled: dropped, not sent directly
    assert offer(gap, "a2", b"append2", 100.0) is True
    assert offer(gap, "e2", b"create")
    assert not gap.contains("a1") and not gap.contains("a2")
    sent: list[bytes] = []
    assert release(gap, sent.append) == (2, 2, 120.0)
    assert sent == [b"commit", b"create"]
    # Counts are per gap: the next one starts from zero.
    gap.hold()
    assert release(gap, sent.append) == (0, 0, 0.0)


def test_dropped_audio_does_not_count_against_the_queue_bounds() -> None:
    gap = queue(gap_audio="drop", queue_max_events=1, queue_max_bytes=5)
    gap.hold()
    for n in range(50):
        assert offer(gap, f"a{n}", b"x" * 1000, 20.0)
    assert offer(gap, "e", b"12345")
    assert release(gap, lambda data: None) == (1, 50, 1000.0)


def test_gap_audio_queue_keeps_up_to_the_limit_then_drops_the_rest() -> None:
    gap = queue(gap_audio="queue", gap_audio_seconds=0.1)  # 100 ms
    gap.hold()
    for n in range(8):  # 8 x 20 ms: 5 fit, 3 dropped
        assert offer(gap, f"a{n}", f"append{n}".encode(), 20.0)
    assert offer(gap, "e", b"commit")  # other events still queue
    assert [gap.contains(f"a{n}") for n in range(8)] == [True] * 5 + [False] * 3
    sent: list[bytes] = []
    assert release(gap, sent.append) == (6, 3, 60.0)
    assert sent == [f"append{n}".encode() for n in range(5)] + [b"commit"]


def test_gap_audio_queue_budget_resets_after_release() -> None:
    gap = queue(gap_audio="queue", gap_audio_seconds=0.05)
    gap.hold()
    assert offer(gap, "a0", b"x", 50.0) and gap.contains("a0")
    release(gap, lambda data: None)
    gap.hold()
    assert offer(gap, "a1", b"x", 50.0) and gap.contains("a1")
    assert offer(gap, "a2", b"x", 1.0) and not gap.contains("a2")
    assert release(gap, lambda data: None) == (1, 1, 1.0)


def test_gap_audio_queue_with_zero_seconds_drops_everything() -> None:
    gap = queue(gap_audio="queue", gap_audio_seconds=0.0)
    gap.hold()
    assert offer(gap, "a", b"x", 10.0)
    assert not gap.contains("a")
    assert release(gap, lambda data: None) == (0, 1, 10.0)


def test_gap_audio_queue_drops_the_rest_once_it_dropped() -> None:
    # "queue up to gap_audio_seconds of it, then drop the rest": once a chunk was dropped,
    # a later (smaller) chunk must not be queued after it, or the new session gets audio
    # with a hole in the middle.
    gap = queue(gap_audio="queue", gap_audio_seconds=0.1)  # 100 ms
    gap.hold()
    assert offer(gap, "a0", b"first 60 ms", 60.0)
    assert offer(gap, "a1", b"next 60 ms", 60.0)  # over the budget: dropped
    assert offer(gap, "a2", b"then 20 ms", 20.0)
    assert gap.contains("a0") and not gap.contains("a1")
    assert not gap.contains("a2"), "audio queued after a dropped chunk: a hole in the audio"
    sent: list[bytes] = []
    assert release(gap, sent.append) == (1, 2, 80.0)


def test_gap_audio_queue_still_obeys_the_event_bound() -> None:
    gap = queue(gap_audio="queue", gap_audio_seconds=10.0, queue_max_events=2)
    gap.hold()
    assert offer(gap, "a0", b"x", 20.0)
    assert offer(gap, "a1", b"x", 20.0)
    with pytest.raises(SendQueueFullError):
        offer(gap, "a2", b"x", 20.0)
    assert release(gap, lambda data: None) == (2, 0, 0.0)


class FailOn:
    """A ``send`` that raises on its ``n``-th call (1-based) and records what it sent."""

    def __init__(self, n: int | None) -> None:
        self.n = n
        self.calls = 0
        self.sent: list[bytes] = []

    def __call__(self, data: bytes) -> None:
        self.calls += 1
        if self.calls == self.n:
            raise ConnectionError("lost again")
        self.sent.append(data)


def test_a_failing_send_leaves_that_event_and_the_later_ones_queued() -> None:
    gap = queue(gap_audio="drop")
    gap.hold()
    payloads = [f"event{n}".encode() for n in range(6)]
    for n, data in enumerate(payloads):
        offer(gap, f"e{n}", data)
    offer(gap, "audio", b"append", 40.0)  # dropped, counted
    first = FailOn(3)
    with pytest.raises(ConnectionError), gap.lock:
        gap.release(first)
    assert first.sent == payloads[:2]
    assert gap.holding is True
    assert [gap.contains(f"e{n}") for n in range(6)] == [False, False, True, True, True, True]
    # Still holding: later sends queue behind the unsent ones.
    assert offer(gap, "e6", b"event6")
    second = FailOn(None)
    assert release(gap, second) == (5, 1, 40.0)
    assert second.sent == [*payloads[2:], b"event6"]  # each exactly once, in order
    assert gap.holding is False


def test_after_a_failing_send_the_bounds_count_only_what_still_waits() -> None:
    gap = queue(queue_max_events=4, queue_max_bytes=40)
    gap.hold()
    for n in range(4):
        offer(gap, f"e{n}", b"x" * 10)
    with pytest.raises(ConnectionError), gap.lock:
        gap.release(FailOn(3))
    # Two left the queue: room for two more events and 20 more bytes, not one more.
    assert offer(gap, "e4", b"y" * 10)
    assert offer(gap, "e5", b"y" * 10)
    with pytest.raises(SendQueueFullError):
        offer(gap, "e6", b"")


def test_discard_counts_unsent_events_and_dropped_audio_and_stops_holding() -> None:
    gap = queue(gap_audio="drop")
    gap.hold()
    for n in range(4):
        offer(gap, f"e{n}")
    offer(gap, "a0", b"x", 20.0)
    offer(gap, "a1", b"x", 20.0)
    with gap.lock:
        assert gap.discard() == 6
    assert gap.holding is False
    assert not gap.contains("e0")
    assert offer(gap, "e9") is False
    sent: list[bytes] = []
    assert release(gap, sent.append) == (0, 0, 0.0)
    assert sent == []


def test_discard_after_a_failed_release_counts_what_was_left() -> None:
    gap = queue()
    gap.hold()
    for n in range(5):
        offer(gap, f"e{n}")
    with pytest.raises(ConnectionError), gap.lock:
        gap.release(FailOn(2))
    with gap.lock:
        assert gap.discard() == 4
    gap.hold()
    assert offer(gap, "fresh", b"x" * 10)
    with gap.lock:
        assert gap.discard() == 1


def test_discard_of_an_empty_queue_is_zero() -> None:
    gap = queue()
    with gap.lock:
        assert gap.discard() == 0
    gap.hold()
    with gap.lock:
        assert gap.discard() == 0
    assert gap.holding is False


def test_contains_sees_duplicate_ids_until_all_are_sent() -> None:
    gap = queue()
    gap.hold()
    offer(gap, "same", b"1")
    offer(gap, "same", b"2")
    with pytest.raises(ConnectionError), gap.lock:
        gap.release(FailOn(2))
    assert gap.contains("same")
    release(gap, lambda data: None)
    assert not gap.contains("same")


def test_concurrent_offers_are_each_sent_once_in_each_threads_order() -> None:
    threads_n, per_thread = 8, 500
    gap = queue(queue_max_events=threads_n * per_thread)
    with gap.lock:
        gap.hold()
    start = threading.Barrier(threads_n)
    failures: list[BaseException] = []

    def producer(thread: int) -> None:
        try:
            start.wait(timeout=WAIT)
            for n in range(per_thread):
                with gap.lock:
                    assert gap.offer(f"t{thread}-{n}", f"{thread}:{n}".encode(), None)
        except BaseException as exc:  # reported below, in the test's thread
            failures.append(exc)

    threads = [threading.Thread(target=producer, args=(t,)) for t in range(threads_n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert not any(thread.is_alive() for thread in threads)
    assert failures == []
    sent: list[bytes] = []
    assert release(gap, sent.append) == (threads_n * per_thread, 0, 0.0)
    assert len(sent) == len(set(sent)) == threads_n * per_thread
    by_thread: dict[int, list[int]] = {}
    for data in sent:
        thread_id, n = map(int, data.decode().split(":"))
        by_thread.setdefault(thread_id, []).append(n)
    assert by_thread == {t: list(range(per_thread)) for t in range(threads_n)}


def test_concurrent_offers_during_a_release_never_overtake_the_queue() -> None:
    # Senders that find the queue released send directly; those that find it holding
    # queue. Under the lock, no direct send goes out before the queued events.
    gap = queue(queue_max_events=10_000)
    wire: list[str] = []
    wire_lock = threading.Lock()

    def send(data: bytes) -> None:
        with wire_lock:
            wire.append(data.decode())

    with gap.lock:
        gap.hold()
    for n in range(200):
        offer(gap, f"q{n}", f"q{n}".encode())
    go = threading.Event()

    def late_sender() -> None:
        go.wait(WAIT)
        with gap.lock:
            queued = gap.offer("late", b"late", None)
            if not queued:
                send(b"late")

    thread = threading.Thread(target=late_sender)
    thread.start()
    with gap.lock:
        go.set()
        gap.release(send)
    thread.join(WAIT)
    assert not thread.is_alive()
    assert wire == [f"q{n}" for n in range(200)] + ["late"]


# --- _clock: call_later ---------------------------------------------------------------------------


def then(record: list[Any], value: Any, done: threading.Event | None = None) -> Callable[[], None]:
    """A callback that appends ``value`` to ``record``, then sets ``done``."""

    def callback() -> None:
        record.append(value)
        if done is not None:
            done.set()

    return callback


@pytest.fixture
def global_clock_idle() -> Iterator[None]:
    """Leave no clock thread running for tests that count ``realtime_sync-`` threads, when
    this test was the one that kept the clock busy."""
    yield
    wait_until(lambda: not _clock._heap and _clock._thread is None)


@pytest.mark.usefixtures("global_clock_idle")
def test_call_later_runs_callbacks_in_due_order() -> None:
    ran: list[str] = []
    done = threading.Event()
    before = time.monotonic()
    entries = {
        "d": call_later(0.04, then(ran, "d", done)),
        "b": call_later(0.02, then(ran, "b")),
        "c": call_later(0.03, then(ran, "c")),
        "a": call_later(0.0, then(ran, "a")),
        "negative is now": call_later(-5.0, then(ran, "negative is now")),
    }
    after = time.monotonic()
    assert done.wait(WAIT)
    # A negative delay is "now", not in the past.
    assert before <= entries["negative is now"].due <= after
    # Run in due order (ties in call order); the dues are what call_later recorded, so
    # this holds however slowly the calls were made.
    names = list(entries)
    assert ran == sorted(names, key=lambda name: (entries[name].due, names.index(name)))
    # None ran before it was due.
    assert all(entry.due <= time.monotonic() for entry in entries.values())


@pytest.mark.usefixtures("global_clock_idle")
def test_call_later_runs_callbacks_due_together_in_call_order() -> None:
    ran: list[int] = []
    done = threading.Event()
    for n in range(50):
        call_later(0.0, then(ran, n))
    call_later(0.0, done.set)
    assert done.wait(WAIT)
    assert ran == list(range(50))


@pytest.mark.usefixtures("global_clock_idle")
def test_call_later_runs_on_the_clock_thread() -> None:
    where: list[str] = []
    done = threading.Event()

    def record_thread() -> None:
        where.append(threading.current_thread().name)
        done.set()

    call_later(0.0, record_thread)
    assert done.wait(WAIT)
    assert where == ["realtime_sync-clock"]
    assert threading.current_thread().name != "realtime_sync-clock"


@pytest.mark.usefixtures("global_clock_idle")
def test_cancel_before_due_prevents_running() -> None:
    ran: list[str] = []
    done = threading.Event()
    cancelled = call_later(0.04, then(ran, "cancelled"))
    kept = call_later(0.005, then(ran, "kept"))
    sentinel = call_later(0.07, done.set)
    cancelled.cancel()
    assert cancelled.cancelled and not kept.cancelled
    assert done.wait(WAIT)  # the sentinel ran: the cancelled one was due before it
    assert sentinel.due > cancelled.due
    assert ran == ["kept"]
    assert all(entry is not cancelled for _, _, entry in _clock._heap)
    # Cancelling after it ran, or twice, is a no-op.
    kept.cancel()
    cancelled.cancel()
    assert ran == ["kept"]


@pytest.mark.usefixtures("global_clock_idle")
def test_a_raising_callback_is_logged_and_later_ones_still_run(
    caplog: pytest.LogCaptureFixture,
) -> None:
    ran: list[str] = []
    done = threading.Event()

    def broken() -> None:
        raise RuntimeError("boom in a timer")

    caplog.set_level(logging.ERROR, logger="realtime_sync")
    call_later(0.0, broken)
    call_later(0.01, lambda: ran.append("after"))
    call_later(0.01, broken)
    call_later(0.05, then(ran, "last", done))
    assert done.wait(WAIT)
    assert ran == ["after", "last"]
    assert wait_until(lambda: len(_timer_errors(caplog)) == 2)
    for record in _timer_errors(caplog):
        assert record.name == "realtime_sync" and record.levelno == logging.ERROR
        assert record.exc_info is not None and isinstance(record.exc_info[1], RuntimeError)


def _timer_errors(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if "timer callback" in r.getMessage()]


@pytest.mark.usefixtures("global_clock_idle")
def test_a_callback_may_schedule_another() -> None:
    ran: list[str] = []
    done = threading.Event()

    def first() -> None:
        ran.append("first")
        call_later(0.0, then(ran, "second", done))

    call_later(0.0, first)
    assert done.wait(WAIT)
    assert ran == ["first", "second"]


def test_the_clock_thread_exits_when_idle_and_restarts() -> None:
    clock = _Clock()  # a clock of its own: other tests' timers cannot keep it busy
    done = threading.Event()
    clock.call_later(0.005, done.set)
    first = clock._thread
    assert first is not None and first.name == "realtime_sync-clock" and first.daemon
    assert done.wait(WAIT)
    assert wait_until(lambda: not first.is_alive()), "the idle clock thread did not exit"
    assert clock._thread is None
    # The next call starts a new thread, which runs it and exits too.
    again = threading.Event()
    clock.call_later(0.0, again.set)
    second = clock._thread
    assert second is not None and second is not first
    assert again.wait(WAIT)
    assert wait_until(lambda: not second.is_alive())


def test_a_deadline_at_infinity_does_not_stop_the_clock() -> None:
    clock = _Clock()
    far = clock.call_later(math.inf, lambda: None)  # an absurd expires_at, say
    soon = threading.Event()
    clock.call_later(0.01, soon.set)
    assert soon.wait(WAIT)
    thread = clock._thread
    assert thread is not None and thread.is_alive()
    far.cancel()
    assert wait_until(lambda: not thread.is_alive())


@pytest.mark.parametrize("field", ["max_delay", "initial_delay", "session_seconds"])
def test_policy_times_are_finite(field: str) -> None:
    with pytest.raises(ValueError, match=field):
        ReconnectPolicy(**{field: math.inf})


def test_the_clock_thread_exits_when_everything_is_cancelled() -> None:
    clock = _Clock()
    ran: list[int] = []
    entries = [clock.call_later(60.0, lambda n=n: ran.append(n)) for n in range(5)]  # type: ignore[misc]
    thread = clock._thread
    assert thread is not None and thread.is_alive()
    for entry in entries:
        entry.cancel()
    assert wait_until(lambda: not thread.is_alive()), "cancelled timers kept the thread alive"
    assert ran == [] and clock._heap == []


def test_one_clock_thread_serves_many_timers() -> None:
    clock = _Clock()
    done = threading.Event()
    count = 0
    lock = threading.Lock()

    def tick() -> None:
        nonlocal count
        with lock:
            count += 1
            if count == 200:
                done.set()

    for n in range(200):
        clock.call_later(0.001 * (n % 20), tick)
    thread = clock._thread
    assert thread is not None
    assert done.wait(WAIT)
    assert clock._thread in (thread, None)  # never a second one
    assert wait_until(lambda: not thread.is_alive() and clock._thread is None)


@pytest.mark.usefixtures("global_clock_idle")
def test_the_global_clock_thread_exits_after_our_callbacks() -> None:
    done = threading.Event()
    call_later(0.0, done.set)
    thread = _clock._thread
    assert thread is not None
    assert done.wait(WAIT)
    # Only meaningful when nothing else in this process has a timer pending.
    if not _clock._heap:
        assert wait_until(lambda: not thread.is_alive() or bool(_clock._heap))


# --- _conversation: ConversationState.carry_over --------------------------------------------------


def ev(event_type: str, **fields: Any) -> Any:
    return decode_event(json.dumps({"type": event_type, **fields}))


def feed(state: ConversationState, *events: Any) -> None:
    for event in events:
        assert state.receive(event) is event


def session_created(session_id: str) -> Any:
    return ev(
        "session.created",
        event_id=f"ev_{session_id}",
        session={"type": "realtime", "object": "realtime.session", "id": session_id},
    )


PCM = bytes(range(256)) * 15  # 3840 bytes: 80 ms of PCM16 at 24 kHz


def built_conversation() -> ConversationState:
    """u1 (user text), u2 (user audio, transcribed), a1 (assistant audio with transcript),
    f1 (a function call) and its output o1, u3 (user audio, never transcribed), a2
    (assistant text)."""
    state = ConversationState()
    where = {"response_id": "r1", "item_id": "a1", "output_index": 0, "content_index": 0}
    call_where = {"response_id": "r2", "item_id": "f1", "output_index": 0, "call_id": "c1"}
    call = {
        "id": "f1",
        "object": "realtime.item",
        "type": "function_call",
        "status": "in_progress",
        "name": "get_weather",
        "call_id": "c1",
        "arguments": "",
    }
    feed(
        state,
        session_created("sess_1"),
        ev(
            "conversation.item.added",
            item=msg("u1", "user", {"type": "input_text", "text": "hi"}),
        ),
        ev(
            "conversation.item.added",
            previous_item_id="u1",
            item=msg("u2", "user", {"type": "input_audio", "transcript": None}),
        ),
        ev(
            "conversation.item.input_audio_transcription.completed",
            item_id="u2",
            content_index=0,
            transcript="weather in Paris?",
        ),
        ev(
            "response.output_item.added",
            response_id="r1",
            output_index=0,
            item=msg("a1", "assistant", status="in_progress"),
        ),
        ev(
            "conversation.item.added",
            previous_item_id="u2",
            item=msg("a1", "assistant", status="in_progress"),
        ),
        ev("response.content_part.added", part={"type": "audio", "transcript": ""}, **where),
        ev("response.output_audio.delta", delta=base64.b64encode(PCM).decode(), **where),
        ev("response.output_audio_transcript.delta", delta="Let me ", **where),
        ev("response.output_audio_transcript.done", transcript="Let me check.", **where),
        ev(
            "conversation.item.done",
            previous_item_id="u2",
            item=msg("a1", "assistant", {"type": "output_audio", "transcript": "Let me check."}),
        ),
        ev("response.output_item.added", response_id="r2", output_index=0, item=call),
        ev("conversation.item.added", previous_item_id="a1", item=call),
        ev("response.function_call_arguments.delta", delta='{"city":', **call_where),
        ev(
            "response.function_call_arguments.done",
            name="get_weather",
            arguments='{"city":"Paris"}',
            **call_where,
        ),
        ev(
            "conversation.item.done",
            previous_item_id="a1",
            item={**call, "status": "completed", "arguments": '{"city":"Paris"}'},
        ),
        ev(
            "conversation.item.added",
            previous_item_id="f1",
            item={
                "id": "o1",
                "object": "realtime.item",
                "type": "function_call_output",
                "call_id": "c1",
                "output": '{"sky":"clear"}',
            },
        ),
        ev(
            "conversation.item.added",
            previous_item_id="o1",
            item=msg("u3", "user", {"type": "input_audio", "transcript": None}),
        ),
        ev(
            "conversation.item.added",
            previous_item_id="u3",
            item=msg("a2", "assistant", {"type": "output_text", "text": "Clear skies."}),
        ),
    )
    return state


def test_the_built_conversation_is_what_it_seems() -> None:
    state = built_conversation()
    assert [item.id for item in state.items] == ["u1", "u2", "a1", "f1", "o1", "u3", "a2"]
    by_id = {item.id: item for item in state.items}
    assert by_id["u1"].text == "hi"
    assert by_id["u2"].transcript == "weather in Paris?"
    assert by_id["a1"].audio == PCM and by_id["a1"].transcript == "Let me check."
    assert by_id["f1"].arguments == '{"city":"Paris"}' and by_id["f1"].status == "completed"
    assert by_id["o1"].output == '{"sky":"clear"}'
    assert by_id["u3"].text == "" and by_id["u3"].transcript == ""
    assert by_id["a2"].text == "Clear skies."


def test_carry_over_keeps_the_chosen_items_across_session_created() -> None:
    state = built_conversation()
    before = {item.id: item for item in state.items}
    state.carry_over({"u1", "a1", "o1"})
    feed(state, session_created("sess_2"))
    assert [item.id for item in state.items] == ["u1", "a1", "o1"]
    for item in state.items:  # kept as they were, text, transcript and audio included
        assert item.to_dict() == before[item.id].to_dict()
        assert item.audio == before[item.id].audio
    assert state.get("a1") is not None and state.get("a1").audio == PCM  # type: ignore[union-attr]
    for gone in ("u2", "f1", "u3", "a2"):
        assert state.get(gone) is None


def test_forgotten_items_do_not_come_back_from_late_events() -> None:
    state = built_conversation()
    state.carry_over({"u1"})
    feed(
        state,
        session_created("sess_2"),
        ev(
            "conversation.item.input_audio_transcription.completed",
            item_id="u3",
            content_index=0,
            transcript="late transcript",
        ),
        ev(
            "response.output_audio.delta",
            response_id="r1",
            item_id="a1",
            output_index=0,
            content_index=0,
            delta=base64.b64encode(PCM).decode(),
        ),
    )
    assert [item.id for item in state.items] == ["u1"]


def test_carry_over_as_the_supervisor_uses_it_with_replayed_ids() -> None:
    for dialect in DIALECTS:
        state = built_conversation()
        events, skipped = replay_events(state.items, dialect)
        for event in events:
            assert_official(event, dialect)
        kept = [event["item"]["id"] for event in events]
        assert kept == ["u1", "u2", "a1", "f1", "o1", "a2"]
        assert [skip.item_id for skip in skipped] == ["u3"]
        state.carry_over(set(kept))
        feed(state, session_created("sess_2"))
        assert [item.id for item in state.items] == kept


def test_a_later_session_created_without_carry_over_clears_everything() -> None:
    state = built_conversation()
    state.carry_over({"u1", "a1"})
    feed(state, session_created("sess_2"))
    assert [item.id for item in state.items] == ["u1", "a1"]
    feed(state, session_created("sess_3"))  # carry_over is used once
    assert state.items == ()
    assert state.get("u1") is None and state.get("a1") is None


def test_a_session_created_without_carry_over_clears_everything() -> None:
    state = built_conversation()
    feed(state, session_created("sess_2"))
    assert [item.id for item in state.items] == []
    # A new session's conversation may reuse nothing, yet new items arrive normally.
    feed(
        state,
        ev(
            "conversation.item.added",
            item=msg("n1", "user", {"type": "input_text", "text": "x"}),
        ),
    )
    assert [item.id for item in state.items] == ["n1"]


def test_carry_over_waits_for_session_created_not_session_updated() -> None:
    state = built_conversation()
    state.carry_over({"u2"})
    feed(state, ev("session.updated", session={"type": "realtime", "instructions": "x"}))
    assert len(state.items) == 7  # session.updated neither uses nor clears anything
    feed(state, session_created("sess_2"))
    assert [item.id for item in state.items] == ["u2"]
    assert state.items[0].transcript == "weather in Paris?"


def test_carry_over_of_nothing_forgets_everything() -> None:
    state = built_conversation()
    state.carry_over(set())
    feed(state, session_created("sess_2"))
    assert state.items == ()


def test_carry_over_of_unknown_ids_is_harmless() -> None:
    state = built_conversation()
    state.carry_over({"u1", "never_seen"})
    feed(state, session_created("sess_2"))
    assert [item.id for item in state.items] == ["u1"]


@pytest.mark.parametrize("echo_type", ["conversation.item.created", "conversation.item.added"])
def test_replayed_echoes_of_kept_items_keep_their_order(echo_type: str) -> None:
    state = built_conversation()
    events, _ = replay_events(state.items, "ga" if echo_type.endswith("added") else "beta")
    kept = [event["item"]["id"] for event in events]
    state.carry_over(set(kept))
    feed(state, session_created("sess_2"))
    # The server creates the replayed items again and describes each one, in order, with
    # the previous one's id (the first one has none: it starts the new conversation).
    previous: str | None = None
    for event in events:
        item: dict[str, Any] = {**event["item"], "object": "realtime.item", "status": "completed"}
        feed(state, ev(echo_type, previous_item_id=previous, item=item))
        previous = item["id"]
    assert [item.id for item in state.items] == kept
    by_id = {item.id: item for item in state.items}
    assert by_id["u1"].text == "hi"
    assert by_id["a1"].audio == PCM  # the audio received in the old session stays
    assert "Let me check." in (by_id["a1"].text, by_id["a1"].transcript)
    assert by_id["f1"].arguments == '{"city":"Paris"}' and by_id["f1"].name == "get_weather"
    assert by_id["o1"].output == '{"sky":"clear"}'
    assert by_id["a2"].text == "Clear skies."
    # And the conversation goes on after them.
    feed(
        state,
        ev(
            "conversation.item.added",
            previous_item_id="a2",
            item=msg("u4", "user", {"type": "input_text", "text": "thanks"}),
        ),
    )
    assert [item.id for item in state.items] == [*kept, "u4"]


def test_echoes_arriving_out_of_order_are_placed_by_previous_item_id() -> None:
    state = built_conversation()
    state.carry_over({"u1", "a1", "a2"})
    feed(state, session_created("sess_2"))
    # The server describes a2 (after a1) before a1 (after u1): order follows the ids.
    feed(
        state,
        ev(
            "conversation.item.created",
            previous_item_id="a1",
            item=msg("a2", "assistant", {"type": "text", "text": "Clear skies."}),
        ),
        ev(
            "conversation.item.created",
            previous_item_id="u1",
            item=msg("a1", "assistant", {"type": "text", "text": "Let me check."}),
        ),
        ev(
            "conversation.item.created",
            previous_item_id=None,
            item=msg("u1", "user", {"type": "input_text", "text": "hi"}),
        ),
    )
    assert [item.id for item in state.items] == ["u1", "a1", "a2"]


@pytest.mark.parametrize("dialect", ["ga", "beta"])
def test_calls_and_outputs_that_are_not_text_are_not_replayed(dialect: str) -> None:
    call = make_item("fc", type="function_call", call_id="c1", name="f", arguments={"a": 1})
    good = make_item("fc2", type="function_call", call_id="c2", name="f", arguments="{}")
    output = make_item("fo", type="function_call_output", call_id="c2", output={"deep": [1]})
    events, skipped = replay_events([call, good, output], dialect)
    assert [event["item"]["id"] for event in events] == ["fc2"]
    assert [(skip.item_id, skip.reason) for skip in skipped] == [
        ("fc", "a function call whose arguments are not text"),
        ("fo", "a function call output that is not text"),
    ]


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"retry-after": "inf"}, None),
        ({"retry-after": "nan"}, None),
        ({"retry-after": "-3"}, 0.0),
        ({"retry-after": "2.5"}, 2.5),
        ({"retry-after-ms": "inf", "retry-after": "4"}, 4.0),
        ({"retry-after-ms": "1500"}, 1.5),
    ],
)
def test_retry_after_must_be_a_finite_wait(headers: dict[str, str], expected: float | None) -> None:
    assert retry_after(headers) == expected


def test_an_absurd_retry_after_is_capped() -> None:
    assert ReconnectPolicy().delay(1, retry_after=1e308) == LONGEST_RETRY_AFTER
