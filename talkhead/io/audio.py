"""Audio files: probe, and stream the sound as float32 mono at a chosen rate.

The audio front end: the only code in talkhead that reads audio. It uses
PyAV (FFmpeg bindings), so it reads whatever FFmpeg reads: WAV, MP3,
M4A/AAC, FLAC, Ogg Vorbis/Opus, and the sound of a video (MP4, MOV, MKV).
Only the first audio stream is used. Samples come out as ``float32 [N]``
mono in [-1, 1] at ``rate`` Hz.

Each channel is resampled by FFmpeg's swresample, then the channels are
averaged here: swresample's own downmix to mono is not an average (it
weights a plain stereo pair by 0.71 each and sums 5.1 to over 3x the level).
Decoded samples are concatenated; timestamp gaps are not filled. Encoder
padding past the stream's declared duration (AAC adds up to ~2000 samples)
is cut, so a 3.000 s file gives 3.000 * rate samples.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np

from talkhead.errors import MediaError
from talkhead.io.files import require_readable
from talkhead.io.video import _reason, _stream_duration, open_input

SAMPLE_RATE = 16000  # Hz, default output rate (what the speech models use)
BLOCK_SECONDS = 10.0  # default length of the blocks iter_audio yields
PADDING_SECONDS = 0.1  # at most this much decoded past the declared duration is cut as padding


@dataclass(frozen=True)
class AudioInfo:
    """What :func:`probe_audio` learns about the first audio stream of a file.

    ``sample_rate`` in Hz and ``channels`` as stored (0 if unknown);
    ``duration`` in seconds (0.0 if unknown); ``codec`` the FFmpeg codec
    name (``"pcm_s16le"``, ``"mp3"``, ``"aac"``, ``"opus"``...).
    """

    path: str
    sample_rate: int
    channels: int
    duration: float
    codec: str


def _open(path: Path) -> av.container.InputContainer:
    """Open ``path`` with PyAV; MediaError if FFmpeg cannot read it."""
    return open_input(path, "audio", "use an audio file such as WAV, MP3 or M4A, or a video with sound")


def _audio_stream(container: av.container.InputContainer, path: Path) -> av.AudioStream:
    """Return the first audio stream, or raise MediaError."""
    if not container.streams.audio:
        raise MediaError(
            f"{path} has no audio track; give an audio file or a video with sound"
        )
    return container.streams.audio[0]


def probe_audio(path: str | os.PathLike[str]) -> AudioInfo:
    """Read the rate, channel count, duration and codec of a file's first audio stream.

    Decodes nothing.

    Raises:
        MediaError: missing/unreadable file, not a media file, or no audio track.
    """
    p = require_readable(path)
    with _open(p) as container:
        stream = _audio_stream(container, p)
        codec = stream.codec_context.codec
        return AudioInfo(
            path=str(p),
            sample_rate=int(stream.sample_rate or 0),
            channels=int(stream.channels or 0),
            duration=_stream_duration(stream, container),
            codec=str(codec.canonical_name or codec.name),
        )


def iter_audio(
    path: str | os.PathLike[str], rate: int = SAMPLE_RATE, block_seconds: float = BLOCK_SECONDS,
    max_seconds: float | None = None,
) -> Iterator[np.ndarray]:
    """Stream a file's first audio stream as mono blocks at ``rate`` Hz (the first ``max_seconds`` if given).

    Any input rate and channel count; channels are averaged. Packets are
    decoded lazily and at most about one block is held, so memory does not
    grow with the file's length. The missing-file and argument checks run
    at call time; the file is opened on the first ``next()``.

    Yields:
        block: float32 [B] mono, -1..1, with B = round(rate * block_seconds)
        for every block but the last, which has 1..B samples.

    Raises:
        MediaError: missing/unreadable file, not a media file, no audio
            track, no samples at all, or a stream that is corrupt midway.
        ValueError: ``rate`` or ``block_seconds`` is not positive.
    """
    p = require_readable(path)
    if int(rate) != rate or rate < 1:
        raise ValueError(f"rate must be a positive whole number of Hz, got {rate!r}")
    size = round(rate * block_seconds) if 0 < block_seconds < float("inf") else 0
    if size < 1:
        raise ValueError(f"block_seconds must give at least one sample, got {block_seconds!r}")
    limit = None if max_seconds is None else max(1, round(max_seconds * rate))
    return _generate_blocks(p, int(rate), size, limit)


def load_audio(path: str | os.PathLike[str], rate: int = SAMPLE_RATE) -> np.ndarray:
    """The whole sound of a file as float32 [N] mono, -1..1, at ``rate`` Hz.

    For short clips: holds everything in memory. Same samples as the
    blocks of :func:`iter_audio` joined; same errors.
    """
    return np.concatenate(list(iter_audio(path, rate)))


def _generate_blocks(path: Path, rate: int, size: int, limit: int | None) -> Iterator[np.ndarray]:
    """Generator behind :func:`iter_audio` (owns the open container); stops after `limit` samples."""
    with _open(path) as container:
        stream = _audio_stream(container, path)
        frames = _decoded(container, stream, path)
        chunks = _trim_padding(_mono(frames, rate, path), _declared_samples(stream, rate), rate)
        count = 0
        for block in _blocks(chunks, size):
            if limit is not None:
                block = block[:limit - count]
            count += len(block)
            yield block
            if count == limit:
                break
    if count == 0:
        raise MediaError(f"{path} is empty: its audio track holds no samples; use another file")


def _decoded(
    container: av.container.InputContainer, stream: av.AudioStream, path: Path
) -> Iterator[av.AudioFrame]:
    """Demux and decode ``stream`` lazily; the decoder is flushed at the end."""
    decoded = 0.0
    try:
        for packet in container.demux(stream):
            for frame in stream.decode(packet):
                decoded += frame.samples / (frame.sample_rate or 1)
                yield frame
    except (av.FFmpegError, OSError) as exc:
        raise MediaError(
            f"cannot read audio {path}: the stream is corrupt after {decoded:.1f} s "
            f"({_reason(exc)}); repair or re-encode the file"
        ) from exc


def _mono(frames: Iterator[av.AudioFrame], rate: int, path: Path) -> Iterator[np.ndarray]:
    """Resample each channel to ``rate``, then average: float32 [n] chunks in -1..1.

    A new resampler is made (after flushing the old one) whenever the input
    format, layout or rate changes midway.
    """
    resampler, key = None, None
    try:
        for frame in frames:
            if (frame.format.name, frame.layout.name, frame.sample_rate) != key:
                yield from _drain(resampler, None)
                resampler = av.AudioResampler(format="fltp", layout=frame.layout, rate=rate)
                key = (frame.format.name, frame.layout.name, frame.sample_rate)
            yield from _drain(resampler, frame)
        yield from _drain(resampler, None)
    except (av.FFmpegError, ValueError) as exc:
        raise MediaError(
            f"cannot resample audio {path} to {rate} Hz ({_reason(exc)}); "
            "re-encode the file, e.g. as 16-bit WAV"
        ) from exc


def _drain(
    resampler: av.AudioResampler | None, frame: av.AudioFrame | None
) -> Iterator[np.ndarray]:
    """Push ``frame`` (None flushes) and yield the channel means of what comes out."""
    if resampler is None:
        return
    for out in resampler.resample(frame):
        if out.samples == 0:
            continue
        planes = out.to_ndarray()  # float32 [C,n], C = input channels
        yield np.clip(planes.mean(axis=0, dtype=np.float32), -1.0, 1.0)


def _declared_samples(stream: av.AudioStream, rate: int) -> int | None:
    """The stream's declared duration in output samples, None if unknown."""
    if stream.duration and stream.time_base:
        return round(float(stream.duration * stream.time_base) * rate)
    return None


def _trim_padding(
    chunks: Iterator[np.ndarray], limit: int | None, rate: int
) -> Iterator[np.ndarray]:
    """Cut samples past ``limit`` if there are at most PADDING_SECONDS of them.

    Encoders pad the last packet (AAC to a whole 1024-sample frame, plus
    its delay); the container's declared duration says where the real sound
    ends. If more than that much sound follows, the declared duration was a
    wrong estimate and everything is kept. Holds back at most the slack.
    """
    if limit is None:
        yield from chunks
        return
    slack = round(PADDING_SECONDS * rate)
    held: list[np.ndarray] = []
    seen = 0
    for chunk in chunks:
        head = max(0, min(len(chunk), limit - seen))
        seen += len(chunk)
        if head:
            yield chunk[:head]
        if head < len(chunk):
            held.append(chunk[head:])
        if seen - limit > slack:  # real sound, not padding: release it all
            yield from held
            yield from chunks
            return


def _blocks(chunks: Iterator[np.ndarray], size: int) -> Iterator[np.ndarray]:
    """Regroup float32 chunks into blocks of ``size`` samples (the last may be shorter)."""
    buffer: list[np.ndarray] = []
    held = 0
    for chunk in chunks:
        buffer.append(chunk)
        held += len(chunk)
        if held >= size:
            data = np.concatenate(buffer)
            full = len(data) - len(data) % size
            for start in range(0, full, size):
                yield data[start:start + size]
            buffer, held = [data[full:].copy()], len(data) - full
    if held:
        yield np.concatenate(buffer)
