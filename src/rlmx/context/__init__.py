"""Contexts: texts, documents and directories of any size, and how the root model reaches them.

The data never enters the root prompt: a :class:`ContextHandle` (kind, size, lines, a head and
tail preview, a sha256 id) stands for it, and the REPL's helpers (``grep``, ``lines``,
``chunk``...; see :mod:`rlmx.context.helpers`) read it on demand.
"""

from os import PathLike

from rlmx.context.base import (
    ContextForm,
    ContextHandle,
    ContextKind,
    ContextOptions,
    ContextValue,
)
from rlmx.context.describe import ContextInfo, describe_context
from rlmx.context.opened import Context
from rlmx.context.sources import as_context
from rlmx.context.store import ContextStore, LocalStore

# What a run accepts as its context: a value, an opened Context, or a path to open.
ContextInput = ContextValue | Context | PathLike[str]

__all__ = [
    "Context",
    "ContextForm",
    "ContextHandle",
    "ContextInfo",
    "ContextInput",
    "ContextKind",
    "ContextOptions",
    "ContextStore",
    "ContextValue",
    "LocalStore",
    "as_context",
    "describe_context",
]
