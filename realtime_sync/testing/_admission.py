"""Who gets in: the pure decision over one WebSocket upgrade request.

:func:`admit` reads what a client sent (path, query, headers, offered subprotocols) and the
server's settings and decides everything the handshake settles: the endpoint, the dialect,
how the key was presented, the subprotocol to answer with, the model, and the outcome:
:class:`Accepted`, an :class:`HttpRefusal` (instead of the upgrade) or an
:class:`OpeningFailure` (an ``error`` event and a close right after the upgrade, as real
servers answer a bad key or a bad model). No sockets, no clock, no global state: any
transport can call it. The helpers below it turn a URL and raw headers into its inputs and
mask credentials for display.
"""

from __future__ import annotations

import hmac
import json
import urllib.parse
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal, Protocol

import attrs

from .._endpoints import (
    BETA_HEADER,
    BETA_SUBPROTOCOL,
    DEFAULT_MODELS,
    KEY_SUBPROTOCOL_PREFIX,
    Dialect,
)
from .._secrets import MASK, SECRET_QUERY_PARAMS, redact
from ._catalogue import (
    KNOWN_MODELS,
    ROUTES,
    JsonObject,
    Route,
    close_reason,
    http_error_body,
    request_error,
)
from ._translation import TRANSLATION_MODELS, TRANSLATION_PATH, TRANSLATION_ROUTE

__all__ = [
    "Accepted",
    "Admission",
    "AdmissionSettings",
    "AuthMethod",
    "Directory",
    "HttpRefusal",
    "OpeningFailure",
    "admit",
    "lower_headers",
    "mask_headers",
    "mask_query",
    "mask_subprotocols",
    "split_subprotocols",
    "split_target",
]

AuthMethod = Literal["header", "subprotocol", "query", "api-key"]
"""How a client presented its key: ``Authorization: Bearer``, the
``openai-insecure-api-key.<key>`` subprotocol, the ``api-key`` query parameter, or the
``api-key`` header (Azure paths only)."""

SECRET_HEADERS = frozenset({"authorization", "api-key"})
_BETA_HEADER_NAME, _BETA_HEADER_VALUE = BETA_HEADER[0].lower(), BETA_HEADER[1]


def _model_set(models: Iterable[str] | None) -> frozenset[str] | None:
    if isinstance(models, str):  # a set of its letters is never what was meant
        raise TypeError(f"models must be a collection of model names, not the string {models!r}")
    return None if models is None else frozenset(models)


class Directory(Protocol):
    """What the server knows beyond its key: the ephemeral keys it minted and the calls a
    test created (:class:`~._calls.LocalCalls`)."""

    def key_session(self, key: str) -> Mapping[str, Any] | None:
        """The session of an unexpired ephemeral key, or None when ``key`` is not one."""

    def call_session(self, call_id: str) -> Mapping[str, Any] | None:
        """The accepted session of a call that may be joined now, or None."""


@attrs.frozen
class AdmissionSettings:
    """What the server was told about whom to let in."""

    api_key: str | None = attrs.field(default=None, repr=False)
    """The key clients must present; ``None`` accepts any non-empty key."""
    models: frozenset[str] | None = attrs.field(default=KNOWN_MODELS, converter=_model_set)
    """Models ``/v1/realtime`` serves; ``None`` accepts any. Azure paths accept any
    deployment name."""
    emulate_beta_shutdown: bool = False
    """Refuse the beta dialect on ``/v1/realtime``, as api.openai.com does since May 2026."""
    directory: Directory | None = attrs.field(default=None, eq=False, repr=False)
    """Ephemeral keys and calls to let in besides the key; None: none."""


@attrs.frozen
class Accepted:
    """Upgrade, then start the session with ``session.created``."""


@attrs.frozen
class HttpRefusal:
    """Answer the upgrade request with this HTTP response instead of 101."""

    status: int
    body: bytes | str | Mapping[str, Any] | None
    """Bytes, text, or a mapping sent as JSON; ``None`` for a default JSON error."""
    headers: Mapping[str, str] = attrs.Factory(dict)

    def encoded_body(self) -> tuple[bytes, str]:
        """The body as sent, and its content type."""
        body = self.body
        if body is None:
            message = f"Handshake rejected with HTTP {self.status} by the test server."
            body = http_error_body(self.status, message)
        if isinstance(body, Mapping):
            return json.dumps(body).encode(), "application/json"
        if isinstance(body, str):
            return body.encode(), "text/plain; charset=utf-8"
        return bytes(body), "application/octet-stream"


@attrs.frozen
class OpeningFailure:
    """Upgrade, send ``error`` with :attr:`error` first, then close with :attr:`code`."""

    code: int
    error: JsonObject

    @property
    def reason(self) -> str:
        """The close reason: ``"<type>.<code>"`` of the error."""
        return close_reason(self.error)


Outcome = Accepted | HttpRefusal | OpeningFailure


@attrs.frozen
class Admission:
    """Everything one handshake settles."""

    route: Route | None
    """The endpoint; ``None`` for an unknown path (then :attr:`outcome` is a 404)."""
    dialect: Dialect
    """``"beta"`` when the client asked for it (header or subprotocol) or the path is
    Azure's legacy one; else ``"ga"``."""
    auth: AuthMethod | None
    """How the accepted key was presented; with a wrong key, the first method tried;
    ``None`` when the client presented no key."""
    subprotocol: str | None
    """The subprotocol to answer with (never the key-bearing one), or ``None``."""
    model: str
    """The model (or Azure deployment) the session runs, ``""`` when none was named."""
    outcome: Outcome
    """What the server does with the request."""
    keys: tuple[str, ...] = attrs.field(repr=False)
    """Every key the client presented, right or wrong. Transports register each with
    :func:`realtime_sync._secrets.register_secret` so that no later log line shows it."""
    intent: str | None = None
    """``"transcription"`` when the query asked for a transcription session, else None."""
    call_id: str | None = None
    """The call a ``?call_id=`` connection joins, or None. Every join of one call plays
    the call's one session (:mod:`._shared_sessions`)."""
    preset: Mapping[str, Any] | None = attrs.field(default=None, repr=False)
    """The session to start from instead of the defaults: the joined call's (from its
    ``accept``) or the ephemeral key's; None for the defaults."""


def admit(
    path: str,
    query: Mapping[str, str],
    headers: Mapping[str, str],
    subprotocols: Sequence[str],
    settings: AdmissionSettings,
) -> Admission:
    """Decide one upgrade request.

    Args:
        path: The request path without its query, e.g. ``"/v1/realtime"``.
        query: Query parameters (see :func:`split_target`).
        headers: Request headers with lower-case names (see :func:`lower_headers`).
        subprotocols: Subprotocols the client offered, in order.
        settings: The server's key, accepted models and beta shutdown switch.

    The checks run in the order real servers appear to apply them: an unknown path is an
    HTTP 404; then a missing or wrong key closes with 3000 (``invalid_api_key``); a missing
    query parameter, an unknown model or (with ``emulate_beta_shutdown``) the beta dialect on
    OpenAI's path close with 4000. With ``intent=transcription`` no model is needed (and
    any is accepted); another intent closes with 4000 (``invalid_value``).
    """
    route = ROUTES.get(path) or (TRANSLATION_ROUTE if path == TRANSLATION_PATH else None)
    beta = (
        _BETA_HEADER_VALUE in headers.get(_BETA_HEADER_NAME, "").replace(" ", "").split(",")
        or BETA_SUBPROTOCOL in subprotocols
        or (route is not None and route.legacy)
    )
    presented = _credentials(route, headers, subprotocols, query)
    auth, key_ok = _check_key(presented, settings.api_key)
    model = query.get(route.model_param, "") if route is not None else ""
    intent = query.get("intent") or None
    preset, joined = None, None
    call_id = query.get("call_id") if route is not None and not route.legacy else None
    if settings.directory is not None:
        for method, key in presented:
            preset = settings.directory.key_session(key)
            if preset is not None:  # an ephemeral key this server minted
                auth, key_ok = method, True
                break
        joined = settings.directory.call_session(call_id) if call_id else None
    if joined is not None:
        preset, model = joined, str(joined.get("model") or DEFAULT_MODELS["ga"])
    dialect: Dialect = "beta" if beta else "ga"
    outcome: Outcome
    if route is None:
        message = f"Invalid URL (GET {path}): no Realtime endpoint here."
        outcome = HttpRefusal(404, http_error_body(404, message))
    else:
        outcome = _opening_failure(
            route,
            query=query,
            dialect=dialect,
            model=model,
            settings=settings,
            presented=presented,
            key_ok=key_ok,
            intent=intent,
            call_id=call_id,
            joined=joined is not None,
        )
    return Admission(
        route=route,
        dialect=dialect,
        auth=auth,
        subprotocol=_choose_subprotocol(subprotocols),
        model=model,
        outcome=outcome,
        keys=tuple(key for _, key in presented),
        intent=intent,
        call_id=call_id or None,
        preset=preset,
    )


def _opening_failure(
    route: Route,
    *,
    query: Mapping[str, str],
    dialect: Dialect,
    model: str,
    settings: AdmissionSettings,
    presented: Sequence[tuple[AuthMethod, str]],
    key_ok: bool,
    intent: str | None = None,
    call_id: str | None = None,
    joined: bool = False,
) -> Outcome:
    if not key_ok:
        message = (
            "Incorrect API key provided. You can find your API key at "
            "https://platform.openai.com/account/api-keys."
            if presented
            else "No API key provided. Send it in an 'Authorization: Bearer <key>' header."
        )
        return OpeningFailure(3000, request_error("invalid_api_key", message))
    if call_id:  # the call's session already has its model
        if joined:
            return Accepted()
        message = f"No active call found with id '{call_id}'."
        return OpeningFailure(4000, request_error("call_not_found", message, "call_id"))
    if intent is not None and (intent != "transcription" or route is TRANSLATION_ROUTE):
        message = f"Invalid value for 'intent': {intent!r}; expected 'transcription'."
        return OpeningFailure(4000, request_error("invalid_value", message, "intent"))
    for name in route.required:
        if intent is not None and name == route.model_param:
            continue  # a transcription session needs no model
        if not query.get(name):
            code = "missing_model" if name == "model" else "missing_required_parameter"
            message = f"Missing required query parameter: '{name}'."
            return OpeningFailure(4000, request_error(code, message, name))
    served = TRANSLATION_MODELS if route is TRANSLATION_ROUTE else settings.models
    known = settings.models is None or model in (served or ())
    if not route.azure and intent is None and not known:
        message = f"The model '{model}' does not exist or you do not have access to it."
        return OpeningFailure(4000, request_error("model_not_found", message))
    if settings.emulate_beta_shutdown and dialect == "beta" and not route.azure:
        message = (
            "The Realtime API beta interface (OpenAI-Beta: realtime=v1) has been turned off. "
            "Connect without the beta header or subprotocol and use the GA interface."
        )
        return OpeningFailure(4000, request_error("beta_api_shape_disabled", message))
    return Accepted()


def _credentials(
    route: Route | None,
    headers: Mapping[str, str],
    offered: Sequence[str],
    query: Mapping[str, str],
) -> list[tuple[AuthMethod, str]]:
    """Every key the client presented, in the order they are checked."""
    found: list[tuple[AuthMethod, str]] = []
    scheme, _, token = headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        found.append(("header", token.strip()))
    found.extend(
        ("subprotocol", name[len(KEY_SUBPROTOCOL_PREFIX) :])
        for name in offered
        if name.startswith(KEY_SUBPROTOCOL_PREFIX) and len(name) > len(KEY_SUBPROTOCOL_PREFIX)
    )
    if query.get("api-key"):
        found.append(("query", query["api-key"]))
    if route is not None and route.azure and headers.get("api-key"):
        found.append(("api-key", headers["api-key"]))
    return found


def _check_key(
    presented: Sequence[tuple[AuthMethod, str]], expected: str | None
) -> tuple[AuthMethod | None, bool]:
    """The method to report and whether a presented key is good."""
    first: AuthMethod | None = presented[0][0] if presented else None
    if expected is None:
        return first, bool(presented)
    wanted = expected.encode()
    for method, key in presented:
        if hmac.compare_digest(key.encode(), wanted):
            return method, True
    return first, False


def _choose_subprotocol(offered: Sequence[str]) -> str | None:
    # Clients that offer subprotocols require one back; never echo the key-bearing one.
    if "realtime" in offered:
        return "realtime"
    for name in offered:
        if not name.startswith(KEY_SUBPROTOCOL_PREFIX):
            return name
    return None


# Turning a request into admit()'s inputs


def split_target(target: str) -> tuple[str, dict[str, str]]:
    """The path and query parameters of a URL or request target (last value wins)."""
    parts = urllib.parse.urlsplit(target)
    return parts.path, dict(urllib.parse.parse_qsl(parts.query, keep_blank_values=True))


def lower_headers(items: Iterable[tuple[str, str]]) -> dict[str, str]:
    """Headers with lower-case names; a repeated header's values joined with ``", "``."""
    headers: dict[str, str] = {}
    for name, value in items:
        key = name.lower()
        headers[key] = f"{headers[key]}, {value}" if key in headers else value
    return headers


def split_subprotocols(values: Iterable[str]) -> list[str]:
    """The subprotocols named by ``Sec-WebSocket-Protocol`` header values, in order."""
    return [name.strip() for value in values for name in value.split(",") if name.strip()]


# Masking credentials for display. The places a key travels are known, so they are masked
# by position, whether or not the key was registered (a raw client's wrong key never is).


def mask_header(name: str, value: str) -> str:
    """``value`` of header ``name``, with any credential in it masked."""
    lowered = name.lower()
    if lowered in SECRET_HEADERS:
        return MASK
    if lowered == "sec-websocket-protocol":
        return ", ".join(mask_subprotocols(split_subprotocols([value])))
    return redact(value)


def mask_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """``headers`` with credentials masked."""
    return {name: mask_header(name, value) for name, value in headers.items()}


def mask_query(query: Mapping[str, str]) -> dict[str, str]:
    """``query`` with credential parameters masked."""
    return {
        name: MASK if name.lower() in SECRET_QUERY_PARAMS else redact(value)
        for name, value in query.items()
    }


def mask_subprotocols(subprotocols: Iterable[str]) -> list[str]:
    """Subprotocols with the key of ``openai-insecure-api-key.<key>`` masked."""
    return [
        KEY_SUBPROTOCOL_PREFIX + MASK if name.startswith(KEY_SUBPROTOCOL_PREFIX) else redact(name)
        for name in subprotocols
    ]
