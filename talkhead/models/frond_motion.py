"""FROND part 2: the audio-driven motion estimator, in a continuous trajectory space.

The estimator does not predict one motion per video frame. It predicts the
control points of a uniform cubic B-spline through motion space (the
two-stream encoder's keypoint deltas and global code), one control point
every `knot_step` audio feature frames (20 ms by default). The trajectory
is then a function of time: `Trajectory.at(times)` evaluates it at any
instants, so the same prediction serves 24, 25, 30 or 60 fps, and the
motion is twice continuously differentiable: no frame-to-frame jitter can
come out of it.

    features [F, mel + phones] at 100 per second
        ─► dilated temporal convolutions (±0.3 s of context each side)
        ─► average over knot_step frames ─► control points [J, motion]
        ─► Trajectory: B-spline, queried at any times
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from talkhead.models.frond_encoder import EncoderConfig
from talkhead.speech.features import N_MELS
from talkhead.speech.phones import FRAME_RATE
from talkhead.speech.visemes import PHONES


@dataclass(frozen=True)
class EstimatorConfig:
    inputs: int = N_MELS + len(PHONES)
    motion: int = EncoderConfig().motion_size
    width: int = 32
    dilations: tuple[int, ...] = (1, 2, 4, 8, 2, 1)
    knot_step: int = 2          # audio feature frames (10 ms each) per control point
    dropout: float = 0.5        # in training only (there is little data)

    @property
    def knot_seconds(self) -> float:
        return self.knot_step / FRAME_RATE

    @property
    def first_knot(self) -> float:
        """Time (s) of control point 0: the centre of the feature frames it averages (frame f is at f/100 s)."""
        return (self.knot_step - 1) / 2 / FRAME_RATE


def bspline_weights(u: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Uniform cubic B-spline at knot coordinates u float [T] → (first control index long [T], weights [T,4]).

    The value at u is sum_i weights[:, i] * control[first + i]; the weights
    are smooth in u and sum to 1.
    """
    j = torch.floor(u)
    s = (u - j)[:, None]
    w = torch.cat([(1 - s) ** 3, 3 * s ** 3 - 6 * s ** 2 + 4, -3 * s ** 3 + 3 * s ** 2 + 3 * s + 1, s ** 3], 1) / 6
    return j.long() - 1, w


class Trajectory:
    """A motion trajectory: controls float [J,D] (or [B,J,D]) every `step` seconds from `start`."""

    def __init__(self, controls: torch.Tensor, step: float, start: float = 0.0) -> None:
        self.controls, self.step, self.start = controls, step, start

    def at(self, times: torch.Tensor) -> torch.Tensor:
        """Motion float [T,D] (or [B,T,D]) at times float [T] (seconds); held flat beyond the ends."""
        c = self.controls
        u = (times.to(c.dtype) - self.start) / self.step
        first, w = bspline_weights(u.clamp(-1.0, c.shape[-2]))
        index = (first[:, None] + torch.arange(4, device=c.device)).clamp_(0, c.shape[-2] - 1)   # [T,4]
        picked = c[..., index, :]                                                                # [..,T,4,D]
        return (picked * w[..., None].to(c.dtype)).sum(-2)


class _Block(nn.Module):
    def __init__(self, width: int, dilation: int, dropout: float) -> None:
        super().__init__()
        self.conv = nn.Conv1d(width, width, 3, padding=dilation, dilation=dilation)
        self.norm = nn.GroupNorm(8, width)
        self.mix = nn.Conv1d(width, width, 1)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.mix(self.drop(F.gelu(self.norm(self.conv(x)))))


class MotionEstimator(nn.Module):
    """Speech features → control points of a motion trajectory.

    Its outputs are in standard units; `mean` and `scale` (buffers, set from
    the training targets) turn them into motion vectors. `gain` (a buffer,
    measured after training) is how much further than predicted real mouths
    move: a regression's output swings less than the truth, and the speech
    driver scales the motion away from rest by it.
    """

    def __init__(self, config: EstimatorConfig = EstimatorConfig()) -> None:
        super().__init__()
        c = self.config = config
        self.inp = nn.Conv1d(c.inputs, c.width, 5, padding=2)
        self.blocks = nn.Sequential(*(_Block(c.width, d, c.dropout) for d in c.dilations))
        self.out = nn.Conv1d(c.width, c.motion, 1)
        self.register_buffer("mean", torch.zeros(c.motion))
        self.register_buffer("scale", torch.ones(c.motion))
        self.register_buffer("gain", torch.ones(()))

    def controls(self, features: torch.Tensor) -> torch.Tensor:
        """features float [B,F,inputs] (100 per second) → standardised control points [B,ceil(F/knot_step),motion]."""
        c = self.config
        x = self.blocks(F.gelu(self.inp(features.transpose(1, 2))))
        x = F.avg_pool1d(x, c.knot_step, ceil_mode=True)
        return self.out(x).transpose(1, 2)

    def trajectory(self, features: torch.Tensor) -> Trajectory:
        """The motion trajectory (motion-vector units) of features float [B,F,inputs]."""
        controls = self.controls(features) * self.scale + self.mean
        return Trajectory(controls, self.config.knot_seconds, self.config.first_knot)
