"""FROND part 4: the implicit image decoder, queried at continuous coordinates.

The portrait is encoded once into a grid of features (latent x latent).
Every output pixel is a query at its continuous coordinate p:

    q, visible = field.at(p)                 where p reads the source
    inputs: the source features at q, q's offset inside its feature cell,
            the query's cell size (how large one output pixel is), the
            portrait's own colour at q (sampled from the full-resolution
            crop: the high-frequency detail), the base frame's colour at p,
            visibility, Fourier features of p
    an MLP ─► blend a, colour residual c
    colour(p) = base(p) + a * (source(q) - base(p)) + c

Because nothing is tied to a pixel grid, any output size is one grid of
queries; `render` takes the side. `base` is the analytic engine's frame (its
warp with a synthesised mouth interior): a fresh decoder (zero-initialised
last layer) returns it, and training teaches where the fused field's warp of
the portrait, or a correction, is better.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn as nn

from talkhead.models.frond_field import MotionField, sample_points, unit_grid

RESIDUAL_SCALE = 0.25  # colour units (0..1): the residual's range
CHUNK = 1 << 16        # queries per step when rendering a whole frame


@dataclass(frozen=True)
class DecoderConfig:
    size: int = 256           # side the portrait is encoded at
    latent: int = 64          # side of the feature grid
    channels: int = 32
    hidden: int = 96
    layers: int = 3
    frequencies: int = 6

    @property
    def inputs(self) -> int:
        return self.channels + 2 + 1 + 3 + 3 + 1 + 4 * self.frequencies


class ImplicitDecoder(nn.Module):
    def __init__(self, config: DecoderConfig = DecoderConfig()) -> None:
        super().__init__()
        c = self.config = config
        steps = int(math.log2(c.size // c.latent))
        layers: list[nn.Module] = []
        width = 3
        for i in range(steps):
            out = c.channels if i == steps - 1 else c.channels // 2
            layers += [nn.Conv2d(width, out, 4, stride=2, padding=1), nn.GELU()]
            width = out
        layers += [nn.Conv2d(width, c.channels, 3, padding=1), nn.GELU(), nn.Conv2d(c.channels, c.channels, 3, padding=1)]
        self.encoder = nn.Sequential(*layers)
        mlp: list[nn.Module] = []
        width = c.inputs
        for _ in range(c.layers - 1):
            mlp += [nn.Linear(width, c.hidden), nn.GELU()]
            width = c.hidden
        self.mlp = nn.Sequential(*mlp, nn.Linear(width, 4))
        nn.init.zeros_(self.mlp[-1].weight)
        nn.init.zeros_(self.mlp[-1].bias)
        self.register_buffer("bands", math.pi * 2.0 ** torch.arange(c.frequencies).float(), persistent=False)

    def features(self, source: torch.Tensor) -> torch.Tensor:
        """source float [B,3,size,size] 0..1 → features [B,channels,latent,latent]."""
        return self.encoder(source * 2 - 1)

    def query(self, features: torch.Tensor, field: MotionField, points: torch.Tensor, cell: float,
              detail: torch.Tensor, base: torch.Tensor) -> torch.Tensor:
        """Colours float [B,N,3] at points float [B,N,2] in [-1,1].

        cell: the side of one output pixel in [-1,1] units (2 / output side);
        detail: the portrait crop float [B,3,R,R] at any resolution; base: the base frame [B,3,R',R'].
        """
        latent = self.config.latent
        reads, visible = field.at(points)
        feats = sample_points(features, reads)
        cells = (reads + 1) * latent / 2                         # in feature cells
        offset = cells - torch.floor(cells) - 0.5
        portrait = sample_points(detail, reads)
        under = sample_points(base, points)
        angles = points[..., None] * self.bands                   # [B,N,2,f]
        fourier = torch.cat([angles.sin(), angles.cos()], -1).flatten(-2)
        size = torch.full_like(visible, cell * latent / 2)
        out = self.mlp(torch.cat([feats, offset, size, portrait, under, visible, fourier], -1))
        blend = torch.tanh(out[..., :1])
        return under + blend * (portrait - under) + RESIDUAL_SCALE * torch.tanh(out[..., 1:])

    def render(self, features: torch.Tensor, field: MotionField, side: int, detail: torch.Tensor,
               base: torch.Tensor) -> torch.Tensor:
        """A whole frame float [B,3,side,side] 0..1: one query per output pixel centre."""
        batch = features.shape[0]
        points = unit_grid(side, features.device).reshape(1, -1, 2).expand(batch, -1, -1)
        parts = [self.query(features, field, points[:, i:i + CHUNK], 2.0 / side, detail, base)
                 for i in range(0, points.shape[1], CHUNK)]
        return torch.cat(parts, 1).clamp(0, 1).transpose(1, 2).reshape(batch, 3, side, side)
