"""Phones recognised in a helper process, and the speech stream that renders while it works."""

from __future__ import annotations

import numpy as np
import pytest

from speech_synth import join, resample_to_16k, silence, synthesize

from talkhead.errors import TalkheadError
from talkhead.speech.phones import SAMPLE_RATE
from talkhead.speech.transcribe import phones_without_transcript
from talkhead.speech.worker import Recognizer

FPS = 25.0


@pytest.fixture(scope="module")
def sentences():
    """Spoken sentences with pauses between, float32 at 16 kHz (about 9 s)."""
    said = [synthesize(s) for s in ("Bob bought a map.", "Mama paid a pop.", "Who knew the moon was blue?")]
    speech = join(silence(0.5), said[0], silence(0.8), said[1], silence(0.8), said[2], silence(0.5), said[0],
                  silence(0.5))
    return resample_to_16k(speech.samples, speech.rate)


def test_helper_process_gives_the_phones_this_process_gives(tmp_path, sentences):
    third = len(sentences) // 3
    parts = [sentences[:third], sentences[third:2 * third], sentences[2 * third:]]
    paths = []
    for i, part in enumerate(parts):
        paths.append(tmp_path / f"{i}.npy")
        np.save(paths[-1], part)
    with Recognizer(helpers=2) as recognizer:
        assert recognizer.background and len(recognizer._helpers) == 2   # the stretches alternate between them
        for path in paths:
            recognizer.submit(path)
        got = [recognizer.next() for _ in paths]
    assert not recognizer.background and not recognizer._helpers
    assert got[0] != got[1] != got[2]
    for part, phones in zip(parts, got):
        assert phones == phones_without_transcript(part)
        assert phones[-1].end == pytest.approx(len(part) / SAMPLE_RATE)
        assert any(p.label in ("B", "M", "P") for p in phones)


def test_helper_failures_are_clear_errors(tmp_path):
    with Recognizer() as recognizer:
        recognizer.submit(tmp_path / "missing.npy")
        with pytest.raises(TalkheadError, match="speech recognition failed: FileNotFoundError"):
            recognizer.next()
    np.save(tmp_path / "one.npy", np.zeros(SAMPLE_RATE, np.float32))
    with Recognizer() as recognizer:
        recognizer._helpers[0].process.kill()     # the one the next stretch goes to
        recognizer._helpers[0].process.wait()
        with pytest.raises(TalkheadError, match="helper stopped"):
            recognizer.submit(tmp_path / "one.npy")
            recognizer.next()


def test_stream_gives_the_same_mouth_in_chunks_as_at_once(sentences, monkeypatch):
    from talkhead.drivers import audio
    from talkhead.drivers.audio import analyse_speech, listen
    from talkhead.weights import load_lipsync

    monkeypatch.setattr(audio, "FIRST_STRETCH_SECONDS", 4.0)   # so these 9 s come in more than one stretch
    model = load_lipsync()
    blocks = [sentences[i:i + 4000] for i in range(0, len(sentences), 4000)]
    whole = analyse_speech(blocks, FPS, model, seed=1)
    with listen(blocks, FPS, model, seed=1, background=False) as stream:
        assert len(stream._pending) >= 2, "the speech should come in more than one stretch"
        assert len(stream) == len(whole) == round(len(sentences) / SAMPLE_RATE * FPS)
        np.testing.assert_array_equal(stream.gestures.blink, whole.gestures.blink)
        chunks = [stream.mouth_at(slice(i, i + 7)) for i in range(0, len(stream), 7)]
        with pytest.raises(ValueError, match="in order"):
            stream.mouth_at(slice(0, 7))
    np.testing.assert_allclose(np.concatenate([c.opening for c in chunks]), whole.mouth.opening, atol=1e-6)
    assert whole.mouth.opening.max() > 0.1 and whole.mouth.opening[:5].max() < 0.02   # speaks; shut in the lead-in


def test_when_heard_is_called_once_the_helpers_are_done(sentences, monkeypatch):
    """`speak` gives torch its core back through this call: once, when no stretch is left to recognise."""
    from talkhead.drivers import audio
    from talkhead.drivers.audio import listen
    from talkhead.weights import load_lipsync

    monkeypatch.setattr(audio, "FIRST_STRETCH_SECONDS", 4.0)
    model = load_lipsync()
    calls = []
    with listen([sentences], FPS, model, seed=1) as stream:
        assert stream.background and len(stream._pending) >= 2
        stream.when_heard(lambda: calls.append(stream.background))
        stream.mouth_at(slice(0, 5))                 # the first stretch's phones: others still to come
        assert calls == []
        for i in range(5, len(stream), 7):
            stream.mouth_at(slice(i, i + 7))
    assert calls == [False]
    with listen([sentences], FPS, model, seed=1, background=False) as stream:
        stream.when_heard(lambda: calls.append("at once"))   # no helpers: nothing to wait for
    assert calls == [False, "at once"]


def test_stretches_start_short_and_grow():
    from talkhead.drivers.audio import GROWTH, stretches

    rng = np.random.default_rng(0)
    speech = (rng.standard_normal(SAMPLE_RATE * 60) * 0.1).astype(np.float32)
    pieces = list(stretches([speech], limit=20.0, first=4.0))
    lengths = [len(p) / SAMPLE_RATE for _, p in pieces]
    np.testing.assert_array_equal(np.concatenate([p for _, p in pieces]), speech)
    assert 2.0 <= lengths[0] <= 4.0
    windows = [min(4.0 * GROWTH ** k, 20.0) for k in range(len(lengths))]
    assert all(w / 2 <= n <= w for n, w in zip(lengths[:-1], windows))
    assert max(lengths) > 10.0
