"""How to test your own Realtime code without the network: run with `pytest examples/`.

The local server speaks the protocol over a real socket, so the code under test runs
exactly as it would against OpenAI, and the server records what it was sent.
"""

from __future__ import annotations

import pytest

from realtime_sync import AuthenticationError, RateLimitError, RealtimeClient
from realtime_sync.testing import LocalRealtimeServer


def summarise(client: RealtimeClient, text: str) -> str:
    """The code under test: ask for a summary and return the streamed answer."""
    pieces: list[str] = []
    client.on("response.output_text.delta", lambda ev: pieces.append(ev.delta))
    done = client.expect("response.done")  # before sending: no answer can slip past
    client.send(
        {
            "type": "conversation.item.create",
            "item": {
                "type": "message",
                "role": "user",
                "content": [{"type": "input_text", "text": f"Summarise: {text}"}],
            },
        }
    )
    client.send({"type": "response.create"})
    done.wait(timeout=10)
    return "".join(pieces)


def test_summarise_streams_the_whole_answer() -> None:
    with LocalRealtimeServer(reply="A short summary.") as server:
        with RealtimeClient(api_key="test", url=server.url) as client:
            assert summarise(client, "a long text") == "A short summary."
        sent = [event["type"] for event in server.received]
        assert sent == ["conversation.item.create", "response.create"]


def test_a_wrong_key_is_reported() -> None:
    with LocalRealtimeServer(api_key="the-right-key") as server:
        client = RealtimeClient(api_key="a-wrong-key", url=server.url)
        with pytest.raises(AuthenticationError):
            client.connect(timeout=5)


def test_rate_limiting_is_reported_with_retry_after() -> None:
    with LocalRealtimeServer() as server:
        server.reject_handshake(429, headers={"Retry-After": "3"})
        with pytest.raises(RateLimitError) as caught:
            RealtimeClient(api_key="test", url=server.url).connect(timeout=5)
        assert caught.value.retry_after == 3
