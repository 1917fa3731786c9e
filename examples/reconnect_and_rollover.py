"""A session that outlives its connection: a dropped network and an expired session.

    python examples/reconnect_and_rollover.py

Phone bridges and kiosks run for hours; connections drop and OpenAI ends every session
after 60 minutes (Azure: 30). The client carries on by itself: it reconnects (or rolls the
session over), brings the new server session back to where the old one was (your session
settings, then the conversation's items), and sends what you asked for meanwhile. Your code
sees events, not a dead client.

To show both on demand it always runs against the built-in local server, whose fault
controls cut the connection (drop_connections) and end the session as OpenAI does at its
time limit (expire_sessions). Against OpenAI the same handlers are all you write.
"""

from __future__ import annotations

import argparse
import sys

from realtime_sync import RealtimeClient, RealtimeError, ReconnectPolicy
from realtime_sync.testing import LocalRealtimeServer


def show_server_conversation(server: LocalRealtimeServer) -> None:
    """What the server's current session holds: the conversation carried over."""
    for item in server.connections[-1].items:
        texts = [part.get("text") or part.get("transcript") for part in item["content"]]
        print(f"    {item['role']}: {' '.join(t for t in texts if t)}")


def say(client: RealtimeClient, text: str) -> None:
    print(f"you: {text}")
    print(f"assistant: {client.send_text(text, timeout=30).text}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--local", action="store_true", help="(always local: see above)")
    parser.parse_args()
    # Short waits between attempts, for the demo; the defaults suit real networks.
    policy = ReconnectPolicy(max_attempts=None, initial_delay=0.2, max_delay=2.0)
    try:
        with LocalRealtimeServer() as server:
            client = RealtimeClient(api_key="local", url=server.url, reconnect=policy)
            client.on(
                "client.reconnecting",
                lambda ev: print(
                    f"  [reconnecting: {type(ev.cause).__name__}, attempt {ev.attempt}]"
                ),
            )
            client.on(
                "client.reconnected",
                lambda ev: print(f"  [reconnected; {len(ev.report.replayed)} items replayed]"),
            )
            client.on(
                "client.session_rolled_over",
                lambda ev: print(
                    f"  [session rolled over ({ev.reason}): {ev.previous_session_id} -> "
                    f"{ev.session.id}; {len(ev.report.replayed)} items replayed]"
                ),
            )
            with client:
                print(f"session {client.session.id}")
                say(client, "My name is Ada.")

                print("-- the network drops --")
                back = client.expect("client.reconnected")  # before the fault: none slips past
                server.drop_connections()
                back.wait(timeout=30)
                say(client, "Do you remember me?")

                print("-- the session reaches its time limit --")
                rolled = client.expect("client.session_rolled_over")
                server.expire_sessions()
                rolled.wait(timeout=30)
                say(client, "Still there?")

                print(f"session {client.session.id} now holds the whole conversation:")
                show_server_conversation(server)
    except RealtimeError as exc:
        print(f"{type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
