"""Typed, versioned records of what a run did, and the recorders that keep them."""

from rlmx.trajectory.base import MultiRecorder, NullRecorder, Recorder
from rlmx.trajectory.events import (
    SCHEMA_VERSION,
    CellExecuted,
    Event,
    RootReply,
    RunFinished,
    RunStarted,
    SubCall,
)
from rlmx.trajectory.jsonl import JsonlRecorder, read_jsonl

__all__ = [
    "SCHEMA_VERSION",
    "CellExecuted",
    "Event",
    "JsonlRecorder",
    "MultiRecorder",
    "NullRecorder",
    "Recorder",
    "RootReply",
    "RunFinished",
    "RunStarted",
    "SubCall",
    "read_jsonl",
]
