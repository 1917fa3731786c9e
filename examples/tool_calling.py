"""Tool calling in blocking code: register a function, ask, get the answer.

    python examples/tool_calling.py --local

The model's calls run on threads of their own; their results go back to the model, and
send_text() returns once the model has answered with them.
"""

from __future__ import annotations

import argparse
import sys

from _connect import realtime_client

from realtime_sync import RealtimeError


def get_weather(city: str, unit: str = "c") -> dict[str, object]:
    """The current weather in a city.

    Args:
        city: The city, e.g. "Paris".
        unit: "c" or "f".
    """
    return {"city": city, "temperature": 21 if unit == "c" else 70, "unit": unit}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--local", action="store_true", help="use the built-in local server")
    args = parser.parse_args()
    try:
        with realtime_client(args.local) as client:
            client.add_tool(get_weather)
            # The local server calls a tool when asked "call <name> <json>"; a real model
            # decides by itself.
            question = "What's the weather in Paris?"
            if client.url.startswith("ws://127.0.0.1"):
                question = 'call get_weather {"city": "Paris"}'
            reply = client.send_text(question, timeout=60)
            print(f"you: {question}\nassistant: {reply.text}")
    except RealtimeError as exc:
        print(f"{type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
