"""One JSON POST over the standard library's ``http.client``: no new dependency.

Refusals become the same :class:`~realtime_sync.APIError` subclasses a refused WebSocket
upgrade does: the response is reported as a :class:`TransportEnded` and mapped by
:func:`realtime_sync._failures.failure`, the one place that maps statuses to errors.
Redirects are never followed (the credential would go along), nothing is retried, and the
key never reaches a log line, an exception or a ``repr``.
"""

from __future__ import annotations

import http.client
import json
import logging
import ssl
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import quote, urlsplit

from attrs import field, frozen

from ._errors import ConfigurationError, RealtimeError, RealtimeTimeoutError, TransportError
from ._failures import failure
from ._secrets import redact, redact_url, register_secret
from ._transport import TransportEnded

__all__ = ["HttpEndpoint", "path_segment"]

logger = logging.getLogger("realtime_sync")

_MAX_BODY = 16 * 2**20  # a reply bigger than this is not an answer of this API


def path_segment(value: str, name: str) -> str:
    """``value`` quoted for one URL path segment; an empty one refused (it would change
    which endpoint is called)."""
    if not isinstance(value, str) or not value:
        raise ConfigurationError(f"{name} must be a non-empty string; got {value!r}")
    return quote(value, safe="")


@frozen
class HttpEndpoint:
    """An HTTP API base and its credential. Holds a secret: never log it whole."""

    base_url: str
    """``https://api.openai.com/v1`` or another base, without credentials."""
    auth_header: str
    """``Authorization`` (bearer) or ``api-key`` (Azure)."""
    api_key: str | None = field(repr=False)
    """Static key; None when ``token_provider`` is used."""
    token_provider: Callable[[], str] | None = field(repr=False)
    """Callable returning a fresh bearer token (Azure Entra ID), called for every request."""
    headers: Mapping[str, str] = field(repr=False)
    """Extra request headers (organisation, project, custom)."""
    timeout: float
    """Seconds for connecting and for each read of the reply."""
    ssl_context: ssl.SSLContext | None = field(repr=False, eq=False)
    """TLS context for ``https://`` (None: the system's defaults, verification on)."""

    def post(self, path: str, body: Mapping[str, Any] | None, *, timeout: float | None) -> Any:
        """POST ``body`` as JSON to ``base_url + path``; the parsed JSON reply (None when
        empty). Raises the matching APIError, RealtimeTimeoutError or TransportError."""
        url = self.base_url.rstrip("/") + path
        display = redact_url(url)
        parts = urlsplit(url)
        seconds = self.timeout if timeout is None else timeout
        connection: http.client.HTTPConnection
        if parts.scheme == "https":
            context = self.ssl_context or ssl.create_default_context()
            connection = http.client.HTTPSConnection(parts.netloc, timeout=seconds, context=context)
        else:
            connection = http.client.HTTPConnection(parts.netloc, timeout=seconds)
        payload = b"" if body is None else json.dumps(body).encode()
        headers = {
            **self.headers,
            "Content-Type": "application/json",
            "Accept": "application/json",
            **self._credential(),
        }
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        logger.debug("POST %s", display)
        try:
            try:
                connection.request("POST", target, body=payload, headers=headers)
                response = connection.getresponse()
                reply = response.read(_MAX_BODY + 1)
            finally:
                connection.close()
        except TimeoutError as exc:
            raise RealtimeTimeoutError(
                f"POST {display}: no answer within {seconds} s"
            ) from _scrubbed(exc)
        except (OSError, http.client.HTTPException) as exc:
            raise TransportError(
                f"POST {display} failed: {redact(str(exc)) or type(exc).__name__}"
            ) from _scrubbed(exc)
        if 200 <= response.status < 300:
            return _parse(reply, display)
        ended = TransportEnded(
            kind="redirected" if 300 <= response.status < 400 else "refused",
            opened=False,
            status=response.status,
            status_text=response.reason,
            headers={name.lower(): value for name, value in response.getheaders()},
            body=reply[:_MAX_BODY],
            location=response.getheader("location"),
        )
        error = failure(ended, session_started=False, final_error=None, display_url=display)
        raise error

    def _credential(self) -> dict[str, str]:
        if self.token_provider is not None:
            token = self.token_provider()
            if not isinstance(token, str) or not token:
                raise ConfigurationError("the token provider returned no token")
            register_secret(token)
            return {"Authorization": f"Bearer {token}"}
        if self.auth_header == "api-key":
            return {"api-key": self.api_key or ""}
        return {"Authorization": f"Bearer {self.api_key}"}


def _parse(reply: bytes, display: str) -> Any:
    if not reply.strip():
        return None
    try:
        return json.loads(reply)
    except ValueError:
        raise TransportError(f"POST {display}: the reply is not JSON") from None


def _scrubbed(exc: BaseException) -> RealtimeError:
    """The cause to chain: its text with secrets masked (a proxy may echo a header)."""
    return TransportError(redact(f"{type(exc).__name__}: {exc}"))
