"""Token usage of simulated responses: what a prompt and an answer are estimated to cost.

The local server has no tokenizer, so it estimates: 4 characters a text token, 50 ms of
audio an audio token (:func:`~._voice.audio_tokens`). :func:`prompt_estimate` weighs a
response's input (its items and instructions) when ``response.create`` is accepted: audio
the server knows (committed or spoken in this session) counts as audio, its transcript
not as text, and function calls count their arguments and outputs as text.
:func:`response_usage` builds the ``usage`` object of ``response.done`` from those
estimates and what the response streamed, with the fields each dialect reports.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from ._catalogue import JsonObject
from ._voice import SpokenAudio, audio_tokens

__all__ = ["estimate_tokens", "item_text", "prompt_estimate", "response_usage"]

_AUDIO_PARTS = frozenset({"input_audio", "audio", "output_audio"})


def prompt_estimate(
    source: Iterable[Mapping[str, Any]],
    instructions: str | None,
    session: Mapping[str, Any],
    spoken: Mapping[str, SpokenAudio],
) -> tuple[int, float]:
    """The usage estimate of a prompt: text tokens and milliseconds of audio.

    ``instructions`` are the response's, else (None) the session's.
    """
    if instructions is None:
        session_instructions = session.get("instructions")
        instructions = session_instructions if isinstance(session_instructions, str) else ""
    texts, audio_ms = [], 0.0
    for item in source:
        text, duration = _item_prompt(item, spoken)
        texts.append(text)
        audio_ms += duration
    return estimate_tokens(" ".join(texts) + instructions), audio_ms


def response_usage(
    *,
    produced: Iterable[str],
    output_audio_ms: float,
    prompt_text_tokens: int,
    prompt_audio_tokens: int,
    ga: bool,
) -> JsonObject:
    """Token estimates: 4 characters a text token, 50 ms an audio token.

    ``produced`` is the text, transcript or arguments of each output item,
    ``output_audio_ms`` the audio streamed; ``ga`` adds the GA-only image token counts.
    """
    text_out = sum(estimate_tokens(text) for text in produced)
    audio_out = audio_tokens(output_audio_ms)
    text_in, audio_in = prompt_text_tokens, prompt_audio_tokens
    cached: JsonObject = {"text_tokens": 0, "audio_tokens": 0}
    input_details: JsonObject = {
        "text_tokens": text_in,
        "audio_tokens": audio_in,
        "cached_tokens": 0,
        "cached_tokens_details": cached,
    }
    if ga:
        input_details["image_tokens"] = cached["image_tokens"] = 0
    input_tokens, output_tokens = text_in + audio_in, text_out + audio_out
    return {
        "total_tokens": input_tokens + output_tokens,
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        "input_token_details": input_details,
        "output_token_details": {"text_tokens": text_out, "audio_tokens": audio_out},
    }


def estimate_tokens(text: str) -> int:
    return (len(text) + 3) // 4


def item_text(item: Mapping[str, Any]) -> str:
    content = item.get("content")
    if not isinstance(content, list):
        return ""
    texts = []
    for part in content:
        if isinstance(part, dict):
            value = part.get("text", part.get("transcript"))
            if isinstance(value, str) and value:
                texts.append(value)
    return " ".join(texts)


def _item_prompt(item: Mapping[str, Any], spoken: Mapping[str, SpokenAudio]) -> tuple[str, float]:
    """What an item weighs in a prompt: its text, and milliseconds of audio.

    Audio the server knows (committed or spoken in this session) counts as audio, its
    transcript not as text; function calls count their arguments and outputs as text.
    """
    item_id = item.get("id")
    audio = spoken.get(item_id) if isinstance(item_id, str) else None
    content = item.get("content")
    if audio is not None and isinstance(content, list):
        texts = [
            part.get("text")
            for part in content
            if isinstance(part, dict) and part.get("type") not in _AUDIO_PARTS
        ]
        text = " ".join(value for value in texts if isinstance(value, str) and value)
        return text, audio.duration_ms
    text = item_text(item)
    for name in ("arguments", "output"):
        value = item.get(name)
        if isinstance(value, str) and value:
            text = f"{text} {value}" if text else value
    return text, 0.0
