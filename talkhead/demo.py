"""A built-in demo: a portrait shipped by a dependency, moved by procedural motion.

`procedural_motion` makes a Motion without any driving video — gentle nods and
turns, a mouth opening and closing, and blinks — from the canonical face, so
`talkhead demo` runs on a fresh install with no input files.
"""

from __future__ import annotations

import numpy as np

from talkhead.face.canonical import CANONICAL_FACE
from talkhead.face.regions import EYE_LIDS, LEFT_EYE, LIP_GAP, PARTS, RIGHT_EYE
from talkhead.motion import Motion


def _rotation(pitch: np.ndarray, yaw: np.ndarray, roll: np.ndarray) -> np.ndarray:
    """[T,3,3] rotations R = Rz(roll) Ry(yaw) Rx(pitch), angles in radians."""
    c, s = np.cos, np.sin
    t = len(pitch)
    rx = np.zeros((t, 3, 3)); ry = np.zeros((t, 3, 3)); rz = np.zeros((t, 3, 3))  # noqa: E702
    rx[:, 0, 0] = 1; rx[:, 1, 1] = c(pitch); rx[:, 1, 2] = -s(pitch); rx[:, 2, 1] = s(pitch); rx[:, 2, 2] = c(pitch)  # noqa: E702,E501
    ry[:, 1, 1] = 1; ry[:, 0, 0] = c(yaw); ry[:, 0, 2] = s(yaw); ry[:, 2, 0] = -s(yaw); ry[:, 2, 2] = c(yaw)  # noqa: E702,E501
    rz[:, 2, 2] = 1; rz[:, 0, 0] = c(roll); rz[:, 0, 1] = -s(roll); rz[:, 1, 0] = s(roll); rz[:, 1, 1] = c(roll)  # noqa: E702,E501
    return rz @ ry @ rx


def mouth_open_offsets(amount: float = 1.0) -> np.ndarray:
    """float32 [478,3] expression offset (canonical units) that opens the jaw by `amount` (0..1)."""
    c = CANONICAL_FACE
    gap_y = (c[LIP_GAP[0], 1] + c[LIP_GAP[1], 1]) / 2
    chin_y = c[:, 1].max()
    below = np.clip((c[:, 1] - gap_y) / 0.02 + 0.5, 0, 1)            # lower lip and jaw move
    reach = np.clip(1 - np.abs(c[:, 0]) / 0.9, 0, 1) ** 0.5          # less towards the jaw's ends
    weight = below * reach * PARTS["mouth"]
    off = np.zeros_like(c)
    off[:, 1] = 0.22 * amount * weight * np.clip(0.75 + 0.25 * (c[:, 1] - gap_y) / (chin_y - gap_y), 0, 1)
    return off


def blink_offsets() -> np.ndarray:
    """float32 [478,3] expression offset that closes both eyes (upper lids down to the lower)."""
    c = CANONICAL_FACE
    off = np.zeros_like(c)
    for contour, (upper, lower) in zip((RIGHT_EYE, LEFT_EYE), EYE_LIDS):
        centre = c[contour].mean(0)
        drop = 0.9 * (c[lower, 1] - c[upper, 1])
        near_x = np.clip(1 - np.abs(c[:, 0] - centre[0]) / 0.2, 0, 1) ** 0.5
        upper_lid = (c[:, 1] < centre[1]) & np.isin(np.arange(len(c)), contour)
        above = c[:, 1] < centre[1]
        lid = np.where(upper_lid, 1.0, np.clip(1 - (c[upper, 1] - c[:, 1]) / 0.1, 0, 1) * 0.8)
        off[:, 1] += drop * near_x * above * lid * PARTS["eyes"]
    return off


def procedural_motion(seconds: float = 6.0, fps: float = 25.0, seed: int = 0) -> Motion:
    """A lively, deterministic Motion: nods, turns, speech-like mouth, blinks."""
    rng = np.random.default_rng(seed)
    t = np.arange(max(1, int(round(seconds * fps)))) / fps
    pitch = np.radians(4 * np.sin(2 * np.pi * 0.35 * t) + 2 * np.sin(2 * np.pi * 1.1 * t))
    yaw = np.radians(7 * np.sin(2 * np.pi * 0.2 * t + 1.0))
    roll = np.radians(3 * np.sin(2 * np.pi * 0.27 * t + 0.5))
    syll = np.clip(np.sin(2 * np.pi * 2.6 * t) * 0.6 + 0.4, 0, 1)
    talking = (np.sin(2 * np.pi * 0.25 * t) > -0.5).astype(float)
    mouth = syll * talking * (0.6 + 0.4 * np.abs(np.sin(2 * np.pi * 0.9 * t)))
    mouth[0] = 0.0
    blink = np.zeros(len(t))
    for start in np.arange(1.0, seconds, 2.7) + rng.uniform(-0.3, 0.3, size=len(np.arange(1.0, seconds, 2.7))):
        blink += np.exp(-0.5 * ((t - start) / 0.05) ** 2)
    blink = np.clip(blink, 0, 1)
    expression = (CANONICAL_FACE[None] + mouth[:, None, None] * mouth_open_offsets()[None]
                  + blink[:, None, None] * blink_offsets()[None])
    translation = np.zeros((len(t), 3))
    translation[:, 0] = 0.03 * np.sin(2 * np.pi * 0.15 * t)
    return Motion(fps=fps, rotation=_rotation(pitch, yaw, roll).astype(np.float32),
                  translation=translation.astype(np.float32), scale=np.ones(len(t), np.float32),
                  expression=expression.astype(np.float32), valid=np.ones(len(t), bool))


def demo_portrait() -> np.ndarray:
    """uint8 [512,512,3] RGB: scikit-image's bundled astronaut photo (public domain)."""
    from skimage import data

    return np.ascontiguousarray(data.astronaut()[..., :3])
