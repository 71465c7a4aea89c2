"""What the MCP tools do, apart from the protocol: run a question over a context, read the
run store. Every run is recorded in the store (source ``mcp``); every refusal is a
:class:`~rlmx.errors.UsageError` whose one-line message the client's model reads."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any, cast

from anyio import to_thread

from rlmx.context import ContextInput
from rlmx.errors import UsageError
from rlmx.mcp.config import McpConfig
from rlmx.mcp.shape import events_reply, run_reply, summary_brief, summary_full
from rlmx.providers.base import LLMClient
from rlmx.providers.defaults import choose_models
from rlmx.providers.registry import resolve_model
from rlmx.rlm import RLM
from rlmx.sandbox.base import SandboxFactory
from rlmx.sandbox.launch import Mode
from rlmx.sandbox.process import sandbox_factory
from rlmx.server.contexts import ContextBlobs, gather_context
from rlmx.server.errors import ApiError
from rlmx.trajectory.contexts import ContextTable
from rlmx.trajectory.sqlite import SqliteRecorder
from rlmx.trajectory.store import RunStore
from rlmx.trajectory.summary import RunSummary

SOURCE = "mcp"
MAX_LIST = 100
MAX_EVENTS = 200
NO_ROOTS = (
    "this server reads no files: pass the context as text, or restart it with "
    "--allow-path DIR to let it read files under DIR"
)


class McpService:
    """The tools' work over one store, with the models resolved once (see :meth:`open`).

    At most ``config.max_runs`` runs go at once; more wait their turn.
    """

    def __init__(
        self,
        config: McpConfig,
        *,
        store: RunStore,
        root: LLMClient,
        sub: LLMClient,
        sandbox: SandboxFactory | None = None,
        note: str | None = None,
    ) -> None:
        self.config = config
        self.store = store
        self.root = root
        self.sub = sub
        self.note = note
        self._sandbox = sandbox or sandbox_factory(cast(Mode, config.sandbox))
        self._recorder = SqliteRecorder(store, source=SOURCE)
        self.slots = asyncio.Semaphore(config.max_runs)
        self._blobs = ContextBlobs(
            config.database.parent / "contexts",
            ContextTable(store.database),
            max_bytes=config.max_text_chars,
        )

    @classmethod
    def open(cls, config: McpConfig) -> McpService:
        """The service with ``config``'s models resolved and its store opened."""
        choice = choose_models(config.model, config.sub_model, settings=config.settings)
        root = resolve_model(choice.root, settings=config.settings, base_url=config.base_url)
        sub = (
            root
            if choice.sub == choice.root
            else resolve_model(choice.sub, settings=config.settings, base_url=config.base_url)
        )
        config.database.parent.mkdir(parents=True, exist_ok=True)
        return cls(config, store=RunStore(config.database), root=root, sub=sub, note=choice.note)

    async def aclose(self) -> None:
        for client in {id(c): c for c in (self.root, self.sub)}.values():
            await client.aclose()
        self.store.close()

    def rlm(self, *, max_iterations: int | None, timeout_s: float | None) -> RLM:
        """An RLM on the service's models, recorder and sandbox, with a call's limits."""
        return RLM(
            model=self.root,
            sub_model=self.sub,
            limits=self.config.run_limits(max_iterations, timeout_s),
            recorder=self._recorder,
            sandbox=self._sandbox,
            settings=self.config.settings,
        )

    # Contexts --------------------------------------------------------------------------------

    async def open_context(
        self, path: str | None, text: str | None
    ) -> tuple[ContextInput, tuple[str, ...]]:
        """The context a call names (a path under the allowed roots, inline text, or both),
        and the notes on opening it; a refusal is a UsageError saying what to pass instead."""
        if path is None and text is None:
            raise UsageError(
                "no context given: pass path (a file or folder under the allowed roots) or text"
            )
        if path is not None and not self.config.allowed_roots:
            raise UsageError(NO_ROOTS)
        if text is not None and len(text) > self.config.max_text_chars:
            raise UsageError(
                f"the text is {len(text):,} characters, above this server's limit of "
                f"{self.config.max_text_chars:,}: save it under an allowed root and pass path"
            )
        paths = [] if path is None else [path]
        try:
            context, notes = await to_thread.run_sync(self._gather, paths, text)
        except ApiError as exc:
            if exc.status == 403:  # outside the roots: say which they are
                roots = ", ".join(str(r) for r in self.config.allowed_roots)
                raise UsageError(f"{exc.message}; this server reads files under {roots}") from None
            raise UsageError(exc.message) from None
        return context, tuple(notes)

    def _gather(self, paths: list[str], text: str | None) -> tuple[ContextInput, list[str]]:
        roots = self.config.allowed_roots
        return gather_context(self._blobs, roots, context_ids=(), paths=paths, text=text)

    # Runs ------------------------------------------------------------------------------------

    async def ask(
        self,
        question: str,
        *,
        path: str | None = None,
        text: str | None = None,
        max_iterations: int | None = None,
        timeout_s: float | None = None,
    ) -> dict[str, Any]:
        """Answer ``question`` over the context, recorded in the store as one run."""
        if not question.strip():
            raise UsageError("the question is empty")
        rlm = self.rlm(max_iterations=max_iterations, timeout_s=timeout_s)
        context, notes = await self.open_context(path, text)
        run_id = uuid.uuid4().hex[:12]
        try:
            async with self.slots:
                result = await rlm.arun(question, context, run_id=run_id)
        except asyncio.CancelledError:
            await to_thread.run_sync(
                self.store.mark_interrupted, run_id, "the MCP client cancelled the call"
            )
            raise
        return run_reply(result, limit=self.config.result_chars, notes=notes)

    # The run store ---------------------------------------------------------------------------

    async def list_runs(
        self, *, limit: int = 20, status: str | None = None, search: str = ""
    ) -> dict[str, Any]:
        if not 1 <= limit <= MAX_LIST:
            raise UsageError(f"limit must be between 1 and {MAX_LIST}, got {limit}")

        def read() -> list[RunSummary]:
            self.store.reap()  # runs whose process died are shown as interrupted
            return self.store.list_runs(limit=limit, status=status or None, search=search)

        runs = await to_thread.run_sync(read)
        return {"runs": [summary_brief(r) for r in runs], "count": len(runs)}

    async def get_run(self, run_id: str, *, offset: int = 0) -> dict[str, Any]:
        if offset < 0:
            raise UsageError(f"offset must be 0 or more, got {offset}")
        summary = await to_thread.run_sync(self._summary, run_id)
        return summary_full(summary, offset=offset, limit=self.config.result_chars)

    async def run_events(self, run_id: str, *, after: int = -1, limit: int = 50) -> dict[str, Any]:
        if not 1 <= limit <= MAX_EVENTS:
            raise UsageError(f"limit must be between 1 and {MAX_EVENTS}, got {limit}")

        def read() -> tuple[RunSummary, list[tuple[int, str]]]:
            summary = self._summary(run_id)
            return summary, self.store.events(summary.id, after=after, limit=limit + 1)

        summary, rows = await to_thread.run_sync(read)
        reply = events_reply(
            rows[:limit], budget=self.config.result_chars * 2, more_in_store=len(rows) > limit
        )
        return {"run_id": summary.id, "status": summary.status, **reply}

    def _summary(self, prefix: str) -> RunSummary:
        """The run whose id is or starts with ``prefix`` (blocking: call in a thread)."""
        self.store.reap()
        try:
            run_id = self.store.resolve_id(prefix) if prefix and len(prefix) <= 64 else None
        except ValueError as exc:
            raise UsageError(str(exc)) from None
        summary = None if run_id is None else self.store.get_run(run_id)
        if summary is None:
            raise UsageError(f"no run {prefix!r} in the store: list_runs shows the runs there")
        return summary
