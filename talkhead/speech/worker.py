"""Speech recognition in a helper process, beside rendering.

pocketsphinx decodes on one core and holds Python's GIL while it works, so
in the rendering process it would stop the renderer for as long as it runs
(about half the audio's duration on a slow core). `Recognizer` starts
`python -m talkhead.speech.worker` once, hands it stretches of speech as
files of float32 samples and reads their phones back in the order it sent
them, while the caller goes on (rendering the stretch before).

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


class Recognizer:
    """Phones of stretches of speech, recognised in order in a helper process.

    `submit(path)` queues a stretch (float32 samples [N] at 16 kHz saved with
    np.save) and returns at once; `next()` waits for the phones of the oldest
    stretch not yet collected. Where no helper process can be started, the
    work is done in this process when `next()` is called. Use as a context
    manager (or call `close`): it stops the helper.
    """

    def __init__(self, background: bool = True) -> None:
        self._queue: deque[Path] = deque()
        self._process: subprocess.Popen | None = None
        self._log: Path | None = None
        if background:
            self._start()

    def _start(self) -> None:
        import tempfile

        if not sys.executable:   # an embedded interpreter: no command to start a helper with
            return
        package_root = str(Path(__file__).resolve().parents[2])   # so the helper imports this same talkhead
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [package_root, os.environ.get("PYTHONPATH")])))
        handle, name = tempfile.mkstemp(prefix="talkhead-recognizer-", suffix=".log")
        self._log = Path(name)
        try:
            self._process = subprocess.Popen([sys.executable, "-m", "talkhead.speech.worker"], stdin=subprocess.PIPE,
                                             stdout=subprocess.PIPE, stderr=handle, env=env, text=True, bufsize=1)
        except OSError:
            self._process = None    # no helper: recognise in this process instead
        finally:
            os.close(handle)

    @property
    def background(self) -> bool:
        """True when a helper process does the work."""
        return self._process is not None

    def submit(self, path: Path) -> None:
        """Queue the stretch saved at `path` (the file must stay until its phones are collected)."""
        self._queue.append(Path(path))
        if self._process is not None:
            try:
                self._process.stdin.write(f"{path}\n")
                self._process.stdin.flush()
            except OSError as exc:
                raise self._failure() from exc

    def next(self) -> list[Phone]:
        """Phones of the oldest stretch submitted and not yet collected (waits for them)."""
        path = self._queue.popleft()
        if self._process is None:
            return _recognize(path)
        line = self._process.stdout.readline()
        if not line:
            raise self._failure()
        reply = json.loads(line)
        if "error" in reply:
            raise TalkheadError(f"speech recognition failed: {reply['error']}")
        return [Phone(label, start, end) for label, start, end in reply["phones"]]

    def _failure(self) -> TalkheadError:
        """The error for a helper that stopped answering, with the last line it logged."""
        code = self._process.poll() if self._process else None
        lines = self._log.read_text(errors="replace").strip().splitlines() if self._log and self._log.exists() else []
        said = f": {lines[-1]}" if lines else ""
        return TalkheadError(f"the speech recognition helper stopped (exit status {code}){said}")

    def close(self) -> None:
        """Stop the helper (at once if stretches are still queued) and remove its log."""
        process, self._process = self._process, None
        if process is not None:
            try:
                process.stdin.close()
            except OSError:
                pass
            if self._queue:
                process.kill()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            process.stdout.close()
        if self._log is not None:
            self._log.unlink(missing_ok=True)
            self._log = None
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
