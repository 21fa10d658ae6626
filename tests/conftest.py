"""Shared test data for the talkhead tests: everything is made on the fly.

The portrait is scikit-image's astronaut (a real 512x512 photo of a face);
the driving clip is that same photo moved by KNOWN similarity transforms, so
what the animated face should do is known exactly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pytest

from io_media import write_wav

FPS = 25
N_FRAMES = 50
MAX_ANGLE = 10.0   # degrees, reached at the clip's middle
MAX_SHIFT = (20.0, -12.0)  # pixels (x, y), reached at the clip's middle
TONE_HZ = 440.0


@dataclass(frozen=True)
class DrivingClip:
    """A driving video made from the astronaut with known per-frame motion."""

    path: Path
    affines: np.ndarray       # float64 [T,2,3]: portrait pixels → frame-t pixels
    centre: np.ndarray        # float [2] face centre the rotation is about (pixels)
    angles: np.ndarray        # float [T] degrees (counter-clockwise on screen, cv2 convention)
    shifts: np.ndarray        # float [T,2] pixels
    fps: float

    def __len__(self) -> int:
        return len(self.affines)


def apply_affine(affine: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Map points [N,2+] (x, y first) by a 2x3 affine → [N,2]."""
    return points[:, :2] @ affine[:, :2].T + affine[:, 2]


def motion_affines(centre: np.ndarray, n: int = N_FRAMES) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-frame 2x3 affines [n,2,3]: rotation about `centre` ramping 0→MAX_ANGLE→0 plus a shift."""
    ramp = np.sin(np.linspace(0.0, math.pi, n))          # 0 → 1 → 0, smooth
    angles = MAX_ANGLE * ramp
    shifts = np.outer(ramp, MAX_SHIFT)
    affines = []
    for angle, shift in zip(angles, shifts):
        m = cv2.getRotationMatrix2D((float(centre[0]), float(centre[1])), float(angle), 1.0)
        m[:, 2] += shift
        affines.append(m)
    return np.array(affines), angles, shifts


def write_frames(path: Path, frames, fps: float = FPS) -> Path:
    from talkhead.io.video import VideoWriter

    with VideoWriter(path, fps, crf=12) as writer:
        for frame in frames:
            writer.write(frame)
    return path


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("talkhead-data")


@pytest.fixture(scope="session")
def astronaut() -> np.ndarray:
    from skimage import data

    return np.ascontiguousarray(data.astronaut())


@pytest.fixture(scope="session")
def astronaut_png(data_dir, astronaut) -> Path:
    from PIL import Image

    path = data_dir / "astronaut.png"
    Image.fromarray(astronaut).save(path)
    return path


@pytest.fixture(scope="session")
def landmarker():
    from talkhead.face.landmarks import FaceLandmarker

    with FaceLandmarker() as lm:
        yield lm


@pytest.fixture(scope="session")
def source_landmarks(astronaut, landmarker) -> np.ndarray:
    """The astronaut's 478 landmarks float32 [478,3] (portrait pixels)."""
    faces = landmarker.faces(astronaut)
    assert len(faces) == 1
    return faces[0]


@pytest.fixture(scope="session")
def face_centre(source_landmarks) -> np.ndarray:
    lo, hi = source_landmarks[:, :2].min(0), source_landmarks[:, :2].max(0)
    return (lo + hi) / 2


@pytest.fixture(scope="session")
def driving_frames(astronaut, face_centre) -> tuple[list[np.ndarray], np.ndarray, np.ndarray, np.ndarray]:
    """The astronaut moved by the known affines (frames uint8 [512,512,3])."""
    affines, angles, shifts = motion_affines(face_centre)
    h, w = astronaut.shape[:2]
    frames = [cv2.warpAffine(astronaut, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)
              for m in affines]
    return frames, affines, angles, shifts


@pytest.fixture(scope="session")
def driving_clip(data_dir, driving_frames, face_centre) -> DrivingClip:
    """MP4 (with a sine-tone audio track) of the astronaut under known motion."""
    from talkhead.io.mux import mux_audio

    frames, affines, angles, shifts = driving_frames
    silent = write_frames(data_dir / "driving-silent.mp4", frames)
    tone = write_wav(data_dir / "tone.wav", len(frames) / FPS + 0.5, freq=TONE_HZ)
    path = data_dir / "driving.mp4"
    assert mux_audio(silent, tone, path)
    return DrivingClip(path, affines, face_centre, angles, shifts, float(FPS))


@pytest.fixture(scope="session")
def silent_clip(data_dir, driving_clip) -> Path:
    """The driving clip's video without audio."""
    return data_dir / "driving-silent.mp4"


@pytest.fixture(scope="session")
def grey_png(data_dir) -> Path:
    """A portrait with no face: flat grey with a little noise."""
    from PIL import Image

    rng = np.random.default_rng(0)
    img = np.clip(128 + rng.normal(0, 6, (256, 256, 3)), 0, 255).astype(np.uint8)
    path = data_dir / "grey.png"
    Image.fromarray(img).save(path)
    return path


@pytest.fixture(scope="session")
def faceless_clip(data_dir) -> Path:
    """A short video with no face in any frame."""
    frames = [np.full((128, 128, 3), 60 + 10 * i, np.uint8) for i in range(6)]
    return write_frames(data_dir / "faceless.mp4", frames)
