"""Mouth interior for mouths that open wider than in the portrait.

A backward warp can only stretch what the portrait shows: a closed mouth
opened by warping shows smeared lip skin. Here the inner-lip polygon of the
target frame is filled with a synthesised interior — a dark cavity shaded
towards the throat, upper teeth under the upper lip, a hint of lower teeth and
tongue — coloured from the portrait's own lips and skin, so it matches
grey-scale photos and paintings alike. Where the portrait's mouth is already
open, its own (warped) interior is kept.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import torch

from talkhead.face.regions import INNER_LOWER, INNER_UPPER, LIPS, MOUTH_CORNERS, LIP_GAP

OPEN_START = 0.02   # opening beyond the source's, over mouth width, where painting starts
OPEN_FULL = 0.08    # ... and where it is fully painted
SOURCE_OPEN = 0.10  # source mouths open more than this (over width) keep their own interior


@dataclass(frozen=True)
class MouthStyle:
    """Colours (float [3], 0..1 RGB) and opening of the portrait's mouth."""

    cavity: np.ndarray
    teeth: np.ndarray
    tongue: np.ndarray
    source_open: float  # inner-lip gap over mouth width


def _opening(lm: np.ndarray) -> tuple[float, float]:
    """(gap, width) of the inner lips for landmarks [478,2+] (pixels)."""
    gap = float(np.linalg.norm(lm[LIP_GAP[0], :2] - lm[LIP_GAP[1], :2]))
    width = float(np.linalg.norm(lm[MOUTH_CORNERS[0], :2] - lm[MOUTH_CORNERS[1], :2]))
    return gap, max(width, 1e-6)


def mouth_style(image: np.ndarray, landmarks: np.ndarray) -> MouthStyle:
    """Style from the source crop uint8 [S,S,3] and its landmarks [478,2+] (crop pixels)."""
    img = image.astype(np.float32) / 255
    lips = np.clip(np.round(landmarks[LIPS, :2]).astype(int), 0, image.shape[0] - 1)
    lip = np.median(img[lips[:, 1], lips[:, 0]], axis=0)
    cheeks = np.clip(np.round(landmarks[[50, 280, 9, 5], :2]).astype(int), 0, image.shape[0] - 1)
    skin = np.median(img[cheeks[:, 1], cheeks[:, 0]], axis=0)
    colourful = float(np.ptp(skin)) > 0.03          # a grey-scale portrait keeps grey teeth
    white = max(0.85, float(skin.max())) * (np.array([1.0, 0.97, 0.9]) if colourful else np.ones(3))
    gap, width = _opening(landmarks)
    return MouthStyle(
        cavity=lip * 0.42,
        teeth=np.clip(0.25 * skin + 0.75 * white, 0, 1),
        tongue=lip * 0.7,
        source_open=gap / width,
    )


def _lip_profiles(lm: np.ndarray):
    """Mouth frame for landmarks [478,2]: centre, axis, normal, half width, lip heights."""
    a, b = lm[MOUTH_CORNERS[0]], lm[MOUTH_CORNERS[1]]
    centre, axis = (a + b) / 2, (b - a) / np.linalg.norm(b - a)
    normal = np.array([-axis[1], axis[0]])
    if normal @ (lm[LIP_GAP[1]] - lm[LIP_GAP[0]]) < 0:
        normal = -normal  # points from upper to lower lip
    half = np.linalg.norm(b - a) / 2

    def profile(ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        rel = lm[ids] - centre
        u, h = rel @ axis / half, rel @ normal
        order = np.argsort(u)
        return u[order], h[order]

    return centre, axis, normal, half, profile(INNER_UPPER), profile(INNER_LOWER)


def _interior(lm: np.ndarray, style: MouthStyle, x0: int, y0: int, w: int, h: int) -> np.ndarray:
    """RGB float32 [h,w,3] mouth interior over the box at (x0, y0)."""
    centre, axis, normal, half, (uu, hu), (ul, hl) = _lip_profiles(lm)
    ys, xs = np.mgrid[y0:y0 + h, x0:x0 + w].astype(np.float32)
    rel = np.stack([xs - centre[0], ys - centre[1]], -1)
    u = rel @ axis / half
    v = rel @ normal
    top, bottom = np.interp(u, uu, hu), np.interp(u, ul, hl)
    gap = np.maximum(bottom - top, 1e-3)
    t = np.clip((v - top) / gap, 0, 1)                      # 0 at the upper lip, 1 at the lower
    open_px = float(np.interp(0.0, ul, hl) - np.interp(0.0, uu, hu))
    width = 2 * half
    across = np.clip(1 - np.abs(u) / 0.8, 0, 1) ** 0.5      # teeth fade towards the corners
    depth = 0.5 + 0.5 * np.abs(u) ** 2                       # darker in the middle (throat)
    colour = style.cavity[None, None] * depth[..., None]
    upper_h = min(0.4 * open_px, 0.09 * width) / open_px if open_px > 0 else 0
    seams = np.abs(((u * 4.2 + 0.5) % 1.0) - 0.5)             # tooth edges at seams ≈ 0
    tooth_shade = (0.82 + 0.18 * np.clip(seams / 0.12, 0, 1)) * (1 - 0.25 * np.abs(u))
    up = np.clip((upper_h - t) / max(upper_h * 0.2, 1e-3), 0, 1) * across
    colour = colour + (style.teeth[None, None] * tooth_shade[..., None] - colour) * up[..., None]
    lower_h = min(0.25 * open_px, 0.06 * width) / open_px if open_px > 0 else 0
    low = np.clip((t - (1 - lower_h)) / max(lower_h * 0.3, 1e-3), 0, 1) * across * 0.75
    tongue = np.clip((t - 0.55) / 0.3, 0, 1) * np.clip(1 - np.abs(u) / 0.6, 0, 1) * 0.5
    tongue *= np.clip((open_px / width - 0.2) / 0.15, 0, 1)
    colour = colour + (style.tongue[None, None] - colour) * tongue[..., None]
    colour = colour + (style.teeth[None, None] * 0.8 - colour) * low[..., None]
    shadow = 0.8 + 0.2 * np.clip(np.minimum(t, 1 - t) / 0.15, 0, 1)
    return (colour * shadow[..., None]).astype(np.float32)


def paint_mouths(frames: torch.Tensor, targets: np.ndarray, style: MouthStyle) -> torch.Tensor:
    """Fill opened mouths in frames float [B,3,S,S] (0..1), in place; targets [B,478,2+] crop pixels."""
    size = frames.shape[-1]
    ring = np.concatenate([INNER_UPPER, INNER_LOWER[::-1][1:-1]])
    for i, lm in enumerate(targets[:, :, :2].astype(np.float64)):
        gap, width = _opening(lm)
        fresh = gap / width - style.source_open
        amount = np.clip((fresh - OPEN_START) / (OPEN_FULL - OPEN_START), 0, 1)
        amount *= np.clip((SOURCE_OPEN - style.source_open) / (0.5 * SOURCE_OPEN), 0, 1)
        if amount <= 0:
            continue
        poly = lm[ring]
        x0, y0 = np.floor(poly.min(0)).astype(int) - 2
        x1, y1 = np.ceil(poly.max(0)).astype(int) + 3
        x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, size), min(y1, size)
        if x1 - x0 < 2 or y1 - y0 < 2:
            continue
        mask = np.zeros((y1 - y0, x1 - x0), np.uint8)
        pts = np.round((poly - [x0, y0]) * 4).astype(np.int32)
        cv2.fillPoly(mask, [pts], 255, lineType=cv2.LINE_AA, shift=2)
        soft = 2 * max(1, int(round(width / 60))) + 1             # edge softness grows with the mouth
        alpha = cv2.GaussianBlur(mask, (soft, soft), 0).astype(np.float32) / 255 * amount
        inside = _interior(lm, style, x0, y0, x1 - x0, y1 - y0)
        region = frames[i, :, y0:y1, x0:x1]
        a = torch.from_numpy(alpha)[None].to(frames)
        region += (torch.from_numpy(inside).permute(2, 0, 1).to(frames) - region) * a
    return frames
