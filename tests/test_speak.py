"""talkhead speak: speech made in the test with espeak-ng, mouth measured on the output video."""

from __future__ import annotations

import json
import wave
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from io_media import stream_durations, write_wav
from speech_synth import synthesize

import talkhead
from talkhead.cli import app
from talkhead.errors import MediaError, NoFaceFound, TranscriptError
from talkhead.options import SpeakOptions

FPS = 25.0
SENTENCE = "Bob bought a map. Mama paid a pop."
LEAD, PAUSE = 0.8, 1.0   # seconds of silence before the speech and between the two halves
OPEN_VOWELS = {"a", "aI", "A:", "0", "aU", "O:", "a#"}   # espeak mnemonics of open vowels
BILABIALS = {"p", "b", "m"}


def write_pcm_wav(path: Path, samples: np.ndarray, rate: int) -> Path:
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes((np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes())
    return path


@pytest.fixture(scope="session")
def speech(data_dir):
    """A WAV of: silence, 'Bob bought a map.', silence, 'Mama paid a pop.', silence; and espeak's phoneme times."""
    first, second = synthesize("Bob bought a map."), synthesize("Mama paid a pop.")
    rate = first.rate
    gap = lambda s: np.zeros(int(s * rate), np.float32)  # noqa: E731
    samples = np.concatenate([gap(LEAD), first.samples, gap(PAUSE), second.samples, gap(0.6)])
    t2 = LEAD + len(first.samples) / rate + PAUSE
    phonemes = [(p, LEAD + t) for p, t in first.phonemes] + [(p, t2 + t) for p, t in second.phonemes]
    ends = [(LEAD, LEAD + len(first.samples) / rate), (t2, t2 + len(second.samples) / rate)]
    return write_pcm_wav(data_dir / "speech.wav", samples, rate), phonemes, ends, len(samples) / rate


def mouth_ratio(video: Path, landmarker) -> np.ndarray:
    """Inner-lip gap over outer eye-corner distance per frame of a video."""
    from talkhead.face.landmarks import FaceTracker
    from talkhead.io.video import iter_frames

    track, out = FaceTracker(landmarker), []
    for frame in iter_frames(video):
        p = track(frame)
        assert p is not None, "the output lost the face"
        out.append(np.linalg.norm(p[13, :2] - p[14, :2]) / np.linalg.norm(p[33, :2] - p[263, :2]))
    return np.array(out)


def phoneme_frames(phonemes, names) -> list[int]:
    """Frames in the middle of the espeak phonemes named (start + 40 ms)."""
    return [int((t + 0.04) * FPS) for p, t in phonemes if p in names]


@pytest.fixture(scope="session")
def spoken(data_dir, astronaut_png, speech):
    """The astronaut saying the sentence, with its transcript."""
    wav, *_ = speech
    out = data_dir / "spoken.mp4"
    result = talkhead.speak(astronaut_png, wav, out, SpeakOptions(size=256, crop_only=True), text=SENTENCE)
    return out, result


def test_mouth_opens_on_vowels_and_shuts_on_bilabials_and_silence(spoken, speech, landmarker):
    out, _ = spoken
    _, phonemes, ends, _ = speech
    ratio = mouth_ratio(out, landmarker)
    vowels = ratio[phoneme_frames(phonemes, OPEN_VOWELS)]
    closed = ratio[phoneme_frames(phonemes, BILABIALS)]
    silent = np.concatenate([ratio[:int(LEAD * FPS) - 3],
                             ratio[int(ends[0][1] * FPS) + 6:int(ends[1][0] * FPS) - 3]])
    assert len(vowels) >= 5 and len(closed) >= 8
    assert np.median(vowels) > 0.09, f"open vowels leave the mouth nearly shut: {np.round(vowels, 3)}"
    assert np.median(closed) < 0.06, f"bilabials do not close the lips: {np.round(closed, 3)}"
    assert np.median(vowels) > 3 * np.median(closed)
    assert silent.max() < 0.06, f"the mouth is open in silence: {np.round(silent, 3)}"
    assert np.ptp(silent) < 0.02, "the mouth quivers in silence"


def test_length_and_audio_match_the_speech(spoken, speech):
    out, result = spoken
    _, _, _, seconds = speech
    assert abs(result.frames - seconds * FPS) <= 1
    durations = stream_durations(out)
    assert abs(durations["video"] - seconds) <= 1.5 / FPS
    assert abs(durations["audio"] - seconds) <= 0.05
    assert result.audio and result.transcript


def test_without_transcript_the_mouth_moves_with_speech_only(data_dir, astronaut_png, speech, landmarker):
    wav, _, ends, _ = speech
    out = data_dir / "spoken-notext.mp4"
    talkhead.speak(astronaut_png, wav, out, SpeakOptions(size=256, crop_only=True))
    ratio = mouth_ratio(out, landmarker)
    talking = np.concatenate([ratio[int(a * FPS) + 2:int(b * FPS) - 2] for a, b in ends])
    silent = ratio[:int(LEAD * FPS) - 3]
    assert talking.max() > 0.15 and np.percentile(talking, 75) > 2 * max(np.median(silent), 0.01)
    assert silent.max() < 0.06


def test_same_seed_same_motion_other_seed_other_blinks(speech):
    from talkhead.drivers.audio import analyse_speech
    from talkhead.io.audio import iter_audio
    from talkhead.weights import load_lipsync

    wav = speech[0]
    model = load_lipsync()
    runs = [analyse_speech(iter_audio(wav), FPS, model, seed=s) for s in (3, 3, 4)]
    np.testing.assert_array_equal(runs[0].gestures.angles, runs[1].gestures.angles)
    np.testing.assert_array_equal(runs[0].gestures.blink, runs[1].gestures.blink)
    assert not np.array_equal(runs[0].gestures.blink, runs[2].gestures.blink)
    still = analyse_speech(iter_audio(wav), FPS, model, style="still")
    assert np.abs(still.gestures.angles).max() == 0.0


def test_silent_and_empty_audio_are_clear_errors(data_dir, astronaut_png):
    silent = write_pcm_wav(data_dir / "silent.wav", np.zeros(16000 * 2, np.float32), 16000)
    empty = write_pcm_wav(data_dir / "empty.wav", np.zeros(0, np.float32), 16000)
    blip = write_pcm_wav(data_dir / "blip.wav", np.random.default_rng(0).normal(0, 0.3, 160).astype(np.float32), 16000)
    for path, words in ((silent, "silent"), (empty, "empty"), (blip, "shorter than one video frame")):
        out = data_dir / f"{path.stem}.mp4"
        with pytest.raises(MediaError, match=words):
            talkhead.speak(astronaut_png, path, out, SpeakOptions(size=256))
        assert not out.exists()


def test_cli_errors_have_exit_code_2_and_one_line(data_dir, astronaut_png, grey_png, speech):
    wav = str(speech[0])
    runner = CliRunner()
    tone = write_wav(data_dir / "tone.wav", 2.0)
    cases = [
        (["speak", str(grey_png), wav, "-o", str(data_dir / "x.mp4")], "no face"),
        (["speak", str(astronaut_png), str(data_dir / "missing.wav"), "-o", str(data_dir / "x.mp4")], "not found"),
        (["speak", str(astronaut_png), str(astronaut_png), "-o", str(data_dir / "x.mp4")], "no audio track"),
        (["speak", str(astronaut_png), wav, "--pose", "wild", "-o", str(data_dir / "x.mp4")], "--pose"),
        (["speak", str(astronaut_png), wav, "--text", "a", "--transcript", wav, "-o", str(data_dir / "x.mp4")],
         "not both"),
        (["speak", str(astronaut_png), str(tone), "--text", "   ", "-o", str(data_dir / "x.mp4")], "empty"),
        (["speak", str(astronaut_png), wav, "--text", SENTENCE, "--max-seconds", "1", "-o", str(data_dir / "x.mp4")],
         "one or the other"),
    ]
    for args, words in cases:
        result = runner.invoke(app, args)
        assert result.exit_code == 2, (args, result.output)
        assert words in result.output.lower(), (words, result.output)
        assert "Traceback" not in result.output
    assert not (data_dir / "x.mp4").exists()


def test_cli_json_and_transcript_file(data_dir, astronaut_png, speech):
    transcript = data_dir / "words.txt"
    transcript.write_text(SENTENCE + "\n", encoding="utf-8")
    out = data_dir / "cli-speak.mp4"
    result = CliRunner().invoke(app, ["speak", str(astronaut_png), str(speech[0]), "--transcript", str(transcript),
                                      "--size", "256", "--crop-only", "--json", "-o", str(out)])
    assert result.exit_code == 0, result.output
    info = json.loads(result.stdout.strip().splitlines()[-1])
    assert abs(info["frames"] - speech[3] * FPS) <= 1 and info["transcript"] and info["audio"]
    assert out.exists()


def test_transcript_that_does_not_fit_is_an_input_error(data_dir, astronaut_png, speech):
    with pytest.raises(TranscriptError):
        talkhead.speak(astronaut_png, speech[0], data_dir / "nofit.mp4", SpeakOptions(size=256),
                       text="the quick brown fox jumps over the lazy dog " * 6)
    assert not (data_dir / "nofit.mp4").exists()


def test_no_face_is_an_input_error(data_dir, grey_png, speech):
    with pytest.raises(NoFaceFound):
        talkhead.speak(grey_png, speech[0], data_dir / "noface.mp4", SpeakOptions(size=256))


def test_a_videos_sound_track_is_used_as_speech(data_dir, astronaut_png, driving_clip):
    """Any video with sound works as the speech (here the test clip's tone: not speech, but no crash)."""
    out = data_dir / "from-video.mp4"
    result = talkhead.speak(astronaut_png, driving_clip.path, out, SpeakOptions(size=256, crop_only=True))
    durations = stream_durations(out)
    assert result.audio and abs(durations["audio"] - durations["video"]) < 0.1
    assert abs(result.duration - durations["audio"]) < 1.5 / FPS
