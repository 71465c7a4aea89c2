"""Methods under test: every one answers a :class:`Task` with the same root and sub-model.

``rlm`` is rlmx itself; ``rlm-no-sub`` keeps the REPL but refuses every sub-call (the
paper's "RLM (no sub-calls)" ablation); ``direct``, ``summary`` and ``retrieval`` are the
baselines in :mod:`rlmx.bench.baselines`.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from rlmx.bench.tasks import Task
from rlmx.config import Limits
from rlmx.errors import RlmxError
from rlmx.providers.base import LLMClient, ModelProfile
from rlmx.rlm import RLM
from rlmx.sandbox.base import SandboxFactory
from rlmx.trajectory.base import Recorder
from rlmx.types import Completion, Message, Usage

METHOD_NAMES = ("rlm", "rlm-no-sub", "direct", "summary", "retrieval")


@dataclass(frozen=True, slots=True)
class BenchModels:
    """What every method of one run shares: the clients, limits and the sandbox."""

    root: LLMClient
    sub: LLMClient
    limits: Limits
    sandbox: SandboxFactory | None = None


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
    """rlmx's RLM on the task's context; ``sub_calls=False`` gives the no-sub-call ablation."""

    def __init__(self, *, sub_calls: bool = True) -> None:
        self.sub_calls = sub_calls
        self.name = "rlm" if sub_calls else "rlm-no-sub"

    async def run(self, task: Task, models: BenchModels, recorder: Recorder) -> MethodResult:
        limits = models.limits
        sub = models.sub
        if not self.sub_calls:
            # No hook in the engine yet: a sub-model that refuses, and no nested runs.
            sub = RefusingClient(models.sub.spec)
            limits = dataclasses.replace(limits, max_depth=0)
        refusals = _RefusalCounter(recorder)
        rlm = RLM(
            model=models.root,
            sub_model=sub,
            limits=limits,
            recorder=refusals,
            sandbox=models.sandbox,
        )
        result = await rlm.arun(task.query, task.context, run_id=uuid.uuid4().hex[:12])
        notes: dict[str, Any] = {}
        if not self.sub_calls:
            notes["refused_sub_calls"] = refusals.refused
        return MethodResult(
            answer=result.answer,
            status=result.status,
            root=result.usage.root,
            sub=result.usage.sub,
            cost_usd=result.cost_usd,
            wall_s=result.wall_s,
            iterations=result.iterations,
            sub_calls=result.sub_calls - refusals.refused,
            trace_id=result.run_id,
            error=result.error,
            notes=notes,
        )


NO_SUB_CALLS = (
    "sub-calls are disabled in this run (rlm-no-sub): answer with code over `context` alone"
)


class RefusingClient:
    """A sub-model that refuses every call, so ``llm_query`` raises inside the REPL."""

    def __init__(self, spec: str) -> None:
        self._spec = f"refused:{spec}"

    @property
    def spec(self) -> str:
        return self._spec

    @property
    def profile(self) -> ModelProfile:
        return ModelProfile(context_window=None, small=True)

    async def complete(self, messages: Sequence[Message], **options: Any) -> Completion:
        raise RlmxError(NO_SUB_CALLS)

    async def aclose(self) -> None:
        return None


class _RefusalCounter:
    """Passes events on, counting the sub-calls that were refused."""

    def __init__(self, inner: Recorder) -> None:
        self._inner = inner
        self.refused = 0

    def on_event(self, event: Any) -> None:
        if getattr(event, "type", "") == "sub_call" and NO_SUB_CALLS in (event.error or ""):
            self.refused += 1
        self._inner.on_event(event)


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
