"""Tests for talkhead.io.video: probe, iter_frames, VideoWriter."""

from __future__ import annotations

import types
import weakref
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from io_media import (
    decode_index,
    ffmpeg_decode_first,
    ffmpeg_supports,
    index_frame,
    run_ffmpeg,
    smooth_frame,
    write_video,
    write_wav,
)
from talkhead.errors import MediaError, OutputError
from talkhead.io import video as video_module
from talkhead.io.video import (
    VideoWriter,
    count_frames,
    iter_frames,
    probe_video,
    read_all_frames,
)


@pytest.fixture(scope="module")
def clip30(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """2 s, 30 fps, 64x48 smooth pattern."""
    path = tmp_path_factory.mktemp("clips") / "clip30.mp4"
    return write_video(path, [smooth_frame(k, 48, 64) for k in range(60)], fps=30)


def test_round_trip_write_probe_read(tmp_path: Path) -> None:
    frames = [smooth_frame(k, 48, 64) for k in range(20)]
    path = tmp_path / "rt.mp4"
    with VideoWriter(path, fps=25) as writer:
        for frame in frames:
            writer.write(frame)
    assert writer.frames_written == 20
    info = probe_video(path)
    assert (info.width, info.height, info.rotation, info.has_audio) == (64, 48, 0, False)
    assert info.fps == pytest.approx(25)
    assert info.frame_count == 20
    assert info.duration == pytest.approx(0.8, abs=0.05)
    assert info.path == str(path)
    got = list(iter_frames(path))
    assert len(got) == 20
    for want, have in zip(frames, got):
        assert have.shape == (48, 64, 3) and have.dtype == np.uint8
        assert np.abs(have.astype(int) - want.astype(int)).mean() < 8
    assert count_frames(path) == 20
    assert read_all_frames(path).shape == (20, 48, 64, 3)


def test_writer_sets_faststart(tmp_path: Path) -> None:
    path = tmp_path / "fs.mp4"
    with VideoWriter(path, fps=10) as writer:
        writer.write(smooth_frame(0, 16, 16))
    head = path.read_bytes()
    assert head.index(b"moov") < head.index(b"mdat")


def test_odd_size_is_padded_by_edge_replication(tmp_path: Path) -> None:
    frame = smooth_frame(3, 33, 65)
    path = tmp_path / "odd.mp4"
    with VideoWriter(path, fps=25) as writer:
        for _ in range(3):
            writer.write(frame)
    info = probe_video(path)
    assert (info.width, info.height) == (66, 34)
    got = next(iter_frames(path)).astype(int)
    assert np.abs(got[:33, :65] - frame).mean() < 8
    assert np.abs(got[:33, 65] - frame[:, 64]).mean() < 8
    assert np.abs(got[33, :65] - frame[32, :]).mean() < 8


def test_fractional_fps(tmp_path: Path) -> None:
    path = tmp_path / "ntsc.mp4"
    with VideoWriter(path, fps=29.97) as writer:
        for k in range(30):
            writer.write(smooth_frame(k, 32, 32))
    info = probe_video(path)
    assert info.fps == pytest.approx(29.97, abs=0.01)
    assert info.duration == pytest.approx(30 / 29.97, abs=0.01)
    assert len(list(iter_frames(path))) == 30


def test_writer_rejects_bad_frames(tmp_path: Path) -> None:
    writer = VideoWriter(tmp_path / "bad.mp4", fps=25)
    with pytest.raises(ValueError):
        writer.write(np.zeros((16, 16, 3), np.float32))
    with pytest.raises(ValueError):
        writer.write(np.zeros((16, 16), np.uint8))
    writer.write(np.zeros((16, 16, 3), np.uint8))
    with pytest.raises(ValueError, match="differs"):
        writer.write(np.zeros((16, 18, 3), np.uint8))
    writer.close()
    assert probe_video(tmp_path / "bad.mp4").frame_count == 1
    with pytest.raises(ValueError):
        VideoWriter(tmp_path / "x.mp4", fps=0)
    with pytest.raises(ValueError, match="no frames"):
        VideoWriter(tmp_path / "empty.mp4", fps=25).close()
    assert not (tmp_path / "empty.mp4").exists()


def test_writer_missing_folder_is_output_error(tmp_path: Path) -> None:
    with pytest.raises(OutputError, match="nope"):
        with VideoWriter(tmp_path / "nope" / "x.mp4", fps=25) as writer:
            writer.write(np.zeros((16, 16, 3), np.uint8))


def test_writer_exception_in_block_is_not_masked(tmp_path: Path) -> None:
    with pytest.raises(KeyError):
        with VideoWriter(tmp_path / "x.mp4", fps=25) as writer:
            writer.write(np.zeros((16, 16, 3), np.uint8))
            raise KeyError("boom")


def test_resample_30_to_25_and_60(clip30: Path) -> None:
    assert abs(len(list(iter_frames(clip30, fps=25))) - 50) <= 1
    up = list(iter_frames(clip30, fps=60))
    assert abs(len(up) - 120) <= 1
    assert up[0] is not up[1]  # repeats are copies, safe to modify
    assert np.array_equal(up[0], up[1])


def test_default_rate_keeps_all_frames(clip30: Path) -> None:
    assert probe_video(clip30).fps == pytest.approx(30)
    assert len(list(iter_frames(clip30))) == 60


def test_variable_frame_rate_comes_out_constant(tmp_path: Path) -> None:
    times_ms = [0, 40, 60, 300, 320, 700, 1000, 1010, 1020, 1500, 1900, 1950]
    frames = [index_frame(i) for i in range(len(times_ms))]
    path = write_video(tmp_path / "vfr.mp4", frames, fps=25, times_ms=times_ms)
    info = probe_video(path)
    got = list(iter_frames(path, fps=10))
    expected = sum(1 for k in range(100) if k / 10 < info.duration)
    assert abs(len(got) - expected) <= 1 and len(got) >= 19
    for k, frame in enumerate(got[:19]):
        want = max(i for i, t in enumerate(times_ms) if t <= k * 100)
        assert decode_index(frame) == want, f"output frame {k}"
    default = list(iter_frames(path))
    assert abs(len(default) - info.duration * info.fps) <= 1.5


def _rotated_clip(tmp_path: Path, degrees: int) -> Path:
    """64x32 clip with a red top-left block, tagged with a display rotation."""
    frame = np.zeros((32, 64, 3), np.uint8)
    frame[:16, :16] = (255, 0, 0)
    src = write_video(tmp_path / "flat.mp4", [frame] * 5, fps=10)
    out = tmp_path / f"rot{degrees}.mp4"
    if ffmpeg_supports("display_rotation"):
        run_ffmpeg("-display_rotation", str(degrees), "-i", str(src), "-c", "copy", str(out))
    else:
        run_ffmpeg("-i", str(src), "-c", "copy", "-metadata:s:v", f"rotate={degrees}", str(out))
    return out


@pytest.mark.parametrize("degrees", [90, 270])
def test_rotation_metadata_is_applied(tmp_path: Path, degrees: int) -> None:
    path = _rotated_clip(tmp_path, degrees)
    info = probe_video(path)
    assert (info.width, info.height) == (32, 64)
    assert info.rotation in (90, 270)
    got = list(iter_frames(path))
    assert len(got) == 5 and got[0].shape == (64, 32, 3)
    reference = ffmpeg_decode_first(path, 32, 64)  # ffmpeg's own autorotate
    assert np.abs(got[0].astype(int) - reference).mean() < 4
    red = got[0][..., 0] > 128
    corner = (red[:16, -16:].mean(), red[-16:, :16].mean())
    assert max(corner) > 0.9 and min(corner) < 0.1  # block moved to a corner
    small = next(iter_frames(path, max_side=32))
    assert small.shape == (32, 16, 3)


def test_max_side(clip30: Path) -> None:
    small = next(iter_frames(clip30, max_side=32))
    assert small.shape == (24, 32, 3) and small.flags["C_CONTIGUOUS"]
    assert next(iter_frames(clip30, max_side=33)).shape == (25, 33, 3)
    assert next(iter_frames(clip30, max_side=640)).shape == (48, 64, 3)
    with pytest.raises(ValueError):
        iter_frames(clip30, max_side=0)


def test_max_seconds(clip30: Path) -> None:
    assert len(list(iter_frames(clip30, max_seconds=0.5))) == 15
    assert len(list(iter_frames(clip30, fps=10, max_seconds=1.0))) == 10
    assert len(list(iter_frames(clip30, max_seconds=10))) == 60


def test_iter_frames_is_lazy_and_streams(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    frames = [smooth_frame(k, 48, 64) for k in range(300)]
    path = write_video(tmp_path / "long.mp4", frames, fps=30)
    pulled: list[int] = []
    real_decoded = video_module._decoded

    def counting(*args: object) -> Iterator[object]:
        for frame in real_decoded(*args):
            pulled.append(1)
            yield frame

    monkeypatch.setattr(video_module, "_decoded", counting)
    gen = iter_frames(path)
    assert isinstance(gen, types.GeneratorType) and not pulled  # nothing decoded yet
    next(gen)
    assert len(pulled) <= 3  # one output frame needs at most the next decoded one
    alive = []
    for k, frame in enumerate(gen, start=1):
        alive.append(weakref.ref(frame))
        del frame
        assert len(pulled) <= k + 3
        assert sum(ref() is not None for ref in alive) <= 2  # frames are not hoarded
    assert len(alive) == 299 and len(pulled) == 300


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(MediaError, match="not found"):
        probe_video(tmp_path / "none.mp4")
    with pytest.raises(MediaError, match="not found"):
        iter_frames(tmp_path / "none.mp4")  # raised at call time


@pytest.mark.parametrize("content", [b"hello, this is text\n" * 50, bytes(range(256)) * 40])
def test_not_a_video(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "fake.mp4"
    path.write_bytes(content)
    with pytest.raises(MediaError, match="fake.mp4"):
        probe_video(path)
    with pytest.raises(MediaError):
        list(iter_frames(path))


def test_audio_only_file_has_no_video_stream(tmp_path: Path) -> None:
    wav = write_wav(tmp_path / "tone.wav", 0.5)
    with pytest.raises(MediaError, match="has no video stream"):
        probe_video(wav)
    with pytest.raises(MediaError, match="has no video stream"):
        list(iter_frames(wav))


def test_directory_is_media_error(tmp_path: Path) -> None:
    with pytest.raises(MediaError, match="directory"):
        probe_video(tmp_path)


def test_truncated_file_stops_gracefully(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    path = tmp_path / "full.mp4"
    with VideoWriter(path, fps=25) as writer:  # faststart: header first
        for _ in range(30):
            writer.write(rng.integers(0, 256, (48, 64, 3), dtype=np.uint8))
    data = path.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) * 2 // 3])
    got = list(iter_frames(cut))
    assert 1 <= len(got) < 30
    assert all(f.shape == (48, 64, 3) for f in got)
    header_only = tmp_path / "header.mp4"
    header_only.write_bytes(data[: data.index(b"mdat") + 4])
    with pytest.raises(MediaError, match="header.mp4"):
        list(iter_frames(header_only))
