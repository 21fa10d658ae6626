"""Tests for talkhead.io.files: atomic_output and require_readable."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from talkhead.errors import MediaError, OutputError
from talkhead.io.files import atomic_output, require_readable


def test_success_renames_into_place(tmp_path: Path) -> None:
    final = tmp_path / "x.mp4"
    with atomic_output(final) as tmp:
        assert tmp.parent == tmp_path
        assert tmp.name.startswith(".x.mp4.tmp-") and tmp.suffix == ".mp4"
        assert not final.exists()
        tmp.write_bytes(b"data")
    assert final.read_bytes() == b"data"
    assert os.listdir(tmp_path) == ["x.mp4"]


def test_success_replaces_existing_file(tmp_path: Path) -> None:
    final = tmp_path / "x.png"
    final.write_bytes(b"old")
    with atomic_output(str(final)) as tmp:
        tmp.write_bytes(b"new")
    assert final.read_bytes() == b"new"


@pytest.mark.parametrize("error", [RuntimeError, KeyboardInterrupt])
def test_exception_leaves_no_file_and_no_temp(tmp_path: Path, error: type) -> None:
    final = tmp_path / "x.mp4"
    with pytest.raises(error):
        with atomic_output(final) as tmp:
            tmp.write_bytes(b"partial")
            raise error("boom")
    assert os.listdir(tmp_path) == []


def test_exception_keeps_existing_output(tmp_path: Path) -> None:
    final = tmp_path / "x.mp4"
    final.write_bytes(b"old")
    with pytest.raises(ValueError):
        with atomic_output(final) as tmp:
            tmp.write_bytes(b"partial")
            raise ValueError("boom")
    assert os.listdir(tmp_path) == ["x.mp4"] and final.read_bytes() == b"old"


def test_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(OutputError, match="folder '.*out' does not exist"):
        with atomic_output(tmp_path / "out" / "x.mp4"):
            pytest.fail("body must not run")


def test_directory_as_output(tmp_path: Path) -> None:
    (tmp_path / "d.mp4").mkdir()
    with pytest.raises(OutputError, match="is a directory"):
        with atomic_output(tmp_path / "d.mp4"):
            pytest.fail("body must not run")


def test_parent_is_a_file(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("x")
    with pytest.raises(OutputError, match="not a folder"):
        with atomic_output(tmp_path / "f" / "x.mp4"):
            pytest.fail("body must not run")


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root can write anywhere")
def test_read_only_folder(tmp_path: Path) -> None:
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        with pytest.raises(OutputError, match="not writable"):
            with atomic_output(folder / "x.mp4"):
                pytest.fail("body must not run")
    finally:
        folder.chmod(0o700)


def test_nothing_written_is_output_error(tmp_path: Path) -> None:
    with pytest.raises(OutputError, match="nothing was written"):
        with atomic_output(tmp_path / "x.mp4"):
            pass
    assert os.listdir(tmp_path) == []


def test_relative_path_in_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with atomic_output("x.txt") as tmp:
        tmp.write_text("ok")
    assert (tmp_path / "x.txt").read_text() == "ok"


def test_require_readable(tmp_path: Path) -> None:
    f = tmp_path / "a.txt"
    f.write_text("x")
    assert require_readable(str(f)) == f
    with pytest.raises(MediaError, match="cannot read .*b.txt: file not found"):
        require_readable(tmp_path / "b.txt")
    with pytest.raises(MediaError, match="is a directory"):
        require_readable(tmp_path)
