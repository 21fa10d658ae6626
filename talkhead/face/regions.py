"""Named groups of mediapipe face-mesh points, derived once from the package's
connection lists and the canonical face."""

from __future__ import annotations

import cv2
import numpy as np
from mediapipe.python.solutions import face_mesh_connections as fc

from talkhead.face.canonical import CANONICAL_FACE


def _points(connections: frozenset) -> np.ndarray:
    return np.array(sorted({i for edge in connections for i in edge}))


def _ring(connections: frozenset) -> np.ndarray:
    """Order the points of a closed contour given as edges."""
    nxt: dict[int, list[int]] = {}
    for a, b in connections:
        nxt.setdefault(a, []).append(b)
        nxt.setdefault(b, []).append(a)
    start = min(nxt)
    ring, prev = [start], None
    while True:
        options = [n for n in nxt[ring[-1]] if n != prev]
        if not options or options[0] == start:
            break
        prev = ring[-1]
        ring.append(options[0])
    return np.array(ring)


LIPS = _points(fc.FACEMESH_LIPS)
LEFT_EYE = _points(fc.FACEMESH_LEFT_EYE)
RIGHT_EYE = _points(fc.FACEMESH_RIGHT_EYE)
LEFT_IRIS = _points(fc.FACEMESH_LEFT_IRIS)
RIGHT_IRIS = _points(fc.FACEMESH_RIGHT_IRIS)
BROWS = np.union1d(_points(fc.FACEMESH_LEFT_EYEBROW), _points(fc.FACEMESH_RIGHT_EYEBROW))
FACE_OVAL = _ring(fc.FACEMESH_FACE_OVAL)

# Inner lip contour, corner to corner along the upper lip, then back along the lower.
INNER_UPPER = np.array([78, 191, 80, 81, 82, 13, 312, 311, 310, 415, 308])
INNER_LOWER = np.array([78, 95, 88, 178, 87, 14, 317, 402, 318, 324, 308])
MOUTH_CORNERS = (78, 308)
LIP_GAP = (13, 14)                      # middle of the inner upper / lower lip
LIP_OUTER = (0, 17)                     # middle of the outer upper / lower lip
EYE_LIDS = ((159, 145), (386, 374))     # (upper, lower) lid middles: right eye, left eye
EYE_CORNERS = ((33, 133), (362, 263))   # (outer, inner) right eye; (inner, outer) left eye
# For each point, its mirror image across the face's midline (the nearest canonical point, x negated).
MIRROR = np.linalg.norm((CANONICAL_FACE * [-1.0, 1.0, 1.0])[:, None] - CANONICAL_FACE[None], axis=2).argmin(1)


def _part_masks() -> dict[str, np.ndarray]:
    """bool [478] per transferable part; 'expression' is what is neither eyes nor mouth."""
    c = CANONICAL_FACE
    below_nose = c[:, 1] > c[2, 1] + 0.02           # point 2: under the nose
    mouth = np.zeros(len(c), bool)
    mouth[below_nose] = True
    mouth[LIPS] = True
    eyes = np.zeros(len(c), bool)
    for ids in (LEFT_EYE, RIGHT_EYE):
        centre = c[ids].mean(0)
        near = np.linalg.norm((c - centre)[:, :2] / [0.30, 0.11], axis=1) < 1.0
        eyes |= near
    eyes[np.concatenate([LEFT_EYE, RIGHT_EYE, LEFT_IRIS, RIGHT_IRIS])] = True
    eyes[BROWS] = False
    eyes &= ~mouth
    return {"eyes": eyes, "mouth": mouth, "expression": ~(eyes | mouth)}


PARTS = _part_masks()


def control_points(count: int = 150) -> np.ndarray:
    """Indices of mesh points that steer the dense warp.

    Every contour (lips, eyes, irises, brows, face oval) plus points spread
    evenly over the rest of the face by farthest-point sampling.
    """
    chosen = list(np.unique(np.concatenate(
        [LIPS, LEFT_EYE, RIGHT_EYE, LEFT_IRIS, RIGHT_IRIS, BROWS, FACE_OVAL]
    )))
    xy = CANONICAL_FACE[:, :2]
    dist = np.min(np.linalg.norm(xy[:, None] - xy[chosen][None], axis=2), axis=1)
    while len(chosen) < count:
        nxt = int(dist.argmax())
        chosen.append(nxt)
        dist = np.minimum(dist, np.linalg.norm(xy - xy[nxt], axis=1))
    return np.array(sorted(chosen))


MOUTH_GROW = 0.25  # the mouth's box: the lips' box grown by this share of its size on each side


def face_oval_mask(landmarks: np.ndarray, size: int) -> np.ndarray:
    """bool [S,S]: inside the face oval of landmarks [478,2+] (pixels of an S x S crop)."""
    mask = np.zeros((size, size), np.uint8)
    cv2.fillPoly(mask, [np.round(landmarks[FACE_OVAL, :2]).astype(np.int32)], 1)
    return mask.astype(bool)


def mouth_box(landmarks: np.ndarray, size: int, grow: float = MOUTH_GROW) -> tuple[int, int, int, int]:
    """x0, y0, x1, y1: the lips' box of landmarks [478,2+] grown by `grow` on each side, inside the crop."""
    lo, hi = landmarks[LIPS, :2].min(0), landmarks[LIPS, :2].max(0)
    pad = (hi - lo) * grow
    x0, y0 = np.clip(np.floor(lo - pad), 0, size).astype(int)
    x1, y1 = np.clip(np.ceil(hi + pad), 0, size).astype(int)
    return x0, y0, x1, y1
