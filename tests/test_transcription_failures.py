"""The local server fails input audio transcriptions on request (``fail_transcriptions``),
as real servers do with ``conversation.item.input_audio_transcription.failed``; and
``transcribe()`` turns that into :class:`TranscriptionError` or :class:`TranscriptFailed`."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
from conftest import KEY
from test_server_voice import assert_server_event

from realtime_sync import (
    RealtimeClient,
    TranscriptCompleted,
    TranscriptFailed,
    TranscriptionError,
)
from realtime_sync.events import ServerEvent
from realtime_sync.testing import InProcessTransport, LocalRealtimeServer, synthesize_speech

pytestmark = pytest.mark.timeout(60)

WAIT = 10.0
SILENCE = bytes(2 * 24000)  # one second of PCM16 silence at 24 kHz
FAILED = "conversation.item.input_audio_transcription.failed"


@pytest.fixture
def local() -> Iterator[LocalRealtimeServer]:
    with LocalRealtimeServer(api_key=KEY) as server:
        yield server


def transcription_client(local: LocalRealtimeServer) -> tuple[RealtimeClient, list[dict[str, Any]]]:
    """A transcription client of ``local`` and the raw server events it gets."""
    client = RealtimeClient(api_key=KEY, url=local.url, intent="transcription", reconnect=False)
    frames: list[dict[str, Any]] = []
    client.on("*", lambda ev: frames.append(ev.to_dict()) if isinstance(ev, ServerEvent) else None)
    return client, frames


def two_turns() -> bytes:
    return synthesize_speech("hello world") + SILENCE + synthesize_speech("second part")


def test_the_failed_event_is_the_official_one(local: LocalRealtimeServer) -> None:
    client, frames = transcription_client(local)
    local.fail_transcriptions(code="audio_too_short", message="Too short.")
    with client:
        pieces = list(client.transcribe(two_turns(), failures="yield"))
    (failed,) = [frame for frame in frames if frame["type"] == FAILED]
    assert_server_event(failed, "ga")  # strict, and no key the official type lacks
    assert failed["error"] == {
        "type": "transcription_error",
        "code": "audio_too_short",
        "message": "Too short.",
        "param": None,
    }
    assert failed["content_index"] == 0
    committed = [f["item_id"] for f in frames if f["type"] == "input_audio_buffer.committed"]
    assert failed["item_id"] == committed[0]
    # One failure only: the next item is transcribed.
    assert [p.item_id for p in pieces if isinstance(p, TranscriptFailed)] == [committed[0]]
    assert [p.transcript for p in pieces if isinstance(p, TranscriptCompleted)] == ["second part"]


def test_a_failed_transcription_raises_transcription_error(local: LocalRealtimeServer) -> None:
    client, _ = transcription_client(local)
    local.fail_transcriptions()
    with client, pytest.raises(TranscriptionError, match="could not be transcribed") as caught:
        list(client.transcribe(two_turns()))
    assert caught.value.error is not None
    assert caught.value.error.code == "audio_unintelligible"
    assert caught.value.item_id is not None and caught.value.item_id.startswith("item_")


def test_failures_yield_goes_on_with_the_next_items(local: LocalRealtimeServer) -> None:
    client, _ = transcription_client(local)
    local.fail_transcriptions(times=None)  # every one, until cleared
    with client:
        pieces = list(client.transcribe(two_turns(), failures="yield"))
        failed = [p for p in pieces if isinstance(p, TranscriptFailed)]
        assert len(failed) == 2 and {p.error.code for p in failed} == {"audio_unintelligible"}
        assert not [p for p in pieces if isinstance(p, TranscriptCompleted)]
        local.clear_faults()
        again = list(client.transcribe(synthesize_speech("back")))
    assert [p.transcript for p in again if isinstance(p, TranscriptCompleted)] == ["back"]


def test_a_realtime_session_with_input_transcription_fails_too(
    local: LocalRealtimeServer,
) -> None:
    client = RealtimeClient(api_key=KEY, url=local.url, reconnect=False)
    failed = threading.Event()
    seen: list[Any] = []
    client.on(FAILED, lambda event: (seen.append(event), failed.set()))
    local.fail_transcriptions()
    with client:
        client.send(
            {
                "type": "session.update",
                "session": {
                    "type": "realtime",
                    "audio": {
                        "input": {
                            "transcription": {"model": "whisper-1"},
                            "turn_detection": None,
                        }
                    },
                },
            }
        )
        client.input_audio_buffer.append(audio=synthesize_speech("hi there"))
        client.input_audio_buffer.commit()
        assert failed.wait(WAIT)
    assert seen[0].error.code == "audio_unintelligible"


def test_the_in_process_transport_takes_the_control_too() -> None:
    transport = InProcessTransport(api_key=KEY)
    transport.fail_transcriptions(code="no_speech")
    client = RealtimeClient(api_key=KEY, transport=transport, intent="transcription")
    with client:
        pieces = list(client.transcribe(two_turns(), failures="yield"))
    failed = [p for p in pieces if isinstance(p, TranscriptFailed)]
    assert [p.error.code for p in failed] == ["no_speech"]


def test_the_count_is_checked(local: LocalRealtimeServer) -> None:
    with pytest.raises(ValueError, match="times"):
        local.fail_transcriptions(times=0)
