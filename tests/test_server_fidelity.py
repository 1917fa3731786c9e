"""The local server as a client meets it: model checks and the keys it keeps out of logs."""

from __future__ import annotations

import logging
import secrets

import pytest
import websocket
from conftest import KEY

from realtime_sync import BadRequestError, RealtimeClient
from realtime_sync._endpoints import DEFAULT_MODELS, Dialect
from realtime_sync._secrets import redact
from realtime_sync.testing import LocalRealtimeServer

pytestmark = pytest.mark.timeout(30)


def fresh_key(label: str) -> str:
    """A key no other test has registered (the secret registry lasts the whole process)."""
    return f"rs-{label}-{secrets.token_hex(12)}"


def test_client_asking_for_an_unknown_model_gets_a_bad_request(
    server: LocalRealtimeServer,
) -> None:
    client = RealtimeClient(api_key=KEY, url=server.url, model="gpt-realtime-nonexistent")
    with pytest.raises(BadRequestError) as caught:
        client.connect(timeout=5)
    client.close(timeout=5)
    assert caught.value.close_code == 4000
    assert caught.value.code == "model_not_found"


@pytest.mark.parametrize("dialect", ["ga", "beta"])
def test_the_clients_default_models_are_served(
    server: LocalRealtimeServer, dialect: Dialect
) -> None:
    with RealtimeClient(api_key=KEY, url=server.url, protocol=dialect) as client:
        assert client.session.current is not None
    assert server.connections[-1].query["model"] == DEFAULT_MODELS[dialect]


def test_the_servers_key_is_registered_for_redaction() -> None:
    key = fresh_key("server")
    assert redact(key) == key
    LocalRealtimeServer(api_key=key)
    assert redact(f"x {key} y") == "x *** y"


def test_every_key_a_client_presents_is_registered(server: LocalRealtimeServer) -> None:
    header_key, query_key = fresh_key("header"), fresh_key("query")
    ws = websocket.create_connection(
        f"{server.url}?model=gpt-realtime&api-key={query_key}",
        header=[f"Authorization: Bearer {header_key}"],
        timeout=5,
    )
    try:
        assert "invalid_api_key" in ws.recv()
    finally:
        ws.close(timeout=1)
        ws.shutdown()
    assert redact(f"{header_key} {query_key}") == "*** ***"


def test_keys_the_server_never_saw_are_masked_in_handshake_logs(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="realtime_sync.testing")
    keys = [fresh_key("unseen") for _ in range(3)]
    with LocalRealtimeServer(api_key=None) as server:
        ws = websocket.create_connection(
            f"{server.url}?model=gpt-realtime&api-key={keys[0]}",
            header=[f"Authorization: Bearer {keys[1]}"],
            subprotocols=["realtime", f"openai-insecure-api-key.{keys[2]}"],
            timeout=5,
        )
        try:
            assert "session.created" in ws.recv()
        finally:
            ws.close(timeout=1)
            ws.shutdown()
    assert "Authorization: ***" in caplog.text  # websockets' request log is there
    assert "openai-insecure-api-key.***" in caplog.text
    assert "api-key=***" in caplog.text
    for key in keys:
        assert key not in caplog.text
