"""Trajectory events. Every event names its run, its depth in the recursion tree and its time.

Events are frozen and serialise to flat JSON objects with a ``type`` and a ``schema_version``,
so that files written today stay readable when the schema grows.
"""

from __future__ import annotations

import time
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
    """A call made from the REPL: ``llm_query`` (kind ``llm``) or a nested run (kind ``rlm``)."""

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


@dataclass(frozen=True, slots=True, kw_only=True)
class RunFinished(Event):
    type: ClassVar[str] = "run_finished"
    result: dict[str, Any]
