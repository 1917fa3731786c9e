"""What the command line's modules share: exit codes, and the local server's import."""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .testing import LocalRealtimeServer

    Subcommands = argparse._SubParsersAction[argparse.ArgumentParser]

EXIT_FAILURE = 1  # connection, authentication, a server that cannot listen (2: argparse)
EXIT_INTERRUPTED = 130  # Ctrl-C: 128 + SIGINT, as shells report it


class MissingExtra(Exception):
    """The local server's optional dependency is not installed."""


def local_server_class() -> type[LocalRealtimeServer]:
    """:class:`~realtime_sync.testing.LocalRealtimeServer`, or :exc:`MissingExtra`."""
    try:
        from .testing import LocalRealtimeServer
    except ImportError as exc:
        raise MissingExtra(f"the local server needs an extra: {exc}") from None
    return LocalRealtimeServer


def command(commands: Subcommands, name: str, **options: Any) -> argparse.ArgumentParser:
    """A subcommand's parser, which its ``run(args)`` can reach as ``args.command_parser``."""
    parser: argparse.ArgumentParser = commands.add_parser(name, **options)
    parser.set_defaults(command_parser=parser)
    return parser


# Argument types: argparse reports a value they refuse, with the usage, and exits with 2.


def _number(kind: Callable[[str], Any], check: Callable[[Any], bool], wanted: str) -> Any:
    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            value = None
        if value is None or not check(value):
            raise argparse.ArgumentTypeError(f"{text!r} is not {wanted}")
        return value

    return parse


seconds = _number(float, lambda v: math.isfinite(v) and v >= 0, "a number of seconds, 0 or more")
positive = _number(float, lambda v: math.isfinite(v) and v > 0, "a positive number")
count = _number(int, lambda v: v >= 1, "a whole number, 1 or more")
whole = _number(int, lambda v: v >= 0, "a whole number, 0 or more")
port = _number(int, lambda v: 0 <= v <= 65535, "a port number (0: any free port)")
