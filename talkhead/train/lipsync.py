"""Fit the lip-sync model on real talking clips.

    python -m talkhead.train.lipsync -o weights/lipsync.safetensors clip.mp4 [video.mp4=speech.wav ...]

Each clip is a video with its own speech (its audio track, or a separate
file after `=`). The face is tracked with mediapipe; the inner-lip gap of
each frame (canonical units) is the target, the speech features at the
frame's time the input. Phones come from recognition (no transcripts), as
they do when `speak` runs without --text.

Real clips disagree by a few frames about when the lips move relative to
their sound (recording and encoding offsets), which blurs what a model
learns. So each clip is first aligned: a ridge regression fitted on the
other clips predicts its lips, and the clip's target is shifted by the lag
(within ±MAX_OFFSET frames) that fits best; twice over. The model itself
is an ensemble of small networks (one hidden layer, heavy dropout and
weight decay), chosen over the ridge by leave-one-clip-out correlation in
benchmarks/bench_speak.py.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from talkhead.face.regions import MIRROR, MOUTH_CORNERS, PARTS
from talkhead.models.lipsync import LipsyncModel
from talkhead.motion import face_openings
from talkhead.speech.features import FeatureConfig, lipsync_features
from talkhead.speech.phones import SAMPLE_RATE, Phone

# All chosen by leave-one-clip-out correlation with the real lips (benchmarks/bench_speak.py).
RIDGE = 10_000.0   # the aligning ridge regression's regularisation
MAX_OFFSET = 3     # frames a clip's lips may be shifted against its sound
ALIGN_ROUNDS = 2
MEMBERS, HIDDEN = 5, 32
EPOCHS, BATCH, LEARNING_RATE, WEIGHT_DECAY = 30, 256, 1e-3, 1.0
DROPOUT_IN, DROPOUT_HIDDEN = 0.5, 0.3


@dataclass(frozen=True)
class ClipData:
    """One training clip: features float32 [T,D], gap float32 [T] (canonical units), expression [T,478,3]."""

    name: str
    fps: float
    features: np.ndarray
    gap: np.ndarray
    expression: np.ndarray


def lip_gap(expression: np.ndarray) -> np.ndarray:
    """float32 [T] inner-lip gap of expressions [T,478,3] (canonical units)."""
    return face_openings(expression)[:, 0].astype(np.float32)


def mouth_width(expression: np.ndarray) -> np.ndarray:
    """float32 [T] corner-to-corner mouth width (canonical units, image plane)."""
    a, b = MOUTH_CORNERS
    return np.linalg.norm(expression[:, a, :2] - expression[:, b, :2], axis=-1).astype(np.float32)


def clip_data(name: str, expression: np.ndarray, fps: float, samples: np.ndarray, phones: Sequence[Phone],
              config: FeatureConfig = FeatureConfig()) -> ClipData:
    """Training data of one clip from its measured expressions [T,478,3], speech samples (16 kHz) and phones."""
    times = (np.arange(len(expression)) + 0.5) / fps
    return ClipData(name, fps, lipsync_features(samples, phones, times, config), lip_gap(expression), expression)


def _standard(x: np.ndarray) -> np.ndarray:
    return (x - x.mean()) / (x.std() + 1e-9)


def mouth_shapes(expressions: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Landmark displacement per unit of lip gap and per unit of mouth width, each float32 [478,3].

    A least-squares fit over every frame (each clip relative to its own
    median), made left-right symmetric and limited to the mouth and jaw.
    """
    x, y = [], []
    for e in expressions:
        e = e.astype(np.float64)
        gap, width = lip_gap(e), mouth_width(e)
        x.append(np.stack([gap - np.median(gap), width - np.median(width)], 1))
        y.append((e - np.median(e, 0)).reshape(len(e), -1))
    shapes = np.linalg.lstsq(np.concatenate(x), np.concatenate(y), rcond=None)[0].reshape(2, 478, 3)
    mirror = shapes[:, MIRROR] * np.array([-1.0, 1.0, 1.0])
    shapes = (shapes + mirror) / 2 * PARTS["mouth"][None, :, None]
    return shapes[0].astype(np.float32), shapes[1].astype(np.float32)


def _lag_slices(n: int, lag: int) -> tuple[slice, slice]:
    """(frames t, frames t + lag) of a clip of n frames: the pairs that both exist."""
    return slice(max(-lag, 0), n - max(lag, 0)), slice(max(lag, 0), n + min(lag, 0))


def shifted(clip: ClipData, lag: int) -> ClipData:
    """The clip with features of frame t paired with the lips of frame t + lag (lag > 0: its lips come late)."""
    if lag == 0:
        return clip
    keep, moved = _lag_slices(len(clip.gap), lag)
    return replace(clip, features=clip.features[keep], gap=clip.gap[moved], expression=clip.expression[moved])


def _best_lag(predicted: np.ndarray, gap: np.ndarray, reach: int) -> int:
    score = {}
    for lag in range(-reach, reach + 1):
        keep, moved = _lag_slices(len(gap), lag)
        score[lag] = np.nan_to_num(np.corrcoef(predicted[keep], gap[moved])[0, 1], nan=-1.0)
    return max(score, key=score.get)


def _normalisation(clips: Sequence[ClipData]) -> tuple[np.ndarray, np.ndarray]:
    """float64 [D] mean and scale of all clips' features."""
    x = np.concatenate([c.features for c in clips]).astype(np.float64)
    return x.mean(0), x.std(0) + 1e-6


def align(clips: Sequence[ClipData], reach: int = MAX_OFFSET, rounds: int = ALIGN_ROUNDS) -> list[ClipData]:
    """Each clip shifted by the lag at which a ridge fitted on the other clips predicts its lips best."""
    if len(clips) < 2 or reach == 0:
        return list(clips)
    mean, scale = _normalisation(clips)
    standard = [replace(c, features=(c.features - mean) / scale) for c in clips]
    lags = [0] * len(clips)
    for _ in range(rounds):
        current = [shifted(c, lag) for c, lag in zip(standard, lags)]
        grams = [c.features.T @ c.features for c in current]
        moments = [c.features.T @ _standard(c.gap).astype(np.float64) for c in current]
        gram, moment = sum(grams), sum(moments)
        lags = [_best_lag(c.features @ np.linalg.solve(gram - g + RIDGE * np.eye(len(mean)), moment - m), c.gap, reach)
                for c, g, m in zip(standard, grams, moments)]
    return [shifted(c, lag) for c, lag in zip(clips, lags)]


def _train_member(x: np.ndarray, y: np.ndarray, seed: int) -> list[np.ndarray]:
    """One network (standardised features x [N,D] → y [N]); its arrays hidden [H,D], hidden_bias [H], out [H], out_bias."""
    import torch

    with torch.random.fork_rng():
        torch.manual_seed(seed)
        net = torch.nn.Sequential(torch.nn.Dropout(DROPOUT_IN), torch.nn.Linear(x.shape[1], HIDDEN), torch.nn.GELU(),
                                  torch.nn.Dropout(DROPOUT_HIDDEN), torch.nn.Linear(HIDDEN, 1))
        optimiser = torch.optim.AdamW(net.parameters(), LEARNING_RATE, weight_decay=WEIGHT_DECAY)
        xt, yt = torch.as_tensor(x, dtype=torch.float32), torch.as_tensor(y, dtype=torch.float32)
        for _ in range(EPOCHS):
            for batch in torch.randperm(len(xt)).split(BATCH):
                loss = ((net(xt[batch])[:, 0] - yt[batch]) ** 2).mean()
                optimiser.zero_grad()
                loss.backward()
                optimiser.step()
    first, last = net[1], net[4]
    return [t.detach().numpy().astype(np.float32) for t in (first.weight, first.bias, last.weight[0], last.bias[0])]


def fit(clips: Sequence[ClipData], config: FeatureConfig = FeatureConfig(), seed: int = 0) -> LipsyncModel:
    """The lip-sync model fitted on `clips` (aligned first), plus the measured mouth shapes."""
    clips = align(clips)
    mean, scale = _normalisation(clips)
    x = np.concatenate([c.features for c in clips])
    xn = ((x - mean) / scale).astype(np.float32)
    y = np.concatenate([_standard(c.gap) for c in clips])
    members = [_train_member(xn, y, seed + k) for k in range(MEMBERS)]
    hidden, hidden_bias, out, out_bias = (np.stack([m[i] for m in members]) for i in range(4))
    open_shape, wide_shape = mouth_shapes([c.expression for c in clips])
    gap_mid = float(np.mean([c.gap.mean() for c in clips]))
    model = LipsyncModel(config, mean.astype(np.float32), scale.astype(np.float32), hidden, hidden_bias, out,
                         out_bias, gap_mid, 1.0, open_shape, wide_shape, trained_on=",".join(c.name for c in clips))
    # Predictions swing less than the truth: scale them back up to a typical speaker's range.
    spread = np.mean([c.gap.std() for c in clips]) / max(float(model.predict(x).std()), 1e-6)
    return replace(model, gap_spread=float(spread))


@dataclass(frozen=True)
class Recording:
    """The slow measurements of one clip: face expressions [T,478,3] at `fps`, speech samples [N] (16 kHz), phones."""

    name: str
    fps: float
    expression: np.ndarray
    samples: np.ndarray
    phones: list[Phone]


def record_clip(video: str | Path, audio: str | Path | None = None) -> Recording:
    """Track the face in `video`, read its speech (or `audio`'s) and recognise the phones, as `speak` would
    (stretch by stretch, cut where `speak` cuts)."""
    from talkhead.drivers.audio import recognize_in_stretches
    from talkhead.drivers.video import motion_from_video
    from talkhead.io.audio import load_audio

    motion = motion_from_video(video).motion
    samples = load_audio(audio or video, SAMPLE_RATE)
    return Recording(Path(video).stem, motion.fps, motion.expression, samples, recognize_in_stretches(samples))


def load_clip(spec: str, config: FeatureConfig = FeatureConfig()) -> ClipData:
    """'video.mp4' or 'video.mp4=speech.wav' → ClipData."""
    video, _, audio = spec.partition("=")
    r = record_clip(video, audio or None)
    return clip_data(r.name, r.expression, r.fps, r.samples, r.phones, config)


def main(argv: Sequence[str] | None = None) -> int:
    from talkhead.weights import write_safetensors

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("clips", nargs="+", help="video.mp4 or video.mp4=speech.wav")
    parser.add_argument("-o", "--output", type=Path, required=True)
    parser.add_argument("--seed", type=int, default=0, help="first network's random seed")
    args = parser.parse_args(argv)
    clips = []
    for spec in args.clips:
        clips.append(load_clip(spec))
        print(f"{clips[-1].name}: {len(clips[-1].gap)} frames", file=sys.stderr)
    write_safetensors(args.output, *fit(clips, seed=args.seed).to_tensors())
    print(f"wrote {args.output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
