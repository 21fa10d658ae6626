"""Expression offsets and rotations built from the canonical face, for motion made without a video.

Offsets are float32 [478,3] in canonical units (outer eye corners 1 apart),
added to an expression to open the jaw, shut the eyes or raise the brows.
"""

from __future__ import annotations

import numpy as np

from talkhead.face.canonical import CANONICAL_FACE
from talkhead.face.regions import BROWS, EYE_LIDS, LEFT_EYE, LIP_GAP, PARTS, RIGHT_EYE


def rotation_matrices(pitch: np.ndarray, yaw: np.ndarray, roll: np.ndarray) -> np.ndarray:
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


def brow_offsets() -> np.ndarray:
    """float32 [478,3] expression offset that raises both brows (the forehead above them follows less)."""
    c = CANONICAL_FACE
    brow_y = c[BROWS, 1].mean()
    eye_y = c[np.concatenate([LEFT_EYE, RIGHT_EYE]), 1].mean()
    weight = np.clip((eye_y - c[:, 1]) / (eye_y - brow_y), 0, 1) ** 1.5   # 0 at the eyes, 1 at the brows
    weight = np.where(c[:, 1] < brow_y, np.clip(1 - (brow_y - c[:, 1]) / 0.5, 0.3, 1), weight)
    weight *= np.clip(1 - np.abs(c[:, 0]) / 1.1, 0, 1) ** 0.3 * (~PARTS["mouth"])
    off = np.zeros_like(c)
    off[:, 1] = -0.06 * weight
    off[np.concatenate([LEFT_EYE, RIGHT_EYE]), 1] *= 0.15   # lids barely move
    return off
