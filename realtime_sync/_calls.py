"""The Realtime API's HTTP side: SIP/WebRTC call control and ephemeral client secrets.

:class:`RealtimeAPI` wraps the endpoints the official ``openai`` package exposes as
``client.realtime.calls`` and ``client.realtime.client_secrets`` (and
``client.realtime.translations.client_secrets``), over :mod:`._http`. Each call is one
blocking POST with a timeout; refusals raise the same errors as the WebSocket side.
"""

from __future__ import annotations

import json
import math
import os
import re
import ssl
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

from attrs import field, frozen

from ._endpoints import OPENAI_BASE_URL, _is_loopback, openai_headers
from ._errors import ConfigurationError, TransportError
from ._http import (
    HttpEndpoint,
    HttpProxy,
    HttpReply,
    check_credential,
    multipart,
    path_segment,
)
from ._secrets import MASK, install_log_filter, redact, register_secret
from ._timeouts import check_seconds

__all__ = [
    "CallsResource",
    "ClientSecretsResource",
    "EphemeralClientSecret",
    "RealtimeAPI",
    "WebRTCCall",
]


@frozen
class EphemeralClientSecret:
    """An ephemeral key (``ek_...``) for a browser or device to open a Realtime session with.

    Its ``repr`` masks the value; pass ``value`` to the device as you would a password.
    """

    value: str = field(repr=lambda _: MASK)
    """The key itself: ``RealtimeClient(api_key=secret.value)`` or the browser's
    ``openai-insecure-api-key.<value>`` subprotocol."""
    expires_at: int
    """When the key stops opening new sessions, in Unix seconds (sessions already open go on)."""
    session: Mapping[str, Any] = field(repr=False)
    """The effective session the key's sessions start with, as the service returned it."""

    @property
    def session_type(self) -> str | None:
        """``"realtime"``, ``"transcription"``, ``"translation"`` (or None when not said)."""
        kind = self.session.get("type")
        return kind if isinstance(kind, str) else None


def _client_secret(reply: Any) -> EphemeralClientSecret:
    if not isinstance(reply, dict) or not isinstance(reply.get("value"), str):
        raise TransportError("the service's reply holds no client secret")
    register_secret(reply["value"])  # a minted key is a secret too: never logged from now on
    expires_at = reply.get("expires_at")
    if expires_at is None:
        expires_at = 0
    elif (
        isinstance(expires_at, bool)
        or not isinstance(expires_at, (int, float))
        or not math.isfinite(expires_at)
    ):
        raise TransportError(
            "the service's reply holds a client secret whose expires_at is not a Unix time: "
            f"{repr(expires_at)[:40]}"
        )
    session = reply.get("session")
    if session is None:
        session = {}
    elif not isinstance(session, dict):
        raise TransportError(
            "the service's reply holds a client secret whose session is not an object "
            f"(a {type(session).__name__})"
        )
    return EphemeralClientSecret(value=reply["value"], expires_at=int(expires_at), session=session)


def _expiry(seconds: int | None, expires_after: Mapping[str, Any] | None) -> dict[str, Any]:
    if seconds is not None and expires_after is not None:
        raise ConfigurationError("pass either expires_in or expires_after, not both")
    if seconds is not None:
        return {"expires_after": {"anchor": "created_at", "seconds": seconds}}
    return {} if expires_after is None else {"expires_after": dict(expires_after)}


class ClientSecretsResource:
    """``POST /realtime/client_secrets`` (or its translations variant)."""

    def __init__(
        self,
        endpoint: HttpEndpoint,
        path: str,
        *,
        session_required: bool,
        unsupported: str | None = None,
    ) -> None:
        self._endpoint = endpoint
        self._path = path
        self._session_required = session_required
        self._unsupported = unsupported  # why this endpoint does not exist here

    def create(
        self,
        *,
        session: Mapping[str, Any] | None = None,
        expires_in: int | None = None,
        expires_after: Mapping[str, Any] | None = None,
        timeout: float | None = None,
    ) -> EphemeralClientSecret:
        """Mint an ephemeral key whose sessions start with ``session``.

        Args:
            session: The session configuration, e.g. ``{"type": "realtime", "model":
                "gpt-realtime-2.1", "instructions": "..."}`` (``"transcription"`` sessions
                too; translation keys take a translation session and require it).
            expires_in: Seconds until the key expires (10 to 7200; the service's default
                is 600), i.e. ``expires_after={"anchor": "created_at", "seconds": n}``.
            expires_after: The raw ``expires_after`` object instead.
            timeout: Seconds for this request (default: the API's timeout).
        """
        if self._unsupported is not None:
            raise ConfigurationError(self._unsupported)
        if session is None and self._session_required:
            raise ConfigurationError("a translation client secret needs session=...")
        body: dict[str, Any] = _expiry(expires_in, expires_after)
        if session is not None:
            body["session"] = dict(session)
        return _client_secret(self._endpoint.post(self._path, body, timeout=timeout))


class TranslationsResource:
    """``realtime/translations``: its client secrets."""

    def __init__(self, client_secrets: ClientSecretsResource) -> None:
        self.client_secrets = client_secrets
        """``POST /realtime/translations/client_secrets``."""


@frozen
class WebRTCCall:
    """A WebRTC call the service created: the SDP answer for the caller's peer connection,
    and the id to join or hang up the call by."""

    call_id: str
    """The call's id (``rtc_...``): ``RealtimeClient(call_id=...)`` joins it, and
    ``calls.hangup`` ends it."""
    sdp: str = field(repr=False)
    """The SDP answer: ``setRemoteDescription({type: "answer", sdp})`` in the browser."""
    location: str
    """The reply's ``Location`` header the id was read from, e.g.
    ``/v1/realtime/calls/rtc_...``."""


# The id is the last segment of the call's path: letters, digits, "_" and "-" (rtc_...).
_CALL_LOCATION = re.compile(r"(?:.*/)?realtime/calls/([A-Za-z0-9_-]+)/?")


def _offer(sdp: object) -> bytes:
    if not isinstance(sdp, str) or not sdp.strip():
        raise ConfigurationError("sdp must be the SDP offer as a non-empty string")
    if not sdp.startswith("v="):  # every SDP description starts with its version line
        raise ConfigurationError(f"sdp is not an SDP offer (it starts {sdp[:20]!r}, not 'v=')")
    try:
        return sdp.encode()
    except UnicodeEncodeError:  # a lone surrogate: no peer connection wrote this
        raise ConfigurationError("sdp is not valid Unicode (it holds a lone surrogate)") from None


def _webrtc_call(reply: HttpReply) -> WebRTCCall:
    where = f"POST {reply.display_url}"
    location = reply.headers.get("location")
    if not location:
        raise TransportError(f"{where}: the reply has no Location header naming the call")
    found = _CALL_LOCATION.fullmatch(urlsplit(location).path)
    if found is None:
        shown = redact(repr(location)[:80])  # the service's text, bounded
        raise TransportError(f"{where}: the reply's Location header names no call: {shown}")
    try:
        answer = reply.body.decode()
    except UnicodeDecodeError:
        answer = ""
    if not answer.startswith("v="):
        raise TransportError(f"{where}: the reply is not an SDP answer")
    return WebRTCCall(call_id=found.group(1), sdp=answer, location=location)


class CallsResource:
    """Create a WebRTC call, and control a SIP or WebRTC one: ``POST /realtime/calls`` and
    ``POST /realtime/calls/{call_id}/...``."""

    def __init__(self, endpoint: HttpEndpoint) -> None:
        self._endpoint = endpoint

    def create(
        self, sdp: str, *, session: Mapping[str, Any] | None = None, timeout: float | None = None
    ) -> WebRTCCall:
        """Start a WebRTC call from the caller's SDP offer; the answer completes its peer
        connection, and ``call_id`` lets a backend join the call (``RealtimeClient(call_id=
        ...)``) or hang it up.

        Args:
            sdp: The SDP offer of the caller's ``RTCPeerConnection``.
            session: The session to start with, as for ``accept`` (``"type": "realtime"``
                is added when absent). Without it the body is the bare offer and the call
                starts from the key's session (an ``ek_`` key's configuration) or the
                defaults.
            timeout: Seconds for this request (default: the API's timeout).
        """
        offer = _offer(sdp)
        if session is None:
            payload, content_type = offer, "application/sdp"
        else:
            config = json.dumps({"type": "realtime", **session}).encode()
            payload, content_type = multipart(
                [("sdp", "application/sdp", offer), ("session", "application/json", config)]
            )
        reply = self._endpoint.send(
            "/realtime/calls",
            payload,
            content_type=content_type,
            accept="application/sdp",
            timeout=timeout,
        )
        return _webrtc_call(reply)

    def _post(
        self, call_id: str, action: str, body: Mapping[str, Any] | None, timeout: float | None
    ) -> None:
        path = f"/realtime/calls/{path_segment(call_id, 'call_id')}/{action}"
        self._endpoint.post(path, body, timeout=timeout)

    def accept(
        self, call_id: str, *, session: Mapping[str, Any], timeout: float | None = None
    ) -> None:
        """Answer an incoming call with a session: ``session`` is sent as the request body,
        e.g. ``{"type": "realtime", "model": "gpt-realtime-2.1", "instructions": "..."}``
        (``"type": "realtime"`` is added when absent). Join it afterwards with
        ``RealtimeClient(call_id=call_id)``."""
        self._post(call_id, "accept", {"type": "realtime", **session}, timeout)

    def reject(
        self, call_id: str, *, status_code: int | None = None, timeout: float | None = None
    ) -> None:
        """Decline an incoming call with a SIP status (the service's default: 603 Decline)."""
        body = {} if status_code is None else {"status_code": status_code}
        self._post(call_id, "reject", body, timeout)

    def refer(self, call_id: str, *, target_uri: str, timeout: float | None = None) -> None:
        """Transfer the call (SIP REFER) to ``target_uri``, e.g. ``"tel:+14155550123"``."""
        self._post(call_id, "refer", {"target_uri": target_uri}, timeout)

    def hangup(self, call_id: str, *, timeout: float | None = None) -> None:
        """End the call, SIP or WebRTC."""
        self._post(call_id, "hangup", None, timeout)


class RealtimeAPI:
    """The Realtime API's HTTP endpoints, synchronous, with the standard library::

        api = RealtimeAPI()                               # key from OPENAI_API_KEY
        api.calls.accept(call_id, session={"instructions": "Be brief."})
        call = api.calls.create(offer_sdp, session={"instructions": "Be brief."})
        secret = api.client_secrets.create(session={"type": "realtime"}, expires_in=600)

    Refusals raise the same :class:`~realtime_sync.APIError` subclasses as the WebSocket
    client (401 :class:`~realtime_sync.AuthenticationError`, 404
    :class:`~realtime_sync.BadRequestError`, 429 :class:`~realtime_sync.RateLimitError`,
    5xx :class:`~realtime_sync.InternalServerError`); no answer within the timeout raises
    :class:`~realtime_sync.RealtimeTimeoutError`, a network failure
    :class:`~realtime_sync.TransportError`. Nothing is retried: accepting a call twice is
    not harmless.
    """

    calls: CallsResource
    """``create`` (WebRTC), ``accept``, ``reject``, ``refer``, ``hangup``."""
    client_secrets: ClientSecretsResource
    """``create`` an ephemeral key."""
    translations: TranslationsResource
    """``translations.client_secrets.create`` (OpenAI only)."""

    def __init__(
        self,
        api_key: str | None = None,
        *,
        base_url: str | None = None,
        timeout: float = 30.0,
        headers: Mapping[str, str] | None = None,
        organization: str | None = None,
        project: str | None = None,
        ssl_context: ssl.SSLContext | None = None,
        allow_insecure: bool = False,
        http_proxy_host: str | None = None,
        http_proxy_port: int | str | None = None,
        http_proxy_auth: tuple[str, str] | None = None,
        http_no_proxy: list[str] | None = None,
        proxy_type: str | None = None,
    ) -> None:
        """Configure the endpoints; nothing is sent until a method is called.

        Args:
            api_key: The API key; defaults to ``OPENAI_API_KEY``.
            base_url: The API base; defaults to ``OPENAI_BASE_URL``, else
                ``https://api.openai.com/v1``.
            timeout: Default seconds per request, in all: connecting, sending, and reading
                the reply.
            headers: Extra request headers.
            organization, project: ``OpenAI-Organization`` / ``OpenAI-Project`` (default
                ``OPENAI_ORG_ID`` / ``OPENAI_PROJECT_ID``).
            ssl_context: TLS context, e.g. to trust a corporate CA.
            allow_insecure: Allow ``http://`` to a host off this machine (the key would
                cross the network in clear text); refused otherwise.
            http_proxy_host, http_proxy_port, http_proxy_auth, http_no_proxy, proxy_type:
                An HTTP proxy to tunnel through (CONNECT), as for
                :class:`~realtime_sync.RealtimeClient`; ``proxy_type`` may only be
                ``"http"``. Without them the ``https_proxy`` / ``http_proxy`` and
                ``no_proxy`` environment variables apply.
        """
        key = api_key if api_key is not None else os.environ.get("OPENAI_API_KEY")
        if not key:
            raise ConfigurationError(
                "no API key: pass api_key=... or set the OPENAI_API_KEY environment variable"
            )
        base = base_url or os.environ.get("OPENAI_BASE_URL") or OPENAI_BASE_URL
        endpoint = _endpoint(
            base,
            auth_header="Authorization",
            api_key=key,
            token_provider=None,
            headers=openai_headers(headers, organization, project),
            timeout=timeout,
            ssl_context=ssl_context,
            allow_insecure=allow_insecure,
            proxy=_proxy(http_proxy_host, http_proxy_port, http_proxy_auth, proxy_type),
            no_proxy=http_no_proxy,
        )
        self._setup(endpoint, translations=True)

    def _setup(self, endpoint: HttpEndpoint, *, translations: bool) -> None:
        self._endpoint = endpoint
        self.calls = CallsResource(endpoint)
        self.client_secrets = ClientSecretsResource(
            endpoint, "/realtime/client_secrets", session_required=False
        )
        self.translations = TranslationsResource(
            ClientSecretsResource(
                endpoint,
                "/realtime/translations/client_secrets",
                session_required=True,
                unsupported=None if translations else _NO_AZURE_TRANSLATIONS,
            )
        )

    @classmethod
    def azure(
        cls,
        *,
        endpoint: str | None = None,
        api_key: str | None = None,
        azure_ad_token_provider: Callable[[], str] | None = None,
        timeout: float = 30.0,
        headers: Mapping[str, str] | None = None,
        ssl_context: ssl.SSLContext | None = None,
        allow_insecure: bool = False,
        http_proxy_host: str | None = None,
        http_proxy_port: int | str | None = None,
        http_proxy_auth: tuple[str, str] | None = None,
        http_no_proxy: list[str] | None = None,
        proxy_type: str | None = None,
    ) -> RealtimeAPI:
        """The same endpoints on Azure OpenAI's v1 API (``<endpoint>/openai/v1``), which
        serves calls (WebRTC ones created too) and client secrets; translation secrets are
        refused (Azure documents none). ``endpoint`` defaults to ``AZURE_OPENAI_ENDPOINT``,
        ``api_key`` (sent as ``api-key``; an ephemeral ``ek_`` key as a bearer token, as
        Azure's WebRTC guide sends it) to ``AZURE_OPENAI_API_KEY`` unless a token provider
        is given; the other arguments are as for :class:`RealtimeAPI`."""
        base = endpoint or os.environ.get("AZURE_OPENAI_ENDPOINT")
        if not base:
            raise ConfigurationError(
                "no Azure endpoint: pass endpoint='https://<resource>.openai.azure.com' or "
                "set AZURE_OPENAI_ENDPOINT"
            )
        if api_key and azure_ad_token_provider:
            raise ConfigurationError("pass either api_key or azure_ad_token_provider, not both")
        if api_key is None and azure_ad_token_provider is None:
            api_key = os.environ.get("AZURE_OPENAI_API_KEY")
        if not api_key and azure_ad_token_provider is None:
            raise ConfigurationError(
                "no Azure credential: pass api_key=..., set AZURE_OPENAI_API_KEY, or pass "
                "azure_ad_token_provider=<callable returning an Entra ID token>"
            )
        api = cls.__new__(cls)
        api._setup(
            _endpoint(
                base.rstrip("/") + "/openai/v1",
                auth_header="Authorization" if (api_key or "").startswith("ek_") else "api-key",
                api_key=api_key,
                token_provider=azure_ad_token_provider,
                headers=dict(headers or {}),
                timeout=timeout,
                ssl_context=ssl_context,
                allow_insecure=allow_insecure,
                proxy=_proxy(http_proxy_host, http_proxy_port, http_proxy_auth, proxy_type),
                no_proxy=http_no_proxy,
            ),
            translations=False,
        )
        return api

    def __repr__(self) -> str:
        return f"RealtimeAPI(base_url={self._endpoint.base_url!r})"


_NO_AZURE_TRANSLATIONS = (
    "Azure OpenAI documents no Realtime translation client secrets endpoint; use "
    "RealtimeAPI() against OpenAI for translation sessions"
)


def _endpoint(
    base: str,
    *,
    auth_header: str,
    api_key: str | None,
    token_provider: Callable[[], str] | None,
    headers: Mapping[str, str],
    timeout: float,
    ssl_context: ssl.SSLContext | None,
    allow_insecure: bool,
    proxy: HttpProxy | None,
    no_proxy: list[str] | None,
) -> HttpEndpoint:
    seconds = check_seconds(timeout, "timeout", finite=True)
    parts = urlsplit(base)
    if "@" in parts.netloc:  # not echoed: it holds a password
        raise ConfigurationError(
            "base_url must not carry credentials (user:password@host): pass the key as "
            "api_key (or a token provider on Azure)"
        )
    if parts.scheme not in ("https", "http") or not parts.netloc:
        raise ConfigurationError(f"base_url must be an http(s) URL with a host; got {base!r}")
    if parts.scheme == "http" and not allow_insecure and not _is_loopback(parts.hostname or ""):
        raise ConfigurationError(
            f"refusing to send the API key in clear text to {parts.hostname!r} over http://: "
            "use https://, or pass allow_insecure=True for a network you trust"
        )
    register_secret(api_key)
    install_log_filter()
    if api_key is not None:
        check_credential(api_key, "API key")
    for name, value in headers.items():
        if any(ord(c) < 0x20 or ord(c) == 0x7F for c in f"{name}{value}"):  # value not shown
            raise ConfigurationError(f"the header {name!r} holds a line break or control character")
    return HttpEndpoint(
        base_url=base,
        auth_header=auth_header,
        api_key=api_key,
        token_provider=token_provider,
        headers=dict(headers),
        timeout=seconds,
        ssl_context=ssl_context,
        proxy=proxy,
        no_proxy=None if no_proxy is None else tuple(no_proxy),
    )


def _proxy(
    host: str | None,
    port: int | str | None,
    auth: tuple[str, str] | None,
    proxy_type: str | None,
) -> HttpProxy | None:
    """The explicit proxy, checked; None: the environment decides."""
    if proxy_type not in (None, "http"):
        raise ConfigurationError(
            f"proxy_type {proxy_type!r} is not supported for HTTP requests: only 'http' "
            "(CONNECT) proxies are"
        )
    return HttpProxy.given(host, port, auth)
