"""Driving keypoint heatmaps: where the target landmarks are, one channel per face part.

Paper A feeds a heatmap of the driving frame's (learned) keypoints into the
motion query; we have mediapipe's landmarks, grouped by part, each drawn as
Gaussian blobs and the group's channel taking their maximum.
"""

from __future__ import annotations

import numpy as np
import torch

from talkhead.face.regions import (BROWS, FACE_OVAL, INNER_LOWER, INNER_UPPER, LEFT_EYE, LEFT_IRIS, LIPS,
                                   RIGHT_EYE, RIGHT_IRIS)

NOSE = np.array([1, 2, 4, 5, 6, 19, 94, 98, 168, 197, 195, 327])
GROUPS = (LIPS, np.union1d(INNER_UPPER, INNER_LOWER), LEFT_EYE, RIGHT_EYE, LEFT_IRIS, RIGHT_IRIS, BROWS,
          FACE_OVAL, NOSE)
_GROUP_INDEX = [torch.as_tensor(ids) for ids in GROUPS]
SIGMA = 0.02  # blob width, in [-1,1] units (about 2.5 px at 256)


def keypoint_heatmaps(points: torch.Tensor, side: int, sigma: float = SIGMA) -> torch.Tensor:
    """points: float [B,478,2] in [-1,1] (grid_sample convention) → float [B,len(GROUPS),side,side] in 0..1."""
    axis = (2 * torch.arange(side, device=points.device, dtype=points.dtype) + 1) / side - 1
    maps = []
    for ids in _GROUP_INDEX:
        p = points[:, ids]                                                           # [B,n,2]
        gx = torch.exp(-(axis[None, None] - p[..., :1]) ** 2 / (2 * sigma ** 2))     # [B,n,side]
        gy = torch.exp(-(axis[None, None] - p[..., 1:]) ** 2 / (2 * sigma ** 2))     # [B,n,side]
        maps.append((gy[:, :, :, None] * gx[:, :, None, :]).amax(1))                 # [B,side,side]
    return torch.stack(maps, 1)
