"""Save and load Motion files (.npz of plain arrays; never pickled)."""

from __future__ import annotations

import os
import zipfile

import numpy as np

from talkhead.errors import MediaError
from talkhead.io.files import atomic_output, require_readable
from talkhead.motion import Motion


def save_motion(path: str | os.PathLike[str], motion: Motion) -> None:
    """Write `motion` to `path` (.npz), atomically."""
    with atomic_output(path) as tmp:
        with open(tmp, "wb") as fh:
            np.savez_compressed(fh, **motion.to_arrays())


def load_motion(path: str | os.PathLike[str]) -> Motion:
    """Read a Motion written by `save_motion`."""
    p = require_readable(path)
    try:
        with np.load(p, allow_pickle=False) as data:
            return Motion.from_arrays({k: data[k] for k in data.files})
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as exc:
        raise MediaError(f"cannot read motion file {p}: {exc}; make one with 'talkhead motion'") from exc
