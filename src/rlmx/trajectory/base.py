"""The recorder seam: one observer method instead of a handful of callbacks."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol, runtime_checkable

from rlmx.trajectory.events import Event


@runtime_checkable
class Recorder(Protocol):
    def on_event(self, event: Event) -> None:
        """Receive one event. Must be quick and must not raise for ordinary I/O hiccups."""
        ...


class NullRecorder:
    def on_event(self, event: Event) -> None:
        return None


class MultiRecorder:
    """Fans each event out to several recorders, in order."""

    def __init__(self, recorders: Iterable[Recorder]) -> None:
        self._recorders = tuple(recorders)

    def on_event(self, event: Event) -> None:
        for recorder in self._recorders:
            recorder.on_event(event)
