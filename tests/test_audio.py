"""realtime_sync.audio: PCM16 and base64, chunks, WAV files, G.711, the resampler, formats.

The G.711 reference here is built from the recommendation's tables (segment widths and
decoder outputs), not from the module's bit arithmetic. Resampling is checked on sine
waves: the tone's amplitude and frequency (a fit at the expected frequency, and zero
crossings), what is left after the fit, and the duration. Conversion tests run on the pure
Python path and, when numpy can be imported, on the numpy path too.
"""

from __future__ import annotations

import base64
import bisect
import io
import math
import operator
import struct
import time
import wave
from array import array
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs
import pytest

from realtime_sync import _audio_convert, _audio_g711, audio
from realtime_sync._objects import AudioFormat
from realtime_sync.audio import (
    AudioClip,
    alaw_decode,
    alaw_encode,
    base64_to_pcm16,
    chunks,
    decode_from_format,
    duration_ms,
    encode_for_format,
    format_rate,
    format_sample_width,
    pcm16_to_base64,
    read_wav,
    to_pcm16,
    ulaw_decode,
    ulaw_encode,
    write_wav,
)

HAVE_NUMPY = _audio_convert.numpy_module() is not None
# Every conversion test runs on the pure Python path, and on the numpy path when there is
# one: without numpy the list has one entry, so nothing is skipped.
BACKENDS = ["pure", *(["numpy"] if HAVE_NUMPY else [])]


# --- signals and measurements ---------------------------------------------------------------


def pack(values: list[int], sample_width: int) -> bytes:
    """Integer samples (in the width's own range) as little-endian PCM; 8-bit unsigned."""
    if sample_width == 1:
        return bytes(v + 128 for v in values)
    if sample_width == 3:
        return b"".join(v.to_bytes(3, "little", signed=True) for v in values)
    return struct.pack(f"<{len(values)}{'h' if sample_width == 2 else 'i'}", *values)


def unpack16(data: bytes) -> list[int]:
    return list(struct.unpack(f"<{len(data) // 2}h", data))


def sine(
    rate: int,
    seconds: float,
    freq: float,
    *,
    amplitude: float = 10000.0,
    channels: int = 1,
    sample_width: int = 2,
) -> bytes:
    """A tone of ``amplitude`` (in 16-bit units), the same in every channel."""
    scale = {1: 1 / 256, 2: 1, 3: 256, 4: 65536}[sample_width]
    frames = round(rate * seconds)
    values = [
        round(amplitude * scale * math.sin(2 * math.pi * freq * n / rate)) for n in range(frames)
    ]
    return pack([v for v in values for _ in range(channels)], sample_width)


def fit(samples: list[int], rate: int, freq: float, *, start_s: float = 0.1) -> tuple[float, float]:
    """(amplitude of the tone at ``freq``, RMS of what is left) over 0.1 s from ``start_s``.

    0.1 s holds whole cycles of any multiple of 10 Hz, so projecting on the cosine and sine
    at ``freq`` is the least-squares fit of that tone.
    """
    begin, count = round(start_s * rate), round(0.1 * rate)
    window = samples[begin : begin + count]
    assert len(window) == count
    w = 2 * math.pi * freq / rate
    cosines = [math.cos(w * (begin + n)) for n in range(count)]
    sines = [math.sin(w * (begin + n)) for n in range(count)]
    a = 2 / count * sum(x * c for x, c in zip(window, cosines, strict=True))
    b = 2 / count * sum(x * s for x, s in zip(window, sines, strict=True))
    residual = [x - a * c - b * s for x, c, s in zip(window, cosines, sines, strict=True)]
    return math.hypot(a, b), math.sqrt(sum(r * r for r in residual) / count)


def zero_crossing_frequency(samples: list[int], rate: int) -> float:
    """Frequency (Hz) from the first and last upward zero crossings, interpolated."""
    ups = [
        n + samples[n] / (samples[n] - samples[n + 1])
        for n in range(len(samples) - 1)
        if samples[n] <= 0 < samples[n + 1]
    ]
    return (len(ups) - 1) * rate / (ups[-1] - ups[0])


def rms(samples: list[int]) -> float:
    return math.sqrt(sum(x * x for x in samples) / len(samples))


def convert(data: bytes, backend: str, **options: Any) -> bytes:
    """``to_pcm16`` forced onto one path: pure Python or numpy."""
    return _audio_convert.convert(data, use_numpy=backend == "numpy", **options)


# --- PCM16, base64, durations, chunks -------------------------------------------------------


def test_base64_round_trip() -> None:
    pcm = pack([0, 1, -1, 32767, -32768], 2)
    text = pcm16_to_base64(pcm)
    assert text == base64.b64encode(pcm).decode()
    assert base64_to_pcm16(text) == pcm
    assert pcm16_to_base64(bytearray(pcm)) == text
    assert pcm16_to_base64(b"") == "" and base64_to_pcm16("") == b""


def test_base64_rejects_partial_samples_and_bad_text() -> None:
    with pytest.raises(ValueError, match="whole 2-byte samples"):
        pcm16_to_base64(b"\x00\x01\x02")
    with pytest.raises(ValueError, match="whole 2-byte samples"):
        base64_to_pcm16(base64.b64encode(b"abc").decode())
    with pytest.raises(ValueError, match="not base64"):
        base64_to_pcm16("not base64!")


def test_duration_ms() -> None:
    assert duration_ms(bytes(48000)) == 1000.0  # PCM16 at 24 kHz
    assert duration_ms(bytes(160), rate=8000, sample_width=1) == 20.0  # a G.711 frame
    assert duration_ms(bytes(176400), rate=44100, channels=2) == 1000.0
    assert duration_ms(memoryview(array("h", bytes(48000)))) == 1000.0  # bytes, not items
    assert duration_ms(bytes(6), rate=48000, sample_width=3, channels=2) == pytest.approx(1 / 48)
    for bad in ({"rate": 0}, {"sample_width": -1}, {"channels": 1.5}, {"rate": True}):
        with pytest.raises(ValueError, match="positive integer"):
            duration_ms(b"", **bad)


def test_chunks_whole_pieces_and_a_short_last_one() -> None:
    pcm = bytes(range(256)) * 47  # 12032 bytes: 6016 samples at 24 kHz
    pieces = list(chunks(pcm, ms=100))
    assert [len(p) for p in pieces] == [4800, 4800, 2432]
    assert b"".join(pieces) == pcm
    g711 = bytes(8000)
    assert {len(p) for p in chunks(g711, ms=20, rate=8000, sample_width=1)} == {160}
    stereo = bytes(4 * 44100)
    assert {len(p) for p in chunks(stereo, ms=10, rate=44100, channels=2)} == {441 * 4}
    assert list(chunks(b"", ms=100)) == []


def test_chunks_of_a_fractional_number_of_samples_do_not_drift() -> None:
    # 1 ms at 22050 Hz is 22.05 samples: pieces of 22 or 23 samples end where k ms end.
    pcm = bytes(2 * 22050)
    pieces = list(chunks(pcm, ms=1, rate=22050))
    assert len(pieces) == 1000
    ends = [sum(len(p) for p in pieces[: k + 1]) // 2 for k in range(1000)]
    assert ends == [(k + 1) * 22050 // 1000 for k in range(1000)]


def test_chunks_checks_its_arguments_before_the_first_piece() -> None:
    with pytest.raises(ValueError, match="whole frames"):
        chunks(b"\x00\x00\x00", ms=100)
    with pytest.raises(ValueError, match="whole frames"):
        chunks(bytes(6), ms=100, channels=2)
    with pytest.raises(ValueError, match="positive number"):
        chunks(b"", ms=0)
    with pytest.raises(ValueError, match="less than one sample"):
        chunks(b"", ms=1, rate=500)


# --- G.711 ----------------------------------------------------------------------------------


def ulaw_reference() -> tuple[list[int], list[int]]:
    """G.711 Table 2a, positive half, in 14-bit units: the lower decision value of each of
    the 128 magnitudes (plus the end of the range) and the decoder output of each.

    The first interval, [0, 1), decodes to 0; the other 15 of the first segment are 2 wide
    and each later segment's 16 intervals are twice as wide as the previous segment's; an
    interval decodes to its middle.
    """
    widths = [1] + [2] * 15 + [w for s in range(2, 9) for w in [2**s] * 16]
    bounds = [0]
    for width in widths:
        bounds.append(bounds[-1] + width)
    outputs = [0] + [(bounds[j] + bounds[j + 1]) // 2 for j in range(1, 128)]
    return bounds, outputs


def alaw_reference() -> tuple[list[int], list[int]]:
    """G.711 Table 1a, positive half, in 13-bit units: 32 intervals 2 wide (segments 1 and
    2), then each segment's 16 twice as wide as the previous one's; each decodes to its
    middle."""
    widths = [2] * 32 + [w for s in range(2, 8) for w in [2**s] * 16]
    bounds = [0]
    for width in widths:
        bounds.append(bounds[-1] + width)
    outputs = [(bounds[j] + bounds[j + 1]) // 2 for j in range(128)]
    return bounds, outputs


def ulaw_code(index: int, negative: bool) -> int:
    """Mu-law code of magnitude ``index``: all bits inverted, sign bit 1 for positive."""
    return (0x7F if negative else 0xFF) - index


def alaw_code(index: int, negative: bool) -> int:
    """A-law code of magnitude ``index``: sign bit 1 for positive, even bits inverted."""
    return (index if negative else 0x80 | index) ^ 0x55


def reference_decode_table(law: str) -> list[int]:
    _, outputs = ulaw_reference() if law == "ulaw" else alaw_reference()
    code_of, scale = (ulaw_code, 4) if law == "ulaw" else (alaw_code, 8)
    table = [0] * 256
    for index, output in enumerate(outputs):
        table[code_of(index, False)] = output * scale  # left-justified in 16 bits
        table[code_of(index, True)] = -output * scale
    return table


def reference_encoder(law: str) -> Callable[[int], int]:
    """The code of a 16-bit sample: its top 14 (mu-law) or 13 (A-law) bits quantised by the
    decision values. A negative sample goes by its one's complement, as in the ITU-T G.191
    reference software: -1 falls in the first interval, like 0."""
    bounds, _ = ulaw_reference() if law == "ulaw" else alaw_reference()
    shift, code_of = (2, ulaw_code) if law == "ulaw" else (3, alaw_code)
    find = bisect.bisect_right

    def encode(sample: int) -> int:
        magnitude = (sample if sample >= 0 else -sample - 1) >> shift
        return code_of(min(127, find(bounds, magnitude) - 1), sample < 0)

    return encode


ALL_CODES = bytes(range(256))
ALL_SAMPLES = pack(list(range(-32768, 32768)), 2)
LAWS = {"ulaw": (ulaw_encode, ulaw_decode), "alaw": (alaw_encode, alaw_decode)}


@pytest.mark.parametrize("law", ["ulaw", "alaw"])
def test_g711_decode_matches_the_itu_tables(law: str) -> None:
    _, decode = LAWS[law]
    assert unpack16(decode(ALL_CODES)) == reference_decode_table(law)


def test_g711_known_values() -> None:
    ulaw = unpack16(ulaw_decode(ALL_CODES))
    assert (ulaw[0xFF], ulaw[0x7F], ulaw[0x00], ulaw[0x80]) == (0, 0, -32124, 32124)
    assert (ulaw[0xFE], ulaw[0x7E]) == (8, -8)
    alaw = unpack16(alaw_decode(ALL_CODES))
    assert (alaw[0xD5], alaw[0x55], alaw[0xAA], alaw[0x2A]) == (8, -8, 32256, -32256)
    assert ulaw_encode(pack([0, -1, 32767, -32768], 2)) == bytes([0xFF, 0x7F, 0x80, 0x00])
    assert alaw_encode(pack([0, -1, 32767, -32768], 2)) == bytes([0xD5, 0x55, 0xAA, 0x2A])


@pytest.mark.parametrize("law", ["ulaw", "alaw"])
def test_g711_encode_matches_the_itu_decision_values(law: str) -> None:
    encode, _ = LAWS[law]
    expected = bytes(map(reference_encoder(law), range(-32768, 32768)))
    assert encode(ALL_SAMPLES) == expected


def test_g711_round_trips() -> None:
    # Every code comes back, except mu-law's negative zero: it decodes to 0, which is +0.
    back = ulaw_encode(ulaw_decode(ALL_CODES))
    assert [c for c in range(256) if back[c] != c] == [0x7F]
    assert back[0x7F] == 0xFF
    assert alaw_encode(alaw_decode(ALL_CODES)) == ALL_CODES
    # A sample comes back as the middle of its interval: at most half the largest step
    # (512) away, or at the end of the range 32768 - 32124 = 644 (mu-law clips there).
    for law, worst in (("ulaw", 644), ("alaw", 512)):
        encode, decode = LAWS[law]
        again = unpack16(decode(encode(ALL_SAMPLES)))
        errors = map(abs, map(operator.sub, again, range(-32768, 32768)))
        assert max(errors) == worst


def test_g711_frames_and_input_types() -> None:
    frame = pack([round(8000 * math.sin(n / 5)) for n in range(160)], 2)  # 20 ms at 8 kHz
    for encode, decode in LAWS.values():
        coded = encode(frame)
        assert len(coded) == 160 and len(decode(coded)) == 320
        assert encode(bytearray(frame)) == encode(memoryview(frame)) == coded
        assert decode(bytearray(coded)) == decode(memoryview(coded)) == decode(coded)
        assert encode(b"") == b"" and decode(b"") == b""
        assert encode(frame[:2]) == coded[:1] and decode(coded[:1]) == decode(coded)[:2]
        with pytest.raises(ValueError, match="whole 2-byte samples"):
            encode(b"\x00\x00\x00")


def test_g711_encode_table_for_big_endian_machines(monkeypatch: pytest.MonkeyPatch) -> None:
    # On a big-endian machine a sample's two bytes read the other way round: the table
    # must be indexed by that reading. Built here as it would be there.
    monkeypatch.setattr(_audio_g711, "_BIG_ENDIAN", True)
    _audio_g711._ulaw_table.cache_clear()
    try:
        table = _audio_g711._ulaw_table()
    finally:
        _audio_g711._ulaw_table.cache_clear()
    for x in (0, 1, -1, 255, 256, -256, 1000, -1000, 32767, -32768):
        big_endian_reading = int.from_bytes(x.to_bytes(2, "little", signed=True), "big")
        assert table[big_endian_reading] == reference_encoder("ulaw")(x)


# --- WAV files ------------------------------------------------------------------------------


def ramp(frames: int, channels: int, sample_width: int) -> bytes:
    """Distinct samples across the width's whole range, channel by channel."""
    top = 1 << (8 * sample_width - 1)
    values = [
        (n * 7919 + c * 104729) % (2 * top) - top for n in range(frames) for c in range(channels)
    ]
    return pack(values, sample_width)


@pytest.mark.parametrize("sample_width", [1, 2, 3, 4])
@pytest.mark.parametrize("channels", [1, 2, 3])
def test_wav_round_trip(tmp_path: Path, sample_width: int, channels: int) -> None:
    data = ramp(101, channels, sample_width)
    path = tmp_path / "clip.wav"
    write_wav(path, data, rate=22050, channels=channels, sample_width=sample_width)
    clip = read_wav(path)
    assert clip == AudioClip(data=data, rate=22050, channels=channels, sample_width=sample_width)
    assert clip.duration_ms == pytest.approx(101 / 22.05)
    with wave.open(str(path)) as reader:  # what any WAV reader sees
        assert reader.getparams()[:4] == (channels, sample_width, 22050, 101)
        # ``wave`` hands samples over in the machine's order.
        assert audio._to_little_endian(reader.readframes(101), sample_width) == data


def test_wav_to_and_from_file_objects_and_str_paths(tmp_path: Path) -> None:
    data = ramp(50, 2, 2)
    buffer = io.BytesIO()
    write_wav(buffer, data, rate=16000, channels=2)
    assert not buffer.closed
    buffer.seek(0)
    assert read_wav(buffer) == AudioClip(data=data, rate=16000, channels=2, sample_width=2)
    write_wav(str(tmp_path / "a.wav"), data)  # defaults: 24 kHz mono PCM16
    with open(tmp_path / "a.wav", "rb") as file:
        assert read_wav(file) == AudioClip(data=data, rate=24000, channels=1, sample_width=2)
    assert read_wav(str(tmp_path / "a.wav")).rate == 24000


def test_wav_writes_to_a_stream_that_cannot_seek() -> None:
    class Pipe:
        def __init__(self) -> None:
            self.written = b""

        def write(self, data: bytes) -> int:
            self.written += bytes(data)
            return len(data)

        def flush(self) -> None:
            pass

    pipe = Pipe()
    data = ramp(64, 1, 2)
    write_wav(pipe, data, rate=8000)  # type: ignore[arg-type]
    assert read_wav(io.BytesIO(pipe.written)).data == data


def test_wav_refuses_what_it_cannot_hold(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="whole frames"):
        write_wav(tmp_path / "x.wav", b"\x00\x00\x00", channels=2)
    with pytest.raises(ValueError, match="1 to 4 bytes"):
        write_wav(tmp_path / "x.wav", bytes(10), sample_width=5)
    with pytest.raises(ValueError, match="positive integer"):
        write_wav(tmp_path / "x.wav", b"", rate=0)


def riff(*chunks: tuple[bytes, bytes]) -> bytes:
    body = b"WAVE" + b"".join(
        name + struct.pack("<I", len(data)) + data + b"\x00" * (len(data) % 2)
        for name, data in chunks
    )
    return b"RIFF" + struct.pack("<I", len(body)) + body


PCM_GUID = b"\x01\x00\x00\x00\x00\x00\x10\x00\x80\x00\x00\xaa\x00\x38\x9b\x71"
FLOAT_GUID = b"\x03" + PCM_GUID[1:]


def extensible_fmt(channels: int, rate: int, sample_width: int, guid: bytes) -> bytes:
    block = channels * sample_width
    bits = 8 * sample_width
    # Tag, channels, rate, bytes/s, block, bits; extension size, valid bits, channel mask.
    head = struct.pack("<HHIIHH", 0xFFFE, channels, rate, rate * block, block, bits)
    return head + struct.pack("<HHI", 22, bits, 0x3) + guid


def test_read_wav_extensible_integer_pcm() -> None:
    # WAVE_FORMAT_EXTENSIBLE, as many tools write 24-bit or multichannel files; an odd-sized
    # chunk (padded) before the format chunk.
    data = ramp(30, 2, 3)
    raw = riff(
        (b"LIST", b"odd"),
        (b"fmt ", extensible_fmt(2, 48000, 3, PCM_GUID)),
        (b"data", data),
    )
    clip = read_wav(io.BytesIO(raw))
    assert clip == AudioClip(data=data, rate=48000, channels=2, sample_width=3)


def test_read_wav_refuses_float_and_non_wav_files() -> None:
    float_fmt = struct.pack("<HHIIHH", 3, 1, 8000, 32000, 4, 32)
    for raw in (
        riff((b"fmt ", float_fmt), (b"data", bytes(8))),
        riff((b"fmt ", extensible_fmt(1, 8000, 4, FLOAT_GUID)), (b"data", bytes(8))),
        b"ID3 not a wave file at all",
        b"RIFF",
        riff((b"data", bytes(4))),
    ):
        with pytest.raises(ValueError, match="WAV"):
            read_wav(io.BytesIO(raw))
    with pytest.raises(TypeError, match="binary mode"):
        read_wav(io.StringIO("RIFF"))  # type: ignore[arg-type]


def test_swapping_sample_bytes() -> None:
    # What big-endian machines do around ``wave``, checked against array's byteswap.
    samples = array("h", [1, -2, 300, -32768])
    swapped = array("h", samples)
    swapped.byteswap()
    assert audio._swap_bytes(samples.tobytes(), 2) == swapped.tobytes()
    assert audio._swap_bytes(b"\x01\x02\x03\x04\x05\x06", 3) == b"\x03\x02\x01\x06\x05\x04"
    assert audio._swap_bytes(b"\x01\x02\x03\x04", 4) == b"\x04\x03\x02\x01"
    assert audio._swap_bytes(b"\x01\x02", 1) == b"\x01\x02"


def test_audio_clip_is_frozen_and_its_repr_is_short() -> None:
    clip = AudioClip(data=bytes(96000), rate=48000, channels=1, sample_width=2)
    assert repr(clip) == "AudioClip(data=<96000 bytes>, rate=48000, channels=1, sample_width=2)"
    assert clip.duration_ms == 1000.0
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        clip.rate = 8000  # type: ignore[misc]


# --- conversion and resampling --------------------------------------------------------------

CASES = [
    # (input rate, channels, output rate, tone Hz)
    (44100, 2, 24000, 1000),
    (48000, 1, 24000, 3000),
    (16000, 1, 24000, 440),
    (8000, 1, 24000, 1000),
    (24000, 1, 8000, 1000),
    (22050, 2, 8000, 2500),
    (22051, 1, 24000, 1230),  # a ratio with no small form: interpolated filter phases
]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(("rate", "channels", "target", "freq"), CASES)
def test_resampling_keeps_frequency_amplitude_and_duration(
    backend: str, rate: int, channels: int, target: int, freq: int
) -> None:
    data = sine(rate, 0.3, freq, channels=channels)
    out = convert(data, backend, rate=rate, channels=channels, sample_width=2, target_rate=target)
    samples = unpack16(out)
    assert len(samples) == round(0.3 * target)
    amplitude, residual = fit(samples, target, freq)
    assert amplitude == pytest.approx(10000, rel=2e-3)
    assert residual < 1.5  # 10000 / 1.5: over 76 dB; rounding to 16 bits alone is 0.3
    middle = samples[round(0.05 * target) : round(0.25 * target)]
    assert zero_crossing_frequency(middle, target) == pytest.approx(freq, rel=1e-4)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(
    ("rate", "channels", "target", "freq"),
    [
        (48000, 1, 24000, 15000),  # would fold to 9 kHz
        (48000, 1, 24000, 12600),  # just above the new Nyquist: would fold to 11.4 kHz
        (24000, 1, 8000, 5000),  # would fold to 3 kHz
        (44100, 2, 8000, 6000),  # would fold to 2 kHz
    ],
)
def test_a_tone_above_the_new_nyquist_is_removed_not_folded(
    backend: str, rate: int, channels: int, target: int, freq: int
) -> None:
    data = sine(rate, 0.3, freq, amplitude=20000, channels=channels)
    out = convert(data, backend, rate=rate, channels=channels, sample_width=2, target_rate=target)
    middle = unpack16(out)[round(0.05 * target) : round(0.25 * target)]
    # A tone of amplitude 20000 has an RMS of 14142: at least 70 dB down.
    assert rms(middle) < 14142 * 10 ** (-70 / 20)


@pytest.mark.parametrize("backend", BACKENDS)
def test_8k_to_24k_and_back(backend: str) -> None:
    data = sine(8000, 0.3, 700)
    up = convert(data, backend, rate=8000, channels=1, sample_width=2, target_rate=24000)
    down = convert(up, backend, rate=24000, channels=1, sample_width=2, target_rate=8000)
    assert len(down) == len(data)
    amplitude, residual = fit(unpack16(down), 8000, 700)
    assert amplitude == pytest.approx(10000, rel=2e-3) and residual < 1.5
    # The samples themselves come back, away from the edges.
    middle = slice(400, 2000)
    errors = map(abs, map(operator.sub, unpack16(down)[middle], unpack16(data)[middle]))
    assert max(errors) <= 3


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("sample_width", [1, 2, 3, 4])
def test_every_sample_width_converts_alike(backend: str, sample_width: int) -> None:
    data = sine(48000, 0.3, 1000, channels=2, sample_width=sample_width)
    out = convert(
        data, backend, rate=48000, channels=2, sample_width=sample_width, target_rate=24000
    )
    amplitude, residual = fit(unpack16(out), 24000, 1000)
    if sample_width == 1:
        # 8-bit samples carry 8-bit rounding errors (up to 128 on a 16-bit scale).
        assert amplitude == pytest.approx(10000, rel=1e-2)
        assert residual < 60
    else:
        assert amplitude == pytest.approx(10000, rel=2e-3)
        assert residual < 1.5


@pytest.mark.parametrize("backend", BACKENDS)
def test_samples_and_channels_at_the_same_rate(backend: str) -> None:
    def same_rate(data: bytes, channels: int, sample_width: int) -> list[int]:
        out = convert(
            data,
            backend,
            rate=8000,
            channels=channels,
            sample_width=sample_width,
            target_rate=8000,
        )
        return unpack16(out)

    assert same_rate(bytes([0, 128, 255]), 1, 1) == [-32768, 0, 32512]  # 8-bit is unsigned
    assert same_rate(pack([0x123456, -1, -0x800000], 3), 1, 3) == [0x1234, 0, -32768]
    assert same_rate(pack([0x7FFFFFFF, -0x80000000, 0x18000], 4), 1, 4) == [32767, -32768, 2]
    # Channels are averaged (halves round to even).
    assert same_rate(pack([100, 100, -7, 8, 3, 0], 2), 2, 2) == [100, 0, 2]
    assert same_rate(pack([3, 6, 0, 30, 0, -30], 2), 3, 2) == [3, 0]
    mono = pack([5, -9, 32767, -32768], 2)
    assert convert(mono, backend, rate=8000, channels=1, sample_width=2, target_rate=8000) == mono


@pytest.mark.parametrize("backend", BACKENDS)
def test_resampled_peaks_are_clipped_not_wrapped(backend: str) -> None:
    # A full-scale square wave rings past full scale once band-limited.
    square = pack([32767 if (n // 24) % 2 else -32768 for n in range(4800)], 2)
    out = unpack16(
        convert(square, backend, rate=48000, channels=1, sample_width=2, target_rate=24000)
    )
    assert max(out) == 32767 and min(out) == -32768
    plateaus = [out[n] for n in range(100, 2300) if n % 24 in (6, 7)]  # mid half-periods
    assert all(abs(v) > 30000 for v in plateaus)


@pytest.mark.parametrize("backend", BACKENDS)
def test_short_and_empty_inputs(backend: str) -> None:
    for frames in (0, 1, 2, 5):
        data = pack([1000] * frames, 2)
        out = convert(data, backend, rate=44100, channels=1, sample_width=2, target_rate=24000)
        assert len(out) == 2 * round(frames * 24000 / 44100)


if HAVE_NUMPY:  # compared only where both paths exist; elsewhere there is nothing to compare

    @pytest.mark.parametrize(("rate", "channels", "target", "freq"), CASES)
    def test_numpy_and_pure_python_agree(rate: int, channels: int, target: int, freq: int) -> None:
        data = sine(rate, 0.2, freq, channels=channels, amplitude=30000)
        options = {"rate": rate, "channels": channels, "sample_width": 2, "target_rate": target}
        pure = unpack16(convert(data, "pure", **options))
        fast = unpack16(convert(data, "numpy", **options))
        assert len(pure) == len(fast)
        # At most a rounding apart, where a value falls near a half.
        assert max(map(abs, map(operator.sub, pure, fast))) <= 1


def test_to_pcm16_uses_numpy_only_when_it_can(monkeypatch: pytest.MonkeyPatch) -> None:
    data = sine(44100, 0.05, 1000, channels=2)
    options = {"rate": 44100, "channels": 2, "sample_width": 2, "target_rate": 24000}
    expected = convert(data, "numpy" if HAVE_NUMPY else "pure", **options)
    assert to_pcm16(data, **options) == expected
    monkeypatch.setattr(_audio_convert, "_numpy_state", [None])  # as if not installed
    assert to_pcm16(data, **options) == convert(data, "pure", **options)
    with pytest.raises(RuntimeError, match="is not installed"):
        _audio_convert.convert(data, use_numpy=True, **options)


def test_to_pcm16_checks_its_arguments() -> None:
    with pytest.raises(ValueError, match="whole frames"):
        to_pcm16(bytes(3), rate=8000, channels=2, sample_width=1)
    with pytest.raises(ValueError, match="1 to 4 bytes"):
        to_pcm16(bytes(8), rate=8000, channels=1, sample_width=8)
    with pytest.raises(ValueError, match="positive integer"):
        to_pcm16(bytes(8), rate=8000, channels=1, sample_width=2, target_rate=0)
    with pytest.raises(ValueError, match="positive integer"):
        to_pcm16(bytes(8), rate=8000, channels=0, sample_width=2)


@pytest.mark.parametrize(("rate", "target"), [(44100, 24000), (8000, 24000), (22051, 24000)])
def test_pure_python_blocks_join_seamlessly(
    monkeypatch: pytest.MonkeyPatch, rate: int, target: int
) -> None:
    # Long inputs are resampled a block of outputs at a time; the blocks' edges must not
    # show. Small blocks here, against one block for the whole signal.
    data = sine(rate, 0.1, 1230, amplitude=20000)
    options = {"rate": rate, "channels": 1, "sample_width": 2, "target_rate": target}
    monkeypatch.setattr(_audio_convert, "_BLOCK", 10**9)
    whole = convert(data, "pure", **options)
    monkeypatch.setattr(_audio_convert, "_BLOCK", 100)
    assert convert(data, "pure", **options) == whole


def test_filter_phases_have_unit_gain_and_sit_on_their_output() -> None:
    filt = _audio_convert.kernel(44100, 24000)
    assert (filt.up, filt.down, filt.exact, len(filt.phases)) == (80, 147, True, 80)
    half = filt.taps // 2
    for index, phase in enumerate(filt.phases):
        assert sum(phase) == pytest.approx(1.0, abs=1e-12)
        # Centre of mass at the output's position (to a thousandth of a sample).
        offsets = [tap - half + 1 - index / 80 for tap in range(filt.taps)]
        assert sum(map(operator.mul, phase, offsets)) == pytest.approx(0.0, abs=1e-3)


def test_pure_python_converts_a_second_of_cd_audio_well_under_a_second() -> None:
    data = sine(44100, 1.0, 1000, channels=2)
    _audio_convert.kernel.cache_clear()  # the filter design counts too
    began = time.perf_counter()
    out = convert(data, "pure", rate=44100, channels=2, sample_width=2, target_rate=24000)
    assert time.perf_counter() - began < 1.0  # about 0.1 s on a laptop
    assert len(out) == 48000


# --- session formats ------------------------------------------------------------------------

PCM_FORMATS: list[Any] = [
    None,
    "pcm16",
    "audio/pcm",
    {"type": "audio/pcm", "rate": 24000},
    {"type": "audio/pcm"},
    AudioFormat.from_dict({"type": "audio/pcm", "rate": 24000}),
]
ULAW_FORMATS: list[Any] = [
    "g711_ulaw",
    "audio/pcmu",
    {"type": "audio/pcmu"},
    AudioFormat.from_dict({"type": "audio/pcmu"}),
]
ALAW_FORMATS: list[Any] = [
    "g711_alaw",
    "audio/pcma",
    {"type": "audio/pcma", "rate": 8000},
    AudioFormat.from_dict({"type": "audio/pcma"}),
]


def test_format_rate_and_sample_width() -> None:
    for spec in PCM_FORMATS:
        assert (format_rate(spec), format_sample_width(spec)) == (24000, 2)
    for spec in ULAW_FORMATS + ALAW_FORMATS:
        assert (format_rate(spec), format_sample_width(spec)) == (8000, 1)


@pytest.mark.parametrize(
    "spec",
    ["audio/opus", "PCM16", "", {"type": "audio/wav"}, {"rate": 24000}, {}, 42, b"pcm16"],
)
def test_unknown_formats_are_named(spec: Any) -> None:
    for call in (
        lambda: format_rate(spec),
        lambda: format_sample_width(spec),
        lambda: encode_for_format(bytes(4), spec),
        lambda: decode_from_format(bytes(4), spec),
    ):
        with pytest.raises(ValueError, match="unknown audio format") as caught:
            call()
        assert repr(spec) in str(caught.value)


def test_format_rates_that_cannot_be() -> None:
    with pytest.raises(ValueError, match="8000 Hz"):
        format_rate({"type": "audio/pcmu", "rate": 24000})
    with pytest.raises(ValueError, match="invalid rate"):
        format_rate({"type": "audio/pcm", "rate": "24000"})
    assert format_rate({"type": "audio/pcm", "rate": 16000}) == 16000


@pytest.fixture
def cd_wav(tmp_path: Path) -> Path:
    """1.2345 s of a 1 kHz tone, 44.1 kHz stereo PCM16 (54441 frames)."""
    path = tmp_path / "tone.wav"
    write_wav(path, sine(44100, 1.2345, 1000, channels=2), rate=44100, channels=2)
    return path


def test_a_cd_wav_becomes_24k_mono_of_the_same_duration(cd_wav: Path) -> None:
    clip = read_wav(cd_wav)
    pcm = encode_for_format(cd_wav, {"type": "audio/pcm", "rate": 24000})
    assert abs(duration_ms(pcm) - clip.duration_ms) < 1.0
    assert len(pcm) == 2 * round(54441 * 24000 / 44100)
    amplitude, residual = fit(unpack16(pcm), 24000, 1000)
    assert amplitude == pytest.approx(10000, rel=2e-3) and residual < 1.5


@pytest.fixture
def short_wav(tmp_path: Path) -> Path:
    """50 ms of a 1 kHz tone, 44.1 kHz stereo PCM16."""
    path = tmp_path / "short.wav"
    write_wav(path, sine(44100, 0.05, 1000, channels=2), rate=44100, channels=2)
    return path


@pytest.mark.parametrize("kind", ["path", "str", "file", "clip", "wav bytes"])
def test_encode_for_format_reads_wav_files_and_clips(kind: str, short_wav: Path) -> None:
    clip = read_wav(short_wav)
    expected = {
        "pcm16": clip.to_pcm16(24000),
        "g711_ulaw": ulaw_encode(clip.to_pcm16(8000)),
        "audio/pcma": alaw_encode(clip.to_pcm16(8000)),
    }
    for spec, wanted in expected.items():
        if kind == "file":
            with open(short_wav, "rb") as file:
                source: Any = file
                assert encode_for_format(source, spec) == wanted
            continue
        source = {
            "path": short_wav,
            "str": str(short_wav),
            "clip": clip,
            "wav bytes": short_wav.read_bytes(),
        }[kind]
        assert encode_for_format(source, spec) == wanted


@pytest.mark.parametrize("kind", [bytes, bytearray, memoryview])
def test_encode_for_format_takes_24k_mono_pcm16_as_it_is(kind: Any) -> None:
    raw = sine(24000, 0.05, 1000)
    to_8k = to_pcm16(raw, rate=24000, channels=1, sample_width=2, target_rate=8000)
    for spec in PCM_FORMATS:
        assert encode_for_format(kind(raw), spec) == raw
    for spec in ULAW_FORMATS:
        assert encode_for_format(kind(raw), spec) == ulaw_encode(to_8k)
    for spec in ALAW_FORMATS:
        assert encode_for_format(kind(raw), spec) == alaw_encode(to_8k)


def test_g711_output_is_8k_and_decodes_to_the_tone(cd_wav: Path) -> None:
    for spec in ("g711_ulaw", "audio/pcma"):
        coded = encode_for_format(cd_wav, spec)
        assert len(coded) == round(54441 * 8000 / 44100)
        assert abs(duration_ms(coded, rate=8000, sample_width=1) - 1234.5) < 1.0
        pcm = decode_from_format(coded, spec)
        amplitude, residual = fit(unpack16(pcm), 8000, 1000)
        assert amplitude == pytest.approx(10000, rel=5e-3)
        assert residual < 130  # companding noise: over 35 dB below the tone (RMS 7071)


def test_encode_for_format_refuses_other_sources() -> None:
    with pytest.raises(ValueError, match="whole 2-byte samples"):
        encode_for_format(b"\x00\x01\x02", "pcm16")
    with pytest.raises(TypeError, match="not int"):
        encode_for_format(123, "pcm16")  # type: ignore[arg-type]


def test_decode_from_format() -> None:
    pcm = pack([0, 1000, -1000, 32000], 2)
    for spec in PCM_FORMATS:
        assert decode_from_format(pcm, spec) == pcm
    for spec in ULAW_FORMATS:
        assert decode_from_format(ulaw_encode(pcm), spec) == ulaw_decode(ulaw_encode(pcm))
    for spec in ALAW_FORMATS:
        assert decode_from_format(alaw_encode(pcm), spec) == alaw_decode(alaw_encode(pcm))
    with pytest.raises(ValueError, match="whole 2-byte samples"):
        decode_from_format(b"\x00", "pcm16")
