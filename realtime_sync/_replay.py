"""State replay: the client events that bring a new server session to where the old one
was. Pure functions, no I/O.

A Realtime session cannot be resumed: a new connection is a new, empty session. What the
client knows of the old one is the session configuration it sent and the conversation as
:class:`~realtime_sync._conversation.ConversationState` kept it; both are sent again, the
items with their old ids so that references to them (``previous_item_id``, truncation,
deletion) keep working. An item the protocol does not let a client create as it was is
sent in a form it does allow (the model's audio as its transcript), or reported as not
replayed with the reason.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from attrs import frozen

from ._conversation import Item

__all__ = ["NotReplayed", "ReplayReport", "merge_session", "replay_events"]


@frozen
class NotReplayed:
    """An item of the old session that the new one does not have."""

    item_id: str
    """The item's id."""
    reason: str
    """Why it could not be created again."""


@frozen
class ReplayReport:
    """What a reconnect or rollover carried over into the new session."""

    replayed: tuple[str, ...] = ()
    """Ids of the items created again in the new session, in conversation order."""
    not_replayed: tuple[NotReplayed, ...] = ()
    """Items that could not be, with the reason (also gone from ``client.conversation``)."""
    session_updated: bool = False
    """Whether the session configuration you had sent was sent again."""
    sent: int = 0
    """Events you sent while disconnected that went out after the replay, in order."""
    dropped_audio_ms: float = 0.0
    """Audio appended while disconnected that was dropped (``gap_audio`` policy), in ms."""
    dropped: int = 0
    """How many ``input_audio_buffer.append`` events that audio was."""

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe data."""
        return {
            "replayed": list(self.replayed),
            "not_replayed": [
                {"item_id": skip.item_id, "reason": skip.reason} for skip in self.not_replayed
            ],
            "session_updated": self.session_updated,
            "sent": self.sent,
            "dropped_audio_ms": self.dropped_audio_ms,
            "dropped": self.dropped,
        }


def merge_session(config: Mapping[str, Any], update: Mapping[str, Any]) -> dict[str, Any]:
    """``config`` with a ``session.update``'s ``session`` applied: nested objects merge,
    anything else (lists such as ``tools`` included) is replaced, as the server applies it."""
    merged = dict(config)
    for key, value in update.items():
        old = merged.get(key)
        if isinstance(old, Mapping) and isinstance(value, Mapping):
            merged[key] = merge_session(old, value)
        else:
            merged[key] = value
    return merged


def replay_events(
    items: Iterable[Item], dialect: str, *, session_type: str | None = None
) -> tuple[list[dict[str, Any]], list[NotReplayed]]:
    """The ``conversation.item.create`` events that recreate ``items`` in order, and the
    items that cannot be recreated (all of them in a ``"transcription"`` session: its
    items are input transcripts, and it has no conversation to recreate them in)."""
    if session_type == "transcription":
        reason = "a transcription session has no conversation to recreate it in"
        return [], [NotReplayed(item.id, reason) for item in items]
    events: list[dict[str, Any]] = []
    skipped: list[NotReplayed] = []
    calls: set[str] = set()  # call ids of replayed function calls
    for item in items:
        created = _recreated(item, dialect, calls)
        if isinstance(created, str):
            skipped.append(NotReplayed(item.id, created))
            continue
        if item.type == "function_call" and item.call_id:
            calls.add(item.call_id)
        events.append({"type": "conversation.item.create", "item": {"id": item.id, **created}})
    return events, skipped


def _recreated(item: Item, dialect: str, calls: set[str]) -> dict[str, Any] | str:
    """The item as a client may create it, or why it cannot be."""
    if item.type == "message":
        if item.role in ("user", "system"):
            text = item.text or item.transcript
            if not text:
                return f"a {item.role} message with neither text nor a transcript of its audio"
            return _message(item.role, "input_text", text)
        if item.role == "assistant":
            text = item.text or item.transcript
            if not text:
                return "an assistant message with neither text nor a transcript of its audio"
            return _message("assistant", "output_text" if dialect == "ga" else "text", text)
        return f"a message with role {item.role!r}"
    if item.type == "function_call":
        if item.status != "completed" or not item.call_id or not item.name:
            return "a function call cut off before its arguments were complete"
        if item.arguments is not None and not isinstance(item.arguments, str):
            return "a function call whose arguments are not text"
        return {
            "type": "function_call",
            "call_id": item.call_id,
            "name": item.name,
            "arguments": item.arguments or "{}",
        }
    if item.type == "function_call_output":
        if item.call_id not in calls:
            return "the output of a function call that was not replayed"
        if item.output is not None and not isinstance(item.output, str):
            return "a function call output that is not text"
        return {
            "type": "function_call_output",
            "call_id": item.call_id,
            "output": item.output or "",
        }
    return f"{item.type or 'an unannounced'} item, which clients cannot create"


def _message(role: str, part: str, text: str) -> dict[str, Any]:
    return {"type": "message", "role": role, "content": [{"type": part, "text": text}]}
