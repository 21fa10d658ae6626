"""Training data for the codebook engine: face crops of real clips, and self-reenactment batches.

Every clip is cropped once, around its first frame's face (the crop `animate`
would make of that frame as a portrait), so a source frame and a driving
frame of the same clip share coordinates. A training example takes a source
frame and a driving frame of one clip; its input is what the renderer has at
run time (the source crop and landmarks, the driving frame's landmarks, the
analytic engine's sampling grid and frame for them), its target the real
driving frame.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from talkhead.face.crop import crop_box, cut
from talkhead.face.landmarks import FaceLandmarker, FaceTracker
from talkhead.face.regions import MIRROR, face_oval_mask, mouth_box
from talkhead.io.files import load_arrays, save_arrays
from talkhead.io.video import iter_frames
from talkhead.render.engine import AnalyticEngine
from talkhead.render.flow import pixels_to_unit

VIDEO_SUFFIXES = (".mp4", ".mov", ".mkv", ".avi", ".webm", ".m4v")
WEIGHT_OUTSIDE = 0.1   # loss weight off the face (background the warp cannot know about)
WEIGHT_MOUTH = 4.0     # extra loss weight in the mouth's box


@dataclass(frozen=True)
class ClipFrames:
    """One clip's face crops uint8 [T,S,S,3] RGB and landmarks float32 [T,478,3] (crop pixels)."""

    name: str
    crops: np.ndarray
    landmarks: np.ndarray


def find_clips(data: Path) -> list[Path]:
    """Video files under `data`, sorted by their path relative to it."""
    return sorted((p for p in data.rglob("*") if p.suffix.lower() in VIDEO_SUFFIXES and p.is_file()),
                  key=lambda p: p.relative_to(data).as_posix())


def split_clips(clips: list[Path], val_every: int) -> tuple[list[Path], list[Path]]:
    """(training, validation): every `val_every`-th clip (from the third) is kept for validation."""
    val = [c for i, c in enumerate(clips) if val_every and i % val_every == min(2, val_every - 1)]
    return [c for c in clips if c not in val], val


def extract_clip(path: Path, size: int, every: int, max_frames: int) -> ClipFrames | None:
    """Crops and landmarks of every `every`-th frame with a face (None if the first frames have none)."""
    crops, marks, box = [], [], None
    with FaceLandmarker() as landmarker:
        track = FaceTracker(landmarker)
        for i, frame in enumerate(iter_frames(path, max_side=1024)):
            if len(crops) >= max_frames:
                break
            points = track(frame)
            if points is None or i % every:
                continue
            box = box or crop_box(points)
            crops.append(cut(frame, box, size))
            marks.append(box.to_crop(points, size))
    if len(crops) < 2:
        return None
    return ClipFrames(path.stem, np.stack(crops), np.stack(marks).astype(np.float32))


def cached_clip(path: Path, cache: Path, size: int, every: int, max_frames: int) -> ClipFrames | None:
    """`extract_clip`, kept in `cache` as .npz (keyed by the file's path, size and settings)."""
    key = hashlib.sha1(f"{path.resolve()}|{path.stat().st_size}|{size}|{every}|{max_frames}".encode()).hexdigest()
    file = cache / f"{path.stem}-{key[:12]}.npz"
    if file.exists():
        d = load_arrays(file)
        return ClipFrames(path.stem, d["crops"], d["landmarks"]) if len(d["crops"]) else None
    clip = extract_clip(path, size, every, max_frames)
    empty = np.zeros((0, size, size, 3), np.uint8)
    save_arrays(file, crops=clip.crops if clip else empty,
                landmarks=clip.landmarks if clip else np.zeros((0, 478, 3), np.float32))
    return clip


@dataclass
class Batch:
    """source, base, real: float [B,3,S,S] 0..1; grid: float [B,S,S,2]; targets: float [B,478,2] in [-1,1];
    weight: float [B,1,S,S], the loss weight per pixel; source_points: float [B,478,2], the source frame's
    landmarks in [-1,1]."""

    source: torch.Tensor
    grid: torch.Tensor
    targets: torch.Tensor
    base: torch.Tensor
    real: torch.Tensor
    weight: torch.Tensor
    source_points: torch.Tensor

    def to(self, device: torch.device) -> "Batch":
        return Batch(*(getattr(self, k).to(device) for k in self.__dataclass_fields__))


def loss_weight(landmarks: np.ndarray, size: int) -> np.ndarray:
    """float32 [S,S]: 1 inside the face oval, WEIGHT_OUTSIDE outside, 1 + WEIGHT_MOUTH in the mouth's box."""
    w = np.where(face_oval_mask(landmarks, size), 1.0, WEIGHT_OUTSIDE).astype(np.float32)
    x0, y0, x1, y1 = mouth_box(landmarks, size)
    w[y0:y1, x0:x1] += WEIGHT_MOUTH
    return w


def flip(crops: np.ndarray, landmarks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mirror crops [N,S,S,3] and landmarks [N,478,3] left to right (points renumbered to match)."""
    size = crops.shape[2]
    marks = landmarks[:, MIRROR].copy()
    marks[..., 0] = size - 1 - marks[..., 0]
    return crops[:, :, ::-1].copy(), marks


def make_batch(engine: AnalyticEngine, clips: list[ClipFrames], rng: np.random.Generator, sources: int,
               per_source: int, augment: bool = True) -> Batch:
    """`sources` source frames, each with `per_source` driving frames of its clip."""
    parts: dict[str, list] = {k: [] for k in ("source", "grid", "targets", "base", "real", "weight",
                                           "source_points")}
    size = engine.size
    for _ in range(sources):
        clip = clips[rng.integers(len(clips))]
        pick = rng.integers(len(clip.crops), size=per_source + 1)
        crops, marks = clip.crops[pick], clip.landmarks[pick]
        if augment and rng.random() < 0.5:
            crops, marks = flip(crops, marks)
        prepared = engine.prepare(crops[0], marks[0])
        base, grid = engine.render_float(prepared, marks[1:])
        parts["source"].append(prepared.image.expand(per_source, -1, -1, -1))
        parts["grid"].append(torch.from_numpy(grid))
        parts["targets"].append(pixels_to_unit(torch.from_numpy(marks[1:, :, :2]), size))
        parts["base"].append(base)
        parts["real"].append(torch.from_numpy(crops[1:]).permute(0, 3, 1, 2).float() / 255)
        source_points = pixels_to_unit(torch.from_numpy(marks[:1, :, :2]), size)
        parts["source_points"].append(source_points.expand(per_source, -1, -1))
        parts["weight"].append(torch.from_numpy(np.stack([loss_weight(m, size) for m in marks[1:]]))[:, None])
    return Batch(**{k: torch.cat(v).float() for k, v in parts.items()})
