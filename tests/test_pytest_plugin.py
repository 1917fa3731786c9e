"""The pytest plugin, as users meet it: its fixtures in their test files, leftovers failing
their tests, and runs without the ``server`` extra.

Each user run is a pytest of its own in a subprocess (``runpytest_subprocess``), where the
plugin loads from its entry point as it does for users, and where ``websockets`` can be
made unimportable without touching this process.
"""

from __future__ import annotations

import sys

import pytest

pytestmark = pytest.mark.timeout(60)

USER_TESTS = '''
import pytest
from realtime_sync.testing import ToolCall

pytestmark = pytest.mark.realtime_server(api_key="rs-test-key-module", reply="module reply")


def test_fixtures_answer_as_scripted(realtime_server, realtime_client):
    realtime_server.script.respond(ToolCall("lookup", {"id": 7}))
    realtime_server.script.respond("Found it.")

    @realtime_client.tool
    def lookup(id: int) -> str:
        """Look an order up."""
        return f"order {id}"

    assert realtime_client.send_text("Where is order 7?", timeout=5).text == "Found it."
    realtime_server.script.assert_sent(
        "conversation.item.create", item={"type": "function_call_output", "output": "order 7"}
    )


@pytest.mark.realtime_server(delta_chunks=1)
@pytest.mark.realtime_client(protocol="beta")
def test_markers_configure_both_closest_first(realtime_server, realtime_client):
    reply = realtime_client.send_text("Hello", timeout=5)
    assert reply.text == "module reply"
    assert realtime_server.connections[0].dialect == "beta"


@pytest.mark.parametrize("realtime_server", [{"reply": "indirect"}], indirect=True)
def test_indirect_parametrisation(realtime_client):
    assert realtime_client.send_text("Hello", timeout=5).text == "indirect"


def test_leftovers_fail_the_test(realtime_server, realtime_client):
    realtime_server.script.respond("used")
    realtime_server.script.respond("never used")
    realtime_client.send_text("Hello", timeout=5)


def test_its_own_failure_comes_first(realtime_server):
    realtime_server.script.respond("never used either")
    assert False, "the test's own failure"
'''


def test_fixtures_scripts_and_leftovers_in_a_users_tests(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_user=USER_TESTS)
    result = pytester.runpytest_subprocess("--strict-markers", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=3, failed=2)
    lines = USER_TESTS.lstrip("\n").splitlines()  # as makepyfile writes it
    leftovers = lines.index('    realtime_server.script.respond("never used")')
    result.stdout.fnmatch_lines(
        [
            "*_ test_leftovers_fail_the_test _*",
            "1 scripted answer(s) of the local Realtime server were not used as declared:",
            f"  - answer #2 (in turn order, added at test_user.py:{leftovers + 1}): "
            "'never used'; used 0 of 1 time(s)",
            "The client asked for 1 response(s):",
            "  1. after user text 'Hello': answer #1",
            "*_ test_its_own_failure_comes_first _*",
            "*AssertionError: the test's own failure*",
        ]
    )
    # Only the passing test's leftovers are reported; no plugin traceback around them. (The
    # short summary repeats messages, whole or cut to the terminal's width: not counted.)
    reports = result.stdout.str().split("short test summary info")[0]
    assert reports.count("were not used as declared") == 1
    assert "pytest_plugin.py" not in result.stdout.str()


NO_WEBSOCKETS_CONFTEST = """
import sys

# Loading the plugin (before this conftest) must not have imported the socket server.
assert "websockets" not in sys.modules, "websockets was imported at startup"
assert "realtime_sync.testing._server" not in sys.modules
sys.modules["websockets"] = None  # as if the server extra were not installed
"""

NO_WEBSOCKETS_TESTS = """
from realtime_sync import RealtimeClient
from realtime_sync.testing import InProcessTransport


def test_unrelated():
    assert 1 + 1 == 2


def test_in_process_needs_no_extra():
    transport = InProcessTransport(api_key="rs-test-key-plain")
    transport.script.respond("Fine without websockets.")
    with RealtimeClient(api_key="rs-test-key-plain", transport=transport) as client:
        assert client.send_text("Hi", timeout=5).text == "Fine without websockets."


def test_server(realtime_server):
    pass


def test_client(realtime_client):
    pass
"""


def test_without_the_server_extra_only_the_fixtures_fail_and_say_why(
    pytester: pytest.Pytester,
) -> None:
    pytester.makeconftest(NO_WEBSOCKETS_CONFTEST)
    pytester.makepyfile(test_user=NO_WEBSOCKETS_TESTS)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=2, errors=2)
    result.stdout.fnmatch_lines(
        [
            "*ERROR at setup of test_server*",
            "the realtime_server fixture runs realtime_sync's local Realtime server, which "
            "needs the optional 'websockets' package: pip install 'realtime_sync[[]server]' "
            "(No module named 'websockets*",
            "*ERROR at setup of test_client*",
            "*pip install 'realtime_sync[[]server]'*",
        ]
    )


def test_importing_the_plugin_leaves_the_socket_server_unimported(
    pytester: pytest.Pytester,
) -> None:
    code = (
        "import sys, realtime_sync.testing.pytest_plugin as plugin\n"
        "assert callable(plugin.realtime_server)\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'websockets'"
        " or m == 'realtime_sync.testing._server'))\n"
    )
    result = pytester.run(sys.executable, "-c", code)
    assert result.ret == 0, result.stderr.str()
    assert result.stdout.lines == ["[]"]


def test_loading_the_plugin_loads_nothing_but_the_plugin_and_its_packages(
    pytester: pytest.Pytester,
) -> None:
    # Every pytest run of every project with realtime_sync installed loads the plugin: what
    # it imports, its parent packages' __init__ included, is start-up time for all of them
    # (the packages' eager imports once cost about 300 ms).
    code = (
        "import sys, pytest\n"
        "before = set(sys.modules)\n"
        "import realtime_sync.testing.pytest_plugin\n"
        "print(*sorted(set(sys.modules) - before), sep='\\n')\n"
    )
    result = pytester.run(sys.executable, "-c", code)
    assert result.ret == 0, result.stderr.str()
    assert result.stdout.lines == [
        "realtime_sync",
        "realtime_sync._lazy",
        "realtime_sync.testing",
        "realtime_sync.testing.pytest_plugin",
    ]
