"""The lip-sync model: speech features → how far the mouth is open, plus measured mouth shapes.

A small ensemble of one-hidden-layer networks from
`talkhead.speech.features.lipsync_features` (log-mel and phone context) to
the inner-lip gap, fitted on real talking clips by `talkhead.train.lipsync`.
It predicts the gap in standard units of the speaker's own range; `opening`
turns that into canonical face units with the training clips' typical
speaking range. Prediction is plain numpy (no torch at run time).

The mouth shapes are measured too: `open_shape` is the displacement of
every landmark per canonical unit of lip gap (the jaw and chin follow),
`wide_shape` per unit of mouth width (spread lips; negative is rounding).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

import numpy as np

from talkhead.speech.features import FeatureConfig

KIND = "talkhead-lipsync"
VERSION = 2
_ARRAYS = ("mean", "scale", "hidden", "hidden_bias", "out", "out_bias", "open_shape", "wide_shape")


def gelu(x: np.ndarray) -> np.ndarray:
    """The Gaussian error linear unit, x·Φ(x) (as torch.nn.GELU computes it)."""
    from scipy.special import erf

    return 0.5 * x * (1.0 + erf(x / np.sqrt(2.0)))


@dataclass(frozen=True)
class LipsyncModel:
    """mean, scale: float32 [D] feature normalisation.

    hidden [K,H,D], hidden_bias [K,H], out [K,H], out_bias [K]: K networks of H hidden units; their outputs
    are averaged.

    gap_mid, gap_spread: canonical units; a prediction z maps to gap_mid + gap_spread * z.
    open_shape, wide_shape: float32 [478,3] canonical units per unit of gap / width.
    """

    config: FeatureConfig
    mean: np.ndarray
    scale: np.ndarray
    hidden: np.ndarray
    hidden_bias: np.ndarray
    out: np.ndarray
    out_bias: np.ndarray
    gap_mid: float
    gap_spread: float
    open_shape: np.ndarray
    wide_shape: np.ndarray
    trained_on: str = ""

    def predict(self, features: np.ndarray) -> np.ndarray:
        """float32 [T] standardised gap for features float32 [T,D]."""
        x = ((features - self.mean) / self.scale).astype(np.float32)
        h = gelu(np.matmul(x[None], self.hidden.transpose(0, 2, 1)) + self.hidden_bias[:, None])  # [K,T,H]
        return (np.matmul(h, self.out[:, :, None])[..., 0] + self.out_bias[:, None]).mean(0).astype(np.float32)

    def opening(self, features: np.ndarray) -> np.ndarray:
        """float32 [T] inner-lip gap in canonical units (0 = closed), before closures are applied."""
        return np.maximum(0.0, self.gap_mid + self.gap_spread * self.predict(features)).astype(np.float32)

    def to_tensors(self) -> tuple[dict[str, np.ndarray], dict[str, str]]:
        """Arrays and string metadata for a safetensors file."""
        arrays = {name: np.ascontiguousarray(getattr(self, name), dtype=np.float32)
                  for name in _ARRAYS}
        meta = {"kind": KIND, "version": str(VERSION), "config": json.dumps(asdict(self.config)),
                "gap_mid": repr(self.gap_mid), "gap_spread": repr(self.gap_spread),
                "trained_on": self.trained_on}
        return arrays, meta

    @classmethod
    def from_tensors(cls, arrays: dict[str, np.ndarray], meta: dict[str, str]) -> "LipsyncModel":
        """Rebuild from `to_tensors` output; ValueError if it is not a lip-sync model this code reads."""
        if meta.get("kind") != KIND or meta.get("version") != str(VERSION):
            raise ValueError(f"not a {KIND} v{VERSION} file (kind={meta.get('kind')}, version={meta.get('version')}; "
                             "refit it with python -m talkhead.train.lipsync)")
        config = FeatureConfig(**json.loads(meta["config"]))
        missing = [name for name in _ARRAYS if name not in arrays]
        if missing:
            raise ValueError(f"arrays missing: {', '.join(missing)}")
        model = cls(config, gap_mid=float(meta["gap_mid"]), gap_spread=float(meta["gap_spread"]),
                    trained_on=meta.get("trained_on", ""), **{name: arrays[name] for name in _ARRAYS})
        k, h, d = model.hidden.shape
        if not (model.mean.shape == model.scale.shape == (d,) == (config.size,) and model.hidden_bias.shape
                == model.out.shape == (k, h) and model.out_bias.shape == (k,)):
            raise ValueError(f"network shapes {model.hidden.shape} do not fit the feature config ({config.size})")
        return model
