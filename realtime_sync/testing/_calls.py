"""Calls and ephemeral keys of the local server, and the HTTP API that controls them.

Pure state behind a lock, no sockets: :class:`LocalCalls` (``server.calls``) answers the
HTTP requests :mod:`._http_server` hands it, tells admission which ephemeral keys and call
joins to let in, and lets a test create incoming calls with the webhook the service would
send; WebRTC callers create theirs (:mod:`._webrtc` reads the offer and writes the answer).
:func:`sign_webhook` signs a payload the way OpenAI does.
"""

from __future__ import annotations

import base64
import copy
import hmac
import json
import secrets
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import attrs

from .._endpoints import DEFAULT_MODELS
from .._secrets import register_secret
from ..webhooks import signature
from ._catalogue import (
    SESSION_SECONDS,
    JsonObject,
    ga_session,
    ga_transcription_session,
    random_id,
)
from ._simulator import SessionSimulator
from ._webrtc import OfferError, answer_sdp, read_offer

__all__ = [
    "CallRecord",
    "HttpAnswer",
    "IncomingCall",
    "LocalCalls",
    "apply_preset",
    "error_answer",
    "merge_session",
    "sign_webhook",
]

_API_PREFIXES = ("/v1", "/openai/v1")  # OpenAI's base path, and Azure's v1 one
_KEY_SECONDS = (10, 7200)  # the range the service allows for expires_after.seconds
_DEFAULT_KEY_SECONDS = 600


def sign_webhook(
    payload: str | bytes | Mapping[str, Any],
    secret: str,
    *,
    webhook_id: str | None = None,
    timestamp: int | None = None,
) -> tuple[bytes, dict[str, str]]:
    """The body and headers OpenAI would POST for ``payload`` (a mapping is JSON-encoded),
    signed with ``secret`` (``whsec_<base64>``): ``webhook-id``, ``webhook-timestamp``
    (now by default), ``webhook-signature`` (``v1,<base64 HMAC-SHA256>``), content type."""
    body = (
        json.dumps(payload).encode()
        if isinstance(payload, Mapping)
        else (payload.encode() if isinstance(payload, str) else bytes(payload))
    )
    webhook_id = webhook_id or random_id("wh_")
    timestamp = int(time.time()) if timestamp is None else timestamp
    return body, {
        "webhook-id": webhook_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature(
            body, secret=secret, webhook_id=webhook_id, timestamp=timestamp
        ),
        "content-type": "application/json",
    }


@attrs.frozen
class IncomingCall:
    """A call a test created: what the service would tell your webhook endpoint."""

    call_id: str
    """The call's id (``rtc_...``)."""
    body: bytes = attrs.field(repr=False)
    """The ``realtime.call.incoming`` event, as the webhook's request body."""
    headers: Mapping[str, str] = attrs.field(repr=False)
    """The webhook's signed headers."""

    @property
    def event(self) -> JsonObject:
        """The event, parsed."""
        parsed: JsonObject = json.loads(self.body)
        return parsed


@attrs.frozen
class CallRecord:
    """What happened to a call so far."""

    call_id: str
    """The call's id."""
    state: str
    """``incoming``, ``accepted``, ``rejected``, ``referred`` or ``ended`` (a WebRTC call
    starts ``accepted``)."""
    session: JsonObject | None = attrs.field(repr=False)
    """The session configuration ``accept`` sent, or a WebRTC call's (its key's session
    with the request's laid over it); None before either."""
    status_code: int | None = None
    """The SIP status ``reject`` sent (603 when it sent none)."""
    target_uri: str | None = None
    """Where ``refer`` transferred the call."""


@attrs.frozen
class HttpAnswer:
    """One HTTP response: status, headers, body."""

    status: int
    body: JsonObject | str | None = None
    """JSON, or text sent as ``content_type`` (an SDP answer); None: empty."""
    headers: Mapping[str, str] = attrs.Factory(dict)
    delay: float = 0.0
    """Seconds to wait before answering (a slow service, for timeout tests)."""
    content_type: str = "application/json"
    """The body's type."""


def error_answer(
    status: int, code: str | None, message: str, param: str | None = None
) -> HttpAnswer:
    """An OpenAI error body with ``status``."""
    kind = "invalid_request_error" if status < 500 else "server_error"
    error = {"message": message, "type": kind, "param": param, "code": code}
    return HttpAnswer(status, {"error": error})


@attrs.frozen
class _Fault:
    answer: HttpAnswer | None
    delay: float


class LocalCalls:
    """``server.calls``: incoming calls, ephemeral keys, and the HTTP API's test controls.

    Endpoints (under ``/v1`` and Azure's ``/openai/v1``): ``POST /realtime/calls`` (a
    WebRTC call from an SDP offer), ``POST /realtime/calls/{id}/accept|reject|refer|hangup``,
    ``POST /realtime/client_secrets``, ``POST /realtime/translations/client_secrets``. They
    take the server's key (``Bearer``, or the ``api-key`` header), as any OpenAI endpoint;
    ephemeral keys open WebSocket sessions and create WebRTC calls, nothing else.
    Thread-safe.
    """

    def __init__(
        self,
        api_key: str | None,
        models: Iterable[str] | None,
        on_hangup: Callable[[str], None] | None = None,
    ) -> None:
        self._api_key = api_key
        self._on_hangup = on_hangup  # ends the sessions that joined the call
        self._models = None if models is None else frozenset(models)
        self._lock = threading.Lock()
        self._calls: dict[str, CallRecord] = {}
        self._keys: dict[str, tuple[int, JsonObject]] = {}  # value -> (expires_at, session)
        self._faults: list[_Fault] = []
        self._requests: list[tuple[str, str]] = []
        self.webhook_secret = "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()
        """The secret :meth:`create_incoming` signs with unless told another."""
        self.clock: Callable[[], float] = time.time
        """The time ephemeral keys expire by (replace it to expire them in a test)."""

    # The test's side

    def create_incoming(
        self,
        *,
        sip_headers: Iterable[tuple[str, str]] = (("From", "<sip:+15551230000@example.com>"),),
        secret: str | None = None,
        call_id: str | None = None,
        sip_media_security: str | None = "srtp",
    ) -> IncomingCall:
        """Ring the server: a new call awaiting ``accept``/``reject``, and the signed
        ``realtime.call.incoming`` webhook the service would send for it."""
        call_id = call_id or random_id("rtc_")
        data: JsonObject = {
            "call_id": call_id,
            "sip_headers": [{"name": name, "value": value} for name, value in sip_headers],
        }
        if sip_media_security is not None:
            data["sip_media_security"] = sip_media_security
        event = {
            "object": "event",
            "id": random_id("evt_"),
            "type": "realtime.call.incoming",
            "created_at": int(time.time()),
            "data": data,
        }
        with self._lock:
            self._calls[call_id] = CallRecord(call_id, "incoming", None)
        body, headers = sign_webhook(event, secret or self.webhook_secret)
        return IncomingCall(call_id, body, headers)

    def get(self, call_id: str) -> CallRecord | None:
        """The call's record, or None for a call the server never had."""
        with self._lock:
            return self._calls.get(call_id)

    def fail_next(
        self,
        status: int,
        *,
        code: str | None = None,
        message: str | None = None,
        headers: Mapping[str, str] | None = None,
        count: int = 1,
    ) -> None:
        """Answer the next ``count`` HTTP requests with ``status`` and an OpenAI error body
        (``Retry-After`` and such in ``headers``) instead of serving them."""
        answer = error_answer(status, code, message or f"Test failure with HTTP {status}.")
        answer = attrs.evolve(answer, headers=dict(headers or {}))
        with self._lock:
            self._faults += [_Fault(answer, 0.0)] * count

    def delay_next(self, seconds: float, *, count: int = 1) -> None:
        """Serve the next ``count`` HTTP requests only after ``seconds``."""
        with self._lock:
            self._faults += [_Fault(None, seconds)] * count

    @property
    def requests(self) -> list[tuple[str, str]]:
        """Every HTTP request served, as (method, path), oldest first."""
        with self._lock:
            return list(self._requests)

    # Admission's side

    def key_session(self, key: str) -> JsonObject | None:
        """The session of an unexpired ephemeral key this server minted, else None."""
        found = self._minted(key)
        return None if found is None or found[0] <= self.clock() else found[1]

    def _minted(self, key: str) -> tuple[int, JsonObject] | None:
        """When a key this server minted expires, and its session; None: not one."""
        with self._lock:
            return self._keys.get(key)

    def call_session(self, call_id: str) -> JsonObject | None:
        """The session ``accept`` gave a call that may be joined now, else None."""
        with self._lock:
            call = self._calls.get(call_id)
        if call is None or call.state not in ("accepted", "referred"):
            return None
        return call.session

    # The HTTP server's side

    def handle(self, method: str, path: str, headers: Mapping[str, str], body: bytes) -> HttpAnswer:
        """Answer one request (``headers`` with lower-case names)."""
        with self._lock:
            self._requests.append((method, path))
            fault = self._faults.pop(0) if self._faults else None
        if fault is not None and fault.answer is not None:
            return fault.answer
        answer = self._serve(method, path, headers, body)
        return answer if fault is None else attrs.evolve(answer, delay=fault.delay)

    def _serve(self, method: str, path: str, headers: Mapping[str, str], body: bytes) -> HttpAnswer:
        prefix = next((p for p in _API_PREFIXES if path.startswith(p + "/realtime/")), None)
        if prefix is None or method != "POST":
            return error_answer(404, None, f"Invalid URL ({method} {path})")
        key = _presented_key(headers)
        parts = path[len(prefix) :].strip("/").split("/")
        if parts == ["realtime", "calls"]:  # an SDP offer, not JSON; ephemeral keys welcome
            return self._create(prefix, key, headers.get("content-type", ""), body)
        refusal = self._check_key(key)
        if refusal is not None:
            return refusal
        try:
            request = json.loads(body) if body.strip() else {}
        except ValueError:
            return error_answer(400, "invalid_json", "The body is not valid JSON.")
        if not isinstance(request, dict):
            return error_answer(400, "invalid_type", "The body must be a JSON object.")
        if parts == ["realtime", "client_secrets"]:
            return self._mint(request, translation=False)
        if parts == ["realtime", "translations", "client_secrets"]:
            return self._mint(request, translation=True)
        if len(parts) == 4 and parts[:2] == ["realtime", "calls"]:
            return self._control(parts[2], parts[3], request)
        return error_answer(404, None, f"Invalid URL ({method} {path})")

    def _check_key(self, key: str) -> HttpAnswer | None:
        if key and (
            self._api_key is None or hmac.compare_digest(key.encode(), self._api_key.encode())
        ):
            return None
        message = "Incorrect API key provided." if key else "You didn't provide an API key."
        return error_answer(401, "invalid_api_key", message)

    def _mint(self, request: JsonObject, *, translation: bool) -> HttpAnswer:
        seconds = _DEFAULT_KEY_SECONDS
        expires_after = request.get("expires_after")
        if expires_after is not None:
            seconds = (
                expires_after.get("seconds", seconds) if isinstance(expires_after, dict) else 0
            )
            if not isinstance(seconds, int) or not _KEY_SECONDS[0] <= seconds <= _KEY_SECONDS[1]:
                return error_answer(
                    400,
                    "invalid_value",
                    "expires_after.seconds must be an integer from 10 to 7200.",
                    "expires_after.seconds",
                )
        config = request.get("session")
        if translation and not isinstance(config, dict):
            return error_answer(
                400,
                "missing_required_parameter",
                "Missing required parameter: 'session'.",
                "session",
            )
        if config is not None and not isinstance(config, dict):
            return error_answer(400, "invalid_type", "'session' must be an object.", "session")
        # Only the model's type: translation models are not in the server's list.
        refusal = None if config is None else self._model_refusal(config, listed=False)
        if refusal is not None:
            return refusal
        expires_at = int(self.clock()) + seconds
        session = self._session(config or {}, kind="translation" if translation else None)
        value = "ek_" + secrets.token_hex(16)
        register_secret(value)
        with self._lock:
            self._keys[value] = (expires_at, session)
        return HttpAnswer(200, {"value": value, "expires_at": expires_at, "session": session})

    def _create(self, prefix: str, key: str, content_type: str, body: bytes) -> HttpAnswer:
        """A WebRTC call, accepted at once, starting from the key's session (an ephemeral
        key's configuration) with the request's ``session`` laid over it."""
        minted = self._minted(key)
        if minted is None:
            refusal = self._check_key(key)
            if refusal is not None:
                return refusal
        elif minted[0] <= self.clock():  # refused even when the server takes any key
            return error_answer(401, "invalid_api_key", "The ephemeral key has expired.")
        try:
            offer = read_offer(content_type, body)
        except OfferError as error:
            return error_answer(400, error.code, error.message, error.param)
        config = offer.session
        if config is not None and config.get("type") != "realtime":
            message = "'session.type' must be 'realtime'."
            return error_answer(400, "invalid_value", message, "session.type")
        refusal = None if config is None else self._model_refusal(config)
        if refusal is not None:
            return refusal
        start = {"type": "realtime"} if minted is None else copy.deepcopy(minted[1])
        call_id = random_id("rtc_")
        record = CallRecord(call_id, "accepted", merge_session(start, config or {}))
        with self._lock:
            self._calls[call_id] = record
        location = f"{prefix}/realtime/calls/{call_id}"
        sdp = answer_sdp(offer.sdp, call_id)
        return HttpAnswer(201, sdp, {"Location": location}, content_type="application/sdp")

    def _model_refusal(self, config: JsonObject, *, listed: bool = True) -> HttpAnswer | None:
        """The refusal of a session configuration whose model is not a string, or (when
        ``listed``) one this server lacks."""
        model = config.get("model")
        if model is not None and not isinstance(model, str):  # a list is not even hashable
            return error_answer(400, "invalid_type", "'model' must be a string.", "model")
        if listed and model is not None and self._models is not None and model not in self._models:
            message = f"The model '{model}' does not exist or you do not have access to it."
            return error_answer(400, "model_not_found", message, "model")
        return None

    def _session(self, config: JsonObject, *, kind: str | None = None) -> JsonObject:
        """The effective session of a configuration: the defaults, overridden by it."""
        model = config.get("model") or DEFAULT_MODELS["ga"]
        session = _effective(ga_session(model, int(time.time()) + SESSION_SECONDS), config)
        if kind is not None:
            session["type"] = kind
        return session

    def _control(self, call_id: str, action: str, request: JsonObject) -> HttpAnswer:
        # Checked and changed under one hold of the lock: of two requests racing on one
        # call (accept and reject), exactly one finds it incoming.
        with self._lock:
            call = self._calls.get(call_id)
            if call is None or action not in ("accept", "reject", "refer", "hangup"):
                return error_answer(404, "call_not_found", f"No call found with id '{call_id}'.")
            outcome = self._next_state(call, action, request)
            if isinstance(outcome, HttpAnswer):
                return outcome
            self._calls[call_id] = outcome
        if outcome.state == "ended" and self._on_hangup is not None:
            self._on_hangup(call_id)
        return HttpAnswer(200)

    def _next_state(
        self, call: CallRecord, action: str, request: JsonObject
    ) -> CallRecord | HttpAnswer:
        """The call's record after ``action``, or the refusal."""
        wanted = {"accept": ("incoming",), "reject": ("incoming",)}.get(
            action, ("accepted", "referred")
        )
        if call.state not in wanted:
            return error_answer(
                400, "invalid_call_state", f"The call is {call.state}; cannot {action} it."
            )
        if action == "accept":
            if request.get("type") != "realtime":
                return error_answer(
                    400, "invalid_value", "'type' must be 'realtime' to accept a call.", "type"
                )
            refusal = self._model_refusal(request)
            if refusal is not None:
                return refusal
            return attrs.evolve(call, state="accepted", session=copy.deepcopy(request))
        if action == "reject":
            status = request.get("status_code", 603)
            if not isinstance(status, int) or not 400 <= status <= 699:
                return error_answer(
                    400, "invalid_value", "'status_code' must be a SIP error status."
                )
            return attrs.evolve(call, state="rejected", status_code=status)
        if action == "refer":
            target = request.get("target_uri")
            if not isinstance(target, str) or not target:
                return error_answer(
                    400, "missing_required_parameter", "Missing 'target_uri'.", "target_uri"
                )
            return attrs.evolve(call, state="referred", target_uri=target)
        return attrs.evolve(call, state="ended")


def _presented_key(headers: Mapping[str, str]) -> str:
    """The key a request presents: ``Authorization: Bearer`` or Azure's ``api-key``."""
    scheme, _, token = headers.get("authorization", "").partition(" ")
    key = token.strip() if scheme.lower() == "bearer" else headers.get("api-key", "")
    register_secret(key)
    return key


def merge_session(session: JsonObject, config: Mapping[str, Any]) -> JsonObject:
    """``session`` with ``config`` laid over it (GA ``audio`` merged per direction)."""
    for name, value in copy.deepcopy(dict(config)).items():
        current = session.get(name)
        if name == "audio" and isinstance(value, dict) and isinstance(current, dict):
            for direction, settings in value.items():
                old = current.get(direction)
                if isinstance(old, dict) and isinstance(settings, dict):
                    current[direction] = {**old, **settings}
                else:
                    current[direction] = settings
        else:
            session[name] = value
    return session


def apply_preset(simulator: SessionSimulator, config: Mapping[str, Any]) -> None:
    """Start ``simulator``'s session from ``config`` (a joined call's ``accept``, or an
    ephemeral key's session) instead of the defaults; before ``open()``. GA only: the
    configurations are GA-shaped, and a beta connection keeps its defaults."""
    if simulator.spec.name != "ga":
        return
    simulator.session = _effective(simulator.session, config)
    simulator.configure_turn_detection()


def _effective(session: JsonObject, config: Mapping[str, Any]) -> JsonObject:
    """``session`` of the configuration's type (a transcription one when it asks for it),
    with the configuration laid over it."""
    if config.get("type") == "transcription" and session.get("type") != "transcription":
        session = ga_transcription_session(session)
    return merge_session(session, config)
