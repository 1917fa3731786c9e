"""The translation client has what the Realtime client has where it applies: the expiry
notice, record(), events() and the proxy settings, from the same code."""

from __future__ import annotations

import base64
import json
import logging
import queue
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from conftest import KEY
from connect_proxy import ConnectProxy, connect_proxy
from rawpeer import RawPeer, upgrade_reply

from realtime_sync import (
    ConfigurationError,
    ConnectionClosed,
    OutputTranscriptDelta,
    RealtimeClient,
    RealtimeTranslationClient,
    SessionExpiringEvent,
    _server_events,
)
from realtime_sync.testing import LocalRealtimeServer, synthesize_speech

pytestmark = pytest.mark.timeout(60)

WAIT = 5.0


# --- the session's end ----------------------------------------------------------------------


def test_the_expiring_notice_comes_before_the_server_ends_the_session() -> None:
    # expires_at is a whole second: the notice comes 1 to 2 s in, the end 5 s in.
    with LocalRealtimeServer(api_key=KEY, session_lifetime=5) as server:
        client = RealtimeTranslationClient(KEY, url=server.url + "/translations", expiring_notice=3)
        seen: queue.SimpleQueue[tuple[Any, bool]] = queue.SimpleQueue()
        for name in ("client.session_expiring", "client.closed"):
            client.on(name, lambda event: seen.put((event, client.connected)))
        try:
            session = client.connect(WAIT)
            notice, connected = seen.get(timeout=4 + WAIT)
            assert isinstance(notice, SessionExpiringEvent) and connected
            assert (notice.session_id, notice.expires_at) == (session.id, session.expires_at)
            assert 0 < notice.seconds_left <= 3
            closed, _ = seen.get(timeout=5 + WAIT)  # the server's end: no rollover
            assert closed.type == "client.closed" and not closed.requested
            assert isinstance(closed.error, ConnectionClosed)
            assert closed.error.error.error.code == "session_expired"
            assert len(server.connections) == 1
        finally:
            client.close(timeout=WAIT)


def test_the_expiring_notice_must_be_a_number_of_seconds() -> None:
    with pytest.raises(ConfigurationError, match="expiring_notice"):
        RealtimeTranslationClient(KEY, expiring_notice=-1)


# --- record() and events() ------------------------------------------------------------------


def test_a_recording_holds_the_translation_without_audio_or_key(
    make_translator: Callable[..., RealtimeTranslationClient], tmp_path: Path
) -> None:
    client = make_translator()
    path = tmp_path / "translation.jsonl"
    with client.record(path) as recording:
        client.connect(WAIT)
        # A key put into an event by mistake is masked both ways (the server echoes it).
        updated = client.expect("session.updated")
        client.session.update(session={"audio": {"output": {"language": KEY}}})
        assert updated.wait(WAIT).session.audio.output.language == KEY
        pieces = list(client.translate(synthesize_speech("hello"), language="fr", timeout=WAIT))
    assert recording.closed
    text = path.read_text()
    assert KEY not in text
    lines = [json.loads(line) for line in text.splitlines()]
    assert [line["time"] for line in lines] == sorted(line["time"] for line in lines)
    sent = [line["event"] for line in lines if line["direction"] == "sent"]
    kinds = [event["type"] for event in sent]
    assert kinds[:2] == ["session.update", "session.update"] and kinds[-1] == "session.close"
    assert sent[0]["session"]["audio"]["output"]["language"] == "***"
    appends = [event for event in sent if event["type"] == "session.input_audio_buffer.append"]
    assert appends and all(event["audio"].endswith(" bytes of audio>") for event in appends)
    received = [line["event"] for line in lines if line["direction"] == "received"]
    assert received[0]["type"] == "session.created"
    assert received[1]["session"]["audio"]["output"]["language"] == "***"
    audio = [event for event in received if event["type"] == "session.output_audio.delta"]
    assert audio and all(event["delta"].endswith(" bytes of audio>") for event in audio)
    said = "".join(
        event["delta"] for event in received if event["type"] == "session.output_transcript.delta"
    )
    assert said == "".join(p.text for p in pieces if isinstance(p, OutputTranscriptDelta))
    assert received[-1]["type"] == "session.closed"  # client events are not recorded


def test_a_recording_can_keep_the_audio(
    make_translator: Callable[..., RealtimeTranslationClient], tmp_path: Path
) -> None:
    client = make_translator()
    client.connect(WAIT)
    path = tmp_path / "audio.jsonl"
    with client.record(path, audio=True):
        client.append_audio(b"\x01\x00" * 4800)  # one 200 ms frame
    (line,) = [json.loads(text) for text in path.read_text().splitlines()]
    assert base64.b64decode(line["event"]["audio"]) == b"\x01\x00" * 4800


def test_events_iterates_the_translation_in_order(
    make_translator: Callable[..., RealtimeTranslationClient],
) -> None:
    client = make_translator()
    stream = client.events(timeout=WAIT)  # listens from now on: session.created included
    client.connect(WAIT)
    pieces = list(client.translate(synthesize_speech("good night"), language="de", timeout=WAIT))
    events = list(stream)
    kinds = [event.type for event in events]
    assert kinds[0] == "session.created" and kinds[-1] == "client.closed"
    assert kinds.index("session.updated") < kinds.index("session.closed") < len(kinds) - 1
    said = "".join(e.delta for e in events if e.type == "session.output_transcript.delta")
    assert said == "[de] good night"
    assert said == "".join(p.text for p in pieces if isinstance(p, OutputTranscriptDelta))


# --- proxies --------------------------------------------------------------------------------


@pytest.fixture
def proxy() -> Iterator[ConnectProxy]:
    with connect_proxy() as running:
        yield running


def test_the_connection_goes_through_the_proxy_given(
    server: LocalRealtimeServer,
    make_translator: Callable[..., RealtimeTranslationClient],
    proxy: ConnectProxy,
) -> None:
    client = make_translator(
        http_proxy_host="127.0.0.1",
        http_proxy_port=proxy.port,
        http_proxy_auth=("proxy-user", "proxy-pass"),
        http_no_proxy=["bypassed.invalid"],  # not the environment's no_proxy
        proxy_type="http",
    )
    client.connect(WAIT)
    pieces = list(client.translate(synthesize_speech("hi"), language="fr", timeout=WAIT))
    assert "".join(p.text for p in pieces if isinstance(p, OutputTranscriptDelta)) == "[fr] hi"
    (tunnel,) = proxy.tunnels
    assert tunnel.target == urlsplit(server.url).netloc
    credentials = base64.b64encode(b"proxy-user:proxy-pass").decode()
    assert tunnel.authorization == f"Basic {credentials}"


def test_hosts_in_http_no_proxy_are_reached_directly(
    make_translator: Callable[..., RealtimeTranslationClient], proxy: ConnectProxy
) -> None:
    client = make_translator(
        http_proxy_host="127.0.0.1",
        http_proxy_port=proxy.port,
        http_no_proxy=["127.0.0.1"],
        proxy_type="http",
    )
    client.connect(WAIT)
    assert client.connected and proxy.tunnels == []


def test_a_proxy_without_a_type_is_an_http_proxy(
    server: LocalRealtimeServer, proxy: ConnectProxy
) -> None:
    client = RealtimeClient(
        api_key=KEY,
        url=server.url,
        http_proxy_host="127.0.0.1",
        http_proxy_port=proxy.port,
        http_no_proxy=["bypassed.invalid"],
    )
    with client:
        assert len(proxy.tunnels) == 1


def test_both_clients_take_the_same_connection_options(tmp_path: Path) -> None:
    options: dict[str, Any] = {
        "http_proxy_host": "proxy.internal",
        "http_proxy_port": 3128,
        "http_proxy_auth": ("user", "pass"),
        "http_no_proxy": ["internal"],
        "proxy_type": "socks5",
        "ca_certs": str(tmp_path / "ca.pem"),
    }
    realtime = RealtimeClient(api_key=KEY, **options)
    translation = RealtimeTranslationClient(KEY, **options)
    assert realtime._transport == translation._transport
    assert translation._transport.sslopt == {"ca_certs": options["ca_certs"]}  # type: ignore[attr-defined]
    with pytest.raises(ConfigurationError, match="ping_timeout"):
        RealtimeTranslationClient(KEY, ping_timeout=0)
    assert translation.state is None and translation.backlog == (0, 0.0)


@pytest.mark.parametrize("expires_at", ["NaN", "1" + "0" * 400, '"soon"', "true", "-5"])
def test_an_expires_at_that_is_no_time_to_come_means_the_default_lifetime(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, expires_at: str
) -> None:
    # The stdlib JSON back end (orjson is optional) reads NaN, and integers no float holds.
    monkeypatch.setattr(_server_events, "loads", json.loads)
    frame = '{"type": "session.created", "session": {"id": "sess_1", "expires_at": %s}}'

    def script(peer: RawPeer, conn: socket.socket, request: bytes) -> None:
        conn.sendall(upgrade_reply(request))
        payload = (frame % expires_at).encode()
        conn.sendall(bytes([0x81, 126]) + len(payload).to_bytes(2, "big") + payload)
        peer.release.wait(WAIT)

    with RawPeer(script) as peer:
        client = RealtimeTranslationClient(KEY, url=peer.url + "/translations", allow_insecure=True)
        try:
            client.connect(WAIT)
            # The notice is due 59 minutes on (not at once), and nothing failed on the way.
            (notice,) = client._supervisor._timers
            assert 58 * 60 < notice.due - time.monotonic() <= 59 * 60
            assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
        finally:
            client.close(timeout=WAIT)
