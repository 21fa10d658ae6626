"""FROND part 3: local and global motion fused into one continuous dense motion field.

    global motion: the whole face's warp (the analytic engine's sampling
                   grid: head pose and the landmark mesh), [B,S,S,2]
    local motion:  the two-stream encoder's keypoints, in the source and the
                   target image; what the global warp misses at keypoint k is
                   r_k = source keypoint - global(target keypoint), spread by
                   a Gaussian bump g_k around the target keypoint
    fusion:        a small convolutional network on [global flow, bumps,
                   spread residuals] predicts per keypoint how much of r_k to
                   take at each pixel (m_k), a free residual flow and an
                   occlusion map:
                   field(p) = global(p) + sum_k m_k(p) g_k(p) r_k + delta(p)

The fusion works on a coarse grid; `MotionField.at` reads the field at any
continuous coordinates (bilinear on the coarse correction, and on the global
grid at its own resolution), which is what the implicit decoder queries. A
fresh network (zero-initialised heads) returns the global warp unchanged.
Coordinates follow grid_sample with align_corners=False: [-1,1] over the crop.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from talkhead.models.frond_encoder import EncoderConfig

RESIDUAL_SCALE = 0.05  # [-1,1] units: the free residual flow's range


@dataclass(frozen=True)
class FieldConfig:
    side: int = 64            # side of the grid the fusion network works on
    sigma: float = 0.06       # keypoint bump width, [-1,1] units
    width: int = 32
    keypoints: int = EncoderConfig().keypoints


def unit_grid(side: int, device: torch.device | None = None) -> torch.Tensor:
    """float [side,side,2]: (x, y) of pixel centres in [-1,1]."""
    axis = (2 * torch.arange(side, device=device, dtype=torch.float32) + 1) / side - 1
    y, x = torch.meshgrid(axis, axis, indexing="ij")
    return torch.stack([x, y], -1)


def sample_points(image: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    """Bilinear values of image float [B,C,H,W] at points float [B,N,2] in [-1,1] → [B,N,C] (border padded)."""
    out = F.grid_sample(image, points[:, :, None], mode="bilinear", padding_mode="border", align_corners=False)
    return out[..., 0].transpose(1, 2)


@dataclass
class MotionField:
    """A dense motion field readable at any coordinates.

    global_grid: float [B,S,S,2] (where each target pixel reads the source);
    correction: float [B,2,h,w] added to it; occlusion: float [B,1,h,w] in 0..1 (1 = visible in the source).
    """

    global_grid: torch.Tensor
    correction: torch.Tensor
    occlusion: torch.Tensor

    def at(self, points: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """points float [B,N,2] (target coordinates) → (source coordinates [B,N,2], occlusion [B,N,1])."""
        base = sample_points(self.global_grid.permute(0, 3, 1, 2), points)
        return base + sample_points(self.correction, points), sample_points(self.occlusion, points)


class DenseMotionField(nn.Module):
    def __init__(self, config: FieldConfig = FieldConfig()) -> None:
        super().__init__()
        c = self.config = config
        cin = 2 + c.keypoints + 2
        self.net = nn.Sequential(
            nn.Conv2d(cin, c.width, 3, padding=1), nn.GELU(),
            nn.Conv2d(c.width, c.width, 3, padding=2, dilation=2), nn.GroupNorm(4, c.width), nn.GELU(),
            nn.Conv2d(c.width, c.width, 3, padding=4, dilation=4), nn.GELU(),
            nn.Conv2d(c.width, c.width, 3, padding=1), nn.GELU())
        self.head = nn.Conv2d(c.width, c.keypoints + 3, 3, padding=1)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)

    def forward(self, global_grid: torch.Tensor, source_keypoints: torch.Tensor,
                target_keypoints: torch.Tensor) -> MotionField:
        """global_grid float [B,S,S,2]; keypoints float [B,K,2] in [-1,1] (source and target images)."""
        c = self.config
        coarse = F.interpolate(global_grid.permute(0, 3, 1, 2), size=(c.side, c.side), mode="bilinear",
                               align_corners=False)                                        # [B,2,h,w]
        where = unit_grid(c.side, global_grid.device)                                      # [h,w,2]
        missed = source_keypoints - sample_points(coarse, target_keypoints)                # [B,K,2]
        d2 = ((where[None, None] - target_keypoints[:, :, None, None]) ** 2).sum(-1)       # [B,K,h,w]
        bumps = torch.exp(-d2 / (2 * c.sigma ** 2))
        spread = torch.einsum("bkhw,bkc->bchw", bumps, missed)
        flow = coarse - where.permute(2, 0, 1)[None]
        out = self.head(self.net(torch.cat([flow, bumps, spread], 1)))
        take = torch.tanh(out[:, :c.keypoints])
        local = torch.einsum("bkhw,bkc->bchw", take * bumps, missed)
        correction = local + RESIDUAL_SCALE * torch.tanh(out[:, c.keypoints:c.keypoints + 2])
        occlusion = torch.sigmoid(out[:, -1:] + 4.0)
        return MotionField(global_grid, correction, occlusion)
