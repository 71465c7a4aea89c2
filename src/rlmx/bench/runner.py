"""Runs task sets x methods and appends one JSON line per (task, method) to ``results.jsonl``.

Resumable: a (task, method) pair that already has a row is skipped, unless its status was
``error`` (a crashed provider, say), which is run again. Within one (task set, length) group
all tasks of one method run one after another, so a local model keeps its prompt cache warm.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rlmx import __version__
from rlmx.bench.base import BenchModels, Method, MethodResult
from rlmx.bench.registry import TASK_SETS
from rlmx.bench.scoring import score
from rlmx.bench.tasks import Task
from rlmx.trajectory.jsonl import JsonlRecorder

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
RESULTS = "results.jsonl"
RUN_INFO = "run.json"


@dataclass(frozen=True, slots=True)
class BenchPlan:
    task_sets: Sequence[str]
    methods: Sequence[Method]
    lengths: Sequence[int] | None
    n: int
    seed: int
    data: Path
    options: dict[str, Any] = field(default_factory=dict)
    # Only these task indices (of 0 .. n-1) are run: tasks keep the ids and seeds they have
    # in the whole plan, so a re-run of a few of them lands beside the others.
    only: frozenset[int] | None = None

    def selected(self, index: int) -> bool:
        return self.only is None or index in self.only

    def groups(self) -> Iterator[tuple[str, int]]:
        for name in self.task_sets:
            spec = TASK_SETS[name]
            lengths = [0] if spec.fixed_length else (self.lengths or spec.default_lengths)
            for length in lengths:
                yield name, length

    def keys(self) -> Iterator[tuple[str, str]]:
        """Every (task id, method) pair of the plan, in run order."""
        for name, length in self.groups():
            for method in self.methods:
                for index in range(self.n):
                    if self.selected(index):
                        yield f"{name}/{length}/{index}", method.name

    def pending(self, rows: Sequence[dict[str, Any]]) -> int:
        done = _done_keys(rows)
        return sum(1 for key in self.keys() if key not in done)


ProgressFn = Callable[[dict[str, Any]], None]


def read_rows(out: Path) -> list[dict[str, Any]]:
    path = out / RESULTS
    if not path.exists():
        return []
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                continue  # a torn last line from a killed run
    return rows


def _done_keys(rows: Sequence[dict[str, Any]]) -> set[tuple[str, str]]:
    return {(r["task_id"], r["method"]) for r in rows if r.get("status") != "error"}


class Runner:
    def __init__(self, plan: BenchPlan, models: BenchModels, out: Path) -> None:
        self.plan = plan
        self.models = models
        self.out = out

    def write_info(self) -> None:
        self.out.mkdir(parents=True, exist_ok=True)
        info = {
            "schema_version": SCHEMA_VERSION,
            "rlmx_version": __version__,
            "task_sets": list(self.plan.task_sets),
            "methods": [m.name for m in self.plan.methods],
            "lengths": list(self.plan.lengths) if self.plan.lengths else None,
            "n": self.plan.n,
            "only": sorted(self.plan.only) if self.plan.only is not None else None,
            "seed": self.plan.seed,
            "root_model": self.models.root.spec,
            "sub_model": self.models.sub.spec,
            "root_window": self.models.root.profile.context_window,
            "limits": {k: getattr(self.models.limits, k) for k in ("max_iterations", "timeout_s")},
            "options": self.plan.options,
            "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
        (self.out / RUN_INFO).write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")

    async def run(self, progress: ProgressFn | None = None) -> list[dict[str, Any]]:
        """Run every pending pair; returns the rows written by this call."""
        self.write_info()
        done = _done_keys(read_rows(self.out))
        written: list[dict[str, Any]] = []
        for name, length in self.plan.groups():
            tasks = TASK_SETS[name].generate(length, self.plan.n, self.plan.seed, self.plan.data)
            for method in self.plan.methods:
                for task in tasks:
                    if (task.task_id, method.name) in done or not self.plan.selected(task.index):
                        continue
                    row = await self.run_one(task, method)
                    written.append(row)
                    if progress:
                        progress(row)
        return written

    async def run_one(self, task: Task, method: Method) -> dict[str, Any]:
        trace = self.out / "traces" / method.name / f"{task.task_id.replace('/', '-')}.jsonl"
        if trace.exists():
            trace.unlink()  # a rerun of an errored pair replaces its trace
        recorder = JsonlRecorder(trace)
        started = time.time()
        try:
            result = await method.run(task, self.models, recorder)
        except Exception as exc:  # one broken pair must not end a long benchmark
            log.exception("%s %s failed", task.task_id, method.name)
            result = MethodResult(answer=None, status="error", error=f"{type(exc).__name__}: {exc}")
        finally:
            recorder.close()
        value = score(task, result.answer)
        row = {
            "schema_version": SCHEMA_VERSION,
            **task.record(),
            "method": method.name,
            "root_model": self.models.root.spec,
            "sub_model": self.models.sub.spec,
            "answer": result.answer,
            "score": value,
            # The paper's convention: a prompt that did not fit the window scores 0.
            "paper_score": 0.0 if result.truncated else value,
            "status": result.status,
            "error": result.error,
            "truncated": result.truncated,
            "tokens": {"root": result.root.to_dict(), "sub": result.sub.to_dict()},
            "cost_usd": result.cost_usd,
            "wall_s": round(result.wall_s, 3),
            "iterations": result.iterations,
            "sub_calls": result.sub_calls,
            "trace_id": result.trace_id,
            "trace": str(trace.relative_to(self.out)),
            "notes": result.notes,
            "started_at": round(started, 3),
        }
        with (self.out / RESULTS).open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")
        log.info("%s %s: score %.2f (%s)", task.task_id, method.name, value, result.status)
        return row
