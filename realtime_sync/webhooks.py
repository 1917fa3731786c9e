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
import math
import numbers
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
_MAX_TIMESTAMP_DIGITS = 20  # Unix seconds have 10 digits until the year 2286


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
    """The INVITE's headers (authorization headers excluded), in order, repeats kept.
    Entries that are not a name and a value of strings are left out (they stay in
    :attr:`data`): one odd header must not make a call unanswerable."""
    sip_media_security: str | None = None
    """``"srtp"``, ``"rtp"``, another value the service adds later, or None when unknown
    (absent, or not a string)."""
    malformed_sip_headers: int = 0
    """How many entries of ``data.sip_headers`` were left out of :attr:`sip_headers`."""


def _secret_bytes(secret: str) -> bytes:
    if not isinstance(secret, str) or not secret:
        raise _ConfigurationError("no webhook secret: pass the endpoint's whsec_... secret")
    if not secret.startswith(_SECRET_PREFIX):
        try:
            return secret.encode()
        except UnicodeEncodeError:
            raise _ConfigurationError("the webhook secret is not valid text") from None
    try:
        key = base64.b64decode(secret[len(_SECRET_PREFIX) :], validate=True)
    except (binascii.Error, ValueError):
        raise _ConfigurationError("the webhook secret is not whsec_ followed by base64") from None
    if not key:  # an empty HMAC key would let anyone sign
        raise _ConfigurationError("the webhook secret is whsec_ with no key after it")
    return key


def _seconds(value: object, name: str) -> float:
    """``value`` as a finite float, for ``tolerance`` and ``now``; ConfigurationError if not."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise _ConfigurationError(f"{name} must be a number of seconds, not {value!r}")
    try:
        seconds = float(value)
    except (OverflowError, ValueError):
        seconds = math.inf
    if not math.isfinite(seconds):
        raise _ConfigurationError(f"{name} must be a finite number of seconds, not {value!r}")
    return seconds


def _body_bytes(payload: str | bytes, error: type[Exception]) -> bytes:
    if isinstance(payload, str):
        try:
            return payload.encode()
        except UnicodeEncodeError:  # a lone surrogate: no bytes were ever sent like this
            raise error("the webhook's body is a str that is not valid Unicode") from None
    if isinstance(payload, (bytes, bytearray, memoryview)):
        return bytes(payload)
    raise _ConfigurationError(
        f"the webhook's body must be the raw request body (bytes or str), not {type(payload)}"
    )


def _digest(key: bytes, webhook_id: bytes, timestamp: bytes, body: bytes) -> bytes:
    """The base64 HMAC-SHA256 of ``"{id}.{timestamp}.{body}"``: what :func:`signature`
    sends and :func:`verify` expects, without the ``v1,`` prefix."""
    signed = b"".join((webhook_id, b".", timestamp, b".", body))
    return base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest())


def signature(payload: str | bytes, *, secret: str, webhook_id: str, timestamp: int) -> str:
    """The ``v1,<base64>`` signature of ``payload`` sent with ``webhook_id`` at ``timestamp``."""
    key = _secret_bytes(secret)
    if isinstance(timestamp, bool) or not isinstance(timestamp, int):
        raise _ConfigurationError(f"timestamp must be an int of Unix seconds, not {timestamp!r}")
    try:
        id_bytes = webhook_id.encode()
    except (AttributeError, UnicodeEncodeError):
        raise _ConfigurationError(f"webhook_id must be text, not {webhook_id!r}") from None
    body = _body_bytes(payload, _ConfigurationError)
    return _VERSION + _digest(key, id_bytes, str(timestamp).encode(), body).decode()


class RequestHeaders(Protocol):
    """What request headers must offer: a dict, or a web framework's header object (Flask's
    and Django's are not ``Mapping`` types, but have these two methods)."""

    def get(self, key: str, /) -> str | None: ...

    def items(self) -> Iterable[tuple[str, str]]: ...


def _header(headers: RequestHeaders | Mapping[str, str], name: str) -> str:
    value = headers.get(name)
    if value is None:  # a plain dict with other capitalisation
        value = next((v for k, v in headers.items() if k.lower() == name), None)
    if value is not None and not isinstance(value, str):
        raise _ConfigurationError(f"the {name} header's value must be a str, not {type(value)}")
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
    Raises :class:`~realtime_sync.ConfigurationError` for an empty or malformed ``secret``
    and for a ``tolerance`` (or ``now``) that is not a finite number (``tolerance`` also
    not negative).
    """
    key = _secret_bytes(secret)
    window = _seconds(tolerance, "tolerance")
    if window < 0:
        raise _ConfigurationError(f"tolerance must not be negative, not {tolerance!r}")
    current = time.time() if now is None else _seconds(now, "now")
    webhook_id = _header(headers, "webhook-id")
    stamp = _header(headers, "webhook-timestamp")
    offered = _header(headers, "webhook-signature")
    # ASCII digits only, and few enough of them that the arithmetic below cannot overflow;
    # int() alone would also take " 17", "+17", "1_7" and other scripts' digits.
    if not (stamp.isascii() and stamp.isdigit() and len(stamp) <= _MAX_TIMESTAMP_DIGITS):
        raise WebhookVerificationError("the webhook-timestamp header is not an integer")
    timestamp = int(stamp)
    if current - timestamp > window:
        raise WebhookVerificationError(
            f"the webhook's timestamp is {current - timestamp:.0f} s old (tolerance {tolerance} s)"
        )
    if timestamp - current > window:
        raise WebhookVerificationError(
            f"the webhook's timestamp is {timestamp - current:.0f} s in the future "
            f"(tolerance {tolerance} s)"
        )
    try:
        id_bytes = webhook_id.encode()
    except UnicodeEncodeError:
        raise WebhookVerificationError("the webhook-id header is not valid text") from None
    expected = _digest(
        key, id_bytes, stamp.encode(), _body_bytes(payload, WebhookVerificationError)
    )
    # Several signatures while the endpoint's secret is being rotated; other versions skipped.
    candidates = [part[len(_VERSION) :] for part in offered.split() if part.startswith(_VERSION)]
    if not any(
        hmac.compare_digest(expected, candidate.encode(errors="replace"))
        for candidate in candidates
    ):
        raise WebhookVerificationError("no webhook signature matches the secret")


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON value")


def _malformed(problem: str) -> WebhookVerificationError:
    return WebhookVerificationError(f"the webhook's body is not a webhook event: {problem}")


def _load(body: bytes) -> Any:
    try:
        return json.loads(body, parse_constant=_reject_constant)
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError, NaN or Infinity
        raise _malformed(f"not JSON ({exc})") from None
    except RecursionError:
        raise _malformed("JSON nested too deeply") from None


def _text(value: object, where: str) -> str:
    if not isinstance(value, str) or not value:
        raise _malformed(f"{where} is not a non-empty string")
    return value


def _unix_seconds(value: object, where: str) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return int(value)
    raise _malformed(f"{where} is not an integer of Unix seconds")


def _sip_headers(value: object) -> tuple[tuple[SipHeader, ...], int]:
    """The well-formed headers, and how many entries were not (a non-list counts as one)."""
    if not isinstance(value, list):
        return (), 0 if value is None else 1
    entries: list[Any] = value
    headers = tuple(
        SipHeader(name=item["name"], value=item["value"])
        for item in entries
        if isinstance(item, dict)
        and isinstance(item.get("name"), str)
        and item["name"]
        and isinstance(item.get("value"), str)
    )
    return headers, len(entries) - len(headers)


def unwrap(
    payload: str | bytes,
    headers: RequestHeaders | Mapping[str, str],
    *,
    secret: str,
    tolerance: float = DEFAULT_TOLERANCE,
    now: float | None = None,
) -> WebhookEvent:
    """:func:`verify`, then parse: a :class:`CallIncoming` for ``realtime.call.incoming``,
    a :class:`WebhookEvent` for any other type.

    A body that verifies but is not a well-formed event (not JSON, a field missing or of the
    wrong type) raises :class:`WebhookVerificationError` naming the field too. The SIP
    details are informational and read leniently (see :class:`CallIncoming`).
    """
    verify(payload, headers, secret=secret, tolerance=tolerance, now=now)
    event = _load(_body_bytes(payload, WebhookVerificationError))
    if not isinstance(event, dict):
        raise _malformed("not a JSON object")
    data = event.get("data")
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise _malformed("data is not an object")
    common: dict[str, Any] = {
        "id": _text(event.get("id"), "id"),
        "type": _text(event.get("type"), "type"),
        "created_at": _unix_seconds(event.get("created_at"), "created_at"),
        "data": data,
    }
    if common["type"] != "realtime.call.incoming":
        return WebhookEvent(**common)
    call_id = _text(data.get("call_id"), "data.call_id")
    sip_headers, malformed = _sip_headers(data.get("sip_headers"))
    media_security = data.get("sip_media_security")
    return CallIncoming(
        **common,
        call_id=call_id,
        sip_headers=sip_headers,
        sip_media_security=media_security if isinstance(media_security, str) else None,
        malformed_sip_headers=malformed,
    )
