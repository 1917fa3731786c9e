"""Webhooks: our verifier, our signer, and the official package's verifier against both."""

from __future__ import annotations

import base64
import json
import time

import openai
import pytest

from realtime_sync import RealtimeError, WebhookVerificationError
from realtime_sync.testing import LocalRealtimeServer, sign_webhook
from realtime_sync.webhooks import CallIncoming, SipHeader, WebhookEvent, unwrap, verify

SECRET = "whsec_" + base64.b64encode(b"realtime_sync webhook test secret").decode()
OTHER = "whsec_" + base64.b64encode(b"another endpoint's secret").decode()
EVENT = {
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
