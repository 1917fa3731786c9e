"""Sample conversion: any integer PCM (8/16/24/32-bit, N channels, any rate) to mono PCM16.

Channels are averaged, samples scaled to 16-bit units, and the rate changed by a
band-limited polyphase resampler: a Kaiser-windowed sinc whose cut-off sits just below the
lower of the two Nyquist frequencies, so that a tone the new rate cannot carry is removed
instead of folding back as an alias. Output sample ``n`` is the input signal evaluated at
``n * rate / target_rate`` input samples, so timing is exact and the output holds
``round(frames * target_rate / rate)`` samples.

Pure Python by default; numpy, when it can be imported, does the same computation faster.
The filter coefficients are computed here, in pure Python, for both.
"""

from __future__ import annotations

import importlib
import math
import sys
from array import array
from collections.abc import Callable, Iterable, Iterator, Sequence
from functools import cache
from itertools import repeat
from operator import add, mul
from typing import Any

import attrs

__all__ = ["convert", "numpy_module"]

_BIG_ENDIAN = sys.byteorder == "big"

# Filter design, relative to the lower of the two rates: flat (to within the stop-band
# ripple) up to PASS of it, at least STOP_DB down from half of it (the lower Nyquist).
_PASS = 0.42
_STOP_DB = 80.0
# Rate pairs whose reduced ratio needs more phases than this get a fixed grid of
# _GRID_PHASES filters, linearly interpolated between neighbours.
_MAX_PHASES = 512
_GRID_PHASES = 256

_Dot = Callable[[Sequence[float], Sequence[float]], float]


def _sum_of_products(left: Sequence[float], right: Sequence[float]) -> float:
    total: float = sum(map(mul, left, right))
    return total


_dot: _Dot = getattr(math, "sumprod", _sum_of_products)  # Python 3.12+: in C

_numpy_state: list[Any] = []  # [module or None] once looked for


def numpy_module() -> Any:
    """numpy (1.20 or later) when it can be imported, else None; looked for once."""
    if not _numpy_state:
        try:
            numpy: Any = importlib.import_module("numpy")
        except ImportError:
            numpy = None
        tricks = getattr(getattr(numpy, "lib", None), "stride_tricks", None)
        if not hasattr(tricks, "sliding_window_view"):
            numpy = None  # absent, or older than 1.20
        _numpy_state.append(numpy)
    return _numpy_state[0]


# --- filter design --------------------------------------------------------------------------


def _bessel_i0(x: float) -> float:
    """Modified Bessel function of the first kind, order 0 (power series)."""
    total = term = 1.0
    quarter_square = x * x / 4.0
    k = 1
    while term > total * 1e-17:
        term *= quarter_square / (k * k)
        total += term
        k += 1
    return total


@attrs.frozen
class Kernel:
    """A polyphase filter for one pair of rates.

    Output ``n`` sits at input position ``n * down / up``; with ``exact`` its filter is
    ``phases[(n * down) % up]``, otherwise the filters ``q`` and ``q + 1`` of a grid of
    ``len(phases) - 1`` steps are blended. A filter applies to the ``taps`` inputs from
    ``floor(position) - taps // 2 + 1`` on.
    """

    up: int
    down: int
    taps: int
    exact: bool
    phases: tuple[tuple[float, ...], ...]


@cache
def kernel(rate: int, target_rate: int) -> Kernel:
    """The resampling filter from ``rate`` to ``target_rate`` (Hz), computed once per pair."""
    common = math.gcd(rate, target_rate)
    up, down = target_rate // common, rate // common
    lower = min(rate, target_rate)
    # Normalised to the input rate (cycles per input sample).
    cutoff = (_PASS + 0.5) / 2 * lower / rate
    transition = (0.5 - _PASS) * lower / rate
    beta = 0.1102 * (_STOP_DB - 8.7)
    length = (_STOP_DB - 7.95) / (2.285 * 2 * math.pi * transition)
    half = max(2, math.ceil(length / 2))
    scale = 1.0 / _bessel_i0(beta)

    def phase(offset: float) -> tuple[float, ...]:
        # The filter for an output ``offset`` input samples after an input (0 <= offset <= 1).
        coefficients = []
        for tap in range(2 * half):
            u = tap - half + 1 - offset  # distance from the output, in input samples
            ratio = u / half
            window = _bessel_i0(beta * math.sqrt(max(0.0, 1.0 - ratio * ratio))) * scale
            arg = 2 * cutoff * u
            sinc = math.sin(math.pi * arg) / (math.pi * arg) if arg else 1.0
            coefficients.append(2 * cutoff * sinc * window)
        total = sum(coefficients)  # unit gain at 0 Hz for every phase
        return tuple(c / total for c in coefficients)

    exact = up <= _MAX_PHASES
    steps = up if exact else _GRID_PHASES
    phases: list[tuple[float, ...]] = []
    for index in range(steps if exact else steps + 1):
        mirror = steps - index  # offsets o and 1 - o: the same taps, reversed
        if mirror < index:
            phases.append(phases[mirror][::-1])
        else:
            phases.append(phase(index / steps))
    return Kernel(up=up, down=down, taps=2 * half, exact=exact, phases=tuple(phases))


def output_length(frames: int, rate: int, target_rate: int) -> int:
    """How many samples ``frames`` input samples become: the duration kept, rounded."""
    return (2 * frames * target_rate + rate) // (2 * rate)


# --- samples in -----------------------------------------------------------------------------

_FLIP_SIGN = bytes(b ^ 0x80 for b in range(256))
_INT32 = "i" if array("i").itemsize == 4 else "l"
# Sample scale to 16-bit units, per sample width.
_SCALE = {1: 256.0, 2: 1.0, 3: 1.0 / 65536, 4: 1.0 / 65536}


def _widen24(data: bytes) -> bytes:
    """24-bit little-endian samples as 32-bit ones (value times 256)."""
    out = bytearray(len(data) // 3 * 4)
    out[1::4] = data[0::3]
    out[2::4] = data[1::3]
    out[3::4] = data[2::3]
    return bytes(out)


def _samples(data: bytes, sample_width: int) -> array[int]:
    """Signed integer samples (interleaved channels) of little-endian PCM, natively."""
    if sample_width == 1:
        return array("b", data.translate(_FLIP_SIGN))  # WAV 8-bit samples are unsigned
    if sample_width == 3:
        data = _widen24(data)
    samples = array("h" if sample_width == 2 else _INT32, data)
    if _BIG_ENDIAN:
        samples.byteswap()
    return samples


def _mono(samples: array[int], channels: int) -> array[int]:
    """The sum of the channels, sample by sample."""
    if channels == 1:
        return samples
    total = array("q", map(add, samples[0::channels], samples[1::channels]))
    for channel in range(2, channels):
        total = array("q", map(add, total, samples[channel::channels]))
    return total


def _pcm16(values: Iterable[float], gain: float) -> bytes:
    """Values times ``gain``, rounded and clipped to 16-bit little-endian samples."""
    scaled = map(round, map(mul, values, repeat(gain)))
    out = array("h", map(min, map(max, scaled, repeat(-32768)), repeat(32767)))
    if _BIG_ENDIAN:
        out.byteswap()
    return out.tobytes()


# --- pure Python ----------------------------------------------------------------------------

_BLOCK = 8192  # about this many outputs at a time: memory stays bounded on long inputs


def _resample(mono: array[int], filt: Kernel, count: int) -> Iterator[list[float]]:
    """The resampled signal, block by block."""
    taps, up, down = filt.taps, filt.up, filt.down
    half = taps // 2
    block = up * max(1, _BLOCK // up)  # whole cycles of phases
    for begin in range(0, count, block):
        end = min(count, begin + block)
        # The inputs these outputs read, as floats (float times float beats float times
        # int), zeros beyond the signal. Output n reads ``taps`` of them from its input
        # position, floor(n * down / up), minus half + 1.
        low = begin * down // up - half + 1
        high = (end - 1) * down // up + half + 1
        inputs = [0.0] * max(0, -low)
        inputs.extend(map(float, mono[max(0, low) : max(0, high)]))
        inputs.extend([0.0] * (high - low - len(inputs)))
        if filt.exact:
            yield _exact_block(inputs, filt, begin, end, low)
        else:
            yield _grid_block(inputs, filt, begin, end, low)


def _exact_block(inputs: list[float], filt: Kernel, begin: int, end: int, low: int) -> list[float]:
    taps, up, down, phases = filt.taps, filt.up, filt.down, filt.phases
    half = taps // 2
    dot = _dot
    out = [0.0] * (end - begin)
    # Outputs n, n + up, n + 2 up ... share a phase and read from ``down`` inputs apart.
    for first in range(begin, min(end, begin + up)):
        position, phase = divmod(first * down, up)
        start = position - half + 1 - low
        stop = start + down * len(range(first, end, up))
        coefficients = phases[phase]
        out[first - begin :: up] = [
            dot(coefficients, inputs[at : at + taps]) for at in range(start, stop, down)
        ]
    return out


def _grid_block(inputs: list[float], filt: Kernel, begin: int, end: int, low: int) -> list[float]:
    taps, up, down, phases = filt.taps, filt.up, filt.down, filt.phases
    half = taps // 2
    dot = _dot
    steps = len(phases) - 1
    out = []
    for n in range(begin, end):
        position, rest = divmod(n * down, up)
        start = position - half + 1 - low
        where = rest * steps / up  # between grid filters ``grid`` and ``grid + 1``
        grid = int(where)
        window = inputs[start : start + taps]
        below = dot(phases[grid], window)
        out.append(below + (where - grid) * (dot(phases[grid + 1], window) - below))
    return out


# --- numpy ----------------------------------------------------------------------------------


def _resample_numpy(np: Any, mono: Any, filt: Kernel, count: int) -> Any:
    taps, up, down = filt.taps, filt.up, filt.down
    padded = np.zeros(len(mono) + 2 * taps + 2)
    padded[taps // 2 : taps // 2 + len(mono)] = mono
    windows = np.lib.stride_tricks.sliding_window_view(padded, taps)
    phases = np.array(filt.phases)
    out = np.empty(count)
    if filt.exact:
        # Outputs n, n + up, n + 2 up ... share a phase and start down inputs apart.
        for first in range(min(up, count)):
            start, phase = divmod(first * down, up)
            rows = windows[start + 1 :: down][: len(range(first, count, up))]
            out[first::up] = rows @ phases[phase]
        return out
    steps = len(phases) - 1
    block = max(1, (1 << 20) // taps)
    for begin in range(0, count, block):
        n = np.arange(begin, min(count, begin + block), dtype=np.int64)
        start, rest = np.divmod(n * down, up)
        where = rest * steps / up
        grid = where.astype(np.int64)
        blend = where - grid
        rows = windows[start + 1]
        first = np.einsum("ij,ij->i", rows, phases[grid])
        second = np.einsum("ij,ij->i", rows, phases[grid + 1])
        out[begin : begin + len(n)] = first + blend * (second - first)
    return out


def _convert_numpy(
    np: Any, data: bytes, *, rate: int, channels: int, sample_width: int, target_rate: int
) -> bytes:
    if sample_width == 1:
        samples = np.frombuffer(data, dtype=np.uint8).astype(np.int64) - 128
    elif sample_width == 3:
        samples = np.frombuffer(_widen24(data), dtype="<i4")
    else:
        samples = np.frombuffer(data, dtype="<i2" if sample_width == 2 else "<i4")
    mono = samples.reshape(-1, channels).sum(axis=1, dtype=np.float64)
    gain = _SCALE[sample_width] / channels
    if rate != target_rate:
        frames = len(mono)
        mono = _resample_numpy(
            np, mono, kernel(rate, target_rate), output_length(frames, rate, target_rate)
        )
    out = np.clip(np.rint(mono * gain), -32768, 32767).astype("<i2")
    return bytes(out.tobytes())


# --- entry point ----------------------------------------------------------------------------


def convert(
    data: bytes,
    *,
    rate: int,
    channels: int,
    sample_width: int,
    target_rate: int,
    use_numpy: bool | None = None,
) -> bytes:
    """Little-endian integer PCM to mono 16-bit little-endian PCM at ``target_rate`` (Hz).

    ``use_numpy``: None uses numpy when it can be imported, False never, True always.
    Arguments are checked by the caller.
    """
    if sample_width == 2 and channels == 1 and rate == target_rate:
        return bytes(data)
    np = numpy_module() if use_numpy is None else None
    if use_numpy:
        np = numpy_module()
        if np is None:
            raise RuntimeError("numpy (1.20 or later) is not installed")
    if np is not None:
        return _convert_numpy(
            np,
            data,
            rate=rate,
            channels=channels,
            sample_width=sample_width,
            target_rate=target_rate,
        )
    mono = _mono(_samples(data, sample_width), channels)
    gain = _SCALE[sample_width] / channels
    if rate == target_rate:
        return _pcm16(mono, gain)
    filt = kernel(rate, target_rate)
    count = output_length(len(mono), rate, target_rate)
    return b"".join(_pcm16(block, gain) for block in _resample(mono, filt, count))
