"""Audio helpers for Realtime sessions; numpy is used when installed, never required.

- PCM16 and base64: :func:`pcm16_to_base64`, :func:`base64_to_pcm16`.
- Sizes and slices: :func:`duration_ms`, :func:`chunks`.
- WAV files through the standard library's ``wave``: :func:`read_wav` gives an
  :class:`AudioClip`, :func:`write_wav` writes one (8-bit unsigned, 16/24/32-bit signed
  integer PCM, any number of channels).
- Conversion of any integer PCM to mono PCM16 at another rate with a band-limited
  resampler: :func:`to_pcm16`.
- ITU-T G.711: :func:`ulaw_encode`, :func:`ulaw_decode`, :func:`alaw_encode`,
  :func:`alaw_decode`.
- Session formats: :func:`encode_for_format` turns a WAV file, an :class:`AudioClip` or
  PCM16 bytes into what a session with a given input format expects;
  :func:`decode_from_format` turns output audio back into PCM16; :func:`format_rate` and
  :func:`format_sample_width` describe a format.
- Loudness: :func:`level_dbfs`, the level of audio in a session format.

A session audio format is given as the session names it: GA ``{"type": "audio/pcm",
"rate": 24000}``, ``{"type": "audio/pcmu"}`` or ``{"type": "audio/pcma"}`` (a dict or the
session's ``AudioFormat`` object, or just the type string), or a beta string ``"pcm16"``,
``"g711_ulaw"`` or ``"g711_alaw"``. None stands for the default, PCM16 at 24 kHz. PCM is
mono 16-bit little-endian at 24 kHz; G.711 is one byte per sample at 8 kHz.

All PCM here is little-endian, whatever the machine.
"""

from __future__ import annotations

import base64
import binascii
import io
import math
import operator
import os
import sys
import wave
from array import array
from collections.abc import Iterator, Mapping
from typing import IO, Any, Protocol, TypeAlias

import attrs

from ._audio_convert import convert as _convert
from ._audio_g711 import BytesLike, alaw_decode, alaw_encode, ulaw_decode, ulaw_encode

__all__ = [
    "G711_RATE",
    "SESSION_RATE",
    "AudioClip",
    "AudioFormatSpec",
    "AudioSource",
    "BytesLike",
    "alaw_decode",
    "alaw_encode",
    "base64_to_pcm16",
    "chunks",
    "decode_from_format",
    "duration_ms",
    "encode_for_format",
    "format_rate",
    "format_sample_width",
    "level_dbfs",
    "pcm16_to_base64",
    "read_wav",
    "to_pcm16",
    "ulaw_decode",
    "ulaw_encode",
    "write_wav",
]

_BIG_ENDIAN = sys.byteorder == "big"
SESSION_RATE = 24000
"""Hz: the rate of the Realtime API's PCM16 audio."""
G711_RATE = 8000
"""Hz: the rate of G.711 audio."""


class _FormatObject(Protocol):
    """A session's ``AudioFormat`` (or anything with a ``type``, and maybe a ``rate``)."""

    @property
    def type(self) -> str | None: ...


AudioFormatSpec: TypeAlias = str | Mapping[str, Any] | _FormatObject | None
"""A session audio format: a GA type or beta name, a GA format dict or object, or None."""


# --- PCM16, base64, sizes -------------------------------------------------------------------


def pcm16_to_base64(data: BytesLike) -> str:
    """PCM16 bytes (whole 2-byte samples) as base64 text, as ``input_audio_buffer.append``
    sends them."""
    data = bytes(data)
    if len(data) % 2:
        raise ValueError(f"PCM16 audio has whole 2-byte samples; got {len(data)} bytes")
    return base64.b64encode(data).decode("ascii")


def base64_to_pcm16(text: str) -> bytes:
    """Base64 text (such as an audio delta's ``delta``) as PCM16 bytes (whole samples)."""
    try:
        data = base64.b64decode(text, validate=True)
    except binascii.Error as error:
        raise ValueError(f"not base64 text: {error}") from None
    if len(data) % 2:
        raise ValueError(f"PCM16 audio has whole 2-byte samples; got {len(data)} bytes")
    return data


def _frame_size(rate: int, sample_width: int, channels: int) -> int:
    for name, value in (("rate", rate), ("sample_width", sample_width), ("channels", channels)):
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise ValueError(f"{name} must be a positive integer, not {value!r}")
    return sample_width * channels


def duration_ms(
    data: BytesLike, *, rate: int = SESSION_RATE, sample_width: int = 2, channels: int = 1
) -> float:
    """How long ``data`` plays, in ms, at ``rate`` Hz with ``sample_width`` bytes per sample
    and ``channels`` interleaved channels."""
    frame = _frame_size(rate, sample_width, channels)
    return memoryview(data).nbytes * 1000 / (frame * rate)


def chunks(
    data: BytesLike,
    *,
    ms: int,
    rate: int = SESSION_RATE,
    sample_width: int = 2,
    channels: int = 1,
) -> Iterator[bytes]:
    """Cut ``data`` into pieces of ``ms`` milliseconds each, in whole frames; the last may be
    shorter.

    When ``ms`` is not a whole number of samples at ``rate`` Hz, piece ``k`` ends at frame
    ``floor((k + 1) * ms * rate / 1000)``, so pieces differ by at most one frame and never
    drift. Raises ValueError for a partial frame at the end or a piece under one frame.
    """
    data = _whole_frames(data, rate, sample_width, channels)
    if isinstance(ms, bool) or not isinstance(ms, (int, float)) or not ms > 0:
        raise ValueError(f"ms must be a positive number, not {ms!r}")
    if ms * rate < 1000:
        raise ValueError(f"{ms} ms at {rate} Hz is less than one sample")
    frame = sample_width * channels
    return _pieces(data, frame, ms * rate, len(data) // frame)


def _whole_frames(data: BytesLike, rate: int, sample_width: int, channels: int) -> bytes:
    """``data`` as bytes, checked to be whole frames of integer PCM (1 to 4-byte samples)."""
    frame = _frame_size(rate, sample_width, channels)
    if sample_width > 4:
        raise ValueError(f"sample_width must be 1 to 4 bytes, not {sample_width}")
    data = bytes(data)
    if len(data) % frame:
        raise ValueError(
            f"{len(data)} bytes are not whole frames of {sample_width} byte(s) "
            f"x {channels} channel(s)"
        )
    return data


def _pieces(data: bytes, frame: int, frames_per_1000: float, total: int) -> Iterator[bytes]:
    index = begin = 0
    while begin < total:
        index += 1
        end = min(total, int(index * frames_per_1000 // 1000))
        yield data[begin * frame : end * frame]
        begin = end


# --- WAV ------------------------------------------------------------------------------------


def _show_size(data: bytes) -> str:
    return f"<{len(data)} bytes>"


@attrs.frozen
class AudioClip:
    """Integer PCM audio as a WAV file holds it.

    ``data`` is the interleaved frames, little-endian: 8-bit samples unsigned (128 is
    silence), wider ones signed. ``rate`` is in Hz, ``sample_width`` in bytes.
    """

    data: bytes = attrs.field(repr=_show_size)
    rate: int
    channels: int
    sample_width: int

    @property
    def duration_ms(self) -> float:
        """How long the clip plays, in ms."""
        return duration_ms(
            self.data, rate=self.rate, sample_width=self.sample_width, channels=self.channels
        )

    def to_pcm16(self, target_rate: int = SESSION_RATE) -> bytes:
        """The clip as mono PCM16 at ``target_rate`` Hz (see :func:`to_pcm16`)."""
        return to_pcm16(
            self.data,
            rate=self.rate,
            channels=self.channels,
            sample_width=self.sample_width,
            target_rate=target_rate,
        )


PathOrFile: TypeAlias = str | os.PathLike[str] | IO[bytes]

# The subformat that marks integer PCM in a WAVE_FORMAT_EXTENSIBLE header (after its tag).
_PCM_GUID_TAIL = b"\x00\x00\x00\x00\x10\x00\x80\x00\x00\xaa\x00\x38\x9b\x71"


def _as_plain_pcm(raw: bytes) -> bytes | None:
    """A WAVE_FORMAT_EXTENSIBLE file of integer PCM relabelled as plain PCM, for ``wave``
    versions that only read the plain tag (before Python 3.12); None when it is not one."""
    position = 12
    while position + 8 <= len(raw):
        size = int.from_bytes(raw[position + 4 : position + 8], "little")
        body = position + 8
        if raw[position : position + 4] == b"fmt ":
            extensible_pcm = (
                size >= 40
                and raw[body : body + 2] == b"\xfe\xff"
                and raw[body + 24 : body + 40] == b"\x01\x00" + _PCM_GUID_TAIL
            )
            return raw[:body] + b"\x01\x00" + raw[body + 2 :] if extensible_pcm else None
        position = body + size + (size & 1)
    return None


def _open_wav(raw: bytes) -> wave.Wave_read:
    try:
        return wave.open(io.BytesIO(raw), "rb")
    except wave.Error as error:
        plain = _as_plain_pcm(raw) if raw[:4] == b"RIFF" and raw[8:12] == b"WAVE" else None
        if plain is None:
            raise ValueError(f"not an integer PCM WAV file: {error}") from None
        return _open_wav(plain)
    except EOFError:
        raise ValueError("not a WAV file: it ends too early") from None


def _to_little_endian(data: bytes, sample_width: int) -> bytes:
    """Native-order samples as little-endian ones (and back): a no-op on most machines."""
    return _swap_bytes(data, sample_width) if _BIG_ENDIAN else data


def _swap_bytes(data: bytes, sample_width: int) -> bytes:
    """Reverse the bytes of every ``sample_width``-byte sample."""
    if sample_width == 1:
        return data
    swapped = bytearray(len(data))
    for offset in range(sample_width):
        swapped[offset::sample_width] = data[sample_width - 1 - offset :: sample_width]
    return bytes(swapped)


def read_wav(path_or_file: PathOrFile) -> AudioClip:
    """Read a WAV file of integer PCM (a path, or a binary file object read from where it
    is) into an :class:`AudioClip`. Raises ValueError for other files (such as float WAV)."""
    if isinstance(path_or_file, (str, os.PathLike)):
        with open(os.fspath(path_or_file), "rb") as file:
            raw = file.read()
    else:
        raw = path_or_file.read()
        if not isinstance(raw, bytes):
            raise TypeError("read_wav needs a file opened in binary mode ('rb')")
    with _open_wav(raw) as reader:
        channels, width = reader.getnchannels(), reader.getsampwidth()
        rate = reader.getframerate()
        data = reader.readframes(reader.getnframes())
    # ``wave`` gives samples in the machine's order; a short last frame is dropped.
    data = _to_little_endian(data[: len(data) - len(data) % (channels * width)], width)
    return AudioClip(data=data, rate=rate, channels=channels, sample_width=width)


def write_wav(
    path_or_file: PathOrFile,
    data: BytesLike,
    *,
    rate: int = SESSION_RATE,
    channels: int = 1,
    sample_width: int = 2,
) -> None:
    """Write integer PCM ``data`` (little-endian, 8-bit unsigned) as a WAV file, to a path or
    a binary file object (left open; it need not be seekable). ``rate`` in Hz,
    ``sample_width`` in bytes (1 to 4)."""
    data = _whole_frames(data, rate, sample_width, channels)
    if isinstance(path_or_file, (str, os.PathLike)):
        with open(os.fspath(path_or_file), "wb") as file:
            _write(file, data, rate, channels, sample_width)
    else:
        _write(path_or_file, data, rate, channels, sample_width)


def _write(file: IO[bytes], data: bytes, rate: int, channels: int, sample_width: int) -> None:
    with wave.open(file, "wb") as writer:
        writer.setnchannels(channels)
        writer.setsampwidth(sample_width)
        writer.setframerate(rate)
        # Known in advance, the header is written once: no seeking back.
        writer.setnframes(len(data) // (channels * sample_width))
        # ``wave`` swaps samples from the machine's order to little-endian.
        writer.writeframesraw(_to_little_endian(data, sample_width))


# --- conversion -----------------------------------------------------------------------------


def to_pcm16(
    data: BytesLike,
    *,
    rate: int,
    channels: int,
    sample_width: int,
    target_rate: int = SESSION_RATE,
) -> bytes:
    """Integer PCM (``rate`` Hz, interleaved ``channels``, ``sample_width`` bytes of 1 to 4,
    8-bit unsigned) as mono 16-bit little-endian PCM at ``target_rate`` Hz.

    Channels are averaged; the rate is changed by a band-limited (windowed-sinc polyphase)
    resampler that keeps the duration (to within half an output sample) and removes what
    the new rate cannot carry. Uses numpy when it is installed.
    """
    data = _whole_frames(data, rate, sample_width, channels)
    _frame_size(target_rate, 1, 1)
    return _convert(
        data,
        rate=rate,
        channels=channels,
        sample_width=sample_width,
        target_rate=target_rate,
    )


# --- session formats ------------------------------------------------------------------------

_FORMATS = {
    "audio/pcm": "pcm",
    "pcm16": "pcm",
    "audio/pcmu": "ulaw",
    "g711_ulaw": "ulaw",
    "audio/pcma": "alaw",
    "g711_alaw": "alaw",
}


def _parse_format(format: AudioFormatSpec) -> tuple[str, int]:
    """("pcm", "ulaw" or "alaw"; the rate in Hz) of a session audio format."""
    rate: object = None
    if format is None:
        name: object = "audio/pcm"
    elif isinstance(format, str):
        name = format
    elif isinstance(format, Mapping):
        name, rate = format.get("type"), format.get("rate")
    else:
        name, rate = getattr(format, "type", None), getattr(format, "rate", None)
    kind = _FORMATS.get(name) if isinstance(name, str) else None
    if kind is None:
        raise ValueError(f"unknown audio format: {format!r}")
    if rate is None:
        return kind, SESSION_RATE if kind == "pcm" else G711_RATE
    if isinstance(rate, bool) or not isinstance(rate, int) or rate <= 0:
        raise ValueError(f"audio format {format!r} has an invalid rate")
    if kind != "pcm" and rate != G711_RATE:
        raise ValueError(f"audio format {format!r}: G.711 audio is {G711_RATE} Hz")
    return kind, rate


def format_rate(format: AudioFormatSpec) -> int:
    """The sample rate of a session audio format, in Hz (24000 for PCM, 8000 for G.711)."""
    return _parse_format(format)[1]


def format_sample_width(format: AudioFormatSpec) -> int:
    """Bytes per sample of a session audio format: 2 for PCM16, 1 for G.711."""
    return 2 if _parse_format(format)[0] == "pcm" else 1


AudioSource: TypeAlias = (
    str | os.PathLike[str] | IO[bytes] | bytes | bytearray | memoryview | AudioClip
)
"""A WAV file (path or binary file object), an :class:`AudioClip`, or PCM16 24 kHz mono."""


def _clip_of(source: AudioSource) -> AudioClip:
    if isinstance(source, AudioClip):
        return source
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
        if data[:4] == b"RIFF" and data[8:12] == b"WAVE":  # a whole WAV file, read as bytes
            return read_wav(io.BytesIO(data))
        if len(data) % 2:
            raise ValueError(f"PCM16 audio has whole 2-byte samples; got {len(data)} bytes")
        return AudioClip(data=data, rate=SESSION_RATE, channels=1, sample_width=2)
    if isinstance(source, (str, os.PathLike)) or hasattr(source, "read"):
        return read_wav(source)
    raise TypeError(
        "audio must be a WAV path or binary file object, an AudioClip or PCM16 bytes, "
        f"not {type(source).__name__}"
    )


def encode_for_format(source: AudioSource, format: AudioFormatSpec) -> bytes:
    """Audio ready for ``input_audio_buffer.append`` in a session audio ``format``: mono PCM16
    at the format's rate (24000 Hz), or G.711 bytes at 8000 Hz.

    ``source`` is a WAV file (a path or a binary file object), an :class:`AudioClip`, or raw
    PCM16 bytes, mono at 24 kHz (bytes that hold a whole WAV file are read as one). Raises
    ValueError for an unknown format.
    """
    kind, rate = _parse_format(format)
    clip = _clip_of(source)
    pcm = clip.to_pcm16(rate)
    if kind == "ulaw":
        return ulaw_encode(pcm)
    if kind == "alaw":
        return alaw_encode(pcm)
    return pcm


def decode_from_format(data: BytesLike, format: AudioFormatSpec) -> bytes:
    """Audio in a session audio ``format`` (such as an output audio delta, decoded from
    base64) as mono PCM16 at the format's rate (:func:`format_rate`, Hz)."""
    kind, _rate = _parse_format(format)
    if kind == "ulaw":
        return ulaw_decode(data)
    if kind == "alaw":
        return alaw_decode(data)
    data = bytes(data)
    if len(data) % 2:
        raise ValueError(f"PCM16 audio has whole 2-byte samples; got {len(data)} bytes")
    return data


def level_dbfs(data: BytesLike, format: AudioFormatSpec = None) -> float:
    """How loud audio in a session audio ``format`` is: the RMS of its samples around their
    mean (a constant offset is silence), in dB relative to full scale; ``-inf`` for silence
    and for no samples. The local server's turn detection measures its frames this way."""
    samples = array("h", _to_little_endian(decode_from_format(data, format), 2))
    count, total = len(samples), sum(samples)
    spread = count * sum(map(operator.mul, samples, samples)) - total * total  # count^2 x var
    if not spread:
        return -math.inf
    return 10 * math.log10(spread / (count * 32768.0) ** 2)
