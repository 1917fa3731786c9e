"""A simulated session's input audio buffer, and the turn detection that listens to it.

:class:`InputAudio` is the part of :class:`~._simulator.SessionSimulator` (a base class of
it, above :class:`~._conversation_handlers.ConversationHandlers`) that handles
``input_audio_buffer.append``, ``commit`` and ``clear``, and does what real servers do with
turn detection on (``server_vad`` or ``semantic_vad``; :func:`read_turn_detection` reads
and checks the session's setting): it feeds appended audio to a
:class:`~._vad.VoiceActivityDetector` and turns what it hears into events.

- Speech starts: ``input_audio_buffer.speech_started`` with ``audio_start_ms`` (the speech's
  start less ``prefix_padding_ms``, not before the buffered audio) and the ``item_id`` the
  turn's user item will get. With ``interrupt_response``, a response in progress in the
  default conversation is cancelled: its ``response.done`` has status ``cancelled`` and
  ``status_details.reason`` ``turn_detected``, and it ends before the next client event is
  handled.
- Speech stops: ``input_audio_buffer.speech_stopped`` with ``audio_end_ms`` (after the
  silence that ended it), then the audio from ``audio_start_ms`` to ``audio_end_ms`` is
  committed as a manual commit would be (``committed``, the item's events, transcription);
  audio appended after it stays in the buffer. With ``create_response``, a response
  follows (after the interrupted one's ``response.done``). If a response the turn did not
  interrupt is still in progress (``interrupt_response`` false), none does: the official
  documentation says creating it "may fail", and here it always does, silently.
- GA ``server_vad`` with ``idle_timeout_ms``: once a response is done, the timer starts
  where its audio would have finished playing (the audio timeline at ``response.done``
  plus the audio it left in the conversation); when that much audio without speech has
  been appended, ``input_audio_buffer.timeout_triggered`` (``audio_start_ms``: the timer's
  start, ``audio_end_ms``: now) goes out, the buffer is committed under its ``item_id`` and,
  with ``create_response``, a response follows. The documentation does not say whether
  the timer runs before the first response, whether ``create_response: false`` stops the
  response, or what a client that stops sending audio sees; here the timer starts only
  at a ``response.done``, is stopped by speech and by the next response, follows the audio
  appended (no audio, no time), and ``create_response: false`` means no response.

Times are milliseconds of audio appended since the session started, in the input format
of the moment (PCM16 at 24 kHz, G.711 at 8 kHz). A manual commit during speech takes the
item id ``speech_started`` announced; the rest of that speech becomes another item, which
``speech_stopped`` names. Changing the turn detection or the input format restarts the
detector at the current point (a turn in progress is dropped without ``speech_stopped``);
``turn_detection: null`` turns all of it off. Transcription sessions detect turns too but
never respond.

``semantic_vad`` is detected like ``server_vad`` with threshold 0.5 and 300 ms of prefix
padding; the real one is a model that decides when the user is done, waiting at most 8 s,
4 s and 2 s for eagerness ``low``, ``medium`` (and ``auto``) and ``high``, and the
simulator, which cannot tell, always waits that long (:data:`SEMANTIC_SILENCE_MS`).
"""

from __future__ import annotations

import base64
import binascii
import logging
import math
import threading
from collections.abc import Mapping
from typing import Any, Literal

import attrs

from .._dialects import TURN_DETECTION_FIELDS
from ._catalogue import (
    MIN_COMMIT_MS,
    ClientError,
    JsonObject,
    random_id,
    refuse_unknown,
    server_error,
)
from ._conversation_handlers import ConversationHandlers, session_section
from ._vad import (
    IdleTimeout,
    SpeechStarted,
    SpeechStopped,
    VadSettings,
    VoiceActivityDetector,
)

__all__ = [
    "SEMANTIC_SILENCE_MS",
    "InputAudio",
    "TurnDetection",
    "read_turn_detection",
]

_log = logging.getLogger("realtime_sync.testing")

SEMANTIC_SILENCE_MS: Mapping[str, int] = {"low": 8000, "medium": 4000, "auto": 4000, "high": 2000}
"""``semantic_vad``: the silence that ends speech, per eagerness (the official maxima)."""
_INTERRUPT_WAIT = 2.0  # seconds an interrupting append waits for the cancelled response's end
# The defaults real sessions report (session.created of both dialects). The official
# docstrings say silence_duration_ms "defaults to 500ms", which only transcription
# sessions report; a realtime session reports 200.
_SERVER_VAD = VadSettings(threshold=0.5, prefix_padding_ms=300, silence_duration_ms=200)


@attrs.frozen
class TurnDetection:
    """A session's turn detection, with what it leaves out filled in as real servers do."""

    kind: Literal["server_vad", "semantic_vad"]
    """``server_vad`` or ``semantic_vad``."""
    vad: VadSettings
    """What the detector listens for (``semantic_vad``: derived from the eagerness)."""
    create_response: bool = True
    """Respond when a turn ends (never in a transcription session)."""
    interrupt_response: bool = True
    """Cancel a response in progress in the default conversation when speech starts."""


def read_turn_detection(value: object, *, where: str, ga: bool) -> TurnDetection | None:
    """The turn detection a session field sets (``None``: off).

    ``where`` names the field in errors (``"session.turn_detection"``...); ``ga``: the GA
    shape (a required ``type``, ``idle_timeout_ms`` allowed). Fields of the other type are
    accepted and ignored, as in the beta shape, which has one object for both. Raises
    :class:`~._catalogue.ClientError` for a value a real server refuses.
    """
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise ClientError("invalid_type", f"'{where}' must be an object or null.", param=where)
    refuse_unknown(
        where,
        value,
        TURN_DETECTION_FIELDS | {"idle_timeout_ms"} if ga else TURN_DETECTION_FIELDS,
    )
    kind = value.get("type")
    if kind is None and not ga:
        kind = "server_vad"  # the beta shape's default
    if kind not in {"server_vad", "semantic_vad"}:
        raise ClientError(
            "missing_required_parameter" if kind is None else "invalid_value",
            f"'{where}.type' must be 'server_vad' or 'semantic_vad'.",
            param=f"{where}.type",
        )
    fields = _Fields(value, where)
    create, interrupt = fields.flag("create_response"), fields.flag("interrupt_response")
    if kind == "semantic_vad":
        eagerness = fields.get("eagerness", "auto")
        if eagerness not in SEMANTIC_SILENCE_MS:
            raise ClientError(
                "invalid_value",
                f"'{where}.eagerness' must be one of 'low', 'medium', 'high' or 'auto'.",
                param=f"{where}.eagerness",
            )
        vad = attrs.evolve(_SERVER_VAD, silence_duration_ms=SEMANTIC_SILENCE_MS[eagerness])
        return TurnDetection("semantic_vad", vad, create, interrupt)
    threshold = fields.get("threshold", _SERVER_VAD.threshold)
    if isinstance(threshold, bool) or not isinstance(threshold, int | float):
        raise fields.wrong_type("threshold", "a number")
    if not 0 <= threshold <= 1:
        raise ClientError(
            "invalid_value",
            f"'{where}.threshold' must be between 0.0 and 1.0.",
            param=f"{where}.threshold",
        )
    vad = VadSettings(
        threshold=float(threshold),
        prefix_padding_ms=fields.milliseconds("prefix_padding_ms", _SERVER_VAD.prefix_padding_ms),
        silence_duration_ms=fields.milliseconds(
            "silence_duration_ms", _SERVER_VAD.silence_duration_ms
        ),
        idle_timeout_ms=(
            None
            if fields.get("idle_timeout_ms", None) is None
            else fields.milliseconds("idle_timeout_ms", 0, least=1)
        ),
    )
    return TurnDetection("server_vad", vad, create, interrupt)


@attrs.frozen
class _Fields:
    """Reads the fields of one turn detection object; a ``null`` field is its default."""

    value: Mapping[str, Any]
    """The object."""
    where: str
    """Its name in errors."""

    def get(self, name: str, default: Any) -> Any:
        found = self.value.get(name)
        return default if found is None else found

    def flag(self, name: str) -> bool:
        found = self.get(name, True)
        if not isinstance(found, bool):
            raise self.wrong_type(name, "a boolean")
        return found

    def milliseconds(self, name: str, default: int, *, least: int = 0) -> int:
        found = self.get(name, default)
        if isinstance(found, bool) or not isinstance(found, int):
            raise self.wrong_type(name, "an integer")
        if found < least:
            raise ClientError(
                "invalid_value",
                f"'{self.where}.{name}' must be at least {least}.",
                param=f"{self.where}.{name}",
            )
        return found

    def wrong_type(self, name: str, expected: str) -> ClientError:
        return ClientError(
            "invalid_type",
            f"'{self.where}.{name}' must be {expected}.",
            param=f"{self.where}.{name}",
        )


@attrs.define(eq=False)
class _Listener:
    """Turn detection at work on a session's input audio."""

    turns: TurnDetection
    """The session's setting."""
    detector: VoiceActivityDetector
    """Listens to every appended byte."""
    item_id: str | None = None
    """The user item the speech in progress will become (``None``: no speech)."""
    audio_start_ms: int = 0
    """Where the speech in progress's audio begins."""


def appended_audio(event: JsonObject, wrong_type: str) -> bytes:
    """The bytes of an append event's base64 ``audio``; ``wrong_type`` is the message for a
    missing or non-string field."""
    audio = event.get("audio")
    if not isinstance(audio, str):
        raise ClientError(
            "missing_required_parameter" if audio is None else "invalid_type",
            wrong_type,
            param="audio",
        )
    try:
        return base64.b64decode(audio, validate=True)
    except (binascii.Error, ValueError):
        raise ClientError("invalid_value", "'audio' is not valid base64.", param="audio") from None


class InputAudio(ConversationHandlers):
    """The input audio buffer and turn detection of a :class:`~._simulator.SessionSimulator`."""

    # The simulator's attributes these methods use (see SessionSimulator.__init__).
    _timeline_ms: float  # audio appended since the session started
    _listener: _Listener | None  # turn detection, when it is on
    _interrupted: set[str]  # responses turn detection cancelled, until their response.done
    _response_due: bool  # a turn ended while the response it interrupted was ending
    _out_of_band: bool  # the last response accepted is out of the default conversation
    _wakeup: threading.Condition  # the session's; notified when a response ends
    _expired: bool

    # Turn detection settings

    def check_turn_detection(self, update: Mapping[str, Any], *, transcription: bool) -> None:
        """Refuse a ``session.update`` (``transcription``: a ``transcription_session.update``)
        whose turn detection is invalid, before anything of it is applied."""
        if transcription or self.spec.name == "beta":
            if "turn_detection" in update:
                where = "session.turn_detection"
                read_turn_detection(update["turn_detection"], where=where, ga=False)
            return
        audio = update.get("audio")
        audio_input = audio.get("input") if isinstance(audio, Mapping) else None
        if isinstance(audio_input, Mapping) and "turn_detection" in audio_input:
            where = "session.audio.input.turn_detection"
            read_turn_detection(audio_input["turn_detection"], where=where, ga=True)

    def configure_turn_detection(self) -> None:
        """Apply the session's turn detection (at the start, and after every update).

        The detector goes on unless the setting or the input format changed.
        """
        turns = self._turn_detection()
        fmt = self._input_format()
        listener = self._listener
        if listener is not None and listener.turns == turns and listener.detector.format == fmt:
            return
        if turns is None:
            self._listener = None
            return
        start_ms = math.ceil(self._timeline_ms)
        self._listener = _Listener(turns, VoiceActivityDetector(turns.vad, fmt, start_ms=start_ms))

    def _turn_detection(self) -> TurnDetection | None:
        if self._transcribing:  # a beta transcription session's setting
            value, where, ga = self._transcription.get("turn_detection"), "turn_detection", False
        elif self.spec.name == "ga":
            value = session_section(self.session, "input").get("turn_detection")
            where, ga = "audio.input.turn_detection", True
        else:
            value, where, ga = self.session.get("turn_detection"), "turn_detection", False
        turns = read_turn_detection(value, where=f"session.{where}", ga=ga)
        if turns is not None and self._transcription_only():
            return attrs.evolve(turns, create_response=False)
        return turns

    # Handlers: the input audio buffer

    def _on_audio_append(self, event: JsonObject) -> None:
        data = appended_audio(event, "'audio' must be a base64-encoded string.")
        self._audio += data
        self._timeline_ms += self._input_format().duration_ms(len(data))
        if self._listener is not None:
            self._listen(self._listener, data)

    def _on_audio_commit(self, _event: JsonObject) -> None:
        fmt = self._input_format()
        buffered_ms = fmt.duration_ms(len(self._audio))
        if buffered_ms < MIN_COMMIT_MS:
            raise ClientError(
                "input_audio_buffer_commit_empty",
                f"Cannot commit the input audio buffer: it holds {buffered_ms:.2f} ms of audio, "
                f"at least {MIN_COMMIT_MS:.0f} ms are needed.",
            )
        listener = self._listener
        # During speech, the item speech_started announced; the rest of it is another item.
        announced = listener.item_id if listener is not None else None
        self.commit_audio(0, len(self._audio), announced or random_id("item_"))
        if listener is not None and announced is not None:
            listener.item_id = random_id("item_")

    def _on_audio_clear(self, _event: JsonObject) -> None:
        self._audio.clear()
        self.emit({"type": "input_audio_buffer.cleared"})

    # Turn detection

    def _listen(self, listener: _Listener, data: bytes) -> None:
        """Feed appended audio to the detector and act on what it heard, in order."""
        interrupted = False
        for heard in listener.detector.feed(data):
            if isinstance(heard, SpeechStarted):
                interrupted = self._speech_started(listener, heard) or interrupted
            elif isinstance(heard, SpeechStopped):
                self._speech_stopped(listener, heard)
            elif isinstance(heard, IdleTimeout):
                self._idle_timed_out(listener, heard)
        if interrupted:
            # Real servers end the interrupted response at once: its response.done comes
            # before anything the next client event causes. The lock is released meanwhile.
            self._wakeup.wait_for(
                lambda: not self._responder.in_progress or self._expired, _INTERRUPT_WAIT
            )

    def _speech_started(self, listener: _Listener, heard: SpeechStarted) -> bool:
        """Announce the speech; return whether it interrupted a response."""
        listener.item_id = random_id("item_")
        # Audio before the buffer's start was committed or cleared: it cannot be the turn's.
        listener.audio_start_ms = max(heard.audio_start_ms, math.ceil(self._buffer_start_ms()))
        self.emit(
            {
                "type": "input_audio_buffer.speech_started",
                "audio_start_ms": listener.audio_start_ms,
                "item_id": listener.item_id,
            }
        )
        if not listener.turns.interrupt_response or self._out_of_band:
            return False
        response_id = self._responder.audio_response_id()
        if not self._responder.in_progress or response_id is None:
            return False
        try:
            self._responder.cancel({})
        except ClientError:  # the client cancelled it already: it ends as client_cancelled
            return False
        self._interrupted.add(response_id)
        return True

    def _speech_stopped(self, listener: _Listener, heard: SpeechStopped) -> None:
        item_id = listener.item_id
        assert item_id is not None  # the detector stops only speech it started
        listener.item_id = None
        self.emit(
            {
                "type": "input_audio_buffer.speech_stopped",
                "audio_end_ms": heard.audio_end_ms,
                "item_id": item_id,
            }
        )
        start = self._buffer_offset(listener.audio_start_ms)
        end = self._buffer_offset(heard.audio_end_ms)
        if end > start:  # else a clear took it all
            self.commit_audio(start, end, item_id)
            self._respond_to_turn(listener.turns)

    def _idle_timed_out(self, listener: _Listener, heard: IdleTimeout) -> None:
        item_id = random_id("item_")
        self.emit(
            {
                "type": "input_audio_buffer.timeout_triggered",
                "audio_start_ms": heard.audio_start_ms,
                "audio_end_ms": heard.audio_end_ms,
                "item_id": item_id,
            }
        )
        # "The empty audio will be committed", whatever the buffer holds.
        self.commit_audio(0, self._buffer_offset(heard.audio_end_ms), item_id)
        self._respond_to_turn(listener.turns)

    def _respond_to_turn(self, turns: TurnDetection) -> None:
        if not turns.create_response:
            return
        if not self._responder.in_progress:
            self._start_response()
        elif self._out_of_band or self._responder.audio_response_id() in self._interrupted:
            self._response_due = True  # once the response in progress is done
        # Else a response the turn did not interrupt goes on, and the turn gets none.

    def _start_response(self) -> None:
        """Create the response a turn asks for, with the session's settings."""
        self._responder.create({})
        self._out_of_band = False

    def _buffer_start_ms(self) -> float:
        """Where the buffered audio begins on the session's audio timeline."""
        return self._timeline_ms - self._input_format().duration_ms(len(self._audio))

    def _buffer_offset(self, at_ms: int) -> int:
        """The buffer offset (whole samples, within the buffer) of a timeline point."""
        fmt = self._input_format()
        offset = round((at_ms - self._buffer_start_ms()) * fmt.bytes_per_ms)
        offset -= offset % fmt.sample_width
        return min(max(offset, 0), len(self._audio))

    # The responses' progress (the simulator's calls, with the lock held)

    def response_accepted(self, *, out_of_band: bool) -> None:
        """A client's ``response.create`` was accepted."""
        self._out_of_band = out_of_band

    def response_started(self) -> None:
        """A response was created: the user is not idle while it is in progress."""
        super().response_started()
        if self._listener is not None:
            self._listener.detector.disarm_idle_timeout()

    def response_ending(self, response: JsonObject) -> None:
        """``response.done`` is about to go out: say why turn detection cancelled it."""
        if response.get("id") in self._interrupted and response.get("status") == "cancelled":
            response["status_details"] = {"type": "cancelled", "reason": "turn_detected"}

    def response_ended(self, response: JsonObject) -> None:
        """``response.done`` went out: start the idle timer, and a response a turn awaits."""
        self._interrupted.discard(response["id"])
        self._wakeup.notify_all()
        listener = self._listener
        if listener is not None:
            played_ms = sum(
                self.spoken[item["id"]].duration_ms
                for item in response.get("output") or []
                if item.get("id") in self.spoken
            )
            listener.detector.arm_idle_timeout(math.ceil(self._timeline_ms + played_ms))
        if self._response_due:
            self._response_due = False
            try:
                self._start_response()
            except Exception:  # on the response thread: report it, as a failing stream is
                _log.exception("local realtime server failed to start a turn's response")
                self.emit({"type": "error", "error": server_error().body(None)})
