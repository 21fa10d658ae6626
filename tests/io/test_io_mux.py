"""Tests for talkhead.io.mux: has_audio / mux_audio (runs the ffmpeg CLI)."""

from __future__ import annotations

import shutil
from pathlib import Path

import av
import pytest

from io_media import smooth_frame, stream_durations, write_video, write_wav
from talkhead.errors import MediaError
from talkhead.io import mux
from talkhead.io.mux import has_audio, mux_audio
from talkhead.io.video import probe_video

pytestmark = pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs the ffmpeg CLI")


@pytest.fixture()
def video(tmp_path: Path) -> Path:
    """1.2 s silent 25 fps video."""
    return write_video(tmp_path / "v.mp4", [smooth_frame(k, 32, 48) for k in range(30)], fps=25)


def _stream_types(path: Path) -> list[str]:
    with av.open(str(path)) as container:
        return [s.type for s in container.streams]


def test_mux_sine_wav(tmp_path: Path, video: Path) -> None:
    wav = write_wav(tmp_path / "tone.wav", 3.0)
    out = tmp_path / "out.mp4"
    assert has_audio(wav) and not has_audio(video)
    assert mux_audio(video, wav, out) is True
    assert sorted(_stream_types(out)) == ["audio", "video"]
    durations = stream_durations(out)
    assert durations["video"] == pytest.approx(1.2, abs=0.05)
    assert durations["audio"] == pytest.approx(durations["video"], abs=0.1)
    assert has_audio(out) and probe_video(out).has_audio
    head = out.read_bytes()
    assert head.index(b"moov") < head.index(b"mdat")


def test_mux_offset_and_duration(tmp_path: Path, video: Path) -> None:
    wav = write_wav(tmp_path / "tone.wav", 3.0)
    out = tmp_path / "out.mp4"
    assert mux_audio(video, wav, out, offset=2.5)  # only 0.5 s of audio left
    assert stream_durations(out)["audio"] == pytest.approx(0.5, abs=0.1)
    assert mux_audio(video, wav, out, duration=0.6)
    assert stream_durations(out)["audio"] == pytest.approx(0.6, abs=0.1)
    with pytest.raises(ValueError):
        mux_audio(video, wav, out, offset=-1)


def test_audio_from_a_video_source(tmp_path: Path, video: Path) -> None:
    wav = write_wav(tmp_path / "tone.wav", 3.0)
    with_audio = tmp_path / "with_audio.mp4"
    assert mux_audio(video, wav, with_audio)
    out = tmp_path / "out.mp4"
    assert mux_audio(video, with_audio, out)
    assert sorted(_stream_types(out)) == ["audio", "video"]


def _audio_packets(path: Path) -> list[bytes]:
    with av.open(str(path)) as container:
        return [bytes(p) for p in container.demux(audio=0) if p.size]


def test_aac_audio_is_copied_other_audio_encoded(tmp_path: Path, video: Path) -> None:
    wav = write_wav(tmp_path / "tone.wav", 3.0)
    with_aac = tmp_path / "with_aac.mp4"
    assert mux_audio(video, wav, with_aac, duration=3.0)      # WAV: encoded as AAC
    assert mux.audio_codec(wav) == "pcm_s16le" and mux.audio_codec(with_aac) == "aac"
    out = tmp_path / "out.mp4"
    assert mux_audio(video, with_aac, out)                    # AAC from the start: copied, not encoded again
    copied, source = _audio_packets(out), _audio_packets(with_aac)
    assert len(copied) > 10 and copied == source[:len(copied)]
    assert stream_durations(out)["audio"] == pytest.approx(1.2, abs=0.05)
    shifted = tmp_path / "shifted.mp4"
    assert mux_audio(video, with_aac, shifted, offset=0.5)    # cut from an offset: encoded again
    assert _audio_packets(shifted)[5] not in source


def test_source_without_audio_returns_false(tmp_path: Path, video: Path) -> None:
    out = tmp_path / "out.mp4"
    assert mux_audio(video, video, out) is False
    assert not out.exists()


def test_ffmpeg_missing(tmp_path: Path, video: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    wav = write_wav(tmp_path / "tone.wav", 1.0)
    monkeypatch.setattr(mux.shutil, "which", lambda name: None)
    with pytest.raises(MediaError, match="ffmpeg not found: install it"):
        mux_audio(video, wav, tmp_path / "out.mp4")


def test_ffmpeg_failure_reports_its_last_line(tmp_path: Path, video: Path) -> None:
    wav = write_wav(tmp_path / "tone.wav", 1.0)
    with pytest.raises(MediaError, match="No such file or directory") as info:
        mux_audio(video, wav, tmp_path / "missing" / "out.mp4")
    assert "\n" not in str(info.value)


def test_bad_inputs(tmp_path: Path, video: Path) -> None:
    with pytest.raises(MediaError, match="not found"):
        mux_audio(video, tmp_path / "none.wav", tmp_path / "out.mp4")
    text = tmp_path / "notes.txt"
    text.write_text("hello\n" * 20)
    with pytest.raises(MediaError, match="notes.txt"):
        has_audio(text)


def test_muxed_output_writes_all_or_nothing(tmp_path: Path, video: Path) -> None:
    wav = write_wav(tmp_path / "tone.wav", 3.0)
    folder = tmp_path / "out"
    folder.mkdir()
    with mux.MuxedOutput(folder / "a.mp4", wav, 1.2) as out:
        shutil.copy(video, out.video)
    assert out.audio and sorted(_stream_types(folder / "a.mp4")) == ["audio", "video"]
    with mux.MuxedOutput(folder / "b.mp4", None, None) as silent:
        shutil.copy(video, silent.video)
    assert not silent.audio and _stream_types(folder / "b.mp4") == ["video"]
    with pytest.raises(RuntimeError):
        with mux.MuxedOutput(folder / "c.mp4", wav, 1.2) as failing:
            shutil.copy(video, failing.video)
            raise RuntimeError("render failed")
    assert sorted(p.name for p in folder.iterdir()) == ["a.mp4", "b.mp4"]  # no c.mp4, no temp files


def test_muxed_output_fails_when_muxing_fails(tmp_path: Path, video: Path) -> None:
    broken = tmp_path / "broken.wav"
    broken.write_bytes(b"RIFF not really a wav")
    folder = tmp_path / "out"
    folder.mkdir()
    with pytest.raises(MediaError):
        with mux.MuxedOutput(folder / "d.mp4", broken, 1.2) as out:
            shutil.copy(video, out.video)
    assert list(folder.iterdir()) == []
