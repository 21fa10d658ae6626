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

from dataclasses import dataclass, replace

import cv2
import numpy as np
import torch

from talkhead.face.regions import INNER_LOWER, INNER_UPPER, LIP_GAP, LIP_OUTER, LIPS, MOUTH_CORNERS
from talkhead.render import mesh

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
    split: float = 0.5  # where its open mouth divides between the jaws: a share of its gap, from the upper lip


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
        split=_jaw_split(img, landmarks[:, :2].astype(np.float64)),
    )


SPLIT_RANGE = (0.15, 0.9)  # where between the lips (shares of the gap from the upper one) a jaw split is looked for


def _jaw_split(img: np.ndarray, lm: np.ndarray) -> float:
    """Where an open mouth in the image (float [S,S,3]) parts when it opens wider: its darkest line
    between the lips, as a share of the inner-lip gap from the upper lip.

    Teeth above that line stay with the upper lip, what is below goes with the lower one: a portrait
    showing only its upper teeth over the lower lip keeps them all on the upper jaw, instead of cutting
    them in two halves that part. 0.5 (the middle) when the mouth is nearly shut or shows no such line.
    """
    centre, axis, normal, half, (uu, hu), (ul, hl) = _lip_profiles(lm)
    steps = np.linspace(0, 1, 21)
    columns = np.linspace(-0.4, 0.4, 9)
    top, bottom = np.interp(columns, uu, hu), np.interp(columns, ul, hl)
    if float(np.median(bottom - top)) < 3:
        return 0.5
    along = top[:, None] + steps[None] * (bottom - top)[:, None]                              # [columns, steps]
    points = centre + (columns * half)[:, None, None] * axis + along[..., None] * normal      # [columns, steps, 2]
    light = img @ np.array([0.299, 0.587, 0.114], np.float32)
    xy = points.astype(np.float32)
    profile = cv2.remap(light, xy[..., 0], xy[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE).mean(0)
    inner = (steps >= SPLIT_RANGE[0]) & (steps <= SPLIT_RANGE[1])
    if float(np.ptp(profile[inner])) < 0.05:
        return 0.5
    return float(steps[inner][np.argmin(profile[inner])])


def _lip_profiles(lm: np.ndarray):
    """Mouth frame for landmarks [478,2]: centre, axis, normal, half width, lip heights."""
    a, b = lm[MOUTH_CORNERS[0]], lm[MOUTH_CORNERS[1]]
    centre, axis = (a + b) / 2, (b - a) / np.linalg.norm(b - a)
    normal = np.array([-axis[1], axis[0]])
    if normal @ (lm[LIP_OUTER[1]] - lm[LIP_OUTER[0]]) < 0:
        normal = -normal  # points from upper to lower lip (the outer lips: the inner ones meet when shut)
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


SEAL_BELOW = 0.04  # a mouth whose inner-lip gap is under this share of its width seals over the teeth


def attach_teeth(grid: np.ndarray, target: np.ndarray, source: np.ndarray, split: float = 0.5,
                 grow: int = 0) -> np.ndarray | None:
    """For a portrait whose mouth is open: keep its teeth their own size as the mouth opens or closes.

    Inside the target's inner-lip outline, each pixel reads the portrait's mouth
    at the same distance from its lip instead of a stretched or squeezed copy:
    the upper teeth ride with the upper lip, the lower with the lower, and
    `split` is where the portrait's mouth divides between them (its darkest
    line, a share of its gap from the upper lip). Opened wider than the
    portrait, the middle has nothing to read: that gap is returned as a float32
    [S,S] mask (0..1) to be painted as the cavity. Closed further, the lips
    cover the teeth, each side keeping its share of the narrower gap; as the
    lips meet (a gap under SEAL_BELOW of the mouth's width) the reading moves
    up to a pixel into the lips, so no sliver of teeth stays on the seam.
    `grid`: float32 [S,S,2] sampling grid in [-1,1], changed in place; target,
    source: landmarks [478,2+] in pixels of the grid. The gap mask is None when
    the target is not open wider than the source. With `grow`, the same
    reading reaches that many pixels past the outline, over the lips' inner
    edges (see `refine_mouth`).
    """
    size = grid.shape[0]
    tgt, src = target[:, :2].astype(np.float64), source[:, :2].astype(np.float64)
    (t_gap, t_width), (s_gap, s_width) = _opening(tgt), _opening(src)
    t_open, s_open = t_gap / t_width, s_gap / s_width
    wider = t_open > s_open
    seal = 0.0 if wider else float(np.clip(1 - t_open / SEAL_BELOW, 0, 1))   # 0 open .. 1 shut
    ring = np.concatenate([INNER_UPPER, INNER_LOWER[::-1][1:-1]])
    x0, y0 = np.maximum(np.floor(tgt[ring].min(0)).astype(int) - 1 - grow, 0)
    x1, y1 = np.minimum(np.ceil(tgt[ring].max(0)).astype(int) + 2 + grow, size)
    if x1 - x0 < 2 or y1 - y0 < 2:
        return None
    inside = np.zeros((y1 - y0, x1 - x0), np.uint8)
    outline = np.round(tgt[ring] - [x0, y0]).astype(np.int32)
    cv2.fillPoly(inside, [outline], 1)
    if grow:
        cv2.polylines(inside, [outline], True, 1, thickness=2 * grow + 1)
    ys, xs = np.nonzero(inside)
    t_centre, t_axis, t_normal, t_half, (tuu, thu), (tul, thl) = _lip_profiles(tgt)
    s_centre, s_axis, s_normal, s_half, (suu, shu), (sul, shl) = _lip_profiles(src)
    rel = np.stack([xs + x0, ys + y0], 1) - t_centre
    u, v = rel @ t_axis / t_half, rel @ t_normal
    top, bottom = np.interp(u, tuu, thu), np.interp(u, tul, thl)
    s_top, s_bottom = np.interp(u, suu, shu), np.interp(u, sul, shl)
    opening = np.maximum(s_bottom - s_top, 0) * (s_half / t_half)      # source opening, target scale
    reach_top, reach_bottom = split * opening, (1 - split) * opening     # what each lip carries
    from_top, from_bottom = v - top, bottom - v
    if wider:   # each side shows what its lip carries, the cavity opens between
        upper = from_top - reach_top <= from_bottom - reach_bottom
    else:       # each side keeps its share of the narrower gap (the same line where the two meet)
        upper = from_top <= split * (from_top + from_bottom)
    depth = np.where(upper, from_top, from_bottom) * (s_half / t_half) - seal     # in source pixels
    s_v = np.where(upper, s_top + depth, s_bottom - depth)
    read = s_centre + (u * s_half)[:, None] * s_axis + s_v[:, None] * s_normal
    grid[ys + y0, xs + x0] = ((2 * read + 1) / size - 1).astype(np.float32)
    if not wider:
        return None
    gap = np.zeros((size, size), np.float32)
    gap[ys + y0, xs + x0] = np.clip(np.where(upper, from_top - reach_top, from_bottom - reach_bottom), 0, 2) / 2
    return cv2.GaussianBlur(gap, (3, 3), 0)


def finer(points: np.ndarray, scale: float) -> np.ndarray:
    """Pixel positions [...,2+] on an S x S grid → on the same square sampled `scale` times finer (float64 x, y)."""
    return (points[..., :2].astype(np.float64) + 0.5) * scale - 0.5


def refine_mouth(grid: np.ndarray, target: np.ndarray, source: np.ndarray, split: float, scale: float
                 ) -> np.ndarray | None:
    """The lips' mesh triangles and `attach_teeth` again on a grid float32 [R,R,2] upsampled from the
    S x S one (R = scale * S); landmarks [478,3] in pixels at S. Returns the gap mask at R (or None).

    Where the upper lip's reading meets the lower lip's (lips that meet, or the line where each keeps its
    share of a narrower gap), neighbouring grid pixels point far apart in the portrait; upsampling
    interpolates between them and so reads what lies between: a seam of teeth and cavity. Drawn again at
    R, the cut stays sharp.
    """
    tgt, src = target.astype(np.float64), source.astype(np.float64)
    tgt[:, :2], src[:, :2] = finer(target, scale), finer(source, scale)
    mesh.mesh_warp(grid, tgt, src, only=mesh.INNER_LIP_TRIANGLES)
    return attach_teeth(grid, tgt, src, split, grow=1)


def paint_gaps(frames: torch.Tensor, gaps: list[np.ndarray | None], targets: np.ndarray,
               style: MouthStyle, size: int | None = None, origin: tuple[int, int] = (0, 0)) -> torch.Tensor:
    """Paint the cavity into frames float [B,3,R,R] where `attach_teeth` left gaps ([S,S] masks; `targets`
    [B,478,2+] in their pixels).

    Frames may be a window of the R x R frame (`size` R, top-left corner `origin`, pixels at R)."""
    size = size or frames.shape[-1]
    ox, oy = origin
    height, width = frames.shape[-2:]
    for i, gap in enumerate(gaps):
        if gap is None or not gap.any():
            continue
        mask = cv2.resize(gap, (size, size), interpolation=cv2.INTER_LINEAR) if gap.shape[0] != size else gap
        mask = mask[oy:oy + height, ox:ox + width]
        ys, xs = np.nonzero(mask > 0)
        if len(ys) == 0:
            continue
        y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
        scale = size / gap.shape[0]
        inside = _interior(targets[i, :, :2].astype(np.float64) * scale - origin, replace(style, teeth=style.cavity),
                           x0, y0, x1 - x0, y1 - y0)
        region = frames[i, :, y0:y1, x0:x1]
        a = torch.from_numpy(np.ascontiguousarray(mask[y0:y1, x0:x1]))[None].to(frames)
        region += (torch.from_numpy(inside).permute(2, 0, 1).to(frames) - region) * a
    return frames


def paint_mouths(frames: torch.Tensor, targets: np.ndarray, style: MouthStyle,
                 origin: tuple[int, int] = (0, 0)) -> torch.Tensor:
    """Fill opened mouths in frames float [B,3,H,W] (0..1), in place; targets [B,478,2+] in pixels of the
    frames, or of a larger frame whose window at `origin` (top-left corner) they are."""
    frame_h, frame_w = frames.shape[-2:]
    ring = np.concatenate([INNER_UPPER, INNER_LOWER[::-1][1:-1]])
    for i, lm in enumerate(targets[:, :, :2].astype(np.float64) - origin):
        gap, width = _opening(lm)
        fresh = gap / width - style.source_open
        amount = np.clip((fresh - OPEN_START) / (OPEN_FULL - OPEN_START), 0, 1)
        amount *= np.clip((SOURCE_OPEN - style.source_open) / (0.5 * SOURCE_OPEN), 0, 1)
        if amount <= 0:
            continue
        poly = lm[ring]
        x0, y0 = np.floor(poly.min(0)).astype(int) - 2
        x1, y1 = np.ceil(poly.max(0)).astype(int) + 3
        x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, frame_w), min(y1, frame_h)
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
