"""talkhead: talking-head videos from one portrait.

    import talkhead
    result = talkhead.animate("portrait.jpg", "driving.mp4", "out.mp4")
    result = talkhead.speak("portrait.jpg", "speech.wav", "out.mp4")
"""

from __future__ import annotations

__version__ = "0.1.0"

from talkhead.errors import (  # noqa: E402
    DeviceError, InputError, MediaError, NoFaceFound, OptionError, OutputError, TalkheadError, TranscriptError,
    WeightsError,
)

__all__ = [
    "__version__", "animate", "speak", "measure_motion", "demo", "AnimateOptions", "SpeakOptions", "MotionOptions",
    "AnimateResult", "SpeakResult",
    "Motion",
    "TalkheadError", "InputError", "MediaError", "NoFaceFound", "OptionError", "OutputError",
    "DeviceError", "TranscriptError", "WeightsError",
]


def __getattr__(name: str):
    """Import the heavy parts (torch, mediapipe) only when used: `talkhead --version` stays instant."""
    if name in ("animate", "speak", "measure_motion", "demo", "AnimateResult", "SpeakResult"):
        from talkhead import api
        return getattr(api, name)
    if name in ("AnimateOptions", "MotionOptions", "SpeakOptions"):
        from talkhead import options
        return getattr(options, name)
    if name == "Motion":
        from talkhead.motion import Motion
        return Motion
    raise AttributeError(f"module 'talkhead' has no attribute {name!r}")
