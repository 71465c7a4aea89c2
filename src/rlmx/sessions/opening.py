"""Opening a session: its engine, its sandbox, and what the store kept of it."""

from __future__ import annotations

from rlmx.config import Assists, Limits
from rlmx.context import ContextInput, LocalStore
from rlmx.engine.cache import SubCallCache
from rlmx.engine.code_level import CodeLevel
from rlmx.engine.engine import Engine
from rlmx.engine.tree import Models
from rlmx.errors import ConfigError
from rlmx.executors.base import Executor
from rlmx.executors.scans import scans_for
from rlmx.sandbox.base import SandboxFactory
from rlmx.sandbox.scan_host import with_scans
from rlmx.sessions.relay import CellRecord
from rlmx.sessions.sandbox import SessionSandbox, SessionSandboxes
from rlmx.sessions.session import Exchange, Session, SessionPolicy, restore_history
from rlmx.trajectory.base import Recorder
from rlmx.trajectory.sessions import SessionTable


def open_session(
    context: ContextInput,
    *,
    models: Models,
    limits: Limits,
    recorder: Recorder,
    store: LocalStore,
    sandbox: SandboxFactory,
    assists: Assists | None = None,
    name: str | None = None,
    table: SessionTable | None = None,
    policy: SessionPolicy | None = None,
    cache: SubCallCache | None = None,
    executor: Executor | None = None,
) -> Session:
    """A session over ``context``; a ``name`` found in ``table`` continues that session, which
    must have been opened over the same content."""
    opened = store.put(context)
    history: list[Exchange] = []
    records: list[CellRecord] = []
    if name is not None and table is not None:
        stored = table.load(name)
        if stored is not None:
            context_id = opened.describe().id
            if stored.context_id != context_id:
                raise ConfigError(
                    f"session {name!r} was opened over another context "
                    f"({stored.context_id[:12]}, not {context_id[:12]}); give it the same "
                    f"context, or delete it first (rlmx sessions delete {name})"
                )
            history, records = restore_history(stored.state)
    # The session's worker outlives each run's host functions: it gets the scans of the
    # executor (for a directory or files context on a cluster) from here.
    scans = None if executor is None else scans_for(executor)
    shared = SessionSandbox(with_scans(sandbox, scans), records)
    engine = Engine(
        models=models,
        limits=limits,
        level=CodeLevel(sandbox_factory=SessionSandboxes(shared, sandbox), assists=assists),
        recorder=recorder,
        store=store,
        cache=cache,
        executor=executor,
    )
    return Session(
        engine=engine,
        context=opened,
        sandbox=shared,
        name=name,
        table=table,
        history=history,
        policy=policy,
    )
