#!/usr/bin/env python
"""Lip-sync quality and speed of `talkhead speak`. Run by hand, not a test.

    .venv/bin/python benchmarks/bench_speak.py [--size 256] [--clips NAME,...] [--drivers phonetic,frond]
        [--pose natural] [--cache DIR]

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

Two speech drivers are measured (`--drivers`): the phonetic one (visemes
and the ridge lip-sync model) and FROND's motion estimator (trained per
clip the same leave-one-clip-out way, `--frond-steps` steps). Both render
with the analytic engine, so only the motion differs. Smoothness: the mean
frame-to-frame acceleration of the lip landmarks (|p[t+1] - 2 p[t] + p[t-1]|,
over outer eye-corner distance, mediapipe on the output), beside the real
clip's; lower is smoother, and a mouth much smoother than the real one is
a mouth that moves too little.

Where the loss is: each driver's own per-frame mouth (the lip gap it asks
for, before any rendering) is correlated with the real clip the same way
("track r"); the gap between that and the rendered r is what rendering
our face and measuring it again with mediapipe cost. `--pose still`
renders without head motion, to see how much of that the moving head costs.

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


def mouth_measures(video: Path) -> tuple[np.ndarray, float]:
    """(float [T]: inner-lip gap over outer eye-corner distance per frame at 25 fps, nan where no face;
    mean lip-landmark acceleration per frame over the same distance)."""
    from talkhead.face.regions import LIPS

    ratio, lips = [], []
    with FaceLandmarker() as lm:
        track = FaceTracker(lm)
        for frame in iter_frames(video, fps=FPS, max_side=720):
            p = track(frame)
            eyes = np.nan if p is None else np.linalg.norm(p[33, :2] - p[263, :2])
            ratio.append(np.nan if p is None else np.linalg.norm(p[13, :2] - p[14, :2]) / eyes)
            lips.append(np.full((len(LIPS), 2), np.nan) if p is None else p[LIPS, :2] / eyes)
    lips = np.array(lips)
    accel = np.linalg.norm(lips[2:] - 2 * lips[1:-1] + lips[:-2], axis=-1).mean(-1)
    return np.array(ratio), float(np.nanmean(accel))


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


def recordings(cache: Path) -> dict[str, object]:
    """Recording (tracked face, speech, recognised phones) of every training clip, cached in `cache`."""
    from talkhead.train.frond_data import cached_recording

    specs = {Path(v).stem: (SHARED / v, SHARED / a if a else None) for v, a in EXTRA_TRAIN}
    specs.update({n: (SHARED / "talking_av" / f"{n}.mp4", None) for n in EVAL if n not in NOT_TRAINED})
    return {name: cached_recording(video, audio, cache) for name, (video, audio) in specs.items()}


def lipsync_fold(recs: dict, leave_out: str, folder: Path) -> Path:
    """A lip-sync model fitted without `leave_out`, written into `folder`."""
    from talkhead.train.lipsync import clip_data, fit
    from talkhead.weights import write_safetensors

    clips = [clip_data(n, r.expression, r.fps, r.samples, r.phones) for n, r in recs.items() if n != leave_out]
    weights = folder / f"lipsync-{leave_out}.safetensors"
    write_safetensors(weights, *fit(clips).to_tensors())
    return weights


def frond_fold(recs: dict, leave_out: str, folder: Path, steps: int) -> Path:
    """FROND's motion stage trained without `leave_out`, written into `folder`."""
    from talkhead.models.frond import Frond
    from talkhead.train.frond import fit_motion
    from talkhead.train.frond_data import motion_clip
    from talkhead.weights import save_frond

    model = Frond()
    fit_motion(model, [motion_clip(r) for n, r in recs.items() if n != leave_out], steps)
    weights = folder / f"frond-{leave_out}.safetensors"
    save_frond(weights, model, {"trained": "motion"})
    return weights


def driver_track(clip: Path, options, lipsync: Path, frond: Path | None) -> np.ndarray:
    """float [T]: the mouth opening (canonical lip gap) the driver asks for at 25 fps, as `speak` computes it."""
    from talkhead.drivers.audio import analyse_speech
    from talkhead.io.audio import iter_audio
    from talkhead.weights import load_frond, load_lipsync

    model = load_frond(frond) if frond else None
    track = analyse_speech(iter_audio(clip, SAMPLE_RATE), FPS, load_lipsync(lipsync), None, options.pose,
                           options.seed, frond=model)
    return track.mouth.opening


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

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--clips", default=",".join(EVAL))
    ap.add_argument("--drivers", default="phonetic,frond")
    ap.add_argument("--frond-steps", type=int, default=400)
    ap.add_argument("--pose", default="natural", help="head motion while speaking: still, natural or lively")
    ap.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "talkhead-bench-speak")
    ap.add_argument("--keep", type=Path, help="keep the rendered videos in this folder")
    args = ap.parse_args()
    args.cache.mkdir(parents=True, exist_ok=True)
    if args.keep:
        args.keep.mkdir(parents=True, exist_ok=True)
    recs = recordings(args.cache)
    drivers = args.drivers.split(",")
    if not set(drivers) <= {"phonetic", "frond"}:
        ap.error("--drivers: a comma-separated list of phonetic and frond")
    rows = []
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        for name in args.clips.split(","):
            clip = SHARED / "talking_av" / f"{name}.mp4"
            portrait = first_frame(clip, tmp / f"{name}.png")
            real, real_accel = mouth_measures(clip)
            base = summary(correlations(loudness_mouth(clip, len(real)), real))
            row = {"clip": name, "loud_r0": base[0], "loud_r1": base[1], "real_accel": real_accel,
                   "ffmpeg_fps": ffmpeg_fps(clip, tmp)}
            lipsync = lipsync_fold(recs, name, tmp)   # the phonetic model; the FROND driver needs it too
            frond = frond_fold(recs, name, tmp, args.frond_steps) if "frond" in drivers else None
            for driver in drivers:
                own = frond if driver == "frond" else None
                options = talkhead.SpeakOptions(size=args.size, driver=driver, lipsync=str(lipsync),
                                                frond=str(own) if own else None, pose=args.pose)
                out = (args.keep or tmp) / f"speak-{driver}-{name}.mp4"
                result = talkhead.speak(portrait, clip, out, options)
                ours, accel = mouth_measures(out)
                r = summary(correlations(ours, real))
                asked = driver_track(clip, options, lipsync, own)
                track = summary(correlations(asked, real))
                row[driver] = {"r0": r[0], "r1": r[1], "best_lag": r[2], "accel": accel,
                               "track_r0": track[0], "track_r1": track[1],
                               "fps": result.frames / result.seconds,
                               "analysis_x_realtime": result.analysis_seconds / result.duration}
                print(f"{name} [{driver}]: r0 {r[0]:.2f} r±1 {r[1]:.2f} lag {r[2]} (track r±1 {track[1]:.2f}) "
                      f"accel {accel:.4f} "
                      f"(real {real_accel:.4f}) | {row[driver]['fps']:.1f} fps", file=sys.stderr)
            rows.append(row)
    report(rows, drivers, args.size, args.pose)
    return 0


def report(rows: list[dict], drivers: list[str], size: int, pose: str) -> None:
    head = "| clip | " + " | ".join(f"{d} r (0) | {d} r (±1) | {d} track r (±1) | {d} lag | {d} accel"
                                    for d in drivers)
    print(head + " | real accel | loudness r (0) | loudness r (±1) |")
    print("|---" * (2 + 5 * len(drivers) + 2) + "|")
    for w in rows:
        cells = " | ".join(f"{w[d]['r0']:.2f} | {w[d]['r1']:.2f} | {w[d]['track_r1']:.2f} | {w[d]['best_lag']:+d} | "
                           f"{w[d]['accel']:.4f}" for d in drivers)
        print(f"| {w['clip']} | {cells} | {w['real_accel']:.4f} | {w['loud_r0']:.2f} | {w['loud_r1']:.2f} |")
    summary_ = {}
    for group, chosen in (("all", rows), ("without_edtalk", [w for w in rows if w["clip"] not in NOT_TRAINED])):
        if not chosen:
            continue
        means = {d: {k: float(np.mean([w[d][k] for w in chosen]))
                     for k in ("r0", "r1", "track_r0", "track_r1", "accel", "fps")}
                 for d in drivers}
        means["real_accel"] = float(np.mean([w["real_accel"] for w in chosen]))
        means["loudness"] = {k: float(np.mean([w[k] for w in chosen])) for k in ("loud_r0", "loud_r1")}
        summary_[group] = means
    for d in drivers:
        m = summary_["all"][d]
        print(f"\n{d}: mean r lag 0 {m['r0']:.3f}, best of ±1 {m['r1']:.3f} (its own track {m['track_r1']:.3f}), "
              f"accel {m['accel']:.4f} "
              f"(real {summary_['all']['real_accel']:.4f}); median speed "
              f"{statistics.median(w[d]['fps'] for w in rows):.1f} fps at --size {size}")
    print(json.dumps({"size": size, "pose": pose, "summary": summary_, "rows": rows}))


if __name__ == "__main__":
    raise SystemExit(main())
