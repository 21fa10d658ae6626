"""Weights registry and resolution: explicit → shipped → Hugging Face cache → download, each copy checksummed.

Everything is local: the Hub cache lives in a temp folder, and "the Hub" is a
tiny HTTP server imitating its resolve endpoint. CI runs with HF_HUB_OFFLINE=1,
so tests that need the online path switch it off (env and huggingface_hub's
import-time constant).
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from talkhead.cli import app
from talkhead.errors import WeightsError
from talkhead.weights import (
    LIPSYNC, cached_path, hf_cache_dir, load_registry, load_safetensors_model, register_local,
    registry_entry, resolve_weights, verify_weights, weights_table, write_safetensors,
)

REPO = "talkhead/talkhead-weights"
COMMIT = "0123456789abcdef0123456789abcdef01234567"
SHIPPED = Path(__file__).resolve().parent.parent / "weights"


@dataclass
class Setup:
    """A weights folder with one registered model "tiny", an empty Hub cache, and the file's bytes."""

    weights: Path
    cache: Path
    data: bytes
    sha256: str

    @property
    def shipped(self) -> Path:
        return self.weights / "tiny.safetensors"


@pytest.fixture()
def setup(tmp_path, monkeypatch) -> Setup:
    """TALKHEAD_WEIGHTS and HF_HUB_CACHE in tmp; offline, as in CI; the endpoint a closed local port."""
    weights, cache = tmp_path / "weights", tmp_path / "hf" / "hub"
    weights.mkdir()
    write_safetensors(weights / "tiny.safetensors", {"w": np.arange(6, dtype=np.float32).reshape(2, 3)},
                      {"config": json.dumps({"width": 3})})
    data = (weights / "tiny.safetensors").read_bytes()
    sha = hashlib.sha256(data).hexdigest()
    entry = {"repo_id": REPO, "revision": "main", "file": "tiny.safetensors", "sha256": sha, "size": len(data),
             "licence": "MIT", "local": "tiny.safetensors"}
    (weights / "registry.json").write_text(json.dumps({"models": {"tiny": entry}}))
    monkeypatch.setenv("TALKHEAD_WEIGHTS", str(weights))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{closed_port()}")
    return Setup(weights, cache, data, sha)


def closed_port() -> int:
    """A local TCP port nobody listens on (connecting is refused at once)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def go_online(monkeypatch) -> None:
    """Undo CI's offline mode for this test: the env and huggingface_hub's import-time constant."""
    from huggingface_hub import constants

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)


def put_in_cache(cache: Path, filename: str, data: bytes) -> Path:
    """Lay `data` out in the Hub cache as huggingface_hub does: blob, snapshot symlink, refs/main."""
    repo = cache / f"models--{REPO.replace('/', '--')}"
    blob = repo / "blobs" / hashlib.sha256(data).hexdigest()
    blob.parent.mkdir(parents=True, exist_ok=True)
    blob.write_bytes(data)
    pointer = repo / "snapshots" / COMMIT / filename
    pointer.parent.mkdir(parents=True, exist_ok=True)
    pointer.symlink_to(os.path.relpath(blob, pointer.parent))
    (repo / "refs").mkdir(exist_ok=True)
    (repo / "refs" / "main").write_text(COMMIT)
    return pointer


class FakeHub:
    """A local HTTP server answering HEAD/GET on /{repo}/resolve/{revision}/{file} like the Hub does."""

    def __init__(self, files: dict[str, bytes], etag: str | None = None):
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def do_HEAD(self):
                hub.requests.append(self.path)
                self.answer(body=False)

            def do_GET(self):
                hub.requests.append(self.path)
                self.answer(body=True)

            def answer(self, body: bool) -> None:
                name = self.path.rpartition(f"/{REPO}/resolve/main/")[2]
                data = files.get(name) if self.path.startswith(f"/{REPO}/resolve/main/") else None
                if data is None:
                    self.send_response(404)
                    self.send_header("X-Error-Code", "EntryNotFound")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(200)
                self.send_header("X-Repo-Commit", COMMIT)
                self.send_header("ETag", f'"{etag or hashlib.sha256(data).hexdigest()}"')
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if body:
                    self.wfile.write(data)

            def log_message(self, *args) -> None:
                pass

        self.requests: list[str] = []
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture()
def fake_hub(setup, monkeypatch):
    """The fake Hub serving tiny.safetensors, HF_ENDPOINT pointing at it, online, nothing shipped."""
    go_online(monkeypatch)
    setup.shipped.unlink()
    hub = FakeHub({"tiny.safetensors": setup.data})
    monkeypatch.setenv("HF_ENDPOINT", hub.url)
    yield hub
    hub.close()


def one_line_error(call) -> str:
    """Run `call`, expect a WeightsError whose message is a single line; return it."""
    with pytest.raises(WeightsError) as info:
        call()
    message = str(info.value)
    assert "\n" not in message, message
    return message


# --- registry ---------------------------------------------------------------------------------

def test_shipped_registry_describes_the_shipped_lipsync_file(monkeypatch):
    monkeypatch.delenv("TALKHEAD_WEIGHTS", raising=False)
    raw = json.loads((SHIPPED / "registry.json").read_text())
    assert "not published" in raw["note"].lower()
    entry = load_registry(SHIPPED / "registry.json")[LIPSYNC]
    data = (SHIPPED / entry.local).read_bytes()
    assert (entry.repo_id, entry.revision, entry.licence) == (REPO, "main", "MIT")
    assert entry.sha256 == hashlib.sha256(data).hexdigest() and entry.size == len(data)
    assert resolve_weights(LIPSYNC) == SHIPPED / "lipsync.safetensors"


def test_folder_without_registry_uses_the_shipped_one(tmp_path, monkeypatch):
    monkeypatch.setenv("TALKHEAD_WEIGHTS", str(tmp_path))
    assert registry_entry(LIPSYNC).file == "lipsync.safetensors"
    message = one_line_error(lambda: registry_entry("nope"))
    assert "known:" in message and "lipsync" in message and "codebook" in message


def test_broken_registry_entry_is_a_clear_error(setup):
    (setup.weights / "registry.json").write_text(json.dumps({"models": {"tiny": {"file": "x"}}}))
    assert "repo_id" in one_line_error(lambda: load_registry())


# --- resolution order -------------------------------------------------------------------------

def test_explicit_path_is_used_as_is(setup, tmp_path):
    mine = tmp_path / "mine.safetensors"
    mine.write_bytes(b"whatever the user trained")  # not checked against the registry
    assert resolve_weights("tiny", mine) == mine
    assert "missing" in one_line_error(lambda: resolve_weights("tiny", tmp_path / "none.safetensors"))


def test_shipped_file_is_verified_and_loaded(setup):
    assert resolve_weights("tiny") == setup.shipped
    arrays, meta = load_safetensors_model("tiny")
    assert arrays["w"].shape == (2, 3) and json.loads(meta["config"]) == {"width": 3}


def test_corrupt_shipped_file_is_refused(setup):
    setup.shipped.write_bytes(setup.data[:-4] + b"xxxx")
    message = one_line_error(lambda: resolve_weights("tiny"))
    assert "corrupt" in message and "talkhead weights update tiny" in message


def test_missing_shipped_file_is_found_in_the_cache(setup):
    setup.shipped.unlink()
    pointer = put_in_cache(setup.cache, "tiny.safetensors", setup.data)
    assert hf_cache_dir() == setup.cache
    assert resolve_weights("tiny") == pointer
    assert load_safetensors_model("tiny")[0]["w"][1, 2] == 5


def test_corrupt_cache_copy_is_refused(setup):
    setup.shipped.unlink()
    put_in_cache(setup.cache, "tiny.safetensors", setup.data[:-4] + b"xxxx")
    message = one_line_error(lambda: resolve_weights("tiny"))
    assert "corrupt" in message and "talkhead weights pull tiny" in message


def test_offline_with_nothing_anywhere_fails_at_once(setup):
    setup.shipped.unlink()
    start = time.monotonic()
    message = one_line_error(lambda: resolve_weights("tiny"))
    assert time.monotonic() - start < 2.0
    assert "HF_HUB_OFFLINE" in message and "talkhead weights pull tiny" in message
    assert str(setup.shipped) in message
    assert "pull tiny" in one_line_error(lambda: resolve_weights("tiny", allow_download=False))


def test_unreachable_hub_fails_at_once(setup, monkeypatch):
    go_online(monkeypatch)  # HF_ENDPOINT is a closed local port
    setup.shipped.unlink()
    start = time.monotonic()
    message = one_line_error(lambda: resolve_weights("tiny"))
    assert time.monotonic() - start < 2.5
    assert "cannot reach" in message and "talkhead weights pull tiny" in message


# --- download ---------------------------------------------------------------------------------

def test_download_lands_in_the_cache_and_verifies(setup, fake_hub, monkeypatch):
    path = resolve_weights("tiny")
    assert path.read_bytes() == setup.data and setup.cache in path.parents
    assert any("/resolve/main/tiny.safetensors" in r for r in fake_hub.requests)
    assert cached_path(registry_entry("tiny")) == path  # laid out as huggingface_hub's own lookup expects
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # now found offline, without the server
    assert resolve_weights("tiny") == path


def test_downloaded_file_with_wrong_checksum_is_refused(setup, fake_hub, monkeypatch):
    bad = setup.data[:-4] + b"xxxx"
    hub = FakeHub({"tiny.safetensors": bad})
    monkeypatch.setenv("HF_ENDPOINT", hub.url)
    try:
        assert "corrupt" in one_line_error(lambda: resolve_weights("tiny"))
    finally:
        hub.close()


def test_file_missing_on_the_hub_is_a_clear_error(setup, fake_hub):
    (setup.weights / "registry.json").write_text(json.dumps({"models": {"other": {
        "repo_id": REPO, "file": "other.safetensors", "sha256": "0" * 64, "size": 1, "local": None}}}))
    message = one_line_error(lambda: resolve_weights("other"))
    assert "cannot download other" in message


# --- registry update --------------------------------------------------------------------------

def test_register_local_records_a_retrained_file(setup):
    write_safetensors(setup.shipped, {"w": np.ones((2, 3), np.float32)}, {"config": "{}"})
    with pytest.raises(WeightsError):
        resolve_weights("tiny")
    entry = register_local("tiny")
    assert entry.sha256 == hashlib.sha256(setup.shipped.read_bytes()).hexdigest()
    assert resolve_weights("tiny") == setup.shipped
    assert verify_weights("tiny")[0].where == "shipped"


def test_entry_without_checksum_says_how_to_add_one(setup):
    registry = json.loads((setup.weights / "registry.json").read_text())
    registry["models"]["tiny"].update(sha256=None, size=None)
    (setup.weights / "registry.json").write_text(json.dumps(registry))
    assert "talkhead weights update tiny" in one_line_error(lambda: resolve_weights("tiny"))
    assert register_local("tiny").size == len(setup.data)


# --- CLI --------------------------------------------------------------------------------------

def cli(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, ["weights", *args])
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr


def test_cli_list_verify_path(setup):
    code, out, _ = cli("list", "--json")
    assert code == 0 and json.loads(out) == weights_table()
    assert json.loads(out)[0]["where"] == "shipped"
    code, out, _ = cli("list")
    assert code == 0 and "tiny" in out and setup.sha256[:12] in out and "shipped" in out
    code, out, _ = cli("verify")
    assert code == 0 and "ok" in out
    code, out, _ = cli("path", "tiny")
    assert code == 0 and out.strip() == str(setup.shipped)


def test_cli_errors_exit_3_with_one_line(setup):
    setup.shipped.write_bytes(setup.data[:-4] + b"xxxx")
    code, out, err = cli("verify", "tiny")
    assert code == 3 and "MISMATCH" in out
    assert len(err.strip().splitlines()) == 1 and "corrupt" in err
    code, _, err = cli("list", "--json")
    assert code == 0
    setup.shipped.unlink()
    code, out, err = cli("path", "tiny")
    assert code == 3 and out == "" and len(err.strip().splitlines()) == 1 and "pull tiny" in err
    code, _, err = cli("pull", "tiny")
    assert code == 3 and "HF_HUB_OFFLINE" in err
    assert cli("pull")[0] == 2  # neither NAME nor --all


def test_cli_pull_downloads_into_the_cache(setup, fake_hub):
    code, out, err = cli("pull", "--all")
    assert code == 0, err
    assert Path(out.strip()).read_bytes() == setup.data
    code, out, _ = cli("verify")
    assert code == 0 and "cache" in out
