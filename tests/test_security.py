"""The API key never shows: not in logs at any level, reprs, exceptions or printed URLs."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
import websocket
from conftest import KEY, user_message

from realtime_sync import AuthenticationError, ConfigurationError, RealtimeClient
from realtime_sync import _endpoints as endpoints
from realtime_sync.testing import LocalRealtimeServer

pytestmark = pytest.mark.timeout(30)


@pytest.fixture
def everything_logged(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    """DEBUG on every logger, and websocket-client's trace (which dumps request headers)."""
    caplog.set_level(logging.DEBUG)
    websocket.enableTrace(True, handler=logging.NullHandler())
    try:
        yield caplog
    finally:
        websocket.enableTrace(False)


@pytest.mark.parametrize("auth", ["header", "subprotocol", "query"])
@pytest.mark.parametrize("dialect", ["ga", "beta"])
def test_key_never_logged_through_a_full_session(
    everything_logged: pytest.LogCaptureFixture, auth: str, dialect: str
) -> None:
    with LocalRealtimeServer(api_key=KEY) as server:
        client = RealtimeClient(api_key=KEY, url=server.url, auth=auth, protocol=dialect)
        client.on("error", lambda ev: None)
        with client:
            done = client.expect("response.done")
            client.send(user_message("hello"))
            client.send({"type": "response.create"})
            done.wait(5)
            error = client.expect("error")
            client.send({"type": "no.such.event"})
            error.wait(5)
            shown = [repr(client), str(client.url), repr(client.session)]
    text = everything_logged.text
    assert "Sending ping" in text or "connected" in text  # the capture did see the session
    assert KEY not in text
    for record in everything_logged.records:
        assert KEY not in record.getMessage()
    for item in shown:
        assert KEY not in item


def test_query_auth_url_is_masked(server: LocalRealtimeServer) -> None:
    client = RealtimeClient(api_key=KEY, auth="query", url=server.url)
    with client:
        shown = f"{client.url} {client!r}"
    assert KEY not in shown
    # The key did travel in the query; only what is shown is masked.
    assert server.connections[-1].query["api-key"] == KEY
    given = RealtimeClient(api_key=KEY, url=f"{server.url}?api-key={KEY}")
    assert "api-key=***" in given.url and KEY not in repr(given)


def test_wrong_key_not_in_exception_or_logs(everything_logged: pytest.LogCaptureFixture) -> None:
    wrong = "rs-wrong-key-2222222222222222"
    with LocalRealtimeServer(api_key=KEY) as server:
        for auth in ("header", "subprotocol", "query"):
            client = RealtimeClient(api_key=wrong, url=server.url, auth=auth)
            with pytest.raises(AuthenticationError) as caught:
                client.connect(timeout=5)
            assert wrong not in str(caught.value)
            assert wrong not in repr(caught.value.body)
    assert wrong not in everything_logged.text


def test_azure_key_and_token_not_shown(everything_logged: pytest.LogCaptureFixture) -> None:
    token = "entra-token-secret-3333333333"
    with LocalRealtimeServer() as server:
        keyed = RealtimeClient.azure(endpoint=server.azure_endpoint, deployment="d", api_key=KEY)
        with keyed:
            shown = repr(keyed)
        tokened = RealtimeClient.azure(
            endpoint=server.azure_endpoint, deployment="d", azure_ad_token_provider=lambda: token
        )
        with tokened:
            shown += repr(tokened)
    assert KEY not in shown and token not in shown
    assert KEY not in everything_logged.text
    assert token not in everything_logged.text


@pytest.mark.parametrize(
    "url",
    ["ws://relay.example/v1/realtime", "http://10.0.0.5:8080/v1/realtime", "ws://192.0.2.1/rt"],
)
def test_a_key_is_never_sent_in_clear_text_off_this_machine(url: str) -> None:
    with pytest.raises(ConfigurationError, match="clear text") as raised:
        RealtimeClient(api_key=KEY, url=url)
    assert KEY not in str(raised.value)
    RealtimeClient(api_key=KEY, url=url, allow_insecure=True)  # a network the caller trusts
    with pytest.raises(ConfigurationError, match="clear text"):
        RealtimeClient.azure(endpoint="http://my-resource.example", deployment="d", api_key=KEY)


@pytest.mark.parametrize(
    "url",
    [
        "ws://127.0.0.1:9/v1/realtime",
        "ws://127.0.0.2/rt",
        "ws://localhost/rt",
        "ws://[::1]:9/rt",
        "wss://relay.example/rt",
        "https://relay.example/v1/realtime",
    ],
)
def test_loopback_and_tls_are_fine(url: str) -> None:
    RealtimeClient(api_key=KEY, url=url)


def test_query_auth_warns_once(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(endpoints, "_warned_query", False)
    with caplog.at_level(logging.WARNING, logger="realtime_sync"):
        for _ in range(3):
            RealtimeClient(api_key=KEY, url="wss://relay.example/rt", auth="query")
    warnings = [r for r in caplog.records if "auth='query'" in r.getMessage()]
    assert len(warnings) == 1 and KEY not in caplog.text
