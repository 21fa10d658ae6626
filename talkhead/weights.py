"""Model weights: where they live and how they are read (the only module besides io/ that touches files).

Weights are safetensors files with their model's settings in the metadata;
nothing is ever unpickled. The project ships its small weights in the
repository's `weights/` folder; `TALKHEAD_WEIGHTS` points elsewhere.
"""

from __future__ import annotations

import os
from pathlib import Path

from talkhead.errors import WeightsError

LIPSYNC_FILE = "lipsync.safetensors"


def weights_dir() -> Path:
    """The folder holding the shipped weights (TALKHEAD_WEIGHTS overrides)."""
    return Path(os.environ.get("TALKHEAD_WEIGHTS") or Path(__file__).resolve().parent.parent / "weights")


def read_safetensors(path: Path) -> tuple[dict, dict[str, str]]:
    """Arrays (numpy) and metadata of a safetensors file; WeightsError if missing or corrupt."""
    from safetensors import SafetensorError, safe_open

    if not path.is_file():
        raise WeightsError(f"weights file {path} is missing: reinstall talkhead, or set TALKHEAD_WEIGHTS "
                           f"to the folder that holds {path.name}")
    try:
        with safe_open(str(path), framework="numpy") as f:
            return {k: f.get_tensor(k) for k in f.keys()}, dict(f.metadata() or {})
    except (SafetensorError, OSError, ValueError) as exc:
        raise WeightsError(f"weights file {path} cannot be read ({exc}): reinstall talkhead") from exc


def write_safetensors(path: Path, arrays: dict, meta: dict[str, str]) -> None:
    """Write arrays and metadata to `path` atomically."""
    from safetensors.numpy import save_file

    from talkhead.io.files import atomic_output

    with atomic_output(path) as tmp:
        save_file(arrays, str(tmp), metadata=meta)


def load_lipsync(path: Path | None = None):
    """The lip-sync model (talkhead.models.lipsync.LipsyncModel) from `path` or the shipped file."""
    from talkhead.models.lipsync import LipsyncModel

    path = path or weights_dir() / LIPSYNC_FILE
    arrays, meta = read_safetensors(path)
    try:
        return LipsyncModel.from_tensors(arrays, meta)
    except (KeyError, ValueError) as exc:
        raise WeightsError(f"weights file {path} is not a lip-sync model this talkhead reads ({exc})") from exc
