"""The local server's translation endpoint, ``/v1/realtime/translations``.

A :class:`TranslationSimulator` plays one translation session: ``session.created`` first,
``session.update`` answered with ``session.updated`` (or an ``error`` naming the field),
``session.input_audio_buffer.append`` buffered, ``session.close`` answered with the rest of
the translation, ``session.closed`` and a close with 1000. Anything else gets an
``error`` event; the session goes on.

The "translation" is deterministic, so tests can check it: the input is cut into
utterances at 200 ms of silence (and at ``session.close``); each is recognised as the
server's own synthesised speech (:func:`~._voice.recognize_speech`; other audio is heard as
``"(<n> ms of audio)"``), and translated into ``"[<language>] <what was heard>"``. Per
utterance the server sends the source text as ``session.input_transcript.delta`` events
(only with ``audio.input.transcription`` set, as real servers do), the translation as
``session.output_transcript.delta`` events, one per word, and its synthesised speech as
``session.output_audio.delta`` events of 200 ms.
"""

from __future__ import annotations

import base64
import copy
import logging
import re
from array import array
from collections.abc import Iterator, Mapping
from typing import Any

from ._catalogue import (
    ClientError,
    JsonObject,
    Route,
    object_param,
    refuse_unknown,
    server_error,
)
from ._input_audio import appended_audio
from ._responses import SendFailed
from ._simulator import SessionSimulator
from ._voice import audio_format, describe_audio, pcm_samples, recognize, synthesize

__all__ = [
    "DEFAULT_LANGUAGE",
    "TRANSLATION_MODELS",
    "TRANSLATION_PATH",
    "TRANSLATION_ROUTE",
    "TranslationSimulator",
    "simulator_class",
    "translate_text",
]

_log = logging.getLogger("realtime_sync.testing")

TRANSLATION_PATH = "/v1/realtime/translations"
TRANSLATION_ROUTE = Route(azure=False, legacy=False, required=("model",))
"""The endpoint: OpenAI's only (the official client refuses Azure for translation)."""
TRANSLATION_MODELS = frozenset({"gpt-realtime-translate"})
"""The models the endpoint serves (unless the server accepts any model)."""
DEFAULT_LANGUAGE = "es"
"""The language a session translates into until ``audio.output.language`` is set."""

_PCM16 = audio_format("pcm16")
_RATE = 24000
_BLOCK = _RATE // 100  # samples in 10 ms: the unit silence is measured in
_PAUSE_BLOCKS = 20  # 200 ms of silence ends an utterance
_QUIET = 1000  # a block whose samples all stay below this is silence (speech peaks at 8000)
_FRAME_MS = 200  # elapsed_ms steps, and the length of each output audio delta
_FRAME_BYTES = _RATE * 2 * _FRAME_MS // 1000
_NOISE_REDUCTIONS = frozenset({"near_field", "far_field"})


def translate_text(text: str, language: str) -> str:
    """The local server's translation of ``text``: ``"[<language>] <text>"``."""
    return f"[{language}] {text}"


def simulator_class(path: str) -> type[SessionSimulator]:
    """The simulator of a connection to ``path``: translation or Realtime."""
    return TranslationSimulator if path == TRANSLATION_PATH else SessionSimulator


def _words(text: str) -> list[str]:
    """``text`` in append-only pieces, each word with the spaces before it."""
    return re.findall(r"\s*\S+", text) or [text]


class TranslationSimulator(SessionSimulator):
    """One translation session (see the module description); the transport drives it as
    it drives a :class:`SessionSimulator`."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._pending = bytearray()  # PCM16 not yet translated
        self._pending_at_ms = 0  # where _pending starts in the input
        self._said = {"input": False, "output": False}  # text sent yet: later ones get a space

    @property
    def session(self) -> JsonObject:
        """The translation session."""
        return self._translation

    @session.setter
    def session(self, value: JsonObject) -> None:
        # Whatever the session is set to (the Realtime defaults, an ephemeral key's
        # configuration), a translation session keeps only its own fields.
        self._translation = _translation_session(value)

    def open(self) -> None:
        """Send ``session.created``."""
        self._deliver({"type": "session.created", "session": copy.deepcopy(self.session)})

    def _dispatch(self, event: JsonObject) -> None:
        client_event_id = event.get("event_id")
        if not isinstance(client_event_id, str):
            client_event_id = None
        closing = False
        with self._lock:
            try:
                kind = event.get("type")
                if kind == "session.update":
                    self._update(event)
                elif kind == "session.input_audio_buffer.append":
                    self._append(event)
                elif kind == "session.close":
                    self._translate(final=True)
                    self.emit({"type": "session.closed"})
                    closing = True
                elif not isinstance(kind, str):
                    raise ClientError("invalid_event", "The event has no string 'type' field.")
                else:
                    raise ClientError(
                        "invalid_value",
                        f"Unknown event type {kind!r}. Supported client event types: "
                        "session.close, session.input_audio_buffer.append, session.update.",
                        param="type",
                    )
            except ClientError as error:
                self.emit({"type": "error", "error": error.body(client_event_id)})
            except SendFailed:
                raise
            except Exception:  # a bug here must not look like a dead server
                _log.exception("local translation session failed on a %r event", kind)
                self.emit({"type": "error", "error": server_error().body(client_event_id)})
        if closing:
            self._close(1000, "")

    def _update(self, event: JsonObject) -> None:
        update = object_param(event, "session", required=True)
        refuse_unknown("session", update, frozenset({"audio"}))
        audio = object_param(update, "audio", required=False)
        refuse_unknown("session.audio", audio, frozenset({"input", "output"}))
        wanted_input = object_param(audio, "input", required=False)
        refuse_unknown(
            "session.audio.input", wanted_input, frozenset({"noise_reduction", "transcription"})
        )
        wanted_output = object_param(audio, "output", required=False)
        refuse_unknown("session.audio.output", wanted_output, frozenset({"language"}))
        current = self.session["audio"]
        changed_input = dict(current["input"])
        if "noise_reduction" in wanted_input:
            changed_input["noise_reduction"] = _noise_reduction(wanted_input["noise_reduction"])
        if "transcription" in wanted_input:
            changed_input["transcription"] = _transcription(wanted_input["transcription"])
        language = wanted_output.get("language", current["output"]["language"])
        if not isinstance(language, str) or not language:
            raise ClientError(
                "invalid_value",
                "Invalid value for 'session.audio.output.language': expected a language code.",
                param="session.audio.output.language",
            )
        current["input"] = changed_input
        current["output"] = {"language": language}
        self.emit({"type": "session.updated", "session": copy.deepcopy(self.session)})

    def _append(self, event: JsonObject) -> None:
        self._pending += appended_audio(
            event, "'audio' must be base64-encoded PCM16 (24 kHz, mono) text."
        )
        self._translate(final=False)

    def _translate(self, *, final: bool) -> None:
        """Translate every utterance the pending audio completes (all of it when
        ``final``)."""
        for speech, end_ms in self._utterances(final=final):
            duration = len(speech) / (2 * _RATE) * 1000
            heard = recognize(speech, _PCM16) or describe_audio(duration)
            elapsed = end_ms - end_ms % _FRAME_MS
            if self.session["audio"]["input"]["transcription"] is not None:
                self._text("session.input_transcript.delta", "input", heard, elapsed)
            language = self.session["audio"]["output"]["language"]
            translated = translate_text(heard, language)
            self._text("session.output_transcript.delta", "output", translated, elapsed)
            spoken = synthesize(translated, _PCM16)
            for start in range(0, len(spoken), _FRAME_BYTES):
                self.emit(
                    {
                        "type": "session.output_audio.delta",
                        "delta": base64.b64encode(spoken[start : start + _FRAME_BYTES]).decode(),
                        "elapsed_ms": elapsed,
                        "format": "pcm16",
                        "sample_rate": _RATE,
                        "channels": 1,
                    }
                )

    def _text(self, kind: str, stream: str, text: str, elapsed: int) -> None:
        if self._said[stream]:
            text = " " + text  # deltas carry their own spaces: clients only append
        self._said[stream] = True
        for piece in _words(text):
            self.emit({"type": kind, "delta": piece, "elapsed_ms": elapsed})

    def _utterances(self, *, final: bool) -> Iterator[tuple[bytes, int]]:
        """Cut complete utterances off the pending audio: (speech, where it ends in ms)."""
        samples = pcm_samples(bytes(self._pending), _PCM16)
        blocks = len(samples) // _BLOCK
        first = last = None  # loud blocks of the utterance in progress
        done = 0  # blocks handled: cut off the pending audio at the end
        for index in range(blocks):
            if _loud(samples, index):
                first = index if first is None else first
                last = index
            elif last is not None and index - last >= _PAUSE_BLOCKS:
                yield self._utterance(samples, first or 0, last)
                first = last = None
                done = index
            elif last is None:
                done = index  # silence between utterances goes, but for one block of it
        if final and last is not None:
            yield self._utterance(samples, first or 0, last)
            done = blocks
        if final:
            done = len(samples) // _BLOCK + (1 if len(samples) % _BLOCK else 0)
        consumed = min(done * _BLOCK * 2, len(self._pending))
        del self._pending[:consumed]
        self._pending_at_ms += consumed * 1000 // (2 * _RATE)

    def _utterance(self, samples: array[int], first: int, last: int) -> tuple[bytes, int]:
        # A block of silence on each side: the recogniser finds the speech's edges itself.
        start, end = max(first - 1, 0) * _BLOCK, (last + 2) * _BLOCK
        speech = bytes(self._pending[start * 2 : end * 2])
        return speech, self._pending_at_ms + (last + 1) * 10


def _loud(samples: array[int], block: int) -> bool:
    piece = samples[block * _BLOCK : (block + 1) * _BLOCK]
    return max(piece) > _QUIET or min(piece) < -_QUIET


def _translation_session(session: Mapping[str, Any]) -> JsonObject:
    """The translation session of ``session``'s id, model, expiry and audio settings."""
    audio = session.get("audio") or {}
    wanted_input, wanted_output = audio.get("input") or {}, audio.get("output") or {}
    transcription = wanted_input.get("transcription")
    model = transcription.get("model") if isinstance(transcription, Mapping) else None
    return {
        "id": session["id"],
        "type": "translation",
        "model": session["model"],
        "expires_at": session["expires_at"],
        "audio": {
            "input": {
                "noise_reduction": wanted_input.get("noise_reduction"),
                "transcription": None if model is None else {"model": model},
            },
            "output": {"language": wanted_output.get("language") or DEFAULT_LANGUAGE},
        },
    }


def _noise_reduction(value: Any) -> JsonObject | None:
    if value is None:
        return None
    if not isinstance(value, Mapping) or value.get("type") not in _NOISE_REDUCTIONS:
        raise ClientError(
            "invalid_value",
            "Invalid value for 'session.audio.input.noise_reduction': expected null or "
            "{'type': 'near_field' | 'far_field'}.",
            param="session.audio.input.noise_reduction.type",
        )
    refuse_unknown("session.audio.input.noise_reduction", value, frozenset({"type", "strength"}))
    return dict(value)


def _transcription(value: Any) -> JsonObject | None:
    if value is None:
        return None
    if not isinstance(value, Mapping) or not isinstance(value.get("model"), str):
        raise ClientError(
            "invalid_value",
            "Invalid value for 'session.audio.input.transcription': expected null or "
            "{'model': <transcription model>}.",
            param="session.audio.input.transcription.model",
        )
    refuse_unknown("session.audio.input.transcription", value, frozenset({"model"}))
    return {"model": value["model"]}
