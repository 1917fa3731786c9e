"""Endpoint and credential handling: ``openai_target``, ``azure_target``, ``Target.handshake``.

Everything here is pure: no sockets, no environment variables. The redaction tests at the end
check that a key, once the library has seen it, is masked in URLs, reprs and log records.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from realtime_sync import ConfigurationError
from realtime_sync._endpoints import (
    DEFAULT_MODELS,
    Handshake,
    Target,
    azure_target,
    openai_target,
)
from realtime_sync._secrets import install_log_filter, redact, redact_url

KEY = "rs-test-endpoints-0123456789abcdef"
AZURE_KEY = "azure-key-0123456789abcdef0123"
ENDPOINT = "https://res.openai.azure.com"
GA_DEFAULT_URL = "wss://api.openai.com/v1/realtime?model=gpt-realtime-2.1"
BETA_MODEL = "gpt-4o-realtime-preview-2024-12-17"
BETA_HEADER = ("OpenAI-Beta", "realtime=v1")
BETA_SUBPROTOCOL = "openai-beta.realtime-v1"


def fresh_key(prefix: str = "rs-test-") -> str:
    """A key no other test has registered, so masking it proves this test's code did."""
    return f"{prefix}{uuid.uuid4().hex}"


def make_openai(**overrides: Any) -> Target:
    settings: dict[str, Any] = {
        "api_key": KEY,
        "model": None,
        "url": None,
        "base_url": None,
        "auth": "header",
        "dialect": "ga",
        "headers": {},
    }
    settings.update(overrides)
    return openai_target(**settings)


def make_azure(**overrides: Any) -> Target:
    settings: dict[str, Any] = {
        "endpoint": ENDPOINT,
        "deployment": "gpt-realtime",
        "api_key": AZURE_KEY,
        "token_provider": None,
        "api_version": None,
        "dialect": None,
        "headers": {},
    }
    settings.update(overrides)
    return azure_target(**settings)


def query_of(url: str) -> dict[str, list[str]]:
    return parse_qs(urlsplit(url).query, keep_blank_values=True)


def lower_names(headers: Mapping[str, str]) -> set[str]:
    return {name.lower() for name in headers}


class CountingProvider:
    """An Entra ID token provider that hands out a new token on every call."""

    def __init__(self, tokens: Callable[[int], str] | None = None) -> None:
        self.calls = 0
        self._tokens = tokens or (lambda n: f"entra-token-{n}-{uuid.uuid4().hex}")
        self.issued: list[str] = []

    def __call__(self) -> str:
        self.calls += 1
        token = self._tokens(self.calls)
        self.issued.append(token)
        return token


# --- OpenAI URLs ----------------------------------------------------------------------------


def test_default_models() -> None:
    assert DEFAULT_MODELS["ga"] == "gpt-realtime-2.1"
    assert DEFAULT_MODELS["beta"] == BETA_MODEL


def test_openai_default_ga_url() -> None:
    target = make_openai()
    assert target.url == GA_DEFAULT_URL
    assert target.dialect == "ga"
    assert target.handshake().url == GA_DEFAULT_URL


def test_openai_default_beta_url_uses_beta_model() -> None:
    target = make_openai(dialect="beta")
    assert target.url == f"wss://api.openai.com/v1/realtime?model={BETA_MODEL}"
    assert target.dialect == "beta"


def test_openai_explicit_model() -> None:
    target = make_openai(model="gpt-realtime-mini")
    assert target.url == "wss://api.openai.com/v1/realtime?model=gpt-realtime-mini"


@pytest.mark.parametrize(
    ("base_url", "expected"),
    [
        ("https://proxy.example/v1", "wss://proxy.example/v1/realtime?model=gpt-realtime-2.1"),
        ("https://proxy.example/v1/", "wss://proxy.example/v1/realtime?model=gpt-realtime-2.1"),
        ("http://localhost:8080/v1", "ws://localhost:8080/v1/realtime?model=gpt-realtime-2.1"),
        ("wss://relay.example/api", "wss://relay.example/api/realtime?model=gpt-realtime-2.1"),
        ("ws://127.0.0.1:9000", "ws://127.0.0.1:9000/realtime?model=gpt-realtime-2.1"),
        ("HTTPS://Proxy.Example/v1", "wss://Proxy.Example/v1/realtime?model=gpt-realtime-2.1"),
    ],
)
def test_openai_base_url(base_url: str, expected: str) -> None:
    assert make_openai(base_url=base_url).url == expected


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("wss://relay.example/realtime", "wss://relay.example/realtime?model=gpt-realtime-2.1"),
        ("https://relay.example/realtime", "wss://relay.example/realtime?model=gpt-realtime-2.1"),
        ("http://localhost:1234/rt", "ws://localhost:1234/rt?model=gpt-realtime-2.1"),
        ("ws://localhost:1234/rt", "ws://localhost:1234/rt?model=gpt-realtime-2.1"),
        # A model already in the URL is kept as given.
        ("wss://relay.example/realtime?model=custom", "wss://relay.example/realtime?model=custom"),
        # Other query parameters are kept and the model is appended.
        (
            "wss://relay.example/realtime?tenant=a",
            "wss://relay.example/realtime?tenant=a&model=gpt-realtime-2.1",
        ),
    ],
)
def test_openai_full_url(url: str, expected: str) -> None:
    assert make_openai(url=url).url == expected


def test_openai_full_url_wins_over_base_url() -> None:
    target = make_openai(url="wss://relay.example/rt", base_url="https://ignored.example/v1")
    assert target.url == "wss://relay.example/rt?model=gpt-realtime-2.1"


def test_openai_url_model_is_not_duplicated_by_explicit_model() -> None:
    target = make_openai(url="wss://relay.example/rt?model=from-url", model="explicit")
    assert query_of(target.url)["model"] == ["from-url"]


@pytest.mark.parametrize(
    "url",
    [
        "ftp://relay.example/realtime",
        "file:///etc/passwd",
        "relay.example/realtime",
        "wss:///no-host",
        "",
    ],
)
def test_openai_bad_url_raises_configuration_error(url: str) -> None:
    with pytest.raises(ConfigurationError, match="not a usable endpoint URL"):
        make_openai(url=url)


def test_openai_bad_base_url_scheme_raises_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="not a usable endpoint URL"):
        make_openai(base_url="ftp://proxy.example/v1")


def test_configuration_error_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="not a usable endpoint URL"):
        make_openai(url="gopher://x/y")


# --- OpenAI authentication ------------------------------------------------------------------


@pytest.mark.parametrize("dialect", ["ga", "beta"])
def test_header_auth(dialect: str) -> None:
    handshake = make_openai(auth="header", dialect=dialect).handshake()
    assert handshake.headers["Authorization"] == f"Bearer {KEY}"
    assert handshake.subprotocols == ()
    assert "api-key" not in query_of(handshake.url)
    assert KEY not in handshake.url


def test_subprotocol_auth_ga() -> None:
    handshake = make_openai(auth="subprotocol").handshake()
    assert handshake.subprotocols == ("realtime", f"openai-insecure-api-key.{KEY}")
    assert "authorization" not in lower_names(handshake.headers)
    assert "openai-beta" not in lower_names(handshake.headers)
    assert KEY not in handshake.url


def test_subprotocol_auth_beta_uses_beta_subprotocol_not_header() -> None:
    handshake = make_openai(auth="subprotocol", dialect="beta").handshake()
    assert handshake.subprotocols == (
        "realtime",
        f"openai-insecure-api-key.{KEY}",
        BETA_SUBPROTOCOL,
    )
    assert "openai-beta" not in lower_names(handshake.headers)
    assert "authorization" not in lower_names(handshake.headers)


@pytest.mark.parametrize("dialect", ["ga", "beta"])
def test_query_auth_key_in_url_but_masked_in_display_url(dialect: str) -> None:
    target = make_openai(auth="query", dialect=dialect)
    handshake = target.handshake()
    query = query_of(handshake.url)
    assert query["api-key"] == [KEY]
    assert query["model"] == [DEFAULT_MODELS[dialect]]  # type: ignore[index]
    assert KEY not in handshake.display_url
    assert query_of(handshake.display_url)["api-key"] == ["***"]
    assert "authorization" not in lower_names(handshake.headers)
    assert handshake.subprotocols == ()
    # The target's own URL never carries the key: it is added per handshake.
    assert KEY not in target.url
    assert KEY not in target.display_url


@pytest.mark.parametrize("auth", ["header", "query"])
def test_beta_adds_openai_beta_header(auth: str) -> None:
    handshake = make_openai(auth=auth, dialect="beta").handshake()
    assert handshake.headers[BETA_HEADER[0]] == BETA_HEADER[1]
    assert BETA_SUBPROTOCOL not in handshake.subprotocols


@pytest.mark.parametrize("auth", ["header", "subprotocol", "query"])
def test_ga_never_announces_beta(auth: str) -> None:
    handshake = make_openai(auth=auth, dialect="ga").handshake()
    assert "openai-beta" not in lower_names(handshake.headers)
    assert BETA_SUBPROTOCOL not in handshake.subprotocols
    assert not make_openai(auth=auth, dialect="ga").send_beta_marker


def test_extra_headers_are_sent_and_copied() -> None:
    extra = {"OpenAI-Organization": "org-1", "X-Custom": "yes"}
    target = make_openai(headers=extra)
    extra["X-Custom"] = "changed later"
    handshake = target.handshake()
    assert handshake.headers["OpenAI-Organization"] == "org-1"
    assert handshake.headers["X-Custom"] == "yes"
    assert handshake.headers["Authorization"] == f"Bearer {KEY}"


def test_each_handshake_is_fresh() -> None:
    target = make_openai(dialect="beta")
    first = target.handshake()
    second = target.handshake()
    assert first == second
    assert first.headers is not second.headers


@pytest.mark.parametrize("api_key", [None, ""])
def test_openai_without_key_raises(api_key: str | None) -> None:
    with pytest.raises(ConfigurationError, match="no API key"):
        make_openai(api_key=api_key)


@pytest.mark.parametrize("auth", ["bearer", "Header", "", "azure"])
def test_openai_bad_auth_lists_choices(auth: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        make_openai(auth=auth)
    message = str(info.value)
    assert "auth" in message
    for choice in ("header", "subprotocol", "query"):
        assert choice in message
    assert repr(auth) in message


@pytest.mark.parametrize("dialect", ["v1", "GA", "", "realtime"])
def test_openai_bad_protocol_lists_choices(dialect: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        make_openai(dialect=dialect)
    message = str(info.value)
    assert "protocol" in message
    assert "ga" in message
    assert "beta" in message
    assert repr(dialect) in message


# --- Azure ----------------------------------------------------------------------------------


@pytest.mark.parametrize("endpoint", [ENDPOINT, ENDPOINT + "/", "wss://res.openai.azure.com"])
def test_azure_ga_path_with_api_key(endpoint: str) -> None:
    target = make_azure(endpoint=endpoint, deployment="my-deployment")
    assert target.dialect == "ga"
    assert target.url == "wss://res.openai.azure.com/openai/v1/realtime?model=my-deployment"
    handshake = target.handshake()
    assert handshake.url == target.url
    assert handshake.headers["api-key"] == AZURE_KEY
    assert "authorization" not in lower_names(handshake.headers)
    assert "openai-beta" not in lower_names(handshake.headers)
    assert handshake.subprotocols == ()


def test_azure_legacy_api_version_path_speaks_beta_without_header() -> None:
    target = make_azure(api_version="2024-10-01-preview", deployment="gpt-4o-realtime")
    assert target.dialect == "beta"
    parts = urlsplit(target.url)
    assert (parts.scheme, parts.netloc, parts.path) == (
        "wss",
        "res.openai.azure.com",
        "/openai/realtime",
    )
    assert query_of(target.url) == {
        "api-version": ["2024-10-01-preview"],
        "deployment": ["gpt-4o-realtime"],
    }
    assert target.url == (
        "wss://res.openai.azure.com/openai/realtime"
        "?api-version=2024-10-01-preview&deployment=gpt-4o-realtime"
    )
    handshake = target.handshake()
    assert handshake.headers["api-key"] == AZURE_KEY
    assert "openai-beta" not in lower_names(handshake.headers)
    assert BETA_SUBPROTOCOL not in handshake.subprotocols


def test_azure_ga_path_with_explicit_beta_dialect_announces_it() -> None:
    handshake = make_azure(dialect="beta").handshake()
    assert handshake.headers[BETA_HEADER[0]] == BETA_HEADER[1]


def test_azure_token_provider_called_on_every_handshake() -> None:
    provider = CountingProvider()
    target = make_azure(api_key=None, token_provider=provider)
    assert provider.calls == 0  # making the target does not fetch a token
    first = target.handshake()
    assert provider.calls == 1
    second = target.handshake()
    third = target.handshake()
    assert provider.calls == 3
    for handshake, token in zip((first, second, third), provider.issued, strict=True):
        assert handshake.headers["Authorization"] == f"Bearer {token}"
        assert "api-key" not in lower_names(handshake.headers)
    assert len(set(provider.issued)) == 3


def test_azure_token_provider_with_legacy_path() -> None:
    provider = CountingProvider()
    target = make_azure(api_key=None, token_provider=provider, api_version="2024-10-01-preview")
    handshake = target.handshake()
    assert handshake.headers["Authorization"] == f"Bearer {provider.issued[0]}"
    assert "api-key" not in lower_names(handshake.headers)
    assert "openai-beta" not in lower_names(handshake.headers)


def test_azure_key_and_provider_together_raise() -> None:
    with pytest.raises(ConfigurationError, match="not both"):
        make_azure(api_key=AZURE_KEY, token_provider=CountingProvider())


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        ({"endpoint": None}, "no Azure endpoint"),
        ({"endpoint": ""}, "no Azure endpoint"),
        ({"deployment": None}, "no Azure deployment"),
        ({"deployment": ""}, "no Azure deployment"),
        ({"api_key": None}, "no Azure credential"),
        ({"api_key": ""}, "no Azure credential"),
        ({"endpoint": "ftp://res.openai.azure.com"}, "not a usable endpoint URL"),
        ({"dialect": "v1"}, "protocol must be one of ga, beta"),
    ],
)
def test_azure_missing_or_bad_settings_raise(overrides: dict[str, Any], match: str) -> None:
    with pytest.raises(ConfigurationError, match=match):
        make_azure(**overrides)


@pytest.mark.parametrize("token", ["", None])
def test_azure_provider_returning_no_token_raises(token: str | None) -> None:
    target = make_azure(api_key=None, token_provider=lambda: token)
    with pytest.raises(ConfigurationError, match="token provider returned no token"):
        target.handshake()


# --- redaction ------------------------------------------------------------------------------


def test_key_is_masked_by_redact_once_used() -> None:
    key = fresh_key()
    assert redact(f"key is {key}") == f"key is {key}"  # unknown until the library sees it
    make_openai(api_key=key)
    assert redact(f"key is {key}!") == "key is ***!"
    assert key not in redact(f"Authorization: Bearer {key}")


def test_azure_key_and_tokens_are_masked_once_used() -> None:
    key = fresh_key("azure-")
    make_azure(api_key=key)
    assert redact(key) == "***"
    provider = CountingProvider()
    make_azure(api_key=None, token_provider=provider).handshake()
    assert redact(f"Bearer {provider.issued[0]}") == "Bearer ***"


@pytest.mark.parametrize("name", ["api-key", "api_key", "key", "token", "access_token"])
def test_redact_url_masks_credential_query_parameters(name: str) -> None:
    secret = "not-registered-anywhere"
    url = f"wss://relay.example/realtime?model=gpt-realtime&{name}={secret}"
    shown = redact_url(url)
    assert secret not in shown
    assert query_of(shown) == {"model": ["gpt-realtime"], name: ["***"]}


def test_redact_url_keeps_urls_without_credentials() -> None:
    assert redact_url(GA_DEFAULT_URL) == GA_DEFAULT_URL
    assert redact_url("wss://relay.example/realtime") == "wss://relay.example/realtime"


@pytest.mark.parametrize("auth", ["header", "subprotocol", "query"])
@pytest.mark.parametrize("dialect", ["ga", "beta"])
def test_reprs_do_not_contain_the_key(auth: str, dialect: str) -> None:
    target = make_openai(auth=auth, dialect=dialect)
    handshake = target.handshake()
    for text in (repr(target), str(target), repr(handshake), str(handshake)):
        assert KEY not in text
    assert KEY not in handshake.display_url
    assert KEY not in target.display_url


def test_azure_reprs_do_not_contain_credentials() -> None:
    provider = CountingProvider()
    for target in (make_azure(), make_azure(api_key=None, token_provider=provider)):
        handshake = target.handshake()
        for text in (repr(target), repr(handshake), handshake.display_url):
            assert AZURE_KEY not in text
            for token in provider.issued:
                assert token not in text


def test_handshake_repr_shows_only_display_url() -> None:
    handshake = make_openai(auth="query").handshake()
    assert isinstance(handshake, Handshake)
    assert repr(handshake) == f"Handshake(display_url={handshake.display_url!r})"


@pytest.fixture
def websocket_log(caplog: pytest.LogCaptureFixture) -> logging.Logger:
    """websocket-client's logger, with the library's redacting filter and DEBUG captured."""
    install_log_filter()
    caplog.set_level(logging.DEBUG, logger="websocket")
    return logging.getLogger("websocket")


def test_log_filter_masks_key_in_formatted_message(
    websocket_log: logging.Logger, caplog: pytest.LogCaptureFixture
) -> None:
    key = fresh_key()
    make_openai(api_key=key, auth="subprotocol")
    websocket_log.debug("request header: %s", f"Authorization: Bearer {key}")
    websocket_log.warning("subprotocols %r", ("realtime", f"openai-insecure-api-key.{key}"))
    websocket_log.info(f"literal {key} in the message")
    assert key not in caplog.text
    assert "Authorization: Bearer ***" in caplog.text
    assert "openai-insecure-api-key.***" in caplog.text
    assert "literal *** in the message" in caplog.text
    for record in caplog.records:
        assert key not in record.getMessage()


def test_log_filter_masks_key_in_exception_text(
    websocket_log: logging.Logger, caplog: pytest.LogCaptureFixture
) -> None:
    key = fresh_key()
    make_openai(api_key=key)
    try:
        raise RuntimeError(f"upgrade failed for key {key}")
    except RuntimeError:
        websocket_log.exception("handshake error")
    websocket_log.error("given as instance", exc_info=ConnectionError(f"bad {key}"))
    assert key not in caplog.text
    assert "RuntimeError: upgrade failed for key ***" in caplog.text
    assert "ConnectionError: bad ***" in caplog.text


def test_log_filter_masks_key_on_library_logger(caplog: pytest.LogCaptureFixture) -> None:
    install_log_filter()
    key = fresh_key()
    make_openai(api_key=key)
    caplog.set_level(logging.DEBUG, logger="realtime_sync")
    logging.getLogger("realtime_sync").info("connecting with %s", key)
    assert key not in caplog.text
    assert "connecting with ***" in caplog.text


def test_install_log_filter_is_idempotent() -> None:
    install_log_filter()
    install_log_filter()
    for name in ("realtime_sync", "websocket"):
        filters = logging.getLogger(name).filters
        assert len(filters) == len({id(f) for f in filters})
        assert sum(type(f).__name__ == "RedactingFilter" for f in filters) == 1


def test_log_filter_masks_percent_encoded_query_key(
    websocket_log: logging.Logger, caplog: pytest.LogCaptureFixture
) -> None:
    key = f"relay+key/{uuid.uuid4().hex}="
    handshake = make_openai(api_key=key, auth="query", url="wss://relay.example/rt").handshake()
    assert query_of(handshake.url)["api-key"] == [key]
    parts = urlsplit(handshake.url)
    websocket_log.debug("request header: GET %s?%s HTTP/1.1", parts.path, parts.query)
    encoded = parts.query.split("api-key=", 1)[1]
    assert encoded != key  # the key was percent-encoded
    assert encoded not in caplog.text
