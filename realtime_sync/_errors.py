"""Exceptions raised by realtime_sync.

Every exception the library raises derives from :class:`RealtimeError`::

    RealtimeError
    ├── ConfigurationError          bad arguments, no API key (also a ValueError)
    │   └── UnknownEventTypeError   on("respnse.done"): a name no dialect has
    ├── InvalidEventError           not a valid client event, or a field the dialect lacks
    ├── ToolArgumentsError          the model's arguments do not fit a tool (also a ValueError)
    ├── NotConnectedError           send() with no open session
    │   └── SendQueueFullError      send() while reconnecting, and the gap's queue is full
    ├── AlreadyConnectedError       connect() while a session is open or opening
    ├── WouldDeadlockError          a blocking call made on the dispatcher thread
    ├── RealtimeTimeoutError        connect() or wait_for() ran out of time (also a TimeoutError)
    ├── TransportError              the network failed: refused, DNS, TLS, bad upgrade reply
    ├── ConnectionClosed            an open session ended without close() being called
    ├── ClientClosed                a wait was cut short by the client's own close()
    ├── ResponseError               a response ended cancelled, failed or incomplete
    │   └── ResponseInterruptedError   the connection was lost while it was in progress
    ├── InternalError               a failure inside realtime_sync ended the session
    ├── WebhookVerificationError    a webhook's signature, headers or timestamp do not check out
    └── APIError                    the server refused us, by HTTP status or error-then-close
        ├── BadRequestError         other 4xx; close 4000 (unknown model, wrong dialect)
        ├── AuthenticationError     401; close 3000 with invalid_api_key
        ├── PermissionDeniedError   403
        ├── RateLimitError          429
        ├── InternalServerError     5xx
        └── RedirectError           301/302/303/307/308: never followed, nothing sent on

A refusal reaches us two ways and both raise the same class: an HTTP status on the upgrade
request (``status_code`` set), or, as api.openai.com does, a successful upgrade followed by an
``error`` event and a WebSocket close (``close_code`` set, ``status_code`` None).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = [
    "APIError",
    "AlreadyConnectedError",
    "AuthenticationError",
    "BadRequestError",
    "ClientClosed",
    "ConfigurationError",
    "ConnectionClosed",
    "InternalError",
    "InternalServerError",
    "InvalidEventError",
    "NotConnectedError",
    "PermissionDeniedError",
    "RateLimitError",
    "RealtimeError",
    "RealtimeTimeoutError",
    "RedirectError",
    "ResponseError",
    "ResponseInterruptedError",
    "SendQueueFullError",
    "TransportError",
    "UnknownEventTypeError",
    "WebhookVerificationError",
    "WouldDeadlockError",
]


class RealtimeError(Exception):
    """Root of every exception raised by realtime_sync."""


class ConfigurationError(RealtimeError, ValueError):
    """The client was given arguments it cannot work with (no API key, bad option)."""


class UnknownEventTypeError(ConfigurationError):
    """A handler was registered for an event type that neither dialect defines."""


class InvalidEventError(RealtimeError, ValueError):
    """An event we were asked to send is not valid: no ``type``, a field the connection's
    dialect has no equivalent for, audio of the wrong kind. Nothing was sent."""


class NotConnectedError(RealtimeError):
    """An operation needs an open session and there is none; nothing was sent."""


class SendQueueFullError(NotConnectedError):
    """The client is reconnecting and its queue for events sent meanwhile is full
    (``ReconnectPolicy.queue_max_events`` / ``queue_max_bytes``); nothing was queued."""


class AlreadyConnectedError(RealtimeError, RuntimeError):
    """``connect()`` was called while a session is open or being opened; ``close()`` first."""


class WouldDeadlockError(RealtimeError, RuntimeError):
    """A blocking call was made from a handler, on the thread that would have to unblock it."""


class RealtimeTimeoutError(RealtimeError, TimeoutError):
    """A blocking operation did not complete within its timeout."""


class TransportError(RealtimeError):
    """The connection failed below the Realtime protocol (TCP, DNS, TLS, WebSocket upgrade)."""


class ConnectionClosed(RealtimeError):
    """The session ended without the client asking for it.

    ``code`` and ``reason`` come from the server's close frame (None when the connection
    dropped without one); ``error`` is the server's last ``error`` event before the close,
    such as ``session_expired``.
    """

    def __init__(
        self,
        message: str,
        *,
        code: int | None = None,
        reason: str | None = None,
        error: Any = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        """The WebSocket close code, or None when the connection dropped without one."""
        self.reason = reason
        """The close reason text, or None."""
        self.error = error
        """The last ``error`` event the server sent before closing, if any."""


class ClientClosed(RealtimeError):
    """The client's own :meth:`~realtime_sync.RealtimeClient.close` ended the session while
    this wait was pending (compare :class:`ConnectionClosed`: ended by the server or the
    network)."""


class ResponseError(RealtimeError):
    """A response did not complete: ``status`` is ``cancelled``, ``failed`` or
    ``incomplete``; ``reason`` the server's reason or error code (``client_cancelled``,
    ``turn_detected``, ``max_output_tokens``, ``content_filter``...); ``reply`` what was
    produced before it ended (None when it never began)."""

    def __init__(
        self, message: str, *, status: str | None, reason: str | None, reply: Any = None
    ) -> None:
        super().__init__(message)
        self.status = status
        """``cancelled``, ``failed`` or ``incomplete``."""
        self.reason = reason
        """Why, as the server said it."""
        self.reply = reply
        """The partial :class:`~realtime_sync.Reply`, or None."""


class ResponseInterruptedError(ResponseError):
    """The connection was lost while the response was in progress (or asked for and not
    begun); the client reconnects, but the response is gone. ``status`` is
    ``incomplete``, ``reason`` ``connection_lost`` and ``__cause__`` the loss itself.
    ``ReconnectPolicy(retry_interrupted=True)`` asks for it again instead."""


class InternalError(RealtimeError):
    """A failure inside realtime_sync (a bug, or a ``BaseException`` in its machinery) ended
    the session; ``__cause__`` holds what happened. The client closed itself."""


class WebhookVerificationError(RealtimeError, ValueError):
    """A webhook did not verify: a required header missing, a timestamp outside the
    tolerance window, or no signature matching the secret. Answer the request with 400 and
    do not act on its body."""


class APIError(RealtimeError):
    """The Realtime service refused the request.

    Attributes carry what the server said: ``status_code``, ``headers`` and ``body`` for an
    HTTP refusal of the upgrade; ``close_code`` and ``close_reason`` for an error-then-close;
    ``code``, ``type``, ``param`` and ``request_id`` parsed from the JSON error when present;
    ``retry_after`` from ``Retry-After`` on any status (429 and 503 both send it).
    Secrets the server echoed are masked in ``body`` and ``headers``.
    """

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        headers: Mapping[str, str] | None = None,
        body: Any = None,
        code: str | None = None,
        type: str | None = None,
        param: str | None = None,
        request_id: str | None = None,
        close_code: int | None = None,
        close_reason: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        """Human-readable explanation (the server's own message when it sent one)."""
        self.status_code = status_code
        """HTTP status of a refused upgrade; None for an error-then-close refusal."""
        self.headers: Mapping[str, str] = dict(headers or {})
        """Response headers of a refused upgrade, names in lower case."""
        self.body = body
        """Parsed JSON body of a refused upgrade (or its text when it is not JSON)."""
        self.code = code
        """The error code, e.g. ``invalid_api_key``, ``beta_api_shape_disabled``."""
        self.type = type
        """The error type, e.g. ``invalid_request_error``."""
        self.param = param
        """The parameter the error is about, when the server names one."""
        self.request_id = request_id
        """The server's request id (``x-request-id``), for support tickets."""
        self.close_code = close_code
        """The WebSocket close code of an error-then-close refusal (3000, 4000, ...)."""
        self.close_reason = close_reason
        """The WebSocket close reason of an error-then-close refusal."""
        self.retry_after = retry_after
        """Seconds the server asked us to wait (``Retry-After``), or None."""


class BadRequestError(APIError):
    """The request was malformed: unknown model or deployment, wrong dialect, bad parameter."""


class AuthenticationError(APIError):
    """The API key or token was missing, wrong or revoked (HTTP 401, close 3000)."""


class PermissionDeniedError(APIError):
    """The key is valid but may not use this model or resource (HTTP 403)."""


class RateLimitError(APIError):
    """Too many requests or sessions, or no quota left (HTTP 429)."""


class InternalServerError(APIError):
    """The service failed on its side (HTTP 5xx, server_error); retrying later may work."""


class RedirectError(APIError):
    """The upgrade was answered with a redirect (3xx). OpenAI and Azure never redirect a
    Realtime upgrade, and following one would hand our credentials to another host, so it
    is refused; ``location`` says where it pointed."""

    def __init__(self, message: str, *, location: str | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.location = location
        """The redirect's ``Location`` header (credentials in it masked), or None."""
