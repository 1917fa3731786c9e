"""Typed senders, grouped as in the official SDK: ``client.response.create(...)`` and so on.

Each method takes keyword arguments named as the event's wire fields (nested values as plain
dicts or our models), sends the event and returns its ``event_id``.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any, Protocol

from ._client_events import (
    ConversationItemCreateEvent,
    ConversationItemDeleteEvent,
    ConversationItemRetrieveEvent,
    ConversationItemTruncateEvent,
    InputAudioBufferAppendEvent,
    InputAudioBufferClearEvent,
    InputAudioBufferCommitEvent,
    OutputAudioBufferClearEvent,
    ResponseCancelEvent,
    ResponseCreateEvent,
    SessionUpdateEvent,
    TranscriptionSessionUpdateEvent,
)
from ._conversation import ConversationState, Item
from ._dialects import session_for_dialect
from ._endpoints import Dialect
from ._errors import InvalidEventError
from ._models import Model, to_json
from ._objects import AudioFormat, Session

__all__ = [
    "MAX_APPEND_BYTES",
    "ConversationItemResource",
    "ConversationResource",
    "EventSender",
    "InputAudioBufferResource",
    "OutputAudioBufferResource",
    "ResponseResource",
    "SessionResource",
    "TranscriptionSessionResource",
]


class EventSender(Protocol):
    """What the senders need of the client (so this module does not import it)."""

    @property
    def dialect(self) -> Dialect: ...

    @property
    def _session(self) -> Session | None: ...

    @property
    def _state(self) -> ConversationState: ...

    def send(self, event: Mapping[str, Any] | Model) -> str: ...


MAX_APPEND_BYTES = 15 * 1024 * 1024
"""The documented limit of one ``input_audio_buffer.append``, applied to its base64 text."""
# Split points: base64 text in multiples of 8 characters (6 bytes: whole base64 quanta and
# whole 16-bit samples), raw audio in the matching multiples of 6 bytes.
_MAX_APPEND_TEXT = MAX_APPEND_BYTES - MAX_APPEND_BYTES % 8
_MAX_APPEND_RAW = _MAX_APPEND_TEXT // 4 * 3

Value = Mapping[str, Any] | Model

# PCM16 by its GA and beta names, and None: no session (or no format) known yet. The other
# formats, G.711 (audio/pcmu, audio/pcma; g711_ulaw, g711_alaw), have 1-byte samples.
_PCM16_FORMATS = frozenset({"audio/pcm", "pcm16", None})


def input_audio_format(session: Session | None) -> str | None:
    """The session's input audio format: GA ``audio.input.format.type``, beta
    ``input_audio_format``; None when there is no session or it names none."""
    if session is None:
        return None
    audio = session.audio
    if audio is not None and audio.input is not None:
        found = audio.input.format
        name = found.type if isinstance(found, AudioFormat) else found
        if isinstance(name, str):
            return name
    beta = session.input_audio_format
    return beta if isinstance(beta, str) else None


def _base64_size(text: str) -> int:
    """How many bytes base64 ``text`` decodes to, from its length and padding alone.

    Raises :class:`InvalidEventError` for a length no base64 text has. Whitespace (which
    decoders skip) is only looked for when the length says something is off, so a long
    text is never scanned for nothing.
    """
    padding = 2 if text.endswith("==") else 1 if text.endswith("=") else 0
    digits = len(text) - padding
    if digits % 4 == 1 or digits * 3 // 4 % 2:
        compact = "".join(text.split())  # whitespace out (line-wrapped base64), in C
        if len(compact) != len(text):
            return _base64_size(compact)
    if digits % 4 == 1:
        raise InvalidEventError(
            f"audio: {len(text)} characters is not a length base64 text can have"
        )
    return digits * 3 // 4


class _Resource:
    __slots__ = ("_client",)

    def __init__(self, client: EventSender) -> None:
        self._client = client

    def _send(self, event_type: str, event_id: str | None, **fields: Any) -> str:
        payload = {"type": event_type}
        for name, value in fields.items():
            if value is not None:  # text (audio, ids) is sent as it is: the common case
                payload[name] = value if type(value) is str else to_json(value)
        if event_id is not None:
            payload["event_id"] = event_id
        return self._client.send(payload)


class SessionResource(_Resource):
    """``client.session``: the current session, and ``update()`` to change it.

    Reading an attribute reads the current session (``client.session.id``,
    ``client.session.expires_at``); ``current`` is the typed :class:`Session` (None before
    ``session.created``). Falsy while there is no session.
    """

    __slots__ = ()

    @property
    def current(self) -> Session | None:
        """The session as of the last ``session.created``/``session.updated``."""
        return self._client._session

    def update(self, *, session: Value, event_id: str | None = None) -> str:
        """Send ``session.update``.

        ``session`` may use either dialect's fields: they are translated for the
        connection's dialect (``modalities`` ↔ ``output_modalities``, ``voice`` ↔
        ``audio.output.voice``, ``input_audio_format`` ↔ ``audio.input.format``...), and GA's
        required ``type: "realtime"`` is added. A field with no equivalent raises
        :class:`InvalidEventError` naming it.
        """
        translated = session_for_dialect(to_json(session), self._client.dialect)
        return self._send(SessionUpdateEvent.TYPE, event_id, session=translated)

    def __getattr__(self, name: str) -> Any:
        current = self._client._session
        if current is None:
            raise AttributeError(f"no session yet, so no {name!r}: connect() first")
        return getattr(current, name)

    def __bool__(self) -> bool:
        return self._client._session is not None

    def __repr__(self) -> str:
        return f"<SessionResource {self._client._session!r}>"


class TranscriptionSessionResource(_Resource):
    """``client.transcription_session``: the beta dialect's transcription session."""

    __slots__ = ()

    def update(self, *, session: Value, event_id: str | None = None) -> str:
        """Send ``transcription_session.update`` (beta only).

        GA configures transcription with ``client.session.update(session={"type":
        "transcription", ...})`` instead.
        """
        if self._client.dialect != "beta":
            raise InvalidEventError(
                "transcription_session.update is beta-only; on GA use "
                "client.session.update(session={'type': 'transcription', 'audio': {...}})"
            )
        return self._send(TranscriptionSessionUpdateEvent.TYPE, event_id, session=session)


class InputAudioBufferResource(_Resource):
    """``client.input_audio_buffer``: stream audio in, then commit or clear it."""

    __slots__ = ()

    def append(
        self, *, audio: bytes | bytearray | memoryview | str, event_id: str | None = None
    ) -> str:
        """Send ``input_audio_buffer.append`` with raw audio bytes or base64 text.

        Audio over the 15 MiB per-event limit is split into several events (at whole
        samples); the id of the last one is returned (a given ``event_id`` gets ``.1``,
        ``.2``... suffixes when split). In PCM16 (the session's input format, or no format
        known yet) the audio must be whole 16-bit samples: an odd number of bytes raises
        :class:`InvalidEventError`. Everything is checked before anything is sent.
        """
        if event_id is not None and not isinstance(event_id, str):
            raise InvalidEventError(f"event_id: must be a string, not {type(event_id).__name__}")
        if isinstance(audio, str):
            text = audio
            self._check_whole_samples(_base64_size(text), " (decoded from the base64 text)")
            chunks = [text[i : i + _MAX_APPEND_TEXT] for i in range(0, len(text), _MAX_APPEND_TEXT)]
        elif isinstance(audio, (bytes, bytearray, memoryview)):
            raw = bytes(audio)
            self._check_whole_samples(len(raw), "")
            chunks = [
                base64.b64encode(raw[i : i + _MAX_APPEND_RAW]).decode("ascii")
                for i in range(0, len(raw), _MAX_APPEND_RAW)
            ]
        else:
            raise InvalidEventError(
                f"audio must be bytes (raw audio) or str (base64), not {type(audio).__name__}"
            )
        if not chunks:
            raise InvalidEventError("no audio to append")
        if len(chunks) == 1:
            return self._send(InputAudioBufferAppendEvent.TYPE, event_id, audio=chunks[0])
        sent = ""
        for number, chunk in enumerate(chunks, 1):
            chunk_id = None if event_id is None else f"{event_id}.{number}"
            sent = self._send(InputAudioBufferAppendEvent.TYPE, chunk_id, audio=chunk)
        return sent

    def _check_whole_samples(self, size: int, origin: str) -> None:
        if size % 2 == 0:
            return
        audio_format = input_audio_format(self._client._session)
        if audio_format not in _PCM16_FORMATS:
            return  # G.711 has 1-byte samples; a format we do not know, we do not judge
        shown = "unknown yet, so assumed PCM16" if audio_format is None else audio_format
        raise InvalidEventError(
            f"audio: {size} bytes{origin} is not a whole number of 16-bit samples; "
            f"the session's input format ({shown}) takes 2 bytes per sample"
        )

    def commit(self, *, event_id: str | None = None) -> str:
        """Send ``input_audio_buffer.commit`` (needs at least 100 ms of audio)."""
        return self._send(InputAudioBufferCommitEvent.TYPE, event_id)

    def clear(self, *, event_id: str | None = None) -> str:
        """Send ``input_audio_buffer.clear``."""
        return self._send(InputAudioBufferClearEvent.TYPE, event_id)


class OutputAudioBufferResource(_Resource):
    """``client.output_audio_buffer``: control audio playback (WebRTC/SIP sessions)."""

    __slots__ = ()

    def clear(self, *, event_id: str | None = None) -> str:
        """Send ``output_audio_buffer.clear``."""
        return self._send(OutputAudioBufferClearEvent.TYPE, event_id)


class ConversationItemResource(_Resource):
    """``client.conversation.item``: add, remove, fetch and truncate items."""

    __slots__ = ()

    def create(
        self, *, item: Value, previous_item_id: str | None = None, event_id: str | None = None
    ) -> str:
        """Send ``conversation.item.create``."""
        return self._send(
            ConversationItemCreateEvent.TYPE, event_id, item=item, previous_item_id=previous_item_id
        )

    def delete(self, *, item_id: str, event_id: str | None = None) -> str:
        """Send ``conversation.item.delete``."""
        return self._send(ConversationItemDeleteEvent.TYPE, event_id, item_id=item_id)

    def retrieve(self, *, item_id: str, event_id: str | None = None) -> str:
        """Send ``conversation.item.retrieve``."""
        return self._send(ConversationItemRetrieveEvent.TYPE, event_id, item_id=item_id)

    def truncate(
        self, *, item_id: str, content_index: int, audio_end_ms: int, event_id: str | None = None
    ) -> str:
        """Send ``conversation.item.truncate``."""
        return self._send(
            ConversationItemTruncateEvent.TYPE,
            event_id,
            item_id=item_id,
            content_index=content_index,
            audio_end_ms=audio_end_ms,
        )


class ConversationResource(_Resource):
    """``client.conversation``: the conversation as it stands (``items``, ``get()``), and
    its ``item`` senders."""

    __slots__ = ("item",)

    def __init__(self, client: EventSender) -> None:
        super().__init__(client)
        self.item = ConversationItemResource(client)
        """``create``, ``delete``, ``retrieve``, ``truncate``."""

    @property
    def items(self) -> tuple[Item, ...]:
        """The conversation's items in server order, with text, transcripts, audio and
        function-call arguments accumulated from the deltas so far (snapshots)."""
        return self._client._state.items

    def get(self, item_id: str) -> Item | None:
        """One item by id, or None (deleted, or dropped by ``conversation_max_items``)."""
        return self._client._state.get(item_id)


class ResponseResource(_Resource):
    """``client.response``: start and cancel responses."""

    __slots__ = ()

    def create(self, *, response: Value | None = None, event_id: str | None = None) -> str:
        """Send ``response.create``; ``response`` overrides session settings for this one."""
        return self._send(ResponseCreateEvent.TYPE, event_id, response=response)

    def cancel(self, *, response_id: str | None = None, event_id: str | None = None) -> str:
        """Send ``response.cancel`` (for the active response unless ``response_id`` is given)."""
        return self._send(ResponseCancelEvent.TYPE, event_id, response_id=response_id)
