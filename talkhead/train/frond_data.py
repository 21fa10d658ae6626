"""Training data for FROND's motion stage: talking clips with speech → audio features and landmark deltas.

A clip's speech is its own audio track, or a sound file with the same name
(stem) anywhere under the data folder (a separate recording of a silent
video). The slow measurements (face tracking, phone recognition, as `speak`
does them without a transcript) are cached per clip as .npz.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from talkhead.io.files import load_arrays, save_arrays
from talkhead.speech.features import frame_features
from talkhead.speech.phones import FRAME_RATE, Phone
from talkhead.train.codebook_data import find_clips
from talkhead.train.lipsync import Recording, lip_gap, record_clip

SOUND_SUFFIXES = (".wav", ".mp3", ".flac", ".m4a", ".aac", ".ogg")
REST_SHARE = 0.1   # a clip's rest face: the mean of its frames with the closest lips (this share of them)
RECORDING_VERSION = "2"  # bump when what a recording holds changes (2: phones recognised stretch by stretch)


def talking_clips(data: Path, exclude: tuple[str, ...] = ()) -> list[tuple[Path, Path | None]]:
    """(video, separate speech or None) for every video under `data` that has speech, sorted by path."""
    from talkhead.io.mux import has_audio

    sounds = {p.stem: p for p in sorted(data.rglob("*")) if p.suffix.lower() in SOUND_SUFFIXES and p.is_file()}
    out = []
    for video in find_clips(data):
        if video.stem in exclude:
            continue
        if has_audio(video):
            out.append((video, None))
        elif video.stem in sounds:
            out.append((video, sounds[video.stem]))
    return out


def cached_recording(video: Path, audio: Path | None, cache: Path) -> Recording:
    """`record_clip(video, audio)`, kept in `cache` as .npz (keyed by the files' paths and sizes)."""
    files = [video] + ([audio] if audio else [])
    key = hashlib.sha1("|".join([RECORDING_VERSION] + [f"{p.resolve()}|{p.stat().st_size}" for p in files]).encode()
                       ).hexdigest()
    path = cache / f"{video.stem}-{key[:12]}.npz"
    if not path.exists():
        cache.mkdir(parents=True, exist_ok=True)
        r = record_clip(video, audio)
        save_arrays(path, fps=np.float32(r.fps), expression=r.expression, samples=r.samples,
                    labels=np.array([p.label for p in r.phones]), starts=np.array([p.start for p in r.phones]),
                    ends=np.array([p.end for p in r.phones]))
    d = load_arrays(path)
    phones = [Phone(str(lab), float(a), float(b)) for lab, a, b in zip(d["labels"], d["starts"], d["ends"])]
    return Recording(video.stem, float(d["fps"]), d["expression"], d["samples"], phones)


def rest_face(expression: np.ndarray) -> np.ndarray:
    """float32 [478,3]: the clip's face at rest, the mean of its frames with the least open lips."""
    gap = lip_gap(expression)
    closest = np.argsort(gap)[:max(1, int(len(gap) * REST_SHARE))]
    return expression[closest].mean(0).astype(np.float32)


@dataclass(frozen=True)
class MotionClip:
    """features float32 [F,D] every 10 ms; times float32 [T] (seconds, video frame centres);
    delta float32 [T,478,3]: each frame's expression minus the clip's rest face."""

    name: str
    features: np.ndarray
    times: np.ndarray
    delta: np.ndarray


def motion_clip(recording: Recording) -> MotionClip:
    r = recording
    features = frame_features(r.samples, r.phones)
    times = ((np.arange(len(r.expression)) + 0.5) / r.fps).astype(np.float32)
    keep = times < len(features) / FRAME_RATE      # frames the audio covers
    delta = (r.expression - rest_face(r.expression))[keep]
    return MotionClip(r.name, features, times[keep], delta.astype(np.float32))
