"""`--engine codebook` end to end: a small random-weight model passed with --weights (and the shipped one),
through animate, speak and the CLI; training from the command line on videos made here."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import talkhead
from talkhead.io.video import iter_frames
from talkhead.models.codebook_generator import CodebookConfig, CodebookGenerator
from talkhead.weights import save_codebook

from test_cli import lines, run_cli

SMALL = CodebookConfig(size=64, channels=(8, 12, 16), tokens=4, dim=16, heads=2, layers=1, motion_codes=16,
                       motion_code_dim=8, appearance_codes=16, appearance_code_dim=8)


@pytest.fixture(scope="module")
def random_weights(tmp_path_factory):
    """A codebook model with random (non-zero) output layers, so it visibly changes frames."""
    torch.manual_seed(3)
    model = CodebookGenerator(SMALL)
    torch.nn.init.normal_(model.head.weight, std=0.05)
    path = tmp_path_factory.mktemp("weights") / "random.safetensors"
    save_codebook(path, model.eval())
    return path


def test_animate_with_codebook_weights(tmp_path, astronaut_png, driving_clip, random_weights):
    frames = {}
    for engine in ("analytic", "codebook"):
        options = talkhead.AnimateOptions(size=256, crop_only=True, reference="first", engine=engine,
                                          weights=str(random_weights) if engine == "codebook" else None,
                                          max_seconds=0.4)
        result = talkhead.animate(astronaut_png, driving_clip.path, tmp_path / f"{engine}.mp4", options)
        assert result.engine == engine and result.frames == 10
        frames[engine] = np.stack(list(iter_frames(tmp_path / f"{engine}.mp4"))).astype(np.float32)
    diff = np.abs(frames["codebook"] - frames["analytic"]).mean()
    assert 0.2 < diff < 40   # the network corrected the analytic frames, without wrecking them


def test_cli_codebook_errors_are_one_line(tmp_path, astronaut_png, driving_clip):
    missing = tmp_path / "nothing.safetensors"
    code, out, err = run_cli(["animate", astronaut_png, driving_clip.path, "-o", tmp_path / "o.mp4",
                              "--engine", "codebook", "--weights", missing])
    assert code == 3 and len(lines(err)) == 1 and "nothing.safetensors" in err
    assert not (tmp_path / "o.mp4").exists()
    code, _, err = run_cli(["animate", astronaut_png, driving_clip.path, "-o", tmp_path / "o.mp4",
                            "--weights", missing])
    assert code == 2 and "analytic engine has no weights" in err
    not_weights = tmp_path / "bad.safetensors"
    not_weights.write_bytes(b"not a safetensors file")
    code, _, err = run_cli(["animate", astronaut_png, driving_clip.path, "-o", tmp_path / "o.mp4",
                            "--engine", "codebook", "--weights", not_weights])
    assert code == 3 and len(lines(err)) == 1


def test_shipped_codebook_weights_verify_and_render(tmp_path, astronaut_png, driving_clip):
    from talkhead.weights import load_codebook, resolve_weights

    path = resolve_weights("codebook", allow_download=False)   # checksum against the registry
    model = load_codebook()
    assert model.config.size == 256 and json.loads(_meta(path)["validation"])
    options = talkhead.AnimateOptions(size=256, crop_only=True, reference="first", engine="codebook",
                                      max_seconds=0.2)
    assert talkhead.animate(astronaut_png, driving_clip.path, tmp_path / "o.mp4", options).frames == 5


def _meta(path) -> dict:
    from talkhead.weights import read_safetensors

    return read_safetensors(path)[1]


def test_train_codebook_from_the_command_line_and_resume(tmp_path, driving_clip, silent_clip, random_weights):
    data = tmp_path / "videos"
    data.mkdir()
    for i, clip in enumerate((driving_clip.path, silent_clip, driving_clip.path)):
        (data / f"clip{i}.mp4").write_bytes(clip.read_bytes())
    run = tmp_path / "run"
    code, out, err = run_cli(["train", "codebook", "--data", data, "--run", run, "--steps", "2", "--val-every", "3",
                              "--quiet"])
    assert code == 0, err
    first = json.loads(lines(out)[-1])
    assert set(first) == {"weights", "val_psnr", "val_psnr_analytic"}
    meta = _meta(run / "last.safetensors")
    assert meta["steps"] == "2" and json.loads(meta["validation"]) == ["clip2.mp4"]
    code, out, err = run_cli(["train", "codebook", "--data", data, "--run", run, "--steps", "3", "--quiet"])
    assert code == 0, err
    assert _meta(run / "last.safetensors")["steps"] == "3"
    logged = [json.loads(line) for line in (run / "loss.tsv").read_text().splitlines()]
    assert [d["step"] for d in logged if "val_psnr" in d] == [2, 3]
    code, _, err = run_cli(["train", "codebook", "--data", tmp_path / "none", "--run", run, "--quiet"])
    assert code == 2 and len(lines(err)) == 1


def test_speak_with_the_codebook_engine(tmp_path, astronaut_png, random_weights):
    from speech_synth import synthesize

    from test_speak import write_pcm_wav

    said = synthesize("Papa.")
    wav = write_pcm_wav(tmp_path / "papa.wav", said.samples, said.rate)
    options = talkhead.SpeakOptions(size=256, crop_only=True, engine="codebook", weights=str(random_weights))
    result = talkhead.speak(astronaut_png, wav, tmp_path / "o.mp4", options, text="papa")
    assert result.engine == "codebook" and result.audio
    assert abs(result.frames - len(said.samples) / said.rate * 25) <= 1
