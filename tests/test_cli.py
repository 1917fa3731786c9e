"""The command line, run as a user runs it: `python -m realtime_sync ...` in a subprocess.

Every subcommand's behaviour and exit code (0 done, 1 failed, 2 bad arguments, 130 Ctrl-C),
and `serve` / `replay` used from this process by our client and the official `openai` one.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import openai
import pytest
from conftest import CONFORMANCE

from realtime_sync import (
    AuthenticationError,
    BadRequestError,
    InternalServerError,
    RealtimeClient,
    RealtimeError,
    RealtimeTimeoutError,
)
from realtime_sync._dialects import (
    BETA_CLIENT_EVENTS,
    BETA_SERVER_EVENTS,
    GA_CLIENT_EVENTS,
    GA_SERVER_EVENTS,
)

pytestmark = pytest.mark.timeout(60)

WAIT = 20.0  # seconds a process or a session may take before the test fails
WRONG_KEY = "rs-test-key-wrong-5a1d9c3e7b"


def cli_env(**extra: str) -> dict[str, str]:
    """The environment without the user's OpenAI settings, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if k not in ("OPENAI_API_KEY", "OPENAI_BASE_URL")}
    return {**env, **extra}


def run_cli(
    *args: str, input: str | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "realtime_sync", *args],
        capture_output=True,
        text=True,
        timeout=50,
        env=env if env is not None else cli_env(),
        input=input,
        check=False,
    )


def run_demo(*args: str) -> subprocess.CompletedProcess[str]:
    return run_cli("demo", *args)


class Served:
    """A `serve` or `replay` process; :meth:`read_announcement` waits for its first lines."""

    def __init__(self, *args: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "realtime_sync", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=cli_env(),
        )
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._errors: list[str] = []
        assert self.process.stdout is not None and self.process.stderr is not None
        self._stdout = threading.Thread(target=self._pump, args=(self.process.stdout,), daemon=True)
        self._stdout.start()
        self._stderr = threading.Thread(
            target=lambda: self._errors.extend(self.process.stderr or ()), daemon=True
        )
        self._stderr.start()
        self.header: list[str] = []
        self.url = self.key = self.netloc = ""

    def read_announcement(self) -> Served:
        """Wait for its first lines: URL, key, notes."""
        self.header = self.read_until("serving until")
        self.url = self.header[0].removeprefix("url: ")
        self.key = self.header[1].removeprefix("key: ")
        self.netloc = self.url.split("/")[2]
        return self

    def _pump(self, stream: Any) -> None:
        for line in stream:
            self._lines.put(line.rstrip("\n"))
        self._lines.put(None)

    def read_until(self, marker: str) -> list[str]:
        """The lines printed up to the first one containing ``marker``."""
        lines: list[str] = []
        deadline = time.monotonic() + WAIT
        while True:
            line = self._lines.get(timeout=max(0.0, deadline - time.monotonic()))
            if line is None:
                raise AssertionError(f"exited before {marker!r}: {lines} {self._errors}")
            lines.append(line)
            if marker in line:
                return lines

    def stop(self, signum: int = signal.SIGINT) -> tuple[int, list[str], str]:
        """Signal it; its exit code, the rest of its output, and its error output."""
        self.process.send_signal(signum)
        code = self.process.wait(timeout=WAIT)
        rest: list[str] = []
        while (line := self._lines.get(timeout=WAIT)) is not None:
            rest.append(line)
        self._stderr.join(WAIT)
        return code, rest, "".join(self._errors)

    def close(self) -> None:
        """Kill it if it still runs; close its pipes."""
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=WAIT)
        for reader in (self._stdout, self._stderr):
            reader.join(WAIT)
        for pipe in (self.process.stdout, self.process.stderr):
            if pipe is not None:
                pipe.close()


@pytest.fixture
def served() -> Iterator[Callable[..., Served]]:
    started: list[Served] = []

    def start(*args: str) -> Served:
        started.append(Served(*args))
        return started[-1].read_announcement()

    yield start
    for each in started:
        each.close()


def client_for(server: Served, **options: Any) -> RealtimeClient:
    options.setdefault("reconnect", False)
    return RealtimeClient(api_key=server.key, url=server.url, **options)


def assert_clean(result: subprocess.CompletedProcess[str]) -> None:
    assert "Traceback" not in result.stdout + result.stderr


# demo, --version, --help


def test_demo_without_a_key_uses_the_local_server() -> None:
    result = run_demo("--prompt", "ping from the test")
    assert result.returncode == 0, result.stderr
    assert "built-in local server" in result.stdout
    assert "session sess_" in result.stdout
    assert "you: ping from the test" in result.stdout
    assert "[completed;" in result.stdout
    assert result.stderr == ""


def test_version_from_the_module_and_the_console_script() -> None:
    from realtime_sync import __version__

    assert run_cli("--version").stdout == f"realtime_sync {__version__}\n"
    script = Path(sys.executable).with_name("realtime-sync")
    result = subprocess.run(
        [str(script), "--version"], capture_output=True, text=True, timeout=50, check=False
    )
    assert (result.returncode, result.stdout) == (0, f"realtime_sync {__version__}\n")


@pytest.mark.parametrize(
    ("command", "mentions"),
    [
        ((), ["demo", "chat", "serve", "replay", "events", "Exit codes"]),
        (("demo",), ["--prompt", "--local"]),
        (("chat",), ["/quit", "OPENAI_BASE_URL", "--record"]),
        (("serve",), ["--reject-handshake", "--drop-during-response", "--allow-remote"]),
        (("replay",), ["FILE", "--fast", "--speed"]),
        (("events",), ["--dialect", "--json"]),
    ],
)
def test_help_describes_every_command(command: tuple[str, ...], mentions: list[str]) -> None:
    result = run_cli(*command, "--help")
    assert result.returncode == 0
    assert result.stdout.startswith("usage: python -m realtime_sync")
    for text in mentions:
        assert text in result.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((), "the following arguments are required: COMMAND"),
        (("nonsense",), "invalid choice"),
        (("serve", "--port", "70000"), "not a port number"),
        (("serve", "--host", "0.0.0.0"), "not loopback"),
        (("serve", "--reject-handshake", "700"), "HTTP status 700"),
        (("serve", "--reject-handshake", "101"), "HTTP status 101"),
        (("serve", "--reject-handshake", "200"), "HTTP status 200"),
        (("serve", "--reject-handshake", "299"), "HTTP status 299"),
        (("serve", "--retry-after", "2"), "--retry-after goes with --reject-handshake"),
        (("serve", "--fail-after-accept", "2000"), "not a close code"),
        (("serve", "--key", " "), "--key must not be empty"),
        (("serve", "--delta-interval", "-1"), "not a number of seconds"),
        (("replay",), "the following arguments are required: FILE"),
        (("replay", "no-such-recording.jsonl"), "cannot play no-such-recording.jsonl"),
        (("replay", str(CONFORMANCE / "openapi_realtime_examples.json")), "line 1"),
        (("replay", "--fast", "--speed", "2", "x.jsonl"), "not allowed with argument"),
        (("events", "--dialect", "gamma"), "invalid choice"),
        (("chat", "--timeout", "soon"), "'soon' is not a positive number"),
        (("serve", "--fault-times", "2"), "--fault-times goes with a counted fault"),
    ],
)
def test_bad_arguments_exit_2_with_the_reason(args: tuple[str, ...], message: str) -> None:
    result = run_cli(*args)
    assert result.returncode == 2
    assert "usage:" in result.stderr and message in result.stderr
    assert_clean(result)


# events


def test_events_lists_both_dialects_both_sides() -> None:
    result = run_cli("events")
    assert result.returncode == 0
    for heading in (
        f"client events ({len(GA_CLIENT_EVENTS)})",
        f"server events ({len(GA_SERVER_EVENTS)})",
        f"client events ({len(BETA_CLIENT_EVENTS)})",
        f"server events ({len(BETA_SERVER_EVENTS)})",
    ):
        assert heading in result.stdout
    assert "    response.text.delta  (GA: response.output_text.delta)" in result.stdout


def test_events_as_json_for_one_dialect_and_side() -> None:
    result = run_cli("events", "--json", "--dialect", "beta", "--side", "server")
    assert json.loads(result.stdout) == {"beta": {"server": sorted(BETA_SERVER_EVENTS)}}
    both = json.loads(run_cli("events", "--json").stdout)
    assert both["ga"] == {"client": sorted(GA_CLIENT_EVENTS), "server": sorted(GA_SERVER_EVENTS)}


# chat (its terminal behaviour, Ctrl-C included: test_cli_terminal.py)


def test_chat_streams_each_answer_until_quit() -> None:
    result = run_cli("chat", input="first question\n\nsecond question\n/quit\nnever sent\n")
    assert result.returncode == 0, result.stderr
    assert "talking to the built-in local server" in result.stdout
    assert "assistant> You said: first question\n" in result.stdout
    assert "assistant> You said: second question\n" in result.stdout
    assert "never sent" not in result.stdout
    assert result.stderr == ""


def test_chat_ends_at_the_end_of_its_input() -> None:
    result = run_cli("chat", "--local", input="only one\n")
    assert result.returncode == 0, result.stderr
    assert "--local: talking to the built-in local server" in result.stdout
    assert "You said: only one" in result.stdout


def test_chat_ends_its_output_with_a_newline_at_quit_and_at_the_end_of_input() -> None:
    for given in ("hello\n/quit\n", "hello\n", ""):
        result = run_cli("chat", input=given)
        assert result.returncode == 0, result.stderr
        assert result.stdout.endswith("you> \n"), (given, result.stdout)


def test_chat_with_its_input_closed_ends_as_at_the_end_of_input() -> None:
    # `<&-`: no file descriptor 0 at all, so sys.stdin is None in the chat.
    result = subprocess.run(
        ["sh", "-c", 'exec "$0" -m realtime_sync chat <&-', sys.executable],
        capture_output=True,
        text=True,
        timeout=50,
        env=cli_env(),
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.endswith("to leave\nyou> \n")
    assert result.stderr == ""


def test_a_chat_recorded_is_played_back_by_replay(
    tmp_path: Path, served: Callable[..., Served]
) -> None:
    recording = tmp_path / "chat.jsonl"
    first = run_cli("chat", "--record", str(recording), input="alpha\nbeta\n/quit\n")
    assert first.returncode == 0, first.stderr

    server = served("replay", str(recording), "--fast")
    assert f"playing {recording}:" in server.header[-2]
    replay_env = cli_env(OPENAI_API_KEY=server.key, OPENAI_BASE_URL=f"http://{server.netloc}/v1")
    # Other questions, the recorded answers: the server side of the recording is what plays.
    second = run_cli("chat", input="gamma\ndelta\n/quit\n", env=replay_env)
    assert second.returncode == 0, second.stderr
    assert "OPENAI_API_KEY is set: talking to ws://127.0.0.1" in second.stdout
    assert "assistant> You said: alpha\n" in second.stdout
    assert "assistant> You said: beta\n" in second.stdout
    assert server.key not in second.stdout + second.stderr
    assert server.stop()[0] == 0


def test_chat_with_a_wrong_key_exits_1_and_prints_no_key(served: Callable[..., Served]) -> None:
    server = served("serve")
    env = cli_env(OPENAI_API_KEY=WRONG_KEY, OPENAI_BASE_URL=f"http://{server.netloc}/v1")
    result = run_cli("chat", input="hello\n", env=env)
    assert result.returncode == 1
    assert "error: AuthenticationError" in result.stderr
    assert WRONG_KEY not in result.stdout + result.stderr
    assert server.key not in result.stdout + result.stderr
    assert_clean(result)


def test_chat_that_cannot_connect_exits_1() -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = cli_env(OPENAI_API_KEY=WRONG_KEY, OPENAI_BASE_URL=f"http://127.0.0.1:{port}/v1")
    result = run_cli("chat", input="hello\n", env=env)
    assert result.returncode == 1
    assert "error: TransportError" in result.stderr
    assert WRONG_KEY not in result.stdout + result.stderr
    assert_clean(result)


# serve


# websockets 17.1 deprecates the way openai opens its connection (outside a `with`).
@pytest.mark.filterwarnings("ignore:connect\\(\\) must be used as a context manager")
def test_serve_answers_our_client_and_the_official_one_then_stops_on_ctrl_c(
    served: Callable[..., Served],
) -> None:
    server = served("serve", "--port", "0")
    assert server.url.startswith("ws://127.0.0.1:") and server.url.endswith("/v1/realtime")
    assert server.key.startswith("rs-local-")

    with client_for(server) as ours:
        assert ours.send_text("from realtime_sync", timeout=WAIT).text == (
            "You said: from realtime_sync"
        )

    official = openai.OpenAI(
        api_key=server.key,
        base_url=f"http://{server.netloc}/v1",
        websocket_base_url=f"ws://{server.netloc}/v1",
        max_retries=0,
    )
    # proxy None: loopback never goes through a proxy from the environment.
    options = {"open_timeout": WAIT, "close_timeout": WAIT, "proxy": None}
    text = ""
    with official.realtime.connect(
        model="gpt-realtime", websocket_connection_options=options
    ) as connection:
        connection.conversation.item.create(
            item={
                "type": "message",
                "role": "user",
                "content": [{"type": "input_text", "text": "from openai"}],
            }
        )
        connection.response.create()
        for event in connection:
            if event.type == "response.output_text.delta":
                text += event.delta
            elif event.type == "response.done":
                break
    assert text == "You said: from openai"

    code, rest, errors = server.stop(signal.SIGINT)
    assert (code, rest, errors) == (0, ["stopped"], "")


def test_serve_stops_cleanly_on_sigterm(served: Callable[..., Served]) -> None:
    server = served("serve", "--key", "rs-test-key-given-on-the-command-line")
    assert server.key == "rs-test-key-given-on-the-command-line"
    assert server.stop(signal.SIGTERM) == (0, ["stopped"], "")


def test_serve_logs_what_clients_send(served: Callable[..., Served]) -> None:
    server = served("serve", "--log-events", "--reply", "Fixed.", "--delta-chunks", "2")
    deltas: list[str] = []
    with client_for(server) as client:
        client.on("response.output_text.delta", lambda event: deltas.append(event.delta))
        assert client.send_text("log me", timeout=WAIT).text == "Fixed."
    assert len(deltas) == 2
    logged = server.read_until("client event: response.create")
    assert any(
        line.startswith("client event: conversation.item.create") and "log me" in line
        for line in logged
    )


def test_serve_speaks_beta_on_the_url_it_prints_for_beta(served: Callable[..., Served]) -> None:
    server = served("serve", "--dialect", "beta")
    assert "/openai/realtime?api-version=" in server.url
    types: list[str] = []
    with client_for(server, protocol="beta") as client:
        client.on("response.*", lambda event: types.append(event.type))
        assert client.send_text("old school", timeout=WAIT).text == "You said: old school"
    assert "response.text.delta" in types


def test_serve_on_a_port_in_use_exits_1(served: Callable[..., Served]) -> None:
    first = served("serve")
    port = first.netloc.rsplit(":", 1)[1]
    result = run_cli("serve", "--port", port)
    assert result.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr
    assert_clean(result)


def refused_once_with_503(server: Served) -> None:
    with pytest.raises(InternalServerError) as refused:
        client_for(server).connect(timeout=WAIT)
    assert refused.value.status_code == 503 and refused.value.retry_after == 2


def refused_once_as_a_bad_key(server: Served) -> None:
    with pytest.raises(AuthenticationError):
        client_for(server).connect(timeout=WAIT)


def hung_once(server: Served) -> None:
    with pytest.raises(RealtimeTimeoutError):
        client_for(server).connect(timeout=0.5)


def dropped_mid_response(server: Served) -> None:
    with client_for(server) as client, pytest.raises(RealtimeError):
        client.send_text("cut me off", timeout=WAIT)


def expired(server: Served) -> None:
    expiry = threading.Event()
    client = client_for(server)
    client.on(
        "error", lambda event: expiry.set() if event.error.code == "session_expired" else None
    )
    with client:
        assert expiry.wait(WAIT)


def unponged(server: Served) -> None:
    lost = threading.Event()
    client = client_for(server, ping_interval=0.3, ping_timeout=0.2)
    client.on("client.closed", lambda _event: lost.set())
    with client:
        assert lost.wait(WAIT)


def beta_refused(server: Served) -> None:
    with pytest.raises(BadRequestError, match="beta"):
        client_for(server, protocol="beta").connect(timeout=WAIT)


ONCE = ["--fault-times", "1"]


@pytest.mark.parametrize(
    ("options", "fault", "then_healthy"),
    [
        (["--reject-handshake", "503", "--retry-after", "2", *ONCE], refused_once_with_503, True),
        (["--fail-after-accept", "3000", *ONCE], refused_once_as_a_bad_key, True),
        (["--hang-handshakes", *ONCE], hung_once, True),
        (["--drop-during-response", "1", *ONCE], dropped_mid_response, True),
        (["--session-lifetime", "0.3"], expired, False),
        (["--no-pongs"], unponged, False),
        (["--beta-shutdown"], beta_refused, True),
    ],
    ids=["reject", "fail", "hang", "drop", "lifetime", "no-pongs", "beta-shutdown"],
)
def test_serve_fault_options(
    served: Callable[..., Served],
    options: list[str],
    fault: Callable[[Served], None],
    then_healthy: bool,
) -> None:
    server = served("serve", *options)
    fault(server)
    if then_healthy:  # a counted fault is used up, the beta switch leaves GA alone
        with client_for(server) as client:
            assert client.send_text("again", timeout=WAIT).text == "You said: again"
    assert server.stop()[0] == 0


# replay


def test_replay_plays_a_conformance_trace_to_our_client(served: Callable[..., Served]) -> None:
    trace = CONFORMANCE / "beta_text_response.jsonl"
    server = served("replay", str(trace), "--fast")
    assert server.header[-2] == (
        f"playing {trace}: 85 server events in 1 turn (0 s recorded), as fast as possible"
    )
    deltas: list[str] = []
    finished = threading.Event()
    client = client_for(server)
    client.on("response.output_text.delta", lambda event: deltas.append(event.delta))
    client.on("response.done", lambda _event: finished.set())
    with client:
        assert finished.wait(WAIT)
    assert len(deltas) == 77
    assert server.stop(signal.SIGTERM)[0] == 0
