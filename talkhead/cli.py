"""The `talkhead` command: parse options, call the library, turn errors into exit codes.

Exit codes: 0 success, 1 internal error, 2 bad input (files, options, no
face), 3 model weights missing, corrupt or not downloadable, 130
interrupted. Progress goes to stderr; `--json` prints one result line on
stdout.
"""

from __future__ import annotations

import io
import json
import os
import sys
import traceback
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Iterator, Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

from talkhead import __version__
from talkhead.errors import OptionError, TalkheadError

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Talking-head videos from one portrait, fast on a plain CPU.")
err = Console(stderr=True)

ANIMATE_HELP = """Make the face in PORTRAIT move like the face in DRIVING (a video, or a motion .npz).

Examples:

  talkhead animate portrait.jpg driving.mp4 -o out.mp4

  talkhead animate painting.png driving.mp4 --size 256 --crop-only --json

  talkhead animate photo.jpg driving.mp4 --parts mouth,eyes --reference first
"""


def _version(value: bool) -> None:
    if value:
        typer.echo(f"talkhead {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Print the version and exit.")] = False,
) -> None:
    """Talking-head videos from one portrait."""


@contextmanager
def _progress(quiet: bool) -> Iterator:
    """A progress callback drawn on stderr (None when quiet or stderr is not a terminal)."""
    if quiet or not err.is_terminal:
        yield None
        return
    columns = (TextColumn("{task.description:<10}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
               TimeRemainingColumn())
    with Progress(*columns, console=err, transient=True) as bar:
        tasks: dict[str, int] = {}

        def report(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = bar.add_task(stage, total=total or None)
            bar.update(tasks[stage], completed=done, total=max(total, done) or None)

        yield report


def _silence_native_logs() -> None:
    """Send native libraries' direct writes to fd 2 (mediapipe's log lines) to /dev/null.

    Python's own stderr (progress, errors, --debug tracebacks) keeps the
    original stream.
    """
    try:
        if sys.stderr.fileno() != 2:  # embedded or captured (e.g. CliRunner): leave it alone
            return
        sys.stderr.flush()
        keep = os.dup(2)
        sys.stderr = os.fdopen(keep, "w", buffering=1, encoding=sys.stderr.encoding, errors="replace")
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 2)
        os.close(devnull)
    except (OSError, ValueError, AttributeError, io.UnsupportedOperation):
        pass


def _run(debug: bool, action):
    """Call `action`; map errors to one stderr line and an exit code."""
    if not debug:
        _silence_native_logs()
    try:
        return action()
    except TalkheadError as exc:
        if debug:
            traceback.print_exc()
        err.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
        raise typer.Exit(exc.exit_code) from None
    except KeyboardInterrupt:
        err.print("interrupted", highlight=False)
        raise typer.Exit(130) from None
    except Exception as exc:  # noqa: BLE001 - last line of defence of the CLI
        if debug:
            traceback.print_exc()
        err.print(f"[bold red]internal error:[/] {type(exc).__name__}: {exc} (rerun with --debug for details)",
                  highlight=False, soft_wrap=True)
        raise typer.Exit(1) from None


PortraitFile = Annotated[Path, typer.Argument(help="Portrait image (photo or painting, any size).")]
OutputMP4 = Annotated[Path, typer.Option("--output", "-o", help="Output MP4.")]
Size = Annotated[int, typer.Option(help="Face crop size processed: 256 or 512.")]
CropOnly = Annotated[bool, typer.Option("--crop-only", help="Output the square face crop only.")]
Face = Annotated[int, typer.Option(help="Which face: 0 = largest, 1 = next, ...")]
Engine = Annotated[str, typer.Option(help="Renderer: analytic (the warp), codebook (the warp compensated by "
                                         "the learned codebook network) or frond (FROND's fused motion field "
                                         "and implicit decoder).")]
WeightsFile = Annotated[Optional[Path], typer.Option(help="Codebook or frond engine weights (default: the "
                                                          "registered model).")]
Device = Annotated[str, typer.Option(help="auto, cpu, cuda or mps.")]
NoDetail = Annotated[bool, typer.Option("--no-detail", help="Render large faces at --size only (faster, softer).")]
Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")]
Debug = Annotated[bool, typer.Option("--debug", help="Show tracebacks.")]
AsJson = Annotated[bool, typer.Option("--json", help="Print one JSON result line on stdout.")]


@app.command(help=ANIMATE_HELP)
def animate(
    portrait: PortraitFile,
    driving: Annotated[Path, typer.Argument(help="Driving video, or a motion .npz from 'talkhead motion'.")],
    output: OutputMP4 = Path("talkhead.mp4"),
    size: Size = 512,
    crop_only: CropOnly = False,
    face: Face = 0,
    reference: Annotated[str, typer.Option(help="Driving frame matched to the portrait: auto, first or N.")] = "auto",
    parts: Annotated[str, typer.Option(help="What to transfer: all, or some of pose,expression,eyes,mouth.")] = "all",
    expression_scale: Annotated[float, typer.Option(help="Scale of expression changes.")] = 1.0,
    pose_scale: Annotated[float, typer.Option(help="Scale of head motion.")] = 1.0,
    fps: Annotated[Optional[float], typer.Option(help="Output frame rate (default: the driving video's).")] = None,
    max_seconds: Annotated[Optional[float], typer.Option(help="Use at most this much of the driving video.")] = None,
    engine: Engine = "analytic",
    weights: WeightsFile = None,
    device: Device = "auto",
    no_smooth: Annotated[bool, typer.Option("--no-smooth", help="Keep the raw, unsmoothed tracking.")] = False,
    no_detail: NoDetail = False,
    as_json: AsJson = False, quiet: Quiet = False, debug: Debug = False,
) -> None:
    from talkhead.api import animate as run_animate
    from talkhead.options import AnimateOptions, parse_parts

    def action():
        options = AnimateOptions(
            size=size, engine=engine, device=device, face=face, crop_only=crop_only, reference=reference,
            parts=parse_parts(parts), expression_scale=expression_scale, pose_scale=pose_scale, fps=fps,
            max_seconds=max_seconds, smooth=not no_smooth, detail=not no_detail,
            weights=str(weights) if weights else None,
        )
        with _progress(quiet) as report:
            return run_animate(portrait, driving, output, options, report)

    _report(_run(debug, action), as_json, quiet)


SPEAK_HELP = """Make the face in PORTRAIT say the speech in AUDIO (wav, mp3, m4a, flac, ogg, or a video's sound).

Examples:

  talkhead speak portrait.jpg speech.wav -o out.mp4

  talkhead speak portrait.jpg speech.mp3 --text "the words that are spoken" -o out.mp4

  talkhead speak painting.png speech.wav --pose lively --seed 7 --size 256 --json
"""


@app.command(help=SPEAK_HELP)
def speak(
    portrait: PortraitFile,
    audio: Annotated[Path, typer.Argument(help="Speech: an audio file, or a video whose sound is used.")],
    output: OutputMP4 = Path("talkhead.mp4"),
    text: Annotated[Optional[str], typer.Option(help="The words spoken (more exact lip sync).")] = None,
    transcript: Annotated[Optional[Path], typer.Option(help="A text file with the words spoken.")] = None,
    pose: Annotated[str, typer.Option(help="Head motion: still, natural or lively.")] = "natural",
    seed: Annotated[int, typer.Option(help="Seed for head drift and blinks (same seed, same video).")] = 0,
    size: Size = 512,
    crop_only: CropOnly = False,
    face: Face = 0,
    expression_scale: Annotated[float, typer.Option(help="Scale of mouth, eye and brow movements.")] = 1.0,
    fps: Annotated[float, typer.Option(help="Output frame rate.")] = 25.0,
    max_seconds: Annotated[Optional[float], typer.Option(help="Use at most this much of the audio.")] = None,
    engine: Engine = "analytic",
    weights: WeightsFile = None,
    device: Device = "auto",
    no_detail: NoDetail = False,
    lipsync: Annotated[Optional[Path], typer.Option(help="Lip-sync weights file (default: the shipped model).")] = None,
    driver: Annotated[str, typer.Option(help="Speech to mouth motion: phonetic, frond (FROND's motion estimator) "
                                             "or auto (frond with --engine frond, else phonetic).")] = "auto",
    frond_weights: Annotated[Optional[Path], typer.Option(help="FROND weights file for --driver frond "
                                                                "(default: the shipped model).")] = None,
    as_json: AsJson = False, quiet: Quiet = False, debug: Debug = False,
) -> None:
    from talkhead.api import speak as run_speak
    from talkhead.io.files import read_text
    from talkhead.options import SpeakOptions

    def action():
        if text is not None and transcript is not None:
            raise OptionError("give the words with --text or --transcript, not both")
        words = read_text(transcript) if transcript is not None else text
        options = SpeakOptions(
            size=size, engine=engine, device=device, face=face, crop_only=crop_only, pose=pose,
            expression_scale=expression_scale, fps=fps, seed=seed, max_seconds=max_seconds, detail=not no_detail,
            lipsync=str(lipsync) if lipsync else None, weights=str(weights) if weights else None,
            driver=driver, frond=str(frond_weights) if frond_weights else None,
        )
        with _progress(quiet) as report:
            return run_speak(portrait, audio, output, options, words, report)

    _report(_run(debug, action), as_json, quiet)


def _report(result, as_json: bool, quiet: bool) -> None:
    """Warnings and the summary on stderr; the JSON line on stdout."""
    for warning in result.warnings:
        err.print(f"[yellow]warning:[/] {warning}", highlight=False)
    if as_json:
        typer.echo(json.dumps(result.as_dict()))
    elif not quiet:
        err.print(f"wrote {result.output}: {result.frames} frames, {result.width}x{result.height}, "
                  f"{result.fps:g} fps, in {result.seconds:.1f} s", highlight=False)


@app.command()
def demo(
    output: OutputMP4 = Path("talkhead-demo.mp4"),
    size: Size = 512,
    crop_only: CropOnly = False,
    seconds: Annotated[float, typer.Option(help="Length of the demo.")] = 6.0,
    device: Device = "auto",
    as_json: AsJson = False, quiet: Quiet = False, debug: Debug = False,
) -> None:
    """Render a demo with no input files: a bundled portrait moved by procedural motion."""
    from talkhead.api import demo as run_demo
    from talkhead.options import AnimateOptions

    def action():
        if not seconds > 0:
            raise OptionError(f"--seconds {seconds}: use a positive length")
        options = AnimateOptions(size=size, device=device, crop_only=crop_only, max_seconds=seconds)
        with _progress(quiet) as report:
            return run_demo(output, options, report)

    _report(_run(debug, action), as_json, quiet)


@app.command("motion")
def motion_cmd(
    driving: Annotated[Path, typer.Argument(help="Driving video.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Motion file (.npz).")] = Path("motion.npz"),
    fps: Annotated[Optional[float], typer.Option(help="Frame rate (default: the video's).")] = None,
    max_seconds: Annotated[Optional[float], typer.Option(help="Use at most this much of the video.")] = None,
    no_smooth: Annotated[bool, typer.Option("--no-smooth", help="Keep the raw, unsmoothed tracking.")] = False,
    as_json: AsJson = False, quiet: Quiet = False, debug: Debug = False,
) -> None:
    """Measure a driving video's motion once, to animate many portraits with it."""
    from talkhead.api import measure_motion
    from talkhead.options import MotionOptions

    def action():
        options = MotionOptions(fps=fps, max_seconds=max_seconds, smooth=not no_smooth)
        with _progress(quiet) as report:
            return measure_motion(driving, output, options, report)

    measured = _run(debug, action)
    if as_json:
        typer.echo(json.dumps({"output": str(output), "frames": measured.frames, "fps": measured.motion.fps,
                               "lost_frames": measured.lost}))
    elif not quiet:
        err.print(f"wrote {output}: {measured.frames} frames ({measured.lost} without a face)", highlight=False)


weights_app = typer.Typer(no_args_is_help=True, help="Model weights: list, download, verify, locate.")
app.add_typer(weights_app, name="weights")
ModelName = Annotated[str, typer.Argument(help="Registered model name (see 'talkhead weights list').")]


@weights_app.command("list")
def weights_list(as_json: AsJson = False, debug: Debug = False) -> None:
    """Registered models and where each resolves now: shipped, cache, corrupt or missing (no network used)."""
    from talkhead.weights import weights_table

    rows = _run(debug, weights_table)
    if as_json:
        typer.echo(json.dumps(rows))
        return
    typer.echo(f"{'NAME':<12} {'FILE':<28} {'BYTES':>10}  {'SHA256':<12}  WHERE")
    for row in rows:
        typer.echo(f"{row['name']:<12} {row['file']:<28} {row['size'] or '?':>10}  {(row['sha256'] or '?')[:12]:<12}"
                   f"  {row['where']}" + (f" ({row['path']})" if row["path"] else ""))


@weights_app.command("pull")
def weights_pull(
    name: Annotated[Optional[str], typer.Argument(help="Model to download.")] = None,
    all_models: Annotated[bool, typer.Option("--all", help="Download every registered model.")] = False,
    force: Annotated[bool, typer.Option("--force", help="Download again even if cached.")] = False,
    debug: Debug = False,
) -> None:
    """Download weights from the Hugging Face Hub into its cache and verify them; print their paths."""
    from talkhead.weights import download_weights, load_registry

    def action():
        if (name is None) == (not all_models):
            raise OptionError("give one model NAME or --all")
        names = list(load_registry()) if all_models else [name]
        return [download_weights(n, force=force) for n in names]

    for path in _run(debug, action):
        typer.echo(str(path))


@weights_app.command("verify")
def weights_verify(
    name: Annotated[Optional[str], typer.Argument(help="Model to check (default: all).")] = None,
    debug: Debug = False,
) -> None:
    """Check every copy on this machine against the registry's sha256; exit 3 on a mismatch."""
    from talkhead.weights import verify_weights

    def show(copy) -> None:
        state = "missing" if copy.path is None else "ok" if copy.problem is None else "MISMATCH"
        typer.echo(f"{copy.name:<12} {copy.where:<8} {state:<8} {copy.path or ''}")

    _run(debug, lambda: verify_weights(name, show))


@weights_app.command("path")
def weights_path(name: ModelName, debug: Debug = False) -> None:
    """Print the verified path model NAME resolves to (shipped or cached; never downloads)."""
    from talkhead.weights import resolve_weights

    typer.echo(str(_run(debug, lambda: resolve_weights(name, allow_download=False))))


@weights_app.command("update")
def weights_update(name: ModelName, debug: Debug = False) -> None:
    """After retraining: record the shipped file's new sha256 and size in the registry."""
    from talkhead.weights import register_local

    entry = _run(debug, lambda: register_local(name))
    typer.echo(f"{entry.name}: {entry.file} {entry.size} bytes, sha256 {entry.sha256}")


train_app = typer.Typer(no_args_is_help=True, help="Train the learned parts on your own videos.")
app.add_typer(train_app, name="train")


@train_app.command("codebook")
def train_codebook(
    data: Annotated[Path, typer.Option(help="Folder of face videos (searched recursively).")],
    run: Annotated[Path, typer.Option(help="Run folder: frame cache, loss.tsv, checkpoints; "
                                           "an existing run resumes.")] = Path("codebook-run"),
    steps: Annotated[int, typer.Option(help="Train up to this many steps in all.")] = 2000,
    lr: Annotated[float, typer.Option(help="Learning rate (AdamW).")] = 1e-3,
    val_every: Annotated[int, typer.Option(help="Every n-th video is kept for validation.")] = 5,
    model: Annotated[str, typer.Option(help="Network size for a new run: cpu (small, the shipped one) or paper "
                                            "(the published sizes; for a GPU).")] = "cpu",
    device: Device = "auto",
    quiet: Quiet = False, debug: Debug = False,
) -> None:
    """Train the codebook engine by self-reenactment; the weights are RUN/last.safetensors
    (use them with --weights, or copy them to weights/codebook.safetensors and run
    'talkhead weights update codebook')."""
    from talkhead.models.codebook_generator import CodebookConfig
    from talkhead.train.codebook import TrainOptions, train

    def action():
        if model not in ("cpu", "paper"):
            raise OptionError(f"--model {model!r}: use cpu or paper")
        config = CodebookConfig.paper() if model == "paper" else CodebookConfig()
        options = TrainOptions(data, run, steps=steps, lr=lr, val_every=val_every, device=device, config=config)
        with _progress(quiet) as report:
            return train(options, report, log=None if quiet else lambda line: err.print(line, highlight=False))

    score = _run(debug, action)
    typer.echo(json.dumps({"weights": str(run / "last.safetensors"), **score}))


@train_app.command("frond")
def train_frond(
    data: Annotated[Path, typer.Option(help="Folder of talking videos with speech (their own sound, or a sound "
                                            "file of the same name under the folder).")],
    run: Annotated[Path, typer.Option(help="Run folder: caches, loss.tsv, frond.safetensors; an existing run "
                                           "skips the stages it has finished.")] = Path("frond-run"),
    stage: Annotated[str, typer.Option(help="all, motion (encoder and estimator) or render (field and "
                                            "decoder).")] = "all",
    motion_steps: Annotated[int, typer.Option(help="Estimator training steps.")] = 1500,
    render_steps: Annotated[int, typer.Option(help="Field and decoder training steps.")] = 600,
    lr: Annotated[float, typer.Option(help="Learning rate (AdamW).")] = 1e-3,
    val_every: Annotated[int, typer.Option(help="Every n-th video is kept for validation.")] = 5,
    exclude: Annotated[Optional[list[str]], typer.Option(help="Leave out the video with this name (stem); "
                                                              "repeatable.")] = None,
    device: Device = "auto",
    quiet: Quiet = False, debug: Debug = False,
) -> None:
    """Train FROND (motion estimator, dense motion field, implicit decoder); the weights are
    RUN/frond.safetensors (use them with --frond-weights / --weights, or copy them to
    weights/frond.safetensors and run 'talkhead weights update frond')."""
    from talkhead.train.frond import FrondTrainOptions, train

    def action():
        options = FrondTrainOptions(data, run, stage=stage, motion_steps=motion_steps, render_steps=render_steps,
                                    lr=lr, val_every=val_every, exclude=tuple(exclude or ()), device=device)
        with _progress(quiet) as report:
            return train(options, report, log=None if quiet else lambda line: err.print(line, highlight=False))

    score = _run(debug, action)
    typer.echo(json.dumps({"weights": str(run / "frond.safetensors"), **score}))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())
