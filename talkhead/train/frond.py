"""Train FROND on talking clips with speech, in two stages.

    talkhead train frond --data DIR --run RUN_DIR [--stage all|motion|render]

motion: the two-stream encoder learns to compress each frame's landmark
        delta (expression minus the clip's rest face) into keypoints and a
        global code and back; then, with the encoder fixed, the estimator
        learns the trajectory of that code from the clip's speech (log-mel
        and recognised phones, as `speak` has them), scored at the clip's
        own frame times.
render: the dense motion field and the implicit decoder learn, by
        self-reenactment, to correct the analytic engine's frame at random
        continuous coordinates and random output scales.

RUN_DIR holds the caches (tracked faces and phones of every clip, face
crops), `loss.tsv` (one JSON line per logged step) and `frond.safetensors`,
saved after each stage; a run started again skips the stages that file
already has. Every `val_every`-th clip is kept for validation, never
trained on; the list is written into the weights' metadata.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from talkhead.device import resolve_device
from talkhead.errors import OptionError
from talkhead.face.canonical import CANONICAL_FACE
from talkhead.face.regions import PARTS
from talkhead.io.files import append_line
from talkhead.models.frond import Frond, FrondConfig
from talkhead.models.frond_field import MotionField, sample_points
from talkhead.models.frond_motion import Trajectory
from talkhead.speech.features import N_MELS
from talkhead.train.codebook_data import Batch, ClipFrames, cached_clip, make_batch, split_clips
from talkhead.train.frond_data import MotionClip, cached_recording, motion_clip, talking_clips
from talkhead.train.lipsync import lip_gap

Log = Callable[[str], None]
Progress = Callable[[str, int, int], None]
WINDOW = 300             # audio feature frames (3 s) per training window
MOUTH_WEIGHT = 4.0       # extra landmark loss weight on the mouth and jaw
SCALES = (128, 192, 256)  # output sides the decoder is trained at


@dataclass(frozen=True)
class FrondTrainOptions:
    data: Path
    run: Path
    stage: str = "all"            # all, motion or render
    motion_steps: int = 1500
    render_steps: int = 600
    lr: float = 1e-3
    val_every: int = 5
    exclude: tuple[str, ...] = ()
    seed: int = 0
    device: str = "auto"
    every: int = 2                # render stage: every n-th frame of each clip
    max_frames: int = 400
    config: FrondConfig = FrondConfig()

    def __post_init__(self) -> None:
        if self.stage not in ("all", "motion", "render"):
            raise OptionError(f"--stage {self.stage}: use all, motion or render")
        if self.motion_steps < 1 or self.render_steps < 1 or self.lr <= 0 or self.val_every < 2:
            raise OptionError("--motion-steps and --render-steps must be at least 1, --lr above 0, "
                              "--val-every at least 2")


# --- motion stage ------------------------------------------------------------------------------

def _landmark_weights(device: torch.device) -> torch.Tensor:
    return (1.0 + MOUTH_WEIGHT * torch.from_numpy(PARTS["mouth"]).float().to(device))[:, None]


def fit_encoder(model: Frond, clips: Sequence[MotionClip], steps: int, lr: float, rng: np.random.Generator,
                log: Log | None = None) -> float:
    """Train the encoder to reconstruct landmark deltas through its two streams; returns the last loss.

    The keypoints' selection stays where it starts (on chosen landmarks): the dense motion field is trained
    on those keypoints, so either stage can be trained again without the other.
    """
    device = next(model.parameters()).device
    deltas = torch.from_numpy(np.concatenate([c.delta for c in clips])).to(device)
    weights = _landmark_weights(device)
    params = [p for n, p in model.encoder.named_parameters() if n != "select"]
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=1e-4)
    loss = torch.zeros(())
    for step in range(1, steps + 1):
        batch = deltas[torch.from_numpy(rng.integers(len(deltas), size=512)).to(device)]
        loss = ((model.encoder.decode(model.encoder.encode(batch)) - batch).abs() * weights).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if log and step % 200 == 0:
            log(f"encoder step {step}: loss {float(loss.detach()):.5f}")
    return float(loss.detach())


def _window(clip: MotionClip, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A random WINDOW of a clip: features [WINDOW,D], frame times in it (s, from its start), their deltas."""
    start = int(rng.integers(0, max(1, len(clip.features) - WINDOW)))
    feats = clip.features[start:start + WINDOW]
    if len(feats) < WINDOW:
        feats = np.pad(feats, ((0, WINDOW - len(feats)), (0, 0)))
    t0 = start / 100.0
    inside = (clip.times >= t0) & (clip.times < t0 + WINDOW / 100.0)
    return feats, clip.times[inside] - t0, clip.delta[inside]


def speech_dims(model: Frond) -> torch.Tensor:
    """float [M]: 1 for the motion dimensions speech can explain (keypoints mostly on the mouth and jaw, and
    the global code), 0 for the rest (eyes, brows: blinks and looks are not in the audio)."""
    mouth = torch.from_numpy(PARTS["mouth"]).float().to(model.estimator.mean.device)
    on_mouth = (model.encoder.weights().detach() @ mouth > 0.5).float()                 # [K]
    return torch.cat([on_mouth.repeat_interleave(3), torch.ones(model.config.encoder.code, device=mouth.device)])


def estimator_loss(model: Frond, feats: torch.Tensor, times: list[torch.Tensor], deltas: list[torch.Tensor]
                   ) -> torch.Tensor:
    """L1 of the trajectory at the frames' times against their encoded motion (standard units, the
    dimensions speech explains), plus the decoded mouth and jaw landmarks against the real deltas."""
    est, enc = model.estimator, model.encoder
    controls = est.controls(feats)
    dims = speech_dims(model)
    weights = torch.from_numpy(PARTS["mouth"]).float().to(feats.device)[:, None]
    total = feats.new_zeros(())
    for b in range(len(times)):
        if not len(times[b]):
            continue
        path = Trajectory(controls[b], est.config.knot_seconds, est.config.first_knot).at(times[b])
        with torch.no_grad():
            target = (enc.encode(deltas[b]) - est.mean) / est.scale
        landmarks = enc.decode(path * est.scale + est.mean)
        total = total + ((path - target).abs() * dims).mean() + 20 * ((landmarks - deltas[b]).abs() * weights).mean()
    return total / len(times)


def _masked(feats: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
    """Augmented features [B,F,D]: per window, a band of mel channels and two short spans of time blanked,
    and 10% of the values dropped (there is little data: this keeps the estimator from learning it by heart)."""
    feats = F.dropout(feats, 0.1)
    for b in range(len(feats)):
        low = int(rng.integers(0, N_MELS - 8))
        feats[b, :, low:low + int(rng.integers(0, 8))] = 0
        for _ in range(2):
            t = int(rng.integers(0, feats.shape[1] - 10))
            feats[b, t:t + int(rng.integers(0, 10))] = 0
    return feats


def set_motion_scale(model: Frond, clips: Sequence[MotionClip]) -> None:
    """The estimator's output units: mean and s.d. of the encoded training motion."""
    device = next(model.parameters()).device
    with torch.no_grad():
        motion = model.encoder.encode(torch.from_numpy(np.concatenate([c.delta for c in clips])).to(device))
    model.estimator.mean.copy_(motion.mean(0))
    model.estimator.scale.copy_(motion.std(0) + 1e-4)


def fit_estimator(model: Frond, clips: Sequence[MotionClip], steps: int, lr: float, rng: np.random.Generator,
                  log: Log | None = None, batch: int = 16) -> float:
    """Train the estimator (encoder fixed) on random windows; returns the last loss."""
    device = next(model.parameters()).device
    model.encoder.requires_grad_(False)
    set_motion_scale(model, clips)
    opt = torch.optim.AdamW(model.estimator.parameters(), lr=lr, weight_decay=1e-2)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=0.1)
    lengths = np.array([len(c.times) for c in clips], float)
    loss = torch.zeros(())
    for step in range(1, steps + 1):
        picks = [_window(clips[i], rng) for i in rng.choice(len(clips), size=batch, p=lengths / lengths.sum())]
        feats = _masked(torch.from_numpy(np.stack([p[0] for p in picks])).to(device), rng)
        loss = estimator_loss(model, feats, [torch.from_numpy(p[1]).to(device) for p in picks],
                              [torch.from_numpy(p[2]).to(device) for p in picks])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.estimator.parameters(), 1.0)
        opt.step()
        sched.step()
        if log and step % max(1, steps // 10) == 0:
            log(f"estimator step {step}: loss {float(loss.detach()):.4f}")
    model.encoder.requires_grad_(True)
    return float(loss.detach())


@torch.no_grad()
def predict_deltas(model: Frond, features: np.ndarray, times: np.ndarray) -> np.ndarray:
    """float32 [T,478,3]: landmark deltas the estimator predicts at times (s) for features [F,D]."""
    device = next(model.parameters()).device
    path = model.estimator.trajectory(torch.from_numpy(features)[None].to(device))
    motion = path.at(torch.from_numpy(np.asarray(times, np.float32)).to(device))[0]
    return model.encoder.decode(motion).cpu().numpy()


def lip_gaps(model: Frond, clip: MotionClip) -> tuple[np.ndarray, np.ndarray]:
    """(predicted, real) inner-lip gap per frame of a clip, canonical units."""
    ours = lip_gap(CANONICAL_FACE[None] + predict_deltas(model, clip.features, clip.times))
    return ours, lip_gap(CANONICAL_FACE[None] + clip.delta)


def gap_correlation(model: Frond, clips: Sequence[MotionClip]) -> float:
    """Mean over clips of the correlation between predicted and real inner-lip gaps (frame by frame)."""
    rs = [float(np.corrcoef(*lip_gaps(model, c))[0, 1]) for c in clips]
    return float(np.mean(rs)) if rs else float("nan")


MAX_GAIN = 3.0


def calibrate_gain(model: Frond, clips: Sequence[MotionClip]) -> float:
    """Set the estimator's gain: the real lip gap's spread over the predicted one's, averaged over clips
    (between 1 and MAX_GAIN); returns it."""
    ratios = []
    for c in clips:
        ours, real = lip_gaps(model, c)
        ratios.append(float(real.std()) / max(float(ours.std()), 1e-6))
    gain = float(np.clip(np.mean(ratios), 1.0, MAX_GAIN)) if ratios else 1.0
    model.estimator.gain.fill_(gain)
    return gain


def fit_motion(model: Frond, clips: Sequence[MotionClip], steps: int, lr: float = 1e-3, seed: int = 0,
               log: Log | None = None) -> dict:
    """The motion stage: encoder, then estimator. Returns the final losses."""
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    model.train()
    encoder = fit_encoder(model, clips, max(100, steps // 2), 2 * lr, rng, log)
    estimator = fit_estimator(model, clips, steps, lr, rng, log)
    model.eval()
    gain = calibrate_gain(model, clips)
    return {"encoder_loss": round(encoder, 5), "estimator_loss": round(estimator, 4), "gain": round(gain, 3)}


# --- render stage ------------------------------------------------------------------------------

def _field(model: Frond, batch: Batch) -> MotionField:
    """The fused motion field of a batch (keypoints of its source and target landmarks)."""
    enc = model.encoder
    return model.field(batch.grid, enc.keypoints(batch.source_points), enc.keypoints(batch.targets))


def render_loss(model: Frond, batch: Batch, rng: np.random.Generator, queries: int = 4096) -> torch.Tensor:
    """Weighted L1 at random continuous points, at a random output scale."""
    dec, field = model.decoder, _field(model, batch)
    side = int(rng.choice(SCALES))
    real = F.interpolate(batch.real, size=(side, side), mode="area") if side != batch.real.shape[-1] else batch.real
    points = torch.rand(len(batch.real), queries, 2, device=real.device) * 2 - 1
    colours = dec.query(dec.features(batch.source), field, points, 2.0 / side, batch.source, batch.base)
    weight = sample_points(batch.weight, points)
    return ((colours - sample_points(real, points)).abs() * weight).sum() / (weight.sum() * 3)


@torch.no_grad()
def render_frames(model: Frond, batch: Batch, side: int) -> torch.Tensor:
    """Whole frames float [B,3,side,side] for a batch."""
    dec, field = model.decoder, _field(model, batch)
    return dec.render(dec.features(batch.source), field, side, batch.source, batch.base)


def validate_render(model: Frond, batches: Sequence[Batch]) -> tuple[float, float]:
    """(model PSNR, analytic PSNR), face-weighted, over fixed validation batches."""
    from talkhead.train.codebook import weighted_psnr

    model.eval()
    side = batches[0].real.shape[-1]
    ours = [weighted_psnr(render_frames(model, b, side), b.real, b.weight) for b in batches]
    base = [weighted_psnr(b.base, b.real, b.weight) for b in batches]
    return float(np.mean(ours)), float(np.mean(base))


def fit_render(model: Frond, clips: Sequence[ClipFrames], val: Sequence[ClipFrames], steps: int, lr: float,
               seed: int, log: Log | None = None, progress: Progress | None = None) -> dict:
    from talkhead.render.engine import AnalyticEngine

    device = next(model.parameters()).device
    engine = AnalyticEngine(model.config.decoder.size, torch.device("cpu"))
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    val_rng = np.random.default_rng(1234)
    val_batches = [make_batch(engine, list(val), val_rng, 4, 2, augment=False).to(device) for _ in range(3)]
    params = list(model.field.parameters()) + list(model.decoder.parameters())
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=0.05)
    model.train()
    score: dict = {}
    for step in range(1, steps + 1):
        loss = render_loss(model, make_batch(engine, list(clips), rng, 4, 2).to(device), rng)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        sched.step()
        if step % 50 == 0 or step == steps:
            line = {"stage": "render", "step": step, "loss": round(float(loss.detach()), 5)}
            if step % 200 == 0 or step == steps:
                ours, base = validate_render(model, val_batches)
                score = {"val_psnr": round(ours, 3), "val_psnr_analytic": round(base, 3)}
                line.update(score)
                model.train()
            if log:
                log(json.dumps(line))
        if progress:
            progress("render", step, steps)
    model.eval()
    return score


# --- the run -----------------------------------------------------------------------------------

def _saved(path: Path) -> tuple[Frond | None, dict[str, str]]:
    from talkhead.weights import load_frond_file

    return load_frond_file(path) if path.exists() else (None, {})


def train(options: FrondTrainOptions, progress: Progress | None = None, log: Log | None = None) -> dict:
    """Run (or finish) the stages asked for; returns the scores of this run's stages."""
    from talkhead.weights import save_frond

    if not options.data.is_dir():
        raise OptionError(f"--data {options.data}: not a folder; give a folder of talking videos with speech")
    device = resolve_device(options.device)
    options.run.mkdir(parents=True, exist_ok=True)
    clips = talking_clips(options.data, options.exclude)
    train_specs, val_specs = split_clips(clips, options.val_every)
    if not train_specs or not val_specs:
        raise OptionError(f"--data {options.data}: found {len(clips)} video(s) with speech; need at least 2 "
                          f"(training and validation), better {options.val_every} or more")
    out = options.run / "frond.safetensors"
    model, meta = _saved(out)
    model = (model or Frond(options.config)).to(device)
    trained = set(filter(None, meta.get("trained", "").split(",")))
    validation = [v.relative_to(options.data).as_posix() for v, _ in val_specs]
    scores: dict = json.loads(meta.get("score", "{}"))

    def note(line: str) -> None:
        append_line(options.run / "loss.tsv", line if line.startswith("{") else json.dumps({"note": line}))
        if log:
            log(line)

    start = time.perf_counter()
    if options.stage in ("all", "motion") and "motion" not in trained:
        recs = options.run / "recordings"
        train_clips = []
        for i, (video, audio) in enumerate(train_specs):
            train_clips.append(motion_clip(cached_recording(video, audio, recs)))
            if progress:
                progress("recordings", i + 1, len(train_specs) + len(val_specs))
        val_clips = [motion_clip(cached_recording(v, a, recs)) for v, a in val_specs]
        scores.update(fit_motion(model, train_clips, options.motion_steps, options.lr, options.seed, note))
        scores["val_gap_r"] = round(gap_correlation(model, val_clips), 3)
        note(json.dumps({"stage": "motion", "s": round(time.perf_counter() - start), **scores}))
        trained.add("motion")
        save_frond(out, model, _meta(trained, validation, scores, options))
    if options.stage in ("all", "render") and "render" not in trained:
        frames = options.run / "frames"
        frames.mkdir(exist_ok=True)
        size = options.config.decoder.size

        def crops(specs: list) -> list[ClipFrames]:
            found = [cached_clip(v, frames, size, options.every, options.max_frames) for v, _ in specs]
            return [c for c in found if c is not None]

        train_frames, val_frames = crops(train_specs), crops(val_specs)
        if not train_frames or not val_frames:
            raise OptionError(f"--data {options.data}: no faces found in the training or validation videos")
        scores.update(fit_render(model, train_frames, val_frames, options.render_steps, options.lr, options.seed,
                                 note, progress))
        note(json.dumps({"stage": "render", "s": round(time.perf_counter() - start), **scores}))
        trained.add("render")
        save_frond(out, model, _meta(trained, validation, scores, options))
    return scores


def _meta(trained: set[str], validation: list[str], scores: dict, options: FrondTrainOptions) -> dict[str, str]:
    return {"trained": ",".join(sorted(trained)), "validation": json.dumps(validation), "score": json.dumps(scores),
            "trained_on": f"{options.data.name} (motion {options.motion_steps} steps, render "
                          f"{options.render_steps} steps)"}
