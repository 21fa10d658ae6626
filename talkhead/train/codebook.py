"""Train the codebook engine by self-reenactment on a folder of face videos.

    talkhead train codebook --data DIR --run RUN_DIR [--steps N] [--device auto]

RUN_DIR holds everything a run makes: the face crops of every clip (a cache),
`loss.tsv` (one line per logged step: training losses, and on validation
steps the validation PSNR of the model beside the analytic frames it
corrects), `last.safetensors` (model, resumable) and `optimizer.safetensors`.
Running again with the same RUN_DIR resumes where it stopped. Every
`val_every`-th clip is a validation clip, never trained on; the list is
written into the weights' metadata.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from talkhead.device import resolve_device
from talkhead.errors import OptionError
from talkhead.io.files import append_line
from talkhead.models.codebook_generator import CodebookConfig, CodebookGenerator
from talkhead.render.engine import AnalyticEngine
from talkhead.train.codebook_data import Batch, ClipFrames, cached_clip, find_clips, make_batch, split_clips
from talkhead.weights import load_codebook_file, read_safetensors, save_codebook, write_safetensors

Progress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class TrainOptions:
    """How a codebook training run goes."""

    data: Path
    run: Path
    steps: int = 2000
    sources: int = 4          # source frames per batch
    per_source: int = 2       # driving frames per source frame
    lr: float = 1e-3
    every: int = 2            # use every n-th frame of each clip
    max_frames: int = 400     # at most this many frames per clip
    val_every: int = 5        # every n-th clip is for validation
    log_every: int = 10
    val_steps: int = 100      # validate (and save) every this many steps
    seed: int = 0
    device: str = "auto"
    config: CodebookConfig = CodebookConfig()

    def __post_init__(self) -> None:
        if self.steps < 1 or self.lr <= 0 or self.val_every < 2:
            raise OptionError("--steps must be at least 1, --lr above 0, --val-every at least 2")


def load_clips(paths: Sequence[Path], options: TrainOptions, progress: Progress | None) -> list[ClipFrames]:
    cache = options.run / "frames"
    cache.mkdir(parents=True, exist_ok=True)
    clips = []
    for i, path in enumerate(paths):
        clip = cached_clip(path, cache, options.config.size, options.every, options.max_frames)
        if clip is not None:
            clips.append(clip)
        if progress:
            progress("frames", i + 1, len(paths))
    return clips


def losses(model: CodebookGenerator, batch: Batch) -> dict[str, torch.Tensor]:
    """Weighted L1 of the frame and of its image gradients (sharpness), and the codebook losses."""
    out = model(batch.source, batch.grid, batch.targets, batch.base)
    w = batch.weight / batch.weight.mean()
    l1 = ((out.frame - batch.real).abs() * w).mean()
    dx = lambda x: x[..., :, 1:] - x[..., :, :-1]  # noqa: E731
    dy = lambda x: x[..., 1:, :] - x[..., :-1, :]  # noqa: E731
    grad = ((dx(out.frame) - dx(batch.real)).abs() * w[..., :, 1:]).mean() + \
           ((dy(out.frame) - dy(batch.real)).abs() * w[..., 1:, :]).mean()
    return {"l1": l1, "grad": grad, "vq": out.vq_loss, "total": l1 + 0.5 * grad + 0.1 * out.vq_loss}


def weighted_psnr(frame: torch.Tensor, real: torch.Tensor, weight: torch.Tensor) -> float:
    """PSNR (dB) of frames [B,3,S,S] over pixels weighted by weight [B,1,S,S] (the loss's face weighting)."""
    mse = float(((frame - real) ** 2 * weight).sum() / (weight.sum() * 3))
    return 10 * math.log10(1 / max(mse, 1e-10))


@torch.no_grad()
def validate(model: CodebookGenerator, batches: list[Batch]) -> tuple[float, float]:
    """(model PSNR, analytic PSNR) over fixed validation batches, face-weighted."""
    model.eval()
    ours = [weighted_psnr(model(b.source, b.grid, b.targets, b.base).frame, b.real, b.weight) for b in batches]
    base = [weighted_psnr(b.base, b.real, b.weight) for b in batches]
    model.train()
    return float(np.mean(ours)), float(np.mean(base))


def _restore(options: TrainOptions, device: torch.device) -> tuple[CodebookGenerator, torch.optim.Optimizer, int]:
    last = options.run / "last.safetensors"
    model, step = (load_codebook_file(last) if last.exists() else (CodebookGenerator(options.config), 0))
    model.to(device).train()
    opt = torch.optim.AdamW(model.parameters(), lr=options.lr, weight_decay=1e-4)
    state_file = options.run / "optimizer.safetensors"
    if last.exists() and state_file.exists():
        arrays, _ = read_safetensors(state_file)
        names = dict(model.named_parameters())
        for name, p in names.items():
            if f"{name}.exp_avg" in arrays:
                opt.state[p] = {"step": torch.tensor(float(step)),
                                "exp_avg": torch.from_numpy(arrays[f"{name}.exp_avg"]).to(device),
                                "exp_avg_sq": torch.from_numpy(arrays[f"{name}.exp_avg_sq"]).to(device)}
    return model, opt, step


def _save(model: CodebookGenerator, opt: torch.optim.Optimizer, options: TrainOptions, step: int,
          validation: list[str], score: dict) -> None:
    meta = {"steps": str(step), "validation": json.dumps(validation), "score": json.dumps(score),
            "trained_on": "self-reenactment, " + options.data.name}
    save_codebook(options.run / "last.safetensors", model, meta)
    names = {id(p): n for n, p in model.named_parameters()}
    state = {}
    for p, s in opt.state.items():
        if "exp_avg" in s:
            state[f"{names[id(p)]}.exp_avg"] = s["exp_avg"].detach().cpu().numpy()
            state[f"{names[id(p)]}.exp_avg_sq"] = s["exp_avg_sq"].detach().cpu().numpy()
    write_safetensors(options.run / "optimizer.safetensors", state, {"step": str(step)})


def train(options: TrainOptions, progress: Progress | None = None, log: Callable[[str], None] | None = None) -> dict:
    """Train (or resume) a run; returns the last validation scores."""
    if not options.data.is_dir():
        raise OptionError(f"--data {options.data}: not a folder; give a folder of face videos")
    device = resolve_device(options.device)
    torch.manual_seed(options.seed)
    paths = find_clips(options.data)
    train_paths, val_paths = split_clips(paths, options.val_every)
    if len(train_paths) < 1 or len(val_paths) < 1:
        raise OptionError(f"--data {options.data}: found {len(paths)} video(s); need at least 2 (training and "
                          f"validation), better {options.val_every} or more")
    clips = load_clips(train_paths, options, progress)
    val_clips = load_clips(val_paths, options, progress)
    if not clips or not val_clips:
        raise OptionError(f"--data {options.data}: no faces found in the training or validation videos")
    engine = AnalyticEngine(options.config.size, torch.device("cpu"))
    val_rng = np.random.default_rng(1234)
    val_batches = [make_batch(engine, val_clips, val_rng, options.sources, options.per_source, augment=False).to(device) for _ in range(4)]
    model, opt, step = _restore(options, device)
    rng = np.random.default_rng(options.seed + step)
    validation = [p.relative_to(options.data).as_posix() for p in val_paths]
    score: dict = {}
    start = time.perf_counter()
    while step < options.steps:
        batch = make_batch(engine, clips, rng, options.sources, options.per_source).to(device)
        parts = losses(model, batch)
        opt.zero_grad(set_to_none=True)
        parts["total"].backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        step += 1
        line = {k: round(float(v.detach()), 5) for k, v in parts.items()}
        if step % options.val_steps == 0 or step == options.steps:
            ours, base = validate(model, val_batches)
            score = {"val_psnr": round(ours, 3), "val_psnr_analytic": round(base, 3)}
            line.update(score)
            _save(model, opt, options, step, validation, score)
        if step % options.log_every == 0 or "val_psnr" in line:
            append_line(options.run / "loss.tsv", json.dumps({"step": step, "s": round(time.perf_counter() - start, 1),
                                                              **line}))
            if log:
                log(f"step {step}: " + " ".join(f"{k} {v}" for k, v in line.items()))
        if progress:
            progress("training", step, options.steps)
    return score
