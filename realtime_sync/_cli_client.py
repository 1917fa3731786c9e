"""The client commands: ``demo`` (one text turn) and ``chat`` (an interactive text chat).

Both talk to OpenAI when ``OPENAI_API_KEY`` is set (or to ``OPENAI_BASE_URL``, e.g. a
``serve`` or ``replay`` server), else, or with ``--local``, to the built-in local server
started on 127.0.0.1 for the command.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from ._cli_common import EXIT_INTERRUPTED, command, local_server_class, positive
from ._client import RealtimeClient
from ._errors import RealtimeTimeoutError, ResponseError

if TYPE_CHECKING:
    from ._cli_common import Subcommands

__all__ = ["add_chat", "add_demo"]

_LOCAL_KEY = "local-demo-key"  # the command's own local server accepts any key
_QUIT = "/quit"

CHAT_DESCRIPTION = f"""\
An interactive text chat: each line you type is a user message; the answer streams back
as it is generated. {_QUIT} (or end of input) leaves; Ctrl-C leaves at once (exit code 130).

Talks to OpenAI when OPENAI_API_KEY is set, else (or with --local) to the built-in local
server. To chat with a 'serve' or 'replay' server, set OPENAI_BASE_URL=http://HOST:PORT/v1
and OPENAI_API_KEY to the key it printed.
"""


def _add_endpoint_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--local", action="store_true", help="use the local server even if OPENAI_API_KEY is set"
    )
    parser.add_argument("--model", default=None, help="model (default: a current GA model)")


def add_demo(commands: Subcommands) -> None:
    demo = command(
        commands,
        "demo",
        help="run one text session and print the answer",
        description="Run one text turn and print the answer as it streams: against OpenAI "
        "when OPENAI_API_KEY is set, else (or with --local) against the built-in local server.",
    )
    demo.add_argument("--prompt", default="Say hello to a new user of realtime_sync.")
    _add_endpoint_options(demo)
    demo.add_argument(
        "--timeout",
        type=positive,
        default=60.0,
        metavar="SECONDS",
        help="seconds to wait for the answer",
    )
    demo.set_defaults(run=_run_demo)


def add_chat(commands: Subcommands) -> None:
    chat = command(
        commands,
        "chat",
        help=f"an interactive text chat ({_QUIT} to leave)",
        description=CHAT_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_endpoint_options(chat)
    chat.add_argument(
        "--instructions", metavar="TEXT", help="the session's instructions (system prompt)"
    )
    chat.add_argument(
        "--record",
        metavar="FILE",
        help="record the session as JSON lines (play it back with 'replay FILE')",
    )
    chat.add_argument(
        "--timeout",
        type=positive,
        default=60.0,
        metavar="SECONDS",
        help="seconds to wait for each part of an answer (default: 60)",
    )
    chat.set_defaults(run=_run_chat)


@contextlib.contextmanager
def _endpoint(args: argparse.Namespace) -> Iterator[dict[str, Any]]:
    """Client keyword arguments for OpenAI, or for a local server started for the command."""
    if os.environ.get("OPENAI_API_KEY") and not args.local:
        yield {}
        return
    with local_server_class()() as server:
        why = "--local" if args.local else "no OPENAI_API_KEY"
        print(f"{why}: talking to the built-in local server at {server.url}")
        yield {"api_key": _LOCAL_KEY, "url": server.url}


def _connected_to(client: RealtimeClient, options: dict[str, Any]) -> None:
    if not options:
        print(f"OPENAI_API_KEY is set: talking to {client.url}")  # the URL holds no key


# demo


def _run_demo(args: argparse.Namespace) -> int:
    with _endpoint(args) as options:
        client = RealtimeClient(model=args.model, **options)
        _connected_to(client, options)
        return _demo(client, args.prompt, args.timeout)


def _demo(client: RealtimeClient, prompt: str, timeout: float) -> int:
    client.on("session.created", lambda ev: print(f"session {ev.session.id} ({ev.session.model})"))
    client.on("response.output_text.delta", lambda ev: print(ev.delta, end="", flush=True))
    client.on("error", lambda ev: print(f"\nserver error: {ev.error.code}: {ev.error.message}"))
    started = time.monotonic()
    with client:
        client.session.update(session={"output_modalities": ["text"]})
        client.conversation.item.create(item=_user_message(prompt))
        print(f"you: {prompt}\nassistant: ", end="", flush=True)
        answered = client.expect("response.done")
        client.response.create()
        done = answered.wait(timeout)
    usage = done.response.usage
    print(
        f"\n[{done.response.status}; {usage.total_tokens if usage else '?'} tokens; "
        f"{time.monotonic() - started:.2f} s]"
    )
    return 0 if done.response.status == "completed" else 1


def _user_message(text: str) -> dict[str, Any]:
    return {"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]}


# chat


def _run_chat(args: argparse.Namespace) -> int:
    if sys.stdin is not None and sys.stdin.isatty():
        with contextlib.suppress(ImportError):  # line editing and history, where available
            import readline  # noqa: F401
    previous = signal.getsignal(signal.SIGINT)
    try:
        return _chat(args)
    finally:
        if previous is not None:  # Ctrl-C was ignored while closing; a caller gets it back
            with contextlib.suppress(ValueError):
                signal.signal(signal.SIGINT, previous)


def _chat(args: argparse.Namespace) -> int:
    with _endpoint(args) as options:
        client = RealtimeClient(model=args.model, **options)
        _connected_to(client, options)
        client.on(
            "error",
            lambda ev: print(f"\n[server error: {ev.error.code}: {ev.error.message}]", flush=True),
        )
        recording = client.record(args.record) if args.record else contextlib.nullcontext()
        with client, recording:
            session: dict[str, Any] = {"output_modalities": ["text"]}
            if args.instructions:
                session["instructions"] = args.instructions
            client.session.update(session=session)
            print(f"session {client.session.id}: type a message, {_QUIT} to leave", flush=True)
            try:
                return _converse(client, args.timeout)
            except KeyboardInterrupt:
                # The with-blocks close the client (and server) on the way out; a second
                # Ctrl-C must not cut that short with a traceback.
                _ignore_interrupts()
                print("\ninterrupted", file=sys.stderr)
                return EXIT_INTERRUPTED


def _converse(client: RealtimeClient, timeout: float) -> int:
    while True:
        line = _read_line("you> ")
        if line is None:
            return 0
        text = line.strip()
        if text == _QUIT:
            if not sys.stdin.isatty():  # a terminal echoed the line's end; a pipe did not
                print()
            return 0
        if not text:
            continue
        client.conversation.item.create(item=_user_message(text))
        handle = client.create_response()
        print("assistant> ", end="", flush=True)
        try:
            for delta in handle.text_stream(timeout=timeout):
                print(delta, end="", flush=True)
            handle.wait(timeout)
        except (ResponseError, RealtimeTimeoutError) as exc:  # this turn failed, not the chat
            print(f"\n[{type(exc).__name__}: {exc}]", end="")
        print(flush=True)


def _read_line(prompt: str) -> str | None:
    """The next line typed after ``prompt``; ``None`` (the line ended) at the end of input."""
    if sys.stdin is None:  # closed (`<&-`): as at the end of input
        print(prompt)
        return None
    try:
        return input(prompt)
    except EOFError:
        print()
        return None


def _ignore_interrupts() -> None:
    with contextlib.suppress(ValueError):  # not the main thread: nothing to protect
        signal.signal(signal.SIGINT, signal.SIG_IGN)
