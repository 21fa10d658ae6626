"""The codebook engine: the analytic frame, compensated by the codebook generator (paper A).

The analytic engine gives the coarse flow (its sampling grid) and its frame;
the generator (talkhead/models/codebook_generator.py) works at its own
training size (256) and returns a corrected frame. At other output sizes the
correction (generator frame minus analytic frame) is resized and added to the
analytic frame, so the warp keeps its full resolution where the network
changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from talkhead.models.codebook_generator import resize, resize_grid
from talkhead.render.engine import AnalyticEngine, PreparedSource, to_uint8
from talkhead.render.flow import pixels_to_unit


@dataclass(frozen=True)
class CodebookSource(PreparedSource):
    """A PreparedSource plus what the network needs of the portrait, made once:
    net_image float32 [1,3,N,N] 0..1 at the network's size; features, the encoder's output for it."""

    net_image: torch.Tensor
    features: list[torch.Tensor]


class CodebookEngine:
    name = "codebook"

    def __init__(self, size: int, device: torch.device, weights: Path | None = None) -> None:
        from talkhead.weights import load_codebook

        self.size = size
        self.device = device
        self.analytic = AnalyticEngine(size, device)
        self.model = load_codebook(weights).to(device).eval()
        self.net_size = self.model.config.size

    @torch.inference_mode()
    def prepare(self, crop: np.ndarray, landmarks: np.ndarray, detail: np.ndarray | None = None,
                visible: tuple[float, float, float, float] | None = None) -> CodebookSource:
        """As AnalyticEngine.prepare (crop uint8 [S,S,3], landmarks float [478,3] crop pixels), and the
        portrait encoded once for every frame. The network sees the whole crop: `visible` is not used."""
        prepared = self.analytic.prepare(crop, landmarks, detail)
        image = resize(prepared.image, self.net_size)
        return CodebookSource(**vars(prepared), net_image=image, features=self.model.encoder(image))

    @torch.inference_mode()
    def render(self, source: CodebookSource, targets: np.ndarray) -> np.ndarray:
        """Frames uint8 [B,R,R,3] RGB for target landmarks float [B,478,3] (crop pixels at S)."""
        frames, grid = self.analytic.render_float(source, targets)                  # [B,3,R,R], [B,S,S,2]
        n, count = self.net_size, len(targets)
        base = resize(frames, n)
        coarse = resize_grid(torch.from_numpy(grid).to(self.device), n)
        points = pixels_to_unit(torch.from_numpy(targets[:, :, :2]).float(), self.size).to(self.device)
        features = [f.expand(count, -1, -1, -1) for f in source.features]
        out = self.model(source.net_image.expand(count, -1, -1, -1), coarse, points, base, features).frame
        correction = resize(out - base, frames.shape[-1])
        return to_uint8((frames + correction).clamp_(0, 1))
