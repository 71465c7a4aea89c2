"""The engine: the runs of one recursion tree, from the context put in the store to the result.

What is the same at every level lives here: the run's events, the sub-call bridge, the wall
clock, the mapping of failures to a status, and the result. How the turns are driven is the
:class:`~rlmx.engine.base.Level` the engine is given.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from dataclasses import dataclass, replace

from rlmx.config import Limits
from rlmx.context import ContextInput, ContextOptions, LocalStore
from rlmx.engine.answers import AnswerShape
from rlmx.engine.base import Ending, Level
from rlmx.engine.budget import Budget
from rlmx.engine.cache import SubCallCache
from rlmx.engine.children import Forwarding, Lent, NestedChild, Outcome, Travelling, refill_through
from rlmx.engine.run import Run
from rlmx.engine.subcalls import SubCallBridge, SubCallScope
from rlmx.engine.tree import Models, Tree
from rlmx.errors import LimitExceeded, RlmxError
from rlmx.executors.base import Executor, NestedLink
from rlmx.executors.local import LocalExecutor
from rlmx.trajectory.base import Recorder
from rlmx.trajectory.events import FinalAnswer, RunError, RunFinished, RunStarted
from rlmx.types import RunResult, RunStatus

log = logging.getLogger(__name__)


class Engine:
    """Runs RLMs. Receives objects only: clients, limits, a recorder, a context store, and
    the :class:`~rlmx.engine.base.Level` that drives each run's turns; ``cache``, when given,
    answers greedy sub-calls asked before (:mod:`rlmx.engine.cache`); ``executor`` runs the
    sub-model calls (this process by default; :mod:`rlmx.executors`)."""

    def __init__(
        self,
        *,
        models: Models,
        limits: Limits,
        level: Level,
        recorder: Recorder,
        store: LocalStore | None = None,
        cache: SubCallCache | None = None,
        executor: Executor | None = None,
    ) -> None:
        self._models = models
        self._executor = executor or LocalExecutor()
        self._cache = cache
        self._limits = limits
        self._level = level
        self._recorder = recorder
        self._store = store or LocalStore()

    async def run(
        self,
        query: str,
        context: ContextInput,
        *,
        run_id: str | None = None,
        preamble: str | None = None,
        shape: AnswerShape | None = None,
    ) -> RunResult:
        """Answer ``query`` over ``context``. ``preamble`` goes before the question in the root
        model's first turn (a session's earlier questions and answers); ``shape`` asks for a
        typed answer (:mod:`rlmx.engine.answers`)."""
        tree = self._tree(Budget(self._limits))
        run_id = run_id or uuid.uuid4().hex[:12]
        started = time.perf_counter()
        run = await self._start(tree, run_id, query, context, depth=0, parent=None)
        run.preamble, run.shape = preamble, shape
        return await self._complete(run, started)

    async def run_child(
        self, query: str, context: ContextInput, *, budget: Budget, depth: int, parent: str
    ) -> RunResult:
        """A nested run of a tree whose root runs in another process (:class:`ChildJob`):
        at ``depth`` under ``parent``, spending from ``budget``."""
        return await self._nested(self._tree(budget), query, context, depth=depth, parent=parent)

    def _tree(self, budget: Budget) -> Tree:
        return Tree(
            models=self._models,
            limits=self._limits,
            budget=budget,
            recorder=self._recorder,
            semaphore=asyncio.Semaphore(self._limits.concurrency),
            cache=self._cache,
            executor=self._executor,
        )

    async def _nested(
        self,
        tree: Tree,
        query: str,
        context: ContextInput,
        *,
        depth: int,
        parent: str | None,
    ) -> RunResult:
        started = time.perf_counter()
        run_id = uuid.uuid4().hex[:12]
        run = await self._start(tree, run_id, query, context, depth=depth, parent=parent)
        return await self._complete(run, started)

    async def _complete(self, run: Run, started: float) -> RunResult:
        """Drive a started run to its end and record its result."""
        answer, status, error = await self._drive(run)
        if status != "completed" and answer is None:
            answer = run.partial
        return self._finish(run, answer, status, error, wall_s=time.perf_counter() - started)

    async def _start(
        self,
        tree: Tree,
        run_id: str,
        query: str,
        context: ContextInput,
        *,
        depth: int,
        parent: str | None,
    ) -> Run:
        """Put the context in the store, record the start, and open the run's bridge."""
        opened = await asyncio.to_thread(self._store.put, context)
        tree.recorder.on_event(
            RunStarted(
                run_id=run_id,
                depth=depth,
                query=query,
                context=opened.describe().to_dict(),
                root_model=tree.models.root.spec,
                sub_model=tree.models.sub.spec,
                limits=tree.limits.to_dict(),
                parent_run_id=parent,
            )
        )

        async def nested(q: str, ctx: ContextInput, d: int, parent_id: str) -> RunResult:
            return await tree.executor.run_nested(self._child(tree, q, ctx, d, parent_id))

        bridge = SubCallBridge(
            tree=tree,
            scope=SubCallScope(run_id=run_id, depth=depth),
            loop=asyncio.get_running_loop(),
            nested=nested,
        )
        return Run(tree, run_id, depth, query, opened, bridge)

    def _child(
        self, tree: Tree, query: str, context: ContextInput, depth: int, parent: str
    ) -> NestedChild:
        """A nested run as the executor gets it: to run here, or as a :class:`ChildJob`."""
        models = tree.models

        def job(travelling: Travelling) -> ChildJob:
            return ChildJob(
                query=query,
                context=travelling,
                depth=depth,
                parent=parent,
                root=models.root.spec,
                sub=models.sub.spec,
                named=tuple((name, c.spec) for name, c in models.named.items()),
                limits=self._limits,
                level=self._level,
                options=self._store.options,
            )

        return NestedChild(
            tree=tree,
            context=context,
            parent=parent,
            run_here=lambda: self._nested(tree, query, context, depth=depth, parent=parent),
            make_job=job,
        )

    async def _drive(self, run: Run) -> tuple[str | None, RunStatus, str | None]:
        """The level's turns on the run's clock: the answer, the status, and the error."""
        session = self._level.open(run)
        try:
            async with asyncio.timeout(run.tree.budget.remaining_s()):
                ending: Ending = await session.drive()
        except Exception as exc:  # a run reports its failure; it never escapes as a traceback
            return (None, *_failure(exc, run))
        finally:
            run.bridge.cancel_pending()
            await session.close()
        return (*ending, None)

    def _finish(
        self, run: Run, answer: str | None, status: RunStatus, error: str | None, *, wall_s: float
    ) -> RunResult:
        """The run's result, recorded with its final answer or its error."""
        budget, recorder = run.tree.budget, run.tree.recorder
        result = RunResult(
            answer=answer,
            status=status,
            iterations=run.iterations,
            sub_calls=budget.sub_calls,
            usage=budget.report(),
            cost_usd=budget.cost_usd,
            wall_s=wall_s,
            run_id=run.run_id,
            error=error,
            value=run.value if status == "completed" else None,
        )
        if status == "completed" and answer is not None:
            recorder.on_event(
                FinalAnswer(
                    run_id=run.run_id, depth=run.depth, iteration=run.iterations, answer=answer
                )
            )
        elif error is not None:
            recorder.on_event(
                RunError(run_id=run.run_id, depth=run.depth, status=status, error=error)
            )
        recorder.on_event(RunFinished(run_id=run.run_id, depth=run.depth, result=result.to_dict()))
        return result


def _failure(exc: Exception, run: Run) -> tuple[RunStatus, str]:
    """The status and error of a run ended by ``exc``."""
    if isinstance(exc, TimeoutError):
        return "timeout", f"timeout: {run.tree.limits.timeout_s:g} s wall clock used"
    if isinstance(exc, LimitExceeded):
        return "timeout" if exc.limit == "timeout" else "budget_exceeded", str(exc)
    if isinstance(exc, RlmxError):
        return "error", str(exc)
    log.error("run %s failed", run.run_id, exc_info=exc)
    return "error", f"{type(exc).__name__}: {exc}"


@dataclass(frozen=True, slots=True)
class ChildJob:
    """A nested run as it travels to another process (:mod:`rlmx.executors`): its models by
    spec, its level (the sandbox of the same mode) and its context by value or by path. Where it
    lands it runs in an engine of its own, with a budget that enforces its lease and events
    that go down its line to the driver's recorder; its own nested runs run there too."""

    query: str
    context: Travelling
    depth: int
    parent: str
    root: str
    sub: str
    named: tuple[tuple[str, str], ...]
    limits: Limits
    level: Level
    options: ContextOptions

    async def run(self, link: NestedLink, lease: object) -> Outcome:
        assert isinstance(lease, Lent)
        # The tree's clock went on while the task waited to start (clocks of a cluster agree).
        waited = max(0.0, time.time() - lease.at)
        budget = Budget(
            self.limits,
            lease=replace(lease.lease, elapsed_s=lease.lease.elapsed_s + waited),
            refill=refill_through(link),
        )
        root = link.client(self.root)
        models = Models(
            root=root,
            sub=root if self.sub == self.root else link.client(self.sub),
            named={name: link.client(spec) for name, spec in self.named},
        )
        engine = Engine(
            models=models,
            limits=self.limits,
            level=self.level,
            recorder=Forwarding(link),
            store=LocalStore(self.options),
        )
        result = await engine.run_child(
            self.query, self.context.open(), budget=budget, depth=self.depth, parent=self.parent
        )
        return Outcome(result, budget.spending())
