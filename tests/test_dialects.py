"""Both dialects: session fields translated or refused by name, event names matched across."""

from __future__ import annotations

import pytest

from realtime_sync import InvalidEventError
from realtime_sync._dialects import (
    BETA_TO_GA,
    GA_SERVER_EVENTS,
    EventNames,
    session_for_dialect,
)

BETA_SESSION = {
    "modalities": ["text", "audio"],
    "voice": "alloy",
    "speed": 1.1,
    "input_audio_format": "pcm16",
    "output_audio_format": "g711_ulaw",
    "input_audio_transcription": {"model": "whisper-1"},
    "input_audio_noise_reduction": {"type": "near_field"},
    "turn_detection": {"type": "server_vad", "threshold": 0.5},
    "max_response_output_tokens": 200,
    "instructions": "Be brief.",
    "tools": [],
    "tool_choice": "auto",
}
GA_SESSION = {
    "type": "realtime",
    "output_modalities": ["audio"],
    "audio": {
        "input": {
            "format": {"type": "audio/pcm", "rate": 24000},
            "transcription": {"model": "whisper-1"},
            "noise_reduction": {"type": "near_field"},
            "turn_detection": {"type": "server_vad", "threshold": 0.5},
        },
        "output": {"format": {"type": "audio/pcmu"}, "voice": "alloy", "speed": 1.1},
    },
    "max_output_tokens": 200,
    "instructions": "Be brief.",
    "tools": [],
    "tool_choice": "auto",
}


def test_beta_session_translates_to_ga() -> None:
    assert session_for_dialect(BETA_SESSION, "ga") == GA_SESSION


def test_ga_session_translates_to_beta() -> None:
    assert session_for_dialect(GA_SESSION, "beta") == BETA_SESSION


def test_sessions_in_their_own_dialect_pass_unchanged() -> None:
    assert session_for_dialect(GA_SESSION, "ga") == GA_SESSION
    assert session_for_dialect(BETA_SESSION, "beta") == BETA_SESSION


def test_ga_gets_its_required_session_type() -> None:
    assert session_for_dialect({"instructions": "x"}, "ga") == {
        "instructions": "x",
        "type": "realtime",
    }


def test_text_only_modalities_both_ways() -> None:
    assert session_for_dialect({"modalities": ["text"]}, "ga")["output_modalities"] == ["text"]
    assert session_for_dialect({"output_modalities": ["text"]}, "beta") == {"modalities": ["text"]}


def test_beta_turn_detection_gets_its_default_type_on_ga() -> None:
    translated = session_for_dialect({"turn_detection": {"silence_duration_ms": 800}}, "ga")
    assert translated["audio"]["input"]["turn_detection"] == {
        "type": "server_vad",
        "silence_duration_ms": 800,
    }


def test_mixed_vocabulary_merges_into_one_audio_object() -> None:
    mixed = {"voice": "marin", "audio": {"input": {"format": {"type": "audio/pcma"}}}}
    assert session_for_dialect(mixed, "ga")["audio"] == {
        "input": {"format": {"type": "audio/pcma"}},
        "output": {"voice": "marin"},
    }


@pytest.mark.parametrize(
    ("session", "dialect", "named"),
    [
        ({"temperature": 0.7}, "ga", "'temperature'"),
        ({"client_secret": {}}, "ga", "'client_secret'"),
        ({"prompt": {"id": "p"}}, "beta", "'prompt'"),
        ({"truncation": "auto"}, "beta", "'truncation'"),
        ({"include": []}, "beta", "'include'"),
        ({"type": "transcription"}, "beta", "transcription_session.update"),
        (
            {"audio": {"input": {"format": {"type": "audio/pcm", "rate": 16000}}}},
            "beta",
            "'audio.input.format'.*16000",
        ),
        ({"audio": {"output": {"loudness": 3}}}, "beta", "'audio.output.loudness'"),
        ({"input_audio_format": "mp3"}, "ga", "'input_audio_format'"),
        (
            {"tools": [{"type": "function", "name": "f", "strict": True}]},
            "beta",
            r"'tools\[0\]\.strict'",
        ),
        ({"tools": [{"type": "mcp", "server_label": "x"}]}, "beta", r"'tools\[0\]'.*'mcp'"),
        ({"tool_choice": {"type": "function", "name": "f"}}, "beta", "'tool_choice'"),
        ({"audio": {"output": {"voice": {"id": "v"}}}}, "beta", "'audio.output.voice'"),
        (
            {"audio": {"input": {"turn_detection": {"idle_timeout_ms": 5}}}},
            "beta",
            "idle_timeout_ms",
        ),
        ({"audio": {"input": {"format": {"type": "audio/flac"}}}}, "beta", "'audio.input.format'"),
    ],
)
def test_fields_without_equivalent_are_refused_by_name(
    session: dict[str, object], dialect: str, named: str
) -> None:
    with pytest.raises(InvalidEventError, match=named):
        session_for_dialect(session, dialect)


@pytest.mark.parametrize("dialect", ["ga", "beta"])
def test_unknown_fields_are_refused_with_a_suggestion(dialect: str) -> None:
    with pytest.raises(InvalidEventError, match="did you mean 'instructions'"):
        session_for_dialect({"instrutions": "x"}, dialect)


def test_every_beta_alias_names_a_ga_event() -> None:
    assert set(BETA_TO_GA.values()) <= GA_SERVER_EVENTS


@pytest.mark.parametrize(("beta", "ga"), sorted(BETA_TO_GA.items()))
def test_names_match_across_dialects_on_a_beta_connection(beta: str, ga: str) -> None:
    names = EventNames("beta")
    assert names.matches(names.canonical_pattern(ga), beta)
    assert names.matches(names.canonical_pattern(beta), beta)


def test_names_on_a_ga_connection() -> None:
    names = EventNames("ga")
    # A beta name hears its GA twin...
    assert names.matches(
        names.canonical_pattern("response.text.delta"), "response.output_text.delta"
    )
    assert names.matches(names.canonical_pattern("response.audio.*"), "response.output_audio.delta")
    # ...but a name GA itself uses keeps its own meaning.
    added = names.canonical_pattern("conversation.item.added")
    assert not names.matches(added, "conversation.item.created")
    assert names.matches(
        names.canonical_pattern("conversation.item.created"), "conversation.item.created"
    )
    assert not names.matches(names.canonical_pattern("response.text.delta"), "response.done")
    assert names.matches("*", "anything.at.all")
