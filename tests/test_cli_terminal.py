"""`chat` in a real terminal: pexpect runs it on a pseudo-terminal of its own, the test
types into it, presses Ctrl-C (the terminal's interrupt character, so the terminal sends
SIGINT) and reads what the command writes, escape sequences and the echo of what was
typed included."""

from __future__ import annotations

import io
import sys
import time
from collections.abc import Callable, Iterator

import pexpect
import pytest
from test_cli import Served, cli_env

pytestmark = pytest.mark.timeout(60)

WAIT = 20.0  # seconds the command may take to show what a test waits for, or to exit
REPLY = "An answer that arrives in four pieces."
PROMPT = "you> "


class Terminal:
    """One ``python -m realtime_sync chat`` on a pseudo-terminal of 40 rows by 160 columns.

    What it writes arrives as a stream, not a screen: lines end in ``\\r\\n`` and the line
    editor may add escape sequences around the prompt. Everything read is kept in
    :attr:`transcript`.
    """

    def __init__(self, args: list[str], env: dict[str, str]) -> None:
        self.transcript = io.StringIO()
        self.child = pexpect.spawn(
            sys.executable,
            ["-m", "realtime_sync", "chat", *args],
            env=env,
            encoding="utf-8",
            dimensions=(40, 160),
            timeout=WAIT,
        )
        self.child.logfile_read = self.transcript

    def output(self) -> str:
        """Everything the command has written that the test has read."""
        return self.transcript.getvalue()

    def wait_for(self, text: str) -> str:
        """What the command wrote before ``text``, once ``text`` has been written."""
        try:
            self.child.expect_exact(text, timeout=WAIT)
        except (pexpect.TIMEOUT, pexpect.EOF) as exc:
            raise AssertionError(f"never shown {text!r}; shown:\n{self.output()}") from exc
        before: str = self.child.before
        return before

    def type(self, text: str) -> None:
        self.child.sendline(text)

    def press_ctrl_c(self) -> None:
        self.child.sendintr()

    def exit_status(self) -> int | None:
        """The command's exit code once it has exited: None if a signal ended it."""
        try:
            self.child.expect(pexpect.EOF, timeout=WAIT)
        except pexpect.TIMEOUT as exc:
            raise AssertionError(f"never exited; shown:\n{self.output()}") from exc
        # The end of its output comes a moment before its exit; close() would kill a
        # command still alive a tenth of a second later, so wait for the exit first.
        deadline = time.monotonic() + WAIT
        while self.child.isalive():
            if time.monotonic() > deadline:
                raise AssertionError(f"closed its terminal but never exited:\n{self.output()}")
            time.sleep(0.02)  # polling interval, not a wait for anything in particular
        self.child.close()
        assert self.child.signalstatus is None, f"killed by signal {self.child.signalstatus}"
        status: int | None = self.child.exitstatus
        return status

    def close(self) -> None:
        """End the command if it still runs (SIGHUP, SIGINT, then SIGKILL); close the
        terminal."""
        if not self.child.closed:
            self.child.close(force=True)


@pytest.fixture
def terminal() -> Iterator[Callable[..., Terminal]]:
    opened: list[Terminal] = []

    def open_terminal(*args: str, **env: str) -> Terminal:
        opened.append(Terminal(list(args), cli_env(**env)))
        return opened[-1]

    yield open_terminal
    for each in opened:
        each.close()


@pytest.fixture
def slow_server() -> Iterator[Served]:
    """`serve` streaming a four-piece answer, a second between pieces."""
    server = Served("serve", "--reply", REPLY, "--delta-chunks", "4", "--delta-interval", "1")
    try:
        yield server.read_announcement()
    finally:
        server.close()


def test_chat_answers_what_is_typed_and_quits(terminal: Callable[..., Terminal]) -> None:
    chat = terminal("--local")
    chat.wait_for("type a message, /quit to leave")
    chat.wait_for(PROMPT)
    chat.type("What is 2+2?")
    chat.wait_for("assistant> You said: What is 2+2?\r\n")
    chat.wait_for(PROMPT)  # the answer ends its line, the next prompt follows
    chat.type("/quit")
    assert chat.exit_status() == 0
    assert "Traceback" not in chat.output()


def test_chat_streams_the_answer_and_ctrl_c_leaves_cleanly(
    terminal: Callable[..., Terminal], slow_server: Served
) -> None:
    base_url = f"http://{slow_server.netloc}/v1"
    chat = terminal(OPENAI_API_KEY=slow_server.key, OPENAI_BASE_URL=base_url)
    chat.wait_for("type a message")
    chat.wait_for(PROMPT)
    chat.type("Stream it, please.")
    chat.wait_for("assistant> ")
    try:  # the first piece of the answer
        chat.child.expect(r"[^\r\n]+", timeout=WAIT)
    except (pexpect.TIMEOUT, pexpect.EOF) as exc:
        raise AssertionError(f"no part of the answer shown:\n{chat.output()}") from exc
    assert REPLY not in chat.output(), "the whole answer came before Ctrl-C could be tried"
    chat.press_ctrl_c()  # in the middle of the answer
    assert chat.exit_status() == 130
    output = chat.output()
    assert "interrupted" in output and "Traceback" not in output
    assert REPLY not in output
    code, _, errors = slow_server.stop()
    assert (code, errors) == (0, "")


def test_ctrl_c_at_the_prompt_leaves_cleanly(terminal: Callable[..., Terminal]) -> None:
    chat = terminal("--local")
    chat.wait_for("type a message")
    chat.wait_for(PROMPT)
    chat.press_ctrl_c()
    assert chat.exit_status() == 130
    assert "Traceback" not in chat.output()
