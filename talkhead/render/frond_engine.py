"""The FROND engine: the analytic warp fused with local keypoint motion, decoded by the implicit decoder.

The analytic engine gives the global motion (its sampling grid) and the base
frame; FROND's dense motion field (talkhead/models/frond_field.py) fuses the
grid with the motion of the two-stream encoder's keypoints, and the implicit
decoder (talkhead/models/frond_decoder.py) queries every output pixel at its
continuous coordinate. Output sizes other than the training size need no
resizing: the decoder is simply queried on a finer or coarser grid.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from talkhead.models.codebook_generator import resize
from talkhead.render.engine import AnalyticEngine, PreparedSource, to_uint8
from talkhead.render.flow import pixels_to_unit


@dataclass(frozen=True)
class FrondSource(PreparedSource):
    """A PreparedSource plus, made once: features float32 [1,C,L,L], the decoder's encoding of the portrait;
    keypoints float32 [1,K,2], the encoder's keypoints on it in [-1,1]."""

    features: torch.Tensor
    keypoints: torch.Tensor


class FrondEngine:
    name = "frond"

    def __init__(self, size: int, device: torch.device, weights: Path | None = None) -> None:
        from talkhead.weights import load_frond

        self.size = size
        self.device = device
        self.analytic = AnalyticEngine(size, device)
        self.model = load_frond(weights).to(device).eval()
        self.net_size = self.model.config.decoder.size

    def _keypoints(self, landmarks: np.ndarray) -> torch.Tensor:
        """float [B,K,2] in [-1,1] for landmarks float [B,478,2+] in crop pixels."""
        points = pixels_to_unit(torch.from_numpy(np.ascontiguousarray(landmarks[..., :2])).float(), self.size)
        return self.model.encoder.keypoints(points.to(self.device))

    @torch.inference_mode()
    def prepare(self, crop: np.ndarray, landmarks: np.ndarray, detail: np.ndarray | None = None,
                visible: tuple[float, float, float, float] | None = None) -> FrondSource:
        """As AnalyticEngine.prepare (crop uint8 [S,S,3], landmarks float [478,3] crop pixels). The network
        decodes the whole crop: `visible` is not used."""
        prepared = self.analytic.prepare(crop, landmarks, detail)
        features = self.model.decoder.features(resize(prepared.image, self.net_size))
        return FrondSource(**vars(prepared), features=features, keypoints=self._keypoints(landmarks[None]))

    @torch.inference_mode()
    def render(self, source: FrondSource, targets: np.ndarray) -> np.ndarray:
        """Frames uint8 [B,R,R,3] RGB for target landmarks float [B,478,3] (crop pixels at S)."""
        base, grid = self.analytic.render_float(source, targets)                     # [B,3,R,R], [B,S,S,2]
        count = len(targets)
        field = self.model.field(torch.from_numpy(grid).to(self.device), source.keypoints.expand(count, -1, -1),
                                 self._keypoints(targets))
        frames = self.model.decoder.render(source.features.expand(count, -1, -1, -1), field, base.shape[-1],
                                           source.detail.expand(count, -1, -1, -1), base)
        return to_uint8(frames)
