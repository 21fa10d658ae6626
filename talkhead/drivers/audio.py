"""Speech → Motion: the mouth follows the phones, the head and eyes follow the voice.

Audio is analysed stretch by stretch (cut at pauses, at most
STRETCH_SECONDS long), leaving a few numbers per video frame, so memory
does not grow with the length of the speech; `SpeechMotion` turns those
numbers into Motion chunk by chunk while the renderer asks for them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from scipy.ndimage import gaussian_filter1d

from talkhead.errors import MediaError
from talkhead.face.canonical import CANONICAL_FACE
from talkhead.face.regions import PARTS
from talkhead.face.shapes import blink_offsets, brow_offsets, rotation_matrices
from talkhead.models.lipsync import LipsyncModel
from talkhead.motion import Motion, face_openings
from talkhead.speech.features import frame_features, lipsync_features
from talkhead.speech.gestures import Gestures, gestures
from talkhead.speech.phones import SAMPLE_RATE, Phone, align_phones
from talkhead.speech.prosody import Prosody, frame_energy_db, prosody, speech_level
from talkhead.speech.transcribe import phones_without_transcript
from talkhead.speech.visemes import closure, mouth_targets

if TYPE_CHECKING:
    from talkhead.models.frond import Frond

STRETCH_SECONDS = 30.0   # longest stretch of audio analysed at once
SILENT_DB = -50.0        # audio whose loud parts stay below this (dBFS) counts as silent
ROUNDING_WIDTH = 0.06    # canonical units the mouth narrows at full rounding

Progress = Callable[[float, float], None]  # (seconds analysed, seconds expected or 0)


@dataclass(frozen=True)
class MouthTrack:
    """Per-frame mouth of one stretch: opening float32 [T] (canonical lip gap), rounding float32 [T] (-1..1),
    from the phonetic driver; with FROND, motion float32 [T,M]: its motion vectors."""

    opening: np.ndarray
    rounding: np.ndarray
    motion: np.ndarray | None = None


def _frame_times(first: int, count: int, fps: float, offset: float) -> np.ndarray:
    """Centres (seconds, relative to a stretch starting at `offset`) of frames first..first+count-1."""
    return (np.arange(first, first + count) + 0.5) / fps - offset


def mouth_track(samples: np.ndarray, phones: list[Phone], times: np.ndarray, model: LipsyncModel,
                pauses: np.ndarray) -> MouthTrack:
    """Mouth of a stretch at `times` (seconds): the model's opening, shut for bilabials and pauses.

    pauses: float [T] 0..1, how surely each frame is a pause.
    """
    opening = model.opening(lipsync_features(samples, phones, times, model.config))
    opening = gaussian_filter1d(opening, 0.6) if len(opening) > 1 else opening
    shut = np.maximum(closure(phones, times), pauses)
    targets = mouth_targets(phones, times)
    return MouthTrack((opening * (1 - shut)).astype(np.float32), targets[:, 1] * (1 - shut))


def frond_mouth(samples: np.ndarray, phones: list[Phone], times: np.ndarray, frond: Frond,
                pauses: np.ndarray) -> MouthTrack:
    """Mouth of a stretch from FROND's motion estimator: its trajectory read at `times` (seconds), drawn
    back to rest for bilabials and pauses (float [T] 0..1, how surely each frame is one)."""
    import torch

    with torch.no_grad():
        path = frond.estimator.trajectory(torch.from_numpy(frame_features(samples, phones))[None])
        motion = path.at(torch.from_numpy(times.astype(np.float32)))[0]
        rest = frond.encoder.rest()
        shut = torch.from_numpy(np.maximum(closure(phones, times), pauses).astype(np.float32))[:, None]
        motion = rest + (1 - shut) * frond.estimator.gain * (motion - rest)
        opening = face_openings((CANONICAL_FACE[None] + frond.encoder.decode(motion).numpy()))[:, 0]
    return MouthTrack(np.maximum(opening, 0).astype(np.float32), np.zeros(len(times), np.float32),
                      motion.numpy().astype(np.float32))


def stretches(blocks: Iterable[np.ndarray], limit: float = STRETCH_SECONDS) -> Iterator[tuple[int, np.ndarray]]:
    """(first sample, samples) of consecutive stretches of at most `limit` seconds, cut at the quietest moment."""
    size = int(limit * SAMPLE_RATE)
    buffer, start = np.zeros(0, np.float32), 0
    for block in blocks:
        buffer = np.concatenate([buffer, block])
        while len(buffer) > size:
            energy = frame_energy_db(buffer[size // 2:size])
            quiet = np.convolve(energy, np.ones(20) / 20, mode="same")  # 200 ms windows
            cut = size // 2 + int(np.argmin(quiet)) * (SAMPLE_RATE // 100)
            yield start, buffer[:cut]
            buffer, start = buffer[cut:], start + cut
    if len(buffer):
        yield start, buffer


@dataclass(frozen=True)
class SpeechTrack:
    """Everything per frame that speech decides (fps; arrays of length T)."""

    fps: float
    mouth: MouthTrack
    prosody: Prosody
    gestures: Gestures

    def __len__(self) -> int:
        return len(self.mouth.opening)


def analyse_speech(blocks: Iterable[np.ndarray], fps: float, model: LipsyncModel, text: str | None = None,
                   style: str = "natural", seed: int = 0, progress: Progress | None = None,
                   expected: float = 0.0, frond: Frond | None = None) -> SpeechTrack:
    """Analyse speech given as float32 blocks at SAMPLE_RATE; with `text`, phones come from forced alignment.
    With `frond`, its motion estimator moves the mouth, else the phonetic driver (visemes and `model`).

    Raises MediaError for silent audio.
    """
    if text is None:
        pieces = stretches(blocks)
    else:  # the transcript belongs to the whole recording: align it in one piece
        whole = list(blocks)
        pieces = [(0, np.concatenate(whole))] if whole else []
    mouths, moods, done, total, loudest = [], [], 0, 0, -200.0
    for start, samples in pieces:
        total = start + len(samples)
        count = int(round(total / SAMPLE_RATE * fps)) - done
        energy = frame_energy_db(samples)
        level = speech_level(energy)
        loudest = max(loudest, level)
        if count <= 0:  # a sliver shorter than half a frame: its sound belongs to the frames around it
            continue
        times = _frame_times(done, count, fps, start / SAMPLE_RATE)
        if level < SILENT_DB:  # nothing to say here: mouth shut, no analysis
            still = _rest_motion(frond, count)
            mouths.append(MouthTrack(np.zeros(count, np.float32), np.zeros(count, np.float32), still))
            moods.append(Prosody(np.full(count, -100, np.float32), np.zeros(count, np.float32),
                                 np.zeros(count, np.float32)))
        else:
            phones = align_phones(samples, text) if text is not None else phones_without_transcript(samples)
            moods.append(prosody(samples, times, energy))
            pauses = gaussian_filter1d(1.0 - moods[-1].speaking, 0.08 * fps) if count > 1 else 1 - moods[-1].speaking
            pauses = np.clip(pauses * 1.6 - 0.3, 0, 1)
            mouths.append(frond_mouth(samples, phones, times, frond, pauses) if frond is not None else
                          mouth_track(samples, phones, times, model, pauses))
        done += count
        if progress:
            progress(total / SAMPLE_RATE, expected)
    if total == 0:
        raise MediaError("the audio is empty: give a file with speech in it")
    if done == 0:
        raise MediaError(f"the audio lasts {total / SAMPLE_RATE * 1000:.0f} ms, shorter than one video frame: "
                         "give a longer recording")
    if loudest < SILENT_DB:
        raise MediaError(f"the audio is silent (loudest parts at {loudest:.0f} dBFS): give a file with speech in it")
    mouth = MouthTrack(*(np.concatenate([getattr(m, f) for m in mouths]) for f in ("opening", "rounding")),
                       np.concatenate([m.motion for m in mouths]) if frond is not None else None)
    mood = Prosody(*(np.concatenate([getattr(m, f) for m in moods]) for f in ("loudness", "speaking", "pitch")))
    return SpeechTrack(fps, mouth, mood, gestures(mood, fps, style, seed))


def _rest_motion(frond: Frond | None, count: int) -> np.ndarray | None:
    """float32 [count,M]: FROND's motion vector of the face at rest, repeated (None without frond)."""
    if frond is None:
        return None
    import torch

    with torch.no_grad():
        rest = frond.encoder.rest().numpy()
    return np.repeat(rest[None], count, 0).astype(np.float32)


class SpeechMotion:
    """A MotionSource built on demand from a SpeechTrack (see talkhead.motion.MotionSource).

    The phonetic mouth is the measured mouth shapes scaled by opening and rounding; with `frond` (and a
    track made with it), the mouth is FROND's decoded landmark deltas on the mouth and jaw.
    """

    def __init__(self, track: SpeechTrack, model: LipsyncModel, frond: Frond | None = None):
        self.fps = track.fps
        self.track = track
        self._open = model.open_shape.astype(np.float32)
        self._wide = model.wide_shape.astype(np.float32)
        self._blink, self._brows = blink_offsets(), brow_offsets()
        self._rest_gap = float(face_openings(CANONICAL_FACE[None])[0, 0])
        self._frond = frond if track.mouth.motion is not None else None
        self._mouth_part = PARTS["mouth"][:, None].astype(np.float32)
        self._closed = (CANONICAL_FACE - self._rest_gap * self._open).astype(np.float32)  # lips just closed

    def __len__(self) -> int:
        return len(self.track)

    def chunk(self, frames: slice) -> Motion:
        """Motion of `frames`: expression float32 [t,478,3] from mouth, blink and brow amounts; head from gestures."""
        t, g, m = self.track, self.track.gestures, self.track.mouth
        opening, rounding = m.opening[frames], m.rounding[frames]
        if self._frond is not None:   # FROND's mouth: its decoded deltas on the mouth and jaw
            mouth = self._closed[None] + self._mouth_part * self._decode(m.motion[frames])
        else:                         # the phonetic mouth: measured shapes, scaled
            mouth = (self._closed[None] + opening[:, None, None] * self._open
                     - (ROUNDING_WIDTH * rounding)[:, None, None] * self._wide)
        expression = mouth + g.blink[frames, None, None] * self._blink + g.brows[frames, None, None] * self._brows
        pitch, yaw, roll = np.radians(g.angles[frames]).T
        count = len(opening)
        return Motion(t.fps, rotation_matrices(pitch, yaw, roll).astype(np.float32), g.shift[frames].copy(),
                      np.ones(count, np.float32), expression.astype(np.float32), np.ones(count, bool))

    def _decode(self, motion: np.ndarray) -> np.ndarray:
        """FROND motion vectors float [t,M] → landmark deltas float32 [t,478,3]."""
        import torch

        with torch.no_grad():
            return self._frond.encoder.decode(torch.from_numpy(motion)).numpy()

    def rest(self, gap: float) -> Motion:
        """The one-frame Motion standing for a portrait at rest whose lips are `gap` apart (canonical units)."""
        expression = CANONICAL_FACE + (gap - self._rest_gap) * self._open
        return Motion(self.fps, np.eye(3, dtype=np.float32)[None], np.zeros((1, 3), np.float32),
                      np.ones(1, np.float32), expression[None].astype(np.float32), np.ones(1, bool))
