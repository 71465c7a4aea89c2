"""What every tool shares: refusals turned into tool errors, and the tools' hints."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import TypeVar

from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import ToolAnnotations

from rlmx.errors import RlmxError

T = TypeVar("T")

READ_ONLY = ToolAnnotations(read_only_hint=True, open_world_hint=False)
RUNS = ToolAnnotations(read_only_hint=False, destructive_hint=False, open_world_hint=False)


async def refusing(call: Awaitable[T]) -> T:
    """``call``'s result; an rlmx error becomes a tool error whose one-line message the
    client's model reads (the SDK keeps any other exception's text on the server)."""
    try:
        return await call
    except RlmxError as exc:
        raise ToolError(str(exc)) from None
