"""Phones → mouth targets, blended over time (coarticulation).

Each ARPAbet phone has a target for the jaw opening (0 closed .. 1 wide
open), for lip rounding (-1 spread .. 1 rounded) and a dominance: how
strongly it holds its target against its neighbours. A bilabial (P, B, M)
must close the lips, so it dominates; an H takes the shape of the vowel
after it, so it barely counts. The track at a time is the dominance-weighted
mean of every phone's target, each weight falling off exponentially with
the distance from the phone (after Cohen & Massaro's dominance model), so
the lips anticipate a closure or a rounding before its sound starts.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from talkhead.speech.phones import Phone

#            opening rounding dominance
VISEMES: dict[str, tuple[float, float, float]] = {
    "AA": (1.00, 0.0, 1.0), "AE": (0.85, -0.4, 1.0), "AH": (0.70, 0.0, 1.0), "AO": (0.85, 0.5, 1.0),
    "AW": (0.90, 0.4, 1.0), "AY": (0.90, -0.2, 1.0), "EH": (0.60, -0.4, 1.0), "ER": (0.40, 0.4, 1.0),
    "EY": (0.55, -0.6, 1.0), "IH": (0.45, -0.5, 1.0), "IY": (0.30, -0.8, 1.0), "OW": (0.60, 0.8, 1.0),
    "OY": (0.70, 0.6, 1.0), "UH": (0.40, 0.6, 1.0), "UW": (0.30, 1.0, 1.0),
    "P": (0.00, 0.0, 3.0), "B": (0.00, 0.0, 3.0), "M": (0.00, 0.0, 3.0),
    "F": (0.12, -0.2, 2.0), "V": (0.12, -0.2, 2.0), "TH": (0.25, 0.0, 0.8), "DH": (0.25, 0.0, 0.8),
    "T": (0.30, 0.0, 0.5), "D": (0.30, 0.0, 0.5), "N": (0.30, 0.0, 0.5), "L": (0.35, 0.0, 0.6),
    "S": (0.20, -0.4, 0.8), "Z": (0.20, -0.4, 0.8), "SH": (0.25, 0.7, 1.2), "ZH": (0.25, 0.7, 1.2),
    "CH": (0.25, 0.7, 1.2), "JH": (0.25, 0.7, 1.2), "K": (0.35, 0.0, 0.5), "G": (0.35, 0.0, 0.5),
    "NG": (0.35, 0.0, 0.5), "HH": (0.50, 0.0, 0.2), "R": (0.30, 0.5, 0.6), "W": (0.20, 1.0, 1.5),
    "Y": (0.30, -0.5, 0.5), "SIL": (0.00, 0.0, 1.5),
}
PHONES = tuple(sorted(VISEMES))  # column order of phone features
BILABIALS = frozenset({"P", "B", "M"})
REACH = 0.04  # seconds: how far a phone's influence reaches beyond its own span (e-folding)


def _weights(phones: Sequence[Phone], times: np.ndarray, reach: float) -> tuple[np.ndarray, np.ndarray]:
    """Per-phone influence [P,T] at `times` (seconds) and the phones' table rows [P,3]."""
    start = np.array([p.start for p in phones])[:, None]
    end = np.array([p.end for p in phones])[:, None]
    table = np.array([VISEMES.get(p.label, VISEMES["SIL"]) for p in phones])
    outside = np.maximum(0.0, np.maximum(start - times[None], times[None] - end))
    return table[:, 2:3] * np.exp(-outside / reach), table


def mouth_targets(phones: Sequence[Phone], times: np.ndarray, reach: float = REACH) -> np.ndarray:
    """Coarticulated mouth targets float32 [T,2] (opening 0..1, rounding -1..1) at `times` (seconds)."""
    if not phones:
        return np.zeros((len(times), 2), np.float32)
    weight, table = _weights(phones, times, reach)
    # Phones with no rounding of their own (bilabials, pauses, most consonants) take their
    # neighbours' rounding: their dominance counts for the opening only.
    round_weight = weight * np.where(table[:, 1:2] != 0, 1.0, 0.3 / table[:, 2:3])
    opening = (weight * table[:, :1]).sum(0) / np.maximum(weight.sum(0), 1e-12)
    rounding = (round_weight * table[:, 1:2]).sum(0) / np.maximum(round_weight.sum(0), 1e-12)
    return np.stack([opening, rounding], 1).astype(np.float32)


def closure(phones: Sequence[Phone], times: np.ndarray, reach: float = 0.035) -> np.ndarray:
    """How firmly the lips are pressed shut float32 [T] in 0..1: 1 inside a bilabial (P, B, M), falling off outside.

    Pauses are not closed here: a recognised pause inside speech is often a
    breath with the mouth open (closing them cut the correlation with real
    mouths from 0.54 to 0.46 on the benchmark clips); silence in the audio
    itself closes the mouth (see talkhead.drivers.audio).
    """
    out = np.zeros(len(times))
    for p in phones:
        if p.label in BILABIALS:
            d = np.maximum(0.0, np.maximum(p.start - times, times - p.end))
            out = np.maximum(out, np.exp(-((d / reach) ** 2)))
    return out.astype(np.float32)
