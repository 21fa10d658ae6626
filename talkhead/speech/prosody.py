"""Loudness, pauses, pitch and accents of speech, per video frame.

Arrays in, arrays out: `samples` float32 [N] mono at SAMPLE_RATE in [-1, 1],
`times` float [T] seconds (frame centres) relative to the samples' start.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from talkhead.speech.features import HOP, SAMPLE_RATE

SILENCE_DB = -30.0    # frames this far below the speech level count as pause
PITCH_RANGE = (70.0, 400.0)  # Hz searched for the voice's fundamental


@dataclass(frozen=True)
class Prosody:
    """Per-frame prosody, each float32 [T].

    loudness: dB relative to the stretch's speech level (0 = typical stressed syllable).
    speaking: 1 while speaking, 0 in pauses (hard decision, before any smoothing).
    pitch: semitones relative to the stretch's median voiced pitch; 0 where unvoiced.
    """

    loudness: np.ndarray
    speaking: np.ndarray
    pitch: np.ndarray


def frame_energy_db(samples: np.ndarray) -> np.ndarray:
    """float32 [F] dB energy of 10 ms frames (25 ms windows)."""
    pad = np.pad(samples.astype(np.float32), (200, 200))
    count = max(1, len(samples) // HOP)
    win = np.lib.stride_tricks.sliding_window_view(pad, 400)[::HOP][:count]
    return (10 * np.log10(np.mean(win.astype(np.float64) ** 2, axis=1) + 1e-10)).astype(np.float32)


def speech_level(energy_db: np.ndarray) -> float:
    """dB level of loud speech in a stretch (95th percentile of frame energy)."""
    return float(np.percentile(energy_db, 95)) if len(energy_db) else -100.0


def prosody(samples: np.ndarray, times: np.ndarray, energy: np.ndarray | None = None) -> Prosody:
    """Prosody at `times`; `energy`: the samples' `frame_energy_db`, if the caller has it already."""
    import librosa

    energy = frame_energy_db(samples) if energy is None else energy
    level = speech_level(energy)
    index = np.clip(np.round(times * SAMPLE_RATE / HOP).astype(int), 0, max(0, len(energy) - 1))
    loud = energy[index] - level if len(energy) else np.full(len(times), -100.0, np.float32)
    speaking = (loud > SILENCE_DB).astype(np.float32)
    pitch = np.zeros(len(times), np.float32)
    if len(samples) >= 2048:
        f0 = librosa.yin(samples.astype(np.float32), fmin=PITCH_RANGE[0], fmax=PITCH_RANGE[1], sr=SAMPLE_RATE,
                         frame_length=1024, hop_length=HOP)
        f0 = f0[np.clip(index, 0, len(f0) - 1)]
        voiced = (loud > -20.0) & (f0 < PITCH_RANGE[1] * 0.98) & (f0 > PITCH_RANGE[0] * 1.02)
        if voiced.sum() > 5:
            semis = 12 * np.log2(f0 / np.median(f0[voiced]))
            pitch = np.where(voiced, semis, 0.0).astype(np.float32)
    return Prosody(loud.astype(np.float32), speaking, pitch)
