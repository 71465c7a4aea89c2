"""The Python API: ``RLM(model=..., sub_model=..., limits=...).run(query, context)``."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any, Literal

from rlmx.config import Assists, Limits, Settings
from rlmx.context import ContextInput, ContextOptions, LocalStore
from rlmx.dsl.session import DslLevel
from rlmx.engine.answers import AnswerShape, shape_of
from rlmx.engine.base import Level
from rlmx.engine.cache import OnlyFor, SubCallCache
from rlmx.engine.code_level import CodeLevel
from rlmx.engine.engine import Engine
from rlmx.engine.tree import Models
from rlmx.errors import ConfigError
from rlmx.executors.base import Executor
from rlmx.executors.local import LocalExecutor
from rlmx.providers.base import LLMClient
from rlmx.providers.defaults import choose_models
from rlmx.providers.registry import resolve_model
from rlmx.sandbox.base import SandboxFactory
from rlmx.sandbox.process import sandbox_factory
from rlmx.sessions.opening import open_session
from rlmx.sessions.session import Session, SessionPolicy
from rlmx.trajectory.base import NullRecorder, Recorder
from rlmx.trajectory.cache import SqliteCache
from rlmx.trajectory.database import default_db_path
from rlmx.trajectory.sessions import SessionTable
from rlmx.trajectory.store import RunStore, open_store
from rlmx.types import RunResult

LevelName = Literal["code", "dsl"]
LEVELS: tuple[LevelName, ...] = ("code", "dsl")
ExecutorName = Literal["local", "ray"]
EXECUTORS: tuple[ExecutorName, ...] = ("local", "ray")


class RLM:
    """A Recursive Language Model.

    ``model`` and ``sub_model`` are clients or ``provider:model`` spec strings; with neither
    given and no API key configured, the embedded local models are used. Model code runs in a
    confined worker process unless ``sandbox`` says otherwise (see ``sandbox_factory``).
    ``level="dsl"`` runs the DSL instead: the root model sends one JSON command a turn and
    no model-written code runs (see :mod:`rlmx.dsl`). ``context_options`` sets how contexts given
    as values are held (see :class:`~rlmx.context.ContextOptions`); a context opened from paths
    (:func:`rlmx.context.sources.from_file` and friends) carries its own.
    ``assists`` switches the engine's help for small root models (:class:`~rlmx.config.Assists`:
    all on by default; capable models never get it).
    ``cache`` keeps greedy sub-model answers to give them again without a call: None (the
    default) keeps those of the embedded ``local:`` models in the run store
    (``$RLMX_DB``, else ``$RLMX_HOME/rlmx.db``); True keeps those of every model there; False
    keeps none; a :class:`~rlmx.engine.cache.SubCallCache` is used as given, for every model.
    ``executor`` runs the sub-model calls: ``"local"`` (the default: in this process),
    ``"ray"`` (a :class:`~rlmx.executors.ray.RayExecutor` joining ``RAY_ADDRESS`` or starting a
    local Ray; needs ``rlmx[ray]``), or an :class:`~rlmx.executors.base.Executor` as given.

    Specs are resolved once, here, so the engine only ever sees clients.
    """

    def __init__(
        self,
        *,
        model: str | LLMClient | None = None,
        sub_model: str | LLMClient | None = None,
        limits: Limits | None = None,
        recorder: Recorder | None = None,
        sandbox: SandboxFactory | None = None,
        models: Mapping[str, str | LLMClient] | None = None,
        settings: Settings | None = None,
        base_url: str | None = None,
        level: LevelName = "code",
        context_options: ContextOptions | None = None,
        assists: Assists | None = None,
        cache: SubCallCache | bool | None = None,
        executor: Executor | ExecutorName | None = None,
    ) -> None:
        settings = settings or Settings()
        self.executor, self._own_executor = _executor(executor, base_url)
        if model is None:
            choice = choose_models(
                None, sub_model if isinstance(sub_model, str) else None, settings=settings
            )
            model = choice.root
            sub_model = sub_model or choice.sub

        def client(m: str | LLMClient) -> LLMClient:
            return (
                resolve_model(m, settings=settings, base_url=base_url) if isinstance(m, str) else m
            )

        root = client(model)
        sub = root if sub_model is None or sub_model == root.spec else client(sub_model)
        named = {name: client(m) for name, m in (models or {}).items()}
        self.models = Models(root=root, sub=sub, named=named)
        self.limits = limits or Limits()
        self._level_name = level
        self._sandbox = sandbox or sandbox_factory("default")
        self._assists = assists
        self._recorder = recorder or NullRecorder()
        self._store = LocalStore(context_options)
        self._settings = settings
        self.cache, self._own_cache = _subcall_cache(cache, self.models, settings)
        self._engine = Engine(
            models=self.models,
            limits=self.limits,
            level=_level(level, self._sandbox, assists),
            recorder=self._recorder,
            store=self._store,
            cache=self.cache,
            executor=self.executor,
        )

    async def arun(
        self,
        query: str,
        context: ContextInput,
        *,
        run_id: str | None = None,
        output: Any = None,
    ) -> RunResult:
        """:meth:`run` from async code."""
        return await self._engine.run(query, context, run_id=run_id, shape=self._shape(output))

    def run(
        self,
        query: str,
        context: ContextInput,
        *,
        run_id: str | None = None,
        output: Any = None,
    ) -> RunResult:
        """Run to the end and return the result; never raises for a failed run (see ``status``).

        ``output`` asks for a typed answer: a pydantic model (or any type pydantic validates)
        or a JSON schema (a dict). The answer is validated, an invalid one gets one corrective
        turn, and ``result.value`` holds the parsed value; a second invalid answer ends the run
        with status ``error``, never with an unvalidated value."""
        return asyncio.run(self.arun(query, context, run_id=run_id, output=output))

    def _shape(self, output: Any) -> AnswerShape | None:
        if output is None:
            return None
        if self._level_name != "code":
            raise ConfigError("typed answers (output=) are read from FINAL: use level='code'")
        try:
            return shape_of(output)
        except ValueError as exc:
            raise ConfigError(f"output= is not a usable schema or type: {exc}") from None

    def session(
        self,
        context: ContextInput,
        *,
        name: str | None = None,
        store: RunStore | None = None,
        policy: SessionPolicy | None = None,
    ) -> Session:
        """Several questions over ``context`` with one REPL whose variables carry over (see
        :mod:`rlmx.sessions`). A ``name`` makes it durable: it is kept in the run store
        (``store``, else the default one) and continued by the next ``session`` of that name
        over the same context, in this process or another."""
        if self._level_name != "code":
            raise ConfigError("sessions keep a Python REPL: use level='code'")
        table = None
        if name is not None:
            store = store or open_store(settings=self._settings)
            table = SessionTable(store.database)
        return open_session(
            context,
            models=self.models,
            limits=self.limits,
            recorder=self._recorder,
            store=self._store,
            sandbox=self._sandbox,
            assists=self._assists,
            name=name,
            table=table,
            policy=policy,
            cache=self.cache,
            executor=self.executor,
        )

    async def aclose(self) -> None:
        clients = {
            id(c): c for c in (self.models.root, self.models.sub, *self.models.named.values())
        }
        for client in clients.values():
            await client.aclose()
        if self._own_cache is not None:
            self._own_cache.close()
        if self._own_executor:
            await self.executor.aclose()


def _executor(
    executor: Executor | ExecutorName | None, base_url: str | None
) -> tuple[Executor, bool]:
    """The executor ``executor=`` names, and whether this RLM made it (and so closes it)."""
    if executor is None or executor == "local":
        return LocalExecutor(), True
    if executor == "ray":
        from rlmx.executors.ray import RayExecutor

        return RayExecutor(base_url=base_url), True
    if isinstance(executor, str):
        raise ConfigError(f"unknown executor {executor!r}: use one of {', '.join(EXECUTORS)}")
    return executor, False


def _subcall_cache(
    cache: SubCallCache | bool | None, models: Models, settings: Settings
) -> tuple[SubCallCache | None, SqliteCache | None]:
    """The cache ``cache=`` asks for, and the store this RLM opened for it (to close)."""
    if cache is False:
        return None, None
    if cache is None or cache is True:
        store = SqliteCache(default_db_path(settings))
        if cache is True:
            return store, store
        clients = (models.root, models.sub, *models.named.values())
        embedded = {c.spec for c in clients if c.spec.startswith("local:")}
        return (OnlyFor(store, embedded), store) if embedded else (None, None)
    return cache, None


def _level(name: LevelName, sandbox: SandboxFactory, assists: Assists | None) -> Level:
    """The level named by ``level=``: the root model's code in ``sandbox``, or the DSL."""
    if name == "code":
        return CodeLevel(sandbox_factory=sandbox, assists=assists)
    if name == "dsl":
        return DslLevel(assists=assists)
    raise ValueError(f"unknown level {name!r}: use one of {LEVELS}")
