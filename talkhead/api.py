"""The library's entry points: join the stages, from files in to a video out."""

from __future__ import annotations

import contextlib
import os
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable

import cv2
import numpy as np
import torch

from talkhead.behind import Behind
from talkhead.device import cpu_threads, resolve_device, reuse_freed_memory
from talkhead.drivers.video import VideoMotion, motion_from_video
from talkhead.errors import NoFaceFound, OptionError
from talkhead.face.crop import CropBox, PasteBack, crop_box, cut
from talkhead.face.landmarks import FaceLandmarker
from talkhead.io.files import check_writable, require_readable
from talkhead.io.image import load_image
from talkhead.io.motionfile import load_motion, save_motion
from talkhead.io.mux import MuxedOutput, has_audio
from talkhead.io.video import VideoWriter
from talkhead.motion import Motion, MotionSource, pick_reference, retarget, source_pose
from talkhead.options import AnimateOptions, MotionOptions, SpeakOptions
from talkhead.render.engine import Engine, PreparedSource, make_engine

Progress = Callable[[str, int, int], None]  # (stage, done, total)
CHUNK = 8  # frames rendered together
DETAIL_FROM = 1.3  # sample frames at the portrait's own resolution (up to 2x --size) when its crop is
                   # this much larger than --size


@dataclass(frozen=True)
class _Result:
    """The video a run made; `as_dict` gives plain JSON-ready values."""

    output: str
    frames: int
    fps: float
    duration: float
    width: int
    height: int
    audio: bool

    def as_dict(self) -> dict:
        d = dict(self.__dict__)
        d["warnings"] = list(d["warnings"])
        return d


@dataclass(frozen=True)
class AnimateResult(_Result):
    """What `animate` made, for scripts (see `as_dict`)."""

    reference_frame: int = -1
    lost_frames: int = 0
    engine: str = ""
    device: str = ""
    seconds: float = 0.0
    warnings: tuple[str, ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class Portrait:
    """The portrait, its chosen face and the crop around it."""

    image: np.ndarray      # uint8 [H,W,3] RGB
    landmarks: np.ndarray  # float32 [478,3] portrait pixels
    box: CropBox


def find_portrait_face(image: np.ndarray, face: int, name: str, max_side: int) -> Portrait:
    """Portrait with its `face`-th largest face located (raises NoFaceFound/OptionError)."""
    scale = min(1.0, max_side / max(image.shape[:2]))
    if scale < 1.0:
        size = (round(image.shape[1] * scale), round(image.shape[0] * scale))
        image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    with FaceLandmarker() as landmarker:
        faces = landmarker.faces(image)
    if not faces:
        raise NoFaceFound(f"no face found in portrait {name}: use an image where a face is clearly visible")
    if face >= len(faces):
        raise OptionError(f"--face {face}: portrait {name} has only {len(faces)} face(s); use 0 to {len(faces) - 1}")
    return Portrait(image, faces[face], crop_box(faces[face]))


def load_driving_motion(driving: Path, options: AnimateOptions, progress: Progress | None) -> tuple[Motion, int]:
    """Motion of a driving video (or a saved .npz motion) and its count of bridged frames."""
    if driving.suffix.lower() == ".npz":
        motion = load_motion(driving).resample(options.fps) if options.fps else load_motion(driving)
        if options.max_seconds:
            motion = motion.head(int(round(options.max_seconds * motion.fps)))
        return motion, int((~motion.valid).sum())
    report = (lambda d, t: progress("tracking", d, t)) if progress else None
    measured = motion_from_video(driving, options.fps, options.max_seconds, options.smooth, report)
    return measured.motion, measured.lost


def reference_index(reference: str, motion: Motion, crop_landmarks: np.ndarray) -> int:
    """Driving frame that stands for the portrait's own pose and expression."""
    if reference == "first":
        return 0
    if reference.isdigit():
        if int(reference) >= len(motion):
            raise OptionError(f"--reference {reference}: the driving motion has only {len(motion)} frames")
        return int(reference)
    rotation, _, _, expression = source_pose(crop_landmarks)
    return pick_reference(motion, rotation, expression)


def animate(source: str | os.PathLike[str], driving: str | os.PathLike[str], output: str | os.PathLike[str],
            options: AnimateOptions = AnimateOptions(), progress: Progress | None = None) -> AnimateResult:
    """Make the face in portrait `source` move like the face in `driving`; write an MP4 to `output`.

    `driving` is a video (its audio is carried over) or a motion file saved
    by `talkhead motion`. Raises TalkheadError subclasses on bad input.
    """
    start = time.perf_counter()
    options = _check_settings(options)
    src_path, drv_path = require_readable(source), require_readable(driving)
    check_writable(Path(output))
    portrait = find_portrait_face(load_image(src_path), options.face, str(src_path), options.max_output_side)
    motion, lost = load_driving_motion(drv_path, options, progress)
    audio = drv_path if drv_path.suffix.lower() != ".npz" and has_audio(drv_path) else None
    warnings = (f"{lost} of {len(motion)} driving frames had no face; they were bridged",) if lost else ()
    return render_motion(portrait, motion, output, options, audio, progress, start, lost, warnings)


def measure_motion(driving: str | os.PathLike[str], output: str | os.PathLike[str],
                   options: MotionOptions = MotionOptions(), progress: Progress | None = None) -> VideoMotion:
    """Measure a driving video's motion once and save it (.npz) to animate many portraits with."""
    drv_path, out_path = require_readable(driving), Path(output)
    if out_path.suffix.lower() != ".npz":
        raise OptionError(f"motion file {out_path}: give it the .npz suffix (animate recognises motion files by it)")
    check_writable(out_path)
    report = (lambda d, t: progress("tracking", d, t)) if progress else None
    measured = motion_from_video(drv_path, options.fps, options.max_seconds, options.smooth, report)
    save_motion(out_path, measured.motion)
    return measured


def demo(output: str | os.PathLike[str], options: AnimateOptions = AnimateOptions(),
         progress: Progress | None = None) -> AnimateResult:
    """Render the built-in demo (a bundled portrait, procedural motion) to `output`.

    Its length is `options.max_seconds` (default 6 s).
    """
    from talkhead.demo import demo_portrait, procedural_motion

    start = time.perf_counter()
    portrait = find_portrait_face(demo_portrait(), options.face, "astronaut", options.max_output_side)
    fps = options.fps or 25.0
    motion = procedural_motion(seconds=options.max_seconds or 6.0, fps=fps)
    return render_motion(portrait, motion, output, replace(options, reference="first"), None, progress, start)


@dataclass(frozen=True)
class SpeakResult(_Result):
    """What `speak` made, for scripts (see `as_dict`)."""

    transcript: bool = False
    blinks: int = 0
    engine: str = ""
    device: str = ""
    seconds: float = 0.0
    analysis_seconds: float = 0.0
    driver: str = ""
    warnings: tuple[str, ...] = field(default_factory=tuple)


def speak(portrait: str | os.PathLike[str], audio: str | os.PathLike[str], output: str | os.PathLike[str],
          options: SpeakOptions = SpeakOptions(), text: str | None = None,
          progress: Progress | None = None) -> SpeakResult:
    """Make the face in `portrait` say the speech in `audio` (any audio file, or a video's sound); write an MP4.

    text: the words spoken, if known (forced alignment makes the mouth more
    exact). Raises TalkheadError subclasses on bad input.
    """
    from talkhead.drivers.audio import SpeechMotion, listen
    from talkhead.speech.worker import Recognizer
    from talkhead.io.audio import iter_audio, probe_audio
    from talkhead.speech.phones import SAMPLE_RATE
    from talkhead.weights import load_frond, load_lipsync

    start = time.perf_counter()
    render_options = _check_settings(options.render_options())
    src_path, audio_path = require_readable(portrait), require_readable(audio)
    check_writable(Path(output))
    if text is not None and not text.strip():
        raise OptionError("--text is empty: give the words that are spoken, or leave --text out")
    if text is not None and options.max_seconds:
        raise OptionError("--max-seconds cuts the audio, so the transcript would no longer fit it: "
                          "use one or the other")
    info = probe_audio(audio_path)
    with contextlib.ExitStack() as stack:
        # without a transcript, a helper process recognises the speech; it starts now, loading its models
        # while the portrait and the audio are read here
        recognizer = stack.enter_context(Recognizer(background=text is None))
        model = load_lipsync(Path(options.lipsync) if options.lipsync else None)
        frond = None
        if options.driver_name() == "frond":
            # with the frond engine, its file (already resolved and verified) serves the driver too
            given = options.frond or (render_options.weights if options.engine == "frond" else None)
            frond = load_frond(Path(given) if given else None)
        image = find_portrait_face(load_image(src_path), options.face, str(src_path), options.max_output_side)
        expected = min(info.duration, options.max_seconds or np.inf)
        report = (lambda done, total: progress("listening", int(done), int(total))) if progress else None
        blocks = iter_audio(audio_path, SAMPLE_RATE, max_seconds=options.max_seconds)
        speech = stack.enter_context(listen(blocks, options.fps, model, text, options.pose, options.seed, report,
                                            expected, frond, recognizer=recognizer))
        # the mouth of each stretch is worked out as rendering reaches it, while the helpers recognise the
        # stretches after it: torch leaves them a core until they are done
        if speech.background:
            threads = torch.get_num_threads()
            stack.enter_context(cpu_threads(threads - 1))
            speech.when_heard(lambda: torch.set_num_threads(threads))
        analysed = time.perf_counter() - start
        motion = SpeechMotion(speech, model, frond)
        rest = motion.rest(_lip_gap(image))
        made = render_motion(image, motion, output, render_options, audio_path, progress, start, reference=rest)
    return SpeakResult(made.output, made.frames, made.fps, made.duration, made.width, made.height, made.audio,
                       text is not None, speech.gestures.blinks, made.engine, made.device, time.perf_counter() - start,
                       analysed, options.driver_name())


def _check_settings(options: AnimateOptions) -> AnimateOptions:
    """Fail early on bad settings, before any work: the device, and the engine's weights.

    Returns the options with a learned engine's weights resolved (and verified) to a path,
    so the engine reads that file without resolving and hashing it again.
    """
    resolve_device(options.device)
    if options.engine == "analytic":
        return options
    from talkhead.weights import resolve_weights

    path = resolve_weights(options.engine, Path(options.weights) if options.weights else None)
    return replace(options, weights=str(path))


def _lip_gap(portrait: Portrait) -> float:
    """The portrait's inner-lip gap in canonical units."""
    from talkhead.motion import face_openings

    return float(face_openings(source_pose(portrait.landmarks)[3][None])[0, 0])


def render_motion(portrait: Portrait, motion: MotionSource, output: str | os.PathLike[str], options: AnimateOptions,
                  audio: Path | None = None, progress: Progress | None = None, start: float | None = None,
                  lost: int = 0, warnings: tuple[str, ...] = (), reference: Motion | None = None) -> AnimateResult:
    """Animate a located portrait with motion; write the MP4 (with `audio`'s track, if given).

    reference: the one-frame Motion that stands for the portrait's own pose
    and expression; by default `options.reference` picks a frame of `motion`
    (which must then be a Motion).
    """
    start = time.perf_counter() if start is None else start
    device = resolve_device(options.device)
    reuse_freed_memory()
    crop = cut(portrait.image, portrait.box, options.size)
    crop_lm = portrait.box.to_crop(portrait.landmarks, options.size)
    ref = -1
    if reference is None:
        ref = reference_index(options.reference, motion, crop_lm)
        reference = motion.chunk(slice(ref, ref + 1))

    def targets(frames: slice) -> np.ndarray:
        return retarget(motion.chunk(frames), crop_lm, reference, options.parts, options.expression_scale,
                        options.pose_scale)

    engine = make_engine(options.engine, options.size, device, options.weights)
    detail = None
    if options.detail and not options.crop_only and portrait.box.side > DETAIL_FROM * options.size:
        detail = cut(portrait.image, portrait.box, min(round(portrait.box.side), 2 * options.size))
    paste = None if options.crop_only else PasteBack.plan(portrait.box, portrait.image.shape)
    # where the crop reaches past the portrait's edges, nothing there is seen: not rendered either
    prepared = engine.prepare(crop, crop_lm, detail, visible=paste.visible() if paste else None)
    duration = len(motion) / motion.fps
    with MuxedOutput(output, audio, duration) as finished:
        size = _write_video(finished.video, engine, prepared, targets, len(motion), paste, portrait.image,
                            motion.fps, options.crf, progress)
    return AnimateResult(str(output), len(motion), motion.fps, duration, size[0], size[1], finished.audio,
                         ref, lost, engine.name, str(device), time.perf_counter() - start, warnings)


def _write_video(path: Path, engine: Engine, prepared: PreparedSource, targets: Callable[..., np.ndarray], count: int,
                 paste: PasteBack | None, portrait: np.ndarray, fps: float, crf: int,
                 progress: Progress | None) -> tuple[int, int]:
    """Render `count` frames in chunks and encode; returns the video's (width, height).

    targets(frames) gives the target landmarks of a chunk. Each chunk is pasted back and encoded on a
    thread of its own while the next one renders.
    """
    with VideoWriter(path, fps, crf=crf) as writer:
        def write(frames: np.ndarray) -> None:
            for frame in frames:
                writer.write(frame if paste is None else paste.apply(portrait, frame))

        with Behind(write) as behind:
            for i in range(0, count, CHUNK):
                frames = engine.render(prepared, targets(slice(i, i + CHUNK)))
                behind.put(frames)
                if progress:
                    progress("rendering", min(i + CHUNK, count), count)
        shape = frames.shape[1:] if paste is None else portrait.shape
    return shape[1] + shape[1] % 2, shape[0] + shape[0] % 2
