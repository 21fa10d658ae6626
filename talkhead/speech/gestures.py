"""Head motion, blinks and brow raises that go with speech.

Arrays in, arrays out, all per video frame. Randomness comes only from a
numpy Generator the caller seeds, so a run is reproducible.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.ndimage import convolve1d, gaussian_filter1d, maximum_filter1d
from scipy.signal import lfilter

from talkhead.options import POSE_STYLES
from talkhead.speech.prosody import Prosody

POSE_GAINS = dict(zip(POSE_STYLES, (0.0, 1.0, 1.8)))  # gain on every head movement, per --pose
BLINKS_PER_MINUTE = 17.0
BLINK_GAP = 1.2              # seconds: shortest time between two blinks
BLINK_SECONDS = (0.15, 0.35)  # shortest and longest blink


@dataclass(frozen=True)
class Gestures:
    """angles float32 [T,3] (pitch, yaw, roll in degrees; pitch > 0 nods down),
    shift float32 [T,3] (face units), blink float32 [T] (0 open .. 1 shut), brows float32 [T] (0 rest .. 1 raised)."""

    angles: np.ndarray
    shift: np.ndarray
    blink: np.ndarray
    brows: np.ndarray

    @property
    def blinks(self) -> int:
        """How many blinks there are (times the eyes pass half shut)."""
        shut = self.blink > 0.5
        return int((shut[1:] & ~shut[:-1]).sum())


def _drift(rng: np.random.Generator, count: int, fps: float, seconds: float) -> np.ndarray:
    """float [count]: smooth random wander with unit standard deviation, changing over about `seconds`."""
    noise = gaussian_filter1d(rng.standard_normal(count + int(4 * seconds * fps)), seconds * fps / 2, mode="wrap")
    noise = noise[int(2 * seconds * fps):][:count]
    return noise / (noise.std() + 1e-9) if count > 1 else np.zeros(count)


def accents(prosody: Prosody, fps: float) -> np.ndarray:
    """float [T] in 0..1: strength of stressed syllables (loudness and pitch peaks), 0 elsewhere."""
    loud = gaussian_filter1d(np.clip(prosody.loudness + 20.0, 0, None) / 20.0, 0.06 * fps)
    rise = np.clip(prosody.pitch, 0, 6) / 6
    score = loud * (0.6 + 0.4 * gaussian_filter1d(rise, 0.05 * fps)) * prosody.speaking
    peaks = (score == maximum_filter1d(score, int(0.45 * fps) | 1)) & (score > 0.45)
    return np.where(peaks, score, 0.0)


def _nods(strength: np.ndarray, fps: float) -> np.ndarray:
    """Degrees [T] of pitch: a damped down-and-back nod (about 0.4 s) after each accent."""
    period, damping = 0.45 * fps, 0.55
    w = 2 * np.pi / period
    r = np.exp(-damping * w)
    # second-order resonator: impulse response r^n sin(w n)
    return lfilter([0.0, r * np.sin(w)], [1.0, -2 * r * np.cos(w), r * r], strength) * 3.0


def _blinks(rng: np.random.Generator, count: int, fps: float) -> np.ndarray:
    """float [T] 0..1: blinks at a human rate, each closing fast and opening slower."""
    out = np.zeros(count)
    mean_gap = 60.0 / BLINKS_PER_MINUTE
    t = rng.uniform(0.5, mean_gap)
    while t * fps < count:
        length = rng.uniform(*BLINK_SECONDS)
        span = np.arange(max(0, int((t - length) * fps)), min(count, int((t + length) * fps) + 2))
        rel = span / fps - t                                          # seconds from the moment of closure
        shape = np.where(rel < 0, 1 + rel / (0.35 * length), 1 - rel / (0.65 * length))
        out[span] = np.maximum(out[span], np.clip(shape, 0, 1) ** 0.7)
        t += length + BLINK_GAP + rng.gamma(2.0, (mean_gap - BLINK_GAP - 0.25) / 2.0)
    return out


def gestures(prosody: Prosody, fps: float, style: str = "natural", seed: int = 0) -> Gestures:
    """Head motion, blinks and brows for a whole speech track (prosody at `fps`)."""
    rng = np.random.default_rng(seed)
    count = len(prosody.speaking)
    gain = POSE_GAINS[style]
    talk = gaussian_filter1d(prosody.speaking, 0.5 * fps)           # slow speaking envelope 0..1
    liveliness = 0.35 + 0.65 * talk                                   # stiller in pauses
    strength = accents(prosody, fps)
    angles = np.zeros((count, 3))
    angles[:, 0] = 1.6 * _drift(rng, count, fps, 2.5) * liveliness + _nods(strength, fps)
    angles[:, 1] = 2.5 * _drift(rng, count, fps, 4.0) * liveliness
    angles[:, 2] = 1.2 * _drift(rng, count, fps, 3.0) * liveliness
    shift = np.zeros((count, 3))
    shift[:, 0] = 0.015 * _drift(rng, count, fps, 5.0)
    shift[:, 1] = 0.008 * _drift(rng, count, fps, 5.0) + 0.004 * gaussian_filter1d(strength, 0.1 * fps)
    width = 0.12 * fps                                                # brow lift: a bump of about 0.3 s
    bump = np.exp(-0.5 * (np.arange(-3 * width, 3 * width + 1) / width) ** 2)
    raise_ = convolve1d(strength * (prosody.pitch > 2.0) * 1.4, bump, mode="constant")  # length kept
    return Gestures((angles * gain).astype(np.float32), (shift * gain).astype(np.float32),
                    _blinks(rng, count, fps).astype(np.float32), np.clip(raise_, 0, 1).astype(np.float32))
