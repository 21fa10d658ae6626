"""FROND end to end: the frond engine in animate and speak, the frond speech driver with the shipped
weights (mouth measured on the output video), option errors, and training from the command line."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import talkhead
from talkhead.io.video import iter_frames
from talkhead.models.frond import Frond
from talkhead.weights import save_frond

from test_cli import lines, run_cli
from test_speak import FPS, LEAD, mouth_ratio, speech, write_pcm_wav  # noqa: F401 (speech is a fixture)


@pytest.fixture(scope="module")
def random_frond(tmp_path_factory):
    """A FROND model whose decoder visibly changes frames."""
    torch.manual_seed(5)
    model = Frond()
    torch.nn.init.normal_(model.decoder.mlp[-1].weight, std=0.03)
    path = tmp_path_factory.mktemp("weights") / "frond.safetensors"
    save_frond(path, model.eval())
    return path


def _frames(path) -> np.ndarray:
    return np.stack(list(iter_frames(path))).astype(np.float32)


def test_animate_with_the_frond_engine_at_two_sizes(tmp_path, astronaut_png, driving_clip, random_frond):
    for size in (256, 512):
        made = {}
        for engine in ("analytic", "frond"):
            options = talkhead.AnimateOptions(size=size, crop_only=True, reference="first", engine=engine,
                                              weights=str(random_frond) if engine == "frond" else None,
                                              max_seconds=0.2, detail=False)
            result = talkhead.animate(astronaut_png, driving_clip.path, tmp_path / f"{engine}.mp4", options)
            assert result.engine == engine and result.frames == 5 and result.width == size
            made[engine] = _frames(tmp_path / f"{engine}.mp4")
        diff = np.abs(made["frond"] - made["analytic"]).mean()
        assert 0.2 < diff < 30, f"at {size}: {diff}"   # the decoder changed the frames, without wrecking them


def test_shipped_frond_weights_verify_and_have_both_stages():
    from talkhead.weights import load_frond_file, resolve_weights

    path = resolve_weights("frond", allow_download=False)   # checksum against the registry
    model, meta = load_frond_file(path)
    assert set(meta["trained"].split(",")) == {"motion", "render"}
    assert json.loads(meta["validation"])
    assert float(model.estimator.scale.min()) > 0


def test_the_frond_driver_moves_the_mouth_with_speech_only(tmp_path, astronaut_png, speech, landmarker):
    wav, _, ends, seconds = speech
    out = tmp_path / "frond.mp4"
    options = talkhead.SpeakOptions(size=256, crop_only=True, driver="frond")
    result = talkhead.speak(astronaut_png, wav, out, options)
    assert result.driver == "frond" and result.engine == "analytic" and result.audio
    assert abs(result.frames - seconds * FPS) <= 1
    ratio = mouth_ratio(out, landmarker)
    talking = np.concatenate([ratio[int(a * FPS) + 2:int(b * FPS) - 2] for a, b in ends])
    silent = ratio[:int(LEAD * FPS) - 3]
    assert silent.max() < 0.06 and np.ptp(silent) < 0.02, f"the mouth is open or quivers in silence: {silent}"
    # FROND's mouth opens less than the phonetic one (about half as far on this sentence), but clearly with speech
    assert np.percentile(talking, 90) > 0.04 and np.percentile(talking, 90) > 3 * max(np.median(silent), 0.005)


def test_speak_with_the_frond_engine_uses_the_frond_driver(tmp_path, astronaut_png, random_frond):
    from speech_synth import synthesize

    said = synthesize("Papa.")
    wav = write_pcm_wav(tmp_path / "papa.wav", said.samples, said.rate)
    options = talkhead.SpeakOptions(size=256, crop_only=True, engine="frond", weights=str(random_frond))
    result = talkhead.speak(astronaut_png, wav, tmp_path / "o.mp4", options)
    assert result.engine == "frond" and result.driver == "frond"
    assert abs(result.frames - len(said.samples) / said.rate * 25) <= 1


def test_cli_frond_option_errors_are_one_line(tmp_path, astronaut_png, speech, random_frond):
    wav = speech[0]
    code, _, err = run_cli(["speak", astronaut_png, wav, "-o", tmp_path / "o.mp4", "--driver", "lips"])
    assert code == 2 and len(lines(err)) == 1 and "--driver" in err
    code, _, err = run_cli(["speak", astronaut_png, wav, "-o", tmp_path / "o.mp4", "--driver", "phonetic",
                            "--frond-weights", random_frond])
    assert code == 2 and len(lines(err)) == 1 and "--driver frond" in err
    code, _, err = run_cli(["speak", astronaut_png, wav, "-o", tmp_path / "o.mp4", "--driver", "frond",
                            "--frond-weights", tmp_path / "missing.safetensors"])
    assert code == 3 and len(lines(err)) == 1
    assert not (tmp_path / "o.mp4").exists()


def test_train_frond_from_the_command_line(tmp_path, silent_clip):
    from speech_synth import synthesize

    data = tmp_path / "talking"
    (data / "speech").mkdir(parents=True)
    words = ("Bob bought a map.", "Mama paid a pop.", "A papa ape.")
    for i, sentence in enumerate(words):   # silent videos, each with a sound file of the same name
        (data / f"clip{i}.mp4").write_bytes(silent_clip.read_bytes())
        said = synthesize(sentence)
        write_pcm_wav(data / "speech" / f"clip{i}.wav", said.samples, said.rate)
    run = tmp_path / "run"
    code, out, err = run_cli(["train", "frond", "--data", data, "--run", run, "--motion-steps", "3",
                              "--render-steps", "2", "--val-every", "3", "--quiet"])
    assert code == 0, err
    scores = json.loads(lines(out)[-1])
    assert {"weights", "encoder_loss", "estimator_loss", "val_gap_r", "val_psnr", "val_psnr_analytic"} <= set(scores)
    from talkhead.weights import load_frond_file

    _, meta = load_frond_file(run / "frond.safetensors")
    assert meta["trained"] == "motion,render" and json.loads(meta["validation"]) == ["clip2.mp4"]
    logged = [json.loads(line) for line in (run / "loss.tsv").read_text().splitlines()]
    assert [d["stage"] for d in logged if "s" in d] == ["motion", "render"]
    code, out, err = run_cli(["train", "frond", "--data", data, "--run", run, "--quiet"])   # both done: no work
    assert code == 0 and json.loads(lines(out)[-1])["val_psnr"] == scores["val_psnr"]
    code, _, err = run_cli(["train", "frond", "--data", tmp_path / "none", "--run", run, "--quiet"])
    assert code == 2 and len(lines(err)) == 1
