"""Voice activity detection for the local server: a pure, deterministic state machine.

:class:`VoiceActivityDetector` is fed the input audio of a session, chunk by chunk, in the
session's input format, and answers what happened in it: speech started, speech stopped,
or the user stayed silent too long after a response. It knows nothing of sockets, threads,
events or items; :mod:`._input_audio` turns its answers into protocol events.

The audio is analysed in frames of :data:`FRAME_MS` (10 ms, whatever the sample rate), so
every offset it reports is a multiple of 10 ms on the session's audio timeline (the
milliseconds of audio appended since the session started), and the answers do not depend
on how the audio was split into chunks: a frame may span several chunks.

A frame is speech when its level (the RMS of its samples around their mean, so a constant
offset is silence, in dB relative to full scale) reaches the level the ``threshold`` asks
for: ``threshold`` 0.0 to 1.0 maps linearly onto -60 dBFS to 0 dBFS
(:func:`speech_level_dbfs`), so the default 0.5 needs -30 dBFS, and 1.0 full scale, which no
frame reaches (its RMS around the mean stays below 32768): at 1.0 nothing is speech. The
server's own synthesised speech (peaks at -12 dBFS, about -15 dBFS RMS) is speech up to a
threshold of about 0.74; digital silence never is, and low noise (below -60 dBFS, or below
-30 dBFS at the default) is not. Real servers use a model; this is only loud enough or not.

- Speech starts in the first speech frame: :class:`SpeechStarted` reports where (the
  frame's start) and where the turn's audio begins (that minus ``prefix_padding_ms``, not
  before 0).
- Speech stops once ``silence_duration_ms`` of frames in a row are not speech (rounded up
  to whole frames, at least one): :class:`SpeechStopped` reports the end of the last of
  them, so the silence is part of the turn's audio, as the official documentation of
  ``audio_end_ms`` says.
- With ``idle_timeout_ms`` and an armed idle timer (:meth:`VoiceActivityDetector.arm_idle_timeout`,
  from where the last response's audio would have finished playing), :class:`IdleTimeout`
  reports the silent stretch once it is that long; speech disarms the timer.
"""

from __future__ import annotations

import math
import operator
from array import array
from typing import TypeAlias

import attrs

from ._voice import AudioFormat, pcm_samples

__all__ = [
    "FRAME_MS",
    "IdleTimeout",
    "SpeechStarted",
    "SpeechStopped",
    "VadEvent",
    "VadSettings",
    "VoiceActivityDetector",
    "speech_level_dbfs",
]

FRAME_MS = 10
"""The detector's resolution: it decides speech or silence for every 10 ms of audio."""
QUIETEST_DBFS = -60.0
"""The level ``threshold`` 0.0 asks for; 1.0 asks for full scale (0 dBFS), never reached."""
_FULL_SCALE = 32768.0


def speech_level_dbfs(threshold: float) -> float:
    """The frame level, in dBFS, that counts as speech at ``threshold`` (0.0 to 1.0); 0 dBFS
    at 1.0, which no frame reaches."""
    return QUIETEST_DBFS * (1.0 - threshold)


@attrs.frozen
class VadSettings:
    """What the detector listens for (a session's turn detection settings)."""

    threshold: float = 0.5
    """How loud a frame must be to be speech, 0.0 to 1.0 (see :func:`speech_level_dbfs`);
    1.0: nothing is speech."""
    prefix_padding_ms: int = 300
    """Audio before the first speech frame that belongs to the turn."""
    silence_duration_ms: int = 200
    """Silence after speech that ends it."""
    idle_timeout_ms: int | None = None
    """Silence after an armed idle timer's start that reports :class:`IdleTimeout`."""


@attrs.frozen
class SpeechStarted:
    """Speech began."""

    audio_start_ms: int
    """Where the turn's audio begins: the first speech frame less the prefix padding, not
    before 0."""
    speech_start_ms: int
    """Where the first speech frame begins."""


@attrs.frozen
class SpeechStopped:
    """Speech ended: the silence that ends it was heard."""

    audio_end_ms: int
    """Where the turn's audio ends: the end of that silence."""


@attrs.frozen
class IdleTimeout:
    """No speech came for ``idle_timeout_ms`` after the idle timer's start."""

    audio_start_ms: int
    """Where the silent stretch begins: the idle timer's start."""
    audio_end_ms: int
    """Where it ends: the end of the frame that made it long enough."""


VadEvent: TypeAlias = SpeechStarted | SpeechStopped | IdleTimeout


class VoiceActivityDetector:
    """Speech and silence in a stream of input audio, 10 ms at a time."""

    def __init__(self, settings: VadSettings, fmt: AudioFormat, *, start_ms: int = 0) -> None:
        """Listen from ``start_ms`` of the session's audio timeline on.

        Args:
            settings: What counts as speech, and how much silence ends it.
            fmt: The format of the audio :meth:`feed` gets.
            start_ms: Where on the timeline the first byte fed lies.
        """
        self.settings = settings
        self.format = fmt
        self._frame_samples = fmt.rate * FRAME_MS // 1000
        self._frame_bytes = self._frame_samples * fmt.sample_width
        # A frame is speech when n * sum(x^2) - sum(x)^2 (n^2 times its variance) reaches this.
        level = _FULL_SCALE * 10 ** (speech_level_dbfs(settings.threshold) / 20)
        self._least_energy = (level * self._frame_samples) ** 2
        self._frames_to_stop = max(1, math.ceil(settings.silence_duration_ms / FRAME_MS))
        self._start_ms = start_ms
        self._frames = 0  # frames analysed
        self._unframed = b""  # the start of the next frame
        self._speaking = False
        self._silent_frames = 0  # silent frames in a row since the last speech
        self._idle_from: int | None = None  # where the armed idle timer started

    @property
    def position_ms(self) -> int:
        """Where the audio analysed so far ends (a partial frame waits for more)."""
        return self._start_ms + self._frames * FRAME_MS

    @property
    def speaking(self) -> bool:
        """Speech started and has not stopped yet."""
        return self._speaking

    def feed(self, data: bytes) -> list[VadEvent]:
        """Analyse the next chunk of audio; return what happened in it, in order."""
        data = self._unframed + data
        framed = len(data) - len(data) % self._frame_bytes
        self._unframed = data[framed:]
        samples = pcm_samples(data[:framed], self.format)
        events: list[VadEvent] = []
        for offset in range(0, len(samples), self._frame_samples):
            event = self._step(self._is_speech(samples[offset : offset + self._frame_samples]))
            if event is not None:
                events.append(event)
        return events

    def arm_idle_timeout(self, from_ms: int) -> None:
        """Start the idle timer at ``from_ms`` (which may lie ahead); no-op without
        ``idle_timeout_ms`` or while speech goes on (the speech's turn comes first)."""
        if self.settings.idle_timeout_ms is not None and not self._speaking:
            self._idle_from = from_ms

    def disarm_idle_timeout(self) -> None:
        """Stop the idle timer (a response began)."""
        self._idle_from = None

    def _is_speech(self, frame: array[int]) -> bool:
        count, total = len(frame), sum(frame)
        energy: int = sum(map(operator.mul, frame, frame))
        return count * energy - total * total >= self._least_energy

    def _step(self, speech: bool) -> VadEvent | None:
        """Take one frame's verdict; return what it made happen."""
        begin = self.position_ms
        self._frames += 1
        end = begin + FRAME_MS
        if speech:
            self._silent_frames = 0
            if self._speaking:
                return None
            self._speaking = True
            self._idle_from = None
            return SpeechStarted(
                audio_start_ms=max(0, begin - self.settings.prefix_padding_ms),
                speech_start_ms=begin,
            )
        if self._speaking:
            self._silent_frames += 1
            if self._silent_frames < self._frames_to_stop:
                return None
            self._speaking = False
            return SpeechStopped(audio_end_ms=end)
        timeout = self.settings.idle_timeout_ms
        if self._idle_from is not None and timeout is not None and end - self._idle_from >= timeout:
            event = IdleTimeout(audio_start_ms=self._idle_from, audio_end_ms=end)
            self._idle_from = None
            return event
        return None
