#!/usr/bin/env python
"""Ship a trained model: a run's weights file → weights/NAME.safetensors (float16), registered.

    .venv/bin/python scripts/ship_model.py codebook RUN_DIR/last.safetensors
    .venv/bin/python scripts/ship_model.py frond RUN_DIR/frond.safetensors

Keeps the run's metadata (steps or stages, validation clips, scores) and
records the new file's sha256 and size in weights/registry.json.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from talkhead import weights as w  # noqa: E402

MODELS = {w.CODEBOOK: (lambda p: w.load_codebook_file(p)[0], w.save_codebook),
          w.FROND: (lambda p: w.load_frond_file(p)[0], w.save_frond)}


def main(name: str, source: Path) -> int:
    load, save = MODELS[name]
    meta = {k: v for k, v in w.read_safetensors(source)[1].items() if k not in ("kind", "version", "config")}
    save(w.weights_dir() / f"{name}.safetensors", load(source), meta, half=True)
    entry = w.register_local(name)
    print(f"{entry.file}: {entry.size} bytes, sha256 {entry.sha256}")
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] not in MODELS:
        sys.exit(__doc__)
    raise SystemExit(main(sys.argv[1], Path(sys.argv[2])))
