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

from rlmx.config import Limits
from rlmx.context import ContextInput, LocalStore
from rlmx.engine.answers import AnswerShape
from rlmx.engine.base import Ending, Level
from rlmx.engine.budget import Budget
from rlmx.engine.cache import SubCallCache
from rlmx.engine.run import Run
from rlmx.engine.subcalls import SubCallBridge, SubCallScope
from rlmx.engine.tree import Models, Tree
from rlmx.errors import LimitExceeded, RlmxError
from rlmx.executors.base import Executor
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
        tree = Tree(
            models=self._models,
            limits=self._limits,
            budget=Budget(self._limits),
            recorder=self._recorder,
            semaphore=asyncio.Semaphore(self._limits.concurrency),
            cache=self._cache,
            executor=self._executor,
        )
        run_id = run_id or uuid.uuid4().hex[:12]
        started = time.perf_counter()
        run = await self._start(tree, run_id, query, context, depth=0, parent=None)
        run.preamble, run.shape = preamble, shape
        return await self._complete(run, started)

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
            return await self._nested(tree, q, ctx, depth=d, parent=parent_id)

        bridge = SubCallBridge(
            tree=tree,
            scope=SubCallScope(run_id=run_id, depth=depth),
            loop=asyncio.get_running_loop(),
            nested=nested,
        )
        return Run(tree, run_id, depth, query, opened, bridge)

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
