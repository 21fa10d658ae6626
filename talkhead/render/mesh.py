"""Piecewise-affine warp of the face mesh around the eyes.

The smooth spline cannot close an eye: lids that meet would need it to jump
from upper-lid skin to lower-lid skin. The face mesh can: its triangles stop
at the lid margins (the eye opening is a hole in the mesh), so when the target
lids meet, the opening's area goes to zero and the lid triangles stretch over
it. Around each eye the spline's sampling grid is replaced by the exact
per-triangle affine map, rasterised at full resolution.
"""

from __future__ import annotations

import cv2
import numpy as np
from mediapipe.python.solutions import face_mesh_connections as fc

from talkhead.face.canonical import CANONICAL_FACE
from talkhead.face.regions import BROWS, LEFT_EYE, RIGHT_EYE

SUBPIXEL = 4  # bits of sub-pixel precision when rasterising triangles
FEATHER = 5   # window margin around the zone, pixels


def _eye_zone() -> np.ndarray:
    """bool [478]: mesh points within reach of the eyes (lids up to below the brows, the cheek under)."""
    c = CANONICAL_FACE
    zone = np.zeros(len(c), bool)
    for ids in (LEFT_EYE, RIGHT_EYE):
        centre = c[ids].mean(0)
        zone |= np.linalg.norm((c - centre)[:, :2] / [0.32, 0.17], axis=1) < 1.0
    zone[BROWS] = False
    return zone


def _triangles() -> np.ndarray:
    """int [K,3] mesh triangles (from the tessellation's edges) lying wholly in the eye zones."""
    adj: dict[int, set[int]] = {}
    for a, b in fc.FACEMESH_TESSELATION:
        adj.setdefault(a, set()).add(b)
        adj.setdefault(b, set()).add(a)
    tris = {tuple(sorted((a, b, c))) for a in adj for b in adj[a] for c in adj[a] & adj[b]}
    zone = _eye_zone()
    return np.array(sorted(t for t in tris if zone[list(t)].all()), np.int64)


TRIANGLES = _triangles()
SIDES = [TRIANGLES[np.sign(CANONICAL_FACE[TRIANGLES[:, 0], 0]) == s] for s in (-1, 1)]  # per eye


def _window(points: np.ndarray, size: int) -> tuple[int, int, int, int]:
    lo = np.clip(np.floor(points.min(0)).astype(int) - FEATHER, 0, size)
    hi = np.clip(np.ceil(points.max(0)).astype(int) + FEATHER + 1, 0, size)
    return int(lo[0]), int(lo[1]), int(hi[0]), int(hi[1])


def _feather(cover: np.ndarray, target: np.ndarray, tris: np.ndarray, origin: tuple[int, int],
             width: float) -> np.ndarray:
    """float32 weights over the window: 1 inside the mesh zone, fading to 0 over `width` pixels at its
    outer edge. The eye opening (a hole in the mesh) counts as inside, so the lids stay exact."""
    solid = cover.astype(np.uint8)
    ring = np.unique(tris)
    opening = [i for i in (*LEFT_EYE, *RIGHT_EYE) if i in ring]
    if opening:
        hull = cv2.convexHull(np.round(target[opening, :2] - origin).astype(np.int32))
        cv2.fillConvexPoly(solid, hull, 1)
    solid = np.pad(solid, 1)  # the window's edge counts as outside
    dist = cv2.distanceTransform(solid, cv2.DIST_L2, 3)[1:-1, 1:-1]
    return np.clip(dist / width, 0, 1).astype(np.float32)


def eye_warp(grid: np.ndarray, target: np.ndarray, source: np.ndarray) -> None:
    """Replace, in place, the sampling grid float32 [S,S,2] ([-1,1]) around both eyes.

    target, source: landmarks [478,2+] in crop pixels.
    """
    size = grid.shape[0]
    for tris in SIDES:
        x0, y0, x1, y1 = _window(target[np.unique(tris), :2], size)
        if x1 - x0 < 2 or y1 - y0 < 2:
            continue
        ids = np.full((y1 - y0, x1 - x0), -1, np.int32)
        for k, tri in enumerate(tris):
            pts = np.round((target[tri, :2] - [x0, y0]) * (1 << SUBPIXEL)).astype(np.int32)
            cv2.fillConvexPoly(ids, pts, k, lineType=cv2.LINE_8, shift=SUBPIXEL)
        ys, xs = np.nonzero(ids >= 0)
        if len(xs) == 0:
            continue
        tri = tris[ids[ys, xs]]                                       # [P,3]
        a, b, c = (target[tri[:, i], :2].astype(np.float64) for i in range(3))
        p = np.stack([xs + x0, ys + y0], 1).astype(np.float64)
        e1, e2, d = b - a, c - a, p - a
        det = e1[:, 0] * e2[:, 1] - e1[:, 1] * e2[:, 0]
        det = np.where(np.abs(det) < 1e-9, 1e-9, det)
        u = (d[:, 0] * e2[:, 1] - d[:, 1] * e2[:, 0]) / det
        v = (e1[:, 0] * d[:, 1] - e1[:, 1] * d[:, 0]) / det
        sa, sb, sc = (source[tri[:, i], :2].astype(np.float64) for i in range(3))
        src = sa + u[:, None] * (sb - sa) + v[:, None] * (sc - sa)   # source pixels
        w = _feather(ids >= 0, target, tris, (x0, y0), max(2.0, size / 64))[ys, xs][:, None]
        region = grid[y0:y1, x0:x1]
        unit = ((2 * src + 1) / size - 1).astype(np.float32)
        region[ys, xs] = region[ys, xs] * (1 - w) + unit * w
