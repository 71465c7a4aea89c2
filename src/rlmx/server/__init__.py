"""The HTTP service: a JSON API for runs and contexts, live event streams, an
OpenAI-compatible endpoint, and the web viewer. Needs the ``server`` extra
(``pip install 'rlmx[server]'``).

The names below load on first use, so that ``rlmx.server.config`` (which the CLI reads for its
defaults) imports without the extra. Submodules never import from this package.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rlmx.server.app import create_app
    from rlmx.server.config import ServerConfig, check_bind
    from rlmx.server.handle import ServerHandle, serve

__all__ = ["ServerConfig", "ServerHandle", "check_bind", "create_app", "serve"]

_HOMES = {
    "ServerConfig": "rlmx.server.config",
    "ServerHandle": "rlmx.server.handle",
    "check_bind": "rlmx.server.config",
    "create_app": "rlmx.server.app",
    "serve": "rlmx.server.handle",
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
