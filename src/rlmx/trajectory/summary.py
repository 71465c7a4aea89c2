"""A run as the store sums it up: status, totals and what it was asked."""

from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import dataclass, field
from typing import Any

ACTIVE_STATUSES = ("queued", "running")


@dataclass(frozen=True, slots=True)
class RunSummary:
    id: str
    query: str
    status: str
    source: str
    created_at: float
    root_model: str | None = None
    sub_model: str | None = None
    answer: str | None = None
    error: str | None = None
    iterations: int = 0
    sub_calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0
    cost_usd: float | None = 0.0
    started_at: float | None = None
    finished_at: float | None = None
    wall_s: float | None = None
    event_count: int = 0
    context: dict[str, Any] = field(default_factory=dict)
    limits: dict[str, Any] = field(default_factory=dict)

    @property
    def active(self) -> bool:
        return self.status in ACTIVE_STATUSES

    @property
    def elapsed_s(self) -> float | None:
        """Wall time so far: the run's own figure once finished, else time since it started."""
        if self.wall_s is not None:
            return self.wall_s
        if self.started_at is None:
            return None
        end = self.finished_at if self.finished_at is not None else time.time()
        return max(0.0, end - self.started_at)

    def to_dict(self) -> dict[str, Any]:
        data = {name: getattr(self, name) for name in self.__dataclass_fields__}
        data["elapsed_s"] = self.elapsed_s
        return data


COLUMNS = (
    "id, query, status, source, created_at, root_model, sub_model, answer, error, iterations, "
    "sub_calls, prompt_tokens, completion_tokens, total_tokens, cost_usd, cost_known, "
    "started_at, finished_at, wall_s, event_count, context, limits"
)


def summary_of(row: sqlite3.Row) -> RunSummary:
    data = dict(row)
    known = data.pop("cost_known")
    data["cost_usd"] = data["cost_usd"] if known else None
    data["context"] = json.loads(data["context"] or "{}")
    data["limits"] = json.loads(data["limits"] or "{}")
    return RunSummary(**data)
