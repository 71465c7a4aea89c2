"""Runs started through the service: each an asyncio task, recorded to the store as it goes."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

from anyio import to_thread

from rlmx.config import Limits
from rlmx.context import Context, ContextInput
from rlmx.engine.tree import Models
from rlmx.errors import RlmxError
from rlmx.executors.base import Executor
from rlmx.executors.local import LocalExecutor
from rlmx.local.models import find_model
from rlmx.providers.base import LLMClient
from rlmx.providers.registry import split_spec
from rlmx.rlm import RLM
from rlmx.sandbox.base import SandboxFactory
from rlmx.server.config import ServerConfig
from rlmx.server.contexts import resolve_allowed
from rlmx.server.errors import ApiError
from rlmx.server.hub import Hub
from rlmx.trajectory.events import RunError, RunFinished
from rlmx.trajectory.sqlite import SqliteRecorder
from rlmx.trajectory.store import RunStore
from rlmx.types import RunResult

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class RunSpec:
    query: str
    context: ContextInput
    model: str | None
    sub_model: str | None
    limits: Limits
    source: str
    output: dict[str, Any] | None = None  # a JSON schema the answer must match


@dataclass(frozen=True, slots=True)
class RunRow:
    """What a new run's row in the store says before its own events do."""

    query: str
    source: str
    models: Models
    context: dict[str, Any]
    limits: Limits


# A run's work, given its id (the run's task awaits it); what follows its end.
Job = Callable[[str], Awaitable[RunResult]]
After = Callable[[str], Awaitable[None]]


class RunManager:
    """Starts, tracks and cancels runs; at most ``max_active_runs`` go at once."""

    def __init__(
        self,
        *,
        store: RunStore,
        hub: Hub,
        config: ServerConfig,
        sandbox: SandboxFactory | None,
        executor: Executor | None = None,
    ) -> None:
        self.store = store
        self.hub = hub
        self.config = config
        self._sandbox = sandbox
        # Shared by every run and session of the server; closed by the server, not by them.
        self.executor: Executor = executor or LocalExecutor()
        self._slots = asyncio.Semaphore(config.max_active_runs)
        self._tasks: dict[str, asyncio.Task[RunResult | None]] = {}
        self._cancel_reasons: dict[str, str] = {}
        self._starting = 0

    @property
    def active(self) -> int:
        return len(self._tasks)

    def is_live(self, run_id: str) -> bool:
        return run_id in self._tasks

    def check_spec(self, spec: str | None, param: str) -> str | None:
        """A client's model spec, with the files it names (``scripted:``, and ``local:`` other
        than an embedded model) held to the allowed roots like any server-side path: a file
        outside them is refused with one answer, whether it exists or not."""
        if spec is None:
            return None
        try:
            provider, model = split_spec(spec)
        except RlmxError as exc:
            raise ApiError(422, str(exc), param=param) from None
        if provider == "pool" and spec not in (self.config.model, self.config.sub_model):
            raise ApiError(
                422,
                "endpoint pools are named by the server (rlmx serve --model/--sub-model), "
                "not by its clients",
                param=param,
            )
        if provider == "scripted":
            path = resolve_allowed(model, self.config.allowed_roots, param=param)
            return f"scripted:{path}"
        if provider == "local" and find_model(model) is None:
            if not model.lower().endswith(".gguf"):
                raise ApiError(
                    422,
                    f"unknown local model {model!r}: name an embedded model (see rlmx models) "
                    "or a .gguf file under the allowed roots",
                    param=param,
                )
            return f"local:{resolve_allowed(model, self.config.allowed_roots, param=param)}"
        return spec

    @property
    def slot(self) -> asyncio.Semaphore:
        """Held by a run while it goes: at most ``max_active_runs`` at once."""
        return self._slots

    def recorder(self, source: str) -> SqliteRecorder:
        """A recorder into the store whose events reach the live streams."""
        return SqliteRecorder(self.store, source=source, listener=self.hub.listener)

    async def start(self, spec: RunSpec) -> str:
        """Queue a run and return its id once its row is in the store."""
        recorder = self.recorder(spec.source)
        rlm = self.build(spec.model, spec.sub_model, spec.limits, recorder)

        async def job(run_id: str) -> RunResult:
            async with self._slots:
                return await rlm.arun(spec.query, spec.context, run_id=run_id, output=spec.output)

        async def after(run_id: str) -> None:
            await rlm.aclose()

        row = RunRow(spec.query, spec.source, rlm.models, _shape(spec.context), spec.limits)
        return await self.launch(row, job, recorder, after=after)

    async def launch(
        self, row: RunRow, job: Job, recorder: SqliteRecorder, *, after: After | None = None
    ) -> str:
        """Write the run's row, then go on with ``job(run_id)`` in a task (which takes a
        :attr:`slot` itself); ``after(run_id)`` is awaited once it has ended, however."""
        cap = self.config.max_active_runs + self.config.max_queued_runs
        pending = len(self._tasks) + self._starting
        if pending >= cap:
            raise ApiError(429, f"{pending} runs are going or queued (the limit): try again later")
        run_id = uuid.uuid4().hex[:12]
        create = partial(
            self.store.create_run,
            run_id,
            query=row.query,
            source=row.source,
            root_model=row.models.root.spec,
            sub_model=row.models.sub.spec,
            context=row.context,
            limits=row.limits.to_dict(),
        )
        self._starting += 1  # holds its place in the queue while the row is written
        try:
            await to_thread.run_sync(create)
        finally:
            self._starting -= 1
        self.hub.open(run_id)
        task = asyncio.create_task(self._execute(run_id, job, recorder, after), name=run_id)
        self._tasks[run_id] = task
        return run_id

    def build(
        self, model: str | None, sub_model: str | None, limits: Limits, recorder: SqliteRecorder
    ) -> RLM:
        """An RLM over the client's model specs (checked already), else the server's."""
        root: str | LLMClient | None = model or self.config.model
        sub = sub_model or (self.config.sub_model if model is None else None)
        try:
            return RLM(
                model=root,
                sub_model=sub,
                limits=limits,
                recorder=recorder,
                sandbox=self._sandbox,
                settings=self.config.run_settings,
                executor=self.executor,
            )
        except RlmxError as exc:
            raise ApiError(422, str(exc), param="model") from None

    async def _execute(
        self, run_id: str, job: Job, recorder: SqliteRecorder, after: After | None
    ) -> RunResult | None:
        try:
            return await job(run_id)
        except asyncio.CancelledError:
            reason = self._cancel_reasons.pop(run_id, "cancelled")
            self._end(recorder, run_id, "cancelled", reason)
            return None
        except Exception as exc:  # the engine reports failures itself; this is a bug guard
            log.exception("run %s failed outside the engine", run_id)
            self._end(recorder, run_id, "error", f"{type(exc).__name__}: {exc}")
            return None
        finally:
            if after is not None:
                with contextlib.suppress(Exception):
                    await after(run_id)
            summary = self.store.get_run(run_id)
            if summary is not None and summary.active:
                self.store.mark_interrupted(run_id, "the run ended without a final event")
            self._tasks.pop(run_id, None)
            self.hub.close(run_id)

    def _end(self, recorder: SqliteRecorder, run_id: str, status: str, reason: str) -> None:
        summary = self.store.get_run(run_id)
        result: dict[str, Any] = {"answer": None, "status": status, "run_id": run_id}
        if summary is not None:
            total = {
                "prompt_tokens": summary.prompt_tokens,
                "completion_tokens": summary.completion_tokens,
                "total_tokens": summary.total_tokens,
            }
            result |= {
                "answer": summary.answer,
                "iterations": summary.iterations,
                "sub_calls": summary.sub_calls,
                "usage": {"total": total},
                "cost_usd": summary.cost_usd,
                "wall_s": round(summary.elapsed_s or 0.0, 3),
            }
        result["error"] = reason
        recorder.on_event(RunError(run_id=run_id, status=status, error=reason))
        recorder.on_event(RunFinished(run_id=run_id, result=result))

    def cancel(self, run_id: str, reason: str) -> bool:
        task = self._tasks.get(run_id)
        if task is None or task.done():
            return False
        self._cancel_reasons.setdefault(run_id, reason)
        task.cancel()
        return True

    async def wait(self, run_id: str, *, timeout: float | None = None) -> RunResult | None:
        """The run's result once it has ended (None if it was cancelled, or is not live here).
        After ``timeout`` seconds, ``TimeoutError``; the run goes on either way."""
        task = self._tasks.get(run_id)
        if task is None:
            return None
        return await asyncio.wait_for(asyncio.shield(task), timeout)

    async def shutdown(self) -> None:
        tasks = list(self._tasks.items())
        for run_id, task in tasks:
            self._cancel_reasons.setdefault(run_id, "the server stopped")
            task.cancel()
        if tasks:
            await asyncio.gather(*(t for _, t in tasks), return_exceptions=True)


def make_executor(name: str) -> Executor:
    """The server's executor: ``local``, or ``ray`` (which needs ``rlmx[ray]``; it joins or
    starts its Ray when :func:`connect_executor` is called, at the server's start)."""
    if name == "ray":
        from rlmx.executors.ray import RayExecutor

        return RayExecutor()
    return LocalExecutor()


def connect_executor(executor: Executor) -> None:
    """Join or start the executor's cluster now (a few seconds), rather than in the first run."""
    connect = getattr(executor, "connect", None)
    if callable(connect):
        connect()


def _shape(context: ContextInput) -> dict[str, Any]:
    """A cheap description until the run's own ``run_started`` replaces it: a Context's handle
    (described already by :func:`~rlmx.server.contexts.gather_context`), or a value's size."""
    if isinstance(context, Context):
        return context.describe().to_dict()
    if isinstance(context, str):
        return {"kind": "str", "chars": len(context), "parts": 1}
    if isinstance(context, os.PathLike):
        return {"kind": "path", "name": os.fspath(context)}
    return {"kind": "list", "chars": sum(len(p) for p in context), "parts": len(context)}
