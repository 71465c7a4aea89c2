"""Run a demo: prepare its data, ask each question through :class:`rlmx.RLM`, check each answer.

Library code: nothing is printed. The caller hands in resolved model clients, a sandbox
factory and a recorder for the store; ``observe`` lets it watch each question (the CLI draws
live progress there). Every question's run gets its own run id, so each is recorded and
viewable on its own.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path

from rlmx.config import Assists, Limits, Settings
from rlmx.demos.base import Check, Demo, DemoQuestion, Prepared
from rlmx.demos.scoped import context_of
from rlmx.errors import UsageError
from rlmx.providers.base import LLMClient
from rlmx.rlm import RLM
from rlmx.sandbox.base import SandboxFactory
from rlmx.trajectory.base import MultiRecorder, Recorder
from rlmx.types import RunResult

# Given the question about to run, a context manager that may yield a recorder to watch it.
Observer = Callable[[DemoQuestion], AbstractContextManager[Recorder | None]]


@dataclass(frozen=True, slots=True)
class QuestionResult:
    """One question's run: its answer, the check, and what it cost."""

    question: DemoQuestion
    answer: str | None
    check: Check
    expected: object
    status: str
    wall_s: float
    root_tokens: int
    sub_tokens: int
    iterations: int
    sub_calls: int
    run_id: str

    def to_dict(self) -> dict[str, object]:
        return {
            "question": self.question.name,
            "query": self.question.query,
            "level": self.question.level,
            "answer": self.answer,
            "expected": self.expected,
            "passed": self.check.passed,
            "detail": self.check.detail,
            "score": self.check.score,
            "status": self.status,
            "wall_s": round(self.wall_s, 3),
            "tokens": {"root": self.root_tokens, "sub": self.sub_tokens},
            "iterations": self.iterations,
            "sub_calls": self.sub_calls,
            "run_id": self.run_id,
        }


@dataclass(frozen=True, slots=True)
class DemoReport:
    """A demo's run: every question's result, in order."""

    demo: str
    seed: int
    workdir: Path
    root_model: str
    sub_model: str
    results: tuple[QuestionResult, ...]
    notes: tuple[str, ...] = field(default=())

    @property
    def passed(self) -> int:
        return sum(1 for r in self.results if r.check.passed)

    @property
    def all_passed(self) -> bool:
        return bool(self.results) and self.passed == len(self.results)

    def to_dict(self) -> dict[str, object]:
        return {
            "demo": self.demo,
            "seed": self.seed,
            "workdir": str(self.workdir),
            "root_model": self.root_model,
            "sub_model": self.sub_model,
            "passed": self.passed,
            "total": len(self.results),
            "results": [r.to_dict() for r in self.results],
            "notes": list(self.notes),
        }


@dataclass(frozen=True, slots=True)
class DemoModels:
    """The clients of a demo run, resolved by the caller; ``sandbox`` runs the code level."""

    root: LLMClient
    sub: LLMClient
    sandbox: SandboxFactory
    settings: Settings | None = None
    assists: Assists | None = None
    # As RLM(cache=...): None keeps the embedded models' greedy answers, so a second run of a
    # demo replays its first from the store; False makes every run call the models.
    cache: bool | None = None


def prepare(demo: Demo, workdir: Path, *, seed: int) -> Prepared:
    workdir.mkdir(parents=True, exist_ok=True)
    return demo.prepare(workdir, seed=seed)


# An unknown name's error lists this many of the demo's questions: it stays one line.
MAX_NAMES_SHOWN = 4


def select(prepared: Prepared, only: Sequence[str]) -> tuple[DemoQuestion, ...]:
    """The questions named in ``only`` (all when empty); a usage error for an unknown name."""
    if not only:
        return prepared.questions
    names = [q.name for q in prepared.questions]
    unknown = [n for n in only if n not in names]
    if unknown:
        shown = ", ".join(names[:MAX_NAMES_SHOWN])
        more = f" and {len(names) - MAX_NAMES_SHOWN} more" if len(names) > MAX_NAMES_SHOWN else ""
        raise UsageError(
            f"no question {', '.join(map(repr, unknown))} in this demo: its questions are "
            f"{shown}{more} (the table of a run names them all)"
        )
    return tuple(q for q in prepared.questions if q.name in only)


async def arun_demo(
    demo: Demo,
    models: DemoModels,
    *,
    workdir: Path,
    seed: int = 0,
    only: Sequence[str] = (),
    recorder: Recorder | None = None,
    observe: Observer | None = None,
    prepared: Prepared | None = None,
) -> DemoReport:
    """Prepare ``demo`` under ``workdir`` (unless ``prepared`` is given: the caller did) and
    run its questions one after another."""
    prepared = prepared or prepare(demo, workdir, seed=seed)
    questions = select(prepared, only)
    results = []
    try:
        for question in questions:
            watch = observe(question) if observe is not None else contextlib.nullcontext(None)
            with watch as watcher:
                recorders = [r for r in (recorder, watcher) if r is not None]
                result = await _ask(question, prepared, models, MultiRecorder(recorders))
            results.append(_judge(demo, prepared, question, result))
    finally:
        # The clients outlive each question's RLM (one loaded model for the whole demo).
        for client in {id(c): c for c in (models.root, models.sub)}.values():
            await client.aclose()
    return DemoReport(
        demo=demo.name,
        seed=seed,
        workdir=workdir,
        root_model=models.root.spec,
        sub_model=models.sub.spec,
        results=tuple(results),
        notes=prepared.notes,
    )


def run_demo(
    demo: Demo, models: DemoModels, *, workdir: Path, seed: int = 0, only: Sequence[str] = ()
) -> DemoReport:
    """:func:`arun_demo` to the end in its own event loop, unwatched and unrecorded (Python)."""
    return asyncio.run(arun_demo(demo, models, workdir=workdir, seed=seed, only=only))


async def _ask(
    question: DemoQuestion, prepared: Prepared, models: DemoModels, recorder: Recorder
) -> RunResult:
    rlm = RLM(
        model=models.root,
        sub_model=models.sub,
        limits=Limits(max_iterations=question.max_iterations, max_depth=question.max_depth),
        recorder=recorder,
        sandbox=models.sandbox,
        settings=models.settings,
        level=question.level,
        assists=models.assists,
        cache=models.cache,
    )
    return await rlm.arun(question.query, context_of(prepared, question))


def _judge(
    demo: Demo, prepared: Prepared, question: DemoQuestion, result: RunResult
) -> QuestionResult:
    check = demo.check(prepared, question, result.answer)
    return QuestionResult(
        question=question,
        answer=result.answer,
        check=check,
        expected=prepared.expected.get(question.name),
        status=result.status,
        wall_s=result.wall_s,
        root_tokens=result.usage.root.total_tokens,
        sub_tokens=result.usage.sub.total_tokens,
        iterations=result.iterations,
        sub_calls=result.sub_calls,
        run_id=result.run_id,
    )
