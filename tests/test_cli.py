"""The `talkhead` command: help, errors (exit code 2, one line, nothing left behind), --json, motion files."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from talkhead import __version__
from talkhead.cli import app

TALKHEAD = Path(sys.executable).parent / "talkhead"  # the installed console script
ANIMATE_KEYS = {"output", "frames", "fps", "width", "height", "audio"}


def run_cli(args: list) -> tuple[int, str, str]:
    """Run the app in-process: (exit code, stdout, stderr)."""
    result = CliRunner().invoke(app, [str(a) for a in args])
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr


def lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


def test_version():
    code, out, _ = run_cli(["--version"])
    assert code == 0 and out.strip() == f"talkhead {__version__}"


def test_animate_help_has_examples():
    code, out, _ = run_cli(["animate", "--help"])
    assert code == 0
    assert "Examples" in out and "talkhead animate portrait.jpg driving.mp4" in out
    for option in ("--size", "--crop-only", "--parts", "--reference", "--json"):
        assert option in out


def test_no_arguments_shows_help():
    code, out, err = run_cli([])
    assert code in (0, 2)
    assert "animate" in out + err and "motion" in out + err


# --- error paths --------------------------------------------------------------------------------

@pytest.fixture()
def folders(tmp_path):
    """(inputs folder, empty output folder)."""
    inputs, outputs = tmp_path / "in", tmp_path / "out"
    inputs.mkdir()
    outputs.mkdir()
    return inputs, outputs


def check_error(code: int, out: str, err: str, names: str, outputs: Path) -> None:
    assert code == 2, err
    assert out == ""
    assert "Traceback" not in err
    assert len(lines(err)) == 1, err
    assert names in err, err
    assert list(outputs.iterdir()) == []  # no output, no hidden temp file


def test_missing_portrait(folders, driving_clip):
    inputs, outputs = folders
    code, out, err = run_cli(["animate", inputs / "nobody.png", driving_clip.path, "-o", outputs / "o.mp4"])
    check_error(code, out, err, "nobody.png", outputs)


def test_portrait_not_an_image(folders, driving_clip):
    inputs, outputs = folders
    text = inputs / "notes.png"
    text.write_text("this is not a picture\n")
    code, out, err = run_cli(["animate", text, driving_clip.path, "-o", outputs / "o.mp4"])
    check_error(code, out, err, "notes.png", outputs)


def test_portrait_without_face(folders, grey_png, driving_clip):
    _, outputs = folders
    code, out, err = run_cli(["animate", grey_png, driving_clip.path, "-o", outputs / "o.mp4"])
    check_error(code, out, err, "grey.png", outputs)
    assert "no face" in err


def test_driving_without_face(folders, astronaut_png, faceless_clip):
    _, outputs = folders
    code, out, err = run_cli(["animate", astronaut_png, faceless_clip, "-o", outputs / "o.mp4"])
    check_error(code, out, err, "faceless.mp4", outputs)
    assert "no face" in err


@pytest.mark.parametrize("name", ["driving.mp4", "driving.txt"])
def test_driving_not_a_video(folders, astronaut_png, name):
    inputs, outputs = folders
    text = inputs / name
    text.write_text("hello, not a video\n" * 20)
    code, out, err = run_cli(["animate", astronaut_png, text, "-o", outputs / "o.mp4"])
    check_error(code, out, err, name, outputs)


def test_output_folder_missing(folders, astronaut_png, silent_clip):
    _, outputs = folders
    target = outputs / "missing" / "o.mp4"
    code, out, err = run_cli(["animate", astronaut_png, silent_clip, "-o", target, "--size", "256",
                              "--max-seconds", "0.3"])
    check_error(code, out, err, "missing", outputs)


@pytest.mark.parametrize("option, value", [("--size", "300"), ("--parts", "nose"), ("--reference", "xyz"),
                                           ("--face", "3"), ("--reference", "999"), ("--fps", "0"),
                                           ("--engine", "magic")])
def test_bad_option_values(folders, astronaut_png, silent_clip, option, value):
    _, outputs = folders
    code, out, err = run_cli(["animate", astronaut_png, silent_clip, "-o", outputs / "o.mp4", "--size", "256",
                              option, value])
    check_error(code, out, err, option, outputs)


def test_motion_output_folder_missing(tmp_path, silent_clip):
    code, out, err = run_cli(["motion", silent_clip, "-o", tmp_path / "nope" / "m.npz", "--max-seconds", "0.2"],
                             )
    check_error(code, out, err, "nope", tmp_path)


@pytest.mark.parametrize("args, named", [
    (["--fps", "-5"], "--fps"),
    (["--max-seconds", "-1"], "--max-seconds"),
])
def test_motion_bad_options(tmp_path, silent_clip, args, named):
    code, out, err = run_cli(["motion", silent_clip, "-o", tmp_path / "m.npz", *args])
    check_error(code, out, err, named, tmp_path)


def test_motion_needs_npz_suffix(tmp_path, silent_clip):
    code, out, err = run_cli(["motion", silent_clip, "-o", tmp_path / "m", "--max-seconds", "0.2"])
    check_error(code, out, err, ".npz", tmp_path)


def test_demo_bad_length(tmp_path):
    code, out, err = run_cli(["demo", "-o", tmp_path / "d.mp4", "--seconds", "0"])
    check_error(code, out, err, "--seconds", tmp_path)


# --- success paths ------------------------------------------------------------------------------

def test_animate_json_line(tmp_path, astronaut_png, driving_clip):
    target = tmp_path / "o.mp4"
    code, out, err = run_cli(["animate", astronaut_png, driving_clip.path, "-o", target, "--size", "256",
                              "--crop-only", "--max-seconds", "0.8", "--json"])
    assert code == 0, err
    assert len(out.splitlines()) == 1
    result = json.loads(out)
    assert ANIMATE_KEYS <= set(result)
    assert result["output"] == str(target) and target.exists()
    assert (result["width"], result["height"]) == (256, 256)
    assert result["fps"] == pytest.approx(25.0) and abs(result["frames"] - 20) <= 1
    assert result["audio"] is True
    assert [p.name for p in tmp_path.iterdir()] == ["o.mp4"]  # no temp files left


def test_motion_then_animate(tmp_path, astronaut_png, silent_clip):
    motion = tmp_path / "m.npz"
    code, out, err = run_cli(["motion", silent_clip, "-o", motion, "--max-seconds", "0.6", "--json"])
    assert code == 0, err
    result = json.loads(out)
    assert result["output"] == str(motion) and motion.exists()
    assert abs(result["frames"] - 15) <= 1 and result["lost_frames"] == 0 and result["fps"] == pytest.approx(25)
    target = tmp_path / "o.mp4"
    code, out, err = run_cli(["animate", astronaut_png, motion, "-o", target, "--size", "256", "--crop-only",
                              "--json", "--reference", "first"])
    assert code == 0, err
    animated = json.loads(out)
    assert animated["frames"] == result["frames"] and animated["audio"] is False
    assert target.exists()
    # A saved motion follows --fps too: 15 frames at 25 fps are 6 at 10 fps.
    code, out, err = run_cli(["animate", astronaut_png, motion, "-o", target, "--size", "256", "--crop-only",
                              "--json", "--fps", "10"])
    assert code == 0, err
    assert json.loads(out)["fps"] == pytest.approx(10) and json.loads(out)["frames"] == 6


# --- the installed console script ---------------------------------------------------------------

def run_script(*args) -> subprocess.CompletedProcess:
    return subprocess.run([str(TALKHEAD), *map(str, args)], capture_output=True, text=True, timeout=120)


def test_console_script_json(tmp_path, astronaut_png, driving_clip):
    target = tmp_path / "o.mp4"
    done = run_script("animate", astronaut_png, driving_clip.path, "-o", target, "--size", "256",
                      "--max-seconds", "0.8", "--json")
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr + done.stdout
    assert len(done.stdout.splitlines()) == 1 and done.stdout.endswith("\n")
    result = json.loads(done.stdout)
    assert ANIMATE_KEYS <= set(result)
    assert (result["width"], result["height"]) == (512, 512) and result["audio"] is True
    assert target.exists()


def test_console_script_error(tmp_path, driving_clip):
    done = run_script("animate", tmp_path / "nobody.png", driving_clip.path, "-o", tmp_path / "o.mp4")
    assert done.returncode == 2
    assert done.stdout == ""
    assert lines(done.stderr) == [f"error: cannot read {tmp_path / 'nobody.png'}: file not found; check the path"]
    assert list(tmp_path.iterdir()) == []


def test_in_process_cli_leaves_host_stderr_alone(tmp_path):
    before = os.fstat(2)
    saved = os.dup(2)
    try:
        messages = []
        for _ in range(2):
            result = CliRunner().invoke(app, ["animate", str(tmp_path / "nobody.png"), "x.mp4"])
            messages.append(result.stderr)
        after = os.fstat(2)
    finally:
        os.dup2(saved, 2)
        os.close(saved)
    assert all("nobody.png" in m for m in messages)
    assert (after.st_dev, after.st_ino) == (before.st_dev, before.st_ino)
