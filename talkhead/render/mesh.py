"""Piecewise-affine warp of the whole face mesh, nearest triangles on top.

Inside the face the spline's smooth sampling grid is replaced by the exact
per-triangle affine map of mediapipe's face mesh, rasterised at full
resolution:

- the eye and mouth openings are holes in the mesh, so closing lids stretch
  over the eye instead of squashing the eyeball, and lips keep sharp edges as
  the mouth opens (render/mouth.py fills the mouth's hole);
- triangles are drawn far to near (by the target's depth), so when the head
  turns, the near cheek covers the far one instead of folding into a smear.

Outside the mesh (hair, ears, neck, background) the spline's grid stays, and
the two are blended over a few pixels at the face's edge.
"""

from __future__ import annotations

import cv2
import numpy as np
from mediapipe.python.solutions import face_mesh_connections as fc

from talkhead.face.regions import INNER_LOWER, INNER_UPPER, LEFT_EYE, RIGHT_EYE

SUBPIXEL = 4  # bits of sub-pixel precision when rasterising triangles
MARGIN = 5    # pixels around the face in the rasterised window


def _triangles() -> np.ndarray:
    """int [K,3] the face mesh's triangles, found from the tessellation's edges."""
    adj: dict[int, set[int]] = {}
    for a, b in fc.FACEMESH_TESSELATION:
        adj.setdefault(a, set()).add(b)
        adj.setdefault(b, set()).add(a)
    tris = {tuple(sorted((a, b, c))) for a in adj for b in adj[a] for c in adj[a] & adj[b]}
    return np.array(sorted(tris), np.int64)


TRIANGLES = _triangles()
HOLES = (RIGHT_EYE, LEFT_EYE, np.concatenate([INNER_UPPER, INNER_LOWER]))  # the openings' contours


def _window(points: np.ndarray, size: int) -> tuple[int, int, int, int]:
    lo = np.clip(np.floor(points.min(0)).astype(int) - MARGIN, 0, size)
    hi = np.clip(np.ceil(points.max(0)).astype(int) + MARGIN + 1, 0, size)
    return int(lo[0]), int(lo[1]), int(hi[0]), int(hi[1])


def _feather(cover: np.ndarray, target: np.ndarray, holes: tuple[np.ndarray, ...], origin: tuple[int, int],
             width: float) -> np.ndarray:
    """float32 weights over the window: 1 inside the mesh zone, fading to 0 over `width` pixels at its
    outer edge. The holes (eye and mouth openings) count as inside, so the lids and lips stay exact."""
    solid = cover.astype(np.uint8)
    for ids in holes:
        hull = cv2.convexHull(np.round(target[ids, :2] - origin).astype(np.int32))
        cv2.fillConvexPoly(solid, hull, 1)
    solid = np.pad(solid, 1)  # the window's edge counts as outside
    dist = cv2.distanceTransform(solid, cv2.DIST_L2, 3)[1:-1, 1:-1]
    return np.clip(dist / width, 0, 1).astype(np.float32)


def _affines(target: np.ndarray, source: np.ndarray) -> np.ndarray:
    """float32 [K,2,3] per triangle: the affine map from target to source pixels.

    target, source: [K,3,2] triangle corners. A collapsed target triangle (a
    closed lid's) maps to its source centroid.
    """
    t, s = target.astype(np.float64), source.astype(np.float64)
    e1, e2 = t[:, 1] - t[:, 0], t[:, 2] - t[:, 0]                     # target edges [K,2]
    f1, f2 = s[:, 1] - s[:, 0], s[:, 2] - s[:, 0]                     # source edges
    det = e1[:, 0] * e2[:, 1] - e2[:, 0] * e1[:, 1]
    flat = np.abs(det) < 1e-6
    inv = 1.0 / np.where(flat, 1.0, det)
    # linear part [f1 f2] @ inverse([e1 e2]) in closed form, then the offset that maps t0 to s0
    a = np.empty((len(t), 2, 3))
    a[:, :, 0] = (f1 * e2[:, 1:2] - f2 * e1[:, 1:2]) * inv[:, None]
    a[:, :, 1] = (f2 * e1[:, 0:1] - f1 * e2[:, 0:1]) * inv[:, None]
    a[:, :, 2] = s[:, 0] - a[:, :, 0] * t[:, 0, 0:1] - a[:, :, 1] * t[:, 0, 1:2]
    a[flat, :, :2] = 0.0
    a[flat, :, 2] = s[flat].mean(1)
    return a.astype(np.float32)


INNER_LIP_TRIANGLES = np.nonzero(np.isin(TRIANGLES, HOLES[2]).any(1))[0]   # the lips' triangles at the mouth's opening


def mesh_warp(grid: np.ndarray, target: np.ndarray, source: np.ndarray, only: np.ndarray | None = None) -> None:
    """Replace, in place, the sampling grid float32 [S,S,2] ([-1,1]) over the face mesh.

    target, source: landmarks [478,2+] in pixels of the grid. With `only` (indices into TRIANGLES), just
    those triangles are drawn, fully (no feathering: they lie inside the face).
    """
    size = grid.shape[0]
    tris = TRIANGLES if only is None else TRIANGLES[only]
    x0, y0, x1, y1 = _window(target[np.unique(tris), :2], size)
    if x1 - x0 < 2 or y1 - y0 < 2:
        return
    ids = np.full((y1 - y0, x1 - x0), -1, np.int32)
    corners = list(np.round((target[tris, :2] - [x0, y0]) * (1 << SUBPIXEL)).astype(np.int32))  # K of [3,2]
    fill = cv2.fillConvexPoly   # ~850 calls a frame: a list and positional arguments cut their overhead by a quarter
    for k in np.argsort(-target[tris, 2].mean(1)).tolist():  # far triangles first: near ones cover them
        fill(ids, corners[k], k, cv2.LINE_8, SUBPIXEL)
    ys, xs = np.nonzero(ids >= 0)
    if len(xs) == 0:
        return
    affine = _affines(target[tris, :2], source[tris, :2])[ids[ys, xs]]   # [P,2,3]
    px, py = (xs + x0).astype(np.float32), (ys + y0).astype(np.float32)
    src = affine[:, :, 0] * px[:, None] + affine[:, :, 1] * py[:, None] + affine[:, :, 2]  # source pixels
    region = grid[y0:y1, x0:x1]
    unit = ((2 * src + 1) / size - 1).astype(np.float32)
    if only is not None:
        region[ys, xs] = unit
        return
    w = _feather(ids >= 0, target, HOLES, (x0, y0), max(2.0, size / 64))[ys, xs][:, None]
    region[ys, xs] = region[ys, xs] * (1 - w) + unit * w
