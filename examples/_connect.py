"""How the examples connect: to OpenAI when OPENAI_API_KEY is set (and --local is not
given), else to the built-in local Realtime server, so every example runs offline."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Any

from realtime_sync import RealtimeClient


@contextlib.contextmanager
def client_options(local: bool = False, **server_options: Any) -> Iterator[dict[str, Any]]:
    """The ``RealtimeClient`` arguments to use: none for OpenAI (the key comes from
    OPENAI_API_KEY), or the address of a local server, which runs until the block ends.
    ``server_options`` go to the local server."""
    if os.environ.get("OPENAI_API_KEY") and not local:
        yield {}
        return
    from realtime_sync.testing import LocalRealtimeServer

    with LocalRealtimeServer(**server_options) as server:
        print(f"(no OPENAI_API_KEY or --local: the built-in local server at {server.url})")
        yield {"api_key": "local", "url": server.url}


@contextlib.contextmanager
def realtime_client(local: bool = False, **options: Any) -> Iterator[RealtimeClient]:
    """A connected client; closed, and the local server stopped, on exit. ``server``
    options go to the local server."""
    with (
        client_options(local, **options.pop("server", {})) as connection,
        RealtimeClient(**connection, **options) as client,
    ):
        yield client
