"""The codebook engine: the analytic frame, compensated by the codebook generator (paper A).

The analytic engine gives the coarse flow (its sampling grid) and its frame;
the generator (talkhead/models/codebook_generator.py) works at its own
training size (256) and returns a corrected frame. At other output sizes the
correction (generator frame minus analytic frame) is resized and added to the
analytic frame, so the warp keeps its full resolution where the network
changes nothing.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from talkhead.render.engine import AnalyticEngine, PreparedSource, to_uint8
from talkhead.render.flow import pixels_to_unit


class CodebookEngine:
    name = "codebook"

    def __init__(self, size: int, device: torch.device, weights: Path | None = None) -> None:
        from talkhead.weights import load_codebook

        self.size = size
        self.device = device
        self.analytic = AnalyticEngine(size, device)
        self.model = load_codebook(weights).to(device).eval()
        self.net_size = self.model.config.size

    def prepare(self, crop: np.ndarray, landmarks: np.ndarray, detail: np.ndarray | None = None
                ) -> PreparedSource:
        """As AnalyticEngine.prepare (crop uint8 [S,S,3], landmarks float [478,3] crop pixels)."""
        return self.analytic.prepare(crop, landmarks, detail)

    @torch.inference_mode()
    def render(self, source: PreparedSource, targets: np.ndarray) -> np.ndarray:
        """Frames uint8 [B,R,R,3] RGB for target landmarks float [B,478,3] (crop pixels at S)."""
        frames, grid = self.analytic.render_float(source, targets)                  # [B,3,R,R], [B,S,S,2]
        n = self.net_size
        base = _resize(frames, n)
        coarse = _resize(torch.from_numpy(grid).to(self.device).permute(0, 3, 1, 2), n).permute(0, 2, 3, 1)
        points = pixels_to_unit(torch.from_numpy(targets[:, :, :2]).float(), self.size).to(self.device)
        image = _resize(source.image, n).expand(len(targets), -1, -1, -1)
        out = self.model(image, coarse, points, base).frame
        correction = _resize(out - base, frames.shape[-1])
        return to_uint8((frames + correction).clamp_(0, 1))


def _resize(x: torch.Tensor, side: int) -> torch.Tensor:
    """float [B,C,H,W] → [B,C,side,side]: area when shrinking, bilinear when growing."""
    if x.shape[-1] == side:
        return x
    mode = "area" if x.shape[-1] > side else "bilinear"
    return F.interpolate(x, size=(side, side), mode=mode, **({} if mode == "area" else {"align_corners": False}))
