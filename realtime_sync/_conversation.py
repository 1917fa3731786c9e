"""Conversation state: the items of the session's conversation, in server order, kept up to
date from events (a reducer of the dispatcher; pure, no I/O).

Text, transcripts, audio and function-call arguments are accumulated from deltas; input
transcripts that arrive after the assistant's reply are attached to their item by
``item_id``; truncated and deleted items are handled; both dialects' event names. Memory
is bounded on request: audio can be dropped, and only the last N items kept.
"""

from __future__ import annotations

import base64
import threading
from collections import deque
from collections.abc import Callable
from typing import Any

from attrs import define, field, frozen

from . import audio
from ._local_events import ConversationUpdatedEvent, ItemCompletedEvent
from ._objects import ConversationItem, RateLimit, Session, Usage
from ._server_events import (
    AudioDeltaEvent,
    ContentPartEvent,
    ConversationItemDeletedEvent,
    ConversationItemEvent,
    ConversationItemTruncatedEvent,
    FunctionCallArgumentsDeltaEvent,
    FunctionCallArgumentsDoneEvent,
    InputAudioTranscriptionCompletedEvent,
    InputAudioTranscriptionDeltaEvent,
    OutputItemEvent,
    RateLimitsUpdatedEvent,
    ResponseEvent,
    SessionEvent,
    TextDeltaEvent,
    TextDoneEvent,
    TranscriptDeltaEvent,
    TranscriptDoneEvent,
)

__all__ = ["ConversationState", "Item", "UsageTotals", "output_audio_format"]

_TEXT_PARTS = frozenset({"input_text", "output_text", "text"})
_AUDIO_PARTS = frozenset({"output_audio", "audio"})
_GONE_REMEMBERED = 1024
_CREATIONS = frozenset({"conversation.item.added", "conversation.item.created"})


@frozen
class Item:
    """One item of the conversation as the client knows it now (a snapshot)."""

    id: str
    """The item id."""
    type: str | None
    """``message``, ``function_call``, ``function_call_output``..."""
    role: str | None
    """``user``, ``assistant`` or ``system`` for messages."""
    status: str | None
    """``in_progress``, ``completed`` or ``incomplete``."""
    text: str
    """The item's text: its text parts, joined."""
    transcript: str
    """The transcript of its audio: the model's speech, or the user's input transcribed."""
    audio: bytes = field(repr=lambda audio: f"<{len(audio)} bytes>")
    """The model's audio for this item as received (``b""`` when audio is not kept)."""
    call_id: str | None
    """Function calls and their outputs: the call's id."""
    name: str | None
    """Function calls: the function's name."""
    arguments: str | None
    """Function calls: the JSON arguments (accumulated as they stream)."""
    output: str | None
    """Function call outputs: what the function returned."""
    truncated_ms: int | None
    """When the item's audio was truncated: where, in ms."""
    item: ConversationItem | None = field(repr=False)
    """The item as the server last described it."""

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe data: the fields, audio as its length in bytes."""
        return {
            "id": self.id,
            "type": self.type,
            "role": self.role,
            "status": self.status,
            "text": self.text,
            "transcript": self.transcript,
            "audio_bytes": len(self.audio),
            "call_id": self.call_id,
            "name": self.name,
            "arguments": self.arguments,
            "output": self.output,
            "truncated_ms": self.truncated_ms,
        }


@define
class _Part:
    type: str | None = None
    text: list[str] = field(factory=list)
    transcript: list[str] = field(factory=list)
    # The audio as it came, base64, decoded only when someone looks: decoding costs more
    # than all the rest of an audio delta's handling, and most audio is never looked at.
    encoded: list[str] = field(factory=list)
    decoded: bytes = b""
    audio_bytes: int = 0  # counted even when the audio itself is not kept

    def audio(self) -> bytes:
        """The part's audio, decoding what arrived since the last look."""
        if self.encoded:
            self.decoded += b"".join(map(_decoded, self.encoded))
            self.encoded.clear()
        return self.decoded


def _decoded(encoded: str) -> bytes:
    try:
        return base64.b64decode(encoded)
    except (ValueError, TypeError):  # a server's garbage must not break every later look
        return b""


@define
class _Entry:
    id: str
    item: ConversationItem | None = None
    parts: list[_Part] = field(factory=list)
    arguments: list[str] = field(factory=list)
    truncated_ms: int | None = None

    def part(self, index: int | None) -> _Part:
        index = index or 0
        while len(self.parts) <= index:
            self.parts.append(_Part())
        return self.parts[index]

    def adopt(self, item: ConversationItem) -> None:
        """Take the server's description of the item; keep what deltas brought."""
        self.item = item
        # Only text is kept: a server's odd value (a number, an object) must not break
        # every later snapshot.
        for index, part in enumerate(item.content or ()):
            mine = self.part(index)
            mine.type = part.type or mine.type
            if isinstance(part.text, str) and part.text and not mine.text:
                mine.text.append(part.text)
            if isinstance(part.transcript, str) and part.transcript and not mine.transcript:
                mine.transcript.append(part.transcript)
        if isinstance(item.arguments, str) and item.arguments and not self.arguments:
            self.arguments.append(item.arguments)

    def snapshot(self) -> Item:
        item = self.item
        return Item(
            id=self.id,
            type=item.type if item else None,
            role=item.role if item else None,
            status=item.status if item else None,
            text="".join(t for p in self.parts if p.type in _TEXT_PARTS for t in p.text),
            transcript="".join(t for p in self.parts for t in p.transcript),
            audio=b"".join(p.audio() for p in self.parts),
            call_id=item.call_id if item else None,
            name=item.name if item else None,
            arguments="".join(self.arguments) if self.arguments else None,
            output=item.output if item else None,
            truncated_ms=self.truncated_ms,
            item=item,
        )


@frozen
class UsageTotals:
    """Token totals of the session, summed over every ``response.done``."""

    responses: int = 0
    """How many responses were counted."""
    input_tokens: int = 0
    output_tokens: int = 0
    total_tokens: int = 0
    input_text_tokens: int = 0
    input_audio_tokens: int = 0
    input_cached_tokens: int = 0
    output_text_tokens: int = 0
    output_audio_tokens: int = 0

    def plus(self, usage: Usage) -> UsageTotals:
        """These totals with one more response's usage."""
        inputs, outputs = usage.input_token_details, usage.output_token_details
        return UsageTotals(
            responses=self.responses + 1,
            input_tokens=self.input_tokens + (usage.input_tokens or 0),
            output_tokens=self.output_tokens + (usage.output_tokens or 0),
            total_tokens=self.total_tokens + (usage.total_tokens or 0),
            input_text_tokens=self.input_text_tokens + ((inputs and inputs.text_tokens) or 0),
            input_audio_tokens=self.input_audio_tokens + ((inputs and inputs.audio_tokens) or 0),
            input_cached_tokens=self.input_cached_tokens + ((inputs and inputs.cached_tokens) or 0),
            output_text_tokens=self.output_text_tokens + ((outputs and outputs.text_tokens) or 0),
            output_audio_tokens=self.output_audio_tokens
            + ((outputs and outputs.audio_tokens) or 0),
        )


class ConversationState:
    """The conversation, usage totals and rate limits, updated from every event.

    ``keep_audio=False`` drops audio deltas (transcripts are kept); ``max_items`` keeps only
    the last N items. ``emit`` receives the client events this state makes:
    ``client.conversation.updated`` and ``client.conversation.item_completed``.
    """

    def __init__(
        self,
        *,
        dialect: str = "ga",
        keep_audio: bool = True,
        max_items: int | None = None,
        emit: Callable[[Any], None] = lambda event: None,
        listened: Callable[[str], bool] = lambda event_type: True,
    ) -> None:
        if max_items is not None and max_items < 1:
            raise ValueError("max_items must be at least 1, or None")
        self._dialect = dialect
        self._keep_audio = keep_audio
        self._max_items = max_items
        self._emit = emit
        self._listened = listened
        # Snapshots are read from user threads while the dispatcher updates.
        self._lock = threading.Lock()
        self._entries: dict[str, _Entry] = {}
        self._order: list[str] = []
        self._gone: set[str] = set()  # deleted or evicted ids, the latest few remembered
        self._gone_order: deque[str] = deque()
        self._audio_rate = 24000
        self._audio_width = 2
        self._carried: set[str] | None = None  # items the next session starts with
        self.usage = UsageTotals()
        """Token totals of the session so far."""
        self.rate_limits: tuple[RateLimit, ...] = ()
        """The rate limits from the latest ``rate_limits.updated``."""
        self._routes: dict[type, Callable[[Any], None]] = {
            ConversationItemEvent: self._on_item,
            OutputItemEvent: self._on_output_item,
            ContentPartEvent: self._on_part,
            TextDeltaEvent: self._on_text,
            TextDoneEvent: self._on_text_done,
            AudioDeltaEvent: self._on_audio,
            TranscriptDeltaEvent: self._on_transcript,
            TranscriptDoneEvent: self._on_transcript_done,
            InputAudioTranscriptionDeltaEvent: self._on_input_transcript,
            InputAudioTranscriptionCompletedEvent: self._on_input_transcript_done,
            FunctionCallArgumentsDeltaEvent: self._on_arguments,
            FunctionCallArgumentsDoneEvent: self._on_arguments_done,
            ConversationItemTruncatedEvent: self._on_truncated,
            ConversationItemDeletedEvent: self._on_deleted,
            ResponseEvent: self._on_response,
            RateLimitsUpdatedEvent: self._on_rate_limits,
            SessionEvent: self._on_session,
        }

    @property
    def items(self) -> tuple[Item, ...]:
        """The conversation's items, in server order (snapshots)."""
        with self._lock:
            return tuple(self._entries[item_id].snapshot() for item_id in self._order)

    def assistant_audio(self, item_id: str | None = None) -> tuple[str, int, float] | None:
        """``(item id, index of its audio part, ms of audio received)`` of ``item_id`` or,
        by default, the latest assistant item with audio; None when there is none. Cheap:
        no snapshot, no audio joined."""
        with self._lock:
            ids = [item_id] if item_id is not None else reversed(self._order)
            for candidate in ids:
                entry = self._entries.get(candidate)
                if entry is None or (entry.item is not None and entry.item.role != "assistant"):
                    continue
                for index, part in enumerate(entry.parts):
                    if part.type in _AUDIO_PARTS or part.audio_bytes:
                        rate, width = self._audio_rate, self._audio_width
                        return entry.id, index, part.audio_bytes / (rate * width / 1000)
        return None

    def get(self, item_id: str) -> Item | None:
        """One item by id, or None."""
        with self._lock:
            entry = self._entries.get(item_id)
            return None if entry is None else entry.snapshot()

    def carry_over(self, item_ids: set[str]) -> None:
        """The next ``session.created`` replaces a lost session, which the client brings
        back: keep these items (the server describes them again as they are replayed),
        forget the rest. On the dispatcher thread, before that event reaches this state."""
        with self._lock:
            self._carried = item_ids

    def receive(self, event: Any) -> Any:
        """Update from one event (the dispatcher's reducer); return it unchanged."""
        route = self._routes.get(type(event))
        if route is not None:
            with self._lock:
                route(event)
        return event

    # --- with the lock held, on the dispatcher thread -----------------------------------------

    def _entry(self, item_id: str | None) -> _Entry | None:
        if item_id is None or item_id in self._gone:
            return None  # deleted or evicted: a late event must not bring it back
        entry = self._entries.get(item_id)
        if entry is None:  # deltas before the item was announced: keep them all the same
            entry = self._entries[item_id] = _Entry(item_id)
            self._place(item_id, None)
        return entry

    def _place(self, item_id: str, previous_id: str | None) -> None:
        if item_id in self._order:
            self._order.remove(item_id)
        if previous_id is not None and previous_id in self._order:
            self._order.insert(self._order.index(previous_id) + 1, item_id)
        else:
            self._order.append(item_id)
        if self._max_items is not None:
            while len(self._order) > self._max_items:
                self._forget(self._order.pop(0))

    def _updated(self, entry: _Entry, kind: str, delta: str | None = None) -> None:
        if self._listened("client.conversation.updated"):
            self._emit(ConversationUpdatedEvent(item_id=entry.id, kind=kind, delta=delta))

    def _completed(self, entry: _Entry) -> None:
        if self._listened("client.conversation.item_completed"):
            self._emit(ItemCompletedEvent(item=entry.snapshot()))

    def _on_item(self, event: ConversationItemEvent) -> None:
        item = event.item
        if item.id is None:
            return
        if item.id in self._gone and event.type in _CREATIONS:  # the id is used anew
            self._gone.discard(item.id)
        known = item.id in self._entries
        entry = self._entry(item.id)
        assert entry is not None
        entry.adopt(item)
        if event.type != "conversation.item.retrieved" and (
            not known or event.previous_item_id is not None
        ):
            self._place(item.id, event.previous_item_id)
        self._updated(entry, "item")
        if event.type == "conversation.item.done" or (
            event.type == "conversation.item.created" and item.status == "completed"
        ):
            self._completed(entry)

    def _on_output_item(self, event: OutputItemEvent) -> None:
        entry = self._entry(event.item.id)
        if entry is None:
            return
        entry.adopt(event.item)
        # GA ends every item with conversation.item.done; beta has only output_item.done.
        if event.type == "response.output_item.done" and self._dialect == "beta":
            self._completed(entry)

    def _on_part(self, event: ContentPartEvent) -> None:
        entry = self._entry(event.item_id)
        if entry is not None:
            part = entry.part(event.content_index)
            part.type = event.part.type or part.type

    def _on_text(self, event: TextDeltaEvent) -> None:
        entry = self._entry(event.item_id)
        if entry is not None:
            part = entry.part(event.content_index)
            part.type = part.type or "output_text"
            part.text.append(event.delta)
            self._updated(entry, "text", event.delta)

    def _on_text_done(self, event: TextDoneEvent) -> None:
        entry = self._entry(event.item_id)
        if entry is not None:
            entry.part(event.content_index).text[:] = [event.text]

    def _on_audio(self, event: AudioDeltaEvent) -> None:
        entry = self._entry(event.item_id)
        if entry is not None:
            part = entry.part(event.content_index)
            part.type = part.type or "output_audio"
            delta = event.delta
            part.audio_bytes += decoded_size(delta)
            if self._keep_audio:
                part.encoded.append(delta)

    def _on_transcript(self, event: TranscriptDeltaEvent) -> None:
        entry = self._entry(event.item_id)
        if entry is not None:
            entry.part(event.content_index).transcript.append(event.delta)
            self._updated(entry, "transcript", event.delta)

    def _on_transcript_done(self, event: TranscriptDoneEvent) -> None:
        entry = self._entry(event.item_id)
        if entry is not None:
            entry.part(event.content_index).transcript[:] = [event.transcript]

    def _on_input_transcript(self, event: InputAudioTranscriptionDeltaEvent) -> None:
        entry = self._entry(event.item_id)
        if entry is not None and event.delta:
            entry.part(event.content_index).transcript.append(event.delta)
            self._updated(entry, "input_transcript", event.delta)

    def _on_input_transcript_done(self, event: InputAudioTranscriptionCompletedEvent) -> None:
        entry = self._entry(event.item_id)
        if entry is not None:
            entry.part(event.content_index).transcript[:] = [event.transcript]
            self._updated(entry, "input_transcript")

    def _on_arguments(self, event: FunctionCallArgumentsDeltaEvent) -> None:
        entry = self._entry(event.item_id)
        if entry is not None:
            entry.arguments.append(event.delta)
            self._updated(entry, "arguments", event.delta)

    def _on_arguments_done(self, event: FunctionCallArgumentsDoneEvent) -> None:
        entry = self._entry(event.item_id)
        if entry is not None:
            entry.arguments[:] = [event.arguments]

    def _on_truncated(self, event: ConversationItemTruncatedEvent) -> None:
        entry = self._entries.get(event.item_id or "")
        if entry is None or event.audio_end_ms is None:
            return
        entry.truncated_ms = event.audio_end_ms
        part = entry.part(event.content_index)
        keep = event.audio_end_ms * self._audio_rate // 1000 * self._audio_width
        part.decoded = part.audio()[:keep]
        part.audio_bytes = min(part.audio_bytes, keep)
        part.transcript.clear()  # the server drops the transcript of truncated audio
        self._updated(entry, "truncated")

    def _on_deleted(self, event: ConversationItemDeletedEvent) -> None:
        if event.item_id in self._entries:
            self._order.remove(event.item_id)
            self._forget(event.item_id)

    def _forget(self, item_id: str) -> None:
        del self._entries[item_id]
        self._gone.add(item_id)
        self._gone_order.append(item_id)
        if len(self._gone_order) > _GONE_REMEMBERED:
            self._gone.discard(self._gone_order.popleft())

    def _on_response(self, event: ResponseEvent) -> None:
        usage = event.response.usage
        if event.type == "response.done" and usage is not None:
            self.usage = self.usage.plus(usage)

    def _on_rate_limits(self, event: RateLimitsUpdatedEvent) -> None:
        self.rate_limits = tuple(event.rate_limits)

    def _on_session(self, event: SessionEvent) -> None:
        self._audio_rate, self._audio_width = _output_audio_shape(event.session)
        if event.type != "session.created":
            return
        carried, self._carried = self._carried, None
        if carried is not None:  # the conversation goes on in the new session
            for item_id in [item_id for item_id in self._order if item_id not in carried]:
                self._order.remove(item_id)
                self._forget(item_id)
            return
        # A new session has a conversation of its own.
        self._entries.clear()
        self._order.clear()
        self._gone.clear()
        self._gone_order.clear()


def decoded_size(encoded: str) -> int:
    """How many bytes base64 text decodes to, without decoding it."""
    size = len(encoded)
    if size < 4:
        return len(base64.b64decode(encoded)) if encoded else 0
    return size // 4 * 3 - (encoded[-1] == "=") - (encoded[-2] == "=")


def output_audio_format(session: Session | None) -> Any:
    """The session's output audio format: GA ``audio.output.format``, beta
    ``output_audio_format``; None when it names none (PCM16 at 24 kHz)."""
    if session is None:
        return None
    audio = session.audio
    output = audio.output if audio is not None else None
    if output is not None and output.format is not None:
        return output.format
    return session.output_audio_format


def _output_audio_shape(session: Session) -> tuple[int, int]:
    """(samples per second, bytes per sample) of the session's output audio; PCM16 at
    24 kHz for a format the audio module does not know."""
    fmt = output_audio_format(session)
    try:
        return audio.format_rate(fmt), audio.format_sample_width(fmt)
    except ValueError:
        return 24000, 2
