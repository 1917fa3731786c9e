"""Handshake admission on its own: a pure function of the request and the server's settings."""

from __future__ import annotations

import typing

import pytest

from realtime_sync._endpoints import DEFAULT_MODELS
from realtime_sync.testing import KNOWN_MODELS
from realtime_sync.testing._admission import (
    Accepted,
    Admission,
    AdmissionSettings,
    HttpRefusal,
    OpeningFailure,
    admit,
    lower_headers,
    mask_headers,
    mask_query,
    mask_subprotocols,
    split_subprotocols,
    split_target,
)

KEY = "rs-admission-0123456789"
BEARER = {"authorization": f"Bearer {KEY}"}
SETTINGS = AdmissionSettings(api_key=KEY)


def admit_url(
    url: str,
    headers: dict[str, str] | None = None,
    subprotocols: list[str] | None = None,
    settings: AdmissionSettings = SETTINGS,
) -> Admission:
    path, query = split_target(url)
    return admit(path, query, BEARER if headers is None else headers, subprotocols or [], settings)


def failure_of(admission: Admission) -> OpeningFailure:
    assert isinstance(admission.outcome, OpeningFailure), admission.outcome
    return admission.outcome


def openai_model_literals() -> set[str]:
    """The model names the official package's GA and beta realtime sessions list."""
    from openai.types.beta.realtime import session_create_params
    from openai.types.realtime import realtime_session_create_request_param as ga

    names: set[str] = set()
    annotations = [
        typing.get_type_hints(ga.RealtimeSessionCreateRequestParam)["model"],
        typing.get_type_hints(session_create_params.SessionCreateParams)["model"],
    ]
    for annotation in annotations:
        for member in typing.get_args(annotation):
            names.update(arg for arg in typing.get_args(member) if isinstance(arg, str))
    assert "gpt-realtime" in names and "gpt-4o-realtime-preview-2024-12-17" in names
    return names


def test_known_models_are_the_official_literals_and_the_client_defaults() -> None:
    official = openai_model_literals()
    assert official <= KNOWN_MODELS  # a newer openai package names models we do not know yet
    assert set(DEFAULT_MODELS.values()) <= KNOWN_MODELS
    assert KNOWN_MODELS - official <= set(DEFAULT_MODELS.values())  # nothing invented


@pytest.mark.parametrize("model", sorted(KNOWN_MODELS))
def test_every_known_model_is_accepted(model: str) -> None:
    admission = admit_url(f"wss://api.openai.com/v1/realtime?model={model}")
    assert admission.outcome == Accepted()
    assert admission.model == model


@pytest.mark.parametrize("model", ["gpt-realtime-nonexistent", "gpt-4o", "GPT-REALTIME", " "])
def test_an_unknown_model_is_refused_with_4000(model: str) -> None:
    failure = failure_of(admit_url(f"/v1/realtime?model={model}"))
    assert failure.code == 4000
    assert failure.error["type"] == "invalid_request_error"
    assert failure.error["code"] == "model_not_found"
    assert model in failure.error["message"]
    assert failure.error["event_id"] is None
    assert failure.reason == "invalid_request_error.model_not_found"


def test_models_none_accepts_any_name_and_a_custom_set_only_its_own() -> None:
    anything = AdmissionSettings(api_key=KEY, models=None)
    assert admit_url("/v1/realtime?model=my-own", settings=anything).outcome == Accepted()
    custom = AdmissionSettings(api_key=KEY, models=frozenset({"my-own"}))
    assert admit_url("/v1/realtime?model=my-own", settings=custom).outcome == Accepted()
    assert failure_of(admit_url("/v1/realtime?model=gpt-realtime", settings=custom)).code == 4000


@pytest.mark.parametrize(
    "url",
    [
        "/openai/v1/realtime?model=my-deployment",
        "/openai/realtime?api-version=2024-10-01-preview&deployment=anything-at-all",
    ],
)
def test_azure_deployments_are_named_by_users(url: str) -> None:
    admission = admit_url(url, headers={"api-key": KEY})
    assert admission.outcome == Accepted()
    assert admission.auth == "api-key"
    assert admission.model in {"my-deployment", "anything-at-all"}


def test_the_key_is_checked_before_the_model() -> None:
    admission = admit_url("/v1/realtime?model=nope", headers={"authorization": "Bearer wrong"})
    assert failure_of(admission).code == 3000
    assert failure_of(admission).error["code"] == "invalid_api_key"
    assert failure_of(admit_url("/v1/realtime")).error["code"] == "missing_model"


def test_beta_shutdown_applies_to_known_models_on_openai_only() -> None:
    settings = AdmissionSettings(api_key=KEY, emulate_beta_shutdown=True)
    beta = {**BEARER, "openai-beta": "realtime=v1"}
    shut = admit_url("/v1/realtime?model=gpt-realtime", beta, settings=settings)
    assert failure_of(shut).error["code"] == "beta_api_shape_disabled"
    assert shut.dialect == "beta"
    legacy = admit_url(
        "/openai/realtime?api-version=1&deployment=d", {"api-key": KEY}, settings=settings
    )
    assert (legacy.outcome, legacy.dialect) == (Accepted(), "beta")


def test_unknown_path_is_an_http_404() -> None:
    admission = admit_url("/v1/chat?model=gpt-realtime")
    assert admission.route is None
    assert isinstance(admission.outcome, HttpRefusal)
    assert admission.outcome.status == 404


def test_subprotocol_auth_answers_realtime_and_collects_every_key() -> None:
    offered = ["realtime", f"openai-insecure-api-key.{KEY}", "openai-beta.realtime-v1"]
    admission = admit_url(
        "/v1/realtime?model=gpt-realtime&api-key=other-key-000",
        headers={"authorization": "Bearer first-key-000"},
        subprotocols=offered,
    )
    assert admission.outcome == Accepted()
    assert (admission.auth, admission.subprotocol, admission.dialect) == (
        "subprotocol",
        "realtime",
        "beta",
    )
    assert admission.keys == ("first-key-000", KEY, "other-key-000")
    assert KEY not in repr(admission)


def test_request_helpers_and_masks() -> None:
    assert split_target("ws://h:1/v1/realtime?model=m&model=n&api-key=") == (
        "/v1/realtime",
        {"model": "n", "api-key": ""},
    )
    headers = lower_headers([("X-A", "1"), ("x-a", "2"), ("Authorization", f"Bearer {KEY}")])
    assert headers == {"x-a": "1, 2", "authorization": f"Bearer {KEY}"}
    offered = split_subprotocols(["realtime, openai-insecure-api-key.unseen-key-1", ""])
    assert offered == ["realtime", "openai-insecure-api-key.unseen-key-1"]
    shown = repr(
        (
            mask_headers({**headers, "api-key": "unseen-key-2"}),
            mask_query({"api-key": "unseen-key-3", "model": "m"}),
            mask_subprotocols(offered),
        )
    )
    assert "unseen-key" not in shown and KEY not in shown
    assert "'model': 'm'" in shown and "'x-a': '1, 2'" in shown
