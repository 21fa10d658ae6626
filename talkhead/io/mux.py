"""Put an audio track on a finished video, using the ``ffmpeg`` binary.

Uses ffmpeg-python to build the command line. The video stream is copied
untouched; the audio is re-encoded as AAC.
"""

from __future__ import annotations

import math
import os
import shutil
import sys
from pathlib import Path

import ffmpeg

from talkhead.errors import MediaError
from talkhead.io.files import atomic_output, require_readable
from talkhead.io.video import open_input, probe_video

_FFMPEG_MISSING = "ffmpeg not found: install it with your package manager (apt-get install ffmpeg)"
_FORMATS_BY_SUFFIX = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov"}


def has_audio(path: str | os.PathLike[str]) -> bool:
    """Whether the media file at ``path`` holds at least one audio stream.

    Raises:
        MediaError: missing file or not a media file.
    """
    return audio_codec(path) is not None


def audio_codec(path: str | os.PathLike[str]) -> str | None:
    """The codec name of the first audio stream of the media file at ``path`` (None: no audio stream).

    Raises:
        MediaError: missing file or not a media file.
    """
    with open_input(path, what="media file") as container:
        if not container.streams.audio:
            return None
        return container.streams.audio[0].codec_context.name


def _last_line(text: bytes | None) -> str:
    """Last non-empty line of ffmpeg's stderr, or a placeholder."""
    lines = [ln.strip() for ln in (text or b"").decode("utf-8", "replace").splitlines()]
    lines = [ln for ln in lines if ln]
    return lines[-1] if lines else "no error message"


def mux_audio(
    video_path: str | os.PathLike[str],
    audio_source: str | os.PathLike[str],
    out_path: str | os.PathLike[str],
    offset: float = 0.0,
    duration: float | None = None,
) -> bool:
    """Write ``out_path``: the video of ``video_path`` plus audio from ``audio_source``.

    The video stream is copied (``-c:v copy``). The first audio stream of
    ``audio_source`` (a video or an audio file) is read from ``offset``
    seconds on, encoded as AAC 192 kb/s (copied as it is when it is AAC already and read from
    the start) and cut to ``duration`` seconds
    (default: the video's duration; ``-shortest`` if that is unknown). The
    MP4 gets ``+faststart``. Writes ``out_path`` directly (wrap it in
    ``atomic_output``); ffmpeg runs quietly.

    Returns:
        True if ``out_path`` was written; False (nothing written) if
        ``audio_source`` has no audio stream.

    Raises:
        MediaError: ffmpeg is missing, an input is unreadable, or ffmpeg failed.
        ValueError: ``offset`` is negative or ``duration`` is not positive.
    """
    if not (math.isfinite(offset) and offset >= 0):
        raise ValueError(f"offset must be >= 0 seconds, got {offset!r}")
    if duration is not None and not (math.isfinite(duration) and duration > 0):
        raise ValueError(f"duration must be > 0 seconds, got {duration!r}")
    video = require_readable(video_path)
    codec = audio_codec(audio_source)
    if codec is None:
        return False
    if shutil.which("ffmpeg") is None:
        raise MediaError(_FFMPEG_MISSING)
    if duration is None:
        duration = probe_video(video).duration or None
    _run_ffmpeg(video, Path(audio_source), Path(out_path), offset, duration, copy=codec == "aac" and offset == 0)
    return True


def _run_ffmpeg(
    video: Path, audio: Path, out: Path, offset: float, duration: float | None, copy: bool = False
) -> None:
    """Run the ffmpeg mux command (the audio copied, or encoded as AAC); translate failures into MediaError."""
    audio_in = ffmpeg.input(str(audio), ss=offset) if offset > 0 else ffmpeg.input(str(audio))
    # FFmpeg's fast AAC coder: about half the time of its default one (0.35 against 0.72 s for 8 s of
    # speech on our 2-core machine); at 192 kb/s it keeps speech as well (20 s of speech decoded back:
    # 43.7 dB signal-to-noise against the source, the default coder 43.1 dB)
    audio_options = {"c:a": "copy"} if copy else {"c:a": "aac", "aac_coder": "fast", "b:a": "192k"}
    out_options = {
        "c:v": "copy",
        **audio_options,
        "movflags": "+faststart",
        "f": _FORMATS_BY_SUFFIX.get(out.suffix.lower(), "mp4"),
    }
    if duration is not None:
        out_options["t"] = f"{duration:.6f}"
    else:
        out_options["shortest"] = None
    stream = (
        ffmpeg.output(ffmpeg.input(str(video))["v:0"], audio_in["a:0"], str(out), **out_options)
        .global_args("-nostdin", "-hide_banner", "-loglevel", "error")
        .overwrite_output()
    )
    try:
        stream.run(capture_stdout=True, capture_stderr=True, quiet=True)
    except FileNotFoundError as exc:
        raise MediaError(_FFMPEG_MISSING) from exc
    except ffmpeg.Error as exc:
        raise MediaError(
            f"ffmpeg could not add the audio of {audio} to {video}: {_last_line(exc.stderr)}"
        ) from exc


class MuxedOutput:
    """Write a video stream first, then the final file with an audio track, all or nothing.

        with MuxedOutput("out.mp4", audio="driving.mp4", duration=10.0) as out:
            ...write the video stream to out.video...
        out.audio  # True when an audio track was put on

    The video goes to a hidden temporary file beside the output; on success
    the output appears at once (atomically), with `audio`'s first audio track
    muxed in when it has one; on failure nothing is left behind.
    """

    def __init__(self, output: str | os.PathLike[str], audio: str | os.PathLike[str] | None,
                 duration: float | None) -> None:
        self.output, self.source, self.duration = Path(output), audio, duration
        self.audio = False
        self._outer = atomic_output(self.output)
        self.video = Path()

    def __enter__(self) -> "MuxedOutput":
        self._final = self._outer.__enter__()
        self.video = self._final.with_name(self._final.name + ".video.mp4")
        return self

    def __exit__(self, kind, value, trace) -> bool:
        try:
            if kind is None:
                self.audio = self.source is not None and mux_audio(self.video, self.source, self._final,
                                                                   duration=self.duration)
                if not self.audio:
                    os.replace(self.video, self._final)
        except BaseException:
            self._cleanup()
            self._outer.__exit__(*sys.exc_info())  # removes the temporary output, then the error goes on
            raise
        self._cleanup()
        return bool(self._outer.__exit__(kind, value, trace))

    def _cleanup(self) -> None:
        if self.video != Path():
            self.video.unlink(missing_ok=True)
