#!/usr/bin/env python
"""End-to-end speed (and optional peak memory) of `talkhead animate`. Run by hand, not a test.

    .venv/bin/python benchmarks/bench_animate.py [--repeats 3] [--memory]
        [--driving PATH] [--portrait PATH|astronaut]

Cuts a 10 s clip of the driving video (native resolution) into a temp dir, then times:
  (a) ffmpeg decode + H.264 encode of the clip (reference),
  (b) talkhead.animate(size=256) and (c) size=512, in this process,
  the CLI once as a subprocess (start-up overhead), and
  a measured stage breakdown (motion extraction vs render / paste-back / encode / other).
--memory adds a 60 s 1920x1080 clip run through the CLI at --size 512 and reports its peak RSS.
Prints a Markdown report and, last, one JSON line.  Timings are wall clock: close other work first.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import cv2
import numpy as np

SHARED = Path(__file__).resolve().parents[2] / "shared" / "media"  # ../shared/media beside the checkout
DRIVING_DEFAULTS = [SHARED / "driving" / n for n in ("LivePortrait__d6.mp4", "LivePortrait__d0.mp4",
                                                      "LivePortrait__d3.mp4")]
PORTRAIT_DEFAULT = SHARED / "portrait" / "float__sam_altman_512x512.jpg"
CLIP_SECONDS = 10.0
MEMORY_SECONDS = 60.0
TARGETS = {"fps256": 30.0, "fps512": 15.0, "peak_mb": 2048.0}
BIN = Path(sys.executable).parent


def run_quiet(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if proc.returncode != 0:
        sys.exit(f"command failed ({proc.returncode}): {' '.join(cmd)}\n{proc.stderr[-2000:]}")
    return proc


def probe(path: Path) -> dict:
    """Width, height, fps and packet count (= frames) of the first video stream."""
    out = run_quiet(["ffprobe", "-v", "error", "-select_streams", "v:0", "-count_packets", "-show_entries",
                     "stream=width,height,avg_frame_rate,nb_read_packets", "-of", "json", str(path)]).stdout
    s = json.loads(out)["streams"][0]
    num, den = (int(x) for x in s["avg_frame_rate"].split("/"))
    return {"width": s["width"], "height": s["height"], "fps": num / den if den else 0.0,
            "frames": int(s["nb_read_packets"])}


def astronaut() -> np.ndarray:
    from skimage import data
    return data.astronaut()  # uint8 [512,512,3] RGB


def synth_driving(path: Path, seconds: float, fps: int = 25) -> None:
    """A clip of the astronaut moving under slow similarity transforms (rotation, scale, shift)."""
    img = astronaut()
    h, w = img.shape[:2]
    cmd = ["ffmpeg", "-y", "-v", "error", "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{w}x{h}",
           "-r", str(fps), "-i", "-", "-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p", str(path)]
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE)
    center = (w * 0.45, h * 0.25)  # near the face
    for k in range(int(seconds * fps)):
        t = k / fps
        m = cv2.getRotationMatrix2D(center, 8 * np.sin(2 * np.pi * t / 3.1), 1 + 0.06 * np.sin(2 * np.pi * t / 2.3))
        m[:, 2] += (12 * np.sin(2 * np.pi * t / 4.0), 8 * np.cos(2 * np.pi * t / 3.7))
        proc.stdin.write(cv2.warpAffine(img, m, (w, h), borderMode=cv2.BORDER_REFLECT).tobytes())
    proc.stdin.close()
    if proc.wait() != 0:
        sys.exit("ffmpeg failed to synthesise the driving clip")


def prepare_inputs(args, tmp: Path) -> tuple[Path, Path, str, str]:
    """(portrait, 10 s clip, portrait name, driving name); all media made inside `tmp`."""
    if args.portrait == "astronaut" or (args.portrait is None and not PORTRAIT_DEFAULT.exists()):
        portrait = tmp / "astronaut.png"
        cv2.imwrite(str(portrait), cv2.cvtColor(astronaut(), cv2.COLOR_RGB2BGR))
        portrait_name = "skimage astronaut"
    else:
        portrait = Path(args.portrait) if args.portrait else PORTRAIT_DEFAULT
        portrait_name = portrait.name
    clip = tmp / "clip10.mp4"
    source = Path(args.driving) if args.driving else next((p for p in DRIVING_DEFAULTS if p.exists()), None)
    if args.driving == "astronaut" or source is None:
        synth_driving(clip, CLIP_SECONDS)
        driving_name = "synthetic astronaut (similarity transforms)"
    else:
        run_quiet(["ffmpeg", "-y", "-v", "error", "-i", str(source), "-t", str(CLIP_SECONDS),
                   "-c:v", "libx264", "-preset", "veryfast", "-c:a", "aac", str(clip)])
        driving_name = source.name
    return portrait, clip, portrait_name, driving_name


def timed_repeats(fn, repeats: int) -> tuple[list[float], object]:
    times, last = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        last = fn()
        times.append(time.perf_counter() - t0)
    return times, last


def bench_ffmpeg(clip: Path, tmp: Path, repeats: int) -> dict:
    out = tmp / "ffmpeg_ref.mp4"
    cmd = ["ffmpeg", "-y", "-v", "error", "-i", str(clip), "-c:v", "libx264", "-preset", "veryfast",
           "-crf", "18", "-an", str(out)]
    times, _ = timed_repeats(lambda: run_quiet(cmd), repeats)
    return summary("ffmpeg decode+encode (reference)", times, probe(out)["frames"])


def bench_library(portrait: Path, clip: Path, tmp: Path, size: int, repeats: int) -> dict:
    import talkhead
    from talkhead.options import AnimateOptions

    out = tmp / f"lib_{size}.mp4"
    times, result = timed_repeats(lambda: talkhead.animate(portrait, clip, out, AnimateOptions(size=size)), repeats)
    row = summary(f"talkhead.animate size={size} (library)", times, result.frames)
    row.update(size=size, out_width=result.width, out_height=result.height, audio=result.audio,
               lost_frames=result.lost_frames, device=result.device)
    return row


def bench_cli(portrait: Path, clip: Path, out: Path, size: int) -> dict:
    """One CLI run as a child; wall time, frames and the child's own peak RSS (wait4)."""
    cmd = [str(BIN / "talkhead"), "animate", str(portrait), str(clip), "--size", str(size),
           "-o", str(out), "--quiet", "--json"]
    t0 = time.perf_counter()
    with tempfile.TemporaryFile("w+") as errfile:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=errfile, text=True)
        stdout = proc.stdout.read()
        # wait4 gives this child's rusage; on Linux its ru_maxrss also covers the child's reaped
        # children (the ffmpeg mux), so it is the peak of the whole run.
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        proc.stdout.close()
        errfile.seek(0)
        stderr = errfile.read()
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        sys.exit(f"CLI failed ({proc.returncode}): {' '.join(cmd)}\n{stderr[-2000:]}")
    result = json.loads(stdout.strip().splitlines()[-1])
    row = summary(f"talkhead CLI size={size} (subprocess)", [wall], result["frames"])
    row.update(size=size, internal_s=result["seconds"], peak_rss_mb=usage.ru_maxrss / 1024)
    return row


def summary(name: str, times: list[float], frames: int) -> dict:
    med = statistics.median(times)
    return {"name": name, "frames": frames, "times_s": [round(t, 3) for t in times], "median_s": med,
            "fps": frames / med if med else 0.0}


@contextmanager
def stage_timers(clock: dict):
    """Time render, paste-back and encode inside talkhead.animate by wrapping them (restored on exit)."""
    import talkhead.api as api
    from talkhead.face.crop import PasteBack

    def add(key: str, t0: float) -> None:
        clock[key] = clock.get(key, 0.0) + time.perf_counter() - t0

    real_make, real_writer, real_apply = api.make_engine, api.VideoWriter, PasteBack.apply

    def make_engine(*a, **kw):
        engine = real_make(*a, **kw)
        render = engine.render

        def timed_render(*ra, **rkw):
            t0 = time.perf_counter()
            try:
                return render(*ra, **rkw)
            finally:
                add("render", t0)
        engine.render = timed_render
        return engine

    class TimedWriter(real_writer):
        def write(self, frame):
            t0 = time.perf_counter()
            try:
                return super().write(frame)
            finally:
                add("encode", t0)

        def close(self):
            t0 = time.perf_counter()
            try:
                return super().close()
            finally:
                add("encode", t0)

    def apply(self, portrait, crop):
        t0 = time.perf_counter()
        try:
            return real_apply(self, portrait, crop)
        finally:
            add("paste", t0)

    api.make_engine, api.VideoWriter, PasteBack.apply = make_engine, TimedWriter, apply
    try:
        yield
    finally:
        api.make_engine, api.VideoWriter, PasteBack.apply = real_make, real_writer, real_apply


def bench_stages(portrait: Path, clip: Path, tmp: Path, size: int) -> dict:
    """One measured run split into: decode alone, motion extraction, then animate on the saved .npz."""
    import talkhead
    from talkhead.drivers.video import TRACK_SIDE, motion_from_video
    from talkhead.io.motionfile import save_motion
    from talkhead.io.video import iter_frames
    from talkhead.options import AnimateOptions

    t0 = time.perf_counter()
    decoded = sum(1 for _ in iter_frames(clip, max_side=TRACK_SIDE))
    decode = time.perf_counter() - t0

    t0 = time.perf_counter()
    measured = motion_from_video(clip)
    motion = time.perf_counter() - t0
    npz = tmp / f"motion_{size}.npz"
    save_motion(npz, measured.motion)

    clock: dict = {}
    with stage_timers(clock):
        t0 = time.perf_counter()
        result = talkhead.animate(portrait, npz, tmp / f"stage_{size}.mp4", AnimateOptions(size=size))
        rest = time.perf_counter() - t0
    parts = {k: clock.get(k, 0.0) for k in ("render", "paste", "encode")}
    parts["other"] = rest - sum(parts.values())
    return {"size": size, "frames": result.frames, "decode_only_s": decode, "decoded_frames": decoded,
            "motion_s": motion, "rest_s": rest, **{f"{k}_s": v for k, v in parts.items()}}


def bench_memory(portrait: Path, clip: Path, tmp: Path) -> dict:
    big = tmp / "clip1080.mp4"
    run_quiet(["ffmpeg", "-y", "-v", "error", "-stream_loop", "-1", "-i", str(clip), "-t", str(MEMORY_SECONDS),
               "-vf", "scale=1920:1080:force_original_aspect_ratio=decrease,pad=1920:1080:(ow-iw)/2:(oh-ih)/2,"
               "setsar=1", "-c:v", "libx264", "-preset", "veryfast", "-c:a", "aac", str(big)])
    info = probe(big)
    row = bench_cli(portrait, big, tmp / "out1080.mp4", 512)
    row["name"] = f"CLI size=512, {MEMORY_SECONDS:g} s {info['width']}x{info['height']} driving"
    row["input"] = info
    return row


def fmt_row(row: dict, ref_fps: float | None, target: str) -> str:
    spread = f"{min(row['times_s']):.2f}–{max(row['times_s']):.2f}" if len(row["times_s"]) > 1 else "—"
    ratio = f"{row['fps'] / ref_fps:.2f}×" if ref_fps else "—"
    return (f"| {row['name']} | {row['frames']} | {row['median_s']:.2f} | {spread} | {row['fps']:.1f} | "
            f"{ratio} | {target} |")


def verdict(value: float, target: float, higher: bool = True) -> str:
    ok = value >= target if higher else value < target
    return "✅" if ok else "❌"


def quiet_native_stderr() -> None:
    """Send native libraries' writes to fd 2 (mediapipe/TFLite log lines) to /dev/null; keep sys.stderr."""
    try:
        sys.stderr.flush()
        sys.stderr = os.fdopen(os.dup(2), "w", buffering=1)
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 2)
        os.close(devnull)
    except (OSError, ValueError):
        pass


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--driving", help="driving video, or 'astronaut' (default: shared LivePortrait__d6.mp4)")
    ap.add_argument("--portrait", help="portrait image, or 'astronaut' (default: shared sam_altman 512x512)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--memory", action="store_true", help="also measure peak RSS on a 60 s 1080p clip")
    ap.add_argument("--no-speed", action="store_true", help="skip the speed runs (with --memory)")
    ap.add_argument("--keep", action="store_true", help="keep the temp dir and print its path")
    args = ap.parse_args()

    quiet_native_stderr()
    import talkhead  # noqa: F401 - import cost is kept out of the timings
    import torch

    tmp = Path(tempfile.mkdtemp(prefix="bench_animate_"))
    try:
        portrait, clip, portrait_name, driving_name = prepare_inputs(args, tmp)
        info = probe(clip)
        print("## talkhead animate benchmark\n")
        print(f"- portrait: {portrait_name}; driving: {driving_name}, cut to {info['frames']} frames "
              f"({info['width']}x{info['height']} @ {info['fps']:g} fps)")
        print(f"- machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPU cores, "
              f"torch {torch.__version__} ({torch.get_num_threads()} threads), load avg "
              f"{', '.join(f'{x:.2f}' for x in os.getloadavg())}; repeats={args.repeats} (median)\n")
        report: dict = {"clip": info, "portrait": portrait_name, "driving": driving_name,
                        "repeats": args.repeats, "cpus": os.cpu_count(), "targets": TARGETS}

        if not args.no_speed:
            ref = bench_ffmpeg(clip, tmp, args.repeats)
            r256 = bench_library(portrait, clip, tmp, 256, args.repeats)
            r512 = bench_library(portrait, clip, tmp, 512, args.repeats)
            cli = bench_cli(portrait, clip, tmp / "cli_256.mp4", 256)
            stages = [bench_stages(portrait, clip, tmp, s) for s in (256, 512)]
            report.update(ffmpeg=ref, lib256=r256, lib512=r512, cli256=cli, stages=stages)

            print("| run | frames | median s | min–max s | fps | vs ffmpeg fps | target |")
            print("|---|---:|---:|---:|---:|---:|---|")
            print(fmt_row(ref, None, "—"))
            print(fmt_row(r256, ref["fps"], f"≥ {TARGETS['fps256']:g} fps {verdict(r256['fps'], TARGETS['fps256'])}"))
            print(fmt_row(r512, ref["fps"], f"≥ {TARGETS['fps512']:g} fps {verdict(r512['fps'], TARGETS['fps512'])}"))
            print(fmt_row(cli, ref["fps"], f"≥ {TARGETS['fps256']:g} fps {verdict(cli['fps'], TARGETS['fps256'])}"))
            overhead = cli["median_s"] - cli["internal_s"]
            print(f"\nCLI start-up overhead: {overhead:.2f} s (wall {cli['median_s']:.2f} s vs "
                  f"{cli['internal_s']:.2f} s inside animate; vs library median {r256['median_s']:.2f} s). "
                  f"Output {r256['out_width']}x{r256['out_height']}, audio muxed: {r256['audio']}, "
                  f"device {r256['device']}.\n")

            print("### Stage breakdown (one run per size; seconds, share of motion + rest)\n")
            print("| size | motion extraction (of which decode) | render | paste-back | encode | other "
                  "| rest total | sum | motion fps | rest fps |")
            print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
            for s in stages:
                total = s["motion_s"] + s["rest_s"]
                pct = lambda v: f"{v:.2f} ({100 * v / total:.0f}%)"  # noqa: E731
                print(f"| {s['size']} | {pct(s['motion_s'])} ({s['decode_only_s']:.2f}) | {pct(s['render_s'])} | "
                      f"{pct(s['paste_s'])} | {pct(s['encode_s'])} | {pct(s['other_s'])} | {pct(s['rest_s'])} | "
                      f"{total:.2f} | {s['frames'] / s['motion_s']:.1f} | {s['frames'] / s['rest_s']:.1f} |")
            print("\nmotion = talkhead.drivers.video.motion_from_video (decode + landmarks + pose fit); "
                  "decode = iter_frames alone at the tracking size; rest = animate on the saved .npz "
                  "(portrait face, retarget, render, paste-back, encode; no audio mux); "
                  "other = rest minus the timed parts.\n")

        if args.memory:
            mem = bench_memory(portrait, clip, tmp)
            report["memory"] = mem
            inp = mem["input"]
            print(f"### Peak memory ({MEMORY_SECONDS:g} s {inp['width']}x{inp['height']} driving, "
                  f"{inp['frames']} frames, CLI --size 512)\n")
            print("| run | frames | wall s | fps | peak RSS MB | target |")
            print("|---|---:|---:|---:|---:|---|")
            print(f"| {mem['name']} | {mem['frames']} | {mem['median_s']:.1f} | {mem['fps']:.1f} | "
                  f"{mem['peak_rss_mb']:.0f} | < {TARGETS['peak_mb']:g} MB "
                  f"{verdict(mem['peak_rss_mb'], TARGETS['peak_mb'], higher=False)}; "
                  f"≥ {TARGETS['fps512']:g} fps {verdict(mem['fps'], TARGETS['fps512'])} |")
            print("\npeak RSS = ru_maxrss of the CLI child from wait4 (includes its reaped ffmpeg mux child).\n")

        print(json.dumps(report, default=float))
    finally:
        if args.keep:
            print(f"kept {tmp}", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
