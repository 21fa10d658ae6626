"""The codebook generator (paper A): quantiser, retrieval, the whole network, save/load, training."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from talkhead.errors import WeightsError
from talkhead.face.crop import crop_box, cut
from talkhead.face.regions import LIPS
from talkhead.models.codebook_generator import CodebookConfig, CodebookGenerator
from talkhead.models.quantizer import VectorQuantizer
from talkhead.models.retrieval import CodebookRetrieval
from talkhead.render.engine import AnalyticEngine
from talkhead.train.codebook import losses
from talkhead.train.codebook_data import ClipFrames, make_batch

TINY = CodebookConfig(size=64, channels=(8, 12, 16), tokens=4, dim=16, heads=2, layers=1, motion_codes=16,
                      motion_code_dim=8, appearance_codes=16, appearance_code_dim=8)


def test_quantizer_takes_the_nearest_row_and_passes_gradients_straight_through():
    vq = VectorQuantizer(4, 2)
    with torch.no_grad():
        vq.embedding.copy_(torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [5.0, 5.0]]))
    z = torch.tensor([[[0.9, 0.1], [0.1, 0.8], [0.2, -0.1]]], requires_grad=True)
    q = vq(z)
    assert q.codes.tolist() == [[1, 2, 0]]
    assert torch.allclose(q.tokens, vq.embedding[q.codes].detach())
    (q.tokens * torch.tensor([1.0, 2.0])).sum().backward()
    assert torch.allclose(z.grad, torch.tensor([1.0, 2.0]).expand(1, 3, 2))  # straight through


def test_codebook_losses_pull_rows_towards_tokens_and_limit_restricts_the_rows():
    vq = VectorQuantizer(8, 3)
    z = torch.randn(2, 5, 3)
    q = vq(z, limit=2)
    assert set(q.codes.flatten().tolist()) <= {0, 1}
    q.loss.backward()
    assert vq.embedding.grad[:2].abs().sum() > 0 and vq.embedding.grad[2:].abs().sum() == 0


def test_idle_rows_are_restarted_on_tokens_and_usage_is_counted():
    vq = VectorQuantizer(16, 2, restart_after=3).train()
    with torch.no_grad():
        vq.embedding[1:] = 100.0           # far away: only row 0 is ever chosen
    z = torch.randn(1, 64, 2)
    assert VectorQuantizer.usage(vq(z).codes, 16) == 1 / 16
    for _ in range(4):
        vq(z)
    assert vq.embedding.abs().max() < 50    # the dead rows moved onto the data
    assert VectorQuantizer.usage(vq(z).codes, 16) > 4 / 16


def test_retrieval_shapes_and_only_the_leading_rows_matter():
    torch.manual_seed(0)
    retrieval = CodebookRetrieval(dim=16, code_dim=8, heads=2, layers=2).eval()
    tokens, rows = torch.randn(3, 25, 16), torch.randn(10, 8)
    out = retrieval(tokens, rows[:4], side=5)
    assert out.shape == (3, 25, 8)
    changed = rows.clone()
    changed[4:] = torch.randn(6, 8)
    assert torch.allclose(out, retrieval(tokens, changed[:4], side=5))
    assert not torch.allclose(out, retrieval(tokens, changed, side=5))


def _inputs(batch: int, size: int):
    axis = (2 * torch.arange(size) + 1) / size - 1
    y, x = torch.meshgrid(axis, axis, indexing="ij")
    grid = torch.stack([x, y], -1)[None].repeat(batch, 1, 1, 1) * 0.95
    return torch.rand(batch, 3, size, size), grid, torch.rand(batch, 478, 2) * 1.2 - 0.6, torch.rand(batch, 3, size, size)


def test_a_fresh_generator_returns_the_base_frame_and_reports_its_codes():
    torch.manual_seed(0)
    model = CodebookGenerator(TINY).eval()
    source, grid, targets, base = _inputs(2, 64)
    out = model(source, grid, targets, base)
    assert out.frame.shape == (2, 3, 64, 64) and out.mask.shape == (2, 1, 64, 64)
    assert (out.frame - base).abs().max() < 0.02
    assert set(out.codes) == {"motion2", "motion1", "appearance2", "appearance1", "appearance0"}
    assert all(c.shape == (2, TINY.tokens ** 2) for c in out.codes.values())
    assert int(out.codes["motion2"].max()) < TINY.limit(TINY.motion_codes, 2, TINY.motion_levels) == 8


def test_config_round_trips_and_the_paper_sizes_are_the_published_ones():
    assert CodebookConfig.from_json(TINY.to_json()) == TINY
    paper = CodebookConfig.paper()
    assert (paper.motion_codes, paper.motion_code_dim, paper.appearance_codes, paper.appearance_code_dim,
            paper.tokens, paper.heads, paper.layers) == (1024, 32, 1024, 256, 32, 8, 2)
    with pytest.raises(ValueError):
        CodebookConfig(size=64, tokens=5)


def test_weights_round_trip_through_safetensors(tmp_path):
    from talkhead.weights import load_codebook, save_codebook, write_safetensors

    torch.manual_seed(1)
    model = CodebookGenerator(TINY)
    for p in model.parameters():                   # make it a non-trivial model
        p.data.add_(0.05 * torch.randn_like(p))
    model.eval()
    save_codebook(tmp_path / "m.safetensors", model, {"validation": json.dumps(["a.mp4"])})
    again = load_codebook(tmp_path / "m.safetensors")
    assert again.config == TINY
    inputs = _inputs(1, 64)
    assert torch.equal(model(*inputs).frame, again(*inputs).frame)
    save_codebook(tmp_path / "half.safetensors", model, half=True)                  # the shipping format
    assert (tmp_path / "half.safetensors").stat().st_size < 0.6 * (tmp_path / "m.safetensors").stat().st_size
    assert (model(*inputs).frame - load_codebook(tmp_path / "half.safetensors")(*inputs).frame).abs().max() < 0.02
    write_safetensors(tmp_path / "other.safetensors", {"w": np.zeros(3, np.float32)}, {"kind": "something-else"})
    with pytest.raises(WeightsError, match="not a codebook model"):
        load_codebook(tmp_path / "other.safetensors")


@pytest.fixture(scope="module")
def tiny_clip(driving_frames, source_landmarks) -> ClipFrames:
    """The astronaut under known motion, cropped at 64 like the training data (landmarks moved alike)."""
    frames, affines, _, _ = driving_frames
    box = crop_box(source_landmarks)
    crops, marks = [], []
    for frame, m in zip(frames[::3], affines[::3]):
        moved = source_landmarks.copy()
        moved[:, :2] = source_landmarks[:, :2] @ m[:, :2].T + m[:, 2]
        crops.append(cut(frame, box, 64))
        marks.append(box.to_crop(moved, 64))
    return ClipFrames("astronaut", np.stack(crops), np.stack(marks).astype(np.float32))


def test_a_short_training_run_lowers_the_loss(tiny_clip):
    """The real frames show a dark mouth the warp cannot know about: the network learns to paint it."""
    torch.manual_seed(0)
    engine = AnalyticEngine(64, torch.device("cpu"))
    batch = make_batch(engine, [tiny_clip], np.random.default_rng(0), sources=2, per_source=2)
    lips = (batch.targets[:, LIPS] + 1) * 64 / 2 - 0.5                              # [B,n,2] pixels
    mouth = torch.zeros_like(batch.real, dtype=torch.bool)                           # the lips' boxes
    for m, lo, hi in zip(mouth, lips.amin(1).floor().int(), lips.amax(1).ceil().int()):
        m[:, lo[1]:hi[1], lo[0]:hi[0]] = True
    batch.real[mouth] *= 0.3
    model = CodebookGenerator(TINY).train()
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    history = []
    for _ in range(80):                                     # 40 sat at the line on some seeds and package sets
        parts = losses(model, batch)
        opt.zero_grad()
        parts["total"].backward()
        opt.step()
        history.append(float(parts["l1"].detach()))
    assert np.mean(history[-5:]) < 0.8 * np.mean(history[:5])
    with torch.no_grad():                                                            # it changed the mouths
        frame = model.eval()(batch.source, batch.grid, batch.targets, batch.base).frame
    change = (frame - batch.base).abs()
    assert change[mouth].mean() > 3 * change[~mouth].mean()
    assert (frame - batch.real).abs()[mouth].mean() < 0.5 * (batch.base - batch.real).abs()[mouth].mean()
