"""The codebook generator (paper A: Zhao, Hong, Huang, Xu, CVPR 2025), sized by one config.

    source ─► encoder ─► features at size/2, /4, /8
    coarse flow (our landmark flow) ─┐
    target keypoint heatmaps ────────┴─► motion compensation, coarse to fine
                                          (motion codebook) ─► corrected flow + occlusion
    source features warped by it ─► appearance compensation per scale (appearance codebook)
    decoder (warped features + SFT from the appearance tokens) ─► weight w, correction c, mask m
    frame = base + w * (source warped by the compensated flow - base) + m * c

`base` is the analytic engine's frame for the same target (the warp with its
synthesised mouth interior): the network learns where and how to correct it,
and a fresh network returns it unchanged. The paper decodes the frame
outright; the blend is our change, so that a small model trained on a CPU
never does worse than the warp where it has nothing to add.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

import torch
import torch.nn as nn
import torch.nn.functional as F

from talkhead.models.appearance_compensation import SFT, AppearanceCompensator
from talkhead.models.keypoint_heatmap import GROUPS, keypoint_heatmaps
from talkhead.models.motion_compensation import MotionCompensator
from talkhead.models.quantizer import VectorQuantizer
from talkhead.models.serial import check_header, load_state, state_arrays


@dataclass(frozen=True)
class CodebookConfig:
    """Sizes of the generator. The default is the CPU variant; `paper()` gives the paper's sizes.

    levels: encoder level i has side size / 2**(i+1) and channels[i].
    motion_levels / appearance_levels: levels compensated, coarse first; coarser
    levels use a leading subset of the codes (half per level).
    """

    size: int = 256
    channels: tuple[int, ...] = (16, 32, 64)
    tokens: int = 16
    dim: int = 96
    heads: int = 4
    layers: int = 2
    motion_codes: int = 256
    motion_code_dim: int = 32
    appearance_codes: int = 256
    appearance_code_dim: int = 64
    motion_levels: tuple[int, ...] = (2, 1)
    appearance_levels: tuple[int, ...] = (2, 1, 0)
    keypoints: int = len(GROUPS)
    extra: dict = field(default_factory=dict, compare=False)  # free-form notes saved with the config

    def __post_init__(self) -> None:
        for level in set(self.motion_levels) | set(self.appearance_levels):
            side = self.side(level)
            if side % self.tokens:
                raise ValueError(f"level {level} (side {side}) is not a multiple of the token grid {self.tokens}")

    def side(self, level: int) -> int:
        return self.size >> (level + 1)

    def patch(self, level: int) -> int:
        return self.side(level) // self.tokens

    def limit(self, codes: int, level: int, levels: tuple[int, ...]) -> int:
        """How many leading codes a level uses: all at the finest compensated level, half per level coarser."""
        return max(codes >> (level - min(levels)), 1)

    @classmethod
    def paper(cls) -> "CodebookConfig":
        """The published sizes: 1024 codes of 32 (motion) and 256 (appearance), 32x32 tokens, 8 heads."""
        return cls(size=256, channels=(64, 128, 256), tokens=32, dim=256, heads=8, motion_codes=1024,
                   appearance_codes=1024, appearance_code_dim=256, motion_levels=(1, 0), appearance_levels=(1, 0))

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> "CodebookConfig":
        d = json.loads(text)
        tuples = ("channels", "motion_levels", "appearance_levels")
        return cls(**{k: tuple(v) if k in tuples else v for k, v in d.items()})


def _block(cin: int, cout: int) -> nn.Sequential:
    """conv, group norm, GELU, conv (the norm keeps activations at unit scale without batch statistics)."""
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1), nn.GroupNorm(4, cout), nn.GELU(),
                         nn.Conv2d(cout, cout, 3, padding=1))


class Encoder(nn.Module):
    """Source image float [B,3,S,S] 0..1 → features per level, [B,channels[i],S/2**(i+1),...]."""

    def __init__(self, channels: tuple[int, ...]) -> None:
        super().__init__()
        widths = (3, *channels)
        self.down = nn.ModuleList(nn.Conv2d(widths[i], widths[i + 1], 4, stride=2, padding=1)
                                  for i in range(len(channels)))
        self.blocks = nn.ModuleList(_block(c, c) for c in channels)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        feats = []
        for down, block in zip(self.down, self.blocks):
            x = F.gelu(down(x))
            x = x + block(x)
            feats.append(x)
        return feats


@dataclass
class GeneratorOutput:
    """frame: float [B,3,S,S] 0..1; mask: float [B,1,S,S] in 0..1, where the correction applies;
    vq_loss: scalar sum of the codebook losses; codes: per compensated stage, long [B,N] rows taken."""

    frame: torch.Tensor
    mask: torch.Tensor
    vq_loss: torch.Tensor
    codes: dict[str, torch.Tensor]


class CodebookGenerator(nn.Module):
    def __init__(self, config: CodebookConfig = CodebookConfig()) -> None:
        super().__init__()
        c = self.config = config
        self.encoder = Encoder(c.channels)
        self.motion_book = VectorQuantizer(c.motion_codes, c.motion_code_dim)
        self.appearance_book = VectorQuantizer(c.appearance_codes, c.appearance_code_dim)
        self.motion = nn.ModuleDict({str(lv): MotionCompensator(c.channels[lv], c.keypoints, c.dim, c.patch(lv),
                                                                 c.motion_code_dim, c.heads, c.layers)
                                     for lv in c.motion_levels})
        self.appearance = nn.ModuleDict({str(lv): AppearanceCompensator(c.channels[lv], c.channels[lv], c.dim,
                                                                         c.patch(lv), c.appearance_code_dim,
                                                                         c.heads, c.layers)
                                         for lv in c.appearance_levels})
        deepest = len(c.channels) - 1
        self.start = _block(c.channels[deepest], c.channels[deepest])
        self.fuse = nn.ModuleList(_block(c.channels[i + 1] + c.channels[i] + 3, c.channels[i]) for i in range(deepest))
        self.sft = nn.ModuleDict({str(lv): SFT(c.channels[lv], c.channels[lv]) for lv in c.appearance_levels})
        self.out_norm = nn.GroupNorm(1, c.channels[0])
        self.head = nn.Conv2d(c.channels[0] + 6, 5, 3, padding=1)  # full resolution: kept to one conv
        nn.init.zeros_(self.head.weight)   # a fresh model adds nothing to the base frame
        nn.init.zeros_(self.head.bias)

    def forward(self, source: torch.Tensor, grid: torch.Tensor, targets: torch.Tensor, base: torch.Tensor,
                features: list[torch.Tensor] | None = None) -> GeneratorOutput:
        """source, base: float [B,3,S,S] 0..1; grid: float [B,S,S,2], the coarse flow as a sampling grid
        (grid_sample convention, align_corners=False); targets: float [B,478,2], target landmarks in [-1,1].

        features: `self.encoder(source)` when the caller already has it (a renderer encodes its
        portrait once, not once per frame).
        """
        c = self.config
        feats = self.encoder(source) if features is None else features
        flow, occlusion, vq, codes = self._motion(feats, grid, targets)
        warped = {}
        for level, feat in enumerate(feats):
            side = c.side(level)
            g = resize_grid(grid, side) + resize(flow, side).permute(0, 2, 3, 1)
            warped[level] = F.grid_sample(feat, g, align_corners=False) * resize(occlusion, side)
        appearance = {}
        for level in c.appearance_levels:
            limit = c.limit(c.appearance_codes, level, c.appearance_levels)
            appearance[level], q = self.appearance[str(level)](warped[level], self.appearance_book, limit)
            vq, codes[f"appearance{level}"] = vq + q.loss, q.codes
        rewarped = F.grid_sample(source, grid + resize(flow, c.size).permute(0, 2, 3, 1), align_corners=False)
        frame, mask = self._decode(warped, appearance, base, rewarped)
        return GeneratorOutput(frame, mask, vq, codes)

    def _motion(self, feats: list[torch.Tensor], grid: torch.Tensor, targets: torch.Tensor):
        """Coarse-to-fine flow correction [B,2,s,s] and occlusion [B,1,s,s] at the finest motion level."""
        c = self.config
        vq = grid.new_zeros(())
        codes: dict[str, torch.Tensor] = {}
        flow = occlusion = None
        for level in c.motion_levels:
            side = c.side(level)
            coarse = resize_grid(grid, side)
            if flow is not None:
                flow = resize(flow, side)
                coarse = coarse + flow.permute(0, 2, 3, 1)
            warped = F.grid_sample(feats[level], coarse, align_corners=False)
            identity = _identity(side, grid)
            limit = c.limit(c.motion_codes, level, c.motion_levels)
            delta, occlusion, q = self.motion[str(level)]((coarse - identity).permute(0, 3, 1, 2), warped,
                                                          keypoint_heatmaps(targets, side), self.motion_book, limit)
            flow = delta if flow is None else flow + delta
            vq, codes[f"motion{level}"] = vq + q.loss, q.codes
        return flow, occlusion, vq, codes

    def _decode(self, warped: dict[int, torch.Tensor], appearance: dict[int, torch.Tensor], base: torch.Tensor,
                rewarped: torch.Tensor):
        """The frame: base, moved towards the source re-warped by the compensated flow, plus a painted
        correction where the mask says (a fresh model's head is zero: the base comes out unchanged)."""
        c = self.config
        level = len(c.channels) - 1
        x = warped[level] + self.start(warped[level])
        if level in appearance:
            x = self.sft[str(level)](x, appearance[level])
        for level in range(level - 1, -1, -1):
            side = c.side(level)
            x = F.interpolate(x, size=side, mode="bilinear", align_corners=False)
            x = self.fuse[level](torch.cat([x, warped[level], resize(base, side)], 1))
            if level in appearance:
                x = self.sft[str(level)](x, appearance[level])
        x = F.gelu(self.out_norm(x))
        x = F.interpolate(x, size=c.size, mode="bilinear", align_corners=False)
        out = self.head(torch.cat([x, base, rewarped], 1))
        mask = torch.sigmoid(out[:, 3:4])
        frame = base + out[:, 4:5] * (rewarped - base) + mask * out[:, :3]
        return frame.clamp(0, 1), mask


def resize(x: torch.Tensor, side: int) -> torch.Tensor:
    """float [B,C,H,W] → [B,C,side,side]: area when shrinking, bilinear when growing."""
    if x.shape[-1] == side:
        return x
    if x.shape[-1] > side:
        return F.adaptive_avg_pool2d(x, side)
    return F.interpolate(x, size=side, mode="bilinear", align_corners=False)


def resize_grid(grid: torch.Tensor, side: int) -> torch.Tensor:
    """Sampling grid float [B,S,S,2] → [B,side,side,2]."""
    return resize(grid.permute(0, 3, 1, 2), side).permute(0, 2, 3, 1)


def _identity(side: int, like: torch.Tensor) -> torch.Tensor:
    """float [1,side,side,2]: the grid that samples every pixel where it is."""
    axis = (2 * torch.arange(side, device=like.device, dtype=like.dtype) + 1) / side - 1
    y, x = torch.meshgrid(axis, axis, indexing="ij")
    return torch.stack([x, y], -1)[None]


KIND = "talkhead-codebook-generator"
VERSION = 2


def to_tensors(model: CodebookGenerator, meta: dict[str, str] | None = None, half: bool = False
               ) -> tuple[dict, dict[str, str]]:
    """The model as (numpy arrays by name, metadata with its config) for a safetensors file.

    half: store float weights as float16 (half the size, for shipping; training checkpoints keep float32).
    """
    return state_arrays(model, half), {"kind": KIND, "version": str(VERSION), "config": model.config.to_json(),
                                       **(meta or {})}


def from_tensors(arrays: dict, meta: dict[str, str]) -> CodebookGenerator:
    """Rebuild a model from `to_tensors` output (ValueError/KeyError if it is not one)."""
    check_header(meta, KIND, VERSION)
    return load_state(CodebookGenerator(CodebookConfig.from_json(meta["config"])), arrays)
