"""The MCP server: rlmx's tools on the official SDK's ``MCPServer``.

Each tool is a thin async function over :class:`~rlmx.mcp.service.McpService`; its parameters'
types and descriptions are the schema a client's model reads. A refusal (a path outside the
allowed roots, a limit above the server's cap) raises, so the client sees a tool error
(``is_error``) with one line saying what to do instead.
"""

from __future__ import annotations

from typing import Annotated, Any

from mcp.server.mcpserver import MCPServer
from pydantic import Field

from rlmx import __version__
from rlmx.mcp.service import McpService
from rlmx.mcp.sessions import SessionRegistry, add_session_tools
from rlmx.mcp.tooling import READ_ONLY, RUNS, refusing

INSTRUCTIONS = """\
rlmx answers questions over data far larger than your context window (a repository, a folder of
logs, a book) with a Recursive Language Model: the data stays in a sandboxed Python REPL that a
model reads with code and sub-model calls, so it never enters your context. Use `ask` for one
question over a file, a folder (read on demand) or text you pass; paths are relative to, or
inside, the folders this server was allowed to read. For follow-up questions over the same data,
`session_open` once, then `session_ask` (or `session_execute` to run Python in its REPL) as often
as needed, and `session_close`. Every run is recorded: `list_runs`,
`get_run` and `run_events` read past runs. Long texts in results are cut with a
'[... truncated: N more characters ...]' marker that says how to read the rest."""

Question = Annotated[str, Field(description="the question to answer about the context")]
PathArg = Annotated[
    str | None,
    Field(
        description="a file or a folder under the server's allowed roots (absolute, or "
        "relative to a root); a folder is read on demand, as a codebase"
    ),
]
TextArg = Annotated[
    str | None, Field(description="the context as text, when it is not a file the server can read")
]
Iterations = Annotated[
    int | None, Field(description="the most root-model turns (default and cap: the server's)")
]
Timeout = Annotated[
    float | None, Field(description="wall-clock limit in seconds (default and cap: the server's)")
]
RunId = Annotated[str, Field(description="a run id, or a unique prefix of one")]


def build_server(service: McpService, sessions: SessionRegistry) -> MCPServer[Any]:
    """The MCP server with rlmx's tools bound to ``service`` and ``sessions``."""
    server: MCPServer[Any] = MCPServer(
        "rlmx",
        title="rlmx: Recursive Language Models",
        instructions=INSTRUCTIONS,
        version=__version__,
        log_level="WARNING",
    )
    _add_ask(server, service)
    _add_run_tools(server, service)
    add_session_tools(server, sessions)
    return server


def _add_ask(server: MCPServer[Any], service: McpService) -> None:
    @server.tool(annotations=RUNS)
    async def ask(
        question: Question,
        path: PathArg = None,
        text: TextArg = None,
        max_iterations: Iterations = None,
        timeout_s: Timeout = None,
    ) -> dict[str, Any]:
        """Answer one question over a file, a folder or a text far larger than your context.

        Returns the answer, its status ('completed', or why it stopped: 'max_iterations',
        'timeout', 'error', ...), token usage, cost and the run id (for get_run and
        run_events). Pass path or text (or both: the text is then one more document)."""
        return await refusing(
            service.ask(
                question, path=path, text=text, max_iterations=max_iterations, timeout_s=timeout_s
            )
        )


def _add_run_tools(server: MCPServer[Any], service: McpService) -> None:
    @server.tool(annotations=READ_ONLY)
    async def list_runs(
        limit: Annotated[int, Field(description="how many runs, newest first (1-100)")] = 20,
        status: Annotated[
            str | None, Field(description="only runs with this status, e.g. completed")
        ] = None,
        search: Annotated[str, Field(description="only runs whose question contains this")] = "",
    ) -> dict[str, Any]:
        """List recorded runs (from any rlmx client: this server, rlmx run, rlmx serve), newest
        first, each with its id, status, question and a preview of its answer."""
        return await refusing(service.list_runs(limit=limit, status=status, search=search))

    @server.tool(annotations=READ_ONLY)
    async def get_run(
        run_id: RunId,
        offset: Annotated[int, Field(description="where to start reading a long answer")] = 0,
    ) -> dict[str, Any]:
        """One recorded run: status, answer (a window of it from offset, with next_offset when
        there is more), totals, models, limits and what its context was."""
        return await refusing(service.get_run(run_id, offset=offset))

    @server.tool(annotations=READ_ONLY)
    async def run_events(
        run_id: RunId,
        after: Annotated[int, Field(description="return events numbered above this")] = -1,
        limit: Annotated[int, Field(description="the most events to return (1-200)")] = 50,
    ) -> dict[str, Any]:
        """The steps of a recorded run in order: the root model's replies, the code cells and
        their output, sub-calls, errors, the final answer. Long fields are cut; pass
        next_after as after to read on."""
        return await refusing(service.run_events(run_id, after=after, limit=limit))
