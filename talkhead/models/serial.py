"""Model weights as safetensors-ready arrays, and the header check every model file goes through."""

from __future__ import annotations

import torch
import torch.nn as nn


def state_arrays(model: nn.Module, half: bool = False) -> dict:
    """numpy arrays of the model's state by name (`half`: float weights stored as float16, for shipping)."""
    return {k: v.detach().cpu().to(torch.float16 if half and v.is_floating_point() else v.dtype)
            .contiguous().numpy() for k, v in model.state_dict().items()}


def check_header(meta: dict[str, str], kind: str, version: int) -> None:
    """ValueError unless the metadata names `kind` at a format version up to `version`."""
    if meta.get("kind") != kind:
        raise ValueError(f"kind is {meta.get('kind')!r}, not {kind!r}")
    if int(meta.get("version", 0)) > version:
        raise ValueError(f"format version {meta['version']} is newer than this talkhead reads ({version})")


def load_state(model: nn.Module, arrays: dict) -> nn.Module:
    """Load numpy arrays into the model (float arrays as float32); returns it in eval mode."""
    model.load_state_dict({k: torch.from_numpy(v).float() if v.dtype.kind == "f" else torch.from_numpy(v)
                           for k, v in arrays.items()})
    return model.eval()
