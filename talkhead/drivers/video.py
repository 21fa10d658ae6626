"""Driving video → Motion: track the face, bridge lost frames, remove jitter."""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from typing import Callable

import numpy as np

from talkhead.errors import MediaError, NoFaceFound
from talkhead.face.landmarks import FaceLandmarker, FaceTracker
from talkhead.io.video import iter_frames, probe_video
from talkhead.motion import Motion, bridge_gaps, motion_from_landmarks, smooth_landmarks

TRACK_SIDE = 720  # frames are scaled down to this longer side for tracking (pixels)

Progress = Callable[[int, int], None]  # (frames done, frames expected)


@dataclass(frozen=True)
class VideoMotion:
    """A driving video's motion and how it was measured."""

    motion: Motion
    lost: int          # frames without a face, bridged

    @property
    def frames(self) -> int:
        return len(self.motion)


def track_landmarks(frames, landmarker: FaceLandmarker, progress: Progress | None = None,
                    expected: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Landmarks float32 [T,478,3] and found-mask bool [T] for an iterable of frames."""
    tracker = FaceTracker(landmarker)
    points, found = [], []
    empty = np.zeros((478, 3), np.float32)
    for i, frame in enumerate(frames):
        pts = tracker(frame)
        points.append(empty if pts is None else pts)
        found.append(pts is not None)
        if progress:
            progress(i + 1, expected)
    return np.stack(points) if points else np.zeros((0, 478, 3), np.float32), np.array(found, bool)


def motion_from_video(path: str | os.PathLike[str], fps: float | None = None,
                      max_seconds: float | None = None, smooth: bool = True,
                      progress: Progress | None = None) -> VideoMotion:
    """Measure the motion of the (largest) face in a driving video.

    fps: output frame rate (default: the video's own). Frames where the face
    is lost are bridged by interpolation and counted in `lost`.
    """
    info = probe_video(path)
    rate = fps or info.fps
    expected = int(round(min(info.duration or 0, max_seconds or 1e9) * rate)) or info.frame_count
    frames = iter_frames(path, fps=rate, max_seconds=max_seconds, max_side=TRACK_SIDE)
    with FaceLandmarker() as landmarker, contextlib.closing(frames):
        points, found = track_landmarks(frames, landmarker, progress, expected)
    if len(found) == 0:
        raise MediaError(f"driving video {path} gave no frames (is --max-seconds shorter than one frame?)")
    if not found.any():
        raise NoFaceFound(f"no face found in any frame of driving video {path}: use a video that shows a face")
    points = bridge_gaps(points, found)
    if smooth:
        points = smooth_landmarks(points, rate)
    motion = motion_from_landmarks(points, found, rate)
    return VideoMotion(motion, int((~found).sum()))
