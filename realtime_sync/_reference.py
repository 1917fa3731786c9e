"""The event reference, written from the code: every event type of both dialects with the
class that represents it and what that class says of itself.

``python -m realtime_sync events --markdown`` prints it; the README holds a copy that a test
keeps equal to it, so the reference cannot drift from the code.
"""

from __future__ import annotations

import attrs

from . import _client_events, _local_events
from ._dialects import (
    BETA_CLIENT_EVENTS,
    BETA_SERVER_EVENTS,
    BETA_TO_GA,
    CLIENT_SIDE_EVENTS,
    GA_CLIENT_EVENTS,
    GA_SERVER_EVENTS,
)
from ._server_events import _EVENT_CLASSES

__all__ = ["events_markdown"]


def _summary(cls: type) -> str:
    """The first sentence of a class's docstring, without the event type it may start with."""
    text = " ".join((cls.__doc__ or "").split())
    if text.startswith("``"):
        text = text.split(": ", 1)[-1] if ": " in text else text
    first = text.split(". ", 1)[0].rstrip(".")
    return (first[:1].upper() + first[1:]).replace("|", "\\|")


def _dialects(name: str, ga: frozenset[str], beta: frozenset[str]) -> str:
    both = [label for label, names in (("GA", ga), ("beta", beta)) if name in names]
    renamed = BETA_TO_GA.get(name) if name not in ga else None
    return " ".join(both) + (f" (GA: `{renamed}`)" if renamed else "")


def _client_event_classes() -> dict[str, type]:
    found: dict[str, type] = {}
    for value in vars(_client_events).values():
        name = getattr(value, "TYPE", None)
        if isinstance(value, type) and isinstance(name, str):
            found[name] = value
    return found


def _local_event_classes() -> dict[str, type]:
    found: dict[str, type] = {}
    for value in vars(_local_events).values():
        if isinstance(value, type) and attrs.has(value) and "type" in attrs.fields_dict(value):
            default = attrs.fields_dict(value)["type"].default
            if isinstance(default, str):
                found[default] = value
    return found


def _table(rows: list[tuple[str, str, str]], header: str) -> list[str]:
    lines = [f"| {header} | dialects | class: what it carries |", "|---|---|---|"]
    lines += [f"| `{name}` | {where} | {what} |" for name, where, what in rows]
    return lines


def events_markdown() -> str:
    """The reference as Markdown: server events, the client's own events, client events."""
    server = sorted(GA_SERVER_EVENTS | BETA_SERVER_EVENTS)
    client_classes = _client_event_classes()
    local_classes = _local_event_classes()
    server_rows = [
        (
            name,
            _dialects(name, GA_SERVER_EVENTS, BETA_SERVER_EVENTS),
            f"`{_EVENT_CLASSES[name].__name__}`: {_summary(_EVENT_CLASSES[name])}",
        )
        for name in server
    ]
    local_rows = [
        (name, "both", f"`{local_classes[name].__name__}`: {_summary(local_classes[name])}")
        for name in sorted(CLIENT_SIDE_EVENTS)
    ]
    client_rows = [
        (
            name,
            _dialects(name, GA_CLIENT_EVENTS, BETA_CLIENT_EVENTS),
            f"`{client_classes[name].__name__}`: {_summary(client_classes[name])}"
            if name in client_classes
            else "sent as a mapping",
        )
        for name in sorted(GA_CLIENT_EVENTS | BETA_CLIENT_EVENTS)
    ]
    parts = [
        "Server events (handlers get the typed class; `ev.raw` holds the JSON):",
        "",
        *_table(server_rows, "server event"),
        "",
        "Events the client dispatches itself:",
        "",
        *_table(local_rows, "client event"),
        "",
        "Client events (typed senders: `client.session.update(...)`, "
        "`client.input_audio_buffer.append(...)`, ...):",
        "",
        *_table(client_rows, "client event"),
    ]
    return "\n".join(parts) + "\n"
