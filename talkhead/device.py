"""Choose the compute device once; nothing else in talkhead picks one."""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator

import torch

from talkhead.errors import DeviceError

DEVICES = ("auto", "cpu", "cuda", "mps")


def resolve_device(name: str = "auto") -> torch.device:
    """torch.device for 'auto' (CUDA, then Apple MPS, then CPU), 'cpu', 'cuda[:N]' or 'mps'."""
    kind = name.split(":")[0]
    if kind not in DEVICES:
        raise DeviceError(f"unknown device '{name}': use one of {', '.join(DEVICES)}")
    if kind == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if kind == "cuda" and not torch.cuda.is_available():
        raise DeviceError("--device cuda asked for, but this torch build sees no CUDA GPU: use --device cpu or auto")
    if kind == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise DeviceError("--device mps asked for, but Apple MPS is not available: use --device cpu or auto")
    try:
        return torch.device(name)
    except RuntimeError as exc:
        raise DeviceError(f"--device {name}: {exc}; use auto, cpu, cuda, cuda:N or mps") from None


@contextlib.contextmanager
def cpu_threads(count: int | None) -> Iterator[None]:
    """torch's CPU thread count set to `count` inside the block (None: left as it is), then put back."""
    before = torch.get_num_threads()
    if count is not None:
        torch.set_num_threads(max(1, count))
    try:
        yield
    finally:
        torch.set_num_threads(before)


_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3   # glibc's mallopt parameters


@functools.cache
def reuse_freed_memory() -> bool:
    """Have glibc's malloc keep freed blocks of up to 32 MB for reuse instead of giving them back to the
    system at once. Rendering allocates the same few tens of MB for every chunk of frames, and fresh pages
    from the system each cost a page fault: keeping them made rendering about 8% faster (2 cores, 512 px
    portrait). Memory in use does not grow: the same blocks are reused. Once per process; False (nothing
    done) where the C library is not glibc."""
    import ctypes
    import platform

    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return False
    return bool(libc.mallopt(_M_MMAP_THRESHOLD, 32 << 20)) and bool(libc.mallopt(_M_TRIM_THRESHOLD, 256 << 20))
