"""Speech → Motion: the mouth follows the phones, the head and eyes follow the voice.

Audio is analysed stretch by stretch (cut at pauses, at most
STRETCH_SECONDS long), leaving a few numbers per video frame, so memory
does not grow with the length of the speech; `SpeechMotion` turns those
numbers into Motion chunk by chunk while the renderer asks for them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

import numpy as np
from scipy.ndimage import gaussian_filter1d

from talkhead.errors import MediaError
from talkhead.face.canonical import CANONICAL_FACE
from talkhead.face.shapes import blink_offsets, brow_offsets, rotation_matrices
from talkhead.models.lipsync import LipsyncModel
from talkhead.motion import Motion, face_openings
from talkhead.speech.features import lipsync_features
from talkhead.speech.gestures import Gestures, gestures
from talkhead.speech.phones import SAMPLE_RATE, Phone, align_phones
from talkhead.speech.prosody import Prosody, frame_energy_db, prosody, speech_level
from talkhead.speech.transcribe import phones_without_transcript
from talkhead.speech.visemes import closure, mouth_targets

STRETCH_SECONDS = 30.0   # longest stretch of audio analysed at once
SILENT_DB = -50.0        # audio whose loud parts stay below this (dBFS) counts as silent
ROUNDING_WIDTH = 0.06    # canonical units the mouth narrows at full rounding

Progress = Callable[[float, float], None]  # (seconds analysed, seconds expected or 0)


@dataclass(frozen=True)
class MouthTrack:
    """Per-frame mouth of one stretch: opening float32 [T] (canonical lip gap), rounding float32 [T] (-1..1)."""

    opening: np.ndarray
    rounding: np.ndarray


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
                   expected: float = 0.0) -> SpeechTrack:
    """Analyse speech given as float32 blocks at SAMPLE_RATE; with `text`, phones come from forced alignment.

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
            mouths.append(MouthTrack(np.zeros(count, np.float32), np.zeros(count, np.float32)))
            moods.append(Prosody(np.full(count, -100, np.float32), np.zeros(count, np.float32),
                                 np.zeros(count, np.float32)))
        else:
            phones = align_phones(samples, text) if text is not None else phones_without_transcript(samples)
            moods.append(prosody(samples, times, energy))
            pauses = gaussian_filter1d(1.0 - moods[-1].speaking, 0.08 * fps) if count > 1 else 1 - moods[-1].speaking
            mouths.append(mouth_track(samples, phones, times, model, np.clip(pauses * 1.6 - 0.3, 0, 1)))
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
    mouth = MouthTrack(*(np.concatenate([getattr(m, f) for m in mouths]) for f in ("opening", "rounding")))
    mood = Prosody(*(np.concatenate([getattr(m, f) for m in moods]) for f in ("loudness", "speaking", "pitch")))
    return SpeechTrack(fps, mouth, mood, gestures(mood, fps, style, seed))


class SpeechMotion:
    """A MotionSource built on demand from a SpeechTrack (see talkhead.motion.MotionSource)."""

    def __init__(self, track: SpeechTrack, model: LipsyncModel):
        self.fps = track.fps
        self.track = track
        self._open = model.open_shape.astype(np.float32)
        self._wide = model.wide_shape.astype(np.float32)
        self._blink, self._brows = blink_offsets(), brow_offsets()
        self._rest_gap = float(face_openings(CANONICAL_FACE[None])[0, 0])

    def __len__(self) -> int:
        return len(self.track)

    def chunk(self, frames: slice) -> Motion:
        """Motion of `frames`: expression float32 [t,478,3] from mouth, blink and brow amounts; head from gestures."""
        t, g, m = self.track, self.track.gestures, self.track.mouth
        opening, rounding = m.opening[frames], m.rounding[frames]
        expression = (CANONICAL_FACE[None] + (opening - self._rest_gap)[:, None, None] * self._open
                      - (ROUNDING_WIDTH * rounding)[:, None, None] * self._wide
                      + g.blink[frames, None, None] * self._blink + g.brows[frames, None, None] * self._brows)
        pitch, yaw, roll = np.radians(g.angles[frames]).T
        count = len(opening)
        return Motion(t.fps, rotation_matrices(pitch, yaw, roll).astype(np.float32), g.shift[frames].copy(),
                      np.ones(count, np.float32), expression.astype(np.float32), np.ones(count, bool))

    def rest(self, gap: float) -> Motion:
        """The one-frame Motion standing for a portrait at rest whose lips are `gap` apart (canonical units)."""
        expression = CANONICAL_FACE + (gap - self._rest_gap) * self._open
        return Motion(self.fps, np.eye(3, dtype=np.float32)[None], np.zeros((1, 3), np.float32),
                      np.ones(1, np.float32), expression[None].astype(np.float32), np.ones(1, bool))
