"""Motion compensation at one scale (paper A): the coarse flow, corrected from the motion codebook.

The query of each token combines what the paper combines: the coarse flow
(here our landmark flow, as an offset from the identity grid), the source
features warped by it, and heatmaps of the driving keypoints (our target
landmarks). Retrieval from the motion codebook gives a quantised motion token
per patch, decoded into a flow correction and an occlusion map for that
patch's pixels.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from talkhead.models.quantizer import Quantized, VectorQuantizer
from talkhead.models.retrieval import CodebookRetrieval

OCCLUSION_BIAS = 3.0  # a fresh model sees everything (sigmoid(3) = 0.95)


class MotionCompensator(nn.Module):
    """Flow correction and occlusion for a feature map of side `patch * tokens`."""

    def __init__(self, channels: int, keypoints: int, dim: int, patch: int, code_dim: int, heads: int,
                 layers: int) -> None:
        super().__init__()
        self.patch = patch
        self.embed = nn.Sequential(nn.Conv2d(2 + channels + keypoints, dim, 3, padding=1), nn.GELU(),
                                   nn.Conv2d(dim, dim, patch, stride=patch))
        self.retrieve = CodebookRetrieval(dim, code_dim, heads, layers)
        self.head = nn.Sequential(nn.Linear(code_dim, dim), nn.GELU(), nn.Linear(dim, 3 * patch * patch))
        nn.init.zeros_(self.head[-1].weight)   # a fresh model keeps the coarse flow as it is
        nn.init.zeros_(self.head[-1].bias)

    def forward(self, flow: torch.Tensor, warped: torch.Tensor, heatmap: torch.Tensor,
                codebook: VectorQuantizer, limit: int) -> tuple[torch.Tensor, torch.Tensor, Quantized]:
        """flow: float [B,2,H,W] (grid minus identity, in [-1,1] units); warped: float [B,C,H,W];
        heatmap: float [B,K,H,W] in 0..1.

        Returns (correction float [B,2,H,W] to add to the grid, occlusion float [B,1,H,W] in 0..1,
        the quantised tokens).
        """
        query = self.embed(torch.cat([flow, warped, heatmap], 1))                    # [B,dim,h,w]
        side = query.shape[-1]
        z = self.retrieve(query.flatten(2).transpose(1, 2), codebook.rows(limit), side)  # [B,h*w,code_dim]
        quantized = codebook(z, limit)
        out = self.head(quantized.tokens)                                            # [B,h*w,3*p*p]
        out = out.transpose(1, 2).reshape(len(out), -1, side, side)                  # [B,3*p*p,h,w]
        out = F.pixel_shuffle(out, self.patch)                                       # [B,3,H,W]
        return out[:, :2], torch.sigmoid(out[:, 2:] + OCCLUSION_BIAS), quantized
