"""A terminal chat over the Realtime API, in plain blocking Python.

    python examples/text_chat.py            # OPENAI_API_KEY from the environment
    python examples/text_chat.py --local    # against the built-in local server

Each line you type becomes a user message; the answer streams back as it is generated.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Iterator
from typing import Any

from realtime_sync import RealtimeClient, RealtimeError


@contextlib.contextmanager
def client_options(local: bool) -> Iterator[dict[str, Any]]:
    if not local:
        yield {}
        return
    from realtime_sync.testing import LocalRealtimeServer

    with LocalRealtimeServer() as server:
        yield {"api_key": "local", "url": server.url}


def chat(client: RealtimeClient) -> None:
    client.on("response.output_text.delta", lambda ev: print(ev.delta, end="", flush=True))
    client.on("error", lambda ev: print(f"\n[server error] {ev.error.message}"))
    with client:
        client.send(
            {
                "type": "session.update",
                "session": {"type": "realtime", "output_modalities": ["text"]},
            }
        )
        for line in sys.stdin:
            text = line.strip()
            if not text:
                continue
            client.send(
                {
                    "type": "conversation.item.create",
                    "item": {
                        "type": "message",
                        "role": "user",
                        "content": [{"type": "input_text", "text": text}],
                    },
                }
            )
            done = client.expect("response.done")
            client.send({"type": "response.create"})
            print("assistant: ", end="", flush=True)
            done.wait(timeout=60)
            print()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--local", action="store_true", help="use the built-in local server")
    args = parser.parse_args()
    try:
        with client_options(args.local) as options:
            chat(RealtimeClient(**options))
    except RealtimeError as exc:
        print(f"{type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
