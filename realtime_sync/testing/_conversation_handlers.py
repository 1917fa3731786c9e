"""A simulated session's conversation, and the client events that change it.

:class:`ConversationHandlers` is the part of :class:`~._simulator.SessionSimulator` (a base
class of it) that holds the conversation helpers the responder also uses (finding and
inserting items, announcing them) and handles ``conversation.item.create``, ``delete``,
``retrieve`` and ``truncate`` (cutting a spoken item's audio and transcript) and
``output_audio_buffer.clear``. It also makes committed input audio a user item
(:meth:`~ConversationHandlers.commit_audio`: what the server hears in it and its
transcription events, sent at once or held until the next response starts); the input
audio buffer's own events and turn detection are :mod:`._input_audio`'s. It owns no state:
the attributes declared below are the simulator's, set in its ``__init__``; dispatch and
sending stay there.
"""

from __future__ import annotations

import copy
import math
import re
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import attrs

from ._catalogue import ClientError, DialectSpec, JsonObject, object_param, random_id
from ._options import SimulatorOptions
from ._responses import Responder
from ._voice import (
    AudioFormat,
    SpokenAudio,
    audio_format,
    audio_tokens,
    describe_audio,
    recognize,
)

__all__ = ["ConversationHandlers", "session_section"]

_TRANSCRIPTION_DELTA = "conversation.item.input_audio_transcription.delta"
_TRANSCRIPTION_COMPLETED = "conversation.item.input_audio_transcription.completed"
_TRANSCRIPTION_FAILED = "conversation.item.input_audio_transcription.failed"
_LOGPROBS = "item.input_audio_transcription.logprobs"
_WORDS = re.compile(r"\s*\S+\s*|\s+")  # a transcription delta: a word and its spaces


@attrs.frozen
class _Transcription:
    """The transcription of one committed user audio item, ready to send."""

    item_id: str
    transcript: str
    model: object  # the transcription model the session named
    duration_ms: float


class ConversationHandlers:
    """Conversation items (user audio ones included) of a :class:`~._simulator.SessionSimulator`."""

    # The simulator's attributes these methods use (see SessionSimulator.__init__).
    spec: DialectSpec
    session: JsonObject
    items: list[JsonObject]
    spoken: dict[str, SpokenAudio]  # the audio of conversation items, by id
    _options: SimulatorOptions
    _audio: bytearray  # the input audio buffer
    _held: list[_Transcription]  # late transcriptions, waiting for a response
    _transcription: JsonObject
    _transcribing: bool  # a transcription_session.update was accepted
    _responder: Responder
    _take_transcription_failure: Callable[[], JsonObject | None] | None

    if TYPE_CHECKING:

        def emit(self, event: Mapping[str, Any]) -> None: ...

    # Conversation helpers (also the responder's)

    def index_of(self, item_id: object, param: str) -> int:
        """Position of the conversation item ``item_id``; ``param`` names it in errors."""
        if not isinstance(item_id, str):
            raise ClientError(
                "missing_required_parameter" if item_id is None else "invalid_type",
                f"'{param}' must be the id of a conversation item.",
                param=param,
            )
        for index, item in enumerate(self.items):
            if item.get("id") == item_id:
                return index
        raise ClientError(
            "invalid_value", f"No conversation item with id '{item_id}' exists.", param=param
        )

    def insert(self, item: JsonObject, index: int) -> str | None:
        """Insert ``item`` at ``index``; return the previous item's id."""
        self.items.insert(index, item)
        return self.items[index - 1]["id"] if index > 0 else None

    def _announce_item(self, item: JsonObject, previous_id: str | None) -> None:
        """Tell the client about a complete new conversation item."""
        self.emit({"type": self.spec.item_added, "previous_item_id": previous_id, "item": item})
        if self.spec.item_done is not None:
            self.emit({"type": self.spec.item_done, "previous_item_id": previous_id, "item": item})

    def response_started(self) -> None:
        """A response was created: send the transcriptions held for one (the responder's call)."""
        held, self._held = self._held, []
        for transcription in held:
            self._send_transcription(transcription)

    def _input_format(self) -> AudioFormat:
        if self._transcribing:
            return audio_format(self._transcription.get("input_audio_format"))
        if self.spec.name == "ga":
            return audio_format(session_section(self.session, "input").get("format"))
        return audio_format(self.session.get("input_audio_format"))

    def _transcription_model(self) -> tuple[bool, object]:
        """Whether committed audio is transcribed, and by which model."""
        if self.spec.name == "ga" and not self._transcribing:
            config = session_section(self.session, "input").get("transcription")
        elif self._transcribing:
            config = self._transcription.get("input_audio_transcription")
        else:
            config = self.session.get("input_audio_transcription")
        if not isinstance(config, Mapping):
            return False, None
        return True, config.get("model")

    def _transcription_only(self) -> bool:
        return self._transcribing or self.session.get("type") == "transcription"

    # Handlers: conversation

    def _on_item_create(self, event: JsonObject) -> None:
        item = copy.deepcopy(object_param(event, "item", required=True))
        if item.get("type") not in self.spec.item_types:
            raise ClientError(
                "invalid_value",
                f"'item.type' must be one of {', '.join(sorted(self.spec.item_types))}.",
                param="item.type",
            )
        # The client may choose the id (real servers keep it), unique in the conversation.
        item_id = item.get("id")
        if item_id is None:
            item_id = random_id("item_")
        elif not isinstance(item_id, str) or not item_id:
            raise ClientError(
                "invalid_value" if item_id == "" else "invalid_type",
                "'item.id' must be a non-empty string.",
                param="item.id",
            )
        elif any(i["id"] == item_id for i in self.items):
            raise ClientError(
                "invalid_value",
                f"Item with id '{item_id}' already exists in the conversation.",
                param="item.id",
            )
        after = event.get("previous_item_id")
        if after is None:
            index = len(self.items)
        elif after == "root":
            index = 0
        else:
            index = self.index_of(after, "previous_item_id") + 1
        stored = {"id": item_id, "object": "realtime.item", **item}
        stored.update(id=item_id, status="completed")
        self._announce_item(stored, self.insert(stored, index))

    def _on_item_delete(self, event: JsonObject) -> None:
        index = self.index_of(event.get("item_id"), "item_id")
        item = self.items.pop(index)
        self.spoken.pop(item["id"], None)
        self.emit({"type": "conversation.item.deleted", "item_id": item["id"]})

    def _on_item_retrieve(self, event: JsonObject) -> None:
        index = self.index_of(event.get("item_id"), "item_id")
        self.emit({"type": "conversation.item.retrieved", "item": self.items[index]})

    def _on_item_truncate(self, event: JsonObject) -> None:
        item = self.items[self.index_of(event.get("item_id"), "item_id")]
        if item.get("role") != "assistant":
            raise ClientError(
                "invalid_value", "Only assistant message items can be truncated.", param="item_id"
            )
        content = item.get("content") or []
        spoken = self.spoken.get(item["id"])
        # An audio item still streaming has its one part only when its response ends.
        parts = max(len(content), 1 if spoken is not None else 0)
        for name, limit in (("content_index", parts), ("audio_end_ms", None)):
            value = event.get(name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise ClientError(
                    "missing_required_parameter" if value is None else "invalid_type",
                    f"'{name}' must be an integer.",
                    param=name,
                )
            if value < 0 or (limit is not None and value >= limit):
                raise ClientError("invalid_value", f"'{name}' is out of range.", param=name)
        if spoken is not None:
            self._cut(item, spoken, event["content_index"], event["audio_end_ms"])
        self.emit(
            {
                "type": "conversation.item.truncated",
                "item_id": item["id"],
                "content_index": event["content_index"],
                "audio_end_ms": event["audio_end_ms"],
            }
        )

    def _cut(self, item: JsonObject, spoken: SpokenAudio, content_index: int, end_ms: int) -> None:
        """Truncate a spoken item's audio at ``end_ms``: its transcript keeps what was heard."""
        content = item.get("content") or []
        part = content[content_index] if content_index < len(content) else None
        duration = spoken.duration_ms
        if end_ms > duration:
            # Real servers' words (an invalid_request_error, code invalid_value).
            raise ClientError(
                "invalid_value",
                f"Audio content of {math.floor(duration)}ms is already shorter than {end_ms}ms",
                param="audio_end_ms",
            )
        spoken.cut_ms = end_ms
        if part is not None:  # else the response still streams it; it takes the cut at its end
            part["transcript"] = spoken.heard

    # Committed input audio (the input audio handlers' and turn detection's)

    def commit_audio(self, start: int, end: int, item_id: str) -> None:
        """Make the buffer's bytes ``start:end`` the user audio item ``item_id``.

        The buffer keeps only what follows ``end``. Sends ``input_audio_buffer.committed``,
        the item's events and its transcription (or holds that for the next response).
        """
        fmt = self._input_format()
        audio = bytes(self._audio[start:end])
        duration_ms = fmt.duration_ms(len(audio))
        heard = self._hear(audio, fmt, duration_ms)  # before anything is sent: it may fail
        del self._audio[:end]
        item: JsonObject = {
            "id": item_id,
            "object": "realtime.item",
            "type": "message",
            "status": "completed",
            "role": "user",
            "content": [{"type": "input_audio", "transcript": None}],
        }
        previous_id = self.insert(item, len(self.items))
        self.spoken[item_id] = SpokenAudio(streamed_ms=duration_ms, transcript=heard)
        self.emit(
            {
                "type": "input_audio_buffer.committed",
                "previous_item_id": previous_id,
                "item_id": item_id,
            }
        )
        self._announce_item(item, previous_id)
        transcribed, model = self._transcription_model()
        if transcribed:
            transcription = _Transcription(item_id, heard, model, duration_ms)
            late = self._options.late_transcripts and not self._transcription_only()
            if late and not self._responder.in_progress:
                self._held.append(transcription)  # sent after the next response.created
            else:
                self._send_transcription(transcription)

    def _hear(self, audio: bytes, fmt: AudioFormat, duration_ms: float) -> str:
        """What the server hears in committed audio (see ``SimulatorOptions.transcribe``)."""
        if self._options.transcribe is not None:
            heard = self._options.transcribe(audio)
            if not isinstance(heard, str):
                raise TypeError(f"transcribe returned {type(heard).__name__}, not str")
            return heard
        recognized = recognize(audio, fmt)
        return describe_audio(duration_ms) if recognized is None else recognized

    def _send_transcription(self, transcription: _Transcription) -> None:
        """The transcription events of a user audio item; its transcript is then set. Or,
        when a failure is due, ``...transcription.failed`` and a null transcript.

        Deltas are words (whisper-1: GA sends the whole text as one delta, beta none);
        ``logprobs`` (a certain 0.0 per word) when the session's ``include`` asks for them.
        """
        item_id, transcript = transcription.item_id, transcription.transcript
        take_failure = self._take_transcription_failure
        error = None if take_failure is None else take_failure()
        if error is not None:  # the test asked for it (fail_transcriptions): no transcript
            failed = {"type": _TRANSCRIPTION_FAILED, "item_id": item_id, "content_index": 0}
            self.emit({**failed, "error": error})
            return
        whisper = transcription.model == "whisper-1"
        words = _WORDS.findall(transcript)
        if not whisper:
            pieces = words
        elif self.spec.name == "ga":
            pieces = [transcript]  # whisper-1 does not stream: one delta, the whole text
        else:
            pieces = []
        logprobs = self._logprobs_included()
        where: JsonObject = {"item_id": item_id, "content_index": 0}
        for piece in pieces:
            delta: JsonObject = {"type": _TRANSCRIPTION_DELTA, **where, "delta": piece}
            if logprobs:
                delta["logprobs"] = [_logprob(piece)]
            self.emit(delta)
        usage: JsonObject
        if whisper:
            usage = {"type": "duration", "seconds": round(transcription.duration_ms / 1000, 3)}
        else:
            audio_in, text_out = audio_tokens(transcription.duration_ms), (len(transcript) + 3) // 4
            usage = {
                "type": "tokens",
                "total_tokens": audio_in + text_out,
                "input_tokens": audio_in,
                "input_token_details": {"text_tokens": 0, "audio_tokens": audio_in},
                "output_tokens": text_out,
            }
        completed: JsonObject = {
            "type": _TRANSCRIPTION_COMPLETED,
            **where,
            "transcript": transcript,
            "usage": usage,
        }
        if logprobs:
            completed["logprobs"] = [_logprob(word) for word in words]
        self.emit(completed)
        for item in self.items:
            if item["id"] == item_id:
                item["content"][0]["transcript"] = transcript

    def _logprobs_included(self) -> bool:
        settings = self._transcription if self._transcribing else self.session
        include = settings.get("include")
        return isinstance(include, list) and _LOGPROBS in include

    def _on_output_audio_clear(self, _event: JsonObject) -> None:
        response_id = self._responder.audio_response_id()
        self.emit({"type": "output_audio_buffer.cleared", "response_id": response_id})


def session_section(session: Mapping[str, Any], direction: str) -> Mapping[str, Any]:
    """A GA session's ``audio.input`` or ``audio.output`` settings (``{}`` when absent)."""
    audio = session.get("audio")
    settings = audio.get(direction) if isinstance(audio, Mapping) else None
    return settings if isinstance(settings, Mapping) else {}


def _logprob(token: str) -> JsonObject:
    """A transcription log probability: every word of a simulated transcript is certain."""
    return {"token": token, "bytes": list(token.encode()), "logprob": 0.0}
