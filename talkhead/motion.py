"""Motion: the one representation of face movement in talkhead.

A video driver measures it from a driving face, an audio driver predicts it
from speech; the renderer only ever sees the target landmarks that
`retarget` makes from a Motion and a source face.

Units are free of the driving video's resolution: expression is in canonical
face units (outer eye corners 1 apart), translation in the same units, scale
relative to the clip's median face size.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from talkhead.face import pose as posefit
from talkhead.face.canonical import CANONICAL_FACE
from talkhead.face.regions import EYE_CORNERS, EYE_LIDS, INNER_LOWER, INNER_UPPER, LIP_GAP, MOUTH_CORNERS, PARTS

FORMAT_VERSION = 1


@dataclass(frozen=True)
class Motion:
    """Per-frame head pose and expression.

    fps: frames per second.
    rotation: float32 [T,3,3], canonical head frame → camera.
    translation: float32 [T,3], head position in face units (x right, y down).
    scale: float32 [T], face size relative to the clip's median.
    expression: float32 [T,478,3], landmarks in the head frame (canonical units).
    valid: bool [T], False where the frame had no face and was bridged.
    """

    fps: float
    rotation: np.ndarray
    translation: np.ndarray
    scale: np.ndarray
    expression: np.ndarray
    valid: np.ndarray

    def __len__(self) -> int:
        return len(self.scale)

    @property
    def duration(self) -> float:
        return len(self) / self.fps

    def _take(self, index: np.ndarray | slice, fps: float) -> "Motion":
        return Motion(fps, self.rotation[index], self.translation[index], self.scale[index],
                      self.expression[index], self.valid[index])

    def chunk(self, frames: slice) -> "Motion":
        """The frames in `frames` (see MotionSource)."""
        return self._take(frames, self.fps)

    def head(self, frames: int) -> "Motion":
        """The first `frames` frames (at least one)."""
        return self._take(slice(0, max(1, frames)), self.fps)

    def resample(self, fps: float) -> "Motion":
        """The motion at another frame rate: each new frame takes the latest old frame at its time."""
        if abs(fps - self.fps) < 1e-6:
            return self
        count = max(1, int(round(len(self) * fps / self.fps)))
        index = np.minimum((np.arange(count) * self.fps / fps + 1e-6).astype(int), len(self) - 1)
        return self._take(index, float(fps))

    def to_arrays(self) -> dict[str, np.ndarray]:
        """Plain arrays for saving (see `talkhead.io.motionfile`)."""
        return {
            "version": np.array(FORMAT_VERSION), "fps": np.array(self.fps, np.float64),
            "rotation": self.rotation, "translation": self.translation, "scale": self.scale,
            "expression": self.expression, "valid": self.valid,
        }

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> "Motion":
        if int(arrays["version"]) != FORMAT_VERSION:
            raise ValueError(f"motion format {int(arrays['version'])} is not {FORMAT_VERSION}")
        motion = cls(
            fps=float(arrays["fps"]),
            rotation=np.asarray(arrays["rotation"], np.float32),
            translation=np.asarray(arrays["translation"], np.float32),
            scale=np.asarray(arrays["scale"], np.float32),
            expression=np.asarray(arrays["expression"], np.float32),
            valid=np.asarray(arrays["valid"], bool),
        )
        motion.check()
        return motion

    def check(self) -> None:
        """Raise ValueError when the arrays do not fit together."""
        t = len(self.scale)
        shapes = {
            "rotation": (self.rotation.shape, (t, 3, 3)),
            "translation": (self.translation.shape, (t, 3)),
            "expression": (self.expression.shape, (t, 478, 3)),
            "valid": (self.valid.shape, (t,)),
        }
        for name, (got, want) in shapes.items():
            if got != want:
                raise ValueError(f"motion {name} has shape {got}, expected {want}")
        if t == 0 or not self.fps > 0:
            raise ValueError("motion is empty or has no frame rate")


class MotionSource(Protocol):
    """Anything the renderer can take motion from chunk by chunk: a Motion, or one made on demand.

    A source made on demand (e.g. from speech) keeps memory flat however long it is.
    """

    fps: float

    def __len__(self) -> int: ...

    def chunk(self, frames: slice) -> Motion: ...


def motion_from_landmarks(landmarks: np.ndarray, valid: np.ndarray, fps: float) -> Motion:
    """Motion from measured landmarks float [T,478,3] (pixels; bridged where not valid)."""
    rot, trans, scale = posefit.fit_pose(landmarks, CANONICAL_FACE)
    expression = posefit.to_head_frame(landmarks, rot, trans, scale)
    unit = float(np.median(scale))
    return Motion(
        fps=float(fps), rotation=rot.astype(np.float32),
        translation=(trans / unit).astype(np.float32),
        scale=(scale / unit).astype(np.float32),
        expression=expression.astype(np.float32), valid=valid.astype(bool),
    )


def face_openings(expression: np.ndarray) -> np.ndarray:
    """Mouth, right-eye and left-eye opening [T,3] of expressions [T,478,3] (canonical units)."""
    pairs = (LIP_GAP, *EYE_LIDS)
    return np.stack([np.linalg.norm(expression[:, a] - expression[:, b], axis=-1) for a, b in pairs], 1)


def _angle_between(rot_a: np.ndarray, rot_b: np.ndarray) -> np.ndarray:
    """Rotation angle (degrees) between rot_a [T,3,3] and rot_b [3,3]."""
    rel = rot_a @ rot_b.T
    cos = (np.trace(rel, axis1=1, axis2=2) - 1) / 2
    return np.degrees(np.arccos(np.clip(cos, -1, 1)))


def source_pose(landmarks: np.ndarray) -> tuple[np.ndarray, np.ndarray, float, np.ndarray]:
    """Head pose and expression of one face's landmarks [478,3] (pixels).

    Returns rotation [3,3], translation [3], scale, expression [478,3] (canonical units).
    """
    lm = landmarks[None].astype(np.float64)
    rot, trans, scale = posefit.fit_pose(lm, CANONICAL_FACE)
    return rot[0], trans[0], float(scale[0]), posefit.to_head_frame(lm, rot, trans, scale)[0]


def pick_reference(motion: Motion, source_rotation: np.ndarray, source_expression: np.ndarray) -> int:
    """Index of the driving frame closest to the source's pose and expression.

    Cost: 1 per 10 degrees of head rotation, plus 1 per 0.05 canonical units of
    difference in mouth and eye opening; only frames with a measured face count.
    """
    angle = _angle_between(motion.rotation, source_rotation)
    openings = face_openings(motion.expression)
    target = face_openings(source_expression[None])[0]
    cost = angle / 10 + np.abs(openings - target).sum(1) / 0.05
    cost = np.where(motion.valid, cost, np.inf)
    return int(np.argmin(cost))


RATIO_LIMITS = (0.4, 3.0)  # proportions outside this range are clipped (e.g. a nearly shut reference eye)


def proportion_ratios(source: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Per-point, per-axis scale float [478,3] taking driving changes to the source face.

    source, reference: expressions [478,3] (canonical units). The face as a
    whole scales by the ratio of its extents; each eye by the ratio of its
    width and opening, so a blink closes a large cartoon eye as fully as a
    small one; the mouth by the ratio of its widths.
    """
    ratios = np.ones((478, 3))
    extent = lambda e: e[:, :2].max(0) - e[:, :2].min(0)  # noqa: E731
    ratios[:, :2] = extent(source) / extent(reference)
    width = lambda e, a, b: np.linalg.norm(e[a, :2] - e[b, :2])  # noqa: E731
    mouth = width(source, *MOUTH_CORNERS) / width(reference, *MOUTH_CORNERS)
    ratios[PARTS["mouth"], :2] = mouth
    for eye_side, (upper, lower), (outer, inner) in zip((-1, 1), EYE_LIDS, EYE_CORNERS):
        ids = PARTS["eyes"] & (np.sign(CANONICAL_FACE[:, 0]) == eye_side)
        ratios[ids, 0] = width(source, outer, inner) / width(reference, outer, inner)
        ratios[ids, 1] = width(source, upper, lower) / max(width(reference, upper, lower), 1e-6)
    return np.clip(ratios, *RATIO_LIMITS)


def close_without_crossing(expression: np.ndarray) -> np.ndarray:
    """Expressions float [T,478,3] (canonical units, y down) with lips that meet instead of passing
    through each other, changed in place.

    A relative transfer closes a portrait's mouth by the driving mouth's closing: on a portrait whose
    mouth is wide open, shaped a little differently, the inner lower lip can end above the upper one
    in places. There each pair of facing inner-lip points meets at its middle.
    """
    upper, lower = expression[:, INNER_UPPER[1:-1], 1], expression[:, INNER_LOWER[1:-1], 1]
    crossed = lower < upper
    if crossed.any():
        middle = (upper + lower) / 2
        expression[:, INNER_UPPER[1:-1], 1] = np.where(crossed, middle, upper)
        expression[:, INNER_LOWER[1:-1], 1] = np.where(crossed, middle, lower)
    return expression


def _scaled_rotation(rel: np.ndarray, factor: float) -> np.ndarray:
    """rel [T,3,3] raised to a real power `factor` (scales the rotation angle)."""
    if factor == 1.0:
        return rel
    cos = np.clip((np.trace(rel, axis1=1, axis2=2) - 1) / 2, -1, 1)
    angle = np.arccos(cos)
    axis = np.stack([rel[:, 2, 1] - rel[:, 1, 2], rel[:, 0, 2] - rel[:, 2, 0], rel[:, 1, 0] - rel[:, 0, 1]], 1)
    norm = np.linalg.norm(axis, axis=1, keepdims=True)
    axis = np.where(norm > 1e-9, axis / np.maximum(norm, 1e-12), [[1.0, 0.0, 0.0]])
    theta = angle * factor
    k = np.zeros((len(rel), 3, 3))
    k[:, 0, 1], k[:, 0, 2], k[:, 1, 2] = -axis[:, 2], axis[:, 1], -axis[:, 0]
    k = k - k.transpose(0, 2, 1)
    s, c = np.sin(theta)[:, None, None], np.cos(theta)[:, None, None]
    return np.eye(3) + s * k + (1 - c) * (k @ k)


def retarget(
    motion: Motion, source_landmarks: np.ndarray, reference: int | Motion, parts: frozenset[str],
    expression_scale: float = 1.0, pose_scale: float = 1.0, frames: slice = slice(None),
) -> np.ndarray:
    """Target landmarks float32 [T,478,3] (source pixels) for the motion's `frames`.

    Relative transfer: the change of each driving frame from the reference
    frame is applied to the source face, scaled to the source's proportions
    (see `proportion_ratios`). Call it chunk by chunk (`frames`) to keep
    memory flat on long clips.
    reference: the frame of `motion` that stands for the source's own pose and
    expression, or a one-frame Motion that does.
    parts: subset of {"pose", "expression", "eyes", "mouth"} to transfer.
    """
    s_rot, s_trans, s_scale, s_expr = source_pose(source_landmarks)
    ref = motion.chunk(slice(reference, reference + 1)) if isinstance(reference, int) else reference
    ref_expr = ref.expression[0].astype(np.float64)
    weight = np.zeros(478)
    for part in parts & {"expression", "eyes", "mouth"}:
        weight[PARTS[part]] = 1.0
    scale = proportion_ratios(s_expr, ref_expr) * (expression_scale * weight)[:, None]
    t_expr = close_without_crossing(s_expr[None] + (motion.expression[frames].astype(np.float64) - ref_expr) * scale)
    n = len(t_expr)
    if "pose" in parts:
        rel = _scaled_rotation(motion.rotation[frames].astype(np.float64) @ ref.rotation[0].T, pose_scale)
        t_rot = rel @ s_rot
        shift = (motion.translation[frames] - ref.translation[0]).astype(np.float64) * s_scale * pose_scale
        shift[:, 2] = 0.0
        t_trans = s_trans + shift
        t_scale = s_scale * (motion.scale[frames] / ref.scale[0]).astype(np.float64) ** pose_scale
    else:
        t_rot, t_trans, t_scale = np.repeat(s_rot[None], n, 0), np.repeat(s_trans[None], n, 0), np.full(n, s_scale)
    return posefit.from_head_frame(t_expr, t_rot, t_trans, t_scale).astype(np.float32)


def _one_euro_pass(x: np.ndarray, fps: float, min_cutoff: float, beta: float, d_cutoff: float) -> np.ndarray:
    """Causal One-Euro filter along axis 0 of x [T,...] (Casiez et al. 2012)."""
    def alpha(cutoff: np.ndarray | float) -> np.ndarray | float:
        tau = 1.0 / (2 * np.pi * cutoff)
        return 1.0 / (1.0 + tau * fps)

    out = np.empty_like(x)
    out[0] = prev = x[0]
    dprev = np.zeros_like(x[0])
    a_d = alpha(d_cutoff)
    for i in range(1, len(x)):
        dx = (x[i] - prev) * fps
        dprev = dprev + a_d * (dx - dprev)
        a = alpha(min_cutoff + beta * np.abs(dprev))
        prev = prev + a * (x[i] - prev)
        out[i] = prev
    return out


def smooth_landmarks(landmarks: np.ndarray, fps: float, min_cutoff: float = 1.5, beta: float = 4.0,
                     d_cutoff: float = 1.0) -> np.ndarray:
    """Remove measurement jitter from landmarks [T,478,3] without lagging fast motion.

    A One-Euro filter (low cut-off at rest, opening up with speed) run forwards
    and backwards and averaged, so its small lag cancels. Speeds are measured
    in face sizes per second, so the settings hold for any resolution.
    """
    if len(landmarks) < 3:
        return landmarks.copy()
    face = float(np.median(np.ptp(landmarks[:, :, 0], axis=1))) or 1.0
    x = landmarks.astype(np.float64) / face
    fwd = _one_euro_pass(x, fps, min_cutoff, beta, d_cutoff)
    bwd = _one_euro_pass(x[::-1], fps, min_cutoff, beta, d_cutoff)[::-1]
    return ((fwd + bwd) / 2 * face).astype(np.float32)


def bridge_gaps(landmarks: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Fill frames without a face: linear interpolation between measured frames, held at the ends.

    landmarks: float [T,478,3] (anything where not valid); valid: bool [T] with at least one True.
    """
    good = np.flatnonzero(valid)
    if len(good) == len(valid):
        return landmarks
    flat = landmarks.reshape(len(landmarks), -1)
    out = np.empty_like(flat)
    t = np.arange(len(valid))
    for j in range(flat.shape[1]):
        out[:, j] = np.interp(t, good, flat[good, j])
    return out.reshape(landmarks.shape)
