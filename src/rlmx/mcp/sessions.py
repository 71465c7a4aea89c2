"""Session tools: open a context once, then ask several questions (or run cells) in one REPL
whose variables carry over, and close it. Built on :meth:`rlmx.RLM.session`.

A session without a name lives as long as this server; one with a name is durable: it is kept
in the run store and continued by a later ``session_open`` of that name over the same context,
in this server or the next. At most ``max_sessions`` are open at once; one unused for
``IDLE_S`` is closed when another is opened.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass, field
from typing import Annotated, Any

from mcp.server.mcpserver import MCPServer
from pydantic import Field

from rlmx.errors import UsageError
from rlmx.mcp.service import McpService
from rlmx.mcp.shape import cell_reply, clip, run_reply
from rlmx.mcp.tooling import READ_ONLY, RUNS, refusing
from rlmx.sessions import Session

IDLE_S = 3600.0

SessionId = Annotated[str, Field(description="the session_id that session_open returned")]


@dataclass(slots=True)
class _Open:
    session: Session
    description: dict[str, Any]
    opened_at: float = field(default_factory=time.time)
    used_at: float = field(default_factory=time.monotonic)
    questions: int = 0


class SessionRegistry:
    """The sessions open in this server, by id."""

    def __init__(self, service: McpService, *, idle_s: float = IDLE_S) -> None:
        self.service = service
        self.idle_s = idle_s
        self._open: dict[str, _Open] = {}
        self._lock = asyncio.Lock()

    async def open(
        self,
        *,
        path: str | None,
        text: str | None,
        name: str | None,
        max_iterations: int | None,
        timeout_s: float | None,
    ) -> dict[str, Any]:
        rlm = self.service.rlm(max_iterations=max_iterations, timeout_s=timeout_s)
        context, notes = await self.service.open_context(path, text)
        async with self._lock:
            await self._sweep()
            session_id = name or uuid.uuid4().hex[:12]
            if session_id in self._open:
                raise UsageError(
                    f"session {session_id!r} is already open: use it, or session_close it first"
                )
            if len(self._open) >= self.service.config.max_sessions:
                raise UsageError(
                    f"{len(self._open)} sessions are open (this server's limit): "
                    "session_close one first (session_list shows them)"
                )
            session = rlm.session(context, name=name, store=self.service.store if name else None)
            description = session.context.describe().to_dict()
            self._open[session_id] = _Open(session, description)
        return {
            "session_id": session_id,
            "context": description,
            "earlier_questions": len(session.history),
            "notes": list(notes),
        }

    async def ask(self, session_id: str, question: str) -> dict[str, Any]:
        if not question.strip():
            raise UsageError("the question is empty")
        entry = self._get(session_id)
        async with self.service.slots:
            result = await entry.session.aask(question)
        entry.questions += 1
        entry.used_at = time.monotonic()
        reply = run_reply(result, limit=self.service.config.result_chars)
        return {"session_id": session_id, "question": len(entry.session.history), **reply}

    async def execute(self, session_id: str, code: str) -> dict[str, Any]:
        entry = self._get(session_id)
        cell = await entry.session.aexecute(code)
        entry.used_at = time.monotonic()
        return {
            "session_id": session_id,
            **cell_reply(cell, limit=self.service.config.result_chars),
        }

    async def close(self, session_id: str) -> dict[str, Any]:
        entry = self._get(session_id)
        self._open.pop(session_id, None)
        await entry.session.aclose()
        durable = entry.session.name is not None
        return {"session_id": session_id, "closed": True, "kept_in_store": durable}

    def listing(self) -> dict[str, Any]:
        now = time.monotonic()
        sessions = [
            {
                "session_id": sid,
                "durable": e.session.name is not None,
                "questions": len(e.session.history),
                "last_question": clip(e.session.history[-1].question, 200)
                if e.session.history
                else None,
                "idle_s": round(now - e.used_at, 1),
                "context": e.description,
            }
            for sid, e in self._open.items()
        ]
        return {"sessions": sessions, "count": len(sessions)}

    async def aclose(self) -> None:
        entries = list(self._open.values())
        self._open.clear()
        for entry in entries:
            await entry.session.aclose()

    def _get(self, session_id: str) -> _Open:
        entry = self._open.get(session_id)
        if entry is None:
            raise UsageError(
                f"no open session {session_id!r}: open one with session_open "
                "(session_list shows the open ones)"
            )
        return entry

    async def _sweep(self) -> None:
        """Close the sessions unused for ``idle_s``."""
        now = time.monotonic()
        for sid, entry in list(self._open.items()):
            if now - entry.used_at > self.idle_s:
                self._open.pop(sid, None)
                await entry.session.aclose()


def add_session_tools(server: MCPServer[Any], sessions: SessionRegistry) -> None:
    @server.tool(annotations=RUNS)
    async def session_open(
        path: Annotated[
            str | None, Field(description="a file or folder under the server's allowed roots")
        ] = None,
        text: Annotated[str | None, Field(description="the context as text")] = None,
        name: Annotated[
            str | None,
            Field(description="a name to keep the session in the run store and continue it later"),
        ] = None,
        max_iterations: Annotated[
            int | None, Field(description="root-model turns per question (cap: the server's)")
        ] = None,
        timeout_s: Annotated[
            float | None, Field(description="seconds per question (cap: the server's)")
        ] = None,
    ) -> dict[str, Any]:
        """Open a context for several questions: its REPL keeps the variables each question's
        code defines, and the model is told the earlier questions and answers. Returns the
        session_id for session_ask, session_execute and session_close."""
        return await refusing(
            sessions.open(
                path=path, text=text, name=name, max_iterations=max_iterations, timeout_s=timeout_s
            )
        )

    @server.tool(annotations=RUNS)
    async def session_ask(
        session_id: SessionId,
        question: Annotated[str, Field(description="the next question about the context")],
    ) -> dict[str, Any]:
        """Ask a question in an open session (a run of its own, recorded like ask's)."""
        return await refusing(sessions.ask(session_id, question))

    @server.tool(annotations=RUNS)
    async def session_execute(
        session_id: SessionId,
        code: Annotated[str, Field(description="Python to run in the session's REPL")],
    ) -> dict[str, Any]:
        """Run Python in the session's sandboxed REPL, where `context` and the variables of
        earlier questions are; returns its printed output (cut when long). No model is called."""
        return await refusing(sessions.execute(session_id, code))

    @server.tool(annotations=RUNS)
    async def session_close(session_id: SessionId) -> dict[str, Any]:
        """Close a session and stop its REPL (a named one stays in the run store)."""
        return await refusing(sessions.close(session_id))

    @server.tool(annotations=READ_ONLY)
    async def session_list() -> dict[str, Any]:
        """The sessions open in this server."""
        return sessions.listing()
