"""What the benchmark server sends and the clients expect: event shapes, sizes, URLs.

Shared by the server process (``_server.py``) and the client workers (``_clients.py``), so
both sides agree on event types, counts and payload sizes without talking about them.
Frames are JSON as the real service sends it: compact separators, GA event names.
"""

from __future__ import annotations

import base64
import json
import random
import time
from typing import Any
from urllib.parse import urlencode

from realtime_sync.testing._catalogue import ga_session

MODEL = "gpt-realtime"
API_KEY = "rs-bench-not-a-real-key"  # the server accepts any key
TEXT_DELTA = "response.output_text.delta"
AUDIO_DELTA = "response.output_audio.delta"
END_RESPONSE_ID = "resp_bench_end"  # the response.done that ends a paced stream

# Blasted receive cases: name -> (event type, raw audio bytes or None for text).
# 960 / 4800 bytes are 20 ms / 100 ms of 24 kHz PCM16.
BLAST_KINDS: dict[str, tuple[str, int | None]] = {
    "text": (TEXT_DELTA, None),
    "audio20": (AUDIO_DELTA, 960),
    "audio100": (AUDIO_DELTA, 4800),
}
# Send cases: name -> (raw bytes per append, input format the session announces).
SEND_KINDS: dict[str, tuple[int, str]] = {
    "ulaw20": (160, "audio/pcmu"),  # 20 ms of 8 kHz G.711 mu-law
    "pcm100": (4800, "audio/pcm"),  # 100 ms of 24 kHz PCM16
}
TICK = 0.02  # telephony: one audio and one text delta per session every 20 ms
ULAW_FRAME = 160  # raw bytes of 20 ms of mu-law
TS_WIDTH = 17  # "1715000000.123456": time.time() with 6 decimals, fixed width until 2286
TS_SLOT = "T" * TS_WIDTH  # placeholder the server overwrites with its send time

_rng = random.Random(9)  # payloads only need to look like real ones, and be reproducible


def dumps(event: dict[str, Any]) -> bytes:
    """Compact JSON, as the service sends it."""
    return json.dumps(event, separators=(",", ":")).encode()


def audio_b64(raw_bytes: int) -> str:
    return base64.b64encode(_rng.randbytes(raw_bytes)).decode("ascii")


def audio_bytes(raw_bytes: int) -> bytes:
    return _rng.randbytes(raw_bytes)


def fake_id(prefix: str, n: int) -> str:
    """A short id, unique per n (real ones have 21 characters after the prefix; shorter
    ones keep the text delta at the ~170 bytes the issue's figures were measured with)."""
    return f"{prefix}B{n:08d}"


def session(audio_format: str = "audio/pcm") -> dict[str, Any]:
    """A GA session as ``session.created`` carries it: the local test server's, with audio
    output in ``audio_format``."""
    fmt = {"type": audio_format} | ({"rate": 24000} if audio_format == "audio/pcm" else {})
    created = ga_session(MODEL, int(time.time()) + 3600)
    created["id"] = fake_id("sess_", 1)
    created["output_modalities"] = ["audio"]
    for direction in ("input", "output"):
        created["audio"][direction]["format"] = fmt
    return created


def session_created(audio_format: str = "audio/pcm") -> dict[str, Any]:
    return {
        "type": "session.created",
        "event_id": fake_id("event_", 0),
        "session": session(audio_format),
    }


def text_delta(event_id: str, response_id: str, item_id: str, index: int = 0) -> dict[str, Any]:
    # ~170 bytes on the wire: a typical token of text.
    return {
        "type": TEXT_DELTA,
        "event_id": event_id,
        "response_id": response_id,
        "item_id": item_id,
        "output_index": 0,
        "content_index": index,
        "delta": " the",
    }


def audio_delta(
    event_id: str, response_id: str, item_id: str, b64: str, index: int = 0
) -> dict[str, Any]:
    return {
        "type": AUDIO_DELTA,
        "event_id": event_id,
        "response_id": response_id,
        "item_id": item_id,
        "output_index": 0,
        "content_index": index,
        "delta": b64,
    }


def response(response_id: str, status: str, **extra: Any) -> dict[str, Any]:
    return {
        "object": "realtime.response",
        "id": response_id,
        "status": status,
        "status_details": None,
        "output": [],
        "conversation_id": fake_id("conv_", 1),
        "output_modalities": ["audio"],
        "max_output_tokens": "inf",
        "audio": {"output": {"format": {"type": "audio/pcm", "rate": 24000}, "voice": "marin"}},
        "usage": None,
        "metadata": None,
    } | extra


def message(item_id: str, role: str, status: str, parts: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "id": item_id,
        "object": "realtime.item",
        "type": "message",
        "status": status,
        "role": role,
        "content": parts,
    }


def response_prologue(response_id: str, item_id: str, n: int) -> list[dict[str, Any]]:
    """What precedes a response's first delta: the response, its item and content parts
    (audio at index 0, text at index 1), so conversation state sees a real item."""
    item = message(item_id, "assistant", "in_progress", [])
    return [
        {
            "type": "response.created",
            "event_id": fake_id("event_", n),
            "response": response(response_id, "in_progress"),
        },
        {
            "type": "response.output_item.added",
            "event_id": fake_id("event_", n + 1),
            "response_id": response_id,
            "output_index": 0,
            "item": item,
        },
        {
            "type": "conversation.item.added",
            "event_id": fake_id("event_", n + 2),
            "previous_item_id": None,
            "item": item,
        },
    ] + [
        {
            "type": "response.content_part.added",
            "event_id": fake_id("event_", n + 3 + index),
            "response_id": response_id,
            "item_id": item_id,
            "output_index": 0,
            "content_index": index,
            "part": part,
        }
        for index, part in enumerate(
            [{"type": "output_audio", "transcript": ""}, {"type": "output_text", "text": ""}]
        )
    ]


def end_marker(sent: int, max_lag_ms: float) -> dict[str, Any]:
    """The ``response.done`` that ends a paced stream; metadata carries the server's tally."""
    return {
        "type": "response.done",
        "event_id": fake_id("event_", 99_999_999),
        "response": response(
            END_RESPONSE_ID,
            "completed",
            metadata={"sent": str(sent), "max_lag_ms": f"{max_lag_ms:.1f}"},
        ),
    }


def committed(count: int) -> dict[str, Any]:
    """The answer to ``input_audio_buffer.commit``: the item id carries how many appends
    the server counted since the previous commit, so the sender can check none was lost."""
    return {
        "type": "input_audio_buffer.committed",
        "event_id": fake_id("event_", 99_999_998),
        "previous_item_id": None,
        "item_id": f"item_{count:021d}",
    }


def committed_count(item_id: str) -> int:
    return int(item_id[len("item_") :])


def sent_at(event_id: str) -> float:
    """The server's send time carried by a paced delta's event id (``evt_<time>a``)."""
    return float(event_id[4 : 4 + TS_WIDTH])


def url(port: int, scenario: str = "idle", **params: Any) -> str:
    """The endpoint URL of the benchmark server: the scenario rides in the query string."""
    return f"ws://127.0.0.1:{port}/v1/realtime?" + urlencode(
        {"model": MODEL, "scenario": scenario} | {k: str(v) for k, v in params.items()}
    )


def query(scenario: str, **params: Any) -> dict[str, str]:
    """The same, as extra query parameters for clients that build the URL themselves."""
    return {"scenario": scenario} | {k: str(v) for k, v in params.items()}
