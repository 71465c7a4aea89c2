"""Trajectory events. Every event names its run, its depth in the recursion tree and its time.

Events are frozen and serialise to flat JSON objects with a ``type`` and a ``schema_version``,
so that files written today stay readable when the schema grows. Growing the schema (a new
event type, a new field with a default) keeps ``SCHEMA_VERSION``; renaming or removing a field
bumps it. Readers skip event types they do not know and ignore fields they do not know.

What the issue's list of steps maps to::

    run started     run_started        (a nested run: run_started with parent_run_id)
    iteration       iteration_started, then root_reply (the root model's code and prose)
    code cell       cell_started
    cell output     cell_executed
    sub-call        sub_call           (kind "llm"; kind "rlm" links a nested run: child_run_id)
    error           run_error
    final answer    final_answer
    run finished    run_finished       (result: RunResult.to_dict(), or status "cancelled")
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar

SCHEMA_VERSION = 1


@dataclass(frozen=True, slots=True, kw_only=True)
class Event:
    type: ClassVar[str] = "event"
    run_id: str
    depth: int = 0
    ts: float = field(default_factory=time.time)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        return {"type": self.type, "schema_version": SCHEMA_VERSION, **data}


@dataclass(frozen=True, slots=True, kw_only=True)
class RunStarted(Event):
    type: ClassVar[str] = "run_started"
    query: str
    context: dict[str, Any]
    root_model: str
    sub_model: str
    limits: dict[str, Any]
    parent_run_id: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class IterationStarted(Event):
    """An iteration begins: the root model is being asked for its next reply."""

    type: ClassVar[str] = "iteration_started"
    iteration: int


@dataclass(frozen=True, slots=True, kw_only=True)
class RootReply(Event):
    """One reply of the run's root model: the iteration's code and prose."""

    type: ClassVar[str] = "root_reply"
    iteration: int
    text: str
    usage: dict[str, int]
    latency_s: float
    cost_usd: float | None
    model: str


@dataclass(frozen=True, slots=True, kw_only=True)
class CellStarted(Event):
    """A code cell of the root model's reply starts running in the REPL."""

    type: ClassVar[str] = "cell_started"
    iteration: int
    index: int
    code: str


@dataclass(frozen=True, slots=True, kw_only=True)
class CellExecuted(Event):
    type: ClassVar[str] = "cell_executed"
    iteration: int
    index: int
    code: str
    output: str
    error: str | None
    final: str | None
    duration_s: float


@dataclass(frozen=True, slots=True, kw_only=True)
class SubCall(Event):
    """A call made from the REPL: ``llm_query`` (kind ``llm``), ``llm_map`` (kind ``map``) or a
    nested run (kind ``rlm``). ``cached``: answered from the sub-call cache, not by the model
    (its usage then counts a cache hit and no tokens). ``endpoint``: the server that answered,
    when the model is an endpoint pool."""

    type: ClassVar[str] = "sub_call"
    call_id: str
    kind: str
    model: str
    prompt: str
    response: str
    usage: dict[str, int]
    latency_s: float
    cost_usd: float | None
    error: str | None = None
    child_run_id: str | None = None
    cached: bool = False
    endpoint: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class FinalAnswer(Event):
    """The run's answer, as ``FINAL``/``FINAL_VAR`` gave it."""

    type: ClassVar[str] = "final_answer"
    iteration: int
    answer: str


@dataclass(frozen=True, slots=True, kw_only=True)
class RunError(Event):
    """What ended a run early: a limit, a provider or sandbox failure, a cancellation."""

    type: ClassVar[str] = "run_error"
    status: str
    error: str


@dataclass(frozen=True, slots=True, kw_only=True)
class RunFinished(Event):
    type: ClassVar[str] = "run_finished"
    result: dict[str, Any]


EVENT_TYPES: dict[str, type[Event]] = {
    cls.type: cls
    for cls in (
        RunStarted,
        IterationStarted,
        RootReply,
        CellStarted,
        CellExecuted,
        SubCall,
        FinalAnswer,
        RunError,
        RunFinished,
    )
}


def event_from_dict(data: Mapping[str, Any]) -> Event:
    """The typed event of one JSON object; unknown fields are ignored (a newer writer).

    Raises ``ValueError`` for an unknown type, a newer schema version, or missing fields.
    """
    kind = data.get("type")
    cls = EVENT_TYPES.get(kind) if isinstance(kind, str) else None
    if cls is None:
        raise ValueError(f"unknown event type {kind!r}")
    version = data.get("schema_version", SCHEMA_VERSION)
    if not isinstance(version, int) or version > SCHEMA_VERSION:
        raise ValueError(
            f"event schema_version {version!r} is newer than this rlmx reads "
            f"({SCHEMA_VERSION}): upgrade rlmx"
        )
    names = {f.name for f in dataclasses.fields(cls)}
    try:
        return cls(**{k: v for k, v in data.items() if k in names})
    except TypeError as exc:
        raise ValueError(f"bad {kind} event: {exc}") from None
