"""Video files: probe, stream frames as RGB, write H.264 MP4.

Uses PyAV (FFmpeg bindings). Frames are always ``uint8 [H,W,3] RGB``,
upright (the stream's display-matrix rotation is applied) and at a constant
frame rate (variable-frame-rate input is resampled).
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from types import TracebackType

import av
import av.stream
import cv2
import numpy as np

from talkhead.errors import MediaError, OutputError
from talkhead.io.files import require_readable

log = logging.getLogger(__name__)

DEFAULT_FPS = 25.0
_FORMATS_BY_SUFFIX = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov"}


@dataclass(frozen=True)
class VideoInfo:
    """What :func:`probe_video` learns about a video file.

    ``width``/``height`` are the display size in pixels (after rotation);
    ``fps`` the average frame rate (25 if unknown); ``duration`` seconds (0.0
    if unknown); ``frame_count`` an estimate (stream header, else
    duration*fps); ``rotation`` the degrees clockwise (0/90/180/270) applied
    to make frames upright; ``has_audio`` whether any audio stream exists.
    """

    path: str
    width: int
    height: int
    fps: float
    duration: float
    frame_count: int
    rotation: int
    has_audio: bool


def _reason(exc: BaseException) -> str:
    """One-line reason text for an exception."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def open_input(path: str | os.PathLike[str], what: str = "video",
               advice: str = "use a video file such as MP4") -> av.container.InputContainer:
    """Open a media file for reading with PyAV.

    Raises:
        MediaError: missing, unreadable, or not a media file FFmpeg can open.
    """
    p = require_readable(path)
    try:
        return av.open(str(p), mode="r")
    except (av.FFmpegError, OSError, UnicodeDecodeError) as exc:
        raise MediaError(
            f"cannot read {what} {p}: not a media file FFmpeg can open ({_reason(exc)}); {advice}"
        ) from exc


def _video_stream(container: av.container.InputContainer, path: Path) -> av.VideoStream:
    """Return the first real video stream (cover-art pictures are skipped)."""
    for stream in container.streams.video:
        if not stream.disposition & av.stream.Disposition.attached_pic:
            return stream
    raise MediaError(f"{path} has no video stream; give a video file, not an audio or image file")


def _stream_fps(stream: av.VideoStream) -> float:
    """Average frame rate of ``stream``, else its guessed rate, else 25."""
    for rate in (stream.average_rate, stream.guessed_rate):
        if rate is not None and rate > 0 and math.isfinite(float(rate)):
            return float(rate)
    return DEFAULT_FPS


def _stream_duration(stream: av.VideoStream, container: av.container.InputContainer) -> float:
    """Duration in seconds from the stream, else the container, else 0.0."""
    if stream.duration and stream.time_base:
        return float(stream.duration * stream.time_base)
    if container.duration and container.duration > 0:
        return container.duration / av.time_base
    return 0.0


def _ccw_quarter_turns(frame: av.VideoFrame) -> int:
    """Quarter turns counter-clockwise (0..3) the display matrix asks for."""
    return int(round(frame.rotation / 90.0)) % 4


def _first_frame(
    container: av.container.InputContainer, stream: av.VideoStream
) -> av.VideoFrame | None:
    """Decode and return the first frame, or None if none decodes."""
    try:
        for frame in container.decode(stream):
            return frame
    except av.FFmpegError:
        return None
    return None


def probe_video(path: str | os.PathLike[str]) -> VideoInfo:
    """Read a video's size, rate, duration, rotation and audio presence.

    Decodes only the first frame (to read its rotation).

    Raises:
        MediaError: missing file, not a media file, or no video stream.
    """
    p = require_readable(path)
    with open_input(p) as container:
        stream = _video_stream(container, p)
        fps = _stream_fps(stream)
        duration = _stream_duration(stream, container)
        frame_count = stream.frames or int(round(duration * fps))
        has_audio = len(container.streams.audio) > 0
        first = _first_frame(container, stream)
        width = first.width if first is not None else stream.width
        height = first.height if first is not None else stream.height
        turns = _ccw_quarter_turns(first) if first is not None else 0
    if turns % 2:
        width, height = height, width
    return VideoInfo(
        path=str(p),
        width=int(width),
        height=int(height),
        fps=fps,
        duration=duration,
        frame_count=int(frame_count),
        rotation=(-90 * turns) % 360,
        has_audio=has_audio,
    )


def _check_positive(value: float | None, name: str) -> None:
    """Raise ValueError unless ``value`` is None or a finite number > 0."""
    if value is not None and not (math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a positive number, got {value!r}")


def iter_frames(
    path: str | os.PathLike[str],
    fps: float | None = None,
    max_seconds: float | None = None,
    max_side: int | None = None,
) -> Iterator[np.ndarray]:
    """Stream a video's frames, upright, at a constant frame rate.

    Output frame ``k`` is the latest decoded frame whose timestamp (relative
    to the first frame) is <= ``k / fps``; frames are duplicated or dropped
    as needed, so variable-frame-rate input comes out at a constant rate.
    ``fps=None`` uses the stream's average rate. ``max_seconds`` stops after
    that much output time. ``max_side`` downscales (keeping the aspect ratio)
    when the larger display side exceeds it. Only a few frames are held in
    memory at once. A decode error mid-file ends the stream quietly after
    the frames already decoded.

    The missing-file check and argument checks run at call time; the file
    is opened on the first ``next()``.

    Yields:
        frame: uint8 [H,W,3] RGB, 0..255, C-contiguous; the same H,W for the
        whole stream. Repeated frames are separate copies.

    Raises:
        MediaError: missing/unreadable file, not a video, or no frame decodes.
        ValueError: ``fps``, ``max_seconds`` or ``max_side`` is not positive.
    """
    p = require_readable(path)
    _check_positive(fps, "fps")
    _check_positive(max_seconds, "max_seconds")
    if max_side is not None and max_side < 1:
        raise ValueError(f"max_side must be >= 1, got {max_side!r}")
    return _generate_frames(p, fps, max_seconds, max_side)


def _generate_frames(
    path: Path, fps: float | None, max_seconds: float | None, max_side: int | None
) -> Iterator[np.ndarray]:
    """Generator behind :func:`iter_frames` (owns the open container)."""
    with open_input(path) as container:
        stream = _video_stream(container, path)
        stream.thread_type = "AUTO"
        out_fps = float(fps) if fps is not None else _stream_fps(stream)
        tick = float(stream.time_base) if stream.time_base else 0.0
        timed = _timed_frames(container, stream, path)
        convert = _RgbConverter(max_side)
        yield from _resample(timed, out_fps, max_seconds, convert, tick)


def _decoded(
    container: av.container.InputContainer, stream: av.VideoStream, path: Path
) -> Iterator[av.VideoFrame]:
    """Decode ``stream`` frame by frame, surviving a broken tail.

    On a demux/decode error the decoder is flushed, so frames it already
    holds still come out, and decoding stops. If no frame comes out at all
    (error or empty stream) it raises MediaError.
    """
    count = 0
    error: Exception | None = None
    try:
        for packet in container.demux(stream):
            for frame in stream.decode(packet):
                count += 1
                yield frame
    except av.FFmpegError as exc:
        error = exc
        try:
            for frame in stream.decode(None):
                count += 1
                yield frame
        except av.FFmpegError:
            pass
    if count == 0:
        detail = f" ({_reason(error)})" if error is not None else ""
        raise MediaError(
            f"cannot read video {path}: no frame could be decoded{detail}; "
            "check that the file is complete and not corrupt"
        ) from error
    if error is not None:
        log.warning("stopped reading %s early after a decode error: %s", path, _reason(error))


def _timed_frames(
    container: av.container.InputContainer, stream: av.VideoStream, path: Path
) -> Iterator[tuple[float, float, av.VideoFrame]]:
    """Yield ``(start, end, frame)`` in seconds relative to the first frame.

    Timestamps never go backwards. Frames without a timestamp follow the
    previous one by one average frame period; ``end`` is ``start`` plus the
    frame's duration (one average period if unknown).
    """
    period = 1.0 / _stream_fps(stream)
    t0: float | None = None
    last = -math.inf
    for frame in _decoded(container, stream, path):
        t = frame.time if frame.time is not None else last + period
        if t0 is None:
            t0 = t
        start = max(t - t0, last)
        last = start
        yield start, start + (_frame_length(frame) or period), frame


def _frame_length(frame: av.VideoFrame) -> float:
    """The frame's duration in seconds, 0.0 if unknown."""
    if frame.duration and frame.time_base:
        return max(0.0, float(frame.duration * frame.time_base))
    return 0.0


class _Held:
    """The frame currently shown; converted to RGB the first time it is used."""

    def __init__(self, frame: av.VideoFrame, end: float) -> None:
        self.frame: av.VideoFrame | None = frame
        self.end = end
        self.array: np.ndarray | None = None

    def take(self, convert: _RgbConverter) -> np.ndarray:
        """Return uint8 [H,W,3] RGB; a fresh copy on every repeat."""
        if self.array is None:
            assert self.frame is not None
            self.array = convert(self.frame)
            self.frame = None
            return self.array
        return self.array.copy()


def _resample(
    timed: Iterator[tuple[float, float, av.VideoFrame]],
    fps: float,
    max_seconds: float | None,
    convert: _RgbConverter,
    tick: float,
) -> Iterator[np.ndarray]:
    """Turn timed frames into a constant-rate stream (see :func:`iter_frames`).

    ``tick`` is the stream's time base in seconds: timestamps within one
    tick of an output time count as reached (they were rounded to ticks).
    """
    tol = min(max(tick, 1e-6), 0.1 / fps)
    limit = math.inf if max_seconds is None else max_seconds - tol
    k = 0
    held: _Held | None = None
    for start, end, frame in timed:
        while held is not None and k / fps < start - tol:
            if k / fps >= limit:
                return
            yield held.take(convert)
            k += 1
        held = _Held(frame, end)
    while held is not None and k / fps < min(held.end - tol, limit):
        yield held.take(convert)
        k += 1


class _RgbConverter:
    """Convert decoded frames to upright RGB arrays of one fixed size.

    The output size and rotation are fixed by the first frame, so a stream
    that changes resolution midway still yields frames of one size.
    """

    def __init__(self, max_side: int | None) -> None:
        self.max_side = max_side
        self.size: tuple[int, int] | None = None  # coded (width, height)
        self.turns = 0

    def _plan(self, frame: av.VideoFrame) -> tuple[int, int]:
        """Fix the coded output size and rotation from the first frame."""
        self.turns = _ccw_quarter_turns(frame)
        w, h = frame.width, frame.height
        if self.max_side is not None and max(w, h) > self.max_side:
            scale = self.max_side / max(w, h)
            w, h = max(1, round(w * scale)), max(1, round(h * scale))
        return w, h

    def __call__(self, frame: av.VideoFrame) -> np.ndarray:
        """Return ``frame`` as uint8 [H,W,3] RGB, scaled and upright."""
        if self.size is None:
            self.size = self._plan(frame)
        w, h = self.size
        same = (w, h) == (frame.width, frame.height)
        rgb = frame.reformat(
            width=w, height=h, format="rgb24", interpolation=None if same else "AREA"
        ).to_ndarray()
        if self.turns:
            rgb = np.rot90(rgb, self.turns)
        return np.ascontiguousarray(rgb)


def _pad_to_even(frame: np.ndarray) -> np.ndarray:
    """Pad uint8 [H,W,3] on the bottom/right by edge replication to even H,W."""
    pad_h, pad_w = frame.shape[0] % 2, frame.shape[1] % 2
    if not (pad_h or pad_w):
        return frame
    return np.pad(frame, ((0, pad_h), (0, pad_w), (0, 0)), mode="edge")


class VideoWriter:
    """Write RGB frames to an H.264 (libx264, yuv420p) MP4 with PyAV.

    The frame size is fixed by the first frame; odd sizes are padded to even
    by repeating the last row/column. ``fps`` may be fractional (29.97).
    The file gets ``+faststart``. Writes ``path`` directly: wrap it in
    :func:`talkhead.io.files.atomic_output` for all-or-nothing output.

    Use as a context manager; on an exception inside the ``with`` block the
    file is closed without raising further errors (the caller's
    ``atomic_output`` then removes it).
    """

    def __init__(
        self, path: str | os.PathLike[str], fps: float, crf: int = 18, preset: str = "veryfast"
    ) -> None:
        _check_positive(fps, "fps")
        self.path = Path(path)
        self.rate = Fraction(fps).limit_denominator(1001)
        self._time_base = 1 / self.rate  # frame pts count frames
        self.crf = int(crf)
        self.preset = preset
        self.frames_written = 0
        self._size: tuple[int, int] | None = None  # (height, width) of input frames
        self._container: av.container.OutputContainer | None = None
        self._stream: av.VideoStream | None = None
        self._closed = False

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.close()
        else:
            self._abort()

    def _open(self, height: int, width: int) -> None:
        """Create the container and the H.264 stream for frames of this size."""
        fmt = _FORMATS_BY_SUFFIX.get(self.path.suffix.lower(), "mp4")
        try:
            container = av.open(
                str(self.path), mode="w", format=fmt, options={"movflags": "+faststart"}
            )
        except (av.FFmpegError, OSError) as exc:
            raise OutputError(
                f"cannot write {self.path}: {_reason(exc)}; check the output path"
            ) from exc
        stream = container.add_stream("libx264", rate=self.rate)
        stream.width, stream.height = width + width % 2, height + height % 2
        stream.pix_fmt = "yuv420p"
        stream.codec_context.time_base = self._time_base
        stream.options = {"crf": str(self.crf), "preset": self.preset}
        # x264 encodes several frames at once on frame threads (PyAV's default, slice threads, keeps it near
        # one core): about 1.6x faster on 2 cores, and the output is still deterministic
        stream.codec_context.thread_type = "AUTO"
        self._container, self._stream = container, stream

    def write(self, frame: np.ndarray) -> None:
        """Append one frame: uint8 [H,W,3] RGB, same H,W as the first frame.

        Raises:
            ValueError: wrong dtype/shape, a size change, or writer closed.
            OutputError: the encoder or the file failed.
        """
        if self._closed:
            raise ValueError(f"VideoWriter for {self.path} is closed")
        if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
            raise ValueError(f"frames must be uint8 [H,W,3] RGB, got {frame.dtype} {frame.shape}")
        size = (frame.shape[0], frame.shape[1])
        if self._size is None:
            if min(size) < 1:
                raise ValueError(f"frames must not be empty, got shape {frame.shape}")
            self._open(*size)
            self._size = size
        elif size != self._size:
            raise ValueError(f"frame size {size} differs from the first frame's {self._size}")
        padded = np.ascontiguousarray(_pad_to_even(frame))
        # OpenCV's RGB → YUV 4:2:0 (BT.601, limited range, as FFmpeg's default conversion) takes a
        # fraction of the time of PyAV's reformat
        video = av.VideoFrame.from_ndarray(cv2.cvtColor(padded, cv2.COLOR_RGB2YUV_I420), format="yuv420p")
        video.pts = self.frames_written
        video.time_base = self._time_base
        self._mux(self._stream.encode(video))
        self.frames_written += 1

    def _mux(self, packets: list[av.Packet]) -> None:
        """Mux encoded packets, turning FFmpeg errors into OutputError."""
        try:
            for packet in packets:
                self._container.mux(packet)
        except (av.FFmpegError, OSError) as exc:
            raise self._write_error(exc) from exc

    def _write_error(self, exc: BaseException) -> OutputError:
        """OutputError for a failure while encoding or finishing the file."""
        return OutputError(
            f"cannot write {self.path}: {_reason(exc)}; check free disk space and the path"
        )

    def close(self) -> None:
        """Flush the encoder and finish the file. Idempotent.

        Raises:
            ValueError: no frame was ever written (no file is created).
            OutputError: flushing or finishing the file failed.
        """
        if self._closed:
            return
        self._closed = True
        if self._container is None:
            raise ValueError(f"no frames were written to {self.path}")
        try:
            self._mux(self._stream.encode(None))
        finally:
            try:
                self._container.close()
            except (av.FFmpegError, OSError) as exc:
                raise self._write_error(exc) from exc

    def _abort(self) -> None:
        """Close after a failure, swallowing FFmpeg errors."""
        self._closed = True
        if self._container is not None:
            try:
                self._container.close()
            except (av.FFmpegError, OSError) as exc:
                log.debug("ignored error while aborting %s: %s", self.path, exc)


def count_frames(path: str | os.PathLike[str]) -> int:
    """Number of frames that decode from the file (no resampling).

    For tests and benchmarks only: decodes the whole video.
    """
    p = require_readable(path)
    with open_input(p) as container:
        stream = _video_stream(container, p)
        stream.thread_type = "AUTO"
        return sum(1 for _ in container.decode(stream))


def read_all_frames(path: str | os.PathLike[str]) -> np.ndarray:
    """All frames of :func:`iter_frames` (default rate) as uint8 [T,H,W,3] RGB.

    For tests and benchmarks only: holds the whole video in memory.
    """
    frames = list(iter_frames(path))
    if not frames:
        raise MediaError(f"cannot read video {path}: it holds no frames; use another video")
    return np.stack(frames)
