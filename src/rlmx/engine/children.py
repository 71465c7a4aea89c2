"""Nested runs that an executor may run in another process (``rlm_query`` children on Ray).

:class:`NestedChild` is the engine's side of one child on the driver (the
:class:`~rlmx.executors.base.NestedRun` an executor is handed): it runs the child in this
process when asked to, or lends a remote one its share of the tree's budget
(:mod:`rlmx.engine.budget`), passes the events it sends to the tree's recorder, answers its
asks for more, and settles its exact use once, for the attempt that returned. An attempt
given up for another (its worker was lost and Ray ran the child again) keeps the events it
sent, and each run it had started ends with a ``run_error`` saying so; nothing it used is
counted. The job that travels is :class:`~rlmx.engine.engine.ChildJob`.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from rlmx.context import Context, ContextHandle, ContextInput, ContextOptions, ContextValue
from rlmx.context.sources import from_value
from rlmx.engine.budget import Amounts, Lease, Spending
from rlmx.engine.tree import Tree
from rlmx.executors.base import NestedJob, NestedLink
from rlmx.trajectory.events import Event, RunError, RunFinished, RunStarted
from rlmx.types import RunResult, UsageReport


@dataclass(frozen=True, slots=True)
class Ask:
    """A remote child's ask for more of the tree's budget: what it has spent, what it lacks."""

    spent: Amounts
    short: Amounts


@dataclass(frozen=True, slots=True)
class Lent:
    """A child's first lease, and when it was lent (the wall clock, to start the child's)."""

    lease: Lease
    at: float


@dataclass(frozen=True, slots=True)
class Outcome:
    """What a remote child gives back: its result, and what it used of the budget."""

    result: RunResult
    spent: Spending


@dataclass(frozen=True, slots=True)
class Travelling:
    """A child's context as it travels: its value, or its documents by path (the JSON of
    :mod:`rlmx.context.spec`, which every node reads at the same paths) and its handle."""

    value: ContextValue | None = None
    options: ContextOptions | None = None
    kind: str = "text"
    docs: tuple[dict[str, Any], ...] = ()
    root: str | None = None
    notes: tuple[str, ...] = ()
    bind_paths: tuple[str, ...] = ()
    handle: ContextHandle | None = None

    @classmethod
    def of(cls, context: ContextInput) -> Travelling | None:
        """``context`` as it can travel; None when it is only here (a stream's spool file, a
        converted document, a path not yet opened)."""
        if isinstance(context, str | list | tuple):
            return cls(value=context)
        if type(context) is not Context:
            return None
        if context.value is not None:
            return cls(value=context.value, options=context.options)
        if any(d.get("fd") is not None or not d.get("path") for d in context.docs):
            return None
        handle = context.describe()
        return cls(
            options=context.options,
            kind=context.kind,
            docs=tuple(context.docs),
            root=context.root,
            notes=tuple(context.notes),
            bind_paths=tuple(context.bind_paths()),
            handle=handle,
        )

    def open(self) -> ContextInput:
        if self.value is not None:
            return self.value if self.options is None else from_value(self.value, self.options)
        handle = self.handle
        assert handle is not None
        assert self.options is not None
        return Context(
            kind=self.kind,
            docs=self.docs,
            options=self.options,
            describer=lambda _: handle,
            root=self.root,
            notes=self.notes,
            bind_paths=self.bind_paths,
        )


class Forwarding:
    """The recorder of a remote child: each event goes down its line to the driver."""

    def __init__(self, link: NestedLink) -> None:
        self._link = link

    def on_event(self, event: Event) -> None:
        self._link.send(event)


def refill_through(link: NestedLink) -> Callable[[Amounts, Amounts], Lease | None]:
    """A remote child's way to ask its tree for more (see :class:`~rlmx.engine.budget.Budget`)."""

    def refill(spent: Amounts, short: Amounts) -> Lease | None:
        answer = link.ask(Ask(spent, short))
        return answer if isinstance(answer, Lease) else None

    return refill


@dataclass
class NestedChild:
    """One nested run as the driver's engine hands it to the tree's executor."""

    tree: Tree
    context: ContextInput
    parent: str
    run_here: Callable[[], Awaitable[RunResult]]
    make_job: Callable[[Travelling], NestedJob]
    _key: str = field(default_factory=lambda: uuid.uuid4().hex)
    _started: float = field(default_factory=time.perf_counter)
    _attempt: str | None = None
    _gone: set[str] = field(default_factory=set)
    _open: dict[str, int] = field(default_factory=dict)  # runs the attempt started, unfinished
    _top: str | None = None  # the attempt's own run (the others are its nested runs)

    @property
    def specs(self) -> tuple[str, ...]:
        models = self.tree.models
        return (models.root.spec, models.sub.spec, *(c.spec for c in models.named.values()))

    async def here(self) -> RunResult:
        return await self.run_here()

    def job(self) -> NestedJob | None:
        travelling = Travelling.of(self.context)
        return None if travelling is None else self.make_job(travelling)

    def lease(self) -> Lent:
        return Lent(self.tree.budget.lend(self._key), time.time())

    def receive(self, attempt: str, message: object) -> object:
        if not self._follow(attempt):
            return None
        if isinstance(message, Ask):
            return self.tree.budget.top_up(self._key, message.spent, message.short)
        if isinstance(message, Event):
            self._note(message)
            self.tree.recorder.on_event(message)
        return None

    def finish(self, attempt: str, outcome: object) -> RunResult:
        self._follow(attempt)
        assert isinstance(outcome, Outcome)
        self.tree.budget.settle(self._key, outcome.spent)
        return outcome.result

    def fail(self, error: str) -> RunResult:
        self._close_open(error)
        budget = self.tree.budget
        budget.release(self._key)
        return RunResult(
            answer=None,
            status="error",
            iterations=0,
            sub_calls=budget.sub_calls,
            usage=budget.report(),
            cost_usd=budget.cost_usd,
            wall_s=time.perf_counter() - self._started,
            run_id=self._top or "",
            error=error,
        )

    def _follow(self, attempt: str) -> bool:
        """Whether ``attempt`` is the one to hear: a new one ends the one before."""
        if attempt in self._gone:
            return False
        if attempt != self._attempt:
            if self._attempt is not None:
                self._close_open("its worker was lost; Ray ran the nested run again")
                self._gone.add(self._attempt)
                self.tree.budget.restart(self._key)
            self._attempt, self._top = attempt, None
        return True

    def _note(self, event: Event) -> None:
        if isinstance(event, RunStarted):
            self._open[event.run_id] = event.depth
            if event.parent_run_id == self.parent:
                self._top = event.run_id
        elif isinstance(event, RunFinished):
            self._open.pop(event.run_id, None)

    def _close_open(self, error: str) -> None:
        """End each run the attempt started and did not finish, innermost first."""
        for run_id, depth in reversed(list(self._open.items())):
            result = RunResult(
                answer=None,
                status="error",
                iterations=0,
                sub_calls=0,
                usage=UsageReport(),
                cost_usd=None,
                wall_s=0.0,
                run_id=run_id,
                error=error,
            )
            recorder = self.tree.recorder
            recorder.on_event(RunError(run_id=run_id, depth=depth, status="error", error=error))
            recorder.on_event(RunFinished(run_id=run_id, depth=depth, result=result.to_dict()))
        self._open.clear()
