"""Ephemeral client secrets: minted over HTTP by the local server, accepted by its
WebSocket admission until they expire; with our client and the official one."""

from __future__ import annotations

import logging
import socket
import ssl
import threading
import time
from collections.abc import Callable

import openai
import pytest
import trustme
from conftest import KEY
from rawpeer import RawPeer

from realtime_sync import (
    AuthenticationError,
    BadRequestError,
    ConfigurationError,
    EphemeralClientSecret,
    RealtimeAPI,
    RealtimeClient,
    TransportError,
)
from realtime_sync.testing import LocalRealtimeServer

SESSION = {"type": "realtime", "instructions": "Be brief.", "output_modalities": ["text"]}


def api(server: LocalRealtimeServer) -> RealtimeAPI:
    return RealtimeAPI(KEY, base_url=server.http_base_url)


def test_a_secret_carries_its_expiry_and_session(server: LocalRealtimeServer) -> None:
    before = int(time.time())
    secret = api(server).client_secrets.create(session=SESSION, expires_in=60)
    assert isinstance(secret, EphemeralClientSecret)
    assert secret.value.startswith("ek_")
    assert before + 60 <= secret.expires_at <= int(time.time()) + 60
    assert secret.session["instructions"] == "Be brief."
    assert secret.session_type == "realtime"
    assert secret.value not in repr(secret) and "***" in repr(secret)


def test_the_default_expiry_and_a_default_session(server: LocalRealtimeServer) -> None:
    secret = api(server).client_secrets.create()
    assert secret.expires_at - time.time() == pytest.approx(600, abs=5)
    assert secret.session_type == "realtime"


@pytest.mark.parametrize("auth", ["header", "subprotocol"])
def test_the_secret_opens_a_session_that_starts_from_its_configuration(
    server: LocalRealtimeServer, make_client: Callable[..., RealtimeClient], auth: str
) -> None:
    secret = api(server).client_secrets.create(session=SESSION)
    client = make_client(api_key=secret.value, auth=auth)
    client.connect(timeout=5)
    assert client.session.current is not None
    assert client.session.current.instructions == "Be brief."
    assert server.connections[-1].auth == auth
    assert client.send_text("Hello?", timeout=5).text


def test_an_expired_secret_is_refused_like_a_bad_key(
    server: LocalRealtimeServer, make_client: Callable[..., RealtimeClient]
) -> None:
    secret = api(server).client_secrets.create(session=SESSION, expires_in=10)
    server.calls.clock = lambda: time.time() + 11
    client = make_client(api_key=secret.value, reconnect=False)
    with pytest.raises(AuthenticationError) as caught:
        client.connect(timeout=5)
    assert caught.value.close_code == 3000


def test_a_secret_cannot_mint_secrets_or_control_calls(server: LocalRealtimeServer) -> None:
    secret = api(server).client_secrets.create()
    with pytest.raises(AuthenticationError):
        RealtimeAPI(secret.value, base_url=server.http_base_url).client_secrets.create()


def test_an_expiry_out_of_range_is_a_bad_request(server: LocalRealtimeServer) -> None:
    with pytest.raises(BadRequestError) as caught:
        api(server).client_secrets.create(expires_in=5)
    assert caught.value.status_code == 400 and caught.value.param == "expires_after.seconds"
    with pytest.raises(ConfigurationError, match="not both"):
        api(server).client_secrets.create(expires_in=60, expires_after={"seconds": 60})


def test_translation_secrets(server: LocalRealtimeServer) -> None:
    session = {"model": "gpt-realtime-translate", "audio": {"output": {"language": "fr"}}}
    secret = api(server).translations.client_secrets.create(session=session)
    assert secret.value.startswith("ek_") and secret.session_type == "translation"
    assert secret.session["audio"]["output"]["language"] == "fr"
    assert server.calls.requests[-1] == ("POST", "/v1/realtime/translations/client_secrets")
    with pytest.raises(ConfigurationError, match="needs session"):
        api(server).translations.client_secrets.create()


def test_minted_secrets_never_reach_the_logs(
    server: LocalRealtimeServer,
    make_client: Callable[..., RealtimeClient],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    secret = api(server).client_secrets.create(session=SESSION)
    make_client(api_key=secret.value, auth="subprotocol").connect(timeout=5)
    assert caplog.records
    assert secret.value not in caplog.text and KEY not in caplog.text


def test_the_official_client_mints_secrets_on_our_server(
    server: LocalRealtimeServer, make_client: Callable[..., RealtimeClient]
) -> None:
    client = openai.OpenAI(api_key=KEY, base_url=server.http_base_url, max_retries=0)
    created = client.realtime.client_secrets.create(
        session={"type": "realtime", "model": "gpt-realtime-2.1", "instructions": "Be brief."},
        expires_after={"anchor": "created_at", "seconds": 120},
    )
    assert created.value.startswith("ek_")
    assert created.expires_at == pytest.approx(time.time() + 120, abs=5)
    assert created.session.type == "realtime"
    assert created.session.instructions == "Be brief."
    joined = make_client(api_key=created.value)
    joined.connect(timeout=5)
    assert joined.session.current is not None
    assert joined.session.current.instructions == "Be brief."

    translation = client.realtime.translations.client_secrets.create(
        session={"model": "gpt-realtime-translate", "audio": {"output": {"language": "de"}}}
    )
    assert translation.value.startswith("ek_") and translation.session.type == "translation"
    assert translation.session.audio.output is not None
    assert translation.session.audio.output.language == "de"
    transcription = client.realtime.client_secrets.create(session={"type": "transcription"})
    assert transcription.session.type == "transcription"
    with pytest.raises(openai.BadRequestError):
        client.realtime.client_secrets.create(expires_after={"anchor": "created_at", "seconds": 1})


def test_the_http_endpoints_serve_tls_with_the_websocket_ones() -> None:
    ca = trustme.CA()
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    trusting = ssl.create_default_context()
    ca.configure_trust(trusting)
    with LocalRealtimeServer(api_key=KEY, ssl_context=context) as server:
        assert server.http_base_url.startswith("https://127.0.0.1:")
        secret = RealtimeAPI(KEY, base_url=server.http_base_url, ssl_context=trusting)
        assert secret.client_secrets.create().value.startswith("ek_")
        with pytest.raises(TransportError, match="CERTIFICATE_VERIFY_FAILED"):
            RealtimeAPI(KEY, base_url=server.http_base_url).client_secrets.create()


def test_a_transcription_secret_describes_a_transcription_session(
    server: LocalRealtimeServer,
) -> None:
    transcription = {"type": "transcription", "audio": {"input": {"noise_reduction": None}}}
    secret = api(server).client_secrets.create(session=transcription)
    assert secret.session_type == "transcription"
    assert secret.session["object"] == "realtime.transcription_session"
    assert "instructions" not in secret.session


def replying(body: bytes) -> Callable[[RawPeer, socket.socket, bytes], None]:
    """A peer that answers every request 200 with ``body``."""

    def script(peer: RawPeer, conn: socket.socket, request: bytes) -> None:
        head = f"HTTP/1.1 200 OK\r\nContent-Length: {len(body)}\r\n\r\n".encode()
        conn.sendall(head + body)

    return script


@pytest.mark.parametrize(
    ("reply", "field"),
    [
        (b'{"value": "ek_0123456789", "expires_at": "soon"}', "expires_at"),
        (b'{"value": "ek_0123456789", "expires_at": 1e400}', "expires_at"),
        (b'{"value": "ek_0123456789", "expires_at": [1]}', "expires_at"),
        (b'{"value": "ek_0123456789", "expires_at": true}', "expires_at"),
        (b'{"value": "ek_0123456789", "session": [1]}', "session"),
        (b'{"value": "ek_0123456789", "session": "realtime"}', "session"),
    ],
)
def test_a_malformed_secret_in_the_reply_is_a_transport_error_naming_the_field(
    reply: bytes, field: str
) -> None:
    # expires_at "soon" raised ValueError, 1e400 OverflowError; a list session was kept.
    with RawPeer(replying(reply)) as peer:
        client = RealtimeAPI(KEY, base_url=f"http://127.0.0.1:{peer.port}/v1")
        with pytest.raises(TransportError, match=field):
            client.client_secrets.create()


def test_a_reply_without_expiry_or_session_still_gives_a_secret() -> None:
    with RawPeer(replying(b'{"value": "ek_0123456789", "expires_at": 1700000000.0}')) as peer:
        secret = RealtimeAPI(KEY, base_url=f"http://127.0.0.1:{peer.port}/v1").client_secrets
        minted = secret.create()
    assert minted.expires_at == 1700000000 and minted.session == {}


def test_twenty_clients_at_once_are_all_served(server: LocalRealtimeServer) -> None:
    # A listen backlog of 5 reset connections when 20 clients connected together.
    client = api(server)
    minted: list[str] = []
    failures: list[BaseException] = []
    start = threading.Barrier(20)

    def mint() -> None:
        start.wait()
        for _ in range(5):
            try:
                minted.append(client.client_secrets.create(expires_in=60).value)
            except Exception as error:  # reported below, with every other failure
                failures.append(error)

    threads = [threading.Thread(target=mint) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    assert len(set(minted)) == 100
