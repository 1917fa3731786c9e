"""How the examples connect: to OpenAI when OPENAI_API_KEY is set (and --local is not
given), else to the built-in local Realtime server, so every example runs offline."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Any

from realtime_sync import RealtimeClient


@contextlib.contextmanager
def realtime_client(local: bool = False, **options: Any) -> Iterator[RealtimeClient]:
    """A connected client; closed, and the local server stopped, on exit. ``server``
    options go to the local server."""
    server_options = options.pop("server", {})
    if os.environ.get("OPENAI_API_KEY") and not local:
        with RealtimeClient(**options) as client:
            yield client
        return
    from realtime_sync.testing import LocalRealtimeServer

    with LocalRealtimeServer(**server_options) as server:
        print(f"(no OPENAI_API_KEY or --local: the built-in local server at {server.url})")
        with RealtimeClient(api_key="local", url=server.url, **options) as client:
            yield client
