#!/usr/bin/env python
"""Quality and speed of the renderer engines by self-reenactment. Run by hand, not a test.

    .venv/bin/python benchmarks/bench_engines.py [--engines analytic,codebook,frond] [--clips REL,...]
        [--max-seconds S] [--size 256] [--device auto] [--weights F] [--frond-weights F] [--keep DIR]
        [--save-frames DIR]

Self-reenactment: each validation clip's first frame is the portrait and the
clip itself the driving video, so the real clip is the answer the engine
should give. For every engine, `talkhead.animate(..., AnimateOptions(engine,
size, crop_only=True, reference="first"))` renders the crop, and each output
frame t is compared with the same crop of real frame t: the box is located on
the first frame exactly as the library does (`find_portrait_face` then
`face.crop.cut`), the real clip read at the output's frame rate. Frame 0, the
portrait itself, is left out. Metrics, averaged over the frames (mediapipe
landmarks measured on the real crops and, for the landmark metrics, on ours):

  face PSNR / SSIM   inside the filled face-oval polygon of the real crop's
                     landmarks. PSNR over the masked pixels (all 3 channels);
                     SSIM is the masked mean of the SSIM map (skimage, Gaussian
                     window sigma 1.5, RGB via channel_axis) computed on the
                     mask's bounding box grown by 8 px.
  mouth PSNR / SSIM  on the bounding box of the real crop's lip landmarks,
                     grown by 25% of its width / height on each side (plain
                     mean SSIM over the box).
  landmark dist %    mean 2D distance over the 478 points, ours vs real, over
                     the real crop's outer eye-corner distance (33-263).
  mouth r, eye r     Pearson r over time of the mouth opening (inner-lip gap
                     13-14) and of the eye opening (mean lid gap 159-145,
                     386-374), each over its own video's 33-263 distance.
  fps                output frames / wall seconds of the whole animate() call
                     (face search and driving motion extraction included),
                     beside a plain ffmpeg re-encode of the same clip.

Clips: the "validation" list (paths under ../shared/media) in the metadata of
weights/codebook.safetensors when that file has one, else --clips (the
shipped frond model was trained without these clips too). Engines not
in talkhead.options.ENGINES are skipped with a note. --save-frames
writes real | engine ... side-by-side PNGs at 1/4, 1/2 and 3/4 of each clip.
Prints a Markdown report and, last, one JSON line; progress on stderr.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "media"
CODEBOOK = ROOT / "weights" / "codebook.safetensors"
sys.path.insert(0, str(ROOT))

import talkhead  # noqa: E402
from talkhead.api import find_portrait_face  # noqa: E402
from talkhead.errors import TalkheadError  # noqa: E402
from talkhead.face.crop import cut  # noqa: E402
from talkhead.face.landmarks import FaceLandmarker, FaceTracker  # noqa: E402
from talkhead.face.regions import EYE_LIDS, LIP_GAP, face_oval_mask, mouth_box  # noqa: E402
from talkhead.io.image import load_image, save_image  # noqa: E402
from talkhead.io.video import iter_frames  # noqa: E402

DEFAULT_CLIPS = ["driving/LivePortrait__d10.mp4", "driving/dreamtalk__W009_front_happy_level3_001.mp4",
                 "talking_av/PCAVS__681100216.mp4", "talking_av/SadTalker__WDA_KatieHill_000.mp4"]
EYE_CORNERS = (33, 263)   # outer corners: the face's scale
FACE_PAD = 8              # pixels around the face mask's box for the SSIM window
SHOW_AT = (0.25, 0.5, 0.75)  # where in each clip the side-by-side frames are taken
ALIGNED_DB = 30.0          # frame 0 of ours vs real below this: warn that the crops do not line up
METRICS = ("face_psnr", "face_ssim", "mouth_psnr", "mouth_ssim", "landmark_pct", "mouth_r", "eye_r", "fps")


@dataclass
class Reference:
    """One clip's real crops and their measurements (frames at the output's fps)."""

    name: str
    crops: list[np.ndarray]       # uint8 [S,S,3] RGB each
    landmarks: list[np.ndarray | None]  # float32 [478,3] crop pixels, None where no face


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def validation_clips(fallback: str, weights: Path) -> tuple[list[str], str]:
    """Clip paths (relative to ../shared/media) and where the list came from."""
    if weights.is_file():
        from safetensors import safe_open

        with safe_open(str(weights), framework="numpy") as f:
            listed = (f.metadata() or {}).get("validation")
        if listed:
            return list(json.loads(listed)), f"{weights.name} metadata"
    return [c for c in fallback.split(",") if c], "--clips"


def usable_engines(names: str, size: int) -> list[str]:
    """The engines of `names` that the library has now (a note on stderr for each one it lacks)."""
    from talkhead.options import ENGINES

    found = []
    for name in (n.strip() for n in names.split(",") if n.strip()):
        if name not in ENGINES:
            say(f"skip engine {name!r}: not in talkhead.options.ENGINES ({', '.join(ENGINES)}) yet")
            continue
        try:
            talkhead.AnimateOptions(engine=name, size=size)
        except TalkheadError as exc:
            say(f"skip engine {name!r}: AnimateOptions refuses it ({exc})")
            continue
        found.append(name)
    return found


def first_frame(clip: Path, out: Path) -> Path:
    """The clip's first frame (as iter_frames decodes it) saved as a PNG."""
    save_image(out, next(iter(iter_frames(clip))))
    return out


def real_crops(clip: Path, portrait_png: Path, size: int, fps: float, max_seconds: float | None) -> list[np.ndarray]:
    """The library's crop of every real frame: box found on the first frame, frames read at `fps`."""
    portrait = find_portrait_face(load_image(portrait_png), 0, str(portrait_png), 1920)
    h, w = portrait.image.shape[:2]  # find_portrait_face may have shrunk the portrait: shrink frames alike
    crops = []
    for frame in iter_frames(clip, fps=fps, max_seconds=max_seconds):
        if frame.shape[:2] != (h, w):
            frame = cv2.resize(frame, (w, h), interpolation=cv2.INTER_AREA)
        crops.append(cut(frame, portrait.box, size))
    return crops


def track(frames) -> list[np.ndarray | None]:
    """Mediapipe landmarks float32 [478,3] of each frame (None where no face)."""
    with FaceLandmarker() as landmarker:
        tracker = FaceTracker(landmarker)
        return [tracker(f) for f in frames]


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR (dB, peak 255) of two equally shaped uint8 arrays."""
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float(10 * np.log10(255.0 ** 2 / max(mse, 1e-10)))


def ssim_map(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """float [H,W] SSIM map of two uint8 [H,W,3] images (Gaussian window, mean over channels)."""
    from skimage.metrics import structural_similarity

    _, full = structural_similarity(a, b, data_range=255, channel_axis=2, gaussian_weights=True, sigma=1.5,
                                    use_sample_covariance=False, full=True)
    return full.mean(axis=2)


def image_metrics(ours: np.ndarray, real: np.ndarray, landmarks: np.ndarray) -> dict[str, float]:
    """Face and mouth PSNR / SSIM of `ours` against `real` (uint8 [S,S,3]), regions from real landmarks."""
    size = real.shape[0]
    mask = face_oval_mask(landmarks, size)
    ys, xs = np.nonzero(mask)
    y0, y1 = max(ys.min() - FACE_PAD, 0), min(ys.max() + 1 + FACE_PAD, size)
    x0, x1 = max(xs.min() - FACE_PAD, 0), min(xs.max() + 1 + FACE_PAD, size)
    face_ssim = ssim_map(ours[y0:y1, x0:x1], real[y0:y1, x0:x1])[mask[y0:y1, x0:x1]].mean()
    mx0, my0, mx1, my1 = mouth_box(landmarks, size)
    mouth_ours, mouth_real = ours[my0:my1, mx0:mx1], real[my0:my1, mx0:mx1]
    return {"face_psnr": psnr(ours[mask], real[mask]), "face_ssim": float(face_ssim),
            "mouth_psnr": psnr(mouth_ours, mouth_real), "mouth_ssim": float(ssim_map(mouth_ours, mouth_real).mean())}


def openings(landmarks: np.ndarray | None) -> tuple[float, float]:
    """(mouth, eye) opening over the eye-corner distance; nan without a face."""
    if landmarks is None:
        return np.nan, np.nan
    p = landmarks[:, :2]
    scale = np.linalg.norm(p[EYE_CORNERS[0]] - p[EYE_CORNERS[1]])
    mouth = np.linalg.norm(p[LIP_GAP[0]] - p[LIP_GAP[1]])
    eye = np.mean([np.linalg.norm(p[a] - p[b]) for a, b in EYE_LIDS])
    return float(mouth / scale), float(eye / scale)


def landmark_pct(ours: np.ndarray, real: np.ndarray) -> float:
    """Mean 2D landmark distance over the real outer eye-corner distance, percent."""
    scale = np.linalg.norm(real[EYE_CORNERS[0], :2] - real[EYE_CORNERS[1], :2])
    return float(100 * np.linalg.norm(ours[:, :2] - real[:, :2], axis=1).mean() / scale)


def pearson(a: list[float], b: list[float]) -> float:
    """Pearson r over the frames where both are measured (nan if under 10 or flat)."""
    x, y = np.array(a), np.array(b)
    ok = np.isfinite(x) & np.isfinite(y)
    if ok.sum() < 10 or np.std(x[ok]) == 0 or np.std(y[ok]) == 0:
        return float("nan")
    return float(np.corrcoef(x[ok], y[ok])[0, 1])


def score(video: Path, ref: Reference, shown: dict[int, np.ndarray]) -> dict[str, float]:
    """Metrics of a rendered crop video against the real crops; frames at `shown`'s keys are stored in it."""
    ours = list(iter_frames(video))
    if len(ours) != len(ref.crops):
        say(f"  {ref.name}: output has {len(ours)} frames, the real clip {len(ref.crops)}: comparing the first "
            f"{min(len(ours), len(ref.crops))}")
    n = min(len(ours), len(ref.crops))
    per_frame, dist, series = [], [], {"mouth": [], "eye": [], "mouth_real": [], "eye_real": []}
    for t, lm in zip(range(1, n), track(ours[1:n])):
        real_lm = ref.landmarks[t]
        if real_lm is not None:
            per_frame.append(image_metrics(ours[t], ref.crops[t], real_lm))
            if lm is not None:
                dist.append(landmark_pct(lm, real_lm))
        for key, value in zip(("mouth", "eye", "mouth_real", "eye_real"), openings(lm) + openings(real_lm)):
            series[key].append(value)
    for t in shown:
        shown[t] = ours[min(t, len(ours) - 1)]
    aligned = alignment_psnr(ours[0], ref)
    if aligned < ALIGNED_DB:
        say(f"  {ref.name}: output frame 0 is only {aligned:.1f} dB from the real crop 0: crops misaligned?")
    out = {k: float(np.mean([m[k] for m in per_frame])) for k in ("face_psnr", "face_ssim", "mouth_psnr",
                                                                   "mouth_ssim")}
    out.update(landmark_pct=float(np.mean(dist)), mouth_r=pearson(series["mouth"], series["mouth_real"]),
               eye_r=pearson(series["eye"], series["eye_real"]), frames=n, output_frames=len(ours),
               real_frames=len(ref.crops), scored=len(per_frame), landmarked=len(dist), t0_face_psnr=aligned)
    return out


def alignment_psnr(ours: np.ndarray, ref: Reference) -> float:
    """Face PSNR of output frame 0 (the portrait redrawn) against real crop 0: high when the crops line up."""
    if ref.landmarks[0] is None:
        return float("nan")
    mask = face_oval_mask(ref.landmarks[0], ours.shape[0])
    return psnr(ours[mask], ref.crops[0][mask])


def ffmpeg_fps(clip: Path, frames: int, max_seconds: float | None, tmp: Path) -> float:
    """Frames per second of a plain ffmpeg decode + H.264 re-encode of the clip (the reference speed)."""
    cut_to = ["-t", str(max_seconds)] if max_seconds else []
    start = time.perf_counter()
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(clip), *cut_to, "-c:v", "libx264", "-preset",
                    "veryfast", "-c:a", "aac", str(tmp / "ref.mp4")], check=True)
    return frames / (time.perf_counter() - start)


def side_by_side(path: Path, real: np.ndarray, frames: dict[str, np.ndarray]) -> None:
    """Write real | engine ... in a row, each labelled."""
    tiles = []
    for label, image in [("real", real), *frames.items()]:
        tile = np.vstack([np.full((20, image.shape[1], 3), 255, np.uint8), image])
        cv2.putText(tile, label, (4, 15), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
        tiles.append(tile)
    save_image(path, np.hstack(tiles))


def engine_weights(engine: str, args: argparse.Namespace) -> str | None:
    """The weights file given for this engine on the command line (None: the shipped one)."""
    chosen = {"codebook": args.weights, "frond": args.frond_weights}.get(engine)
    return str(chosen) if chosen else None


def run_clip(rel: str, engines: list[str], args: argparse.Namespace, tmp: Path) -> list[dict]:
    """Render the clip with every engine and score each; one row per engine."""
    clip, name = SHARED / rel, Path(rel).stem
    portrait = first_frame(clip, tmp / f"{name}.png")
    ref, rows, shown = None, [], {}
    for engine in engines:
        out = (args.keep or tmp) / f"{name}-{engine}.mp4"
        options = talkhead.AnimateOptions(engine=engine, size=args.size, crop_only=True, reference="first",
                                          device=args.device, max_seconds=args.max_seconds,
                                          weights=engine_weights(engine, args))
        say(f"{name}: animate with {engine}")
        result = talkhead.animate(portrait, clip, out, options)
        if ref is None:  # the real side, once per clip, at the output's frame rate
            crops = real_crops(clip, portrait, args.size, result.fps, args.max_seconds)
            say(f"{name}: {len(crops)} real frames at {result.fps:g} fps, tracking the real crops")
            ref = Reference(name, crops, track(crops))
            picks = {round(f * (len(crops) - 1)) for f in SHOW_AT}
        shown[engine] = dict.fromkeys(picks)
        row = {"clip": rel, "engine": engine, **score(out, ref, shown[engine]),
               "fps": result.frames / result.seconds, "seconds": result.seconds}
        say(f"  {engine}: face {row['face_psnr']:.2f} dB / {row['face_ssim']:.3f}, mouth {row['mouth_psnr']:.2f} dB"
            f" / {row['mouth_ssim']:.3f}, landmarks {row['landmark_pct']:.2f}%, r mouth {row['mouth_r']:.2f} "
            f"eye {row['eye_r']:.2f}, {row['fps']:.1f} fps")
        rows.append(row)
    if rows:
        reference_fps = ffmpeg_fps(clip, len(ref.crops), args.max_seconds, tmp)
        for row in rows:
            row["ffmpeg_fps"] = reference_fps
    if args.save_frames and rows:
        for t in sorted(picks):
            side_by_side(args.save_frames / f"{name}-{t:04d}.png", ref.crops[t],
                         {e: shown[e][t] for e in shown})
    return rows


def mean_rows(rows: list[dict], engines: list[str]) -> dict[str, dict[str, float]]:
    """Per engine, the mean of each metric over its clips (nan-aware)."""
    return {e: {k: float(np.nanmean([r[k] for r in rows if r["engine"] == e])) for k in (*METRICS, "ffmpeg_fps")}
            for e in engines if any(r["engine"] == e for r in rows)}


def print_table(rows: list[dict], means: dict[str, dict[str, float]], args: argparse.Namespace) -> None:
    print(f"Self-reenactment at --size {args.size}" + (f", first {args.max_seconds:g} s" if args.max_seconds else "")
          + "\n")
    print("| engine | clip | face PSNR | face SSIM | mouth PSNR | mouth SSIM | landmark dist % | mouth r | eye r | "
          "fps | ffmpeg fps |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for engine, mean in means.items():
        for r in (*[r for r in rows if r["engine"] == engine], {"clip": "**mean**", **mean}):
            print(f"| {engine} | {Path(r['clip']).stem} | {r['face_psnr']:.2f} | {r['face_ssim']:.3f} | "
                  f"{r['mouth_psnr']:.2f} | {r['mouth_ssim']:.3f} | {r['landmark_pct']:.2f} | {r['mouth_r']:.2f} | "
                  f"{r['eye_r']:.2f} | {r['fps']:.1f} | {r['ffmpeg_fps']:.0f} |")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--engines", default="analytic,codebook,frond", help="comma-separated engine names")
    ap.add_argument("--clips", default=",".join(DEFAULT_CLIPS),
                    help="videos relative to ../shared/media (used unless the codebook weights list some)")
    ap.add_argument("--max-seconds", type=float, help="only the first seconds of each clip (default: all)")
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--weights", type=Path, help="codebook weights to score (default: the shipped file)")
    ap.add_argument("--frond-weights", type=Path, help="frond weights to score (default: the shipped file)")
    ap.add_argument("--keep", type=Path, help="keep the rendered videos in this folder")
    ap.add_argument("--save-frames", type=Path, help="write real | engine side-by-side PNGs in this folder")
    args = ap.parse_args()
    for folder in (args.keep, args.save_frames):
        if folder:
            folder.mkdir(parents=True, exist_ok=True)
    clips, origin = validation_clips(args.clips, args.weights or CODEBOOK)
    engines = usable_engines(args.engines, args.size)
    if not engines:
        say("no engine to run")
        return 1
    say(f"{len(clips)} clips (from {origin}), engines: {', '.join(engines)}")
    start, rows = time.perf_counter(), []
    with tempfile.TemporaryDirectory() as tmpdir:
        for rel in clips:
            rows += run_clip(rel, engines, args, Path(tmpdir))
    means = mean_rows(rows, engines)
    print_table(rows, means, args)
    wall = time.perf_counter() - start
    print(f"\n{len(clips)} clips, {wall:.0f} s wall")
    print(json.dumps({"size": args.size, "max_seconds": args.max_seconds, "clips": clips, "clips_from": origin,
                      "engines": engines, "mean": means, "rows": rows, "wall_seconds": wall}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
