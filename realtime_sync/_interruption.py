"""Interruption: when the user talks over the model, stop the response and make the
conversation hold only the audio that was actually played.

The app reports playback progress (:meth:`Playback.report`); an interruption cancels the
response in progress and truncates the assistant's audio item at what was played, clamped
to the audio received, or deletes the item when nothing was played (a truncate at 0 is
refused by the server). With server VAD, ``input_audio_buffer.speech_started`` interrupts
automatically once the app has reported playback of the item being spoken.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Mapping
from typing import Any, Protocol

from attrs import frozen

from ._conversation import ConversationState
from ._server_events import SessionEvent, SpeechStartedEvent
from ._session_objects import Session

__all__ = ["Interruption", "Playback"]


class _Sender(Protocol):
    def send(self, event: Mapping[str, Any]) -> str: ...


class _Responses(Protocol):
    def current(self) -> str | None: ...


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
        self._cut: set[str] = set()  # items already truncated or deleted here
        self._cancelled: str | None = None  # the response a cancel was sent for
        # Whether speech cancels the response on the server itself (turn detection's
        # interrupt_response, true unless the session says false).
        self._server_interrupts = True

    def report(self, played_ms: float, *, item_id: str | None = None) -> None:
        """The app has played ``played_ms`` of the assistant audio item ``item_id`` (by
        default the latest one)."""
        played = float(played_ms)
        if math.isnan(played):
            raise ValueError("played_ms must be a number of milliseconds, not NaN")
        found = self._state.assistant_audio(item_id)
        if found is not None:
            with self._lock:
                self._played[found[0]] = max(0.0, played)

    def interrupt(
        self, played_ms: float | None = None, *, item_id: str | None = None
    ) -> Interruption:
        """Cancel the response in progress and cut its audio at what was played.

        ``played_ms`` defaults to the last :meth:`report` for the item (0 when none).
        """
        return self._interrupt(played_ms, item_id, send_cancel=True)

    def _interrupt(
        self, played_ms: float | None, item_id: str | None, *, send_cancel: bool
    ) -> Interruption:
        current = self._responses.current()
        with self._lock:  # the automatic and a manual interrupt may meet here
            cancelled = current is not None and current != self._cancelled
            if cancelled:
                self._cancelled = current
        if cancelled and send_cancel:
            self._sender.send({"type": "response.cancel", "response_id": current})
        found = self._state.assistant_audio(item_id)
        if found is None:
            return Interruption(None, 0, "none", cancelled)
        found_id, part_index, received_ms = found
        with self._lock:
            reported = self._played.pop(found_id, 0.0)
            if found_id in self._cut:  # cut already: a second cut would be refused
                return Interruption(found_id, 0, "none", cancelled)
            self._cut.add(found_id)
        wanted = reported if played_ms is None else float(played_ms)
        played = int(min(max(0.0, wanted), received_ms)) if not math.isnan(wanted) else 0
        if played <= 0:
            self._sender.send({"type": "conversation.item.delete", "item_id": found_id})
            return Interruption(found_id, 0, "deleted", cancelled)
        self._sender.send(
            {
                "type": "conversation.item.truncate",
                "item_id": found_id,
                "content_index": part_index,
                "audio_end_ms": played,
            }
        )
        return Interruption(found_id, played, "truncated", cancelled)

    # --- the dispatcher thread --------------------------------------------------------------

    def receive(self, event: Any) -> Any:
        """The user started speaking: interrupt if the model's audio is still playing. A new
        session starts with nothing played."""
        if type(event) is SessionEvent:
            self._server_interrupts = _server_interrupts(event.session)
            if event.type == "session.created":
                with self._lock:
                    self._played.clear()
                    self._cut.clear()
                    self._cancelled = None
        elif type(event) is SpeechStartedEvent and self._automatic:
            found = self._state.assistant_audio()
            if found is not None:
                with self._lock:
                    reported = self._played.get(found[0])
                # Playing means reported and behind what arrived (1 ms of slack); audio
                # heard to the end is left alone.
                if reported is not None and reported < found[2] - 1:
                    # A cancel of our own would meet a response the server has cancelled
                    # already and get an error event back.
                    self._interrupt(None, None, send_cancel=not self._server_interrupts)
        return event


def _server_interrupts(session: Session | None) -> bool:
    """Whether the session's turn detection cancels a response when speech starts: its
    ``interrupt_response`` (GA ``audio.input.turn_detection``, beta ``turn_detection``),
    true when not given."""
    if session is None:
        return True
    audio = session.audio
    detection = audio.input.turn_detection if audio and audio.input else None
    detection = detection or session.turn_detection
    return detection is None or detection.interrupt_response is not False
