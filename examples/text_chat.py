"""A terminal chat over the Realtime API, in plain blocking Python.

    python examples/text_chat.py            # OpenAI when OPENAI_API_KEY is set
    python examples/text_chat.py --local    # the built-in local server

Each line you type becomes a user message; the answer streams back as it is generated.
"""

from __future__ import annotations

import argparse
import sys

from _connect import realtime_client

from realtime_sync import RealtimeError


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--local", action="store_true", help="use the built-in local server")
    args = parser.parse_args()
    try:
        with realtime_client(args.local) as client:
            client.session.update(session={"output_modalities": ["text"]})
            for line in sys.stdin:
                if not line.strip():
                    continue
                client.conversation.item.create(
                    item={
                        "type": "message",
                        "role": "user",
                        "content": [{"type": "input_text", "text": line.strip()}],
                    }
                )
                print("assistant: ", end="", flush=True)
                handle = client.create_response()
                for delta in handle.text_stream(timeout=60):
                    print(delta, end="", flush=True)
                print(f"  [{handle.wait(timeout=60).usage.total_tokens} tokens]")
    except RealtimeError as exc:
        print(f"{type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
