"""Appearance compensation at one scale (paper A), fused into the decoder by SFT.

Warped source features are cut into patches; each patch token retrieves from
the appearance codebook (quantised), and the tokens are unfolded back into a
feature map. The decoder is then modulated by it through a spatial feature
transform: x * (1 + gamma) + beta, with gamma and beta predicted per pixel
(Wang et al., SFT-GAN), so the codebook's appearance prior (say, what a
mouth's interior looks like) can fill in what the warp cannot show.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from talkhead.models.quantizer import Quantized, VectorQuantizer
from talkhead.models.retrieval import CodebookRetrieval


class AppearanceCompensator(nn.Module):
    """Appearance features [B,out,H,W] for warped features [B,C,H,W] of side `patch * tokens`."""

    def __init__(self, channels: int, out_channels: int, dim: int, patch: int, code_dim: int, heads: int,
                 layers: int) -> None:
        super().__init__()
        self.patch = patch
        self.embed = nn.Conv2d(channels, dim, patch, stride=patch)
        self.retrieve = CodebookRetrieval(dim, code_dim, heads, layers)
        self.unpatch = nn.Linear(code_dim, out_channels * patch * patch)

    def forward(self, warped: torch.Tensor, codebook: VectorQuantizer, limit: int
                ) -> tuple[torch.Tensor, Quantized]:
        query = self.embed(warped)                                                   # [B,dim,h,w]
        side = query.shape[-1]
        z = self.retrieve(query.flatten(2).transpose(1, 2), codebook.rows(limit), side)
        quantized = codebook(z, limit)
        out = self.unpatch(quantized.tokens)                                         # [B,h*w,out*p*p]
        out = out.transpose(1, 2).reshape(len(out), -1, side, side)
        return F.pixel_shuffle(out, self.patch), quantized                           # [B,out,H,W]


class SFT(nn.Module):
    """Spatial feature transform: x * (1 + gamma(c)) + beta(c); a fresh one is the identity."""

    def __init__(self, cond_channels: int, channels: int) -> None:
        super().__init__()
        self.shared = nn.Sequential(nn.Conv2d(cond_channels, channels, 3, padding=1), nn.GELU())
        self.gamma = nn.Conv2d(channels, channels, 1)
        self.beta = nn.Conv2d(channels, channels, 1)
        for conv in (self.gamma, self.beta):
            nn.init.zeros_(conv.weight)
            nn.init.zeros_(conv.bias)

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        h = self.shared(cond)
        return x * (1 + self.gamma(h)) + self.beta(h)
