"""Speech → motion pieces: visemes, gestures, stretches, the lazy speech motion and its weights."""

from __future__ import annotations

import numpy as np
import pytest

from talkhead.errors import WeightsError
from talkhead.speech.gestures import gestures
from talkhead.speech.phones import Phone
from talkhead.speech.prosody import Prosody
from talkhead.speech.visemes import closure, mouth_targets

FPS = 25.0


def talk_prosody(seconds: float, pauses=()) -> Prosody:
    """Speech-like prosody: syllables at 4 Hz, louder every third, silent in `pauses` ((start, end) s)."""
    t = np.arange(int(seconds * FPS)) / FPS
    loud = -12 + 10 * np.clip(np.sin(2 * np.pi * 4 * t), 0, None) + 4 * (np.sin(2 * np.pi * 4 / 3 * t) > 0.8)
    speaking = np.ones(len(t))
    for a, b in pauses:
        speaking[(t >= a) & (t < b)] = 0
    loud = np.where(speaking > 0, loud, -60)
    pitch = np.where(speaking > 0, 3 * np.sin(2 * np.pi * 0.7 * t), 0)
    return Prosody(loud.astype(np.float32), speaking.astype(np.float32), pitch.astype(np.float32))


def test_blinks_come_at_a_human_rate_and_length():
    g = gestures(talk_prosody(300), FPS, seed=1)
    shut = g.blink > 0.5
    starts = np.flatnonzero(shut[1:] & ~shut[:-1])
    per_minute = len(starts) / 5
    assert 10 <= per_minute <= 25, per_minute
    lengths = [np.argmax(~(g.blink[s + 1:] > 0.05)) for s in starts]  # frames until the eye is open again
    around = [np.sum(g.blink[max(0, s - 10):s + 12] > 0.05) / FPS for s in starts]
    assert 0.1 <= np.median(around) <= 0.4 and max(around) <= 0.45, around
    assert min(np.diff(starts)) / FPS >= 1.0
    assert all(n >= 1 for n in lengths)


def test_head_is_stiller_in_pauses_and_still_means_still():
    prosody = talk_prosody(60, pauses=[(20, 30), (45, 55)])
    g = gestures(prosody, FPS, seed=2)
    speed = np.abs(np.diff(g.angles, axis=0)).sum(1)
    t = np.arange(len(speed)) / FPS
    in_pause = ((t > 22) & (t < 29)) | ((t > 47) & (t < 54))
    talking = (t > 2) & (t < 18)
    assert speed[in_pause].mean() < 0.6 * speed[talking].mean()
    assert 0.3 < np.abs(g.angles[:, 0]).max() < 12 and np.abs(g.angles).max() < 15
    lively = gestures(prosody, FPS, style="lively", seed=2)
    assert np.abs(lively.angles).max() > 1.5 * np.abs(g.angles).max()
    still = gestures(prosody, FPS, style="still", seed=2)
    assert not still.angles.any() and not still.shift.any()
    assert still.blink.any(), "the eyes still blink with a still head"


def test_brows_lift_only_while_speaking():
    prosody = talk_prosody(30, pauses=[(10, 20)])
    g = gestures(prosody, FPS, seed=0)
    t = np.arange(len(g.brows)) / FPS
    assert g.brows[(t < 9)].max() > 0.3
    assert g.brows[(t > 10.5) & (t < 19.5)].max() == 0


@pytest.mark.parametrize("seconds", [0.2, 0.48, 2.0])
def test_every_gesture_track_is_as_long_as_the_speech(seconds):
    """Short utterances too (a brow bump wider than the track once made the brows longer)."""
    prosody = talk_prosody(seconds)
    g = gestures(prosody, FPS, seed=0)
    assert {len(g.angles), len(g.shift), len(g.blink), len(g.brows)} == {len(prosody.speaking)}


def test_bilabials_close_vowels_open_and_lips_anticipate_rounding():
    phones = [Phone("SIL", 0.0, 0.5), Phone("M", 0.5, 0.6), Phone("AA", 0.6, 0.8), Phone("P", 0.8, 0.9),
              Phone("UW", 0.9, 1.1), Phone("SIL", 1.1, 1.6)]
    times = np.array([0.25, 0.55, 0.7, 0.85, 1.0, 1.4, 0.78])
    shut = closure(phones, times)
    assert shut[1] == 1 and shut[3] == 1
    assert shut[2] < 0.1 and shut[4] < 0.1 and shut[0] < 1e-6 and shut[5] < 1e-6  # pauses are closed by silence
    targets = mouth_targets(phones, times)
    assert targets[2, 0] > 0.6 and targets[1, 0] < 0.1     # between two bilabials AA still opens most of the way
    assert targets[4, 1] > 0.8                              # UW is rounded
    assert 0.0 < targets[6, 1] < targets[4, 1]              # rounding already starts at the end of AA


def test_stretches_cut_long_audio_at_a_quiet_moment():
    from talkhead.drivers.audio import stretches

    rate = 16000
    rng = np.random.default_rng(0)
    speech = (rng.standard_normal(rate * 70) * 0.1).astype(np.float32)
    speech[int(22.0 * rate):int(22.5 * rate)] = 0     # the only pause in the first 30 s
    blocks = [speech[i:i + rate * 10] for i in range(0, len(speech), rate * 10)]
    pieces = list(stretches(blocks, limit=30.0))
    starts = [s for s, _ in pieces]
    assert sum(len(p) for _, p in pieces) == len(speech)
    assert all(len(p) <= 30 * rate for _, p in pieces)
    assert 22.0 <= starts[1] / rate <= 22.5
    np.testing.assert_array_equal(np.concatenate([p for _, p in pieces]), speech)


def test_speech_motion_rest_frame_and_chunks():
    from talkhead.drivers.audio import MouthTrack, SpeechMotion, SpeechTrack
    from talkhead.motion import face_openings
    from talkhead.weights import load_lipsync

    model = load_lipsync()
    n = 30
    opening = np.linspace(0, 0.2, n).astype(np.float32)
    prosody = talk_prosody(n / FPS)
    track = SpeechTrack(FPS, MouthTrack(opening, np.zeros(n, np.float32)), prosody, gestures(prosody, FPS))
    motion = SpeechMotion(track, model)
    whole = motion.chunk(slice(0, n))
    parts = [motion.chunk(slice(i, i + 8)) for i in range(0, n, 8)]
    np.testing.assert_allclose(np.concatenate([p.expression for p in parts]), whole.expression)
    gaps = face_openings(whole.expression)[:, 0]
    assert np.corrcoef(gaps, opening)[0, 1] > 0.99 and abs(gaps[-1] - gaps[0] - 0.2) < 0.05
    rest = motion.rest(0.05)
    assert len(rest) == 1 and abs(face_openings(rest.expression)[0, 0] - 0.05) < 0.02


def test_missing_or_corrupt_weights_are_clear_errors(tmp_path):
    from talkhead.weights import load_lipsync

    with pytest.raises(WeightsError, match="missing"):
        load_lipsync(tmp_path / "none.safetensors")
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"not a safetensors file at all")
    with pytest.raises(WeightsError, match="cannot be read"):
        load_lipsync(bad)
