"""FROND part 1: the two-stream motion encoder (local keypoints + a global code).

It works on face landmarks, not pixels: mediapipe already measures the face,
so the encoder's job is to compress that measurement into the two streams
the paper describes.

    landmarks [..,478,D] ─► local stream: K keypoints, each a learned convex
                            combination of landmarks (a soft selection) [..,K,D]
    delta [..,478,3] ─────► global stream: an MLP → code [..,G], the motion's
                            overall context (how the whole face moves together)
    (keypoint deltas, code) ─► decoder ─► delta [..,478,3]

`delta` is an expression minus the same face at rest (canonical units, head
pose removed). Because the keypoints are convex combinations they work in
any coordinate frame: on canonical landmarks for the audio path, on image
landmarks for the dense motion field (frond_field.py). The decoder turns the
pair back into a full landmark delta, so the audio path ends in the same
Motion type every engine renders.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn

POINTS = 478
# Where the keypoints start: inner and outer lip middles, mouth corners, the
# inner lips' sides, chin and jaw, eyelids, brows. Training may move them.
SEEDS = (13, 14, 0, 17, 61, 291, 78, 308, 81, 311, 178, 402, 152, 172, 397, 159, 145, 386, 374, 105, 334)


@dataclass(frozen=True)
class EncoderConfig:
    keypoints: int = len(SEEDS)
    code: int = 16
    hidden: int = 256

    @property
    def motion_size(self) -> int:
        """Length of one motion vector: K keypoint deltas (x, y, z) and the global code."""
        return self.keypoints * 3 + self.code


class TwoStreamEncoder(nn.Module):
    def __init__(self, config: EncoderConfig = EncoderConfig()) -> None:
        super().__init__()
        c = self.config = config
        logits = torch.full((c.keypoints, POINTS), -6.0)
        for k in range(c.keypoints):
            logits[k, SEEDS[k % len(SEEDS)]] = 6.0
        self.select = nn.Parameter(logits)
        self.global_stream = nn.Sequential(nn.Linear(POINTS * 3, c.hidden), nn.GELU(), nn.Linear(c.hidden, c.code))
        self.from_keypoints = nn.Linear(c.keypoints * 3, POINTS * 3)
        self.from_code = nn.Sequential(nn.Linear(c.code, c.hidden), nn.GELU(), nn.Linear(c.hidden, POINTS * 3))
        nn.init.zeros_(self.from_code[-1].weight)
        nn.init.zeros_(self.from_code[-1].bias)

    def weights(self) -> torch.Tensor:
        """float [K,478]: each keypoint's share of every landmark (rows sum to 1)."""
        return self.select.softmax(-1)

    def keypoints(self, points: torch.Tensor) -> torch.Tensor:
        """Local stream: points float [..,478,D] (any frame, any D) → keypoints [..,K,D]."""
        return torch.einsum("kn,...nd->...kd", self.weights(), points)

    def encode(self, delta: torch.Tensor) -> torch.Tensor:
        """delta float [..,478,3] → motion vector [..,K*3+G] (keypoint deltas, then the global code)."""
        local = self.keypoints(delta).flatten(-2)
        return torch.cat([local, self.global_stream(delta.flatten(-2))], -1)

    def rest(self) -> torch.Tensor:
        """The motion vector [K*3+G] of a face at rest (a zero delta)."""
        return self.encode(self.select.new_zeros(POINTS, 3))

    def decode(self, motion: torch.Tensor) -> torch.Tensor:
        """motion vector [..,K*3+G] → delta [..,478,3]."""
        k = self.config.keypoints * 3
        out = self.from_keypoints(motion[..., :k]) + self.from_code(motion[..., k:])
        return out.unflatten(-1, (POINTS, 3))
