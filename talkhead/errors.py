"""Errors raised by the library.

Every error carries a message that says what went wrong and what to do about it.
Only ``talkhead.cli`` turns them into exit codes: ``exit_code`` is 2 for bad
input (the user can fix it), 3 for model weights that are missing, corrupt or
cannot be downloaded, and 1 for internal failures.
"""

from __future__ import annotations


class TalkheadError(Exception):
    """Base class of every error talkhead raises on purpose."""

    exit_code = 1


class InputError(TalkheadError):
    """Something the user gave us cannot be used (file, option, media)."""

    exit_code = 2


class MediaError(InputError):
    """A media file is missing, unreadable, or holds no usable stream."""


class NoFaceFound(InputError):
    """No face could be found where one is needed."""


class OutputError(InputError):
    """The output path cannot be written."""


class OptionError(InputError):
    """An option has a value that cannot be used."""


class DeviceError(InputError):
    """The requested compute device is not available."""


class WeightsError(TalkheadError):
    """Model weights are missing, corrupt, incompatible or cannot be downloaded (exit code 3)."""

    exit_code = 3


class TranscriptError(InputError):
    """A transcript cannot be aligned with its speech (wrong text, or no speech in the audio)."""
