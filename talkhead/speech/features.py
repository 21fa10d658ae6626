"""Acoustic and phonetic features of a stretch of speech, sampled at video frame times.

Everything here works on arrays: `samples` are float32 [N] mono at
SAMPLE_RATE in [-1, 1]; feature frames come every HOP samples (100 per second).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from talkhead.speech.phones import FRAME_RATE, SAMPLE_RATE, Phone
from talkhead.speech.visemes import PHONES

HOP = SAMPLE_RATE // FRAME_RATE  # samples: 10 ms feature frames, as pocketsphinx's
N_FFT = 512                   # 32 ms analysis window
N_MELS = 40
F_MIN, F_MAX = 60.0, 7600.0   # Hz


@dataclass(frozen=True)
class FeatureConfig:
    """Context windows (in 10 ms feature frames) around each video frame."""

    mel_reach: int = 8        # ±80 ms of log-mel, every frame
    mel_step: int = 1
    phone_reach: int = 15     # ±150 ms of phone activity, every 30 ms
    phone_step: int = 3
    phone_blur: float = 2.0   # feature frames (s.d. of the Gaussian that softens phone edges)

    @property
    def size(self) -> int:
        mel = len(range(-self.mel_reach, self.mel_reach + 1, self.mel_step)) * N_MELS
        return mel + len(range(-self.phone_reach, self.phone_reach + 1, self.phone_step)) * len(PHONES)


def log_mel(samples: np.ndarray) -> np.ndarray:
    """float32 [F,N_MELS]: log mel energies, normalised per band over the stretch (mean 0, s.d. 1)."""
    import librosa

    mel = librosa.feature.melspectrogram(y=samples.astype(np.float32), sr=SAMPLE_RATE, n_fft=N_FFT, hop_length=HOP,
                                         n_mels=N_MELS, fmin=F_MIN, fmax=F_MAX)
    feats = np.log(mel + 1e-6).T
    return ((feats - feats.mean(0)) / (feats.std(0) + 1e-3)).astype(np.float32)


def phone_activity(phones: Sequence[Phone], frames: int, blur: float) -> np.ndarray:
    """float32 [frames,len(PHONES)]: which phone sounds in each 10 ms frame, edges softened."""
    from scipy.ndimage import gaussian_filter1d

    active = np.zeros((frames, len(PHONES)), np.float32)
    for p in phones:
        col = PHONES.index(p.label) if p.label in PHONES else PHONES.index("SIL")
        active[int(round(p.start * FRAME_RATE)):int(round(p.end * FRAME_RATE)) + 1, col] = 1.0
    return gaussian_filter1d(active, blur, axis=0) if blur > 0 else active


def around(feats: np.ndarray, times: np.ndarray, reach: int, step: int) -> np.ndarray:
    """float32 [T, taps*D]: rows of feats [F,D] around each time (seconds), clamped at the ends."""
    centre = np.round(times * FRAME_RATE).astype(int)
    taps = np.arange(-reach, reach + 1, step)
    index = np.clip(centre[:, None] + taps[None], 0, len(feats) - 1)  # [T,taps]
    return feats[index].reshape(len(times), -1)


def lipsync_features(samples: np.ndarray, phones: Sequence[Phone], times: np.ndarray,
                     config: FeatureConfig = FeatureConfig()) -> np.ndarray:
    """float32 [T,config.size]: log-mel and phone context around each time (seconds from the stretch's start)."""
    mel = log_mel(samples)
    active = phone_activity(phones, len(mel), config.phone_blur)
    return np.concatenate([around(mel, times, config.mel_reach, config.mel_step),
                           around(active, times, config.phone_reach, config.phone_step)], 1)


def frame_features(samples: np.ndarray, phones: Sequence[Phone], blur: float = 2.0) -> np.ndarray:
    """float32 [F, N_MELS + len(PHONES)]: log-mel and phone activity every 10 ms (frame f centred at f/100 s)."""
    mel = log_mel(samples)
    return np.concatenate([mel, phone_activity(phones, len(mel), blur)], 1)
