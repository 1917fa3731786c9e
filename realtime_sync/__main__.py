"""Command line: ``python -m realtime_sync demo`` runs one real text session.

With ``OPENAI_API_KEY`` set it talks to OpenAI; without it (or with ``--local``) it starts
the built-in local Realtime server on 127.0.0.1 and talks to that.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time
from collections.abc import Iterator, Sequence
from typing import Any

from ._client import RealtimeClient
from ._errors import RealtimeError


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m realtime_sync", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser("demo", help="run one text session and print the answer")
    demo.add_argument("--prompt", default="Say hello to a new user of realtime_sync.")
    demo.add_argument("--model", default=None, help="model (default: a current GA model)")
    demo.add_argument(
        "--local", action="store_true", help="use the local server even if OPENAI_API_KEY is set"
    )
    demo.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for the answer")
    args = parser.parse_args(argv)
    try:
        with _endpoint(local=args.local or not os.environ.get("OPENAI_API_KEY")) as options:
            return _demo(args.prompt, args.model, args.timeout, options)
    except RealtimeError as exc:
        print(f"\nerror: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1


@contextlib.contextmanager
def _endpoint(*, local: bool) -> Iterator[dict[str, Any]]:
    """Client keyword arguments for OpenAI, or for a local server started for the demo."""
    if not local:
        print("OPENAI_API_KEY is set: talking to OpenAI")
        yield {}
        return
    try:
        from .testing import LocalRealtimeServer
    except ImportError as exc:
        raise SystemExit(f"the local server needs an extra: {exc}") from None
    with LocalRealtimeServer() as server:
        print(f"no OPENAI_API_KEY: talking to the built-in local server at {server.url}")
        yield {"api_key": "local-demo-key", "url": server.url}


def _demo(prompt: str, model: str | None, timeout: float, options: dict[str, Any]) -> int:
    client = RealtimeClient(model=model, **options)
    client.on("session.created", lambda ev: print(f"session {ev.session.id} ({ev.session.model})"))
    client.on("response.output_text.delta", lambda ev: print(ev.delta, end="", flush=True))
    client.on("error", lambda ev: print(f"\nserver error: {ev.error.code}: {ev.error.message}"))
    started = time.monotonic()
    with client:
        client.session.update(session={"output_modalities": ["text"]})
        client.conversation.item.create(
            item={
                "type": "message",
                "role": "user",
                "content": [{"type": "input_text", "text": prompt}],
            }
        )
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


if __name__ == "__main__":
    sys.exit(main())
