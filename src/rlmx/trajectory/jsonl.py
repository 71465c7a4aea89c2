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


def import_events(
    store: RunStore, events: Iterable[Mapping[str, Any]], *, source: str = "import"
) -> tuple[list[str], int]:
    """Add a trace's events to the store; returns the top-level run ids and the lines skipped.

    A run already in the store is refused (``ValueError``) rather than mixed with the new one;
    a run whose trace ends without ``run_finished`` is marked ``interrupted``.
    """
    valid: list[Mapping[str, Any]] = []
    skipped = 0
    for event in events:
        if (
            isinstance(event, Mapping)
            and isinstance(event.get("type"), str)
            and event.get("run_id")
        ):
            valid.append(event)
        else:
            skipped += 1
    roots = [
        str(e["run_id"]) for e in valid if e["type"] == "run_started" and not e.get("parent_run_id")
    ]
    for run_id in roots:
        if store.get_run(run_id) is not None:
            raise ValueError(f"run {run_id} is already in the store {store.path}")
    appended = store.append_many(valid, source=source)
    ids = list(dict.fromkeys(a.run_id for a in appended))
    finished = {a.run_id for a in appended if a.finished}
    for run_id in ids:
        if run_id not in finished:
            store.mark_interrupted(run_id, "the trace ends before the run finished")
    return ids, skipped


def import_trace(store: RunStore, path: str | Path) -> tuple[list[str], int]:
    """:func:`import_events` of a JSONL trace file (``rlmx run --trace``, ``runs export``)."""
    try:
        events = read_jsonl(path)
    except FileNotFoundError:
        raise UsageError(f"trace file not found: {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read trace file {path}: {exc}") from None
    return import_events(store, events)
