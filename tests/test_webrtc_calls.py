"""WebRTC call creation (``POST /realtime/calls`` with an SDP offer): our client against the
local server, joining and hanging up the call it creates, with the server's key and with
ephemeral keys; and the official ``openai`` package as a third-party client."""

from __future__ import annotations

import email.parser
import email.policy
import json
import logging
import secrets
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from typing import Any

import openai
import pytest
from conftest import KEY
from rawpeer import RawPeer

from realtime_sync import (
    AuthenticationError,
    BadRequestError,
    ConfigurationError,
    RateLimitError,
    RealtimeAPI,
    RealtimeClient,
    RealtimeTimeoutError,
    TransportError,
    WebRTCCall,
)
from realtime_sync._http import multipart
from realtime_sync.testing import LocalRealtimeServer
from realtime_sync.testing._calls import HttpAnswer
from realtime_sync.testing._webrtc import answer_sdp

# A browser-like offer: audio (opus as payload type 109) and the events' data channel.
OFFER = "\r\n".join(
    [
        "v=0",
        "o=- 4611731400430051336 2 IN IP4 127.0.0.1",
        "s=-",
        "t=0 0",
        "a=group:BUNDLE a1 d2",
        "a=extmap-allow-mixed",
        "a=msid-semantic: WMS stream",
        "m=audio 9 UDP/TLS/RTP/SAVPF 109 0 8",
        "c=IN IP4 0.0.0.0",
        "a=ice-ufrag:Ab3d",
        "a=ice-pwd:0123456789abcdefghijklmn",
        "a=fingerprint:sha-256 " + ":".join(["AB"] * 32),
        "a=setup:actpass",
        "a=mid:a1",
        "a=sendrecv",
        "a=rtcp-mux",
        "a=rtpmap:109 opus/48000/2",
        "a=rtpmap:0 PCMU/8000",
        "a=rtpmap:8 PCMA/8000",
        "m=application 9 UDP/DTLS/SCTP webrtc-datachannel",
        "c=IN IP4 0.0.0.0",
        "a=mid:d2",
        "a=sctp-port:5000",
        "",
    ]
)
SESSION = {
    "type": "realtime",
    "instructions": "You talk in a browser.",
    "output_modalities": ["text"],
}


def api(server: LocalRealtimeServer, key: str = KEY, **options: Any) -> RealtimeAPI:
    return RealtimeAPI(key, base_url=server.http_base_url, **options)


def official(server: LocalRealtimeServer, key: str = KEY) -> openai.OpenAI:
    return openai.OpenAI(api_key=key, base_url=server.http_base_url, max_retries=0)


def sdp_lines(sdp: str) -> list[str]:
    assert sdp.endswith("\r\n")
    return sdp.split("\r\n")[:-1]


def raw_post(server: LocalRealtimeServer, body: bytes, content_type: str) -> tuple[int, Any]:
    """POST ``body`` to the server's calls endpoint with its key: status, JSON reply."""
    request = urllib.request.Request(
        server.http_base_url + "/realtime/calls",
        data=body,
        headers={"Authorization": f"Bearer {KEY}", "Content-Type": content_type},
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as reply:
            return reply.status, reply.read()
    except urllib.error.HTTPError as refused:
        with refused:
            return refused.code, json.loads(refused.read())


# Creating a call with our client


def test_a_bare_offer_creates_an_accepted_call_and_gets_an_answer(
    server: LocalRealtimeServer,
) -> None:
    call = api(server).calls.create(OFFER)
    assert isinstance(call, WebRTCCall)
    assert call.call_id.startswith("rtc_")
    assert call.location == f"/v1/realtime/calls/{call.call_id}"
    lines = sdp_lines(call.sdp)
    assert lines[:4] == ["v=0", lines[1], "s=-", "t=0 0"] and lines[1].startswith("o=- ")
    assert "a=group:BUNDLE a1 d2" in lines
    audio, data = (
        lines.index("m=audio 9 UDP/TLS/RTP/SAVPF 109"),
        lines.index("m=application 9 UDP/DTLS/SCTP webrtc-datachannel"),
    )
    assert lines.index("a=mid:a1") > audio and lines.index("a=mid:d2") > data
    assert "a=rtpmap:109 opus/48000/2" in lines and "a=setup:passive" in lines
    assert any(line.startswith("a=ice-ufrag:") for line in lines)
    assert any(line.startswith("a=fingerprint:sha-256 ") for line in lines)
    record = server.calls.get(call.call_id)
    assert record is not None and record.state == "accepted"
    assert record.session == {"type": "realtime"}
    assert server.calls.requests == [("POST", "/v1/realtime/calls")]
    assert call.sdp not in repr(call) and call.call_id in repr(call)


def test_the_answer_is_the_same_for_the_same_call_and_differs_between_calls(
    server: LocalRealtimeServer,
) -> None:
    first, second = (api(server).calls.create(OFFER) for _ in range(2))
    assert first.call_id != second.call_id
    ufrags = [
        [line for line in sdp_lines(call.sdp) if line.startswith("a=ice-ufrag:")]
        for call in (first, second)
    ]
    assert ufrags[0] != ufrags[1]
    assert answer_sdp(OFFER, first.call_id) == first.sdp


def test_a_session_starts_the_call_and_its_join(
    server: LocalRealtimeServer, make_client: Callable[..., RealtimeClient]
) -> None:
    call = api(server).calls.create(OFFER, session={"instructions": "You talk in a browser."})
    record = server.calls.get(call.call_id)
    assert record is not None and record.session == {
        "type": "realtime",
        "instructions": "You talk in a browser.",
    }
    joined = make_client(call_id=call.call_id)
    joined.connect(timeout=5)
    assert joined.session.current is not None
    assert joined.session.current.instructions == "You talk in a browser."
    assert server.connections[-1].query == {"call_id": call.call_id}


def test_hanging_up_a_created_call_ends_its_join(
    server: LocalRealtimeServer, make_client: Callable[..., RealtimeClient]
) -> None:
    client = api(server)
    call = client.calls.create(OFFER, session=SESSION)
    joined = make_client(call_id=call.call_id)
    joined.connect(timeout=5)
    assert joined.send_text("Are you there?", timeout=5).text
    closed = joined.expect("client.closed")
    client.calls.hangup(call.call_id)
    event = closed.wait(timeout=5)
    assert event.code == 1000 and event.reason == "call ended" and not event.retryable
    assert server.calls.get(call.call_id).state == "ended"  # type: ignore[union-attr]


def test_an_ephemeral_key_creates_a_call_from_its_session(
    server: LocalRealtimeServer, make_client: Callable[..., RealtimeClient]
) -> None:
    secret = api(server).client_secrets.create(session=SESSION, expires_in=60)
    browser = api(server, secret.value)
    bare = browser.calls.create(OFFER)
    joined = make_client(call_id=bare.call_id)
    joined.connect(timeout=5)
    assert joined.session.current is not None
    assert joined.session.current.instructions == "You talk in a browser."
    # A session part is laid over the key's, as accept's would be.
    overridden = browser.calls.create(OFFER, session={"instructions": "Now be terse."})
    record = server.calls.get(overridden.call_id)
    assert record is not None and record.session is not None
    assert record.session["instructions"] == "Now be terse."
    assert record.session["output_modalities"] == ["text"]  # kept from the key
    with pytest.raises(AuthenticationError):  # an ephemeral key creates calls, no more
        browser.calls.hangup(bare.call_id)


def test_an_expired_ephemeral_key_is_refused(server: LocalRealtimeServer) -> None:
    secret = api(server).client_secrets.create(session=SESSION, expires_in=10)
    server.calls.clock = lambda: time.time() + 11
    with pytest.raises(AuthenticationError) as caught:
        api(server, secret.value).calls.create(OFFER)
    assert caught.value.status_code == 401 and caught.value.code == "invalid_api_key"


def test_an_expired_ephemeral_key_is_refused_even_where_any_key_is_taken() -> None:
    # Any non-empty key opens this server, but a key it minted and saw expire does not.
    with LocalRealtimeServer(api_key=None) as server:
        secret = api(server).client_secrets.create(expires_in=10)
        api(server, secret.value).calls.create(OFFER)
        server.calls.clock = lambda: time.time() + 11
        with pytest.raises(AuthenticationError):
            api(server, secret.value).calls.create(OFFER)


def test_a_wrong_key_is_refused_and_never_shown(
    server: LocalRealtimeServer, caplog: pytest.LogCaptureFixture
) -> None:
    wrong = "rs-test-key-wrong-webrtc-0123456789"
    caplog.set_level(logging.DEBUG)
    with pytest.raises(AuthenticationError) as caught:
        api(server, wrong).calls.create(OFFER, session=SESSION)
    assert caught.value.status_code == 401
    shown = " ".join([str(caught.value), repr(caught.value), repr(caught.value.body)])
    assert wrong not in shown + caplog.text and KEY not in caplog.text
    assert caplog.records


def test_the_azure_paths_create_calls_too(server: LocalRealtimeServer) -> None:
    azure = RealtimeAPI.azure(endpoint=server.http_base_url.removesuffix("/v1"), api_key=KEY)
    call = azure.calls.create(OFFER, session=SESSION)
    assert server.calls.requests == [("POST", "/openai/v1/realtime/calls")]
    assert call.location == f"/openai/v1/realtime/calls/{call.call_id}"
    assert server.calls.get(call.call_id).state == "accepted"  # type: ignore[union-attr]


def test_a_model_the_server_lacks_is_refused(server: LocalRealtimeServer) -> None:
    with pytest.raises(BadRequestError) as caught:
        api(server).calls.create(OFFER, session={"model": "gpt-nonexistent"})
    assert caught.value.code == "model_not_found" and caught.value.param == "model"


# What the server refuses


def test_an_offer_without_media_is_a_400_naming_sdp(server: LocalRealtimeServer) -> None:
    with pytest.raises(BadRequestError) as caught:
        api(server).calls.create("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n")
    assert caught.value.status_code == 400 and caught.value.param == "sdp"
    assert caught.value.code == "invalid_offer"


@pytest.mark.parametrize(
    ("body", "content_type", "code"),
    [
        (b"hello, this is not SDP", "application/sdp", "invalid_offer"),
        (b"\xff\xfe v=0", "application/sdp", "invalid_offer"),
        (OFFER.replace(" 109 0 8", "").encode(), "application/sdp", "invalid_offer"),
        (json.dumps({"sdp": OFFER}).encode(), "application/json", "invalid_content_type"),
        (OFFER.encode(), "text/plain", "invalid_content_type"),
        (b"", "", "invalid_content_type"),
    ],
)
def test_a_body_that_is_no_offer_is_a_400_json_error(
    server: LocalRealtimeServer, body: bytes, content_type: str, code: str
) -> None:
    status, reply = raw_post(server, body, content_type)
    assert status == 400 and reply["error"]["code"] == code
    assert reply["error"]["type"] == "invalid_request_error"


@pytest.mark.parametrize("length", ["abc", "-5", "1_0", "9" * 5000])
def test_a_content_length_that_is_no_number_is_a_400_not_a_dropped_connection(
    server: LocalRealtimeServer, length: str
) -> None:
    # The handler died in int() and closed the connection with no answer.
    host, port = server.http_base_url.split("/")[2].split(":")
    with socket.create_connection((host, int(port)), timeout=5) as conn:
        conn.sendall(
            f"POST /v1/realtime/calls HTTP/1.1\r\nHost: {host}\r\n"
            f"Authorization: Bearer {KEY}\r\nContent-Type: application/sdp\r\n"
            f"Content-Length: {length}\r\n\r\n{OFFER}".encode()
        )
        reply = conn.makefile("rb").read()
    head, _, body = reply.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.0 400 ")
    assert json.loads(body)["error"]["type"] == "invalid_request_error"
    assert server.calls.requests == []


@pytest.mark.parametrize("model", [["gpt-realtime"], {"name": "gpt-realtime"}, 5])
def test_a_model_that_is_not_a_string_is_a_400_not_a_dropped_connection(
    model: Any,
) -> None:
    # With a list of models, an unhashable one raised in the handler: no answer at all.
    with LocalRealtimeServer(api_key=KEY, models=["gpt-realtime"]) as server:
        client = api(server)
        incoming = server.calls.create_incoming()
        attempts: list[Callable[[], object]] = [
            lambda: client.calls.create(OFFER, session={"model": model}),
            lambda: client.calls.accept(incoming.call_id, session={"model": model}),
            lambda: client.client_secrets.create(session={"model": model}),
        ]
        for attempt in attempts:
            with pytest.raises(BadRequestError) as caught:
                attempt()
            assert (caught.value.code, caught.value.param) == ("invalid_type", "model")


def multipart_cases() -> list[tuple[bytes, str, str]]:
    good, kind = multipart(
        [("sdp", "application/sdp", OFFER.encode()), ("session", "application/json", b"{}")]
    )
    extra, extra_kind = multipart(
        [("sdp", "application/sdp", OFFER.encode()), ("voice", "text/plain", b"ash")]
    )
    no_sdp, no_sdp_kind = multipart([("session", "application/json", b'{"type": "realtime"}')])
    twice, twice_kind = multipart([("sdp", "application/sdp", OFFER.encode())] * 2)
    bad_json, bad_json_kind = multipart(
        [("sdp", "application/sdp", OFFER.encode()), ("session", "application/json", b"{")]
    )
    return [
        (good[: len(good) // 2], kind, "invalid_multipart"),  # cut short
        (good, "multipart/form-data; boundary=other", "invalid_multipart"),
        (good, "multipart/form-data", "invalid_multipart"),
        (good.replace(b"form-data; ", b"attachment; "), kind, "invalid_multipart"),
        (good, kind, "invalid_value"),  # the session has no "type": "realtime"
        (extra, extra_kind, "unknown_parameter"),
        (no_sdp, no_sdp_kind, "missing_required_parameter"),
        (twice, twice_kind, "invalid_multipart"),
        (bad_json, bad_json_kind, "invalid_json"),
        (good.replace(b"v=0", b"x=0"), kind, "invalid_offer"),
    ]


@pytest.mark.parametrize(("body", "content_type", "code"), multipart_cases())
def test_a_malformed_multipart_body_is_a_400_json_error(
    server: LocalRealtimeServer, body: bytes, content_type: str, code: str
) -> None:
    status, reply = raw_post(server, body, content_type)
    assert (status, reply["error"]["code"]) == (400, code)


def test_the_server_s_failures_and_delays_apply_to_creation(server: LocalRealtimeServer) -> None:
    server.calls.fail_next(429, code="rate_limit_exceeded", headers={"Retry-After": "1"})
    with pytest.raises(RateLimitError) as limited:
        api(server).calls.create(OFFER)
    assert limited.value.retry_after == 1.0
    server.calls.delay_next(5)
    started = time.monotonic()
    with pytest.raises(RealtimeTimeoutError, match=r"no answer within 0\.3 s"):
        api(server).calls.create(OFFER, session=SESSION, timeout=0.3)
    assert time.monotonic() - started < 2.5


# What our client refuses


@pytest.mark.parametrize(
    # The last one raised UnicodeEncodeError, not a ConfigurationError.
    "offer",
    ["", "   ", "hello", "\r\nv=0", None, b"v=0\r\n", OFFER + "a=x:\udc80\r\n"],
)
def test_an_offer_that_is_not_sdp_text_is_refused_before_sending(
    server: LocalRealtimeServer, offer: Any
) -> None:
    with pytest.raises(ConfigurationError, match="sdp"):
        api(server).calls.create(offer)
    assert server.calls.requests == []


def replying(
    status: int, headers: Mapping[str, str], body: bytes
) -> Callable[[RawPeer, socket.socket, bytes], None]:
    """A peer that answers every request with ``status``, ``headers`` and ``body``."""

    def script(peer: RawPeer, conn: socket.socket, request: bytes) -> None:
        head = f"HTTP/1.1 {status} Created\r\nContent-Length: {len(body)}\r\n"
        head += "".join(f"{name}: {value}\r\n" for name, value in headers.items())
        conn.sendall(head.encode() + b"\r\n" + body)

    return script


ANSWER = b"v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"


@pytest.mark.parametrize(
    ("headers", "body", "match"),
    [
        ({}, ANSWER, "no Location header"),
        ({"Location": "/v1/realtime/sessions/rtc_1"}, ANSWER, "Location header names no call"),
        ({"Location": "/v1/realtime/calls/"}, ANSWER, "Location header names no call"),
        ({"Location": "/v1/realtime/calls/rtc_1/x"}, ANSWER, "Location header names no call"),
        ({"Location": "/v1/realtime/calls/rtc_1"}, b'{"sdp": "v=0"}', "not an SDP answer"),
        ({"Location": "/v1/realtime/calls/rtc_1"}, b"", "not an SDP answer"),
        ({"Location": "/v1/realtime/calls/rtc_1"}, b"v=0\xff", "not an SDP answer"),
    ],
)
def test_a_reply_without_a_call_or_an_answer_is_a_transport_error(
    headers: dict[str, str], body: bytes, match: str
) -> None:
    with RawPeer(replying(201, headers, body)) as peer:
        client = RealtimeAPI(KEY, base_url=f"http://127.0.0.1:{peer.port}/v1")
        with pytest.raises(TransportError, match=match):
            client.calls.create(OFFER)


def test_an_answer_larger_than_the_limit_is_refused_not_cut_short() -> None:
    # Its first 16 MiB and a byte came back as the call's SDP answer.
    body = ANSWER + b"a=x\r\n" * (2**22)
    location = {"Location": "/v1/realtime/calls/rtc_1"}
    with RawPeer(replying(201, location, body)) as peer:
        client = RealtimeAPI(KEY, base_url=f"http://127.0.0.1:{peer.port}/v1", timeout=20)
        with pytest.raises(TransportError, match="larger than 16 MiB"):
            client.calls.create(OFFER)


def test_the_call_id_is_read_from_an_absolute_location() -> None:
    location = "https://api.example.com/v1/realtime/calls/rtc_abc-123_X"
    with RawPeer(replying(201, {"Location": location}, ANSWER)) as peer:
        client = RealtimeAPI(KEY, base_url=f"http://127.0.0.1:{peer.port}/v1")
        call = client.calls.create(OFFER)
    assert call.call_id == "rtc_abc-123_X" and call.location == location
    assert call.sdp == ANSWER.decode()


def test_an_odd_location_quoting_the_key_is_shown_without_it() -> None:
    location = f"/v1/realtime/elsewhere?key={KEY}"
    with RawPeer(replying(201, {"Location": location}, ANSWER)) as peer:
        client = RealtimeAPI(KEY, base_url=f"http://127.0.0.1:{peer.port}/v1")
        with pytest.raises(TransportError, match="Location") as caught:
            client.calls.create(OFFER)
    assert KEY not in str(caught.value) and "elsewhere" in str(caught.value)


def test_the_multipart_boundary_never_occurs_in_a_part(monkeypatch: pytest.MonkeyPatch) -> None:
    picks = iter(["a1b2", "c3d4"])
    monkeypatch.setattr(secrets, "token_hex", lambda _: next(picks))
    body, kind = multipart([("sdp", "application/sdp", b"v=0\r\n--a1b2--\r\n")])
    assert kind == "multipart/form-data; boundary=c3d4"
    assert body.count(b"--c3d4") == 2


# The official client against our server, and our multipart against the official one's


@pytest.fixture
def captured(server: LocalRealtimeServer, monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Every request the server's HTTP side handles, as (headers, body)."""
    seen: list[Any] = []
    handle = server.calls.handle

    def recording(method: str, path: str, headers: Mapping[str, str], body: bytes) -> HttpAnswer:
        seen.append((dict(headers), body))
        return handle(method, path, headers, body)

    monkeypatch.setattr(server.calls, "handle", recording)
    return seen


def parts(headers: Mapping[str, str], body: bytes) -> list[tuple[str, str, Any]]:
    """A multipart request's parts, each as (name, content type, payload: JSON parsed)."""
    head = f"Content-Type: {headers['content-type']}\r\n\r\n".encode()
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + body)
    assert message.is_multipart() and not message.defects
    found = []
    for part in message.iter_parts():
        payload = part.get_payload(decode=True)
        name = part.get_param("name", header="content-disposition")
        assert isinstance(payload, bytes) and isinstance(name, str)
        kind = part.get_content_type()
        found.append(
            (name, kind, json.loads(payload) if kind == "application/json" else payload.decode())
        )
    return found


def test_the_official_client_creates_calls_on_our_server(
    server: LocalRealtimeServer,
    make_client: Callable[..., RealtimeClient],
    captured: list[Any],
) -> None:
    client = official(server)
    reply = client.realtime.calls.create(sdp=OFFER, session=SESSION)  # type: ignore[arg-type]
    assert reply.response.status_code == 201
    location = reply.response.headers["location"]
    call_id = location.rpartition("/")[2]
    assert location == f"/v1/realtime/calls/{call_id}"
    assert reply.text.startswith("v=0\r\n") and "a=mid:a1" in reply.text
    joined = make_client(call_id=call_id)
    joined.connect(timeout=5)
    assert joined.session.current is not None
    assert joined.session.current.instructions == "You talk in a browser."

    bare = client.realtime.calls.create(sdp=OFFER)
    assert bare.response.status_code == 201
    assert captured[-1][0]["content-type"] == "application/sdp"
    assert captured[-1][1] == OFFER.encode()

    secret = client.realtime.client_secrets.create(session=SESSION)  # type: ignore[arg-type]
    browser = official(server, secret.value)
    assert browser.realtime.calls.create(sdp=OFFER).response.status_code == 201
    with pytest.raises(openai.BadRequestError):
        client.realtime.calls.create(sdp="not an offer")
    with pytest.raises(openai.AuthenticationError):
        official(server, "rs-test-key-bad").realtime.calls.create(sdp=OFFER)


def test_our_requests_are_the_official_client_s(
    server: LocalRealtimeServer, captured: list[Any]
) -> None:
    official(server).realtime.calls.create(sdp=OFFER, session=SESSION)  # type: ignore[arg-type]
    api(server).calls.create(OFFER, session=SESSION)
    official(server).realtime.calls.create(sdp=OFFER)
    api(server).calls.create(OFFER)
    (theirs, _), (ours, _) = captured[0], captured[1]
    assert (
        parts(*captured[1])
        == parts(*captured[0])
        == [
            ("sdp", "application/sdp", OFFER),
            ("session", "application/json", SESSION),
        ]
    )
    for headers in (theirs, ours):
        assert headers["content-type"].startswith("multipart/form-data; boundary=")
        assert headers["accept"] == "application/sdp"
    assert captured[3][1] == captured[2][1] == OFFER.encode()
    assert captured[3][0]["content-type"] == captured[2][0]["content-type"] == "application/sdp"
    assert captured[3][0]["accept"] == captured[2][0]["accept"] == "application/sdp"
