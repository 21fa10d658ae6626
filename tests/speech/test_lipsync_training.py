"""Fitting the lip-sync model: per-clip alignment, the network ensemble, its file format."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter1d

from talkhead.errors import WeightsError
from talkhead.speech.features import FeatureConfig
from talkhead.train.lipsync import ClipData, align, fit, shifted

SIZE = FeatureConfig().size


def synthetic_clip(name: str, frames: int, seed: int, lag: int = 0) -> ClipData:
    """Features that mix a few smooth hidden signals (as log-mel bands do), the lip gap a nonlinear function of
    them; the lips come `lag` frames late."""
    rng = np.random.default_rng(seed)
    hidden = gaussian_filter1d(rng.normal(size=(frames + 2 * abs(lag), 12)), 2.0, axis=0) * 3
    mixing = np.random.default_rng(0).normal(size=(12, SIZE))  # the same for every clip
    features = (hidden @ mixing + 0.5 * rng.normal(size=(len(hidden), SIZE))).astype(np.float32)
    drive = hidden[:, :4] @ np.array([1.0, -0.7, 0.5, 0.3])
    gap = 0.1 + 0.05 * np.tanh(3 * drive) + 0.002 * rng.normal(size=len(drive))
    gap = np.roll(gap, lag)[abs(lag):abs(lag) + frames]  # gap[t] answers features[t - lag]
    expression = rng.normal(scale=0.01, size=(frames, 478, 3)).astype(np.float32)
    return ClipData(name, 25.0, features[abs(lag):abs(lag) + frames], gap.astype(np.float32), expression)


def test_align_undoes_each_clips_own_offset():
    lags = [0, 2, 0, -1, 0, 3]
    clips = [synthetic_clip(f"c{i}", 300, i, lag) for i, lag in enumerate(lags)]
    for clip, lag, done in zip(clips, lags, align(clips)):
        assert len(done.gap) == 300 - abs(lag)
        np.testing.assert_array_equal(done.gap, shifted(clip, lag).gap)
    untouched = align(clips, reach=0)
    assert all(a is b for a, b in zip(untouched, clips))


def test_fit_predicts_held_out_lips_and_survives_its_file(tmp_path):
    from talkhead.models.lipsync import LipsyncModel
    from talkhead.weights import load_lipsync, write_safetensors

    model = fit([synthetic_clip(f"c{i}", 250, i, lag) for i, lag in enumerate([0, 1, 0, -2])])
    held_out = synthetic_clip("new", 250, 99)
    z = model.predict(held_out.features)
    assert z.shape == (250,) and np.corrcoef(z, held_out.gap)[0, 1] > 0.8
    opening = model.opening(held_out.features)
    assert opening.min() >= 0 and abs(opening.mean() - held_out.gap.mean()) < 0.02
    assert 0.5 < opening.std() / held_out.gap.std() < 2.0

    path = tmp_path / "lipsync.safetensors"
    write_safetensors(path, *model.to_tensors())
    again = load_lipsync(path)
    np.testing.assert_allclose(again.predict(held_out.features), z, rtol=1e-5, atol=1e-5)
    assert again.trained_on == "c0,c1,c2,c3"

    arrays, meta = model.to_tensors()
    with pytest.raises(ValueError, match="do not fit"):
        LipsyncModel.from_tensors({**arrays, "out_bias": arrays["out_bias"][:2]}, meta)
    old = tmp_path / "old.safetensors"
    write_safetensors(old, arrays, {**meta, "version": "1"})
    with pytest.raises(WeightsError, match="not a lip-sync model"):
        load_lipsync(old)


def test_fit_is_reproducible():
    clips = [synthetic_clip(f"c{i}", 120, i) for i in range(3)]
    a, b = fit(clips, seed=3), fit(clips, seed=3)
    np.testing.assert_array_equal(a.hidden, b.hidden)
    assert not np.array_equal(a.hidden, fit(clips, seed=4).hidden)
