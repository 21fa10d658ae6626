"""Piecewise-affine warp of the face mesh around the eyes and the mouth.

The smooth spline cannot close an eye: lids that meet would need it to jump
from upper-lid skin to lower-lid skin. The face mesh can: its triangles stop
at the lid margins (the eye opening is a hole in the mesh), so when the target
lids meet, the opening's area goes to zero and the lid triangles stretch over
it. The lips likewise keep sharp edges as the mouth opens around its hole
(which render/mouth.py fills). In these zones the spline's sampling grid is
replaced by the exact per-triangle affine map, rasterised at full resolution.
"""

from __future__ import annotations

import cv2
import numpy as np
from mediapipe.python.solutions import face_mesh_connections as fc

from talkhead.face.canonical import CANONICAL_FACE
from talkhead.face.regions import BROWS, INNER_LOWER, INNER_UPPER, LEFT_EYE, LIPS, RIGHT_EYE

SUBPIXEL = 4  # bits of sub-pixel precision when rasterising triangles
FEATHER = 5   # window margin around the zone, pixels


def _near(ids: np.ndarray, radii: tuple[float, float]) -> np.ndarray:
    """bool [478]: points within an ellipse (canonical units) around the centre of `ids`."""
    c = CANONICAL_FACE
    return np.linalg.norm((c - c[ids].mean(0))[:, :2] / radii, axis=1) < 1.0


def _triangles(zone: np.ndarray) -> np.ndarray:
    """int [K,3] mesh triangles (from the tessellation's edges) lying wholly in `zone` (bool [478])."""
    adj: dict[int, set[int]] = {}
    for a, b in fc.FACEMESH_TESSELATION:
        adj.setdefault(a, set()).add(b)
        adj.setdefault(b, set()).add(a)
    tris = {tuple(sorted((a, b, c))) for a in adj for b in adj[a] for c in adj[a] & adj[b]}
    return np.array(sorted(t for t in tris if zone[list(t)].all()), np.int64)


# (triangles, the hole's contour): each eye with its lids up to below the brow,
# and the mouth with the lips and the skin around them.
ZONES = [
    (_triangles(_near(eye, (0.32, 0.17)) & ~np.isin(np.arange(478), BROWS)), eye)
    for eye in (RIGHT_EYE, LEFT_EYE)
] + [(_triangles(_near(LIPS, (0.42, 0.26))), np.concatenate([INNER_UPPER, INNER_LOWER]))]


def _window(points: np.ndarray, size: int) -> tuple[int, int, int, int]:
    lo = np.clip(np.floor(points.min(0)).astype(int) - FEATHER, 0, size)
    hi = np.clip(np.ceil(points.max(0)).astype(int) + FEATHER + 1, 0, size)
    return int(lo[0]), int(lo[1]), int(hi[0]), int(hi[1])


def _feather(cover: np.ndarray, target: np.ndarray, hole: np.ndarray, origin: tuple[int, int],
             width: float) -> np.ndarray:
    """float32 weights over the window: 1 inside the mesh zone, fading to 0 over `width` pixels at its
    outer edge. The zone's hole (eye or mouth opening) counts as inside, so the lids and lips stay exact."""
    solid = cover.astype(np.uint8)
    hull = cv2.convexHull(np.round(target[hole, :2] - origin).astype(np.int32))
    cv2.fillConvexPoly(solid, hull, 1)
    solid = np.pad(solid, 1)  # the window's edge counts as outside
    dist = cv2.distanceTransform(solid, cv2.DIST_L2, 3)[1:-1, 1:-1]
    return np.clip(dist / width, 0, 1).astype(np.float32)


def mesh_warp(grid: np.ndarray, target: np.ndarray, source: np.ndarray) -> None:
    """Replace, in place, the sampling grid float32 [S,S,2] ([-1,1]) around the eyes and the mouth.

    target, source: landmarks [478,2+] in crop pixels.
    """
    size = grid.shape[0]
    for tris, hole in ZONES:
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
        w = _feather(ids >= 0, target, hole, (x0, y0), max(2.0, size / 64))[ys, xs][:, None]
        region = grid[y0:y1, x0:x1]
        unit = ((2 * src + 1) / size - 1).astype(np.float32)
        region[ys, xs] = region[ys, xs] * (1 - w) + unit * w
