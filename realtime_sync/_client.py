"""RealtimeClient: the public, blocking face of the library."""

from __future__ import annotations

import itertools
import logging
import os
import threading
import time
from collections.abc import Callable, Mapping
from email.utils import parsedate_to_datetime
from types import TracebackType
from typing import Any, TypeVar, overload

import websocket
from attrs import define

from ._connection import Connection, TransportOptions, join_started
from ._dialects import BETA_TO_GA
from ._dispatch import (
    ConnectionEnded,
    Dispatcher,
    Expectation,
    HandlerRegistry,
    check_event_pattern,
)
from ._endpoints import Dialect, Target, azure_target, openai_target
from ._errors import (
    APIError,
    AuthenticationError,
    BadRequestError,
    ConfigurationError,
    ConnectionClosed,
    InternalServerError,
    InvalidEventError,
    NotConnectedError,
    PermissionDeniedError,
    RateLimitError,
    RealtimeError,
    RealtimeTimeoutError,
    TransportError,
)
from ._json import dumps, loads
from ._local_events import ClosedEvent
from ._models import Model
from ._objects import Session
from ._resources import (
    ConversationResource,
    InputAudioBufferResource,
    OutputAudioBufferResource,
    ResponseResource,
    SessionResource,
    TranscriptionSessionResource,
)
from ._secrets import install_log_filter, redact
from ._server_events import ErrorEvent, ServerEvent, SessionEvent, decode_event, decode_payload

__all__ = ["RealtimeClient"]

logger = logging.getLogger("realtime_sync")

H = TypeVar("H", bound=Callable[..., Any])
_client_numbers = itertools.count(1)


@define(eq=False)
class _Link:
    """One connection attempt and its dispatcher: what lives from connect() to close."""

    connection: Connection
    dispatcher: Dispatcher
    display_url: str
    close_requested: bool = False
    session_started: bool = False
    ended: bool = False  # the connection is over (its closing event is being dispatched)
    # The server's error event, if it was the last thing before the close (3000, 4000...).
    final_error: ErrorEvent | None = None


class RealtimeClient:
    """A blocking client for one Realtime session at a time.

    Typed senders are grouped as in the official SDK: ``client.session.update(...)``,
    ``client.conversation.item.create(...)``, ``client.response.create(...)``,
    ``client.input_audio_buffer.append(audio=pcm_bytes)``... each returning the event id.

    >>> client = RealtimeClient()                  # OPENAI_API_KEY from the environment
    >>> client.on("response.output_text.delta", lambda ev: print(ev.delta, end=""))
    >>> with client:                               # returns once session.created arrived
    ...     client.send({"type": "response.create"})
    ...     client.wait_for("response.done", timeout=30)

    Handlers run on one dispatcher thread in arrival order; the socket runs on another, so
    a slow handler never stalls pings. Every failure to connect is raised from
    :meth:`connect` as a typed :class:`~realtime_sync.RealtimeError`.
    """

    session: SessionResource
    """The current session (``client.session.id``, ``.current``) and ``update()``."""
    conversation: ConversationResource
    """``conversation.item.create/delete/retrieve/truncate``."""
    input_audio_buffer: InputAudioBufferResource
    """``append/commit/clear`` of the input audio buffer."""
    output_audio_buffer: OutputAudioBufferResource
    """``clear`` of the output audio buffer."""
    response: ResponseResource
    """``response.create/cancel``."""
    transcription_session: TranscriptionSessionResource
    """``transcription_session.update`` (beta)."""

    def __init__(
        self,
        api_key: str | None = None,
        *,
        model: str | None = None,
        url: str | None = None,
        base_url: str | None = None,
        auth: str = "header",
        protocol: str = "ga",
        normalize_events: bool = False,
        headers: Mapping[str, str] | None = None,
        organization: str | None = None,
        project: str | None = None,
        ping_interval: float | None = 20.0,
        ping_timeout: float | None = 10.0,
        connect_timeout: float = 10.0,
        close_timeout: float = 5.0,
        sslopt: Mapping[str, Any] | None = None,
        ca_certs: str | None = None,
        http_proxy_host: str | None = None,
        http_proxy_port: int | str | None = None,
        http_proxy_auth: tuple[str, str] | None = None,
        http_no_proxy: list[str] | None = None,
        proxy_type: str | None = None,
    ) -> None:
        """Configure a client for OpenAI (or any OpenAI-compatible Realtime endpoint).

        Args:
            api_key: API key or ephemeral client secret; defaults to ``OPENAI_API_KEY``.
            model: Model name; defaults to ``gpt-realtime`` (GA) or the seed's beta model.
            url: Full endpoint URL, used as given (``model`` is added when absent).
            base_url: API base such as ``https://api.openai.com/v1``; ``/realtime`` is added.
                Defaults to ``OPENAI_BASE_URL`` when set.
            auth: How the key travels: ``"header"`` (``Authorization: Bearer``, default),
                ``"subprotocol"`` (``openai-insecure-api-key.<key>``) or ``"query"``
                (``api-key=<key>``; the key then sits in the URL, so avoid it server-side).
            protocol: ``"ga"`` (default) or ``"beta"`` (adds ``OpenAI-Beta: realtime=v1``).
            normalize_events: Deliver beta events under their GA names
                (``response.text.delta`` as ``response.output_text.delta``...), so one program
                handles both dialects with the same names.
            headers: Extra request headers.
            organization: ``OpenAI-Organization`` header; defaults to ``OPENAI_ORG_ID``.
            project: ``OpenAI-Project`` header; defaults to ``OPENAI_PROJECT_ID``.
            ping_interval: Seconds between keepalive pings (None or 0: no pings).
            ping_timeout: Seconds to wait for a pong before the connection counts as dead.
            connect_timeout: Default for :meth:`connect`'s timeout.
            close_timeout: Default for :meth:`close`'s timeout.
            sslopt: websocket-client ``sslopt``; certificate verification stays on unless
                you turn it off there.
            ca_certs: Path of a CA bundle to trust (shortcut for ``sslopt["ca_certs"]``).
            http_proxy_host, http_proxy_port, http_proxy_auth, http_no_proxy, proxy_type:
                Proxy settings, passed to websocket-client.
        """
        extra = _openai_headers(headers, organization, project)
        target = openai_target(
            api_key=api_key if api_key is not None else os.environ.get("OPENAI_API_KEY"),
            model=model,
            url=url,
            base_url=base_url or os.environ.get("OPENAI_BASE_URL") or None,
            auth=auth,
            dialect=protocol,
            headers=extra,
        )
        self._setup(
            target,
            normalize_events=normalize_events,
            ping_interval=ping_interval,
            ping_timeout=ping_timeout,
            connect_timeout=connect_timeout,
            close_timeout=close_timeout,
            sslopt=sslopt,
            ca_certs=ca_certs,
            proxy={
                "http_proxy_host": http_proxy_host,
                "http_proxy_port": http_proxy_port,
                "http_proxy_auth": http_proxy_auth,
                "http_no_proxy": http_no_proxy,
                "proxy_type": proxy_type,
            },
        )

    @classmethod
    def azure(
        cls,
        *,
        endpoint: str | None = None,
        deployment: str | None = None,
        api_key: str | None = None,
        azure_ad_token_provider: Callable[[], str] | None = None,
        api_version: str | None = None,
        protocol: str | None = None,
        normalize_events: bool = False,
        headers: Mapping[str, str] | None = None,
        ping_interval: float | None = 20.0,
        ping_timeout: float | None = 10.0,
        connect_timeout: float = 10.0,
        close_timeout: float = 5.0,
        sslopt: Mapping[str, Any] | None = None,
        ca_certs: str | None = None,
        proxy: Mapping[str, Any] | None = None,
    ) -> RealtimeClient:
        """A client for Azure OpenAI's Realtime endpoint.

        Args:
            endpoint: ``https://<resource>.openai.azure.com``; defaults to
                ``AZURE_OPENAI_ENDPOINT``.
            deployment: The deployment name (sent as ``model`` or ``deployment``).
            api_key: The resource key (``api-key`` header); defaults to
                ``AZURE_OPENAI_API_KEY`` unless a token provider is given.
            azure_ad_token_provider: A callable returning a fresh Entra ID token, called on
                every connect (sent as ``Authorization: Bearer``).
            api_version: When given (or set as ``OPENAI_API_VERSION``), use the legacy
                ``/openai/realtime?api-version=...&deployment=...`` URL, which speaks the
                beta dialect; otherwise the GA ``/openai/v1/realtime`` URL.
            protocol: Override the dialect (``"ga"`` or ``"beta"``).
            proxy: websocket-client proxy keywords (``http_proxy_host``, ...).

        The remaining arguments are as for :class:`RealtimeClient`.
        """
        if api_key is None and azure_ad_token_provider is None:
            api_key = os.environ.get("AZURE_OPENAI_API_KEY")
        target = azure_target(
            endpoint=endpoint or os.environ.get("AZURE_OPENAI_ENDPOINT"),
            deployment=deployment,
            api_key=api_key,
            token_provider=azure_ad_token_provider,
            api_version=api_version or os.environ.get("OPENAI_API_VERSION"),
            dialect=protocol,
            headers=dict(headers or {}),
        )
        client = cls.__new__(cls)
        client._setup(
            target,
            normalize_events=normalize_events,
            ping_interval=ping_interval,
            ping_timeout=ping_timeout,
            connect_timeout=connect_timeout,
            close_timeout=close_timeout,
            sslopt=sslopt,
            ca_certs=ca_certs,
            proxy=dict(proxy or {}),
        )
        return client

    def _setup(
        self,
        target: Target,
        *,
        normalize_events: bool,
        ping_interval: float | None,
        ping_timeout: float | None,
        connect_timeout: float,
        close_timeout: float,
        sslopt: Mapping[str, Any] | None,
        ca_certs: str | None,
        proxy: Mapping[str, Any],
    ) -> None:
        if ping_interval and ping_timeout and ping_interval <= ping_timeout:
            raise ConfigurationError(
                f"ping_interval ({ping_interval}) must be greater than ping_timeout "
                f"({ping_timeout}): a pong has to be due before the next ping goes out"
            )
        if ping_timeout is not None and ping_timeout <= 0:
            raise ConfigurationError("ping_timeout must be positive (or None)")
        install_log_filter()
        ssl_options = dict(sslopt or {})
        if ca_certs is not None:
            ssl_options["ca_certs"] = ca_certs
        self._target = target
        self._transport = TransportOptions(
            ping_interval=ping_interval,
            ping_timeout=ping_timeout,
            sslopt=ssl_options,
            proxy={name: value for name, value in proxy.items() if value is not None},
        )
        self._connect_timeout = connect_timeout
        self._close_timeout = close_timeout
        self._registry = HandlerRegistry(target.dialect)
        self._lock = threading.Lock()
        self._link: _Link | None = None
        self._session: Session | None = None
        self._number = next(_client_numbers)
        self._event_ids = itertools.count(1)
        self._link_numbers = itertools.count(1)
        self._event_id_prefix = f"evt_{os.urandom(6).hex()}_"
        self._decode = (
            _normalized_decode if normalize_events and target.dialect == "beta" else decode_event
        )
        self.session = SessionResource(self)
        self.conversation = ConversationResource(self)
        self.input_audio_buffer = InputAudioBufferResource(self)
        self.output_audio_buffer = OutputAudioBufferResource(self)
        self.response = ResponseResource(self)
        self.transcription_session = TranscriptionSessionResource(self)

    # --- introspection ----------------------------------------------------------------------

    @property
    def dialect(self) -> Dialect:
        """``"ga"`` or ``"beta"``: the protocol dialect this client speaks."""
        return self._target.dialect

    @property
    def url(self) -> str:
        """The endpoint URL with any credential masked."""
        return self._target.display_url

    @property
    def connected(self) -> bool:
        """True while a session is open (after ``session.created``, before the close)."""
        link = self._link
        return (
            link is not None
            and link.session_started
            and link.connection.alive
            and not link.close_requested
        )

    def __repr__(self) -> str:
        state = "connected" if self.connected else "disconnected"
        return f"<RealtimeClient {self.dialect} {self.url} {state}>"

    # --- handlers ---------------------------------------------------------------------------

    @overload
    def on(
        self, event_type: str, handler: None = None, *, allow_unknown: bool = False
    ) -> Callable[[H], H]: ...
    @overload
    def on(self, event_type: str, handler: H, *, allow_unknown: bool = False) -> H: ...

    def on(
        self, event_type: str, handler: H | None = None, *, allow_unknown: bool = False
    ) -> H | Callable[[H], H]:
        """Call ``handler(event)`` for every event of ``event_type``.

        ``event_type`` is a type of either dialect, ``"*"`` for all events, or a prefix
        pattern such as ``"response.*"``. Unknown names raise
        :class:`~realtime_sync.UnknownEventTypeError` unless ``allow_unknown=True``.
        Works as a decorator when ``handler`` is omitted; returns the handler.
        """
        return self._register(event_type, handler, once=False, allow_unknown=allow_unknown)

    @overload
    def once(
        self, event_type: str, handler: None = None, *, allow_unknown: bool = False
    ) -> Callable[[H], H]: ...
    @overload
    def once(self, event_type: str, handler: H, *, allow_unknown: bool = False) -> H: ...

    def once(
        self, event_type: str, handler: H | None = None, *, allow_unknown: bool = False
    ) -> H | Callable[[H], H]:
        """Like :meth:`on`, for the next matching event only."""
        return self._register(event_type, handler, once=True, allow_unknown=allow_unknown)

    def off(self, event_type: str | None = None, handler: Callable[..., Any] | None = None) -> int:
        """Remove registrations: of ``handler`` for ``event_type``, all of ``event_type``,
        all of ``handler``, or every one when called without arguments. Returns how many.
        """
        return self._registry.remove(event_type, handler)

    def _register(
        self, event_type: str, handler: H | None, *, once: bool, allow_unknown: bool
    ) -> H | Callable[[H], H]:
        if not allow_unknown:
            check_event_pattern(event_type)

        def register(fn: H) -> H:
            self._registry.add(event_type, fn, once=once)
            return fn

        return register if handler is None else register(handler)

    # --- lifecycle --------------------------------------------------------------------------

    def connect(self, timeout: float | None = None) -> Session:
        """Open a session; block until ``session.created`` and its handlers ran; return it.

        Raises :class:`~realtime_sync.AuthenticationError`,
        :class:`~realtime_sync.RateLimitError` and the other :class:`APIError` classes when
        the server refuses, :class:`TransportError` when the network does, and
        :class:`RealtimeTimeoutError` when no session starts within ``timeout`` seconds
        (default: the client's ``connect_timeout``).
        """
        timeout = self._connect_timeout if timeout is None else timeout
        with self._lock:
            previous = self._link
            if previous is not None and not (
                previous.close_requested or previous.ended or previous.connection.finished
            ):
                raise RealtimeError(
                    "already connected (or connecting); call close() before connecting again"
                )
            handshake = self._target.handshake()
            name = f"realtime_sync-{self._number}.{next(self._link_numbers)}"
            # The hook is bound to this link: a late event of an old connection must never
            # touch the state of a newer one. (`link` is assigned before the thread starts.)
            dispatcher = Dispatcher(
                self._registry,
                lambda event: self._before_handlers(link, event),
                name=f"{name}-dispatch",
                decode=self._decode,
            )
            connection = Connection(
                handshake,
                self._transport,
                on_frame=dispatcher.submit,
                on_end=lambda code, reason, exc: dispatcher.submit(
                    ConnectionEnded(code, reason, exc)
                ),
                thread_name=f"{name}-socket",
            )
            link = _Link(connection, dispatcher, handshake.display_url)
            self._link = link
            self._session = None
        if previous is not None:
            # Handlers run on one thread at a time: let the old connection's last events
            # (its client.closed included) finish first.
            join_started(previous.dispatcher.thread, self._close_timeout)
        logger.info("connecting to %s (%s dialect)", link.display_url, self.dialect)
        dispatcher.start()
        connection.start()
        started = time.monotonic()
        try:
            created = dispatcher.wait_for("session.created", None, timeout)
        except RealtimeTimeoutError:
            # Out of time: cut the connection and let its threads end on their own.
            link.close_requested = True
            connection.abort()
            stage = (
                "the server accepted the WebSocket but sent no session.created"
                if connection.opened.is_set()
                else "the WebSocket upgrade did not complete"
            )
            raise RealtimeTimeoutError(
                f"could not start a session at {link.display_url} within {timeout} s: {stage}"
            ) from None
        except RealtimeError:
            self._wind_down(link, self._close_timeout)
            raise
        logger.info("session started in %.0f ms", (time.monotonic() - started) * 1000)
        session: Session = created.session
        return session

    def close(self, timeout: float | None = None) -> None:
        """End the session and stop the threads; idempotent, callable from any thread
        (a handler included); returns within ``timeout`` seconds (default: the client's
        ``close_timeout``). Events already received are still dispatched.
        """
        link = self._link
        if link is None:
            return
        self._wind_down(link, self._close_timeout if timeout is None else timeout)

    def _wind_down(self, link: _Link, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        link.close_requested = True
        if not link.connection.close(timeout):
            logger.warning(
                "the socket thread of %s did not stop within %s s; it is a daemon and will "
                "end when the operating system gives up on the connection",
                link.display_url,
                timeout,
            )
        join_started(link.dispatcher.thread, deadline - time.monotonic())

    def __enter__(self) -> RealtimeClient:
        self.connect()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # --- sending and waiting ----------------------------------------------------------------

    def send(self, event: Mapping[str, Any] | Model) -> str:
        """Send one client event; return its ``event_id`` (generated when absent).

        Thread-safe. Raises :class:`NotConnectedError` when no connection is open rather than
        dropping the event, and :class:`TransportError` when the socket fails mid-send.
        """
        payload = event.to_dict() if isinstance(event, Model) else dict(event)
        if not isinstance(payload.get("type"), str):
            raise InvalidEventError("a client event needs a string 'type', e.g. 'response.create'")
        event_id = payload.get("event_id")
        if not event_id:
            event_id = payload["event_id"] = f"{self._event_id_prefix}{next(self._event_ids)}"
        link = self._link
        if link is None or not link.connection.opened.is_set() or link.close_requested:
            raise NotConnectedError(
                f"not connected: call connect() before sending {payload['type']!r}"
            )
        link.connection.send(dumps(payload))
        return str(event_id)

    def wait_for(
        self,
        event_type: str,
        *,
        predicate: Callable[[Any], bool] | None = None,
        timeout: float | None = None,
        allow_unknown: bool = False,
    ) -> Any:
        """Block until the next event of ``event_type`` (matching ``predicate``) arrives.

        Only events dispatched after the call count; to catch the answer to something you
        send, call :meth:`expect` before sending instead. Raises :class:`RealtimeTimeoutError`
        after ``timeout`` seconds, :class:`ConnectionClosed` if the session ends first, and
        :class:`WouldDeadlockError` when called from a handler.
        """
        if not allow_unknown:
            check_event_pattern(event_type)
        link = self._link
        if link is None:
            raise NotConnectedError(f"not connected: nothing to wait for {event_type!r} on")
        return link.dispatcher.wait_for(event_type, predicate, timeout)

    def expect(
        self,
        event_type: str,
        *,
        predicate: Callable[[Any], bool] | None = None,
        allow_unknown: bool = False,
    ) -> Expectation:
        """Start expecting an event now; collect it later with ``.wait(timeout)``.

        The race-free form of :meth:`wait_for` for request/answer pairs::

            done = client.expect("response.done")
            client.send({"type": "response.create"})
            event = done.wait(timeout=30)
        """
        if not allow_unknown:
            check_event_pattern(event_type)
        link = self._link
        if link is None:
            raise NotConnectedError(f"not connected: nothing to expect {event_type!r} on")
        return link.dispatcher.expect(event_type, predicate)

    # --- dispatcher thread ------------------------------------------------------------------

    def _before_handlers(self, link: _Link, event: Any) -> Any:
        """The client's own bookkeeping, run on the dispatcher before user handlers."""
        if type(event) is ConnectionEnded:
            link.ended = True
            return self._closed_event(link, event)
        link.final_error = event if type(event) is ErrorEvent else None
        if type(event) is SessionEvent:
            if event.type == "session.created":
                link.session_started = True
            if link is self._link:  # a late event of an old connection is not our session
                self._session = event.session
        elif (
            type(event) is ErrorEvent
            and link.session_started
            and not self._registry.has_handlers("error")
        ):
            detail = event.error
            logger.warning(
                "server error %s: %s (no on('error') handler registered)",
                detail.code or detail.type,
                redact(detail.message or ""),
            )
        return event

    def _closed_event(self, link: _Link, ended: ConnectionEnded) -> ClosedEvent:
        if link.close_requested:
            logger.info("connection to %s closed", link.display_url)
            return ClosedEvent(code=ended.code, reason=ended.reason, requested=True)
        error = _failure(link, ended)
        logger.info("connection to %s ended: %s", link.display_url, error)
        return ClosedEvent(code=ended.code, reason=ended.reason, requested=False, error=error)


def _normalized_decode(data: bytes | str) -> Any:
    """Decode a beta frame, renaming events that GA names differently to their GA names."""
    event = decode_event(data)
    ga_name = BETA_TO_GA.get(event.type)
    if ga_name is None or not isinstance(event, ServerEvent):
        return event
    return decode_payload({**event.raw, "type": ga_name})


def _openai_headers(
    headers: Mapping[str, str] | None, organization: str | None, project: str | None
) -> dict[str, str]:
    result = dict(headers or {})
    organization = organization or os.environ.get("OPENAI_ORG_ID")
    project = project or os.environ.get("OPENAI_PROJECT_ID")
    if organization:
        result.setdefault("OpenAI-Organization", organization)
    if project:
        result.setdefault("OpenAI-Project", project)
    return result


# --- turning how a connection ended into an exception -----------------------------------------

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


def _failure(link: _Link, ended: ConnectionEnded) -> RealtimeError:
    """The exception for a connection that ended without close() being called."""
    exc = ended.exception
    if isinstance(exc, websocket.WebSocketBadStatusException):
        return _http_error(exc)
    final = link.final_error
    if not link.session_started and (final is not None or ended.code in _CLOSE_CODE_ERRORS):
        return _refusal_error(final, ended)
    if link.session_started and ended.code is not None:
        detail = final.error if final is not None else None
        what = (
            "the session expired"
            if detail and detail.code == "session_expired"
            else ("the server closed the session")
        )
        message = f"{what} (close code {ended.code}"
        message += f", reason {redact(ended.reason)!r})" if ended.reason else ")"
        if detail is not None and detail.message:
            message += f": {redact(detail.message)}"
        return ConnectionClosed(message, code=ended.code, reason=ended.reason, error=final)
    if isinstance(exc, websocket.WebSocketTimeoutException) and link.session_started:
        return ConnectionClosed(
            f"the connection to {link.display_url} went silent: no pong within the ping timeout"
        )
    if link.session_started:
        detail_text = f": {redact(str(exc))}" if exc is not None else ""
        return ConnectionClosed(f"the connection dropped without a close frame{detail_text}")
    if exc is not None:
        error = TransportError(f"could not connect to {link.display_url}: {redact(str(exc))}")
        error.__cause__ = exc
        return error
    return ConnectionClosed(
        f"{link.display_url} closed the connection before the session started"
        + (f" (close code {ended.code})" if ended.code is not None else ""),
        code=ended.code,
        reason=ended.reason,
    )


def _refusal_error(final: ErrorEvent | None, ended: ConnectionEnded) -> APIError:
    """An error event followed by a close, before session.created: the server said no."""
    detail = final.error if final is not None else None
    code = detail.code if detail else None
    cls = _CODE_ERRORS.get(code or "") or _CLOSE_CODE_ERRORS.get(ended.code or 0, BadRequestError)
    if detail is not None and detail.type == "server_error":
        cls = InternalServerError
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
        body=final.to_dict() if final is not None else None,
        close_code=ended.code,
        close_reason=ended.reason,
    )


def _http_error(exc: websocket.WebSocketBadStatusException) -> APIError:
    """An HTTP refusal of the upgrade, as the matching APIError."""
    status = int(exc.status_code)
    headers = {str(k).lower(): str(v) for k, v in (exc.resp_headers or {}).items()}
    raw = exc.resp_body
    body: Any = None
    detail: Mapping[str, Any] = {}
    if raw:
        text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
        try:
            body = loads(text)
        except ValueError:
            body = redact(text)
        if isinstance(body, dict) and isinstance(body.get("error"), dict):
            detail = body["error"]
    cls = _STATUS_ERRORS.get(status) or (InternalServerError if status >= 500 else BadRequestError)
    message = redact(str(detail.get("message") or "")) or (
        f"the server refused the WebSocket upgrade with HTTP {status}"
        f" {exc.status_message or ''}".rstrip()
    )
    kwargs: dict[str, Any] = {
        "status_code": status,
        "headers": headers,
        "body": body,
        "code": detail.get("code"),
        "type": detail.get("type"),
        "param": detail.get("param"),
        "request_id": headers.get("x-request-id"),
    }
    if cls is RateLimitError:
        return RateLimitError(
            f"HTTP {status}: {message}", retry_after=_retry_after(headers), **kwargs
        )
    return cls(f"HTTP {status}: {message}", **kwargs)


def _retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds from ``Retry-After`` (seconds or an HTTP date) or ``retry-after-ms``."""
    if "retry-after-ms" in headers:
        try:
            return float(headers["retry-after-ms"]) / 1000
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        try:
            return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
        except (TypeError, ValueError):
            return None
