"""JSON Lines recorder: one event a line, flushed at once so a killed run keeps every event."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import IO, Any

from rlmx.errors import UsageError
from rlmx.trajectory.events import Event


class JsonlRecorder:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._file: IO[str] | None = None

    def _open(self) -> IO[str]:
        if self._file is None:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._file = self.path.open("a", encoding="utf-8")
            except OSError as exc:
                raise UsageError(f"cannot write trace file {self.path}: {exc.strerror}") from None
        return self._file

    def open(self) -> None:
        """Open the file now, so that a bad path fails before the run starts."""
        with self._lock:
            self._open()

    def on_event(self, event: Event) -> None:
        line = json.dumps(event.to_dict(), ensure_ascii=False, default=str)
        with self._lock:
            handle = self._open()
            handle.write(line + "\n")
            handle.flush()

    def close(self) -> None:
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None


def read_jsonl(path: str | Path) -> list[dict[str, Any]]:
    """Read a trace back; a torn last line (a killed writer) is skipped."""
    events = []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        try:
            events.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return events
