"""The session core and the mapping of connection ends to errors: pure, no sockets."""

from __future__ import annotations

import json
from typing import Any

import pytest

from realtime_sync import (
    AuthenticationError,
    BadRequestError,
    ClosedEvent,
    ConnectionClosed,
    InternalServerError,
    PermissionDeniedError,
    RateLimitError,
    RealtimeError,
    RedirectError,
    SessionState,
    TransportEnded,
    TransportError,
    decode_event,
)
from realtime_sync._failures import FATAL_ERROR_CODES
from realtime_sync._session import SessionCore

URL = "wss://api.example/v1/realtime?model=m"


def event(event_type: str, **fields: Any) -> Any:
    return decode_event(json.dumps({"type": event_type, **fields}))


def error_event(code: str | None, error_type: str = "invalid_request_error") -> Any:
    return event("error", error={"type": error_type, "code": code, "message": f"no: {code}"})


def started() -> SessionCore:
    core = SessionCore(URL)
    core.receive(event("session.created", session={"id": "sess_1"}))
    return core


def ended(kind: Any = "closed", **fields: Any) -> TransportEnded:
    return TransportEnded(
        kind, opened=kind not in ("refused", "redirected", "unreachable"), **fields
    )


def closing_of(core: SessionCore, end: TransportEnded) -> ClosedEvent:
    closed = core.receive(end)
    assert isinstance(closed, ClosedEvent)
    return closed


def test_states_follow_the_connection() -> None:
    core = SessionCore(URL)
    assert core.state is SessionState.CONNECTING and core.session is None
    core.receive(event("session.created", session={"id": "sess_1"}))
    assert core.state is SessionState.OPEN and core.session is not None
    core.receive(event("session.updated", session={"id": "sess_1", "instructions": "x"}))
    assert core.session is not None and core.session.instructions == "x"
    core.request_close()
    assert core.state is SessionState.CLOSING
    closed = closing_of(core, ended(code=1000))
    assert closed.requested and closed.error is None and not closed.retryable
    assert core.state is SessionState.CLOSED


def test_nothing_comes_after_the_closing_event() -> None:
    core = started()
    closing_of(core, ended("dropped"))
    assert core.receive(event("response.done", response={})) is None
    assert core.receive(ended("dropped")) is None


def test_a_late_session_created_does_not_undo_a_close_request() -> None:
    core = SessionCore(URL)
    core.request_close()
    core.receive(event("session.created", session={"id": "sess_1"}))
    assert core.state is SessionState.CLOSING
    assert closing_of(core, ended(code=1000)).requested


@pytest.mark.parametrize(
    ("status", "cls", "retryable"),
    [
        (400, BadRequestError, False),
        (401, AuthenticationError, False),
        (403, PermissionDeniedError, False),
        (404, BadRequestError, False),
        (429, RateLimitError, True),
        (500, InternalServerError, True),
        (503, InternalServerError, True),
    ],
)
def test_http_refusals(status: int, cls: type[RealtimeError], retryable: bool) -> None:
    body = json.dumps({"error": {"message": "nope", "code": "c", "type": "t"}}).encode()
    closed = closing_of(
        SessionCore(URL),
        ended("refused", status=status, headers={"retry-after": "3"}, body=body),
    )
    assert type(closed.error) is cls
    assert closed.error.status_code == status  # type: ignore[union-attr]
    assert closed.error.retry_after == 3.0  # type: ignore[union-attr]
    assert closed.retryable is retryable


def test_a_redirect_is_never_retried() -> None:
    closed = closing_of(
        SessionCore(URL), ended("redirected", status=307, location="ws://elsewhere.example/")
    )
    assert isinstance(closed.error, RedirectError)
    assert closed.error.location == "ws://elsewhere.example/"
    assert not closed.retryable


@pytest.mark.parametrize(
    ("code", "close_code", "cls", "retryable"),
    [
        ("invalid_api_key", 3000, AuthenticationError, False),
        ("beta_api_shape_disabled", 4000, BadRequestError, False),
        ("insufficient_quota", 4000, RateLimitError, False),
        ("rate_limit_exceeded", 4000, RateLimitError, True),  # 429: later may work
        ("server_error", 1011, InternalServerError, True),
        ("server_error", 1000, InternalServerError, True),  # a 5xx whatever the close
    ],
)
def test_error_then_close_before_the_session(
    code: str, close_code: int, cls: type[RealtimeError], retryable: bool
) -> None:
    core = SessionCore(URL)
    core.receive(error_event(code))
    closed = closing_of(core, ended(code=close_code, reason=f"x.{code}"))
    assert type(closed.error) is cls
    assert closed.error.code == code  # type: ignore[union-attr]
    assert closed.retryable is retryable


@pytest.mark.parametrize(
    ("end", "retryable"),
    [
        (ended(code=1001), True),
        (ended(code=1011), True),
        (ended(code=1012), True),
        (ended(code=1013), True),
        (ended(code=1000), False),
        (ended(code=1008), False),
        (ended("dropped", detail="reset by peer"), True),
        (ended("timeout"), True),
    ],
)
def test_ends_of_an_open_session(end: TransportEnded, retryable: bool) -> None:
    closed = closing_of(started(), end)
    assert isinstance(closed.error, ConnectionClosed)
    assert closed.error.code == end.code
    assert closed.retryable is retryable


def test_session_expiry_carries_the_error_and_is_retryable() -> None:
    core = started()
    core.receive(error_event("session_expired"))
    closed = closing_of(core, ended(code=1001, reason="invalid_request_error.session_expired"))
    assert isinstance(closed.error, ConnectionClosed)
    assert "expired" in str(closed.error)
    assert closed.error.error.error.code == "session_expired"
    assert closed.retryable


@pytest.mark.parametrize(
    "end", [ended(code=1001), ended("dropped", detail="reset")], ids=["closed", "dropped"]
)
def test_an_expiry_stays_the_cause_whatever_came_after_it(end: TransportEnded) -> None:
    # Events still in flight after session_expired (or a close frame lost to a reset) made
    # the end look like a drop: a reconnect instead of the session's rollover.
    core = started()
    core.receive(error_event("session_expired"))
    core.receive(event("input_audio_buffer.speech_started", audio_start_ms=0, item_id="i"))
    closed = closing_of(core, end)
    assert isinstance(closed.error, ConnectionClosed)
    assert closed.error.error is not None
    assert closed.error.error.error.code == "session_expired"
    assert closed.retryable


@pytest.mark.parametrize("code", sorted(FATAL_ERROR_CODES))
@pytest.mark.parametrize("close_code", [1011, 1001, None])
def test_a_fatal_code_at_the_end_of_a_session_is_not_retried(
    code: str, close_code: int | None
) -> None:
    # Close codes that are retried on their own: the fatal code alone decides.
    core = started()
    core.receive(error_event(code))
    end = ended(code=close_code) if close_code else ended("dropped", detail="cut")
    assert not closing_of(core, end).retryable


def test_a_server_error_at_the_end_of_a_session_is_retried_whatever_the_close() -> None:
    core = started()
    core.receive(error_event(None, "server_error"))  # as api.openai.com sends it
    assert closing_of(core, ended(code=1000)).retryable


def test_an_error_long_before_the_end_is_not_its_cause() -> None:
    core = started()
    core.receive(error_event("invalid_api_key"))
    core.receive(event("response.done", response={}))
    closed = closing_of(core, ended(code=1011))
    assert closed.error.error is None  # type: ignore[union-attr]
    assert closed.retryable


def test_unreachable_is_a_transport_error_with_its_cause() -> None:
    cause = ConnectionRefusedError(111, "refused")
    closed = closing_of(SessionCore(URL), ended("unreachable", detail="refused", cause=cause))
    assert isinstance(closed.error, TransportError)
    assert closed.error.__cause__ is cause
    assert closed.retryable


def test_a_close_before_the_session_without_an_error() -> None:
    closed = closing_of(SessionCore(URL), ended(code=1000))
    assert isinstance(closed.error, ConnectionClosed)
    assert "before the session started" in str(closed.error)
