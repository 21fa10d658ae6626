#!/usr/bin/env bash
# Set up talkhead in ./.venv on a Debian/Ubuntu machine with Python 3.10+.
#   scripts/setup.sh          runtime only
#   scripts/setup.sh --dev    plus the test tools
# Safe to run again: it only installs what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}

# System packages: ffmpeg always; espeak-ng (speech synthesis for the tests) with --dev.
NEED=()
command -v ffmpeg >/dev/null 2>&1 || NEED+=(ffmpeg)
if [ "${1:-}" = "--dev" ] && ! ldconfig -p 2>/dev/null | grep libespeak-ng.so.1 >/dev/null; then NEED+=(espeak-ng); fi
if [ ${#NEED[@]} -gt 0 ]; then
    echo "setup: installing ${NEED[*]} (system packages)" >&2
    SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    $SUDO apt-get update -qq && $SUDO apt-get install -y -qq "${NEED[@]}" >/dev/null
fi

"$PY" - <<'PYCHECK'
import sys
if sys.version_info < (3, 10):
    sys.exit(f"setup: talkhead needs Python 3.10 or newer, found {sys.version.split()[0]}")
PYCHECK

[ -x .venv/bin/python ] || "$PY" -m venv .venv
PIP=(.venv/bin/python -m pip install -q --disable-pip-version-check)
# torch first and pinned: a range would pull a multi-GB CUDA build on CPU machines.
.venv/bin/python -c "import torch" 2>/dev/null || "${PIP[@]}" "torch==2.13.0"
if [ "${1:-}" = "--dev" ]; then "${PIP[@]}" -e ".[test]"; else "${PIP[@]}" -e .; fi
echo "setup: ready (.venv/bin/talkhead)" >&2
