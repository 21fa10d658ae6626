#!/usr/bin/env python
"""Lip-sync quality and speed of `talkhead speak`. Run by hand, not a test.

    .venv/bin/python benchmarks/bench_speak.py [--size 256] [--clips NAME,...] [--cache DIR]

For each talking clip with audio in ../shared/media/talking_av: the clip's
first frame is the portrait, the clip's own audio the speech (no
transcript). The output's mouth opening (inner-lip gap over outer
eye-corner distance, measured with mediapipe on every frame at 25 fps) is
correlated with the real clip's; reported at lag 0, the best of lags -1..1,
and the lag (frames, -8..8) that maximises it (positive: ours is late).

Honesty: the lip-sync model is a regression fitted on real clips, some of
which are these. Each clip is therefore spoken by a model refitted
*without that clip* (leave-one-clip-out); the shipped model, fitted on all
training clips, is never scored on its own training data.

Baseline: a loudness-only mouth (opening = frame loudness in dB) correlated
the same way. Speed: output frames per second of the whole `speak` call
(audio analysis included) beside a plain ffmpeg re-encode of the same clip.
Prints a Markdown report and, last, one JSON line.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "media"
sys.path.insert(0, str(ROOT))

from talkhead.face.landmarks import FaceLandmarker, FaceTracker  # noqa: E402
from talkhead.io.audio import load_audio  # noqa: E402
from talkhead.io.video import iter_frames  # noqa: E402
from talkhead.speech.phones import SAMPLE_RATE  # noqa: E402
from talkhead.speech.prosody import frame_energy_db  # noqa: E402

FPS = 25.0
EVAL = ["PCAVS__681100216", "PCAVS__741400104", "PCAVS__741400163", "SadTalker__WDA_AlexandriaOcasioCortez_000",
        "SadTalker__WDA_KatieHill_000", "videoretalking__1", "videoretalking__2", "videoretalking__3",
        "EDTalk__pose_source2"]
NOT_TRAINED = {"EDTalk__pose_source2"}  # its mouth barely follows its audio; scored, never trained on
EXTRA_TRAIN = [  # talking clips outside talking_av: (video, separate speech or None)
    ("driving/styletalk__Obama_clip1.mp4", "speech/styletalk__Obama_clip1.wav"),
    ("driving/styletalk__andrew_clip_1.mp4", "speech/styletalk__andrew_clip_1.wav"),
    ("driving/styletalk__feifeili_clip1.mp4", "speech/styletalk__feifeili_clip1.wav"),
    ("driving/LivePortrait__d6.mp4", None), ("driving/LivePortrait__d10.mp4", None),
    ("driving/LivePortrait__d11.mp4", None),
]
MAX_LAG = 8


def mouth_ratio(video: Path) -> np.ndarray:
    """float [T]: inner-lip gap over outer eye-corner distance per frame at 25 fps (nan where no face)."""
    out = []
    with FaceLandmarker() as lm:
        track = FaceTracker(lm)
        for frame in iter_frames(video, fps=FPS, max_side=720):
            p = track(frame)
            out.append(np.nan if p is None else
                       np.linalg.norm(p[13, :2] - p[14, :2]) / np.linalg.norm(p[33, :2] - p[263, :2]))
    return np.array(out)


def correlations(ours: np.ndarray, real: np.ndarray) -> dict[int, float]:
    """Pearson r of ours[t+lag] with real[t] for lag in -MAX_LAG..MAX_LAG (frames with both measured)."""
    n = min(len(ours), len(real))
    out = {}
    for lag in range(-MAX_LAG, MAX_LAG + 1):
        a = ours[max(lag, 0):n + min(lag, 0)]
        b = real[max(-lag, 0):n - max(lag, 0)]
        ok = np.isfinite(a) & np.isfinite(b)
        out[lag] = float(np.corrcoef(a[ok], b[ok])[0, 1]) if ok.sum() > 10 else float("nan")
    return out


def summary(r: dict[int, float]) -> tuple[float, float, int]:
    best = max(r, key=lambda k: r[k])
    return r[0], max(r[-1], r[0], r[1]), best


def loudness_mouth(clip: Path, frames: int) -> np.ndarray:
    """float [frames]: frame loudness (dB) at 25 fps, the loudness-only baseline's mouth."""
    energy = frame_energy_db(load_audio(clip, SAMPLE_RATE))  # 100 per second
    index = np.clip(((np.arange(frames) + 0.5) / FPS * 100).astype(int), 0, len(energy) - 1)
    return energy[index]


def training_clips(cache: Path) -> dict[str, object]:
    """ClipData for every training clip; the slow parts (tracking, phone recognition) cached as npz."""
    from talkhead.speech.phones import Phone
    from talkhead.train.lipsync import clip_data, record_clip

    specs = {Path(v).stem: (SHARED / v, SHARED / a if a else None) for v, a in EXTRA_TRAIN}
    specs.update({n: (SHARED / "talking_av" / f"{n}.mp4", None) for n in EVAL if n not in NOT_TRAINED})
    cache.mkdir(parents=True, exist_ok=True)
    clips = {}
    for name, (video, audio) in specs.items():
        path = cache / f"{name}.npz"
        if not path.exists():
            r = record_clip(video, audio)
            np.savez(path, fps=r.fps, expression=r.expression, samples=r.samples,
                     labels=np.array([p.label for p in r.phones]), starts=[p.start for p in r.phones],
                     ends=[p.end for p in r.phones])
        d = np.load(path)
        phones = [Phone(str(lab), float(a), float(b)) for lab, a, b in zip(d["labels"], d["starts"], d["ends"])]
        clips[name] = clip_data(name, d["expression"], float(d["fps"]), d["samples"], phones)
    return clips


def first_frame(clip: Path, out: Path) -> Path:
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(clip), "-frames:v", "1", str(out)], check=True)
    return out


def ffmpeg_fps(clip: Path, tmp: Path) -> float:
    start = time.perf_counter()
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(clip), "-c:v", "libx264", "-preset", "veryfast",
                    "-c:a", "aac", str(tmp / "ref.mp4")], check=True)
    frames = len(list(iter_frames(clip)))
    return frames / (time.perf_counter() - start)


def main() -> int:
    import talkhead
    from talkhead.train.lipsync import fit
    from talkhead.weights import write_safetensors

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--clips", default=",".join(EVAL))
    ap.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "talkhead-bench-speak")
    ap.add_argument("--keep", type=Path, help="keep the rendered videos in this folder")
    args = ap.parse_args()
    args.cache.mkdir(parents=True, exist_ok=True)
    train = training_clips(args.cache)
    rows = []
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        for name in args.clips.split(","):
            clip = SHARED / "talking_av" / f"{name}.mp4"
            weights = tmp / f"loo-{name}.safetensors"
            write_safetensors(weights, *fit([c for n, c in train.items() if n != name]).to_tensors())
            out = (args.keep or tmp) / f"speak-{name}.mp4"
            portrait = first_frame(clip, tmp / f"{name}.png")
            options = talkhead.SpeakOptions(size=args.size, lipsync=str(weights))
            result = talkhead.speak(portrait, clip, out, options)
            real, ours = mouth_ratio(clip), mouth_ratio(out)
            r = summary(correlations(ours, real))
            base = summary(correlations(loudness_mouth(clip, len(real)), real))
            rows.append({"clip": name, "r0": r[0], "r1": r[1], "best_lag": r[2], "loud_r0": base[0],
                         "loud_r1": base[1], "fps": result.frames / result.seconds,
                         "analysis_x_realtime": result.analysis_seconds / result.duration,
                         "ffmpeg_fps": ffmpeg_fps(clip, tmp), "frames": result.frames})
            print(f"{name}: r0 {r[0]:.2f} r±1 {r[1]:.2f} lag {r[2]} | loudness {base[0]:.2f}/{base[1]:.2f} | "
                  f"{rows[-1]['fps']:.1f} fps", file=sys.stderr)
    print("| clip | r (lag 0) | r (best of ±1) | best lag | loudness r (0) | loudness r (±1) | speak fps | "
          "analysis × real time | ffmpeg fps |")
    print("|---|---|---|---|---|---|---|---|---|")
    for w in rows:
        print(f"| {w['clip']} | {w['r0']:.2f} | {w['r1']:.2f} | {w['best_lag']:+d} | {w['loud_r0']:.2f} | "
              f"{w['loud_r1']:.2f} | {w['fps']:.1f} | {w['analysis_x_realtime']:.2f} | {w['ffmpeg_fps']:.0f} |")
    mean = {k: float(np.mean([w[k] for w in rows])) for k in ("r0", "r1", "loud_r0", "loud_r1")}
    trained = [w for w in rows if w["clip"] not in NOT_TRAINED]
    mean_trained = {k: float(np.mean([w[k] for w in trained])) for k in ("r0", "r1")} if trained else {}
    fps = statistics.median(w["fps"] for w in rows)
    print(f"\nmean r: lag 0 {mean['r0']:.3f}, best of ±1 {mean['r1']:.3f} (loudness-only: {mean['loud_r0']:.3f}, "
          f"{mean['loud_r1']:.3f}); without EDTalk__pose_source2: {mean_trained}; median speed {fps:.1f} fps "
          f"at --size {args.size}")
    print(json.dumps({"size": args.size, "mean": mean, "mean_without_edtalk": mean_trained, "median_fps": fps,
                      "rows": rows}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
