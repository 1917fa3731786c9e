"""Proxies: the WebSocket client and the HTTP API through an HTTP CONNECT proxy, with and
without credentials, explicitly and from the environment."""

from __future__ import annotations

import base64
import logging
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest
import trustme
import websocket
from conftest import KEY
from connect_proxy import connect_proxy

from realtime_sync import (
    ConfigurationError,
    RealtimeAPI,
    RealtimeClient,
    RealtimeTimeoutError,
    RealtimeTranslationClient,
    TransportError,
)
from realtime_sync.testing import LocalRealtimeServer

PASSWORD = "proxy-pass-5b1e9c"


@pytest.fixture(autouse=True)
def no_proxy_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests start from no proxy variables, whatever the machine has."""
    for name in ("http_proxy", "https_proxy", "no_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)


def netloc(url: str) -> str:
    return urlsplit(url).netloc


def test_the_client_holds_a_session_through_a_connect_proxy(
    make_client: Callable[..., RealtimeClient],
) -> None:
    with connect_proxy(("user", "pw")) as proxy:
        client = make_client(
            http_proxy_host="127.0.0.1",
            http_proxy_port=proxy.port,
            http_proxy_auth=("user", "pw"),
            proxy_type="http",
        )
        with client:
            assert client.send_text("hello", timeout=10).status == "completed"
        assert [t.target for t in proxy.tunnels] == [client.url.split("/")[2]]
        assert proxy.tunnels[0].authorization is not None


def test_a_proxy_host_without_a_type_is_an_http_proxy_and_its_password_stays_hidden(
    make_client: Callable[..., RealtimeClient], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    with connect_proxy(("user", PASSWORD)) as proxy:
        client = make_client(
            http_proxy_host="127.0.0.1",
            http_proxy_port=proxy.port,
            http_proxy_auth=("user", PASSWORD),
        )
        with client:
            assert len(proxy.tunnels) == 1
        assert PASSWORD not in repr(client) + repr(client._transport) + caplog.text


def test_a_proxy_that_refuses_the_credentials_fails_the_connect(
    make_client: Callable[..., RealtimeClient],
) -> None:
    with connect_proxy(("user", "pw")) as proxy:
        client = make_client(
            http_proxy_host="127.0.0.1",
            http_proxy_port=proxy.port,
            http_proxy_auth=("user", "wrong"),
            proxy_type="http",
            reconnect=False,
        )
        with pytest.raises(TransportError, match="407") as raised:
            client.connect(timeout=10)
        assert "wrong" not in repr(raised.value) and "wrong" not in str(raised.value.__cause__)


def test_the_client_follows_the_proxy_environment_variables(
    make_client: Callable[..., RealtimeClient], monkeypatch: pytest.MonkeyPatch
) -> None:
    with connect_proxy() as proxy:
        monkeypatch.setenv("http_proxy", f"http://127.0.0.1:{proxy.port}")
        monkeypatch.setenv("no_proxy", "example.invalid")  # else local hosts bypass it
        with make_client() as client:
            client.send_text("hello", timeout=10)
        assert len(proxy.tunnels) == 1
        monkeypatch.setenv("no_proxy", "127.0.0.1")
        with make_client():
            pass
        assert len(proxy.tunnels) == 1


def test_the_http_api_tunnels_through_an_explicit_proxy_with_credentials(
    server: LocalRealtimeServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="realtime_sync")
    with connect_proxy(("user", PASSWORD)) as proxy:
        api = RealtimeAPI(
            KEY,
            base_url=server.http_base_url,
            http_proxy_host="127.0.0.1",
            http_proxy_port=proxy.port,
            http_proxy_auth=("user", PASSWORD),
        )
        assert api.client_secrets.create().value.startswith("ek_")
        call = server.calls.create_incoming()
        api.calls.reject(call.call_id)
    assert [t.target for t in proxy.tunnels] == [netloc(server.http_base_url)] * 2
    assert all(t.authorization for t in proxy.tunnels)
    assert PASSWORD not in caplog.text and PASSWORD not in repr(api)


def test_a_proxy_refusing_the_credentials_is_a_transport_error_without_them(
    server: LocalRealtimeServer,
) -> None:
    with connect_proxy(("user", PASSWORD)) as proxy:
        api = RealtimeAPI(
            KEY,
            base_url=server.http_base_url,
            http_proxy_host="127.0.0.1",
            http_proxy_port=proxy.port,
            http_proxy_auth=("user", "wrong-" + PASSWORD),
        )
        with pytest.raises(TransportError, match="407") as raised:
            api.client_secrets.create()
    shown = f"{raised.value!r} {raised.value.__cause__!r} {raised.value.__context__!r}"
    assert PASSWORD not in shown


def test_the_http_api_follows_the_proxy_variables_and_no_proxy(
    server: LocalRealtimeServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    with connect_proxy(("user", PASSWORD)) as proxy:
        monkeypatch.setenv("http_proxy", f"http://user:{PASSWORD}@127.0.0.1:{proxy.port}")
        api = RealtimeAPI(KEY, base_url=server.http_base_url)
        api.client_secrets.create()
        assert len(proxy.tunnels) == 1  # the credentials in the URL were accepted
        monkeypatch.setenv("no_proxy", "localhost,.example.com, 127.0.0.1")
        api.client_secrets.create()
        assert len(proxy.tunnels) == 1
        # An explicit list overrides the variable, and an explicit proxy the variable's.
        exempt_none = RealtimeAPI(KEY, base_url=server.http_base_url, http_no_proxy=[])
        exempt_none.client_secrets.create()
        assert len(proxy.tunnels) == 2
        monkeypatch.setenv("no_proxy", "*")
        api.client_secrets.create()
        assert len(proxy.tunnels) == 2


@pytest.mark.parametrize("explicit", [False, True])
def test_a_no_proxy_network_exempts_the_addresses_in_it_as_for_the_websocket_client(
    server: LocalRealtimeServer,
    make_client: Callable[..., RealtimeClient],
    monkeypatch: pytest.MonkeyPatch,
    explicit: bool,
) -> None:
    # The HTTP API ignored networks and tunnelled where the WebSocket client went direct.
    with connect_proxy() as proxy:
        monkeypatch.setenv("http_proxy", f"http://127.0.0.1:{proxy.port}")
        exempt = ["example.invalid", "10.0.0.0/8", "127.0.0.0/8"]
        if not explicit:
            monkeypatch.setenv("no_proxy", ",".join(exempt))
        options: dict[str, Any] = {"http_no_proxy": exempt} if explicit else {}
        if not explicit:  # websocket-client reads http_no_proxy only beside a proxy host
            with make_client():
                pass
        RealtimeAPI(KEY, base_url=server.http_base_url, **options).client_secrets.create()
        assert proxy.tunnels == []
        outside = RealtimeAPI(KEY, base_url=server.http_base_url, http_no_proxy=["10.0.0.0/8"])
        outside.client_secrets.create()
        assert len(proxy.tunnels) == 1  # 127.0.0.1 is not in 10.0.0.0/8


def test_https_goes_through_the_tunnel_with_the_certificate_checked() -> None:
    ca = trustme.CA()
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    trusting = ssl.create_default_context()
    ca.configure_trust(trusting)
    with LocalRealtimeServer(api_key=KEY, ssl_context=context) as server, connect_proxy() as proxy:
        options: dict[str, Any] = {
            "base_url": server.http_base_url,
            "http_proxy_host": "127.0.0.1",
            "http_proxy_port": proxy.port,
        }
        RealtimeAPI(KEY, ssl_context=trusting, **options).client_secrets.create()
        with pytest.raises(TransportError, match="CERTIFICATE_VERIFY_FAILED"):
            RealtimeAPI(KEY, **options).client_secrets.create()
        assert [t.target for t in proxy.tunnels] == [netloc(server.http_base_url)] * 2


@pytest.fixture
def silent_proxy() -> Iterator[int]:
    """A 'proxy' that accepts connections and never answers the CONNECT."""
    listener = socket.create_server(("127.0.0.1", 0))
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(listener.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield listener.getsockname()[1]
    stop.set()
    thread.join(timeout=5)
    for sock in held:
        sock.close()
    listener.close()


def test_the_timeout_bounds_a_proxy_that_never_answers_the_connect(
    server: LocalRealtimeServer, silent_proxy: int
) -> None:
    api = RealtimeAPI(
        KEY,
        base_url=server.http_base_url,
        http_proxy_host="127.0.0.1",
        http_proxy_port=silent_proxy,
        timeout=0.5,
    )
    started = time.monotonic()
    with pytest.raises(RealtimeTimeoutError):
        api.client_secrets.create()
    assert time.monotonic() - started < 3


@pytest.fixture
def blackhole() -> Iterator[int]:
    """A port on 127.0.0.1 whose connects hang: its listener's queue is full, so the
    SYNs go unanswered, as to an address a broken network drops."""
    listener = socket.create_server(("127.0.0.1", 0), backlog=0)
    port = listener.getsockname()[1]
    queued = [socket.socket() for _ in range(4)]
    for sock in queued:
        sock.setblocking(False)
        sock.connect_ex(("127.0.0.1", port))
    probe = socket.socket()
    probe.settimeout(0.3)
    assert probe.connect_ex(("127.0.0.1", port)) != 0  # hangs until the timeout: full
    probe.close()
    yield port
    for sock in queued:
        sock.close()
    listener.close()


@pytest.mark.parametrize("through_proxy", [False, True])
def test_the_timeout_bounds_connecting_to_a_host_with_several_unreachable_addresses(
    blackhole: int, monkeypatch: pytest.MonkeyPatch, through_proxy: bool
) -> None:
    # Each address was given the whole timeout: five of them took 5 s.
    resolve = socket.getaddrinfo

    def five_addresses(host: str, *args: Any, **kwargs: Any) -> Any:
        return resolve("127.0.0.1", *args, **kwargs) * 5 if host == "several.test" else []

    monkeypatch.setattr(socket, "getaddrinfo", five_addresses)
    options: dict[str, Any] = (
        {"http_proxy_host": "several.test", "http_proxy_port": blackhole}
        if through_proxy
        else {"base_url": f"http://several.test:{blackhole}/v1", "allow_insecure": True}
    )
    api = RealtimeAPI(KEY, timeout=1, **options)
    started = time.monotonic()
    with pytest.raises(RealtimeTimeoutError, match=r"within 1\.0 s"):
        api.client_secrets.create()
    assert time.monotonic() - started < 3


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (
            {"http_proxy_host": "127.0.0.1", "http_proxy_port": 1080, "proxy_type": "socks5"},
            "socks5",
        ),
        ({"http_proxy_host": "127.0.0.1"}, "http_proxy_port"),
        ({"http_proxy_host": "127.0.0.1", "http_proxy_port": "eighty"}, "http_proxy_port"),
        ({"http_proxy_host": "127.0.0.1", "http_proxy_port": 70000}, "http_proxy_port"),
        ({"http_proxy_port": 3128}, "http_proxy_host"),
        # These were taken: a port of True or 1.5 became 1, an empty or multi-line host
        # was tried, and a "user:password" string became the user "u", password "s".
        ({"http_proxy_host": "127.0.0.1", "http_proxy_port": True}, "http_proxy_port"),
        ({"http_proxy_host": "127.0.0.1", "http_proxy_port": 1.5}, "http_proxy_port"),
        ({"http_proxy_host": "", "http_proxy_port": 3128}, "http_proxy_host"),
        ({"http_proxy_host": "proxy\r\nX: 1", "http_proxy_port": 3128}, "http_proxy_host"),
        ({"http_proxy_host": 3128, "http_proxy_port": 3128}, "http_proxy_host"),
        (
            {"http_proxy_host": "p", "http_proxy_port": 1, "http_proxy_auth": "u:" + PASSWORD},
            "http_proxy_auth",
        ),
        ({"http_proxy_host": "p", "http_proxy_port": 1, "http_proxy_auth": ("u",)}, "pair"),
        ({"http_proxy_host": "p", "http_proxy_port": 1, "http_proxy_auth": ("u", 1)}, "pair"),
    ],
)
def test_proxy_settings_that_cannot_work_are_refused_up_front(
    options: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigurationError, match=message) as raised:
        RealtimeAPI(KEY, base_url="https://api.example.com/v1", **options)
    assert PASSWORD not in str(raised.value)
    if options.get("proxy_type") == "socks5":
        return  # a WebSocket client may use SOCKS
    for client in (RealtimeClient, RealtimeTranslationClient):  # the same checks, up front
        with pytest.raises(ConfigurationError, match=message) as raised:
            client(KEY, **options)
        assert PASSWORD not in str(raised.value)


def test_a_websocket_client_refuses_a_proxy_type_websocket_client_does_not_know() -> None:
    with pytest.raises(ConfigurationError, match="socks5h"):
        RealtimeClient(KEY, http_proxy_host="p", http_proxy_port=1, proxy_type="socks6")
    RealtimeClient(KEY, http_proxy_host="p", http_proxy_port=1, proxy_type="socks5h")


@pytest.mark.parametrize(
    "value", ["socks5://user:hunter2-secret@proxy:1080", "http://", "http://proxy:notaport"]
)
def test_a_proxy_variable_that_is_no_http_proxy_is_refused_without_being_shown(
    server: LocalRealtimeServer, monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("http_proxy", value)
    with pytest.raises(ConfigurationError, match="http_proxy variable") as raised:
        RealtimeAPI(KEY, base_url=server.http_base_url).client_secrets.create()
    assert "hunter2" not in str(raised.value)


@pytest.mark.parametrize("given", ["explicitly", "in the environment"])
def test_the_websocket_trace_masks_the_proxy_credentials_token(
    server: LocalRealtimeServer,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    given: str,
) -> None:
    # websocket-client's trace dumps the CONNECT request: its Basic token is the password.
    password = f"{PASSWORD}-{given[:2]}"
    token = base64.b64encode(f"user:{password}".encode()).decode()
    caplog.set_level(logging.DEBUG)
    websocket.enableTrace(True, handler=logging.NullHandler())
    try:
        with connect_proxy(("user", password)) as proxy:
            options: dict[str, Any] = {}
            if given == "explicitly":
                options = {
                    "http_proxy_host": "127.0.0.1",
                    "http_proxy_port": proxy.port,
                    "http_proxy_auth": ("user", password),
                }
            else:
                monkeypatch.setenv("http_proxy", f"http://user:{password}@127.0.0.1:{proxy.port}")
                monkeypatch.setenv("no_proxy", "example.invalid")
            with RealtimeClient(api_key=KEY, url=server.url, **options):
                assert len(proxy.tunnels) == 1
    finally:
        websocket.enableTrace(False)
    assert "Proxy-Authorization: Basic ***" in caplog.text
    assert token not in caplog.text and password not in caplog.text
