"""A stage of work on a thread of its own, a few items behind the code that feeds it.

Rendering a chunk of frames (torch, the mesh) and pasting, converting and
encoding the chunk before (OpenCV, x264) mostly run outside Python's GIL, so
on a machine with a spare core the two overlap.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from typing import Any

_END = object()


class Behind:
    """Calls `work(item)` for each `put(item)`, in order, on a thread of its own, with at most `depth` items
    waiting, so the caller makes the next item meanwhile. Use as a context manager: leaving the block waits
    for the work to finish. An exception raised by `work` is raised again in the caller (at the next `put`,
    or on leaving the block); after one, or when the block is left by an exception, the items still waiting
    are dropped."""

    def __init__(self, work: Callable[[Any], None], depth: int = 2) -> None:
        self._work = work
        self._items: queue.Queue = queue.Queue(maxsize=depth)
        self._error: BaseException | None = None
        self._drop = False
        self._thread = threading.Thread(target=self._run, name="talkhead-behind", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while (item := self._items.get()) is not _END:
            if self._error is None and not self._drop:
                try:
                    self._work(item)
                except BaseException as exc:   # noqa: BLE001 - handed to the caller's thread
                    self._error = exc

    def put(self, item: Any) -> None:
        """Queue `item` (waits while `depth` items are already waiting)."""
        if self._error is not None:
            raise self._error
        self._items.put(item)

    def __enter__(self) -> Behind:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self._drop = exc_type is not None
        self._items.put(_END)
        self._thread.join()
        if exc_type is None and self._error is not None:
            raise self._error
