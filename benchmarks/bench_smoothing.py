#!/usr/bin/env python
"""How much jitter the tracking's One-Euro smoothing removes, on real driving clips. Run by hand.

    .venv/bin/python benchmarks/bench_smoothing.py [clip.mp4 ...]

For each clip: face landmarks tracked per frame, then smoothed as `animate`
does. Jitter = mean absolute second difference (frame to frame acceleration)
of the stable (skull) points and of the lip points, in units of the outer eye
corner distance; lag = the shift (frames) that best aligns smoothed and raw
mouth opening; kept = how much of the mouth opening's variation survives.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from talkhead.drivers.video import TRACK_SIDE, track_landmarks
from talkhead.face.landmarks import FaceLandmarker
from talkhead.face.pose import STABLE
from talkhead.face.regions import LIPS
from talkhead.io.video import iter_frames, probe_video
from talkhead.motion import bridge_gaps, smooth_landmarks

MEDIA = Path(__file__).resolve().parents[2] / "shared" / "media"
DEFAULT = ["driving/LivePortrait__d6.mp4", "driving/styletalk__feifeili_clip1.mp4",
           "talking_av/SadTalker__WDA_KatieHill_000.mp4"]


def jitter(points: np.ndarray, ids: np.ndarray, unit: float) -> float:
    return float(np.abs(np.diff(points[:, ids, :2], n=2, axis=0)).mean() / unit)


def lag(raw: np.ndarray, smooth: np.ndarray) -> int:
    a, b = raw - raw.mean(), smooth - smooth.mean()
    shifts = range(-5, 6)
    return max(shifts, key=lambda s: float(np.dot(np.roll(b, s)[10:-10], a[10:-10])))


def main() -> None:
    clips = [Path(c) for c in sys.argv[1:]] or [MEDIA / c for c in DEFAULT]
    print("| clip | frames | stable jitter raw → smoothed | lip jitter raw → smoothed | mouth lag (frames) "
          "| mouth opening kept (std ratio) |")
    print("|---|---:|---:|---:|---:|---:|")
    with FaceLandmarker() as landmarker:
        for clip in clips:
            fps = probe_video(clip).fps
            raw, found = track_landmarks(iter_frames(clip, max_seconds=10, max_side=TRACK_SIDE), landmarker)
            raw = bridge_gaps(raw, found)
            smooth = smooth_landmarks(raw, fps)
            unit = float(np.median(np.linalg.norm(raw[:, 33, :2] - raw[:, 263, :2], axis=1)))
            gap = lambda p: np.linalg.norm(p[:, 13, :2] - p[:, 14, :2], axis=1)  # noqa: E731
            print(f"| {clip.name} | {len(raw)} | {jitter(raw, STABLE, unit):.4f} → {jitter(smooth, STABLE, unit):.4f}"
                  f" | {jitter(raw, LIPS, unit):.4f} → {jitter(smooth, LIPS, unit):.4f} | {lag(gap(raw), gap(smooth))}"
                  f" | {gap(smooth).std() / gap(raw).std():.2f} |")


if __name__ == "__main__":
    main()
