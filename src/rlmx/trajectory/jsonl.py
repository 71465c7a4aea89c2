"""JSON Lines recorder: one event a line, flushed at once so a killed run keeps every event."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import IO, Any

from rlmx.errors import UsageError
from rlmx.trajectory.events import Event
from rlmx.trajectory.store import RunStore
from rlmx.trajectory.validation import event_problem


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
    """Read a trace back; a torn last line (a killed writer) and lines that are not JSON are
    skipped."""
    return _read_lines(path)[0]


def _read_lines(path: str | Path) -> tuple[list[dict[str, Any]], int]:
    """The parsed lines of a trace, and how many did not parse (a torn last line, which a
    killed writer leaves, is not counted)."""
    events = []
    bad = 0
    lines = [line for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]
    for number, line in enumerate(lines, 1):
        try:
            events.append(json.loads(line))
        except (ValueError, RecursionError):  # also an integer too long, or nesting too deep
            bad += number < len(lines)
    return events, bad


def import_events(
    store: RunStore, events: Iterable[Mapping[str, Any]], *, source: str = "import"
) -> tuple[list[str], int]:
    """Add a trace's events to the store; returns the top-level run ids and the lines skipped.

    A trace may only add runs: if any event names a run already in the store (as a top-level
    run or a nested one), the whole trace is refused (``ValueError``) and nothing is written.
    An event that is not what a recorder writes (:mod:`rlmx.trajectory.validation`) is skipped
    and counted; a run whose trace ends without ``run_finished`` is marked ``interrupted``.
    """
    valid: list[Mapping[str, Any]] = []
    skipped = 0
    for event in events:
        if event_problem(event) is None:
            valid.append(event)
        else:
            skipped += 1
    appended = store.append_new(valid, source=source)
    ids = list(dict.fromkeys(a.run_id for a in appended))
    finished = {a.run_id for a in appended if a.finished}
    for run_id in ids:
        if run_id not in finished:
            store.mark_interrupted(run_id, "the trace ends before the run finished")
    return ids, skipped


def import_trace(store: RunStore, path: str | Path) -> tuple[list[str], int]:
    """:func:`import_events` of a JSONL trace file (``rlmx run --trace``, ``runs export``);
    the count of lines skipped includes those that are not JSON."""
    try:
        events, bad = _read_lines(path)
    except FileNotFoundError:
        raise UsageError(f"trace file not found: {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read trace file {path}: {exc}") from None
    ids, skipped = import_events(store, events)
    return ids, skipped + bad
