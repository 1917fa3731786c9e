"""``transcribe()`` across a reconnect: the new session gets the settings and the audio not
transcribed yet, items already transcribed are not sent again, and the iterator goes on."""

from __future__ import annotations

import base64
import math
import struct
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from conftest import KEY

from realtime_sync import (
    ConnectionClosed,
    RealtimeClient,
    ReconnectPolicy,
    TranscriptCompleted,
    _transcription_run,
    audio,
)
from realtime_sync._transcription_resume import KeptAudio, silence_kept_ms
from realtime_sync.testing import LocalRealtimeServer, recognize_speech, synthesize_speech

pytestmark = pytest.mark.timeout(60)

WAIT = 10.0
SILENCE = bytes(2 * 24000)  # one second of PCM16 silence at 24 kHz
FAST = {"initial_delay": 0.05, "max_delay": 0.2}


def completed(pieces: list[Any]) -> list[TranscriptCompleted]:
    return [piece for piece in pieces if isinstance(piece, TranscriptCompleted)]


def client_of(server: LocalRealtimeServer, **options: Any) -> RealtimeClient:
    """A transcription client of ``server`` (``with`` connects and closes it)."""
    options.setdefault("reconnect", ReconnectPolicy(**FAST))
    return RealtimeClient(api_key=KEY, url=server.url, intent="transcription", **options)


def test_a_drop_between_turns_resumes_without_losing_or_repeating_speech() -> None:
    first_done = threading.Event()
    with LocalRealtimeServer(api_key=KEY) as server:
        client = client_of(server, reconnect=ReconnectPolicy(gap_audio="queue", **FAST))
        client.on(
            "conversation.item.input_audio_transcription.completed",
            lambda _event: first_done.set(),
        )

        def source() -> Iterator[bytes]:
            yield synthesize_speech("hello world") + SILENCE
            assert first_done.wait(WAIT)
            yield synthesize_speech("second")  # sent, never transcribed: the drop follows
            server.drop_connections()
            yield synthesize_speech(" part")  # live or in the gap: kept either way

        with client:
            pieces = list(client.transcribe(source()))
        done = completed(pieces)
        assert [(piece.transcript, piece.resumed) for piece in done] == [
            ("hello world", False),
            ("second part", True),
        ]
        first, second = server.connections[0], server.connections[1]
        assert len(server.connections) == 2
        updates = [e for e in second.received if e["type"] == "session.update"]
        assert updates and all(u["session"]["type"] == "transcription" for u in updates)
        # The replay's (the configuration sent), then transcribe()'s own, then its barrier.
        replayed, own = updates[0], updates[1]
        for update in (replayed, own):
            settings = update["session"]["audio"]["input"]
            assert settings["transcription"] == {"model": "gpt-4o-transcribe"}
        assert own["event_id"].startswith("transcribe_")
        # The completed turn's speech went to the first session only.
        resent = b"".join(
            base64.b64decode(e["audio"])
            for e in second.received
            if e["type"] == "input_audio_buffer.append"
        )
        assert recognize_speech(resent.strip(b"\0")) == "second part"
        assert any(e["type"] == "input_audio_buffer.append" for e in first.received)
        # A transcription session has no conversation: its items are not recreated there.
        assert not [e for e in second.received if e["type"] == "conversation.item.create"]


def test_an_item_committed_but_not_transcribed_is_sent_again() -> None:
    dropped = threading.Event()
    holder: list[LocalRealtimeServer] = []

    def hear(audio: bytes) -> str:
        if not dropped.is_set():  # the first commit: the connection dies before its transcript
            dropped.set()
            holder[0].drop_connections()
        return recognize_speech(audio) or "?"

    with LocalRealtimeServer(api_key=KEY, transcribe=hear) as server:
        holder.append(server)
        client = client_of(server)  # gap_audio="drop": a bytes source waits instead
        source = synthesize_speech("one") + SILENCE + synthesize_speech("two")
        with client:
            pieces = list(client.transcribe(source))
        assert dropped.is_set()
        done = completed(pieces)
        assert [p.transcript for p in done] == ["one", "two"]
        # "one" was committed and lost: sent again. "two" is either sent again too, or
        # (when the source had not reached it at the drop) sent for the first time after.
        assert done[0].resumed


def test_reconnect_false_ends_with_connection_closed() -> None:
    with LocalRealtimeServer(api_key=KEY) as server:
        client = client_of(server, reconnect=False)

        def source() -> Iterator[bytes]:
            yield synthesize_speech("cut")
            server.drop_connections()
            while True:  # a live source goes on until the iterator stops it
                yield SILENCE

        with client, pytest.raises(ConnectionClosed, match="transcribe\\(\\): the connection"):
            for _ in client.transcribe(source(), turn_detection=None):
                pass


def loud(ms: int, seed: int = 0) -> bytes:
    """``ms`` of loud mu-law audio (8 bytes per ms), different for each ``seed``."""
    return bytes((seed + index) % 128 for index in range(8 * ms))


def test_the_audio_kept_is_bounded_and_trimmed_to_what_is_not_transcribed() -> None:
    kept = KeptAudio(0.0, fmt="g711_ulaw", silence_ms=1000.0, limit_ms=100.0)
    first, second = loud(60), loud(40, 60)
    kept.add(first, 60.0)
    kept.committed("a", 30.0)
    kept.add(second, 40.0)
    kept.transcribed("a")  # the first 30 ms are not needed any more, mid-chunk
    assert kept.complete and kept.uncommitted_ms == 70.0
    assert b"".join(kept.restart()) == (first + second)[8 * 30 :]
    assert kept.timeline_ms == 70.0  # the new session's timeline
    kept.add(loud(40), 40.0)  # 110 ms: over the limit, the oldest goes
    assert not kept.complete
    kept.committed("b", None)
    kept.transcribed("b")  # all transcribed: what was let go does not matter any more
    assert kept.complete and kept.restart() == []


def appended(connection: Any) -> list[bytes]:
    """The audio of each ``input_audio_buffer.append`` a server connection received."""
    return [
        base64.b64decode(e["audio"])
        for e in connection.received
        if e["type"] == "input_audio_buffer.append"
    ]


def test_a_chunk_read_as_the_new_session_arrives_is_not_lost() -> None:
    # The source's next chunk comes once client.reconnected is in the run's queue: the run
    # hears of the new session just as it is about to send the chunk.
    back = threading.Event()
    with LocalRealtimeServer(api_key=KEY) as server:
        client = client_of(server, reconnect=ReconnectPolicy(gap_audio="queue", **FAST))

        def source() -> Iterator[bytes]:
            # Registered now, after transcribe()'s own handler: the run has the news first.
            client.on("client.reconnected", lambda _event: back.set())
            yield synthesize_speech("second")
            server.drop_connections()
            assert back.wait(WAIT)
            yield synthesize_speech(" part")

        with client:
            pieces = list(client.transcribe(source()))
        assert [(p.transcript, p.resumed) for p in completed(pieces)] == [("second part", True)]


def test_a_send_caught_by_the_drop_is_not_sent_twice_to_the_new_session() -> None:
    # The drop comes as a chunk is being sent, which the client then holds for the new
    # session; the reconnect completes before transcribe() can take it back (a preempted
    # thread). The new session must get that chunk once, from the resume only.
    lost, back = threading.Event(), threading.Event()
    second = synthesize_speech("two")
    with LocalRealtimeServer(api_key=KEY) as server:
        client = client_of(server, reconnect=ReconnectPolicy(gap_audio="queue", **FAST))
        client.on("client.reconnecting", lambda _event: lost.set())
        client.on("client.reconnected", lambda _event: back.set())
        real_send = client.send

        def send(event: Any) -> str:
            if (
                event.get("type") == "input_audio_buffer.append"
                and event.get("audio") == (base64.b64encode(second).decode("ascii"))
                and not lost.is_set()
            ):
                server.drop_connections()
                assert lost.wait(WAIT)  # now holding: the send is not sent to the old one
                event_id = real_send(event)
                assert back.wait(WAIT)  # the new session is there, and got what was queued
                return event_id
            return real_send(event)

        client.send = send  # type: ignore[method-assign]
        with client:
            pieces = list(client.transcribe(iter([synthesize_speech("one") + SILENCE, second])))
        assert [(p.transcript, p.resumed) for p in completed(pieces)][-1] == ("two", True)
        assert " ".join(p.transcript for p in completed(pieces)) == "one two"
        assert appended(server.connections[1]).count(second) == 1


def test_a_session_rollover_resumes_without_losing_or_repeating_speech() -> None:
    first_done, rolled = threading.Event(), threading.Event()
    reasons: list[str] = []
    with LocalRealtimeServer(api_key=KEY) as server:
        client = client_of(server)
        client.on(
            "conversation.item.input_audio_transcription.completed",
            lambda _event: first_done.set(),
        )

        def rolled_over(event: Any) -> None:
            reasons.append(event.reason)
            rolled.set()

        def source() -> Iterator[bytes]:
            # Registered now, after transcribe()'s own handler: the run has the news first.
            client.on("client.session_rolled_over", rolled_over)
            yield synthesize_speech("hello world") + SILENCE
            assert first_done.wait(WAIT)
            yield synthesize_speech("second")  # sent, never transcribed: the expiry follows
            server.expire_sessions()
            assert rolled.wait(WAIT)
            yield synthesize_speech(" part")

        with client:
            pieces = list(client.transcribe(source()))
        assert reasons == ["expired"]
        assert [(p.transcript, p.resumed) for p in completed(pieces)] == [
            ("hello world", False),
            ("second part", True),
        ]
        assert len(server.connections) == 2
        first, second = (b"".join(appended(c)) for c in server.connections)
        # The first session heard both turns; the second one only what was not transcribed.
        assert first.startswith(synthesize_speech("hello world"))
        assert synthesize_speech("second") in first
        assert recognize_speech(second.strip(b"\0")) == "second part"


def test_more_untranscribed_speech_than_is_kept_ends_with_connection_closed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(_transcription_run, "RESEND_LIMIT_MS", 2000.0)  # instead of 120 s
    with LocalRealtimeServer(api_key=KEY) as server:
        client = client_of(server)

        def source() -> Iterator[bytes]:
            yield SILENCE * 5  # shortened: 1.8 s of it count
            yield synthesize_speech("x" * 40)  # 2.4 s of one turn, not transcribed yet
            server.drop_connections()

        with (
            client,
            pytest.raises(ConnectionClosed, match=r"more than 2 s of audio not .*long silences"),
        ):
            for _ in client.transcribe(source()):
                pass
        assert len(server.connections) == 2  # it did reconnect: the resume gave up


def test_live_audio_dropped_while_reconnecting_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    lost = threading.Event()
    two = synthesize_speech("two")
    with LocalRealtimeServer(api_key=KEY) as server:
        client = client_of(server, reconnect=ReconnectPolicy(max_attempts=None, **FAST))

        def source() -> Iterator[bytes]:
            client.on("client.reconnecting", lambda _event: lost.set())  # after the run's
            yield synthesize_speech("one")
            server.reject_handshake(503)  # no new session until "two" was read
            server.drop_connections()
            assert lost.wait(WAIT)
            yield two  # between connections: dropped (gap_audio="drop", the default)
            server.clear_faults()

        with client, caplog.at_level("WARNING", logger="realtime_sync"):
            pieces = list(client.transcribe(source()))
        assert [(p.transcript, p.resumed) for p in completed(pieces)] == [("one", True)]
        assert f"{len(two) / 48:.0f} ms of audio from the source" in caplog.text
        assert "dropped (gap_audio='drop')" in caplog.text
        assert two not in b"".join(appended(server.connections[-1]))


def test_a_paced_bytes_source_waits_out_the_gap(caplog: pytest.LogCaptureFixture) -> None:
    # realtime=True paces the bytes like a live source, but they can be read later: the
    # audio of the gap is kept (not dropped as gap_audio="drop" drops a live source's).
    dropped = threading.Event()
    holder: list[LocalRealtimeServer] = []

    def hear(audio: bytes) -> str:
        if not dropped.is_set():  # the first commit: the connection dies before its transcript
            dropped.set()
            holder[0].reject_handshake(503)  # a gap of half a second at least
            holder[0].drop_connections()
            threading.Timer(0.5, holder[0].clear_faults).start()
        return recognize_speech(audio) or "?"

    source = synthesize_speech("one") + SILENCE + synthesize_speech("two")
    with LocalRealtimeServer(api_key=KEY, transcribe=hear) as server:
        holder.append(server)
        client = client_of(server, reconnect=ReconnectPolicy(max_attempts=None, **FAST))
        with client, caplog.at_level("WARNING", logger="realtime_sync"):
            pieces = list(client.transcribe(source, realtime=True))
        assert dropped.is_set()
        # The drop comes in the silence between the words: "two" is new to the new session.
        assert [(p.transcript, p.resumed) for p in completed(pieces)] == [
            ("one", True),
            ("two", False),
        ]
        # The new session got all of it (nothing was transcribed before the drop), then
        # the closing silence.
        resent = b"".join(appended(server.connections[-1]))
        assert resent.startswith(source) and not resent[len(source) :].strip(b"\0")
        assert "dropped" not in caplog.text


def tone(ms: int, dbfs: float) -> bytes:
    """``ms`` of a 440 Hz tone whose RMS is ``dbfs``, as PCM16 at 24 kHz."""
    amplitude = 32768 * 10 ** (dbfs / 20) * math.sqrt(2)
    count = 24 * ms
    return struct.pack(
        f"<{count}h",
        *(round(amplitude * math.sin(2 * math.pi * 440 * i / 24000)) for i in range(count)),
    )


def test_a_long_silence_is_kept_shortened_and_positions_still_map() -> None:
    quiet = audio.ulaw_encode(bytes(2 * 8 * 5000))  # 5 s of mu-law silence
    first, second = loud(100), loud(100, 7)

    def kept_around_a_pause() -> KeptAudio:
        kept = KeptAudio(0.0, fmt="g711_ulaw", silence_ms=300.0, limit_ms=1000.0)
        for data, ms in ((first, 100.0), (quiet, 5000.0), (second, 100.0)):
            kept.add(data, ms)
        return kept

    kept = kept_around_a_pause()  # 300 ms of the silence kept: under the limit
    assert kept.complete and kept.timeline_ms == 5200.0 and kept.uncommitted_ms == 5200.0
    kept.committed("a", 250.0)  # on the session's timeline: in the part of the pause kept
    kept.transcribed("a")
    assert b"".join(kept.restart()) == quiet[: 8 * 150] + second
    assert kept.timeline_ms == 250.0  # the new session's timeline: no gap in it
    kept = kept_around_a_pause()
    kept.committed("a", 3000.0)  # in the part left out
    kept.transcribed("a")
    assert kept.restart() == [second]
    # Quiet speech is not silence: all of it counts.
    kept = KeptAudio(0.0, fmt="pcm16", silence_ms=300.0, limit_ms=1000.0)
    kept.add(tone(2000, -40.0), 2000.0)
    assert not kept.complete


def test_the_silence_kept_is_what_the_turn_detector_needs() -> None:
    # Its silence_duration_ms (or semantic VAD's longest wait), prefix_padding_ms, 1 s more.
    assert silence_kept_ms(None) == silence_kept_ms({"type": "server_vad"}) == 1800.0
    server_vad = {"type": "server_vad", "silence_duration_ms": 2000, "prefix_padding_ms": 500}
    assert silence_kept_ms(server_vad) == 3500.0
    assert silence_kept_ms({"type": "semantic_vad"}) == 5300.0  # eagerness "auto": 4 s
    assert silence_kept_ms({"type": "semantic_vad", "eagerness": "low"}) == 9300.0


def test_a_pause_longer_than_what_is_kept_does_not_stop_a_resume() -> None:
    first_done = threading.Event()
    second = synthesize_speech("second")
    with LocalRealtimeServer(api_key=KEY) as server:
        client = client_of(server, reconnect=ReconnectPolicy(gap_audio="queue", **FAST))
        client.on(
            "conversation.item.input_audio_transcription.completed",
            lambda _event: first_done.set(),
        )

        def source() -> Iterator[bytes]:
            yield synthesize_speech("hello world") + SILENCE
            assert first_done.wait(WAIT)
            for _ in range(125):  # more than RESEND_LIMIT_MS, unpaced
                yield SILENCE
            yield second  # sent, never transcribed: the drop follows
            server.drop_connections()
            yield synthesize_speech(" part")

        with client:
            pieces = list(client.transcribe(source()))
        assert [(p.transcript, p.resumed) for p in completed(pieces)] == [
            ("hello world", False),
            ("second part", True),
        ]
        resent = b"".join(appended(server.connections[1]))
        assert recognize_speech(resent.strip(b"\0")) == "second part"
        # At most the silence kept, the speech, and the silence that closes the last turn.
        speech = len(second) + len(synthesize_speech(" part"))
        assert len(resent) <= speech + 48 * (silence_kept_ms({"type": "server_vad"}) + 700)


def test_a_pause_in_g711_does_not_count_toward_the_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_transcription_run, "RESEND_LIMIT_MS", 3000.0)  # instead of 120 s
    first_done = threading.Event()
    with LocalRealtimeServer(api_key=KEY) as server:
        client = client_of(server, reconnect=ReconnectPolicy(gap_audio="queue", **FAST))
        client.on(
            "conversation.item.input_audio_transcription.completed",
            lambda _event: first_done.set(),
        )

        def source() -> Iterator[bytes]:
            yield synthesize_speech("one") + SILENCE
            assert first_done.wait(WAIT)
            yield SILENCE * 10  # A-law silence decodes to +-8: a constant, no level
            yield synthesize_speech("two")
            server.drop_connections()

        with client:
            pieces = list(client.transcribe(source(), input_format="g711_alaw"))
        assert [(p.transcript, p.resumed) for p in completed(pieces)] == [
            ("one", False),
            ("two", True),
        ]
        resent = b"".join(appended(server.connections[1]))  # 8 bytes per ms
        assert len(resent) <= 8 * (silence_kept_ms({"type": "server_vad"}) + 700 + 3 * 60)


def test_a_pause_without_turn_detection_does_not_count_toward_the_limit(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(_transcription_run, "RESEND_LIMIT_MS", 3000.0)  # instead of 120 s
    with LocalRealtimeServer(api_key=KEY) as server:
        client = client_of(server)

        def source() -> Iterator[bytes]:
            yield synthesize_speech("one")
            yield SILENCE * 10  # nothing is committed before the end: all of it is kept
            server.drop_connections()

        with client:
            pieces = list(client.transcribe(source(), turn_detection=None))
        assert [(p.transcript, p.resumed) for p in completed(pieces)] == [("one", True)]
        resent = b"".join(appended(server.connections[1]))
        assert len(resent) == len(synthesize_speech("one")) + 48 * silence_kept_ms(None)
