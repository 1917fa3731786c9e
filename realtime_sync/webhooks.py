"""Verify and parse the webhooks OpenAI sends, such as ``realtime.call.incoming``.

OpenAI signs webhooks the Standard Webhooks way: ``webhook-id``, ``webhook-timestamp``
(Unix seconds) and ``webhook-signature`` headers, the signature being one or more
space-separated ``v1,<base64 HMAC-SHA256>`` of ``"{id}.{timestamp}.{body}"`` keyed with the
endpoint's secret (``whsec_<base64>``; any other string is used as its UTF-8 bytes, as the
official ``openai`` package does). Verify before acting on the body::

    from realtime_sync.webhooks import CallIncoming, unwrap

    event = unwrap(request.get_data(), request.headers, secret=os.environ["OPENAI_WEBHOOK_SECRET"])
    if isinstance(event, CallIncoming):
        api.calls.accept(event.call_id, session={"type": "realtime", "instructions": "..."})

A webhook that does not verify raises :class:`~realtime_sync.WebhookVerificationError`;
answer it with HTTP 400.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import time
from collections.abc import Iterable, Mapping
from typing import Any, Protocol

from attrs import field, frozen

from ._errors import ConfigurationError as _ConfigurationError
from ._errors import WebhookVerificationError

__all__ = [
    "DEFAULT_TOLERANCE",
    "CallIncoming",
    "RequestHeaders",
    "SipHeader",
    "WebhookEvent",
    "WebhookVerificationError",
    "signature",
    "unwrap",
    "verify",
]

DEFAULT_TOLERANCE = 300
"""Seconds a webhook's timestamp may lie before or after now (the official package's
default: five minutes)."""
_SECRET_PREFIX = "whsec_"
_VERSION = "v1,"


@frozen
class WebhookEvent:
    """A verified webhook of any type."""

    id: str
    """The event's id (``evt_...``); the same across redeliveries: use it to deduplicate."""
    type: str
    """The event type, e.g. ``realtime.call.incoming``, ``response.completed``."""
    created_at: int
    """When the event happened, in Unix seconds."""
    data: Mapping[str, Any] = field(repr=False)
    """The event's ``data`` object as sent."""


@frozen
class SipHeader:
    """One header of the SIP INVITE, as the caller's provider sent it (untrusted)."""

    name: str
    """The header's name."""
    value: str
    """The header's value."""


@frozen
class CallIncoming(WebhookEvent):
    """``realtime.call.incoming``: a SIP call waits to be accepted, rejected or referred."""

    call_id: str = ""
    """The call to pass to ``calls.accept()`` / ``reject()`` and to
    ``RealtimeClient(call_id=...)``."""
    sip_headers: tuple[SipHeader, ...] = ()
    """The INVITE's headers (authorization headers excluded), in order, repeats kept."""
    sip_media_security: str | None = None
    """``"srtp"``, ``"rtp"``, another value the service adds later, or None when unknown."""


def _secret_bytes(secret: str) -> bytes:
    if not secret:
        raise _ConfigurationError("no webhook secret: pass the endpoint's whsec_... secret")
    if not secret.startswith(_SECRET_PREFIX):
        return secret.encode()
    try:
        return base64.b64decode(secret[len(_SECRET_PREFIX) :], validate=True)
    except (binascii.Error, ValueError):
        raise _ConfigurationError("the webhook secret is not whsec_ followed by base64") from None


def _body_bytes(payload: str | bytes) -> bytes:
    return payload.encode() if isinstance(payload, str) else bytes(payload)


def signature(payload: str | bytes, *, secret: str, webhook_id: str, timestamp: int) -> str:
    """The ``v1,<base64>`` signature of ``payload`` sent with ``webhook_id`` at ``timestamp``."""
    signed = f"{webhook_id}.{timestamp}.".encode() + _body_bytes(payload)
    digest = hmac.new(_secret_bytes(secret), signed, hashlib.sha256).digest()
    return _VERSION + base64.b64encode(digest).decode()


class RequestHeaders(Protocol):
    """What request headers must offer: a dict, or a web framework's header object (Flask's
    and Django's are not ``Mapping`` types, but have these two methods)."""

    def get(self, key: str, /) -> str | None: ...

    def items(self) -> Iterable[tuple[str, str]]: ...


def _header(headers: RequestHeaders | Mapping[str, str], name: str) -> str:
    value = headers.get(name)
    if value is None:  # a plain dict with other capitalisation
        value = next((v for k, v in headers.items() if k.lower() == name), None)
    if not value:
        raise WebhookVerificationError(f"the webhook has no {name} header")
    return value


def verify(
    payload: str | bytes,
    headers: RequestHeaders | Mapping[str, str],
    *,
    secret: str,
    tolerance: float = DEFAULT_TOLERANCE,
    now: float | None = None,
) -> None:
    """Check that OpenAI sent ``payload`` (the raw request body, unparsed) with ``headers``.

    Raises :class:`WebhookVerificationError` when a header is missing, the timestamp is
    more than ``tolerance`` seconds old or ahead (a replay, or a clock far off), or no
    ``v1`` signature matches (compared in constant time). ``now`` is for tests.
    """
    key = _secret_bytes(secret)
    webhook_id = _header(headers, "webhook-id")
    stamp = _header(headers, "webhook-timestamp")
    offered = _header(headers, "webhook-signature")
    try:
        timestamp = int(stamp)
    except ValueError:
        raise WebhookVerificationError("the webhook-timestamp header is not an integer") from None
    current = time.time() if now is None else now
    if current - timestamp > tolerance:
        raise WebhookVerificationError(
            f"the webhook's timestamp is {current - timestamp:.0f} s old (tolerance {tolerance} s)"
        )
    if timestamp - current > tolerance:
        raise WebhookVerificationError(
            f"the webhook's timestamp is {timestamp - current:.0f} s in the future "
            f"(tolerance {tolerance} s)"
        )
    signed = f"{webhook_id}.{stamp}.".encode() + _body_bytes(payload)
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest())
    # Several signatures while the endpoint's secret is being rotated; other versions skipped.
    candidates = [part[len(_VERSION) :] for part in offered.split() if part.startswith(_VERSION)]
    if not any(hmac.compare_digest(expected, candidate.encode()) for candidate in candidates):
        raise WebhookVerificationError("no webhook signature matches the secret")


def unwrap(
    payload: str | bytes,
    headers: RequestHeaders | Mapping[str, str],
    *,
    secret: str,
    tolerance: float = DEFAULT_TOLERANCE,
    now: float | None = None,
) -> WebhookEvent:
    """:func:`verify`, then parse: a :class:`CallIncoming` for ``realtime.call.incoming``,
    a :class:`WebhookEvent` for any other type."""
    verify(payload, headers, secret=secret, tolerance=tolerance, now=now)
    try:
        event = json.loads(_body_bytes(payload))
        data = event.get("data") or {}
        if not isinstance(data, dict):
            raise TypeError
        common: dict[str, Any] = {
            "id": str(event["id"]),
            "type": str(event["type"]),
            "created_at": int(event["created_at"]),
            "data": data,
        }
    except (ValueError, TypeError, KeyError, AttributeError):
        raise WebhookVerificationError("the webhook's body is not a webhook event") from None
    if common["type"] != "realtime.call.incoming":
        return WebhookEvent(**common)
    headers_sent = data.get("sip_headers") or []
    return CallIncoming(
        **common,
        call_id=str(data.get("call_id", "")),
        sip_headers=tuple(
            SipHeader(name=str(item.get("name", "")), value=str(item.get("value", "")))
            for item in headers_sent
            if isinstance(item, dict)
        ),
        sip_media_security=data.get("sip_media_security"),
    )
