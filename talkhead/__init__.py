"""talkhead: talking-head videos from one portrait.

    import talkhead
    result = talkhead.animate("portrait.jpg", "driving.mp4", "out.mp4")
"""

from __future__ import annotations

__version__ = "0.1.0"

from talkhead.errors import (  # noqa: E402
    DeviceError, InputError, MediaError, NoFaceFound, OptionError, OutputError, TalkheadError, WeightsError,
)

__all__ = [
    "__version__", "animate", "measure_motion", "demo", "AnimateOptions", "MotionOptions", "AnimateResult",
    "Motion",
    "TalkheadError", "InputError", "MediaError", "NoFaceFound", "OptionError", "OutputError",
    "DeviceError", "WeightsError",
]


def __getattr__(name: str):
    """Import the heavy parts (torch, mediapipe) only when used: `talkhead --version` stays instant."""
    if name in ("animate", "measure_motion", "demo", "AnimateResult"):
        from talkhead import api
        return getattr(api, name)
    if name in ("AnimateOptions", "MotionOptions"):
        from talkhead import options
        return getattr(options, name)
    if name == "Motion":
        from talkhead.motion import Motion
        return Motion
    raise AttributeError(f"module 'talkhead' has no attribute {name!r}")
