"""Shared fixtures: a local Realtime server per test and clients that always get closed."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from realtime_sync import RealtimeClient, RealtimeTranslationClient
from realtime_sync.testing import LocalRealtimeServer

# pytester runs user test files against realtime_sync's pytest plugin (test_pytest_plugin).
pytest_plugins = ["pytester"]

# Real protocol material, kept in the repository (sources and licences: conformance/README.md).
CONFORMANCE = Path(__file__).resolve().parent / "conformance"

# Deliberately not shaped like a real OpenAI key, so no scanner mistakes it for one.
KEY = "rs-test-key-7f3c9a1e5b2d4086"


@pytest.fixture
def server() -> Iterator[LocalRealtimeServer]:
    with LocalRealtimeServer(api_key=KEY) as local:
        yield local


@pytest.fixture
def make_client(server: LocalRealtimeServer) -> Iterator[Callable[..., RealtimeClient]]:
    """Build clients aimed at the test's server; every one is closed after the test."""
    clients: list[RealtimeClient] = []

    def make(**options: Any) -> RealtimeClient:
        options.setdefault("api_key", KEY)
        options.setdefault("url", server.url)
        client = RealtimeClient(**options)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close(timeout=5)


@pytest.fixture
def make_translator(
    server: LocalRealtimeServer,
) -> Iterator[Callable[..., RealtimeTranslationClient]]:
    """Build translation clients aimed at the test's server; every one is closed after."""
    clients: list[RealtimeTranslationClient] = []

    def make(**options: Any) -> RealtimeTranslationClient:
        options.setdefault("url", server.url + "/translations")
        client = RealtimeTranslationClient(options.pop("api_key", KEY), **options)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close(timeout=5)


def client_threads() -> list[threading.Thread]:
    """Threads a client starts: its socket and dispatcher threads, websocket-client's pinger
    (not the process's timer thread, which outlives no timer and serves every client)."""
    return [
        thread
        for thread in threading.enumerate()
        if (
            thread.name.startswith("realtime_sync-")
            and "local-server" not in thread.name
            and thread.name != "realtime_sync-clock"
        )
        or "_send_ping" in thread.name
    ]


def user_message(text: str) -> dict[str, Any]:
    """A conversation.item.create event carrying one user text message."""
    return {
        "type": "conversation.item.create",
        "item": {
            "type": "message",
            "role": "user",
            "content": [{"type": "input_text", "text": text}],
        },
    }
