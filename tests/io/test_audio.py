"""Tests for talkhead.io.audio: probe_audio, iter_audio, load_audio.

All media are made here: sines written with the ffmpeg CLI (lavfi) or as
raw PCM WAV with the stdlib ``wave`` module.
"""

from __future__ import annotations

import dataclasses
import subprocess
import tracemalloc
import wave
from pathlib import Path

import av
import numpy as np
import pytest

from io_media import run_ffmpeg, write_wav
from talkhead.errors import MediaError
from talkhead.io import audio as audio_module
from talkhead.io.audio import AudioInfo, iter_audio, load_audio, probe_audio

SECONDS = 3.0
TONE_HZ = 1000.0
LAVFI_LEVEL = 1 / 8  # amplitude of ffmpeg's lavfi sine source


def _sine(rate: int, seconds: float = SECONDS, freq: float = TONE_HZ) -> list[str]:
    return ["-f", "lavfi", "-i", f"sine=frequency={freq}:sample_rate={rate}:duration={seconds}"]


def _encoders() -> str:
    done = subprocess.run(["ffmpeg", "-hide_banner", "-encoders"], capture_output=True, text=True)
    return done.stdout


# name -> (suffix, ffmpeg args after the inputs, input rate, channels, codec, encoder needed)
FORMATS = {
    "wav16k_mono": (".wav", _sine(16000), [], 16000, 1, "pcm_s16le", None),
    "wav44k_stereo": (".wav", _sine(44100), ["-ac", "2"], 44100, 2, "pcm_s16le", None),
    "mp3": (".mp3", _sine(44100), ["-c:a", "libmp3lame"], 44100, 1, "mp3", "libmp3lame"),
    "m4a_aac": (".m4a", _sine(44100), ["-c:a", "aac"], 44100, 1, "aac", "aac"),
    "m4a_aac16k": (".m4a", _sine(16000), ["-c:a", "aac"], 16000, 1, "aac", "aac"),
    "flac": (".flac", _sine(48000), ["-c:a", "flac"], 48000, 1, "flac", "flac"),
    "ogg_vorbis": (".ogg", _sine(44100), ["-c:a", "libvorbis"], 44100, 1, "vorbis", "libvorbis"),
    "ogg_opus": (".opus", _sine(48000), ["-c:a", "libopus"], 48000, 1, "opus", "libopus"),
    "mp4_video": (
        ".mp4",
        ["-f", "lavfi", "-i", f"testsrc=size=64x48:rate=25:duration={SECONDS}", *_sine(48000)],
        ["-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac"],
        48000, 1, "aac", "libx264",
    ),
}


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Every file of FORMATS whose encoder this ffmpeg has: a 3 s 1 kHz sine."""
    folder = tmp_path_factory.mktemp("audio")
    encoders = _encoders()
    made = {}
    for name, (suffix, inputs, args, *_, encoder) in FORMATS.items():
        if encoder is not None and f" {encoder} " not in encoders:
            continue
        made[name] = folder / f"{name}{suffix}"
        run_ffmpeg(*inputs, *args, str(made[name]))
    return made


def _media(media: dict[str, Path], name: str) -> Path:
    if name not in media:
        pytest.skip(f"this ffmpeg cannot encode {name}")
    return media[name]


def write_pcm_wav(path: Path, samples: np.ndarray, rate: int) -> Path:
    """Write float [N,C] samples in -1..1 as a 16-bit PCM WAV."""
    pcm = np.round(np.clip(samples, -1, 1) * 32767).astype("<i2")
    with wave.open(str(path), "wb") as out:
        out.setnchannels(pcm.shape[1])
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(pcm.tobytes())
    return path


def tone(freq: float, rate: int, seconds: float, level: float) -> np.ndarray:
    return level * np.sin(2 * np.pi * freq * np.arange(round(seconds * rate)) / rate)


def peak_hz(samples: np.ndarray, rate: int) -> float:
    """Frequency of the largest FFT peak (Hann window)."""
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples))))
    return float(np.argmax(spectrum) * rate / len(samples))


def level_at(samples: np.ndarray, rate: int, freq: float) -> float:
    """Amplitude of the sine at ``freq`` (least squares on sin and cos)."""
    t = np.arange(len(samples)) / rate
    basis = np.stack([np.sin(2 * np.pi * freq * t), np.cos(2 * np.pi * freq * t)], axis=1)
    coef, *_ = np.linalg.lstsq(basis, samples.astype(np.float64), rcond=None)
    return float(np.hypot(*coef))


# ---------------------------------------------------------------- formats


@pytest.mark.parametrize("name", list(FORMATS))
def test_probe_audio_reads_each_format(media: dict[str, Path], name: str) -> None:
    path = _media(media, name)
    _, _, _, rate, channels, codec, _ = FORMATS[name]
    info = probe_audio(path)
    assert isinstance(info, AudioInfo)
    assert info == AudioInfo(str(path), rate, channels, info.duration, codec)
    assert info.duration == pytest.approx(SECONDS, abs=0.02)
    with pytest.raises(dataclasses.FrozenInstanceError):
        info.duration = 1.0  # type: ignore[misc]


@pytest.mark.parametrize("name", list(FORMATS))
def test_load_audio_gives_16k_mono_with_the_tone(media: dict[str, Path], name: str) -> None:
    samples = load_audio(_media(media, name))
    assert samples.dtype == np.float32 and samples.ndim == 1
    # exact length: resampler delay flushed, AAC end padding cut
    assert abs(len(samples) - SECONDS * 16000) <= 10
    assert np.abs(samples).max() <= 1.0
    assert peak_hz(samples, 16000) == pytest.approx(TONE_HZ, abs=1.0)
    # ffmpeg's -ac 2 spreads mono over both channels at 1/sqrt(2) each
    level = LAVFI_LEVEL / np.sqrt(2) if FORMATS[name][4] == 2 else LAVFI_LEVEL
    assert level_at(samples[1600:-1600], 16000, TONE_HZ) == pytest.approx(level, rel=0.1)


@pytest.mark.parametrize("name", ["wav16k_mono", "wav44k_stereo", "flac"])
def test_lossless_input_is_not_delayed(media: dict[str, Path], name: str) -> None:
    """Sample k of the output is the input at time k/16000 (no resampler delay)."""
    samples = load_audio(_media(media, name))
    level = LAVFI_LEVEL / np.sqrt(2) if FORMATS[name][4] == 2 else LAVFI_LEVEL
    expected = tone(TONE_HZ, 16000, SECONDS, level)
    middle = slice(800, -800)  # the resampler's edges may ring
    assert np.abs(samples[middle] - expected[middle]).max() < 2e-3


@pytest.mark.parametrize("rate", [8000, 16000, 22050, 48000])
def test_resampled_length_is_exact(media: dict[str, Path], rate: int) -> None:
    samples = load_audio(media["wav44k_stereo"], rate=rate)
    assert abs(len(samples) - SECONDS * rate) <= 10
    assert peak_hz(samples, rate) == pytest.approx(TONE_HZ, abs=1.0)


# ---------------------------------------------------------------- downmix


def test_stereo_channels_are_averaged(tmp_path: Path) -> None:
    left, right = tone(440, 16000, 1.0, 0.6), tone(1000, 16000, 1.0, 0.2)
    path = write_pcm_wav(tmp_path / "lr.wav", np.stack([left, right], 1), 16000)
    samples = load_audio(path)
    np.testing.assert_allclose(samples, (left + right) / 2, atol=1e-4)


def test_stereo_is_averaged_when_resampled(tmp_path: Path) -> None:
    left, right = tone(440, 44100, 1.0, 0.6), tone(1000, 44100, 1.0, 0.2)
    path = write_pcm_wav(tmp_path / "lr44.wav", np.stack([left, right], 1), 44100)
    samples = load_audio(path)[800:-800]
    assert level_at(samples, 16000, 440) == pytest.approx(0.3, rel=0.02)
    assert level_at(samples, 16000, 1000) == pytest.approx(0.1, rel=0.02)


def test_six_channels_are_averaged(tmp_path: Path) -> None:
    """Six equal channels keep their level (FFmpeg's own 5.1 downmix would boost it)."""
    one = tone(440, 16000, 1.0, 0.25)
    path = write_pcm_wav(tmp_path / "six.wav", np.repeat(one[:, None], 6, 1), 16000)
    assert probe_audio(path).channels == 6
    np.testing.assert_allclose(load_audio(path), one, atol=1e-4)


def test_loud_input_stays_in_range(tmp_path: Path) -> None:
    square = np.sign(tone(440, 44100, 0.5, 1.0))  # full-scale square: resampling overshoots
    path = write_pcm_wav(tmp_path / "square.wav", np.stack([square, square], 1), 44100)
    samples = load_audio(path)
    assert np.abs(samples).max() <= 1.0
    assert np.abs(samples).max() > 0.95


def _frame(samples: np.ndarray, rate: int, layout: str) -> av.AudioFrame:
    """An fltp AudioFrame from float [C,n]."""
    frame = av.AudioFrame.from_ndarray(samples.astype(np.float32), format="fltp", layout=layout)
    frame.sample_rate = rate
    return frame


def test_rate_and_layout_changes_midway_are_followed() -> None:
    first = _frame(tone(440, 8000, 0.5, 0.5)[None], 8000, "mono")
    second = _frame(np.stack([tone(440, 32000, 0.5, 0.5)] * 2), 32000, "stereo")
    chunks = list(audio_module._mono(iter([first, second]), 16000, Path("x.wav")))
    samples = np.concatenate(chunks)
    assert abs(len(samples) - 16000) <= 10
    assert level_at(samples[:7000], 16000, 440) == pytest.approx(0.5, rel=0.05)
    assert level_at(samples[9000:], 16000, 440) == pytest.approx(0.5, rel=0.05)


@pytest.mark.parametrize(
    ("extra", "kept"), [(0, 0), (800, 0), (1600, 0), (1700, 1700), (5000, 5000)]
)
def test_only_short_padding_past_the_declared_duration_is_cut(extra: int, kept: int) -> None:
    """Up to 0.1 s (1600 samples at 16 kHz) past the declared end is padding; more is sound."""
    signal = np.arange(16000 + extra, dtype=np.float32)
    pieces = [signal[i:i + 1000] for i in range(0, len(signal), 1000)]
    out = np.concatenate(list(audio_module._trim_padding(iter(pieces), 16000, 16000)))
    np.testing.assert_array_equal(out, signal[:16000 + kept])


# ---------------------------------------------------------------- blocks


@pytest.mark.parametrize(("name", "rate"), [("wav44k_stereo", 16000), ("m4a_aac", 22050)])
def test_blocks_have_the_promised_size_and_join_to_load_audio(
    media: dict[str, Path], name: str, rate: int
) -> None:
    path = _media(media, name)
    blocks = list(iter_audio(path, rate=rate, block_seconds=0.7))
    size = round(rate * 0.7)
    assert all(b.dtype == np.float32 and b.ndim == 1 for b in blocks)
    assert [len(b) for b in blocks[:-1]] == [size] * (len(blocks) - 1)
    assert 1 <= len(blocks[-1]) <= size
    assert len(blocks) == int(np.ceil(SECONDS * rate / size))
    np.testing.assert_array_equal(np.concatenate(blocks), load_audio(path, rate=rate))


def test_max_seconds_stops_the_stream_at_that_sample(tmp_path: Path) -> None:
    path = write_wav(tmp_path / "three.wav", 3.0)
    whole = load_audio(path)
    for seconds, sizes in ((0.5, [8000]), (1.0, [16000]), (2.5, [16000, 16000, 8000]), (9.0, [16000] * 3)):
        blocks = list(iter_audio(path, 16000, 1.0, max_seconds=seconds))
        assert [len(b) for b in blocks] == sizes
        np.testing.assert_array_equal(np.concatenate(blocks), whole[:sum(sizes)])


def test_default_block_is_ten_seconds(tmp_path: Path) -> None:
    path = write_wav(tmp_path / "long.wav", 25.0, rate=16000)
    assert [len(b) for b in iter_audio(path)] == [160000, 160000, 80000]


def test_memory_does_not_grow_with_length(tmp_path: Path) -> None:
    path = tmp_path / "minute.wav"
    run_ffmpeg(*_sine(44100, seconds=60), "-ac", "2", str(path))  # 60 s = 3.8 MB as float32 16 kHz
    tracemalloc.start()
    try:
        total = sum(len(b) for b in iter_audio(path, block_seconds=1.0))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert total == 60 * 16000
    assert peak < 1_000_000  # a 1 s block is 64 kB


def test_packets_are_decoded_lazily(
    media: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """When the first 0.5 s block comes out, little more than 0.5 s has been decoded."""
    decoded: list[float] = []
    real = audio_module._decoded

    def counting(*args: object) -> object:
        for frame in real(*args):
            decoded.append(frame.samples / frame.sample_rate)
            yield frame

    monkeypatch.setattr(audio_module, "_decoded", counting)
    blocks = iter_audio(media["wav44k_stereo"], block_seconds=0.5)
    assert len(next(blocks)) == 8000
    assert 0.5 <= sum(decoded) < 0.6
    blocks.close()


def test_iter_audio_is_lazy_but_checks_arguments_now(tmp_path: Path) -> None:
    path = tmp_path / "text.wav"
    path.write_text("not audio")
    blocks = iter_audio(path)  # opened on the first next()
    with pytest.raises(MediaError):
        next(blocks)
    with pytest.raises(ValueError, match="rate"):
        iter_audio(path, rate=0)
    with pytest.raises(ValueError, match="block_seconds"):
        iter_audio(path, block_seconds=0.0)


# ---------------------------------------------------------------- errors


def test_missing_file(tmp_path: Path) -> None:
    for call in (probe_audio, load_audio, iter_audio):
        with pytest.raises(MediaError, match="not found"):
            call(tmp_path / "nothere.wav")


def test_text_file_renamed_wav(tmp_path: Path) -> None:
    path = tmp_path / "notes.wav"
    path.write_text("these are not samples\n" * 20)
    for call in (probe_audio, load_audio):
        with pytest.raises(MediaError, match="not a media file") as caught:
            call(path)
        assert "notes.wav" in str(caught.value) and "\n" not in str(caught.value)


def test_video_without_audio(tmp_path: Path) -> None:
    path = tmp_path / "silent.mp4"
    run_ffmpeg("-f", "lavfi", "-i", "testsrc=size=64x48:rate=25:duration=0.4",
               "-c:v", "libx264", "-preset", "ultrafast", str(path))
    for call in (probe_audio, load_audio):
        with pytest.raises(MediaError, match="has no audio track") as caught:
            call(path)
        assert "silent.mp4" in str(caught.value)


def test_empty_wav(tmp_path: Path) -> None:
    path = write_pcm_wav(tmp_path / "empty.wav", np.zeros((0, 1)), 16000)
    assert probe_audio(path).duration == 0.0
    with pytest.raises(MediaError, match="is empty") as caught:
        load_audio(path)
    assert "empty.wav" in str(caught.value)


def test_corrupt_stream_midway(media: dict[str, Path], tmp_path: Path) -> None:
    data = bytearray(_media(media, "m4a_aac").read_bytes())
    middle = len(data) // 3
    garbage = np.random.default_rng(0).integers(0, 256, 2000, np.uint8)
    data[middle:middle + 2000] = garbage.tobytes()
    path = tmp_path / "broken.m4a"
    path.write_bytes(bytes(data))
    blocks = iter_audio(path, block_seconds=0.25)
    with pytest.raises(MediaError, match="corrupt") as caught:
        list(blocks)
    assert "broken.m4a" in str(caught.value)
