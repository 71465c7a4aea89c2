"""SQLite recorder: every event committed to a :class:`~rlmx.trajectory.store.RunStore`."""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable
from pathlib import Path

from rlmx.trajectory.events import Event
from rlmx.trajectory.store import Appended, RunStore

log = logging.getLogger(__name__)


class SqliteRecorder:
    """A :class:`~rlmx.trajectory.base.Recorder` writing to a store (or a database path).

    ``source`` names who ran the run (``cli``, ``server``, ``python``) in ``rlmx runs list``;
    ``listener`` hears of each event once it is committed (the server streams it from there).
    A database error is logged and counted in ``dropped``; it never ends the run.
    """

    def __init__(
        self,
        store: RunStore | str | Path,
        *,
        source: str = "python",
        listener: Callable[[Appended], None] | None = None,
    ) -> None:
        self._owned = not isinstance(store, RunStore)
        self.store = store if isinstance(store, RunStore) else RunStore(store)
        self._source = source
        self._listener = listener
        self.dropped = 0

    def on_event(self, event: Event) -> None:
        try:
            appended = self.store.append(event.to_dict(), source=self._source)
        except sqlite3.Error as exc:
            self.dropped += 1
            log.warning("could not record a %s event of run %s: %s", event.type, event.run_id, exc)
            return
        if self._listener is not None:
            self._listener(appended)

    def close(self) -> None:
        if self._owned:
            self.store.close()
