"""The command line: ``python -m realtime_sync`` (or ``realtime-sync``) and its subcommands.

This module builds the parser, lists event types and maps outcomes to exit codes: 0 done,
1 a failure (connection, authentication, a server that cannot listen), 2 bad arguments or
input, 130 interrupted. The client commands are in :mod:`._cli_client`, the server
commands in :mod:`._cli_server`.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from . import __version__
from ._cli_client import add_chat, add_demo
from ._cli_common import EXIT_FAILURE, EXIT_INTERRUPTED, MissingExtra, command
from ._cli_server import add_replay, add_serve
from ._dialects import (
    BETA_CLIENT_EVENTS,
    BETA_SERVER_EVENTS,
    BETA_TO_GA,
    GA_CLIENT_EVENTS,
    GA_SERVER_EVENTS,
)
from ._errors import RealtimeError
from ._reference import events_markdown

if TYPE_CHECKING:
    from ._cli_common import Subcommands

__all__ = ["main"]

DESCRIPTION = """\
A synchronous client for the OpenAI Realtime API, and a local Realtime server.

Talk to a model (OpenAI when OPENAI_API_KEY is set, else the built-in local server):
  demo     one text turn, printed as it streams
  chat     an interactive text chat

Run a local Realtime server for programs in any language:
  serve    simulated sessions, with faults on demand
  replay   a recorded session, played back to whoever connects

Reference:
  events   the event types of each dialect

Exit codes: 0 done, 1 failed (connection, authentication...), 2 bad arguments, 130 Ctrl-C.
"""


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    args = build_parser().parse_args(argv)
    try:
        code: int = args.run(args)
    except KeyboardInterrupt:  # while connecting: what was opened is closed on the way out
        print("\ninterrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except (RealtimeError, MissingExtra) as exc:
        print(f"\nerror: {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    except BrokenPipeError:  # output piped to a program that stopped reading (| head)
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no error at exit
        return EXIT_FAILURE
    return code


def build_parser() -> argparse.ArgumentParser:
    """The parser of every subcommand; each sets ``run(args) -> exit code``."""
    parser = argparse.ArgumentParser(
        prog=_program_name(),
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"realtime_sync {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    add_demo(commands)
    add_chat(commands)
    add_serve(commands)
    add_replay(commands)
    _add_events(commands)
    return parser


def _program_name() -> str:
    invoked = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else ""
    return "python -m realtime_sync" if invoked in ("__main__.py", "") else invoked


# events

_DIALECTS = {
    "ga": ("GA (api.openai.com, Azure /openai/v1)", GA_CLIENT_EVENTS, GA_SERVER_EVENTS),
    "beta": (
        "beta (OpenAI-Beta: realtime=v1, Azure api-version)",
        BETA_CLIENT_EVENTS,
        BETA_SERVER_EVENTS,
    ),
}


def _add_events(commands: Subcommands) -> None:
    events = command(
        commands,
        "events",
        help="list the event types of each dialect",
        description="List the client and server event types of the GA and beta dialects "
        "(beta server events that GA renamed show their GA name).",
    )
    events.add_argument("--dialect", choices=("ga", "beta", "all"), default="all")
    events.add_argument("--side", choices=("client", "server", "all"), default="all")
    formats = events.add_mutually_exclusive_group()
    formats.add_argument(
        "--json",
        action="store_true",
        help='print JSON: {"ga": {"client": [...], "server": [...]}, "beta": {...}}',
    )
    formats.add_argument(
        "--markdown",
        action="store_true",
        help="print the event reference (every event with its class), as in the README",
    )
    events.set_defaults(run=_events)


def _events(args: argparse.Namespace) -> int:
    if args.markdown:
        print(events_markdown(), end="")
        return 0
    dialects = list(_DIALECTS) if args.dialect == "all" else [args.dialect]
    sides = ["client", "server"] if args.side == "all" else [args.side]
    listed = {
        dialect: {side: sorted(_DIALECTS[dialect][1 if side == "client" else 2]) for side in sides}
        for dialect in dialects
    }
    if args.json:
        print(json.dumps(listed, indent=2))
        return 0
    for dialect, by_side in listed.items():
        print(_DIALECTS[dialect][0])
        for side, names in by_side.items():
            print(f"  {side} events ({len(names)})")
            for name in names:
                renamed = BETA_TO_GA.get(name) if dialect == "beta" else None
                print(f"    {name}" + (f"  (GA: {renamed})" if renamed else ""))
    return 0
