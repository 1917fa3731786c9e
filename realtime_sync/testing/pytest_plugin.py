"""pytest fixtures for code built on realtime_sync: a local Realtime server and a client.

Installed with realtime_sync (the ``pytest11`` entry point ``realtime_sync``), so tests
use the fixtures without any conftest::

    from realtime_sync.testing import ToolCall

    def test_weather(realtime_server, realtime_client):
        realtime_server.script.respond(ToolCall("get_weather", {"city": "Paris"}))
        realtime_server.script.respond("Sunny in Paris.")
        assert my_assistant(realtime_client).ask("Weather in Paris?") == "Sunny in Paris."
        realtime_server.script.assert_sent("conversation.item.create", item={"role": "user"})

``realtime_server`` is a started :class:`~realtime_sync.testing.LocalRealtimeServer`, one
per test, stopped after it. ``realtime_client`` is a :class:`~realtime_sync.RealtimeClient`
connected to it (its ``session.created`` handled), closed after the test. After a test
that passed, the server's script is verified: answers declared and never used fail the test
with a message that names them.

Configure them with markers (on a test, a class or a module; the closest wins, field by
field), whose keyword arguments go to the constructors::

    @pytest.mark.realtime_server(reply="Hi there", delta_interval=0.05)
    @pytest.mark.realtime_client(protocol="beta", auto_tools=False)
    def test_beta(realtime_client): ...

or, for the server, with indirect parametrisation (a dict of arguments, which override the
marker's)::

    @pytest.mark.parametrize("realtime_server", [{"late_transcripts": True}], indirect=True)

Both share a test key (``api_key`` on the server marker changes it for both). The socket
server needs the ``server`` extra; without it only the tests that use these fixtures fail,
with the command that installs it. Every pytest run loads the plugin, so this module imports
only pytest, and its parent packages import their names on first use: the server and the
client are imported when a test uses a fixture.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from realtime_sync import RealtimeClient
    from realtime_sync.testing import LocalRealtimeServer

__all__ = ["TEST_API_KEY", "realtime_client", "realtime_server"]

TEST_API_KEY = "rs-test-key-pytest-plugin"
"""The key the fixtures' server expects and their client presents, unless a marker says."""

_CONNECT_TIMEOUT = 10.0
_CLOSE_TIMEOUT = 5.0
_INSTALL = "pip install 'realtime_sync[server]'"

_server_key = pytest.StashKey["LocalRealtimeServer"]()
_api_key = pytest.StashKey[str]()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "realtime_server(**options): keyword arguments of the realtime_server fixture's "
        "LocalRealtimeServer (realtime_sync).",
    )
    config.addinivalue_line(
        "markers",
        "realtime_client(**options): keyword arguments of the realtime_client fixture's "
        "RealtimeClient (realtime_sync).",
    )


def _marker_options(node: pytest.Item, name: str) -> dict[str, Any]:
    """The keyword arguments of every ``name`` marker on ``node``, the closest winning."""
    options: dict[str, Any] = {}
    for marker in reversed(list(node.iter_markers(name))):
        if marker.args:
            raise pytest.UsageError(
                f"@pytest.mark.{name} takes keyword arguments only, got {marker.args!r}"
            )
        options.update(marker.kwargs)
    return options


@pytest.fixture
def realtime_server(request: pytest.FixtureRequest) -> Iterator[LocalRealtimeServer]:
    """A started local Realtime server for this test; its script is verified after it."""
    missing = None
    try:
        from realtime_sync.testing import LocalRealtimeServer
    except ImportError as exc:
        missing = exc.__cause__ or exc
    if missing is not None:  # failed outside the except block: no chained tracebacks
        pytest.fail(
            "the realtime_server fixture runs realtime_sync's local Realtime server, which "
            f"needs the optional 'websockets' package: {_INSTALL} ({missing})",
            pytrace=False,
        )
    options = _marker_options(request.node, "realtime_server")
    options.update(getattr(request, "param", None) or {})
    options.setdefault("api_key", TEST_API_KEY)
    with LocalRealtimeServer(**options) as server:
        request.node.stash[_server_key] = server
        request.node.stash[_api_key] = options["api_key"] or TEST_API_KEY
        yield server


@pytest.fixture
def realtime_client(
    request: pytest.FixtureRequest, realtime_server: LocalRealtimeServer
) -> Iterator[RealtimeClient]:
    """A client connected to ``realtime_server``, closed after the test."""
    from realtime_sync import RealtimeClient

    options: dict[str, Any] = {
        "api_key": request.node.stash[_api_key],
        "url": realtime_server.url,
        **_marker_options(request.node, "realtime_client"),
    }
    client = RealtimeClient(**options)
    try:
        client.connect(timeout=_CONNECT_TIMEOUT)
        yield client
    finally:
        client.close(timeout=_CLOSE_TIMEOUT)


@pytest.hookimpl(trylast=True)
def pytest_runtest_call(item: pytest.Item) -> None:
    """Fail a test that passed but left scripted answers unused.

    Last among the call hooks, after pytest's own ran the test: not called when the test
    failed, whose own error is the one to see.
    """
    server = item.stash.get(_server_key, None)
    leftovers = None
    if server is not None:
        try:
            server.script.verify()
        except AssertionError as failure:
            leftovers = str(failure)
    if leftovers is not None:  # failed outside the except block: no chained tracebacks
        pytest.fail(leftovers, pytrace=False)
