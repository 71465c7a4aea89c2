"""Methods under test: every one answers a :class:`Task` with the same root and sub-model.

``rlm`` is rlmx itself; ``rlm-no-sub`` keeps the REPL with sub-calls off (the paper's
"RLM (no sub-calls)" ablation); ``direct``, ``summary`` and ``retrieval`` are the
baselines in :mod:`rlmx.bench.baselines`.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from rlmx.bench.tasks import Task
from rlmx.config import Assists, Limits
from rlmx.providers.base import LLMClient
from rlmx.rlm import RLM
from rlmx.sandbox.base import SandboxFactory
from rlmx.trajectory.base import Recorder
from rlmx.types import Usage

METHOD_NAMES = ("rlm", "rlm-no-sub", "direct", "summary", "retrieval")


@dataclass(frozen=True, slots=True)
class BenchModels:
    """What every method of one run shares: the clients, limits and the sandbox."""

    root: LLMClient
    sub: LLMClient
    limits: Limits
    sandbox: SandboxFactory | None = None
    assists: Assists | None = None


@dataclass(frozen=True, slots=True)
class MethodResult:
    answer: str | None
    status: str
    root: Usage = field(default_factory=Usage)
    sub: Usage = field(default_factory=Usage)
    cost_usd: float | None = 0.0
    wall_s: float = 0.0
    iterations: int = 0
    sub_calls: int = 0
    trace_id: str = ""
    error: str | None = None
    truncated: bool = False
    notes: dict[str, Any] = field(default_factory=dict)


class Method(Protocol):
    name: str

    async def run(self, task: Task, models: BenchModels, recorder: Recorder) -> MethodResult: ...


RecorderFactory = Callable[[str], Recorder]


class RlmMethod:
    """rlmx's RLM on the task's context; ``sub_calls=False`` gives the no-sub-call ablation
    (``max_sub_calls=0``: the prompt leaves the sub-call functions out and they refuse)."""

    def __init__(self, *, sub_calls: bool = True) -> None:
        self.sub_calls = sub_calls
        self.name = "rlm" if sub_calls else "rlm-no-sub"

    async def run(self, task: Task, models: BenchModels, recorder: Recorder) -> MethodResult:
        limits = models.limits
        if not self.sub_calls:
            limits = dataclasses.replace(limits, max_sub_calls=0)
        rlm = RLM(
            model=models.root,
            sub_model=models.sub,
            limits=limits,
            recorder=recorder,
            sandbox=models.sandbox,
            assists=models.assists,
        )
        result = await rlm.arun(task.query, task.context, run_id=uuid.uuid4().hex[:12])
        return MethodResult(
            answer=result.answer,
            status=result.status,
            root=result.usage.root,
            sub=result.usage.sub,
            cost_usd=result.cost_usd,
            wall_s=result.wall_s,
            iterations=result.iterations,
            sub_calls=result.sub_calls,
            trace_id=result.run_id,
            error=result.error,
        )


def build_method(name: str, **options: Any) -> Method:
    from rlmx.bench import baselines

    if name == "rlm":
        return RlmMethod()
    if name == "rlm-no-sub":
        return RlmMethod(sub_calls=False)
    if name == "direct":
        return baselines.Direct(**options)
    if name == "summary":
        return baselines.Summary(**options)
    if name == "retrieval":
        return baselines.Retrieval(**options)
    raise ValueError(f"unknown method {name!r}; known: {', '.join(METHOD_NAMES)}")
