"""Webhooks: our verifier, our signer, and the official package's verifier against both."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from typing import Any

import openai
import pytest

from realtime_sync import ConfigurationError, RealtimeError, WebhookVerificationError
from realtime_sync import webhooks as webhooks_module
from realtime_sync.testing import LocalRealtimeServer, sign_webhook
from realtime_sync.webhooks import (
    CallIncoming,
    SipHeader,
    WebhookEvent,
    signature,
    unwrap,
    verify,
)

SECRET = "whsec_" + base64.b64encode(b"realtime_sync webhook test secret").decode()
OTHER = "whsec_" + base64.b64encode(b"another endpoint's secret").decode()
EVENT: dict[str, Any] = {
    "object": "event",
    "id": "evt_685343a1381c819085d44c354e1b330e",
    "type": "realtime.call.incoming",
    "created_at": 1750287018,
    "data": {
        "call_id": "rtc_test_call_1",
        "sip_headers": [
            {"name": "From", "value": "<sip:+15551230000@example.com>"},
            {"name": "X-Custom", "value": "one"},
            {"name": "X-Custom", "value": "two"},
        ],
        "sip_media_security": "srtp",
    },
}


def official() -> openai.OpenAI:
    return openai.OpenAI(api_key="rs-test-key-webhooks", webhook_secret=SECRET)


def test_a_signed_call_webhook_verifies_and_parses() -> None:
    body, headers = sign_webhook(EVENT, SECRET)
    event = unwrap(body, headers, secret=SECRET)
    assert isinstance(event, CallIncoming)
    assert event.call_id == "rtc_test_call_1"
    assert event.id == EVENT["id"] and event.created_at == 1750287018
    assert event.sip_headers == (
        SipHeader("From", "<sip:+15551230000@example.com>"),
        SipHeader("X-Custom", "one"),
        SipHeader("X-Custom", "two"),
    )
    assert event.sip_media_security == "srtp"


def test_the_official_verifier_accepts_what_we_sign() -> None:
    body, headers = sign_webhook(EVENT, SECRET)
    event = official().webhooks.unwrap(body, headers)
    assert event.type == "realtime.call.incoming"
    assert event.data.call_id == "rtc_test_call_1"
    assert [h.value for h in event.data.sip_headers] == [
        "<sip:+15551230000@example.com>",
        "one",
        "two",
    ]
    official().webhooks.verify_signature(body.decode(), headers)  # text payloads too


def test_a_plain_secret_is_used_as_its_bytes_like_the_official_package() -> None:
    body, headers = sign_webhook(EVENT, "plain-test-secret")
    verify(body, headers, secret="plain-test-secret")
    official().webhooks.verify_signature(body, headers, secret="plain-test-secret")


def test_other_event_types_come_back_generic() -> None:
    payload = {"id": "evt_1", "type": "response.completed", "created_at": 1, "data": {"id": "r"}}
    body, headers = sign_webhook(payload, SECRET)
    event = unwrap(body, headers, secret=SECRET)
    assert type(event) is WebhookEvent
    assert event.type == "response.completed" and event.data == {"id": "r"}


def test_a_tampered_body_fails_ours_and_the_official_one() -> None:
    body, headers = sign_webhook(EVENT, SECRET)
    tampered = body.replace(b"rtc_test_call_1", b"rtc_test_call_2")
    with pytest.raises(WebhookVerificationError, match="no webhook signature matches"):
        verify(tampered, headers, secret=SECRET)
    with pytest.raises(openai.InvalidWebhookSignatureError):
        official().webhooks.verify_signature(tampered, headers)


def test_the_wrong_secret_fails() -> None:
    body, headers = sign_webhook(EVENT, OTHER)
    with pytest.raises(WebhookVerificationError):
        unwrap(body, headers, secret=SECRET)


def test_any_of_several_signatures_may_match_during_a_secret_rotation() -> None:
    body, headers = sign_webhook(EVENT, SECRET, webhook_id="wh_1", timestamp=int(time.time()))
    _, other = sign_webhook(
        EVENT, OTHER, webhook_id="wh_1", timestamp=int(headers["webhook-timestamp"])
    )
    both = {
        **headers,
        "webhook-signature": f"{other['webhook-signature']} {headers['webhook-signature']}",
    }
    verify(body, both, secret=SECRET)
    verify(body, both, secret=OTHER)
    official().webhooks.verify_signature(body, both)
    wrong_only = {**headers, "webhook-signature": other["webhook-signature"] + " v1,AAAA"}
    with pytest.raises(WebhookVerificationError):
        verify(body, wrong_only, secret=SECRET)


def test_only_v1_signatures_count() -> None:
    body, headers = sign_webhook(EVENT, SECRET)
    unversioned = {**headers, "webhook-signature": "v2," + headers["webhook-signature"][3:]}
    with pytest.raises(WebhookVerificationError):
        verify(body, unversioned, secret=SECRET)


def test_stale_and_future_timestamps_are_refused_outside_the_tolerance() -> None:
    now = 1_800_000_000
    body, headers = sign_webhook(EVENT, SECRET, timestamp=now - 301)
    with pytest.raises(WebhookVerificationError, match="301 s old"):
        verify(body, headers, secret=SECRET, now=now)
    verify(body, headers, secret=SECRET, now=now, tolerance=600)
    body, headers = sign_webhook(EVENT, SECRET, timestamp=now + 301)
    with pytest.raises(WebhookVerificationError, match="in the future"):
        verify(body, headers, secret=SECRET, now=now)
    body, headers = sign_webhook(EVENT, SECRET, timestamp=now - 300)
    verify(body, headers, secret=SECRET, now=now)  # the edge is inside, as in the official one


def test_the_official_verifier_refuses_a_stale_webhook_we_signed_too() -> None:
    body, headers = sign_webhook(EVENT, SECRET, timestamp=int(time.time()) - 3600)
    with pytest.raises(openai.InvalidWebhookSignatureError):
        official().webhooks.verify_signature(body, headers)


@pytest.mark.parametrize("name", ["webhook-id", "webhook-timestamp", "webhook-signature"])
def test_a_missing_header_is_named(name: str) -> None:
    body, headers = sign_webhook(EVENT, SECRET)
    del headers[name]
    with pytest.raises(WebhookVerificationError, match=f"no {name} header"):
        verify(body, headers, secret=SECRET)


def test_headers_are_matched_whatever_their_case() -> None:
    body, headers = sign_webhook(EVENT, SECRET)
    verify(body, {name.title(): value for name, value in headers.items()}, secret=SECRET)


def test_a_timestamp_that_is_not_a_number_and_a_body_that_is_not_an_event() -> None:
    body, headers = sign_webhook(EVENT, SECRET)
    with pytest.raises(WebhookVerificationError, match="not an integer"):
        verify(body, {**headers, "webhook-timestamp": "soon"}, secret=SECRET)
    for payload in (b"[1, 2]", json.dumps({**EVENT, "data": [1]}).encode()):
        body, headers = sign_webhook(payload, SECRET)
        with pytest.raises(WebhookVerificationError, match="not a webhook event"):
            unwrap(body, headers, secret=SECRET)


def test_the_error_is_one_of_ours_and_a_value_error() -> None:
    assert issubclass(WebhookVerificationError, RealtimeError)
    assert issubclass(WebhookVerificationError, ValueError)
    with pytest.raises(ValueError, match="whsec_"):
        verify(b"{}", {}, secret="whsec_not base64!")


def test_the_servers_incoming_call_webhook_verifies_with_its_secret() -> None:
    with LocalRealtimeServer(api_key="rs-test-key-webhooks") as server:
        call = server.calls.create_incoming(sip_headers=[("To", "<sip:agent@example.com>")])
    event = unwrap(call.body, call.headers, secret=server.calls.webhook_secret)
    assert isinstance(event, CallIncoming) and event.call_id == call.call_id
    assert event.sip_headers == (SipHeader("To", "<sip:agent@example.com>"),)
    parsed = official().webhooks.unwrap(call.body, call.headers, secret=server.calls.webhook_secret)
    assert parsed.type == "realtime.call.incoming" and parsed.data.call_id == call.call_id
    assert json.loads(call.body) == call.event


# Hostile or malformed input: every failure is a WebhookVerificationError (answer 400), or a
# ConfigurationError when the fault is in how the endpoint calls us.


def signed_with_stamp(
    body: bytes, key: bytes, stamp: str, webhook_id: str = "wh_1"
) -> dict[str, str]:
    """Headers for ``body`` with a ``webhook-timestamp`` exactly as given, signed with ``key``
    independently of the code under test, so only the timestamp check can refuse them."""
    mac = hmac.new(key, f"{webhook_id}.{stamp}.".encode() + body, hashlib.sha256).digest()
    return {
        "webhook-id": webhook_id,
        "webhook-timestamp": stamp,
        "webhook-signature": "v1," + base64.b64encode(mac).decode(),
    }


KEY = base64.b64decode(SECRET.removeprefix("whsec_"))
NOW = 1_800_000_000


@pytest.mark.parametrize(
    "stamp",
    [
        "9" * 400,  # overflowed float arithmetic: OverflowError
        "9" * 5000,  # past int()'s digit limit
        f" {NOW} ",
        f"+{NOW}",
        f"{NOW // 1000}_{NOW % 1000:03}",
        str(NOW).translate(str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩")),
        f"-{NOW}",
        f"{NOW}.5",
    ],
)
def test_a_timestamp_that_is_not_plain_ascii_digits_is_refused_whatever_its_size(
    stamp: str,
) -> None:
    body = json.dumps(EVENT).encode()
    headers = signed_with_stamp(body, KEY, stamp)
    with pytest.raises(
        WebhookVerificationError, match="webhook-timestamp header is not an integer"
    ):
        unwrap(body, headers, secret=SECRET, now=NOW)
    verify(body, signed_with_stamp(body, KEY, str(NOW)), secret=SECRET, now=NOW)
    verify(body, signed_with_stamp(body, KEY, f"0{NOW}"), secret=SECRET, now=NOW)  # as sent


def test_a_whsec_secret_with_no_key_is_refused_rather_than_verifying_forgeries() -> None:
    body = json.dumps(EVENT).encode()
    forged = signed_with_stamp(body, b"", str(NOW))  # anyone can compute an empty-key HMAC
    for secret in ("whsec_", "whsec_" + base64.b64encode(b"").decode()):
        with pytest.raises(ConfigurationError, match="no key"):
            unwrap(body, forged, secret=secret, now=NOW)
        with pytest.raises(ConfigurationError, match="no key"):
            verify(body, forged, secret=secret, now=NOW)
        with pytest.raises(ConfigurationError, match="no key"):
            signature(body, secret=secret, webhook_id="wh_1", timestamp=NOW)
    with pytest.raises(ConfigurationError, match="no webhook secret"):
        signature(body, secret="", webhook_id="wh_1", timestamp=NOW)


@pytest.mark.parametrize(
    "tolerance",
    [float("nan"), float("inf"), -float("inf"), -1, 10**400, True, "300"],
    ids=["nan", "inf", "-inf", "negative", "10**400", "True", "str"],
)
def test_a_tolerance_that_would_switch_the_timestamp_check_off_is_refused(
    tolerance: Any,
) -> None:
    body, headers = sign_webhook(EVENT, SECRET, timestamp=NOW - 86_400)  # a day-old replay
    with pytest.raises(ConfigurationError, match="tolerance"):
        verify(body, headers, secret=SECRET, tolerance=tolerance, now=NOW)
    with pytest.raises(ConfigurationError, match="tolerance"):
        unwrap(body, headers, secret=SECRET, tolerance=tolerance, now=NOW)


def test_a_zero_tolerance_is_allowed_and_a_non_finite_now_is_refused() -> None:
    body, headers = sign_webhook(EVENT, SECRET, timestamp=NOW)
    verify(body, headers, secret=SECRET, tolerance=0, now=NOW)
    verify(body, headers, secret=SECRET, tolerance=0.5, now=NOW + 0.5)
    for now in (float("nan"), float("inf")):
        with pytest.raises(ConfigurationError, match="now"):
            verify(body, headers, secret=SECRET, now=now)


def call_event(**data: Any) -> dict[str, Any]:
    return {**EVENT, "data": {**EVENT["data"], **data}}


def without(mapping: dict[str, Any], key: str) -> dict[str, Any]:
    return {k: v for k, v in mapping.items() if k != key}


MALFORMED: list[tuple[str, bytes, str]] = [
    ("created_at Infinity", b'{"id":"e","type":"x","created_at":Infinity}', "Infinity"),
    ("created_at NaN", b'{"id":"e","type":"x","created_at":NaN}', "NaN"),
    ("created_at 1e400", b'{"id":"e","type":"x","created_at":1e400}', "created_at"),
    ("created_at 1.5", b'{"id":"e","type":"x","created_at":1.5}', "created_at"),
    ("created_at true", b'{"id":"e","type":"x","created_at":true}', "created_at"),
    ("created_at missing", b'{"id":"e","type":"x"}', "created_at"),
    ("id null", b'{"id":null,"type":"x","created_at":1}', "id"),
    ("type object", b'{"id":"e","type":{"a":1},"created_at":1}', "type"),
    ("data list", json.dumps({**EVENT, "data": [1]}).encode(), "data"),
    (
        "call_id missing",
        json.dumps({**EVENT, "data": without(EVENT["data"], "call_id")}).encode(),
        "data.call_id",
    ),
    ("call_id null", json.dumps(call_event(call_id=None)).encode(), "data.call_id"),
    ("call_id empty", json.dumps(call_event(call_id="")).encode(), "data.call_id"),
    ("call_id number", json.dumps(call_event(call_id=7)).encode(), "data.call_id"),
    ("no data", json.dumps(without(EVENT, "data")).encode(), "data.call_id"),
    ("deep nesting", b'{"id":"e","data":{"a":' + b"[" * 100_000 + b"]" * 100_000 + b"}}", "deep"),
    ("not UTF-8", b'{"id":"\xff"}', "not JSON"),
]


@pytest.mark.parametrize(
    ("sip_headers", "kept", "malformed"),
    [
        (5, (), 1),
        ("From", (), 1),
        ({"name": "From", "value": "a"}, (), 1),
        ([{"name": "From", "value": "a"}, "To"], (SipHeader("From", "a"),), 1),
        ([{"name": "From", "value": 5}, {"name": "To", "value": "b"}], (SipHeader("To", "b"),), 1),
        ([{"name": "", "value": "a"}, {"value": "a"}, None, [1]], (), 4),
        (None, (), 0),
        ([], (), 0),
    ],
)
def test_odd_sip_headers_are_left_out_and_counted_so_the_call_stays_answerable(
    sip_headers: Any, kept: tuple[SipHeader, ...], malformed: int
) -> None:
    body, headers = sign_webhook(json.dumps(call_event(sip_headers=sip_headers)), SECRET)
    event = unwrap(body, headers, secret=SECRET)
    assert isinstance(event, CallIncoming)
    assert event.call_id == EVENT["data"]["call_id"]
    assert (event.sip_headers, event.malformed_sip_headers) == (kept, malformed)
    assert event.data["sip_headers"] == sip_headers  # the raw entries stay readable


@pytest.mark.parametrize("security", [{"a": 1}, 5, ["srtp"]])
def test_a_sip_media_security_that_is_not_a_string_reads_as_unknown(security: Any) -> None:
    body, headers = sign_webhook(json.dumps(call_event(sip_media_security=security)), SECRET)
    event = unwrap(body, headers, secret=SECRET)
    assert isinstance(event, CallIncoming)
    assert event.sip_media_security is None


@pytest.mark.parametrize(
    ("body", "field"), [case[1:] for case in MALFORMED], ids=[case[0] for case in MALFORMED]
)
def test_a_correctly_signed_malformed_body_raises_only_verification_errors_naming_the_field(
    body: bytes, field: str
) -> None:
    signed, headers = sign_webhook(body, SECRET)
    with pytest.raises(WebhookVerificationError, match=field):
        unwrap(signed, headers, secret=SECRET)


def test_a_str_payload_that_cannot_be_utf8_is_a_verification_error() -> None:
    _, headers = sign_webhook(EVENT, SECRET)
    with pytest.raises(WebhookVerificationError, match="not valid Unicode"):
        unwrap('{"id": "\ud800"}', headers, secret=SECRET)
    with pytest.raises(WebhookVerificationError, match="not valid Unicode"):
        verify("\ud800", headers, secret=SECRET)


def test_optional_call_fields_may_be_absent_or_null() -> None:
    data = {"call_id": "rtc_1", "sip_headers": None, "sip_media_security": None}
    body, headers = sign_webhook({**EVENT, "data": data}, SECRET)
    event = unwrap(body, headers, secret=SECRET)
    assert isinstance(event, CallIncoming)
    assert (event.call_id, event.sip_headers, event.sip_media_security) == ("rtc_1", (), None)
    body, headers = sign_webhook({**EVENT, "data": {"call_id": "rtc_1"}}, SECRET)
    bare = unwrap(body, headers, secret=SECRET)
    assert isinstance(bare, CallIncoming)
    assert (bare.call_id, bare.sip_headers, bare.sip_media_security) == ("rtc_1", (), None)


def test_signing_and_verifying_share_one_digest(monkeypatch: pytest.MonkeyPatch) -> None:
    digest = webhooks_module._digest
    calls: list[tuple[bytes, bytes]] = []

    def counting(key: bytes, webhook_id: bytes, timestamp: bytes, body: bytes) -> bytes:
        calls.append((webhook_id, timestamp))
        return digest(key, webhook_id, timestamp, body)

    monkeypatch.setattr(webhooks_module, "_digest", counting)
    body, headers = sign_webhook(EVENT, SECRET, webhook_id="wh_shared", timestamp=NOW)
    verify(body, headers, secret=SECRET, now=NOW)
    assert calls == [(b"wh_shared", str(NOW).encode())] * 2
