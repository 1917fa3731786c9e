"""Where to connect and how to authenticate: pure functions, no I/O.

OpenAI and Azure differ in URL shape and in how the credential travels; this module turns
the client's settings into the URL, headers and subprotocols of one WebSocket upgrade.
"""

from __future__ import annotations

import ipaddress
import logging
import os
from collections.abc import Callable, Mapping
from typing import Literal
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from attrs import field, frozen

from ._errors import ConfigurationError
from ._secrets import redact_url, register_secret

__all__ = [
    "ANNOUNCED_SHUTDOWNS",
    "DEFAULT_MODELS",
    "Auth",
    "Dialect",
    "Handshake",
    "Target",
    "azure_target",
    "check_transport_security",
    "openai_headers",
    "openai_target",
]

logger = logging.getLogger("realtime_sync")

Auth = Literal["header", "subprotocol", "query"]
Dialect = Literal["ga", "beta"]

OPENAI_BASE_URL = "https://api.openai.com/v1"
DEFAULT_MODELS: Mapping[Dialect, str] = {
    "ga": "gpt-realtime-2.1",
    "beta": "gpt-4o-realtime-preview-2024-12-17",
}
ANNOUNCED_SHUTDOWNS: Mapping[str, str] = dict.fromkeys(
    (
        "gpt-realtime",
        "gpt-realtime-2025-08-28",
        "gpt-realtime-mini",
        "gpt-realtime-mini-2025-12-15",
        "gpt-audio-mini",
        "gpt-audio-mini-2025-12-15",
    ),
    "2027-01-20",
)
"""Models with an announced shutdown date (as the official ``openai`` package documents
its realtime model list)."""
_warned_models: set[str] = set()
_warned_query = False
BETA_HEADER = ("OpenAI-Beta", "realtime=v1")
BETA_SUBPROTOCOL = "openai-beta.realtime-v1"
KEY_SUBPROTOCOL_PREFIX = "openai-insecure-api-key."
AUTH_MODES: tuple[Auth, ...] = ("header", "subprotocol", "query")
DIALECTS: tuple[Dialect, ...] = ("ga", "beta")
INTENTS: tuple[str, ...] = ("transcription",)


@frozen
class Handshake:
    """Everything one WebSocket upgrade request needs. Holds secrets: never log it whole."""

    url: str = field(repr=False)
    """The URL to connect to, credentials included when they travel in the query."""
    headers: Mapping[str, str] = field(repr=False)
    """Request headers, credentials included."""
    subprotocols: tuple[str, ...] = field(repr=False)
    """Subprotocols to offer, credentials included in subprotocol auth."""
    display_url: str
    """The URL with credentials masked: the only form that may be logged or shown."""


@frozen
class Target:
    """A Realtime endpoint and credential; makes a fresh :class:`Handshake` per connect."""

    url: str = field(repr=False)
    """Endpoint URL without credentials (ws:// or wss://, query included)."""
    dialect: Dialect
    """The protocol dialect this endpoint is expected to speak."""
    auth: Auth | Literal["azure"]
    """How the credential travels."""
    api_key: str | None = field(repr=False)
    """Static key; None when ``token_provider`` is used."""
    token_provider: Callable[[], str] | None = field(repr=False)
    """Callable returning a fresh bearer token (Azure Entra ID); called on every connect."""
    extra_headers: Mapping[str, str] = field(repr=False)
    """Caller's additional headers (organisation, project, custom)."""
    send_beta_marker: bool
    """Whether to announce the beta dialect (header or subprotocol)."""

    @property
    def display_url(self) -> str:
        """The endpoint URL, safe to print."""
        return redact_url(self.url)

    def handshake(self) -> Handshake:
        """Build the upgrade request for one connection attempt."""
        headers = dict(self.extra_headers)
        subprotocols: list[str] = []
        url = self.url
        secret = self.api_key
        if self.token_provider is not None:
            secret = self.token_provider()
            if not isinstance(secret, str) or not secret:
                raise ConfigurationError("the token provider returned no token")
            register_secret(secret)
            headers["Authorization"] = f"Bearer {secret}"
        elif self.auth == "azure":
            headers["api-key"] = secret or ""
        elif self.auth == "header":
            headers["Authorization"] = f"Bearer {secret}"
        elif self.auth == "subprotocol":
            subprotocols += ["realtime", KEY_SUBPROTOCOL_PREFIX + (secret or "")]
        else:
            url = _with_query(url, {"api-key": secret or ""})
        if self.send_beta_marker:
            if self.auth == "subprotocol":
                subprotocols.append(BETA_SUBPROTOCOL)
            else:
                headers[BETA_HEADER[0]] = BETA_HEADER[1]
        return Handshake(
            url=url,
            headers=headers,
            subprotocols=tuple(subprotocols),
            display_url=redact_url(url),
        )


def check_transport_security(target: Target, *, allow_insecure: bool) -> None:
    """Refuse to send a credential over plain ``ws://`` to a host off this machine, and
    warn (once) about a key in the URL.

    On a network, ``ws://`` shows the key (or token) to everyone on the path; loopback
    (a local server, a tunnel) stays on the machine. ``allow_insecure`` is for a network
    the caller trusts.
    """
    if target.auth == "query":
        _warn_query_auth()
    parts = urlsplit(target.url)
    if parts.scheme != "ws" or allow_insecure or _is_loopback(parts.hostname or ""):
        return
    raise ConfigurationError(
        f"refusing to send the API key in clear text to {parts.hostname!r} over ws://: use "
        "wss:// (https://), or pass allow_insecure=True for a network you trust"
    )


def _warn_query_auth() -> None:
    """Log once per process that a key in the URL is seen by proxies and server logs."""
    global _warned_query
    if not _warned_query:
        _warned_query = True
        logger.warning(
            "auth='query' puts the API key in the URL, where proxies and server logs can "
            "see it; prefer auth='header' (the default) for server-side code"
        )


def _is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _warn_if_retiring(model: str) -> None:
    """Log once per process per model that its shutdown has been announced."""
    shutdown = ANNOUNCED_SHUTDOWNS.get(model)
    if shutdown is not None and model not in _warned_models:
        _warned_models.add(model)
        logger.warning(
            "model %r has an announced shutdown on %s; choose a current model such as %r",
            model,
            shutdown,
            DEFAULT_MODELS["ga"],
        )


def _with_query(url: str, params: Mapping[str, str]) -> str:
    """Add ``params`` to ``url``'s query unless the query already names them."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    present = {name for name, _ in query}
    query += [(name, value) for name, value in params.items() if name not in present]
    return urlunsplit(parts._replace(query=urlencode(query)))


def _websocket_scheme(url: str) -> str:
    """Map http(s) to ws(s); accept ws(s) as given; refuse anything else."""
    parts = urlsplit(url)
    scheme = {"https": "wss", "http": "ws", "wss": "wss", "ws": "ws"}.get(parts.scheme.lower())
    if scheme is None or not parts.netloc:
        raise ConfigurationError(
            f"not a usable endpoint URL: {redact_url(url)!r} (expected https://, wss://, "
            "http:// or ws:// with a host)"
        )
    return urlunsplit(parts._replace(scheme=scheme))


def _check_choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ConfigurationError(f"{name} must be one of {', '.join(choices)}; got {value!r}")


def openai_target(
    *,
    api_key: str | None,
    model: str | None,
    url: str | None,
    base_url: str | None,
    auth: str,
    dialect: str,
    headers: Mapping[str, str],
    intent: str | None = None,
    call_id: str | None = None,
) -> Target:
    """Target for api.openai.com or any OpenAI-compatible Realtime endpoint.

    With ``call_id`` the URL names the call to join (``?call_id=...``) instead of a model.

    With ``intent`` the URL carries ``intent=...`` and a model only when one is named, as
    the official client builds it.
    """
    _check_choice("auth", auth, AUTH_MODES)
    _check_choice("protocol", dialect, DIALECTS)
    _check_intent(intent, dialect)
    _check_call(call_id, model=model, intent=intent, dialect=dialect, legacy=False)
    if not api_key:
        raise ConfigurationError(
            "no API key: pass api_key=... or set the OPENAI_API_KEY environment variable"
        )
    register_secret(api_key)
    if url is None:
        url = (base_url or OPENAI_BASE_URL).rstrip("/") + "/realtime"
    params = _intent_params(model, intent) if call_id is None else {"call_id": call_id}
    if intent is None and call_id is None:
        model = params["model"] = model or DEFAULT_MODELS[dialect]  # type: ignore[index]
        _warn_if_retiring(model)
    return Target(
        url=_with_query(_websocket_scheme(url), params),
        dialect=dialect,  # type: ignore[arg-type]
        auth=auth,  # type: ignore[arg-type]
        api_key=api_key,
        token_provider=None,
        extra_headers=dict(headers),
        send_beta_marker=dialect == "beta",
    )


def azure_target(
    *,
    endpoint: str | None,
    deployment: str | None,
    api_key: str | None,
    token_provider: Callable[[], str] | None,
    api_version: str | None,
    dialect: str | None,
    headers: Mapping[str, str],
    intent: str | None = None,
    call_id: str | None = None,
) -> Target:
    """Target for Azure OpenAI.

    With ``call_id``: the GA path ``/openai/v1/realtime?call_id=...`` (Azure's SIP and
    WebRTC guides join calls there); the legacy path cannot join a call.

    Without ``api_version``: the GA path ``/openai/v1/realtime?model=<deployment>``. With it:
    the legacy path ``/openai/realtime?api-version=...&deployment=...``, which speaks beta.
    """
    if not endpoint:
        raise ConfigurationError(
            "no Azure endpoint: pass endpoint='https://<resource>.openai.azure.com' or set "
            "AZURE_OPENAI_ENDPOINT"
        )
    _check_call(call_id, model=deployment, intent=intent, dialect=dialect, legacy=bool(api_version))
    if not deployment and intent is None and call_id is None:
        raise ConfigurationError("no Azure deployment: pass deployment='<deployment name>'")
    if api_key and token_provider:
        raise ConfigurationError("pass either api_key or azure_ad_token_provider, not both")
    if not api_key and token_provider is None:
        raise ConfigurationError(
            "no Azure credential: pass api_key=..., set AZURE_OPENAI_API_KEY, or pass "
            "azure_ad_token_provider=<callable returning an Entra ID token>"
        )
    register_secret(api_key)
    chosen: str = dialect or ("beta" if api_version else "ga")
    _check_choice("protocol", chosen, DIALECTS)
    _check_intent(intent, "beta" if api_version else chosen)  # the api-version path is beta
    base = _websocket_scheme(endpoint).rstrip("/")
    if api_version:
        url = _with_query(
            # Set: without a deployment, intent and call_id are refused on this path above.
            f"{base}/openai/realtime",
            {"api-version": api_version, "deployment": deployment or ""},
        )
    else:
        params = _intent_params(deployment, intent) if call_id is None else {"call_id": call_id}
        url = _with_query(f"{base}/openai/v1/realtime", params)
    return Target(
        url=url,
        dialect=chosen,  # type: ignore[arg-type]
        auth="azure",
        api_key=api_key,
        token_provider=token_provider,
        extra_headers=dict(headers),
        # The api-version path is beta by definition; the v1 path needs telling.
        send_beta_marker=chosen == "beta" and not api_version,
    )


def _check_call(
    call_id: str | None, *, model: str | None, intent: str | None, dialect: str | None, legacy: bool
) -> None:
    """Refuse a call join that names what the call already settled, or cannot join."""
    if call_id is None:
        return
    if not isinstance(call_id, str) or not call_id:
        raise ConfigurationError(f"call_id must be a non-empty string; got {call_id!r}")
    if model:
        raise ConfigurationError(
            "pass either model (deployment) or call_id, not both: a call's session already "
            "has its model (set it in calls.accept(call_id, session={'model': ...}))"
        )
    if intent is not None:
        raise ConfigurationError("pass either intent or call_id, not both")
    if legacy:
        raise ConfigurationError(
            "Azure's api-version endpoint cannot join a call: use the GA endpoint "
            "(RealtimeClient.azure(..., api_version=''))"
        )
    if dialect == "beta":
        raise ConfigurationError("joining a call needs the GA protocol, not protocol='beta'")


def _check_intent(intent: str | None, dialect: str) -> None:
    if intent is None:
        return
    _check_choice("intent", intent, INTENTS)
    if dialect == "beta":
        # Beta transcription connections open with transcription_session.created, not the
        # session.created a connect waits for.
        raise ConfigurationError(
            f"intent={intent!r} needs the GA protocol (a beta connection opens with "
            "transcription_session.created, which this client does not take as a session "
            "start); with protocol='beta', connect without intent and send "
            "client.transcription_session.update(...)"
        )


def _intent_params(model: str | None, intent: str | None) -> dict[str, str]:
    """The query naming the model and the intent (each only when given)."""
    params = {"model": model} if model else {}
    if intent is not None:
        params["intent"] = intent
    return params


def openai_headers(
    headers: Mapping[str, str] | None, organization: str | None, project: str | None
) -> dict[str, str]:
    """Extra headers plus ``OpenAI-Organization``/``OpenAI-Project`` (from the arguments or
    ``OPENAI_ORG_ID``/``OPENAI_PROJECT_ID``)."""
    result = dict(headers or {})
    organization = organization or os.environ.get("OPENAI_ORG_ID")
    project = project or os.environ.get("OPENAI_PROJECT_ID")
    if organization:
        result.setdefault("OpenAI-Organization", organization)
    if project:
        result.setdefault("OpenAI-Project", project)
    return result
