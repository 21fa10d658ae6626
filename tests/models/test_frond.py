"""FROND (paper B): trajectories, the two-stream encoder, the fused field, the implicit decoder,
save/load and short real training runs of both stages."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from talkhead.errors import WeightsError
from talkhead.models.frond import Frond, FrondConfig, from_tensors, to_tensors
from talkhead.models.frond_decoder import DecoderConfig
from talkhead.models.frond_field import MotionField, unit_grid
from talkhead.models.frond_motion import EstimatorConfig, Trajectory, bspline_weights
from talkhead.train.codebook_data import Batch
from talkhead.train.frond import fit_motion, gap_correlation, render_loss
from talkhead.train.frond_data import MotionClip

SMALL = FrondConfig(estimator=EstimatorConfig(width=16, dilations=(1, 2)), decoder=DecoderConfig(size=64, latent=16))


def test_bspline_weights_are_a_partition_of_unity_and_smooth():
    u = torch.linspace(0, 5, 501)
    first, w = bspline_weights(u)
    assert torch.allclose(w.sum(1), torch.ones(501), atol=1e-6) and (w >= 0).all()
    # value of a spline with controls 0,0,0,1,0,0,... at u: continuous, peaks at its own knot (u = 3)
    controls = torch.zeros(10, 1)
    controls[3] = 1.0
    values = Trajectory(controls, 1.0).at(u)[:, 0]
    assert abs(float(values[300]) - 2 / 3) < 1e-5
    assert float(values.diff().abs().max()) < 0.01  # no jumps at the knots


def test_trajectory_is_continuous_in_time_at_any_frame_rate():
    torch.manual_seed(0)
    path = Trajectory(torch.randn(3, 50, 4), step=0.02, start=0.005)    # 1 s of motion, batch of 3
    at25 = path.at(torch.arange(25) / 25.0)
    at100 = path.at(torch.arange(100) / 100.0)
    assert at25.shape == (3, 25, 4)
    assert torch.allclose(at25, at100[:, ::4], atol=1e-6)             # the same curve, read at other times
    fine = path.at(torch.arange(1000) / 1000.0)
    # between two 25 fps frames the motion moves smoothly: steps at 1 ms are tiny beside steps at 40 ms
    assert float(fine.diff(dim=1).abs().max()) < 0.1 * float(at25.diff(dim=1).abs().max())
    # and it stays within the range its control points span
    assert float(fine.abs().max()) <= float(path.controls.abs().max()) + 1e-5


def test_estimator_trajectory_covers_the_audio_and_is_queried_at_any_time():
    model = Frond(SMALL).eval()
    feats = torch.randn(1, 230, SMALL.estimator.inputs)            # 2.3 s of features
    path = model.estimator.trajectory(feats)
    assert path.controls.shape == (1, 115, SMALL.encoder.motion_size)
    for fps in (24.0, 25.0, 60.0):
        times = (torch.arange(int(2.3 * fps)) + 0.5) / fps
        assert path.at(times).shape == (1, len(times), SMALL.encoder.motion_size)


def test_encoder_keypoints_are_convex_combinations_and_work_in_any_frame():
    model = Frond(SMALL)
    weights = model.encoder.weights()
    assert torch.allclose(weights.sum(1), torch.ones(SMALL.encoder.keypoints))
    points = torch.randn(2, 478, 2)
    moved = model.encoder.keypoints(points * 3 + torch.tensor([1.0, -2.0]))
    assert torch.allclose(moved, model.encoder.keypoints(points) * 3 + torch.tensor([1.0, -2.0]), atol=1e-5)
    delta = torch.randn(5, 478, 3) * 0.01
    assert model.encoder.decode(model.encoder.encode(delta)).shape == (5, 478, 3)


def _scene(batch: int = 2, side: int = 64) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """A smooth colourful source, the identity grid and random keypoints."""
    where = unit_grid(side)
    source = torch.stack([0.5 + 0.4 * torch.sin(3 * where[..., 0]), 0.5 + 0.4 * torch.cos(2 * where[..., 1]),
                          0.5 + 0.2 * where[..., 0] * where[..., 1]], 0)[None].expand(batch, -1, -1, -1)
    grid = where[None].expand(batch, -1, -1, -1).clone()
    return source.contiguous(), grid, torch.rand(batch, SMALL.encoder.keypoints, 2) * 1.2 - 0.6


def test_fresh_field_is_the_global_warp_and_fresh_decoder_the_base_frame():
    model = Frond(SMALL).eval()
    source, grid, keypoints = _scene()
    field = model.field(grid, keypoints, keypoints + 0.05)
    points = torch.rand(2, 300, 2) * 1.9 - 0.95       # inside the outermost pixel centres
    reads, visible = field.at(points)
    assert torch.allclose(reads, points, atol=1e-5) and (visible > 0.95).all()
    base = torch.rand(2, 3, 64, 64)
    frame = model.decoder.render(model.decoder.features(source), field, 64, source, base)
    assert torch.allclose(frame, base, atol=1e-5)


def test_decoder_renders_the_same_image_at_two_resolutions():
    torch.manual_seed(1)
    model = Frond(SMALL).eval()
    torch.nn.init.normal_(model.decoder.mlp[-1].weight, std=0.05)     # a decoder that changes things
    model.requires_grad_(False)
    source, grid, keypoints = _scene()
    field = MotionField(grid, torch.zeros(2, 2, 16, 16), torch.ones(2, 1, 16, 16))
    feats = model.decoder.features(source)
    small = model.decoder.render(feats, field, 64, source, source)
    large = model.decoder.render(feats, field, 160, source, source)
    assert small.shape == (2, 3, 64, 64) and large.shape == (2, 3, 160, 160)
    assert float((small - source).abs().mean()) > 0.005                # it did change the frame
    shrunk = F.interpolate(large, size=(64, 64), mode="area")
    assert float((shrunk - small).abs().mean()) < 0.01                 # the same picture, finer sampled


def test_save_and_load_give_the_same_model(tmp_path):
    from talkhead.weights import load_frond_file, save_frond

    torch.manual_seed(2)
    model = Frond(SMALL).eval()
    torch.nn.init.normal_(model.decoder.mlp[-1].weight, std=0.05)
    arrays, meta = to_tensors(model, {"trained": "motion"})
    again = from_tensors(arrays, meta)
    assert again.config == SMALL
    feats = torch.randn(1, 100, SMALL.estimator.inputs)
    times = torch.arange(20) / 25.0
    assert torch.equal(model.estimator.trajectory(feats).at(times), again.estimator.trajectory(feats).at(times))
    path = tmp_path / "f.safetensors"
    save_frond(path, model, {"trained": "motion,render"}, half=True)
    loaded, loaded_meta = load_frond_file(path)
    assert loaded_meta["trained"] == "motion,render"
    assert torch.allclose(model.decoder.mlp[-1].weight, loaded.decoder.mlp[-1].weight, atol=1e-3)
    with pytest.raises(ValueError):
        from_tensors(arrays, {**meta, "kind": "talkhead-codebook-generator"})
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"nonsense")
    with pytest.raises(WeightsError):
        load_frond_file(bad)


def _talking_clip(rng: np.random.Generator, seconds: float, fps: float = 25.0) -> MotionClip:
    """Speech features whose loudness envelope opens a mouth: the deltas follow feature channel 0."""
    frames = int(seconds * 100)
    envelope = np.convolve(rng.random(frames) > 0.8, np.ones(12) / 12, mode="same").astype(np.float32)
    features = rng.normal(0, 0.3, (frames, SMALL.estimator.inputs)).astype(np.float32)
    features[:, 0] += 3 * envelope
    times = ((np.arange(int(seconds * fps)) + 0.5) / fps).astype(np.float32)
    opening = np.interp(times, np.arange(frames) / 100, envelope)
    delta = np.zeros((len(times), 478, 3), np.float32)
    delta[:, 14, 1] = 0.08 * opening          # lower lip down
    delta[:, 17, 1] = 0.08 * opening
    delta[:, 152, 1] = 0.05 * opening         # chin follows
    return MotionClip("synthetic", features, times, delta)


def test_a_short_motion_training_run_learns_to_open_the_mouth_with_the_speech():
    rng = np.random.default_rng(0)
    train = [_talking_clip(rng, 8.0) for _ in range(3)]
    held_out = _talking_clip(rng, 6.0, fps=30.0)
    model = Frond(SMALL)
    before = gap_correlation(model.eval(), [held_out])
    losses = []
    result = fit_motion(model, train, steps=150, lr=3e-3, log=lambda line: losses.append(float(line.split()[-1]))
                        if line.startswith("estimator") else None)
    assert losses[-1] < 0.6 * losses[0]
    assert 1.0 <= result["gain"] <= 3.0 and float(model.estimator.gain) == pytest.approx(result["gain"], abs=1e-3)
    after = gap_correlation(model, [held_out])
    assert after > 0.6 and after > before + 0.3


def test_a_short_render_training_run_lowers_the_loss():
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    model = Frond(SMALL)
    source, grid, keypoints = _scene(4)
    real = torch.roll(source, shifts=3, dims=-1)                   # the truth: the picture moved 3 px
    points = torch.rand(4, 478, 2) * 1.6 - 0.8
    batch = Batch(source, grid, points, source, real, torch.ones(4, 1, 64, 64), points)
    params = list(model.field.parameters()) + list(model.decoder.parameters())
    opt = torch.optim.Adam(params, lr=3e-3)
    first = last = 0.0
    for step in range(60):
        loss = render_loss(model, batch, rng, queries=1024)
        opt.zero_grad()
        loss.backward()
        opt.step()
        first, last = (float(loss.detach()) if step == 0 else first), float(loss.detach())
    assert last < 0.7 * first
