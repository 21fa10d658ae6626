"""Fit the lip-sync model on real talking clips.

    python -m talkhead.train.lipsync -o weights/lipsync.safetensors clip.mp4 [video.mp4=speech.wav ...]

Each clip is a video with its own speech (its audio track, or a separate
file after `=`). The face is tracked with mediapipe; the inner-lip gap of
each frame (canonical units) is the target, the speech features at the
frame's time the input. Phones come from recognition (no transcripts), as
they do when `speak` runs without --text.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from talkhead.face.regions import MIRROR, MOUTH_CORNERS, PARTS
from talkhead.models.lipsync import LipsyncModel
from talkhead.motion import face_openings
from talkhead.speech.features import FeatureConfig, lipsync_features
from talkhead.speech.phones import SAMPLE_RATE, Phone
from talkhead.speech.transcribe import phones_without_transcript

RIDGE = 10_000.0  # regularisation, chosen by leave-one-clip-out correlation (benchmarks/bench_speak.py)


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


def fit(clips: Sequence[ClipData], ridge: float = RIDGE, config: FeatureConfig = FeatureConfig()) -> LipsyncModel:
    """Ridge regression from features to each clip's standardised lip gap, plus the measured mouth shapes."""
    x = np.concatenate([c.features for c in clips]).astype(np.float64)
    y = np.concatenate([_standard(c.gap) for c in clips]).astype(np.float64)
    mean, scale = x.mean(0), x.std(0) + 1e-6
    xn = (x - mean) / scale
    weights = np.linalg.solve(xn.T @ xn + ridge * np.eye(xn.shape[1]), xn.T @ (y - y.mean()))
    # Ridge predictions swing less than the truth: scale them back up to a typical speaker's range.
    spread = np.mean([c.gap.std() for c in clips]) / max(float((xn @ weights).std()), 1e-6)
    open_shape, wide_shape = mouth_shapes([c.expression for c in clips])
    return LipsyncModel(config, mean.astype(np.float32), scale.astype(np.float32), weights.astype(np.float32),
                        float(y.mean()), float(np.mean([c.gap.mean() for c in clips])), float(spread),
                        open_shape, wide_shape, trained_on=",".join(c.name for c in clips))


@dataclass(frozen=True)
class Recording:
    """The slow measurements of one clip: face expressions [T,478,3] at `fps`, speech samples [N] (16 kHz), phones."""

    name: str
    fps: float
    expression: np.ndarray
    samples: np.ndarray
    phones: list[Phone]


def record_clip(video: str | Path, audio: str | Path | None = None) -> Recording:
    """Track the face in `video`, read its speech (or `audio`'s) and recognise the phones, as `speak` would."""
    from talkhead.drivers.video import motion_from_video
    from talkhead.io.audio import load_audio

    motion = motion_from_video(video).motion
    samples = load_audio(audio or video, SAMPLE_RATE)
    return Recording(Path(video).stem, motion.fps, motion.expression, samples, phones_without_transcript(samples))


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
    parser.add_argument("--ridge", type=float, default=RIDGE)
    args = parser.parse_args(argv)
    clips = []
    for spec in args.clips:
        clips.append(load_clip(spec))
        print(f"{clips[-1].name}: {len(clips[-1].gap)} frames", file=sys.stderr)
    write_safetensors(args.output, *fit(clips, args.ridge).to_tensors())
    print(f"wrote {args.output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
