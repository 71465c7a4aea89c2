"""rlmx as an MCP server (``rlmx mcp``) for coding agents: one-shot questions, sessions, and
the run store, over stdio or streamable HTTP. Needs the ``mcp`` extra
(``pip install 'rlmx[mcp]'``).

The names below load on first use, so that :mod:`rlmx.mcp.config` imports without the extra.
Submodules never import from this package.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rlmx.mcp.config import McpConfig
    from rlmx.mcp.server import build_server
    from rlmx.mcp.service import McpService
    from rlmx.mcp.serving import serve_http, serve_stdio
    from rlmx.mcp.sessions import SessionRegistry

__all__ = [
    "McpConfig",
    "McpService",
    "SessionRegistry",
    "build_server",
    "serve_http",
    "serve_stdio",
]

_HOMES = {
    "McpConfig": "rlmx.mcp.config",
    "McpService": "rlmx.mcp.service",
    "SessionRegistry": "rlmx.mcp.sessions",
    "build_server": "rlmx.mcp.server",
    "serve_http": "rlmx.mcp.serving",
    "serve_stdio": "rlmx.mcp.serving",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
