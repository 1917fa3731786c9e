"""Interruption: when the user talks over the model, stop the response and make the
conversation hold only the audio that was actually played.

The app reports playback progress (:meth:`Playback.report`); an interruption cancels the
response in progress and truncates the assistant's audio item at what was played, clamped
to the audio received, or deletes the item when nothing was played (a truncate at 0 is
refused by the server). With server VAD, ``input_audio_buffer.speech_started`` interrupts
automatically once the app has reported playback of the item being spoken.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any, Protocol

from attrs import frozen

from ._conversation import ConversationState, Item
from ._server_events import SessionEvent, SpeechStartedEvent

__all__ = ["Interruption", "Playback"]

_AUDIO_PARTS = frozenset({"output_audio", "audio"})


class _Sender(Protocol):
    def send(self, event: Mapping[str, Any]) -> str: ...


class _Responses(Protocol):
    def in_progress(self) -> bool: ...


@frozen
class Interruption:
    """What :meth:`~realtime_sync.RealtimeClient.interrupt` did."""

    item_id: str | None
    """The assistant audio item it cut, or None when there was none."""
    played_ms: int
    """Where it was cut: what was played, clamped to the audio received."""
    action: str
    """``truncated``, ``deleted`` or ``none``."""
    cancelled: bool
    """Whether a response in progress was cancelled."""


class Playback:
    """Playback progress the app reports, and interruptions that act on it."""

    def __init__(
        self,
        sender: _Sender,
        state: ConversationState,
        responses: _Responses,
        *,
        automatic: bool = True,
    ) -> None:
        self._sender = sender
        self._state = state
        self._responses = responses
        self._automatic = automatic
        self._lock = threading.Lock()
        self._played: dict[str, float] = {}  # item id -> ms played, as reported
        self._bytes_per_ms = 48.0  # PCM16 at 24 kHz until the session says otherwise

    def report(self, played_ms: float, *, item_id: str | None = None) -> None:
        """The app has played ``played_ms`` of the assistant audio item ``item_id`` (by
        default the latest one)."""
        item = self._state.get(item_id) if item_id else self._latest_audio_item()
        if item is not None:
            with self._lock:
                self._played[item.id] = max(0.0, float(played_ms))

    def interrupt(
        self, played_ms: float | None = None, *, item_id: str | None = None
    ) -> Interruption:
        """Cancel the response in progress and cut its audio at what was played.

        ``played_ms`` defaults to the last :meth:`report` for the item (0 when none).
        """
        cancelled = False
        if self._responses.in_progress():
            self._sender.send({"type": "response.cancel"})
            cancelled = True
        item = self._state.get(item_id) if item_id else self._latest_audio_item()
        if item is None:
            return Interruption(None, 0, "none", cancelled)
        with self._lock:
            reported = self._played.pop(item.id, 0.0)
        received_ms = int(len(item.audio) / self._bytes_per_ms)
        wanted = reported if played_ms is None else max(0.0, float(played_ms))
        played = int(min(wanted, received_ms)) if item.audio else int(wanted)
        if played <= 0:
            self._sender.send({"type": "conversation.item.delete", "item_id": item.id})
            return Interruption(item.id, 0, "deleted", cancelled)
        self._sender.send(
            {
                "type": "conversation.item.truncate",
                "item_id": item.id,
                "content_index": _audio_part_index(item) or 0,
                "audio_end_ms": played,
            }
        )
        return Interruption(item.id, played, "truncated", cancelled)

    # --- the dispatcher thread --------------------------------------------------------------

    def receive(self, event: Any) -> Any:
        """React to the user starting to speak; track the output audio's byte rate."""
        kind = type(event)
        if kind is SpeechStartedEvent and self._automatic:
            item = self._latest_audio_item()
            with self._lock:
                reported = item is not None and item.id in self._played
            if reported:
                self.interrupt()
        elif kind is SessionEvent:
            rate, width = self._state.output_audio_shape
            self._bytes_per_ms = rate * width / 1000
        return event

    def _latest_audio_item(self) -> Item | None:
        for item in reversed(self._state.items):
            if item.role == "assistant" and (item.audio or _audio_part_index(item) is not None):
                return item
        return None


def _audio_part_index(item: Item) -> int | None:
    """Where the item's audio part is, as the server described the item."""
    content = item.item.content if item.item is not None else None
    for index, part in enumerate(content or ()):
        if part.type in _AUDIO_PARTS:
            return index
    return None
