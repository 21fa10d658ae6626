"""Model weights: registry, Hub download, checksums, safetensors load.

With io/, this is the only module that touches files or the network.

Weights are safetensors files with their model's settings in the metadata;
nothing is ever unpickled. `weights/registry.json` names every model: its file,
sha256, size, licence, the Hugging Face Hub repository it is published in, and
the file the project ships in `weights/` (if any). A model's file is found, in
this order (`resolve_weights`):

1. a path the user gives (used as is: it is their file);
2. the file shipped in `weights_dir()` (`TALKHEAD_WEIGHTS` overrides the folder);
3. the Hugging Face cache (`HF_HUB_CACHE`, else `HF_HOME/hub`, as huggingface_hub);
4. a download from the Hub through huggingface_hub into that cache.

Copies from 2-4 must match the registry's sha256, so a corrupt or stale file is
refused instead of giving a silently wrong model. Offline (`HF_HUB_OFFLINE=1`, or
the Hub's host cannot be reached within 2 s) the download fails at once with one
line that says how to get the file, instead of retrying for half a minute.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import threading
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable
from urllib.parse import urlsplit
from urllib.request import getproxies, proxy_bypass

from talkhead.errors import WeightsError

LIPSYNC = "lipsync"
CODEBOOK = "codebook"
FROND = "frond"
REGISTRY_FILE = "registry.json"
HUB_ENDPOINT = "https://huggingface.co"
REACH_TIMEOUT_S = 2.0      # how long the "is the Hub reachable" probe may take
_PACKAGED = Path(__file__).resolve().parent.parent / "weights"
_TRUE = {"1", "ON", "YES", "TRUE"}


@dataclass(frozen=True)
class WeightsEntry:
    """One registered model file: where it is published and what it must hash to."""

    name: str
    repo_id: str          # Hugging Face Hub model repository, e.g. "talkhead/talkhead-weights"
    revision: str         # branch, tag or commit of that repository
    file: str             # file name inside the repository
    sha256: str | None    # hex digest every copy must match (None: not computed yet)
    size: int | None      # bytes
    licence: str
    local: str | None     # file name shipped in weights_dir(), or None


@dataclass(frozen=True)
class WeightsCopy:
    """One copy of a registered file on this machine, and whether it matches the registry."""

    name: str
    where: str            # "shipped", "cache" or "missing"
    path: Path | None
    problem: str | None   # None when the copy matches the registry

    def as_dict(self) -> dict:
        return {"name": self.name, "where": self.where, "path": str(self.path) if self.path else None,
                "ok": self.problem is None and self.path is not None, "problem": self.problem}


# --- folders and settings, read at call time (the environment may change after import) -----------

def weights_dir() -> Path:
    """The folder holding the shipped weights (TALKHEAD_WEIGHTS overrides)."""
    return Path(os.environ.get("TALKHEAD_WEIGHTS") or _PACKAGED)


def registry_file() -> Path:
    """The registry in use: `weights_dir()/registry.json`, else the one shipped with talkhead.

    A folder set with TALKHEAD_WEIGHTS may carry its own registry describing its
    own (e.g. retrained) files; without one, the shipped checksums apply.
    """
    own = weights_dir() / REGISTRY_FILE
    return own if own.is_file() else _PACKAGED / REGISTRY_FILE


def hf_cache_dir() -> Path:
    """The Hugging Face hub cache, found from the environment the way huggingface_hub does."""
    env = os.environ.get
    home = env("HF_HOME") or os.path.join(env("XDG_CACHE_HOME") or os.path.join("~", ".cache"), "huggingface")
    hub = env("HF_HUB_CACHE") or env("HUGGINGFACE_HUB_CACHE") or os.path.join(home, "hub")
    return Path(os.path.expandvars(os.path.expanduser(hub)))


def hub_endpoint() -> str:
    """The Hub's base URL (HF_ENDPOINT overrides https://huggingface.co)."""
    return (os.environ.get("HF_ENDPOINT") or HUB_ENDPOINT).rstrip("/")


def hub_offline() -> bool:
    """True when the user asked for offline mode (HF_HUB_OFFLINE, now or when huggingface_hub was imported)."""
    from huggingface_hub import constants

    flag = os.environ.get("HF_HUB_OFFLINE") or os.environ.get("TRANSFORMERS_OFFLINE") or ""
    return flag.upper() in _TRUE or bool(constants.HF_HUB_OFFLINE)


# --- registry ---------------------------------------------------------------------------------

def load_registry(path: Path | None = None) -> dict[str, WeightsEntry]:
    """Every registered model by name, from `path` or `registry_file()`; WeightsError if unreadable."""
    path = path or registry_file()
    raw = _read_registry_json(path)
    entries = {}
    for name, fields in raw.get("models", {}).items():
        try:
            entries[name] = WeightsEntry(
                name=name, repo_id=fields["repo_id"], revision=fields.get("revision") or "main",
                file=fields["file"], sha256=fields.get("sha256") or None, size=fields.get("size"),
                licence=fields.get("licence", ""), local=fields.get("local") or None)
        except (KeyError, TypeError) as exc:
            raise WeightsError(f"weights registry {path}: entry '{name}' lacks {exc}; "
                               f"give it repo_id and file like the other entries") from None
    return entries


def registry_entry(name: str) -> WeightsEntry:
    """The registry entry of model `name`; WeightsError naming the known models if there is none."""
    entries = load_registry()
    if name not in entries:
        known = ", ".join(sorted(entries)) or "none"
        raise WeightsError(f"no weights named '{name}' in {registry_file()} (known: {known})")
    return entries[name]


def register_local(name: str) -> WeightsEntry:
    """Recompute sha256 and size of `name`'s shipped file and write them into the registry.

    Run after retraining (`talkhead weights update NAME`): a new file has a new
    checksum and would otherwise be refused as corrupt. Writes
    `weights_dir()/registry.json` (starting from the registry in use).
    """
    from talkhead.io.files import atomic_output

    raw = _read_registry_json(registry_file())
    fields = raw.get("models", {}).get(name)
    if fields is None or not fields.get("local"):
        raise WeightsError(f"'{name}' is not registered with a shipped file: add an entry with "
                           f"\"local\": \"FILE\" to {registry_file()} first")
    path = weights_dir() / fields["local"]
    if not path.is_file():
        raise WeightsError(f"cannot register {name}: {path} does not exist; train or copy it there first")
    fields["sha256"], fields["size"] = file_sha256(path), path.stat().st_size
    with atomic_output(weights_dir() / REGISTRY_FILE) as tmp:
        tmp.write_text(json.dumps(raw, indent=2) + "\n", encoding="utf-8")
    return load_registry(weights_dir() / REGISTRY_FILE)[name]


def _read_registry_json(path: Path) -> dict:
    """The registry file's JSON object; WeightsError if it is missing or malformed."""
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise WeightsError(f"weights registry {path} is missing: reinstall talkhead") from None
    except (OSError, ValueError) as exc:
        raise WeightsError(f"weights registry {path} cannot be read ({exc}): restore it from talkhead") from None
    if not isinstance(raw, dict) or not isinstance(raw.get("models", {}), dict):
        raise WeightsError(f"weights registry {path} has no 'models' object: restore it from talkhead")
    return raw


# --- checksums --------------------------------------------------------------------------------

def file_sha256(path: Path) -> str:
    """Hex sha256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def check_copy(path: Path, entry: WeightsEntry) -> str | None:
    """Why the copy at `path` does not match the registry, or None when it does."""
    if entry.sha256 is None:
        return _no_checksum(entry)
    try:
        size = path.stat().st_size
        if entry.size is not None and size != entry.size:
            return f"{path} has {size} bytes, the registry says {entry.size}"
        actual = file_sha256(path)
    except OSError as exc:
        return f"{path} cannot be read ({exc.strerror or exc})"
    if actual != entry.sha256:
        return f"{path} has sha256 {actual[:12]}…, the registry says {entry.sha256[:12]}…"
    return None


def _no_checksum(entry: WeightsEntry) -> str:
    """The message for an entry registered without a sha256 (nothing can be verified against it)."""
    return (f"no checksum is registered for {entry.name}: put its file in {weights_dir()} and run "
            f"`talkhead weights update {entry.name}`")


def _verified(path: Path, entry: WeightsEntry, where: str) -> Path:
    """`path` if it matches the registry, else a WeightsError that says how to replace it."""
    problem = check_copy(path, entry)
    if problem is None:
        return path
    if entry.sha256 is None:
        raise WeightsError(problem)
    raise WeightsError(_mismatch(entry.name, where, problem))


def _mismatch(name: str, where: str, problem: str) -> str:
    """One line: the copy of `name` found at `where` does not match the registry, and how to fix it."""
    if where == "shipped":
        fix = (f"restore it (git checkout, or reinstall talkhead), or if you retrained it on purpose run "
               f"`talkhead weights update {name}`")
    else:
        fix = f"fetch it again with `talkhead weights pull {name}`"
    return f"{name} weights are corrupt or outdated: {problem}; {fix}"


# --- where copies are --------------------------------------------------------------------------

def shipped_path(entry: WeightsEntry) -> Path | None:
    """Where `entry`'s shipped file belongs (whether or not it is there); None if it ships none."""
    return weights_dir() / entry.local if entry.local else None


def cached_path(entry: WeightsEntry) -> Path | None:
    """`entry`'s file in the Hugging Face cache at its revision, or None (no network used)."""
    from huggingface_hub import try_to_load_from_cache

    found = try_to_load_from_cache(entry.repo_id, entry.file, cache_dir=str(hf_cache_dir()),
                                   revision=entry.revision)
    return Path(found) if isinstance(found, str) else None


def weights_copies(name: str) -> list[WeightsCopy]:
    """Every copy of `name` on this machine (shipped, cache), each checked; one "missing" if none."""
    entry = registry_entry(name)
    copies = []
    for where, path in (("shipped", shipped_path(entry)), ("cache", cached_path(entry))):
        if path is not None and path.is_file():
            copies.append(WeightsCopy(name, where, path, check_copy(path, entry)))
    return copies or [WeightsCopy(name, "missing", None, None)]


def verify_weights(name: str | None = None,
                   report: Callable[[WeightsCopy], None] | None = None) -> list[WeightsCopy]:
    """Check every copy of `name` (default: of every model) on this machine against the registry.

    `report` sees each copy as it is checked, so that all are shown before a
    WeightsError for the first mismatch (or, with `name`, for having no copy).
    """
    copies = []
    for each in [name] if name else list(load_registry()):
        for copy in weights_copies(each):
            if report is not None:
                report(copy)
            copies.append(copy)
    bad = [c for c in copies if c.problem is not None]
    if bad:
        more = f" ({len(bad) - 1} more listed above)" if len(bad) > 1 else ""
        raise WeightsError(_mismatch(bad[0].name, bad[0].where, bad[0].problem or "") + more)
    if name and copies[0].path is None:
        raise WeightsError(f"no copy of {name} on this machine: run `talkhead weights pull {name}`")
    return copies


def weights_table() -> list[dict]:
    """One row per registered model: registry fields plus where it resolves now (no network used)."""
    rows = []
    for entry in load_registry().values():
        copy = _resolves_to(weights_copies(entry.name))
        rows.append({**asdict(entry), "where": copy.where, "path": str(copy.path) if copy.path else None})
    return rows


def _resolves_to(copies: list[WeightsCopy]) -> WeightsCopy:
    """The copy resolution would use: the first one, unless it fails its check ("corrupt" then)."""
    first = copies[0]
    if first.problem is not None:
        return WeightsCopy(first.name, "corrupt", first.path, first.problem)
    return first


# --- resolution and download ------------------------------------------------------------------

def resolve_weights(name: str, explicit: Path | None = None, allow_download: bool = True) -> Path:
    """The path of model `name`'s weights file: explicit → shipped → HF cache → download.

    An explicit path is the user's own file: it must exist, and is not checked
    against the registry (it is read as safetensors when loaded). Every other
    copy must match the registry's sha256, else WeightsError. With
    `allow_download=False` (or offline) a missing file is a WeightsError that
    says how to get it.
    """
    if explicit is not None:
        explicit = Path(explicit)
        if not explicit.is_file():
            raise WeightsError(f"weights file {explicit} is missing: check the path, or leave it out to use "
                               f"the registered '{name}' weights")
        return explicit
    entry = registry_entry(name)
    shipped = shipped_path(entry)
    if shipped is not None and shipped.is_file():
        return _verified(shipped, entry, "shipped")
    cached = cached_path(entry)
    if cached is not None:
        return _verified(cached, entry, "cache")
    if not allow_download:
        raise WeightsError(_how_to_get(entry))
    return download_weights(name)


def download_weights(name: str, force: bool = False) -> Path:
    """Download model `name` into the Hugging Face cache (huggingface_hub), verify it, return its path.

    Fails at once, with one line saying how to get the file, when offline or
    when the Hub's host cannot be reached. A cached copy that fails the check
    is downloaded again.
    """
    entry = registry_entry(name)
    if entry.sha256 is None:
        raise WeightsError(_no_checksum(entry))
    endpoint = hub_endpoint()
    why = "offline: HF_HUB_OFFLINE is set" if hub_offline() else None
    unreachable = None if why else _unreachable(endpoint)
    why = why or (f"cannot reach {endpoint}: {unreachable}" if unreachable else None)
    if why:
        here = [p for p in (shipped_path(entry), cached_path(entry)) if p is not None and p.is_file()]
        if here:
            raise WeightsError(f"cannot download {name} weights ({why}); a copy is already at {here[0]}")
        raise WeightsError(_how_to_get(entry, f" and cannot be downloaded ({why})"))
    path = _hub_download(entry, endpoint, force)
    if not force and check_copy(path, entry) is not None:
        path = _hub_download(entry, endpoint, force=True)
    return _verified(path, entry, "cache")


def _hub_download(entry: WeightsEntry, endpoint: str, force: bool) -> Path:
    """One huggingface_hub download of `entry` into `hf_cache_dir()`; WeightsError on any failure."""
    from huggingface_hub import hf_hub_download

    try:
        return Path(hf_hub_download(entry.repo_id, entry.file, revision=entry.revision,
                                    cache_dir=str(hf_cache_dir()), endpoint=endpoint, force_download=force))
    except Exception as exc:  # noqa: BLE001 - huggingface_hub raises OSError, httpx or requests errors by version
        reason = " ".join((str(exc).strip().splitlines() or [""])[:1]).rstrip(". ")
        raise WeightsError(f"cannot download {entry.name} ({entry.file}) from {endpoint}/{entry.repo_id} "
                           f"at {entry.revision} ({type(exc).__name__}: {reason}): {_elsewhere(entry)}") from exc


def _how_to_get(entry: WeightsEntry, why: str = "") -> str:
    """One line: `entry`'s file is not here, why it cannot be fetched now, and how to get it."""
    return (f"{entry.name} weights ({entry.file}) are not on this machine{why}: "
            f"run `talkhead weights pull {entry.name}` on a machine with network and copy its Hugging Face "
            f"cache to {hf_cache_dir()}, or {_elsewhere(entry)}")


def _elsewhere(entry: WeightsEntry) -> str:
    """How to use a copy of `entry`'s file obtained some other way."""
    shipped = shipped_path(entry)
    if shipped is not None:
        return f"put the file at {shipped}, or pass its path"
    return "pass the file's path"


def _unreachable(endpoint: str, timeout: float = REACH_TIMEOUT_S) -> str | None:
    """Why a TCP connection to the endpoint's host (or its proxy) fails within `timeout`; None if it works.

    Runs in a daemon thread so that a hanging name lookup cannot hold us past
    the timeout; huggingface_hub's own retries would take ~20 s.
    """
    parts = urlsplit(endpoint)
    host, port = parts.hostname or "", parts.port or (443 if parts.scheme == "https" else 80)
    proxy = getproxies().get(parts.scheme) or getproxies().get("all")
    if proxy and not proxy_bypass(host):
        proxied = urlsplit(proxy if "://" in proxy else f"http://{proxy}")
        host, port = proxied.hostname or "", proxied.port or 80
    outcome: list[str | None] = []

    def probe() -> None:
        try:
            socket.create_connection((host, port), timeout=timeout).close()
            outcome.append(None)
        except OSError as exc:
            outcome.append(exc.strerror or str(exc) or type(exc).__name__)

    thread = threading.Thread(target=probe, daemon=True)
    thread.start()
    thread.join(timeout + 0.5)
    return outcome[0] if outcome else f"no answer from {host}:{port} within {timeout:g} s"


# --- reading ----------------------------------------------------------------------------------

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


def load_safetensors_model(name: str, explicit: Path | None = None,
                           allow_download: bool = True) -> tuple[dict, dict[str, str]]:
    """Resolve model `name` (see `resolve_weights`) and read it: (arrays, metadata).

    arrays: numpy arrays by tensor name; metadata: the str→str safetensors
    header, where a model keeps the config it is rebuilt from (never unpickled).
    """
    return read_safetensors(resolve_weights(name, explicit, allow_download))


def load_lipsync(path: Path | None = None):
    """The lip-sync model (talkhead.models.lipsync.LipsyncModel) from `path` or the registered weights."""
    from talkhead.models.lipsync import LipsyncModel

    return _rebuild(resolve_weights(LIPSYNC, path), LipsyncModel.from_tensors, "lip-sync model")


def save_codebook(path: Path, model, meta: dict[str, str] | None = None, half: bool = False) -> None:
    """Write a codebook generator (talkhead.models.codebook_generator) with its config in the metadata
    (`half`: float16 weights, for shipping)."""
    from talkhead.models.codebook_generator import to_tensors

    write_safetensors(path, *to_tensors(model, meta, half))


def load_codebook(path: Path | None = None):
    """The codebook generator from `path` or the registered weights (rebuilt from the config it carries)."""
    return load_codebook_file(resolve_weights(CODEBOOK, path))[0]


def load_codebook_file(path: Path):
    """(codebook generator, its training steps) from a weights file."""
    from talkhead.models.codebook_generator import from_tensors

    return _rebuild(path, lambda arrays, meta: (from_tensors(arrays, meta), int(meta.get("steps", 0))),
                    "codebook model")


def _rebuild(path: Path, build: Callable[[dict, dict[str, str]], object], what: str):
    """`build(arrays, metadata)` of the safetensors file at `path`; WeightsError if it is not such a model."""
    arrays, meta = read_safetensors(path)
    try:
        return build(arrays, meta)
    except (KeyError, ValueError, RuntimeError) as exc:
        raise WeightsError(f"weights file {path} is not a {what} this talkhead reads ({exc})") from exc


def save_frond(path: Path, model, meta: dict[str, str] | None = None, half: bool = False) -> None:
    """Write a FROND model (talkhead.models.frond) with its config in the metadata."""
    from talkhead.models.frond import to_tensors

    write_safetensors(path, *to_tensors(model, meta, half))


def load_frond(path: Path | None = None):
    """The FROND model from `path` or the registered weights."""
    return load_frond_file(resolve_weights(FROND, path))[0]


def load_frond_file(path: Path):
    """(FROND model, its metadata) from a weights file."""
    from talkhead.models.frond import from_tensors

    return _rebuild(path, lambda arrays, meta: (from_tensors(arrays, meta), meta), "FROND model")
