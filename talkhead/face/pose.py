"""Head pose as a rigid (similarity) fit of stable face points.

Conventions, used across talkhead: landmarks are float [478,3] in pixels (x
right, y down, z away from the camera, in the same units as x). A head pose maps
the canonical face (`talkhead.face.canonical`) into the image:

    landmarks ≈ scale * canonical @ rotation.T + translation

The expression of a face is its landmarks brought back into that head frame,
``(landmarks - translation) @ rotation / scale``: the same units as the
canonical face, free of rotation, position and size.
"""

from __future__ import annotations

import numpy as np

# Points that move with the skull, hardly with expression: forehead, nose
# bridge and ridge, eye corners, temples and cheekbones.
STABLE = np.array([
    10, 151, 9, 8, 109, 338, 67, 297, 103, 332,      # forehead
    168, 6, 197, 195, 5, 4, 1, 98, 327, 48, 278,     # nose
    33, 133, 362, 263, 130, 359, 243, 463,           # eye corners
    234, 454, 127, 356, 93, 323, 116, 345, 50, 280,  # temples, cheekbones
])


def similarity_fit(src: np.ndarray, dst: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """Least-squares rotation R [3,3], translation t [3], scale k with dst ≈ k * src @ R.T + t.

    src, dst: float [N,3] corresponding points (Umeyama 1991). R is a proper
    rotation (det +1).
    """
    mu_s, mu_d = src.mean(0), dst.mean(0)
    a, b = src - mu_s, dst - mu_d
    cov = b.T @ a / len(src)
    u, sig, vt = np.linalg.svd(cov)
    d = np.ones(3)
    d[2] = np.sign(np.linalg.det(u @ vt)) or 1.0
    R = u @ np.diag(d) @ vt
    var_s = (a**2).sum() / len(src)
    k = float((sig * d).sum() / var_s)
    t = mu_d - k * mu_s @ R.T
    return R, t, k


def batch_similarity_fit(src: np.ndarray, dst: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`similarity_fit` for many frames: src [N,3] (shared), dst [T,N,3] → R [T,3,3], t [T,3], k [T]."""
    mu_s, mu_d = src.mean(0), dst.mean(1)                      # [3], [T,3]
    a, b = src - mu_s, dst - mu_d[:, None]                     # [N,3], [T,N,3]
    cov = np.einsum("tni,nj->tij", b, a) / len(src)            # [T,3,3]
    u, sig, vt = np.linalg.svd(cov)
    d = np.ones((len(dst), 3))
    d[:, 2] = np.where(np.linalg.det(u @ vt) < 0, -1.0, 1.0)
    R = u @ (d[:, :, None] * vt)                               # u diag(d) vt
    k = (sig * d).sum(1) / ((a**2).sum() / len(src))
    t = mu_d - k[:, None] * np.einsum("tij,j->ti", R, mu_s)
    return R, t, k


def fit_pose(landmarks: np.ndarray, canonical: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Head poses of landmarks [T,478,3] → rotation [T,3,3], translation [T,3], scale [T]."""
    return batch_similarity_fit(canonical[STABLE].astype(np.float64), landmarks[:, STABLE].astype(np.float64))


def to_head_frame(landmarks: np.ndarray, rotation: np.ndarray, translation: np.ndarray,
                  scale: np.ndarray) -> np.ndarray:
    """Expression [T,478,3] (canonical units) from landmarks [T,478,3] and poses."""
    centred = landmarks - translation[:, None]
    return np.einsum("tni,tij->tnj", centred, rotation) / scale[:, None, None]


def from_head_frame(expression: np.ndarray, rotation: np.ndarray, translation: np.ndarray,
                    scale: np.ndarray) -> np.ndarray:
    """Landmarks [T,478,3] (pixels) from expression [T,478,3] and poses."""
    return scale[:, None, None] * np.einsum("tnj,tij->tni", expression, rotation) + translation[:, None]


def euler_degrees(rotation: np.ndarray) -> np.ndarray:
    """(pitch, yaw, roll) in degrees for rotations [T,3,3] (x, y, z axes; R = Rz Ry Rx)."""
    pitch = np.arctan2(rotation[:, 2, 1], rotation[:, 2, 2])
    yaw = np.arcsin(np.clip(-rotation[:, 2, 0], -1, 1))
    roll = np.arctan2(rotation[:, 1, 0], rotation[:, 0, 0])
    return np.degrees(np.stack([pitch, yaw, roll], 1))
