"""The seam of the benchmark: a :class:`Method` answers a :class:`Task` with the models of
one run (:class:`BenchModels`) and reports a :class:`MethodResult`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from rlmx.bench.tasks import Task
from rlmx.config import Assists, Limits
from rlmx.providers.base import LLMClient
from rlmx.sandbox.base import SandboxFactory
from rlmx.trajectory.base import Recorder
from rlmx.types import Usage


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
