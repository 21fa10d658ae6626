"""A built-in demo: a portrait shipped by a dependency, moved by procedural motion.

`procedural_motion` makes a Motion without any driving video — gentle nods and
turns, a mouth opening and closing, and blinks — from the canonical face, so
`talkhead demo` runs on a fresh install with no input files.
"""

from __future__ import annotations

import numpy as np

from talkhead.face.canonical import CANONICAL_FACE
from talkhead.face.shapes import blink_offsets, mouth_open_offsets, rotation_matrices
from talkhead.motion import Motion


def procedural_motion(seconds: float = 6.0, fps: float = 25.0, seed: int = 0) -> Motion:
    """A lively, deterministic Motion: nods, turns, speech-like mouth, blinks."""
    rng = np.random.default_rng(seed)
    t = np.arange(max(1, int(round(seconds * fps)))) / fps
    pitch = np.radians(4 * np.sin(2 * np.pi * 0.35 * t) + 2 * np.sin(2 * np.pi * 1.1 * t))
    yaw = np.radians(7 * np.sin(2 * np.pi * 0.2 * t + 1.0))
    roll = np.radians(3 * np.sin(2 * np.pi * 0.27 * t + 0.5))
    syll = np.clip(np.sin(2 * np.pi * 2.6 * t) * 0.6 + 0.4, 0, 1)
    talking = (np.sin(2 * np.pi * 0.25 * t) > -0.5).astype(float)
    mouth = syll * talking * (0.6 + 0.4 * np.abs(np.sin(2 * np.pi * 0.9 * t)))
    mouth[0] = 0.0
    blink = np.zeros(len(t))
    for start in np.arange(1.0, seconds, 2.7) + rng.uniform(-0.3, 0.3, size=len(np.arange(1.0, seconds, 2.7))):
        blink += np.exp(-0.5 * ((t - start) / 0.05) ** 2)
    blink = np.clip(blink, 0, 1)
    expression = (CANONICAL_FACE[None] + mouth[:, None, None] * mouth_open_offsets()[None]
                  + blink[:, None, None] * blink_offsets()[None])
    translation = np.zeros((len(t), 3))
    translation[:, 0] = 0.03 * np.sin(2 * np.pi * 0.15 * t)
    return Motion(fps=fps, rotation=rotation_matrices(pitch, yaw, roll).astype(np.float32),
                  translation=translation.astype(np.float32), scale=np.ones(len(t), np.float32),
                  expression=expression.astype(np.float32), valid=np.ones(len(t), bool))


def demo_portrait() -> np.ndarray:
    """uint8 [512,512,3] RGB: scikit-image's bundled astronaut photo (public domain)."""
    from skimage import data

    return np.ascontiguousarray(data.astronaut()[..., :3])
