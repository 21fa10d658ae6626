"""Speech → Motion: the mouth follows the phones, the head and eyes follow the voice.

Audio is cut into stretches at quiet moments (short at first, growing to
STRETCH_SECONDS). `listen` reads it once for prosody and gestures and hands
each stretch to helper processes that recognise its phones; the mouth of a
stretch is worked out when the renderer reaches it (`SpeechStream`), so the
renderer starts after the first stretch and the recogniser works on the
next ones beside it. Only a few numbers per video frame are kept, so memory
does not grow with the length of the speech; `SpeechMotion` turns those
numbers into Motion chunk by chunk while the renderer asks for them.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
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
from talkhead.speech.phones import SAMPLE_RATE, SILENCE, Phone, align_phones
from talkhead.speech.prosody import Prosody, frame_energy_db, prosody, speech_level
from talkhead.speech.transcribe import phones_without_transcript
from talkhead.speech.visemes import closure, mouth_targets
from talkhead.speech.worker import Recognizer

if TYPE_CHECKING:
    from talkhead.models.frond import Frond

STRETCH_SECONDS = 30.0   # longest stretch of audio analysed at once
FIRST_STRETCH_SECONDS = 6.0  # window of the first stretch: rendering waits for its phones
GROWTH = 2.0             # each stretch's window is this much longer than the one before
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


def stretches(blocks: Iterable[np.ndarray], limit: float = STRETCH_SECONDS,
              first: float | None = None) -> Iterator[tuple[int, np.ndarray]]:
    """(first sample, samples) of consecutive stretches, each cut at the quietest moment of the second half
    of its window. The first window is `first` seconds (default `limit`); each next one is GROWTH times the
    one before, up to `limit`: short first stretches let rendering start early while the rest is analysed."""
    window = min(first or limit, limit)
    buffer, start = np.zeros(0, np.float32), 0
    for block in blocks:
        buffer = np.concatenate([buffer, block])
        while len(buffer) > (size := int(window * SAMPLE_RATE)):
            energy = frame_energy_db(buffer[size // 2:size])
            quiet = np.convolve(energy, np.ones(20) / 20, mode="same")  # 200 ms windows
            cut = size // 2 + int(np.argmin(quiet)) * (SAMPLE_RATE // 100)
            yield start, buffer[:cut]
            buffer, start = buffer[cut:], start + cut
            window = min(window * GROWTH, limit)
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

    def mouth_at(self, frames: slice) -> MouthTrack:
        """The mouth of `frames`."""
        m = self.mouth
        return MouthTrack(m.opening[frames], m.rounding[frames], None if m.motion is None else m.motion[frames])


@dataclass(frozen=True)
class _Stretch:
    """A stretch of speech waiting for its mouth: frames first..first+count-1 at `times` (seconds from the
    stretch's start); its samples saved at `path` (None: silent, the mouth rests); phones if already known."""

    first: int
    count: int
    times: np.ndarray
    path: Path | None = None
    pauses: np.ndarray | None = None
    phones: list[Phone] | None = None


class SpeechStream:
    """Speech listened to once for prosody and gestures, whose mouth is worked out stretch by stretch as
    frames are asked for (in order), while a helper process recognises the phones of the stretches after.

    Has the SpeechTrack interface that SpeechMotion reads (fps, prosody, gestures, len, mouth_at). Use as a
    context manager: closing stops the helper and removes the stretches' files.
    """

    def __init__(self, fps: float, prosody: Prosody, gestures: Gestures, stretches: list[_Stretch],
                 model: LipsyncModel, frond: Frond | None, recognizer: Recognizer, folder) -> None:
        self.fps, self.prosody, self.gestures = fps, prosody, gestures
        self._count = sum(s.count for s in stretches)
        self._pending = deque(stretches)
        self._model, self._frond, self._recognizer, self._folder = model, frond, recognizer, folder
        self._ready: list[tuple[int, MouthTrack]] = []   # (first frame, mouth) of stretches worked out
        self._end = 0                                    # frames worked out so far
        self._heard: Callable[[], None] | None = None

    def __len__(self) -> int:
        return self._count

    @property
    def background(self) -> bool:
        """True while a helper process recognises stretches still to come."""
        return self._recognizer.background and any(s.path is not None and s.phones is None for s in self._pending)

    def when_heard(self, call: Callable[[], None]) -> None:
        """Have `call()` called once the helpers have no stretch left to recognise (now, if they have none)."""
        if self.background:
            self._heard = call
        else:
            call()

    def mouth_at(self, frames: slice) -> MouthTrack:
        """The mouth of `frames` (asked for in order: stretches before them are forgotten)."""
        start, stop, _ = frames.indices(self._count)
        while self._end < stop:
            self._advance()
        self._ready = [(first, m) for first, m in self._ready if first + len(m.opening) > start]
        if start < (self._ready[0][0] if self._ready else self._end):   # before what is still kept
            raise ValueError(f"frame {start} was asked for after later ones: ask for the frames in order")
        pieces = [(m, slice(max(start - first, 0), stop - first)) for first, m in self._ready if first < stop]

        def joined(field: str) -> np.ndarray:
            return np.concatenate([getattr(m, field)[frames] for m, frames in pieces])

        if not pieces:
            return MouthTrack(np.zeros(0, np.float32), np.zeros(0, np.float32))
        return MouthTrack(joined("opening"), joined("rounding"), joined("motion") if self._frond is not None else None)

    def _advance(self) -> None:
        """Work out the mouth of the next stretch."""
        stretch = self._pending.popleft()
        if stretch.path is None:  # nothing said here: mouth shut, no analysis
            count = stretch.count
            mouth = MouthTrack(np.zeros(count, np.float32), np.zeros(count, np.float32), _rest_motion(self._frond, count))
        else:
            phones = stretch.phones if stretch.phones is not None else self._recognizer.next()
            if self._heard is not None and not self.background:
                self._heard, heard = None, self._heard
                heard()
            samples = np.load(stretch.path)
            stretch.path.unlink()
            mouth = (frond_mouth(samples, phones, stretch.times, self._frond, stretch.pauses) if self._frond is not None
                     else mouth_track(samples, phones, stretch.times, self._model, stretch.pauses))
        self._ready.append((stretch.first, mouth))
        self._end = stretch.first + stretch.count

    def close(self) -> None:
        """Stop the helper process and remove the stretches' files."""
        self._recognizer.close()
        self._folder.cleanup()

    def __enter__(self) -> SpeechStream:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


def listen(blocks: Iterable[np.ndarray], fps: float, model: LipsyncModel, text: str | None = None,
           style: str = "natural", seed: int = 0, progress: Progress | None = None, expected: float = 0.0,
           frond: Frond | None = None, background: bool = True, recognizer: Recognizer | None = None
           ) -> SpeechStream:
    """Listen to speech given as float32 blocks at SAMPLE_RATE: prosody and gestures now, the mouth later,
    as the frames are asked for. With `text`, phones come from forced alignment (of the whole recording, done
    now); without, they are recognised stretch by stretch, in a helper process when `background` (or by
    `recognizer`, if given: the stream then owns it).
    With `frond`, its motion estimator moves the mouth, else the phonetic driver (visemes and `model`).

    Raises MediaError for silent audio.
    """
    import tempfile

    folder = tempfile.TemporaryDirectory(prefix="talkhead-speech-")
    recognizer = recognizer or Recognizer(background and text is None)
    try:
        if text is None:
            pieces = stretches(blocks, first=FIRST_STRETCH_SECONDS)
        else:  # the transcript belongs to the whole recording: align it in one piece
            whole = list(blocks)
            pieces = [(0, np.concatenate(whole))] if whole else []
        waiting, moods, done, total, loudest = [], [], 0, 0, -200.0
        for start, samples in pieces:
            total = start + len(samples)
            count = int(round(total / SAMPLE_RATE * fps)) - done
            energy = frame_energy_db(samples)
            level = speech_level(energy)
            loudest = max(loudest, level)
            if count <= 0:  # a sliver shorter than half a frame: its sound belongs to the frames around it
                continue
            times = _frame_times(done, count, fps, start / SAMPLE_RATE)
            if level < SILENT_DB:
                waiting.append(_Stretch(done, count, times))
                moods.append(Prosody(np.full(count, -100, np.float32), np.zeros(count, np.float32),
                                     np.zeros(count, np.float32)))
            else:
                moods.append(prosody(samples, times, energy))
                pauses = gaussian_filter1d(1.0 - moods[-1].speaking, 0.08 * fps) if count > 1 else 1 - moods[-1].speaking
                path = Path(folder.name) / f"{len(waiting)}.npy"
                np.save(path, samples)
                phones = align_phones(samples, text) if text is not None else None
                if phones is None:
                    recognizer.submit(path)
                waiting.append(_Stretch(done, count, times, path, np.clip(pauses * 1.6 - 0.3, 0, 1), phones))
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
        mood = Prosody(*(np.concatenate([getattr(m, f) for m in moods]) for f in ("loudness", "speaking", "pitch")))
        return SpeechStream(fps, mood, gestures(mood, fps, style, seed), waiting, model, frond, recognizer, folder)
    except BaseException:
        recognizer.close()
        folder.cleanup()
        raise


def analyse_speech(blocks: Iterable[np.ndarray], fps: float, model: LipsyncModel, text: str | None = None,
                   style: str = "natural", seed: int = 0, progress: Progress | None = None,
                   expected: float = 0.0, frond: Frond | None = None) -> SpeechTrack:
    """The whole SpeechTrack of speech given as float32 blocks at SAMPLE_RATE (see `listen`), at once."""
    with listen(blocks, fps, model, text, style, seed, progress, expected, frond) as stream:
        mouth = stream.mouth_at(slice(0, len(stream)))
    return SpeechTrack(fps, mouth, stream.prosody, stream.gestures)


def recognize_in_stretches(samples: np.ndarray) -> list[Phone]:
    """Phones of a whole recording (float32 [N] at SAMPLE_RATE) recognised stretch by stretch as `listen`
    cuts it, in this process: training data made with it matches what `speak` sees."""
    phones: list[Phone] = []
    for start, piece in stretches([samples], first=FIRST_STRETCH_SECONDS):
        offset = start / SAMPLE_RATE
        if speech_level(frame_energy_db(piece)) < SILENT_DB:
            found = [Phone(SILENCE, 0.0, len(piece) / SAMPLE_RATE)]
        else:
            found = phones_without_transcript(piece)
        phones += [Phone(p.label, p.start + offset, p.end + offset) for p in found]
    return phones


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

    def __init__(self, track: SpeechTrack | SpeechStream, model: LipsyncModel, frond: Frond | None = None):
        self.fps = track.fps
        self.track = track
        self._open = model.open_shape.astype(np.float32)
        self._wide = model.wide_shape.astype(np.float32)
        self._blink, self._brows = blink_offsets(), brow_offsets()
        self._rest_gap = float(face_openings(CANONICAL_FACE[None])[0, 0])
        self._frond = frond
        self._mouth_part = PARTS["mouth"][:, None].astype(np.float32)
        self._closed = (CANONICAL_FACE - self._rest_gap * self._open).astype(np.float32)  # lips just closed

    def __len__(self) -> int:
        return len(self.track)

    def chunk(self, frames: slice) -> Motion:
        """Motion of `frames`: expression float32 [t,478,3] from mouth, blink and brow amounts; head from gestures."""
        t, g, m = self.track, self.track.gestures, self.track.mouth_at(frames)
        opening, rounding = m.opening, m.rounding
        if self._frond is not None and m.motion is not None:   # FROND's mouth: its decoded deltas on mouth and jaw
            mouth = self._closed[None] + self._mouth_part * self._decode(m.motion)
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
