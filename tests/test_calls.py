"""Call control over HTTP and joining a call over WebSocket, against the local server, with
our client and with the official ``openai`` package as a third-party client."""

from __future__ import annotations

import json
import logging
import math
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import openai
import pytest
from conftest import KEY
from rawpeer import RawPeer

from realtime_sync import (
    AuthenticationError,
    BadRequestError,
    ConfigurationError,
    InternalServerError,
    RateLimitError,
    RealtimeAPI,
    RealtimeClient,
    RealtimeTimeoutError,
    ReconnectPolicy,
    RedirectError,
    TransportError,
)
from realtime_sync._reconnect import LONGEST_RETRY_AFTER
from realtime_sync.testing import LocalRealtimeServer
from realtime_sync.testing._calls import LocalCalls

SESSION = {
    "type": "realtime",
    "instructions": "You answer the phone.",
    "output_modalities": ["text"],
}


def api(server: LocalRealtimeServer, **options: object) -> RealtimeAPI:
    return RealtimeAPI(KEY, base_url=server.http_base_url, **options)  # type: ignore[arg-type]


def official(server: LocalRealtimeServer) -> openai.OpenAI:
    return openai.OpenAI(api_key=KEY, base_url=server.http_base_url, max_retries=0)


# Call control with RealtimeAPI


def test_accept_records_the_session(server: LocalRealtimeServer) -> None:
    call = server.calls.create_incoming()
    api(server).calls.accept(call.call_id, session={"instructions": "Hello."})
    record = server.calls.get(call.call_id)
    assert record is not None and record.state == "accepted"
    assert record.session == {"type": "realtime", "instructions": "Hello."}
    assert server.calls.requests == [("POST", f"/v1/realtime/calls/{call.call_id}/accept")]


def test_reject_refer_and_hangup(server: LocalRealtimeServer) -> None:
    client = api(server)
    first, second, third = (server.calls.create_incoming() for _ in range(3))
    client.calls.reject(first.call_id)
    client.calls.reject(second.call_id, status_code=486)
    client.calls.accept(third.call_id, session=SESSION)
    client.calls.refer(third.call_id, target_uri="tel:+14155550123")
    assert server.calls.get(first.call_id).status_code == 603  # type: ignore[union-attr]
    assert server.calls.get(second.call_id).status_code == 486  # type: ignore[union-attr]
    assert server.calls.get(third.call_id).target_uri == "tel:+14155550123"  # type: ignore[union-attr]
    client.calls.hangup(third.call_id)
    assert server.calls.get(third.call_id).state == "ended"  # type: ignore[union-attr]


def test_an_unknown_call_is_a_404_bad_request(server: LocalRealtimeServer) -> None:
    with pytest.raises(BadRequestError) as caught:
        api(server).calls.accept("rtc_nope", session=SESSION)
    assert caught.value.status_code == 404 and caught.value.code == "call_not_found"
    assert caught.value.request_id == "req_local"


def test_a_call_answered_twice_is_refused(server: LocalRealtimeServer) -> None:
    call = server.calls.create_incoming()
    api(server).calls.reject(call.call_id)
    with pytest.raises(BadRequestError) as caught:
        api(server).calls.accept(call.call_id, session=SESSION)
    assert caught.value.status_code == 400


def test_an_empty_call_id_is_refused_before_sending(server: LocalRealtimeServer) -> None:
    with pytest.raises(ConfigurationError):
        api(server).calls.hangup("")
    assert server.calls.requests == []


def test_statuses_map_to_the_same_errors_as_the_handshake(server: LocalRealtimeServer) -> None:
    client = api(server)
    server.calls.fail_next(429, code="rate_limit_exceeded", headers={"Retry-After": "2"})
    with pytest.raises(RateLimitError) as limited:
        client.calls.hangup("rtc_1")
    assert limited.value.status_code == 429 and limited.value.retry_after == 2.0
    for status in (500, 503):
        server.calls.fail_next(status)
        with pytest.raises(InternalServerError) as failed:
            client.calls.hangup("rtc_1")
        assert failed.value.status_code == status
    server.calls.fail_next(307, headers={"Location": "https://elsewhere.example/v1"})
    with pytest.raises(RedirectError) as moved:
        client.calls.hangup("rtc_1")
    assert moved.value.location == "https://elsewhere.example/v1"
    assert "answered with a redirect" in str(moved.value)  # a POST, not a WebSocket upgrade
    assert "WebSocket" not in str(moved.value)
    assert [path for _, path in server.calls.requests].count("/v1/realtime/calls/rtc_1/hangup") == 4


def test_a_wrong_key_is_an_authentication_error_that_never_shows_a_key(
    server: LocalRealtimeServer, caplog: pytest.LogCaptureFixture
) -> None:
    wrong = "rs-test-key-wrong-0123456789"
    caplog.set_level(logging.DEBUG)
    client = RealtimeAPI(wrong, base_url=server.http_base_url)
    with pytest.raises(AuthenticationError) as caught:
        client.calls.hangup("rtc_1")
    error = caught.value
    assert error.status_code == 401 and error.code == "invalid_api_key"
    shown = " ".join([str(error), repr(error), repr(error.body), repr(error.headers), repr(client)])
    shown += caplog.text + repr(client._endpoint)
    assert wrong not in shown and KEY not in shown
    assert caplog.records  # the request was logged, without the key


def test_a_slow_answer_times_out(server: LocalRealtimeServer) -> None:
    server.calls.delay_next(5)
    started = time.monotonic()
    with pytest.raises(RealtimeTimeoutError, match=r"no answer within 0\.2 s"):
        api(server, timeout=0.2).calls.hangup("rtc_1")
    assert time.monotonic() - started < 2
    server.calls.delay_next(5)
    with pytest.raises(RealtimeTimeoutError):
        api(server).calls.hangup("rtc_1", timeout=0.2)


def test_nobody_listening_is_a_transport_error() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(TransportError):
        RealtimeAPI(KEY, base_url=f"http://127.0.0.1:{port}/v1", timeout=2).calls.hangup("rtc_1")


def test_configuration_is_checked_up_front(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(ConfigurationError, match="no API key"):
        RealtimeAPI()
    with pytest.raises(ConfigurationError, match="clear text"):
        RealtimeAPI(KEY, base_url="http://api.example.com/v1")
    RealtimeAPI(KEY, base_url="http://api.example.com/v1", allow_insecure=True)
    with pytest.raises(ConfigurationError, match="timeout"):
        RealtimeAPI(KEY, timeout=0)
    assert "rs-test" not in repr(RealtimeAPI(KEY))


def test_azure_sends_the_api_key_header_and_refuses_translation_secrets(
    server: LocalRealtimeServer,
) -> None:
    endpoint = server.http_base_url.removesuffix("/v1")
    azure = RealtimeAPI.azure(endpoint=endpoint, api_key=KEY)
    call = server.calls.create_incoming()
    azure.calls.accept(call.call_id, session=SESSION)
    assert server.calls.requests[-1] == ("POST", f"/openai/v1/realtime/calls/{call.call_id}/accept")
    tokens = RealtimeAPI.azure(endpoint=endpoint, azure_ad_token_provider=lambda: KEY)
    tokens.calls.hangup(call.call_id)
    with pytest.raises(ConfigurationError, match="translation"):
        azure.translations.client_secrets.create(session={"model": "gpt-realtime-translate"})
    with pytest.raises(ConfigurationError, match="not both"):
        RealtimeAPI.azure(endpoint=endpoint, api_key=KEY, azure_ad_token_provider=lambda: KEY)


def test_azure_sends_an_ephemeral_key_as_a_bearer_token() -> None:
    seen: list[Mapping[str, str]] = []

    class Capture(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            seen.append({k.lower(): v for k, v in self.headers.items()})
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    with ThreadingHTTPServer(("127.0.0.1", 0), Capture) as http:
        thread = threading.Thread(target=http.serve_forever, daemon=True)
        thread.start()
        endpoint = f"http://127.0.0.1:{http.server_address[1]}"
        RealtimeAPI.azure(endpoint=endpoint, api_key="ek_" + KEY).calls.hangup("rtc_1")
        RealtimeAPI.azure(endpoint=endpoint, api_key=KEY).calls.hangup("rtc_1")
        http.shutdown()
        thread.join(timeout=5)
    assert seen[0].get("authorization") == f"Bearer ek_{KEY}" and "api-key" not in seen[0]
    assert seen[1].get("api-key") == KEY and "authorization" not in seen[1]


def chain(error: BaseException) -> str:
    """Everything an exception and the exceptions behind it show."""
    shown = []
    seen: BaseException | None = error
    while seen is not None:
        shown += [str(seen), repr(seen), repr(vars(seen)), repr(seen.args)]
        seen = seen.__cause__ or seen.__context__
    return " ".join(shown)


@pytest.mark.parametrize(
    "key", [KEY + "\n", KEY + "\r\n", f" {KEY}", f"{KEY}\t", KEY[:8] + "\r\nX-Injected: 1"]
)
def test_a_key_with_a_line_break_or_padding_is_refused_without_showing_it(key: str) -> None:
    # http.client raised ValueError("Invalid header value b'Bearer <the key>\\n'").
    with pytest.raises(ConfigurationError, match="control characters") as caught:
        RealtimeAPI(key, base_url="http://127.0.0.1:9/v1")
    assert key.strip() not in chain(caught.value) and KEY[:8] not in str(caught.value)
    with pytest.raises(ConfigurationError, match="control characters") as azure:
        RealtimeAPI.azure(endpoint="https://r.openai.azure.com", api_key=key)
    assert key.strip() not in chain(azure.value)


def test_a_token_with_a_line_break_is_refused_before_sending(server: LocalRealtimeServer) -> None:
    endpoint = server.http_base_url.removesuffix("/v1")
    tokens = RealtimeAPI.azure(endpoint=endpoint, azure_ad_token_provider=lambda: KEY + "\n")
    with pytest.raises(ConfigurationError, match="token provider") as caught:
        tokens.calls.hangup("rtc_1")
    assert KEY not in chain(caught.value)
    assert server.calls.requests == []


def test_no_error_of_building_the_request_carries_the_key(server: LocalRealtimeServer) -> None:
    # Not Latin-1: http.client cannot encode the header, and its error quotes the key.
    key = "rs-test-key-\u2019-0123456789abcdef"
    with pytest.raises(TransportError, match="could not be sent") as caught:
        RealtimeAPI(key, base_url=server.http_base_url).calls.hangup("rtc_1")
    assert key not in chain(caught.value) and "0123456789abcdef" not in chain(caught.value)
    with pytest.raises(ConfigurationError, match="X-Custom") as header:
        RealtimeAPI(KEY, headers={"X-Custom": f"{KEY}\r\nX-Injected: 1"})
    assert KEY not in chain(header.value)


def test_a_base_url_with_credentials_in_it_is_refused_without_showing_them() -> None:
    with pytest.raises(ConfigurationError, match="api_key") as caught:
        RealtimeAPI(KEY, base_url="https://user:pw-secret-0123@api.example.com/v1")
    assert "pw-secret" not in chain(caught.value)
    with pytest.raises(ConfigurationError, match="api_key"):
        RealtimeAPI.azure(endpoint="https://user@r.openai.azure.com", api_key=KEY)


BAD_TIMEOUTS = [math.nan, math.inf, 0, -1, True, "5"]


@pytest.mark.parametrize("timeout", BAD_TIMEOUTS)
def test_a_timeout_that_is_not_a_positive_number_is_refused_up_front(
    server: LocalRealtimeServer, timeout: Any
) -> None:
    with pytest.raises(ConfigurationError, match="timeout"):
        api(server, timeout=timeout)
    with pytest.raises(ConfigurationError, match="timeout"):
        RealtimeAPI.azure(endpoint="https://r.openai.azure.com", api_key=KEY, timeout=timeout)
    client = api(server)
    with pytest.raises(ConfigurationError, match="timeout"):
        client.calls.hangup("rtc_1", timeout=timeout)
    with pytest.raises(ConfigurationError, match="timeout"):
        client.client_secrets.create(timeout=timeout)
    assert server.calls.requests == []


def dripping(head: bool) -> Callable[[RawPeer, socket.socket, bytes], None]:
    """A peer that answers a byte at a time: the reply's head (``head``) or its body."""

    def script(peer: RawPeer, conn: socket.socket, request: bytes) -> None:
        answer = b"HTTP/1.1 200 OK\r\nContent-Length: 40\r\n\r\n" + b" " * 40
        start = 0 if head else answer.index(b"\r\n\r\n") + 4
        conn.sendall(answer[:start])
        for byte in answer[start:]:
            if peer.release.wait(0.1):
                return
            conn.sendall(bytes([byte]))

    return script


@pytest.mark.parametrize("head", [False, True])
def test_the_timeout_bounds_the_whole_request_not_each_read(head: bool) -> None:
    # Each byte came within the timeout, so a per-read timeout let this run for 4 s.
    with RawPeer(dripping(head)) as peer:
        client = RealtimeAPI(KEY, base_url=f"http://127.0.0.1:{peer.port}/v1", timeout=0.5)
        started = time.monotonic()
        with pytest.raises(RealtimeTimeoutError, match=r"no answer within 0\.5 s"):
            client.calls.hangup("rtc_1")
        assert time.monotonic() - started < 1.5
        started = time.monotonic()
        with pytest.raises(RealtimeTimeoutError, match=r"within 0\.3 s"):
            RealtimeAPI(KEY, base_url=f"http://127.0.0.1:{peer.port}/v1").calls.hangup(
                "rtc_1", timeout=0.3
            )
        assert time.monotonic() - started < 1.3


@pytest.mark.parametrize("retry_after", ["Wed, 21 Oct 2099 07:28:00 GMT", "1e9"])
def test_a_retry_after_far_away_is_clamped_as_the_reconnecting_client_clamps_it(
    server: LocalRealtimeServer, retry_after: str
) -> None:
    server.calls.fail_next(429, headers={"Retry-After": retry_after})
    with pytest.raises(RateLimitError) as limited:
        api(server).calls.hangup("rtc_1")
    assert limited.value.retry_after == LONGEST_RETRY_AFTER


@pytest.fixture
def fast_switching() -> Iterator[None]:
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # threads interleave at every few bytecodes
    yield
    sys.setswitchinterval(interval)


def race(
    calls: LocalCalls,
    start: threading.Barrier,
    path: str,
    body: dict[str, Any],
    *,
    headers: dict[str, str],
    statuses: list[int],
) -> None:
    """POST ``body`` to ``path`` of ``calls`` once every racer is ready."""
    payload = json.dumps(body).encode()
    start.wait()
    statuses.append(calls.handle("POST", path, headers, payload).status)


@pytest.mark.usefixtures("fast_switching")
@pytest.mark.parametrize("actions", [("accept", "reject"), ("accept", "accept")])
def test_of_two_racing_answers_to_a_call_exactly_one_wins(actions: tuple[str, str]) -> None:
    calls = LocalCalls(KEY, None)
    headers = {"authorization": f"Bearer {KEY}"}
    bodies = {"accept": {"type": "realtime"}, "reject": {}}
    for _ in range(200):
        call_id = calls.create_incoming().call_id
        statuses: list[int] = []
        start = threading.Barrier(2)
        threads = [
            threading.Thread(
                target=race,
                args=(calls, start, f"/v1/realtime/calls/{call_id}/{action}", bodies[action]),
                kwargs={"headers": headers, "statuses": statuses},
            )
            for action in actions
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert sorted(statuses) == [200, 400]


# The official client against our server


def test_the_official_client_controls_calls_on_our_server(server: LocalRealtimeServer) -> None:
    client = official(server)
    accepted, rejected = server.calls.create_incoming(), server.calls.create_incoming()
    client.realtime.calls.accept(accepted.call_id, type="realtime", instructions="Hi from openai.")
    client.realtime.calls.refer(accepted.call_id, target_uri="sip:agent@example.com")
    client.realtime.calls.hangup(accepted.call_id)
    client.realtime.calls.reject(rejected.call_id, status_code=486)
    first = server.calls.get(accepted.call_id)
    assert first is not None and first.state == "ended"
    assert first.session == {"type": "realtime", "instructions": "Hi from openai."}
    assert first.target_uri == "sip:agent@example.com"
    assert server.calls.get(rejected.call_id).status_code == 486  # type: ignore[union-attr]
    with pytest.raises(openai.NotFoundError):
        client.realtime.calls.hangup("rtc_unknown")
    server.calls.fail_next(429)
    with pytest.raises(openai.RateLimitError):
        client.realtime.calls.hangup(accepted.call_id)
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(
            api_key="rs-test-key-bad", base_url=server.http_base_url
        ).realtime.calls.hangup("rtc_1")


# Joining a call over WebSocket


def test_joining_an_accepted_call_starts_from_its_session(
    server: LocalRealtimeServer, make_client: Callable[..., RealtimeClient]
) -> None:
    call = server.calls.create_incoming()
    api(server).calls.accept(call.call_id, session=SESSION)
    client = make_client(call_id=call.call_id)
    assert f"call_id={call.call_id}" in client.url and "model=" not in client.url
    client.connect(timeout=5)
    assert client.session.current is not None
    assert client.session.current.instructions == "You answer the phone."
    assert server.connections[-1].query == {"call_id": call.call_id}
    assert client.send_text("Who is calling?", timeout=5).text


@pytest.mark.parametrize(
    "reconnect", [True, ReconnectPolicy(initial_delay=0.05, replay=True)], ids=["default", "own"]
)
def test_a_dropped_join_joins_again_without_sending_the_conversation_again(
    server: LocalRealtimeServer,
    make_client: Callable[..., RealtimeClient],
    reconnect: bool | ReconnectPolicy,
) -> None:
    # The call's session lives on the service: a replay would repeat every item in it (and
    # the service refuses an item that exists), whatever the policy says.
    call = server.calls.create_incoming()
    api(server).calls.accept(call.call_id, session=SESSION)
    client = make_client(call_id=call.call_id, reconnect=reconnect)
    client.connect(timeout=5)
    client.send_text("Who is calling?", timeout=5)
    back = client.expect("client.reconnected")
    server.drop_connections()
    report = back.wait(10).report
    assert report.replayed == () and not report.session_updated
    assert server.connections[-1].query == {"call_id": call.call_id}
    assert server.connections[-1].received == []


@pytest.mark.parametrize("accept", [False, True])
def test_joining_an_unknown_or_unanswered_call_is_refused(
    server: LocalRealtimeServer, make_client: Callable[..., RealtimeClient], accept: bool
) -> None:
    call_id = server.calls.create_incoming().call_id if accept else "rtc_unknown"
    client = make_client(call_id=call_id, reconnect=False)
    with pytest.raises(BadRequestError) as caught:
        client.connect(timeout=5)
    assert caught.value.close_code == 4000 and caught.value.code == "call_not_found"


def test_call_id_and_model_are_exclusive_and_need_ga() -> None:
    with pytest.raises(ConfigurationError, match="either model"):
        RealtimeClient(KEY, call_id="rtc_1", model="gpt-realtime-2.1")
    with pytest.raises(ConfigurationError, match="GA protocol"):
        RealtimeClient(KEY, call_id="rtc_1", protocol="beta")
    with pytest.raises(ConfigurationError, match="either intent"):
        RealtimeClient(KEY, call_id="rtc_1", intent="transcription")
    with pytest.raises(ConfigurationError, match="non-empty"):
        RealtimeClient(KEY, call_id="")
    url = RealtimeClient(KEY, call_id="rtc_1").url
    assert url == "wss://api.openai.com/v1/realtime?call_id=rtc_1"


def test_azure_joins_on_the_ga_path_and_refuses_the_legacy_one() -> None:
    endpoint = "https://my-resource.openai.azure.com"
    client = RealtimeClient.azure(endpoint=endpoint, api_key=KEY, api_version="", call_id="rtc_1")
    assert client.url == "wss://my-resource.openai.azure.com/openai/v1/realtime?call_id=rtc_1"
    with pytest.raises(ConfigurationError, match="api-version endpoint cannot join"):
        RealtimeClient.azure(
            endpoint=endpoint, api_key=KEY, api_version="2024-10-01-preview", call_id="rtc_1"
        )
    with pytest.raises(ConfigurationError, match="either model"):
        RealtimeClient.azure(
            endpoint=endpoint, api_key=KEY, api_version="", deployment="d", call_id="rtc_1"
        )


def test_hanging_up_ends_the_sessions_that_joined_the_call(
    server: LocalRealtimeServer, make_client: Callable[..., RealtimeClient]
) -> None:
    call, other = server.calls.create_incoming(), server.calls.create_incoming()
    for each in (call, other):
        api(server).calls.accept(each.call_id, session=SESSION)
    joined, bystander = make_client(call_id=call.call_id), make_client(call_id=other.call_id)
    joined.connect(timeout=5)
    bystander.connect(timeout=5)
    closed = joined.expect("client.closed")
    api(server).calls.hangup(call.call_id)
    event = closed.wait(timeout=5)
    assert event.code == 1000 and event.reason == "call ended" and not event.retryable
    assert bystander.connected


def test_an_azure_client_joins_an_accepted_call_on_the_local_server(
    server: LocalRealtimeServer,
) -> None:
    call = server.calls.create_incoming()
    api(server).calls.accept(call.call_id, session=SESSION)
    client = RealtimeClient.azure(
        endpoint=server.azure_endpoint, api_key=KEY, api_version="", call_id=call.call_id
    )
    try:
        client.connect(timeout=5)
        assert client.session.current is not None
        assert client.session.current.instructions == "You answer the phone."
        assert server.connections[-1].path == "/openai/v1/realtime"
        assert server.connections[-1].auth == "api-key"
    finally:
        client.close(timeout=5)
