"""Speech recognition in a helper process, beside rendering.

pocketsphinx decodes on one core and holds Python's GIL while it works, so
in the rendering process it would stop the renderer for as long as it runs
(about half the audio's duration on a slow core). `Recognizer` starts
`python -m talkhead.speech.worker` processes once, hands them stretches of
speech in turn as files of float32 samples and reads their phones back in
the order it sent them, while the caller goes on (rendering the stretch
before).

Protocol: one request line per stretch (the file's path), one JSON reply
line per request: {"phones": [[label, start, end], ...]} (seconds from the
stretch's start) or {"error": "..."}.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import deque
from pathlib import Path

import numpy as np

from talkhead.errors import TalkheadError
from talkhead.speech.phones import Phone


def _recognize(path: Path) -> list[Phone]:
    """Phones of the float32 samples saved (np.save) at `path`."""
    from talkhead.speech.transcribe import phones_without_transcript

    return phones_without_transcript(np.load(path))


HELPERS = 2   # helper processes: while rendering waits for the first stretch, a second one starts the next


class _Helper:
    """One `python -m talkhead.speech.worker` process and its log."""

    def __init__(self) -> None:
        import tempfile

        package_root = str(Path(__file__).resolve().parents[2])   # so the helper imports this same talkhead
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [package_root, os.environ.get("PYTHONPATH")])))
        handle, name = tempfile.mkstemp(prefix="talkhead-recognizer-", suffix=".log")
        self.log = Path(name)
        try:
            self.process = subprocess.Popen([sys.executable, "-m", "talkhead.speech.worker"], stdin=subprocess.PIPE,
                                            stdout=subprocess.PIPE, stderr=handle, env=env, text=True, bufsize=1)
        except OSError:
            self.log.unlink(missing_ok=True)
            raise
        finally:
            os.close(handle)

    def send(self, path: Path) -> None:
        try:
            self.process.stdin.write(f"{path}\n")
            self.process.stdin.flush()
        except OSError as exc:
            raise self.failure() from exc

    def receive(self) -> list[Phone]:
        line = self.process.stdout.readline()
        if not line:
            raise self.failure()
        reply = json.loads(line)
        if "error" in reply:
            raise TalkheadError(f"speech recognition failed: {reply['error']}")
        return [Phone(label, start, end) for label, start, end in reply["phones"]]

    def failure(self) -> TalkheadError:
        """The error for a helper that stopped answering, with the last line it logged."""
        lines = self.log.read_text(errors="replace").strip().splitlines() if self.log.exists() else []
        said = f": {lines[-1]}" if lines else ""
        return TalkheadError(f"the speech recognition helper stopped (exit status {self.process.poll()}){said}")

    def close(self, kill: bool) -> None:
        """Stop the process (at once with `kill`, else once it has answered everything) and remove the log."""
        try:
            self.process.stdin.close()
        except OSError:
            pass
        if kill:
            self.process.kill()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process.stdout.close()
        self.log.unlink(missing_ok=True)


class Recognizer:
    """Phones of stretches of speech, recognised in helper processes and collected in order.

    `submit(path)` queues a stretch (float32 samples [N] at 16 kHz saved with
    np.save) and returns at once; `next()` waits for the phones of the oldest
    stretch not yet collected. Stretches go to the helpers in turn (up to
    HELPERS, no more than the CPU's cores). Where no helper process can be
    started, the work is done in this process when `next()` is called. Use as
    a context manager (or call `close`): it stops the helpers.
    """

    def __init__(self, background: bool = True, helpers: int | None = None) -> None:
        self._queue: deque[Path] = deque()
        self._helpers: list[_Helper] = []
        self._sent = self._collected = 0    # stretches handed to helpers, and collected from them
        if background and sys.executable:   # (an embedded interpreter has no command to start a helper with)
            count = helpers or max(1, min(HELPERS, os.cpu_count() or 1))
            try:
                for _ in range(count):
                    self._helpers.append(_Helper())
            except OSError:
                self.close()    # stop any that did start; recognise in this process instead

    @property
    def background(self) -> bool:
        """True when helper processes do the work."""
        return bool(self._helpers)

    def submit(self, path: Path) -> None:
        """Queue the stretch saved at `path` (the file must stay until its phones are collected)."""
        self._queue.append(Path(path))
        if self._helpers:
            self._helpers[self._sent % len(self._helpers)].send(path)
            self._sent += 1

    def next(self) -> list[Phone]:
        """Phones of the oldest stretch submitted and not yet collected (waits for them)."""
        path = self._queue.popleft()
        if not self._helpers:
            return _recognize(path)
        helper = self._helpers[self._collected % len(self._helpers)]
        self._collected += 1
        return helper.receive()

    def close(self) -> None:
        """Stop the helpers (at once if stretches are still queued) and remove their logs."""
        helpers, self._helpers = self._helpers, []
        for helper in helpers:
            helper.close(kill=bool(self._queue))
        self._queue.clear()

    def __enter__(self) -> Recognizer:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


def main() -> None:
    """The helper's side: recognise each stretch named on stdin, answer on stdout, until stdin closes."""
    from talkhead.speech.transcribe import warm_up

    warm_up()   # while the caller is still reading the portrait and the audio
    for line in sys.stdin:
        try:
            phones = _recognize(Path(line.strip()))
            reply = {"phones": [[p.label, p.start, p.end] for p in phones]}
        except Exception as exc:   # noqa: BLE001 - every failure goes back to the caller as one line
            reply = {"error": f"{type(exc).__name__}: {exc}"}
        sys.stdout.write(json.dumps(reply) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
