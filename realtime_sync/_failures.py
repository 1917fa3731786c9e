"""How a connection's end becomes an exception: pure functions, no I/O.

A refusal reaches us two ways and both give the same class: an HTTP status on the upgrade
(``refused``), or a successful upgrade followed by an ``error`` event and a close before
``session.created`` (what api.openai.com does for a bad key or model). Whether a reconnect
could help is decided here too, once, from the same facts.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from email.utils import parsedate_to_datetime
from typing import Any

from ._errors import (
    APIError,
    AuthenticationError,
    BadRequestError,
    ConnectionClosed,
    InternalServerError,
    PermissionDeniedError,
    RateLimitError,
    RealtimeError,
    RedirectError,
    TransportError,
)
from ._json import loads
from ._secrets import redact, redact_deep
from ._server_events import ErrorEvent
from ._transport import TransportEnded

__all__ = ["FATAL_ERROR_CODES", "error_for", "failure", "is_retryable", "retry_after"]

_STATUS_ERRORS: dict[int, type[APIError]] = {
    401: AuthenticationError,
    403: PermissionDeniedError,
    429: RateLimitError,
}
_CODE_ERRORS: dict[str, type[APIError]] = {
    "invalid_api_key": AuthenticationError,
    "missing_api_key": AuthenticationError,
    "invalid_authentication": AuthenticationError,
    "account_deactivated": AuthenticationError,
    "insufficient_quota": RateLimitError,
    "rate_limit_exceeded": RateLimitError,
    "billing_hard_limit_reached": RateLimitError,
    "model_not_found": BadRequestError,
    "unsupported_country_region_territory": PermissionDeniedError,
    "server_error": InternalServerError,
}
_CLOSE_CODE_ERRORS: dict[int, type[APIError]] = {
    3000: AuthenticationError,
    4000: BadRequestError,
    1011: InternalServerError,
}
FATAL_ERROR_CODES = frozenset(
    {
        "invalid_api_key",
        "insufficient_quota",
        "account_deactivated",
        "billing_hard_limit_reached",
        "beta_api_shape_disabled",
    }
)
"""Error codes no retry can cure."""
# Close codes after which a new connection may well succeed: going away (session expiry),
# no status, abnormal end, internal error, service restart, try again later.
_RETRYABLE_CLOSE_CODES = frozenset({1001, 1005, 1006, 1011, 1012, 1013})


def failure(
    ended: TransportEnded,
    *,
    session_started: bool,
    final_error: ErrorEvent | None,
    display_url: str,
) -> RealtimeError:
    """The exception for a connection that ended without close() being called.

    ``final_error`` is the server's ``error`` event when it was the last thing before the
    end (a refusal's reason, or ``session_expired``).
    """
    if ended.kind == "refused":
        return _http_error(ended)
    if ended.kind == "redirected":
        return _redirect_error(ended, display_url)
    if not session_started and (final_error is not None or ended.code in _CLOSE_CODE_ERRORS):
        return _refusal_error(final_error, ended)
    detail = f": {redact(ended.detail)}" if ended.detail else ""
    if session_started and ended.code is not None:
        error = final_error.error if final_error is not None else None
        what = (
            "the session expired"
            if error and error.code == "session_expired"
            else "the server closed the session"
        )
        message = f"{what} (close code {ended.code}"
        message += f", reason {redact(ended.reason)!r})" if ended.reason else ")"
        if error is not None and error.message:
            message += f": {redact(error.message)}"
        return ConnectionClosed(message, code=ended.code, reason=ended.reason, error=final_error)
    if ended.kind == "timeout" and session_started:
        return ConnectionClosed(
            f"the connection to {display_url} went silent: no pong within the ping timeout, "
            "or a frame stalled mid-way"
        )
    if session_started:  # the server's last words, if any, still say whether to retry
        return ConnectionClosed(
            f"the connection dropped without a close frame{detail}", error=final_error
        )
    if ended.kind == "unreachable":
        unreachable = TransportError(f"could not connect to {display_url}{detail}")
        unreachable.__cause__ = ended.cause
        return unreachable
    return ConnectionClosed(
        f"{display_url} closed the connection before the session started"
        + (f" (close code {ended.code})" if ended.code is not None else ""),
        code=ended.code,
        reason=ended.reason,
    )


def is_retryable(error: RealtimeError | None) -> bool:
    """Whether a new connection attempt may succeed where this end happened.

    Never after a bad key, a refused permission, a fatal error code or a redirect; always
    after drops, silence, 5xx, 429 and the close codes that mean "try again".
    """
    if error is None:
        return False
    if isinstance(error, ConnectionClosed):
        detail = error.error.error if error.error is not None else None
        if detail is not None and detail.code in FATAL_ERROR_CODES:
            return False
        if detail is not None and "server_error" in (detail.type, detail.code):  # a 5xx
            return True
        return error.code is None or error.code in _RETRYABLE_CLOSE_CODES
    if isinstance(error, (AuthenticationError, PermissionDeniedError, RedirectError)):
        return False
    if isinstance(error, APIError):
        if error.code in FATAL_ERROR_CODES:
            return False
        if isinstance(error, (RateLimitError, InternalServerError)):
            return True
        return error.close_code in _RETRYABLE_CLOSE_CODES
    return isinstance(error, TransportError)


def error_for(event: ErrorEvent) -> APIError:
    """The exception for a server ``error`` event that answers one of our client events."""
    detail = event.error
    return _error_class(detail.code, detail.type, None)(
        redact(detail.message or "") or f"the server refused the event ({detail.code})",
        code=detail.code,
        type=detail.type,
        param=detail.param,
        body=redact_deep(event.to_dict()),
    )


def _error_class(
    code: str | None, error_type: str | None, close_code: int | None
) -> type[APIError]:
    if error_type == "server_error":
        return InternalServerError
    return _CODE_ERRORS.get(code or "") or _CLOSE_CODE_ERRORS.get(close_code or 0, BadRequestError)


def _refusal_error(final: ErrorEvent | None, ended: TransportEnded) -> APIError:
    """An error event followed by a close, before session.created: the server said no."""
    detail = final.error if final is not None else None
    code = detail.code if detail else None
    cls = _error_class(code, detail.type if detail else None, ended.code)
    message = redact(detail.message or "") if detail else ""
    message = message or f"the server closed the connection with code {ended.code}"
    if code == "beta_api_shape_disabled":
        message += (
            " — this endpoint no longer speaks the beta Realtime protocol: create the client "
            "with protocol='ga' (the default) instead of protocol='beta'"
        )
    return cls(
        message,
        code=code,
        type=detail.type if detail else None,
        param=detail.param if detail else None,
        body=redact_deep(final.to_dict()) if final is not None else None,
        close_code=ended.code,
        close_reason=ended.reason,
    )


def _http_error(ended: TransportEnded) -> APIError:
    """An HTTP refusal of the upgrade, as the matching APIError."""
    status = ended.status or 0
    headers = {name: redact(value) for name, value in ended.headers.items()}
    body: Any = None
    detail: Mapping[str, Any] = {}
    if ended.body:
        text = ended.body.decode("utf-8", "replace")
        try:
            body = loads(text)
        except Exception:  # not JSON (or absurdly nested): keep the text
            body = text
        body = redact_deep(body)
        if isinstance(body, dict) and isinstance(body.get("error"), dict):
            detail = body["error"]
    cls = _STATUS_ERRORS.get(status) or (InternalServerError if status >= 500 else BadRequestError)
    message = redact(str(detail.get("message") or "")) or (
        f"the server refused the request with HTTP {status} {ended.status_text}".rstrip()
    )
    return cls(
        f"HTTP {status}: {message}",
        status_code=status,
        headers=headers,
        body=body,
        code=detail.get("code"),
        type=detail.get("type"),
        param=detail.get("param"),
        request_id=headers.get("x-request-id"),
        retry_after=retry_after(headers),
    )


def _redirect_error(ended: TransportEnded, display_url: str) -> RedirectError:
    location = ended.location
    return RedirectError(
        f"HTTP {ended.status}: {display_url} answered with a redirect to "
        f"{redact(location or '(no Location header)')!r}; redirects are never followed, so no "
        "credentials went there. Use the final URL directly if you trust it.",
        status_code=ended.status,
        location=None if location is None else redact(location),
    )


def retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds from ``Retry-After`` (seconds or an HTTP date) or ``retry-after-ms``."""
    if "retry-after-ms" in headers:
        try:
            milliseconds = float(headers["retry-after-ms"])
        except ValueError:
            pass
        else:
            if math.isfinite(milliseconds):
                return max(0.0, milliseconds / 1000)
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:  # "inf" and "nan" parse too: not a wait anyone meant
        return max(0.0, seconds) if math.isfinite(seconds) else None
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None
