"""ITU-T G.711 companding: mu-law and A-law, 16-bit little-endian PCM in and out.

Decoding goes through two 256-entry tables (the low and the high byte of each code's
sample) and ``bytes.translate``; encoding through a 65536-entry table indexed by the 16-bit
sample, built on first use. Both follow the ITU reference behaviour: mu-law quantises the 14
most significant bits of a sample and A-law the 13 most significant, a negative sample is
quantised through its one's complement (-1 is a "negative zero", not minus one step), and
every code decodes to the middle of its quantisation interval.
"""

from __future__ import annotations

import sys
from array import array
from collections.abc import Sequence
from functools import cache
from operator import itemgetter
from typing import TypeAlias

__all__ = ["BytesLike", "alaw_decode", "alaw_encode", "ulaw_decode", "ulaw_encode"]

BytesLike: TypeAlias = bytes | bytearray | memoryview
"""Audio bytes: ``bytes``, ``bytearray`` or a ``memoryview`` of either."""

_BIG_ENDIAN = sys.byteorder == "big"


def _ulaw_point(code: int) -> tuple[int, int]:
    """The 16-bit sample a mu-law code stands for, and half its quantisation step."""
    inverted = ~code & 0xFF  # mu-law codes are sent with every bit inverted
    exponent = (inverted >> 4) & 0x07
    mantissa = inverted & 0x0F
    magnitude = (((mantissa << 3) + 0x84) << exponent) - 0x84
    return (-magnitude if inverted & 0x80 else magnitude), 4 << exponent


def _alaw_point(code: int) -> tuple[int, int]:
    """The 16-bit sample an A-law code stands for, and half its quantisation step."""
    toggled = code ^ 0x55  # A-law codes are sent with the even bits inverted
    exponent = (toggled >> 4) & 0x07
    mantissa = toggled & 0x0F
    if exponent == 0:
        magnitude, half_step = (mantissa << 4) + 8, 8
    else:
        magnitude = ((mantissa << 4) + 0x108) << (exponent - 1)
        half_step = 8 << (exponent - 1)
    return (magnitude if toggled & 0x80 else -magnitude), half_step


def _translate_tables(values: Sequence[int]) -> tuple[bytes, bytes]:
    """``bytes.translate`` tables giving the low and the high byte of each code's sample."""
    return bytes(v & 0xFF for v in values), bytes((v >> 8) & 0xFF for v in values)


_ULAW_VALUES = tuple(_ulaw_point(code)[0] for code in range(256))
_ALAW_VALUES = tuple(_alaw_point(code)[0] for code in range(256))
_ULAW_LOW, _ULAW_HIGH = _translate_tables(_ULAW_VALUES)
_ALAW_LOW, _ALAW_HIGH = _translate_tables(_ALAW_VALUES)
_SIGN_OFF = bytes(code & 0x7F for code in range(256))


def _decode(data: BytesLike, low: bytes, high: bytes) -> bytes:
    codes = bytes(data)
    out = bytearray(2 * len(codes))
    out[0::2] = codes.translate(low)
    out[1::2] = codes.translate(high)
    return bytes(out)


def _encode_table(point: tuple[tuple[int, int], ...], positive: Sequence[int]) -> bytes:
    """The code of every 16-bit sample, indexed by the sample read in this machine's order.

    ``positive`` lists the codes of non-negative samples, smallest value first. A code
    takes the samples of its quantisation interval (its value plus or minus half a step,
    the first one starting at zero and the last one running to the end of the range).
    Negative samples mirror the others through the one's complement: -1 - x encodes as x,
    with the sign bit clear.
    """
    starts = [max(0, point[code][0] - point[code][1]) for code in positive] + [0x8000]
    non_negative = b"".join(
        bytes((code,)) * (starts[index + 1] - starts[index]) for index, code in enumerate(positive)
    )  # samples 0 .. 32767
    negative = non_negative[::-1].translate(_SIGN_OFF)  # samples -32768 .. -1
    table = non_negative + negative  # indexed by the sample as an unsigned 16-bit number
    return _swap_index(table) if _BIG_ENDIAN else table


def _swap_index(table: bytes) -> bytes:
    """Re-index a 65536-entry table by its byte-swapped 16-bit index."""
    return b"".join(table[low::256] for low in range(256))


@cache
def _ulaw_table() -> bytes:
    # Non-negative samples, smallest first: 0xFF (zero) down to 0x80 (the largest).
    points = tuple(_ulaw_point(code) for code in range(256))
    return _encode_table(points, range(0xFF, 0x7F, -1))


@cache
def _alaw_table() -> bytes:
    # Non-negative samples, smallest first: sign bit set, then magnitude 0..127 (even bits
    # toggled on the wire).
    points = tuple(_alaw_point(code) for code in range(256))
    return _encode_table(points, [(0x80 | index) ^ 0x55 for index in range(128)])


_BLOCK = 4096  # samples looked up at a time (a 20 ms frame at 8 kHz is 160)


def _encode(pcm16: BytesLike, table: bytes) -> bytes:
    view = memoryview(pcm16).cast("B")
    if len(view) % 2:
        raise ValueError(f"PCM16 audio has whole 2-byte samples; got {len(view)} bytes")
    samples = array("H")
    samples.frombytes(view)
    if len(samples) <= _BLOCK:
        return _look_up(samples, table)
    blocks = range(0, len(samples), _BLOCK)
    return b"".join(_look_up(samples[start : start + _BLOCK], table) for start in blocks)


def _look_up(samples: array[int], table: bytes) -> bytes:
    if len(samples) > 1:
        # One C call for the whole block: faster than map() over the samples.
        codes: tuple[int, ...] = itemgetter(*samples)(table)
        return bytes(codes)
    return bytes(table[sample] for sample in samples)


def ulaw_encode(pcm16: BytesLike) -> bytes:
    """G.711 mu-law: 16-bit little-endian PCM in, one byte per sample out (rate unchanged)."""
    return _encode(pcm16, _ulaw_table())


def ulaw_decode(data: BytesLike) -> bytes:
    """G.711 mu-law bytes in, 16-bit little-endian PCM out (2 bytes per input byte)."""
    return _decode(data, _ULAW_LOW, _ULAW_HIGH)


def alaw_encode(pcm16: BytesLike) -> bytes:
    """G.711 A-law: 16-bit little-endian PCM in, one byte per sample out (rate unchanged)."""
    return _encode(pcm16, _alaw_table())


def alaw_decode(data: BytesLike) -> bytes:
    """G.711 A-law bytes in, 16-bit little-endian PCM out (2 bytes per input byte)."""
    return _decode(data, _ALAW_LOW, _ALAW_HIGH)
