"""Renderer engines: source crop + source landmarks + target landmarks → frames.

Every engine has the same small interface, so the learned engines of later
stages (the codebook network compensates this coarse flow) plug in beside the
analytic one:

    prepared = engine.prepare(crop, landmarks)      # once per portrait
    frames = engine.render(prepared, targets)       # per chunk of frames
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np
import torch

from talkhead.face.regions import FACE_OVAL, LEFT_EYE, LEFT_IRIS, LIPS, RIGHT_EYE, RIGHT_IRIS, control_points
from talkhead.render import flow, mesh
from talkhead.render.mouth import (MouthStyle, attach_teeth, finer, mouth_style, paint_gaps, paint_mouths,
                                   refine_mouth)

CONTROL = control_points(150)
# Lids and lips touch when eyes and mouths close: that is not a turned head hiding them.
OCCLUDABLE = ~np.isin(CONTROL, np.concatenate([LIPS, LEFT_EYE, RIGHT_EYE, LEFT_IRIS, RIGHT_IRIS]))
OPEN_MOUTH = 0.06  # inner-lip gap over mouth width above which the portrait's own teeth are kept
GRID = 48  # side of the coarse grid the spline is evaluated on (then upsampled)
OVAL_IN_CONTROL = np.searchsorted(CONTROL, FACE_OVAL)  # face-oval points, as positions in CONTROL


@dataclass(frozen=True)
class PreparedSource:
    """A portrait crop ready to render from.

    image: float32 [1,3,S,S] in 0..1 on the engine's device.
    detail: float32 [1,3,R,R], the same crop at the resolution frames are sampled at (R >= S).
    landmarks: float32 [478,3], crop pixels.
    controls: float32 [1,N,2], the control landmarks in [-1,1].
    mouth: colours and opening of the portrait's mouth.
    visible: None, or the part of the crop that will be seen, (x0, y0, x1, y1) as shares of its side: the
    analytic engine renders only there (with a margin), and leaves the rest of each frame as `still`.
    still: uint8 [R,R,3], the detail crop as it is.
    """

    image: torch.Tensor
    detail: torch.Tensor
    landmarks: np.ndarray
    controls: torch.Tensor
    mouth: MouthStyle
    visible: tuple[float, float, float, float] | None
    still: np.ndarray


class Engine(Protocol):
    name: str
    size: int

    def prepare(self, crop: np.ndarray, landmarks: np.ndarray, detail: np.ndarray | None = None,
                visible: tuple[float, float, float, float] | None = None) -> PreparedSource: ...

    def render(self, source: PreparedSource, targets: np.ndarray) -> np.ndarray: ...


class AnalyticEngine:
    """Warp of the portrait: the face mesh inside the face (render/mesh.py), a thin-plate spline
    outside it (render/flow.py); the mouth interior painted or its teeth kept (render/mouth.py)."""

    name = "analytic"

    def __init__(self, size: int, device: torch.device, grid: int | None = None) -> None:
        self.size = size
        self.device = device
        self.grid = grid or GRID

    def prepare(self, crop: np.ndarray, landmarks: np.ndarray, detail: np.ndarray | None = None,
                visible: tuple[float, float, float, float] | None = None) -> PreparedSource:
        """crop: uint8 [S,S,3] RGB; landmarks: float [478,3] in crop pixels.

        detail: optionally the same crop at a higher resolution R (uint8 [R,R,3]):
        the motion is computed at S, but frames are then sampled from it at R,
        so a large portrait keeps its sharpness.
        visible: optionally the part of the crop that will be seen (x0, y0, x1, y1, shares of its side;
        e.g. where a crop reaches past the portrait's edge): `render` works out only that part.
        """
        image = self._tensor(crop)
        controls = flow.pixels_to_unit(torch.from_numpy(landmarks[CONTROL, :2]).float(), self.size)
        still = crop if detail is None else detail
        return PreparedSource(image, image if detail is None else self._tensor(detail),
                              landmarks.astype(np.float32), controls[None].to(self.device),
                              mouth_style(crop, landmarks), visible, np.ascontiguousarray(still))

    def _tensor(self, image: np.ndarray) -> torch.Tensor:
        """uint8 [H,W,3] → float32 [1,3,H,W] 0..1 on the device."""
        return torch.from_numpy(image).to(self.device).permute(2, 0, 1)[None].float() / 255

    def flow(self, source: PreparedSource, targets: np.ndarray) -> torch.Tensor:
        """Sampling grid float32 [B,S,S,2] for targets float [B,478,2+] (crop pixels)."""
        return torch.from_numpy(self._grid(source, targets)).to(self.device)

    def _grid(self, source: PreparedSource, targets: np.ndarray,
              window: tuple[float, float, float, float] | None = None) -> np.ndarray:
        """`flow` as a CPU array, where the mesh and mouth steps edit it; with `window` (shares of the
        side), right only there (the spline is not evaluated outside it)."""
        tgt = flow.pixels_to_unit(torch.from_numpy(targets[:, :, :2]).float(), self.size).to(self.device)
        src = source.controls.expand(len(targets), -1, -1)
        ring_src, ring_tgt = flow.face_rings(src[:1, OVAL_IN_CONTROL], tgt[:, FACE_OVAL])
        face = float(np.ptp(source.landmarks[:, :2], axis=0).max())
        hidden = flow.hidden_points(targets[:, CONTROL], 0.03 * face, 0.05 * face) & OCCLUDABLE
        weights = torch.from_numpy(1.0 - hidden.astype(np.float32)).to(self.device)
        coarse = flow.tps_grid(torch.cat([tgt[:, CONTROL], ring_tgt], 1), torch.cat([src, ring_src], 1),
                               self.grid, weights=weights, window=_pixels(window, self.grid, SPLINE_MARGIN))
        grid = flow.upsample_grid(coarse, self.size)
        fine = grid.cpu().numpy()
        for b in range(len(targets)):
            mesh.mesh_warp(fine[b], targets[b], source.landmarks)
        return fine

    @torch.inference_mode()
    def render(self, source: PreparedSource, targets: np.ndarray) -> np.ndarray:
        """Frames uint8 [B,R,R,3] RGB for target landmarks float [B,478,3] (crop pixels at S).

        R is the resolution of `source.detail` (S unless a detail crop was given). Outside
        `source.visible` (and its margin) the frames hold the still crop.
        """
        if source.visible is None:
            return to_uint8(self.render_float(source, targets, mouth_grid=False)[0])
        x0, y0, x1, y1 = _pixels(source.visible, source.still.shape[0], VISIBLE_MARGIN)
        frames = np.repeat(source.still[None], len(targets), 0)
        frames[:, y0:y1, x0:x1] = to_uint8(self.render_float(source, targets, source.visible, mouth_grid=False)[0])
        return frames

    def render_float(self, source: PreparedSource, targets: np.ndarray,
                     window: tuple[float, float, float, float] | None = None,
                     mouth_grid: bool = True) -> tuple[torch.Tensor, np.ndarray]:
        """(frames float32 [B,3,R,R] 0..1 on the device, the sampling grid float32 [B,S,S,2] it used).

        With `window` (x0, y0, x1, y1 as shares of the side), only that part of the frames (and a margin of
        VISIBLE_MARGIN pixels) is rendered and returned, and the grid is right only there. Without
        `mouth_grid`, the returned grid may lack the kept teeth's reading inside the mouth when the frames
        are finer than it (they get it at their own resolution).
        """
        out = source.detail.shape[-1]
        fine = self._grid(source, targets, window)
        gaps: list[np.ndarray | None] = []
        gap_marks = targets
        teeth = source.mouth.source_open > OPEN_MOUTH
        finer_frames = out != self.size
        if teeth and (mouth_grid or not finer_frames):
            # The portrait shows its teeth: they keep their size, the mouth opens or closes between them.
            gaps = [attach_teeth(fine[b], targets[b], source.landmarks, source.mouth.split)
                    for b in range(len(targets))]
        grid = flow.upsample_grid(torch.from_numpy(fine).to(self.device), out)
        if teeth and finer_frames:
            host = grid.cpu()   # the same tensor on a CPU
            gaps = [refine_mouth(host[b].numpy(), targets[b], source.landmarks, source.mouth.split, out / self.size)
                    for b in range(len(targets))]
            gap_marks = finer(targets, out / self.size)
            if host is not grid:
                grid.copy_(host)
        x0, y0, x1, y1 = _pixels(window, out, VISIBLE_MARGIN)
        frames = flow.warp(source.detail, grid[:, y0:y1, x0:x1])
        frames = paint_mouths(frames, targets * (out / self.size), source.mouth, origin=(x0, y0))
        frames = paint_gaps(frames, gaps, gap_marks, source.mouth, size=out, origin=(x0, y0))
        return frames, fine


VISIBLE_MARGIN = 2  # pixels rendered around a visible window (the paste-back interpolates across its edge)
SPLINE_MARGIN = 2   # coarse grid cells the spline is evaluated around it (upsampling reads one cell beyond)


def _pixels(window: tuple[float, float, float, float] | None, size: int, margin: int) -> tuple[int, int, int, int]:
    """(x0, y0, x1, y1) pixels of a `size`-wide square covering `window` (shares of the side; None: all of
    it) with `margin` pixels around, within the square."""
    if window is None:
        return 0, 0, size, size
    x0, y0, x1, y1 = window
    lo = [max(0, int(np.floor(v * size)) - margin) for v in (x0, y0)]
    hi = [min(size, int(np.ceil(v * size)) + margin) for v in (x1, y1)]
    return lo[0], lo[1], hi[0], hi[1]


def to_uint8(frames: torch.Tensor) -> np.ndarray:
    """float [B,3,H,W] 0..1 → uint8 [B,H,W,3] on the CPU."""
    scaled = frames.permute(0, 2, 3, 1).mul(255).add_(0.5).clamp_(0, 255)   # [B,H,W,3], a view → one copy
    return scaled.to(torch.uint8).cpu().numpy()


def make_engine(name: str, size: int, device: torch.device, weights: str | None = None) -> Engine:
    """The engine called `name`: "analytic", or "codebook" / "frond" with its weights file or the registered one."""
    if name == "analytic":
        return AnalyticEngine(size, device)
    if name == "codebook":
        from pathlib import Path

        from talkhead.render.codebook_engine import CodebookEngine

        return CodebookEngine(size, device, Path(weights) if weights else None)
    if name == "frond":
        from pathlib import Path

        from talkhead.render.frond_engine import FrondEngine

        return FrondEngine(size, device, Path(weights) if weights else None)
    raise ValueError(f"unknown engine {name!r}")
