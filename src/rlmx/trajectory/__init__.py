"""Typed, versioned records of what a run did, and the recorders and store that keep them."""

from rlmx.trajectory.base import MultiRecorder, NullRecorder, Recorder
from rlmx.trajectory.events import (
    EVENT_TYPES,
    SCHEMA_VERSION,
    CellExecuted,
    CellStarted,
    Event,
    FinalAnswer,
    IterationStarted,
    RootReply,
    RunError,
    RunFinished,
    RunStarted,
    SubCall,
    event_from_dict,
)
from rlmx.trajectory.jsonl import JsonlRecorder, import_events, import_trace, read_jsonl
from rlmx.trajectory.sqlite import SqliteRecorder
from rlmx.trajectory.store import RunStore, default_db_path, open_store
from rlmx.trajectory.summary import RunSummary

__all__ = [
    "EVENT_TYPES",
    "SCHEMA_VERSION",
    "CellExecuted",
    "CellStarted",
    "Event",
    "FinalAnswer",
    "IterationStarted",
    "JsonlRecorder",
    "MultiRecorder",
    "NullRecorder",
    "Recorder",
    "RootReply",
    "RunError",
    "RunFinished",
    "RunStarted",
    "RunStore",
    "RunSummary",
    "SqliteRecorder",
    "SubCall",
    "default_db_path",
    "event_from_dict",
    "import_events",
    "import_trace",
    "open_store",
    "read_jsonl",
]
