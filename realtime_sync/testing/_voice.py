"""The local server's voice: a deterministic synthesiser and the recogniser that reads it back.

Speech here is a tone per character, not a voice. Every character of a transcript takes
:data:`MS_PER_CHARACTER` milliseconds: a sine of its own pitch that starts and ends at
zero, so the waveform has no clicks, is never silence and lasts exactly
``len(text) * MS_PER_CHARACTER`` ms. Printable ASCII characters each have their own
pitch; a whitespace character sounds as a space and any other character as ``"?"``.

The pitch of a character is chosen so that its slot holds a whole number of half cycles
(24 for a space, 4 more for each next ASCII code, up to 400 for ``"~"``: 200 Hz to
3333 Hz, below the Nyquist frequency of 8 kHz telephony audio). :func:`recognize` counts
the zero crossings of each slot to recover the text, which survives G.711 companding and
resampling (silence around the speech, and the faint ringing a resampler leaves in it, are
left out); audio it cannot read (a real voice, silence, noise) gives ``None``. Its loudness
(peaks at -12 dBFS) is speech to the server's voice activity detection (:mod:`._vad`).

Audio formats are the sessions' output and input formats: PCM16 at 24 kHz (GA
``{"type": "audio/pcm", "rate": 24000}``, beta ``"pcm16"``) and G.711 mu-law or A-law at
8 kHz (GA ``audio/pcmu`` / ``audio/pcma``, beta ``g711_ulaw`` / ``g711_alaw``).
"""

from __future__ import annotations

import math
import sys
from array import array
from collections.abc import Mapping
from functools import lru_cache
from typing import Literal

import attrs

__all__ = [
    "AUDIO_CHUNK_MS",
    "MS_PER_AUDIO_TOKEN",
    "MS_PER_CHARACTER",
    "AudioFormat",
    "SpokenAudio",
    "audio_format",
    "audio_tokens",
    "describe_audio",
    "heard_characters",
    "pcm_samples",
    "recognize",
    "recognize_speech",
    "synthesize",
    "synthesize_speech",
]

MS_PER_CHARACTER = 60
"""Speaking rate of the synthesiser: every character of a transcript takes 60 ms."""
AUDIO_CHUNK_MS = 100
"""Milliseconds of audio in each audio delta of a response (the last one may be shorter)."""
MS_PER_AUDIO_TOKEN = 50
"""Usage estimate: one audio token per 50 ms of audio, input or output."""

Codec = Literal["pcm16", "g711_ulaw", "g711_alaw"]

_AMPLITUDE = 8000  # about -12 dBFS
_FIRST_HALF_CYCLES = 24  # a space: 24 half cycles in 60 ms, 200 Hz
_HALF_CYCLE_STEP = 4  # each next character code: 4 more half cycles, 33 Hz higher
_FIRST_CODE, _LAST_CODE = 32, 126  # printable ASCII
_QUIET = 16  # samples this close to zero carry no sign (G.711 rounds zero to +-8)


@attrs.frozen
class AudioFormat:
    """A session audio format: codec and sample rate (mono)."""

    codec: Codec
    rate: int

    @property
    def sample_width(self) -> int:
        """Bytes per sample: 2 for PCM16, 1 for G.711."""
        return 2 if self.codec == "pcm16" else 1

    @property
    def bytes_per_ms(self) -> float:
        """Bytes of one millisecond of audio."""
        return self.rate * self.sample_width / 1000

    def duration_ms(self, size: int) -> float:
        """Milliseconds of ``size`` bytes of audio."""
        return size / self.bytes_per_ms


PCM16 = AudioFormat("pcm16", 24000)
_BETA_CODECS: Mapping[str, AudioFormat] = {
    "pcm16": PCM16,
    "g711_ulaw": AudioFormat("g711_ulaw", 8000),
    "g711_alaw": AudioFormat("g711_alaw", 8000),
}
_GA_TYPES: Mapping[str, str] = {
    "audio/pcm": "pcm16",
    "audio/pcmu": "g711_ulaw",
    "audio/pcma": "g711_alaw",
}


def _format_of(value: object) -> AudioFormat:
    """:func:`audio_format`, refusing names it does not know."""
    fmt = audio_format(value)
    if value is not None and fmt is PCM16:
        if isinstance(value, Mapping):
            known = value.get("type", "audio/pcm") == "audio/pcm"
        else:
            known = value == "pcm16"
        if not known:
            raise ValueError(f"unknown audio format {value!r}")
    return fmt


def audio_format(value: object) -> AudioFormat:
    """The format a session field names: a beta name, or a GA ``{"type": ...}`` object.

    Anything else (``None``, an unknown name) is the default, PCM16 at 24 kHz.
    """
    if isinstance(value, Mapping):
        value = _GA_TYPES.get(str(value.get("type", "audio/pcm")))
    return _BETA_CODECS.get(value, PCM16) if isinstance(value, str) else PCM16


def audio_tokens(duration_ms: float) -> int:
    """The usage estimate of that much audio: one token per :data:`MS_PER_AUDIO_TOKEN` ms."""
    return math.ceil(duration_ms / MS_PER_AUDIO_TOKEN) if duration_ms > 0 else 0


@attrs.define(eq=False)
class SpokenAudio:
    """The audio of one conversation item (its content part with audio) and what it says.

    An assistant item's grows as its response streams; a truncation cuts it for good.
    """

    streamed_ms: float = 0.0
    """Milliseconds of audio sent (assistant) or committed (user)."""
    transcript: str = ""
    """What the audio says, as far as it was sent."""
    cut_ms: float | None = None
    """Where ``conversation.item.truncate`` cut the audio, if it did."""

    @property
    def duration_ms(self) -> float:
        """Milliseconds of audio the item has now."""
        return self.streamed_ms if self.cut_ms is None else min(self.streamed_ms, self.cut_ms)

    @property
    def heard(self) -> str:
        """The transcript of the audio the item has now: what was spoken before a cut."""
        if self.cut_ms is None:
            return self.transcript
        return self.transcript[: heard_characters(self.cut_ms)]


def heard_characters(duration_ms: float) -> int:
    """How many characters of a transcript were fully spoken in ``duration_ms``."""
    return max(0, int(duration_ms // MS_PER_CHARACTER))


# Synthesis


def _spoken(character: str) -> int:
    """The ASCII code a character is spoken as."""
    code = ord(character)
    if _FIRST_CODE <= code <= _LAST_CODE:
        return code
    return ord(" ") if character.isspace() else ord("?")


def _half_cycles(code: int) -> int:
    return _FIRST_HALF_CYCLES + _HALF_CYCLE_STEP * (code - _FIRST_CODE)


def _slot_samples(rate: int) -> int:
    return rate * MS_PER_CHARACTER // 1000


def _pcm16_bytes(samples: array[int]) -> bytes:
    if sys.byteorder == "big":
        samples = array("h", samples)
        samples.byteswap()
    return samples.tobytes()


@lru_cache(maxsize=3 * (_LAST_CODE - _FIRST_CODE + 1))
def _tone(code: int, fmt: AudioFormat) -> bytes:
    """One character's slot, encoded in ``fmt``."""
    count = _slot_samples(fmt.rate)
    step = math.pi * _half_cycles(code) / count
    samples = array("h", (round(_AMPLITUDE * math.sin(step * n)) for n in range(count)))
    pcm = _pcm16_bytes(samples)
    if fmt.codec == "pcm16":
        return pcm
    from .. import audio  # only G.711 sessions need the codecs

    return audio.ulaw_encode(pcm) if fmt.codec == "g711_ulaw" else audio.alaw_encode(pcm)


def synthesize(text: str, fmt: AudioFormat = PCM16) -> bytes:
    """The speech of ``text`` in ``fmt``: ``len(text) * MS_PER_CHARACTER`` ms of tones."""
    return b"".join(_tone(_spoken(character), fmt) for character in text)


# Recognition


def pcm_samples(data: bytes, fmt: AudioFormat) -> array[int]:
    """The 16-bit samples of audio in ``fmt`` (G.711 decoded); a trailing odd byte is ignored."""
    if fmt.codec != "pcm16":
        from .. import audio  # only G.711 sessions need the codecs

        data = audio.ulaw_decode(data) if fmt.codec == "g711_ulaw" else audio.alaw_decode(data)
    samples = array("h")
    samples.frombytes(data[: len(data) // 2 * 2])
    if sys.byteorder == "big":
        samples.byteswap()
    return samples


def _read_slot(samples: array[int], start: int, end: int) -> int | None:
    """The ASCII code a slot of speech carries, or ``None`` when it is not one."""
    changes, previous, peak = 0, 0, 0
    for index in range(start, end):
        value = samples[index]
        if value > _QUIET:
            sign = 1
        elif value < -_QUIET:
            sign = -1
        else:
            continue
        if previous and sign != previous:
            changes += 1
        previous = sign
        peak = max(peak, abs(value))
    if not _AMPLITUDE / 2 <= peak <= _AMPLITUDE * 3 / 2:
        return None
    steps = (changes + 1 - _FIRST_HALF_CYCLES) / _HALF_CYCLE_STEP
    code = _FIRST_CODE + round(steps)
    if abs(steps - round(steps)) > 0.3 or not _FIRST_CODE <= code <= _LAST_CODE:
        return None
    return code


def _lobe_end(samples: array[int], index: int, step: int) -> int:
    """From a loud sample, the last one of its half cycle (``step`` -1: the first) that is
    not silence: ringing before and after the speech is smaller, or of the other sign."""
    sign = 1 if samples[index] > 0 else -1
    while 0 <= index + step < len(samples):
        after = samples[index + step]
        if after * sign <= _QUIET or abs(after) > abs(samples[index]):
            break
        index += step
    return index


def recognize(data: bytes, fmt: AudioFormat = PCM16) -> str | None:
    """The text whose :func:`synthesize` speech ``data`` is, or ``None`` if it is not such.

    Silence before and after the speech is ignored, and so is the faint ringing that a
    resampler leaves around it.
    """
    samples = pcm_samples(data, fmt)
    loud = _AMPLITUDE // 4
    first = next((i for i, v in enumerate(samples) if abs(v) > loud), None)
    if first is None:
        return None
    last = len(samples) - 1
    while abs(samples[last]) <= loud:
        last -= 1
    start = max(0, _lobe_end(samples, first, -1) - 1)  # a slot starts at a zero sample
    end = _lobe_end(samples, last, 1) + 1
    slot = _slot_samples(fmt.rate)
    count = round((end - start) / slot)
    if count == 0 or abs(end - start - count * slot) > slot // 10:
        return None
    characters = []
    for index in range(count):
        first = start + index * slot
        code = _read_slot(samples, first, min(first + slot, end))
        if code is None:
            return None
        characters.append(chr(code))
    return "".join(characters)


def describe_audio(duration_ms: float) -> str:
    """What the server hears in audio it cannot read: ``"(1234 ms of audio)"``."""
    return f"({round(duration_ms)} ms of audio)"


def synthesize_speech(text: str, audio_format: object = "pcm16") -> bytes:
    """The local server's speech of ``text``, in a session audio format.

    ``audio_format`` is named as sessions name it: ``"pcm16"``, ``"g711_ulaw"``,
    ``"g711_alaw"`` or a GA format object such as ``{"type": "audio/pcmu"}``. Append the
    result to the input audio buffer and commit it: the local server hears ``text``
    (printable ASCII; whitespace as a space, anything else as ``"?"``), as the answer and
    the input audio transcription show. Every character takes 60 ms.
    """
    return synthesize(text, _format_of(audio_format))


def recognize_speech(audio: bytes, audio_format: object = "pcm16") -> str | None:
    """The text the local server spoke in ``audio`` (say, its response audio deltas joined),
    or ``None`` when ``audio`` is not its speech. Formats as for :func:`synthesize_speech`."""
    return recognize(audio, _format_of(audio_format))
