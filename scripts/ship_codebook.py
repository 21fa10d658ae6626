#!/usr/bin/env python
"""Ship a trained codebook model: RUN_DIR/last.safetensors → weights/codebook.safetensors (float16), registered.

    .venv/bin/python scripts/ship_codebook.py RUN_DIR

Keeps the run's metadata (steps, validation clips, scores) and records the
new file's sha256 and size in weights/registry.json.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from talkhead.weights import CODEBOOK, read_safetensors, register_local, save_codebook, weights_dir  # noqa: E402
from talkhead.weights import load_codebook_file  # noqa: E402


def main(run: Path) -> int:
    source = run / "last.safetensors"
    model, _ = load_codebook_file(source)
    meta = {k: v for k, v in read_safetensors(source)[1].items() if k not in ("kind", "version", "config")}
    save_codebook(weights_dir() / "codebook.safetensors", model, meta, half=True)
    entry = register_local(CODEBOOK)
    print(f"{entry.file}: {entry.size} bytes, sha256 {entry.sha256}, steps {meta.get('steps')}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(Path(sys.argv[1])))
