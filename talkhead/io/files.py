"""Path checks and atomic output files.

Nothing here touches media formats; these helpers only check paths and make
sure a failed run never leaves a partial output file behind.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from talkhead.errors import MediaError, OutputError


def require_readable(path: str | os.PathLike[str]) -> Path:
    """Return ``path`` as a Path if it is an existing, readable file.

    Raises:
        MediaError: the file is missing, is a directory, or cannot be read.
    """
    p = Path(path)
    if not p.exists():
        raise MediaError(f"cannot read {p}: file not found; check the path")
    if p.is_dir():
        raise MediaError(f"cannot read {p}: it is a directory; give the path of a file")
    if not os.access(p, os.R_OK):
        raise MediaError(f"cannot read {p}: permission denied; check the file's permissions")
    return p


def check_writable(p: Path) -> None:
    """Raise OutputError unless a file can be created at ``p``."""
    parent = p.parent
    if p.is_dir():
        raise OutputError(f"cannot write {p}: it is a directory; give a file name")
    if not parent.exists():
        raise OutputError(
            f"cannot write {p}: folder '{parent}' does not exist; create it first"
        )
    if not parent.is_dir():
        raise OutputError(f"cannot write {p}: '{parent}' is not a folder; fix the output path")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise OutputError(
            f"cannot write {p}: folder '{parent}' is not writable; choose another output folder"
        )


def temp_path_for(path: str | os.PathLike[str]) -> Path:
    """Return an unused hidden temp path next to ``path`` with the same suffix.

    ``out/x.mp4`` gives e.g. ``out/.x.mp4.tmp-1a2b3c4d5e6f.mp4``. The file is
    not created.
    """
    p = Path(path)
    while True:
        tmp = p.with_name(f".{p.name}.tmp-{secrets.token_hex(6)}{p.suffix}")
        if not tmp.exists():
            return tmp


def _remove_quietly(p: Path) -> None:
    """Delete ``p`` if it exists, ignoring errors (used during cleanup)."""
    try:
        p.unlink(missing_ok=True)
    except OSError:
        pass


@contextmanager
def atomic_output(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Write a file all-or-nothing.

    Checks up front that ``path`` can be created, yields a hidden temp path in
    the same folder with the same suffix, and on normal exit renames it to
    ``path`` with ``os.replace``. On any exception (including
    KeyboardInterrupt) the temp file is deleted and the exception re-raised,
    so a partial output never appears at ``path``.

    Raises:
        OutputError: the folder is missing or not writable, ``path`` is a
            directory, nothing was written to the temp path, or the final
            rename failed.
    """
    final = Path(path)
    check_writable(final)
    tmp = temp_path_for(final)
    try:
        yield tmp
    except BaseException:
        _remove_quietly(tmp)
        raise
    if not tmp.exists():
        raise OutputError(
            f"cannot write {final}: nothing was written (internal error; please report it)"
        )
    try:
        os.replace(tmp, final)
    except OSError as exc:
        _remove_quietly(tmp)
        raise OutputError(
            f"cannot write {final}: {exc.strerror or exc}; check the output path"
        ) from exc


def read_text(path: str | os.PathLike[str]) -> str:
    """The text of a UTF-8 file (a transcript); MediaError if it cannot be read or decoded."""
    p = require_readable(path)
    try:
        return p.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise MediaError(f"cannot read {p}: it is not UTF-8 text; save the transcript as UTF-8") from None
    except OSError as exc:
        raise MediaError(f"cannot read {p}: {exc.strerror or exc}") from None


def append_line(path: str | os.PathLike[str], line: str) -> None:
    """Append one line of text to ``path`` (a log that grows as a run goes on)."""
    with open(path, "a", encoding="utf-8") as f:
        f.write(line.rstrip("\n") + "\n")


def save_arrays(path: str | os.PathLike[str], **arrays) -> None:
    """Write numpy arrays to an .npz file atomically (a cache that is either whole or absent)."""
    import numpy as np

    with atomic_output(path) as tmp:
        np.savez(tmp, **arrays)


def load_arrays(path: str | os.PathLike[str]) -> dict:
    """Arrays of an .npz file written by `save_arrays` (no pickled objects)."""
    import numpy as np

    with np.load(path, allow_pickle=False) as data:
        return {k: data[k] for k in data.files}
