"""Methods under test: every one answers a :class:`Task` with the same root and sub-model.

``rlm`` is rlmx itself; ``rlm-no-sub`` keeps the REPL with sub-calls off (the paper's
"RLM (no sub-calls)" ablation); ``rlm-dsl`` is rlmx at the command level (L1: one JSON
command a turn, no code run); ``direct``, ``summary`` and ``retrieval`` are the baselines in
:mod:`rlmx.bench.baselines`.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Callable

from rlmx.bench.base import BenchModels, Method, MethodResult
from rlmx.bench.baselines import Direct, Retrieval, Summary
from rlmx.bench.tasks import Task
from rlmx.rlm import RLM, LevelName
from rlmx.trajectory.base import Recorder

__all__ = ["METHOD_NAMES", "BenchModels", "Method", "MethodResult", "RlmMethod", "build_method"]


class RlmMethod:
    """rlmx's RLM on the task's context; ``sub_calls=False`` gives the no-sub-call ablation
    (``max_sub_calls=0``: the prompt leaves the sub-call functions out and they refuse)."""

    def __init__(self, *, sub_calls: bool = True, level: LevelName = "code") -> None:
        self.sub_calls, self.level = sub_calls, level
        self.name = ("rlm" if sub_calls else "rlm-no-sub") + ("-dsl" if level == "dsl" else "")

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
            level=self.level,
            cache=False,  # every task pays for its own sub-calls, as on a first run
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


_FACTORIES: dict[str, Callable[[], Method]] = {
    "rlm": RlmMethod,
    "rlm-no-sub": lambda: RlmMethod(sub_calls=False),
    "rlm-dsl": lambda: RlmMethod(level="dsl"),
    "direct": Direct,
    "summary": Summary,
    "retrieval": Retrieval,
}
METHOD_NAMES = tuple(_FACTORIES)


def build_method(name: str) -> Method:
    """The method called ``name``, with its default settings."""
    factory = _FACTORIES.get(name)
    if factory is None:
        raise ValueError(f"unknown method {name!r}; known: {', '.join(METHOD_NAMES)}")
    return factory()
