"""Synthetic media for the talkhead.io tests (everything is made on the fly)."""

from __future__ import annotations

import subprocess
import wave
from fractions import Fraction
from pathlib import Path

import av
import numpy as np


def smooth_frame(k: int, height: int, width: int) -> np.ndarray:
    """A smooth test pattern, uint8 [H,W,3] RGB: x ramp, y ramp, level k."""
    x = np.linspace(0, 255, width)[None, :].repeat(height, 0)
    y = np.linspace(0, 255, height)[:, None].repeat(width, 1)
    level = np.full((height, width), (40 + 12 * k) % 256, dtype=np.float64)
    return np.stack([x, y, level], axis=2).astype(np.uint8)


def index_frame(i: int, height: int = 32, width: int = 48) -> np.ndarray:
    """A flat gray frame whose level 8 + 20*i encodes ``i`` (0..11)."""
    return np.full((height, width, 3), 8 + 20 * i, dtype=np.uint8)


def decode_index(frame: np.ndarray) -> int:
    """Inverse of :func:`index_frame` (robust to compression noise)."""
    return int(round((float(frame.mean()) - 8) / 20))


def write_video(
    path: Path,
    frames: list[np.ndarray],
    fps: float = 25,
    times_ms: list[int] | None = None,
) -> Path:
    """Encode RGB frames to an H.264 MP4 with PyAV (moov at the end).

    ``times_ms`` gives explicit (possibly irregular) timestamps in ms, which
    makes a variable-frame-rate file.
    """
    with av.open(str(path), "w") as container:
        rate = Fraction(fps).limit_denominator(1001)
        stream = container.add_stream("libx264", rate=rate)
        stream.height, stream.width = frames[0].shape[:2]
        stream.pix_fmt = "yuv420p"
        stream.options = {"preset": "ultrafast", "crf": "12"}
        tb = Fraction(1, 1000) if times_ms is not None else 1 / rate
        stream.codec_context.time_base = tb
        for i, rgb in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            frame.pts = times_ms[i] if times_ms is not None else i
            frame.time_base = tb
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return path


def write_wav(path: Path, seconds: float, rate: int = 16000, freq: float = 440.0) -> Path:
    """Write a mono 16-bit sine-wave WAV with the stdlib ``wave`` module."""
    t = np.arange(int(seconds * rate)) / rate
    samples = (0.3 * 32767 * np.sin(2 * np.pi * freq * t)).astype("<i2")
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(samples.tobytes())
    return path


def run_ffmpeg(*args: str) -> None:
    """Run the ffmpeg CLI quietly; fail loudly with its stderr."""
    cmd = ["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y", *args]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed: {done.stderr}")


def ffmpeg_supports(option: str) -> bool:
    """Whether the installed ffmpeg CLI knows ``-option``."""
    done = subprocess.run(
        ["ffmpeg", "-hide_banner", "-h", "full"], capture_output=True, text=True, check=False
    )
    return f"-{option} " in done.stdout


def ffmpeg_decode_first(path: Path, width: int, height: int) -> np.ndarray:
    """First frame as ffmpeg's CLI shows it (autorotate on): uint8 [H,W,3]."""
    cmd = ["ffmpeg", "-nostdin", "-loglevel", "error", "-i", str(path), "-frames:v", "1",
           "-f", "rawvideo", "-pix_fmt", "rgb24", "-"]
    raw = subprocess.run(cmd, capture_output=True, check=True).stdout
    return np.frombuffer(raw, np.uint8).reshape(height, width, 3)


def stream_durations(path: Path) -> dict[str, float]:
    """Seconds per stream type ('video', 'audio') of a media file."""
    with av.open(str(path)) as container:
        return {
            s.type: float(s.duration * s.time_base)
            for s in container.streams
            if s.duration is not None
        }
