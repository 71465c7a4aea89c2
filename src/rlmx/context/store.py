"""The context store: contexts by content address, and the one implementation, in this process.

The engine puts each run's context here (the same content gives the same :class:`Context`);
the protocol is the seam for a store that lives elsewhere.
"""

from __future__ import annotations

import os
import weakref
from typing import Protocol

from rlmx.context.base import ContextOptions, ContextValue
from rlmx.context.helpers import Helpers, Hit
from rlmx.context.opened import Context
from rlmx.context.sources import as_context
from rlmx.errors import ContextError


class ContextStore(Protocol):
    """Contexts by content address: put one, then read, measure, search or chunk it by id."""

    def put(self, value: ContextValue | Context | os.PathLike[str]) -> Context: ...

    def get(self, id: str) -> Context: ...

    def read(self, id: str, start: int, end: int, *, doc: int | str | None = None) -> str: ...

    def length(self, id: str, *, doc: int | str | None = None) -> int | None: ...

    def search(
        self, id: str, pattern: str, *, around: int = 200, limit: int = 100
    ) -> list[Hit]: ...

    def chunk(self, id: str, size: int, overlap: int = 0) -> list[str]: ...


class LocalStore:
    """Contexts by content address, in this process; a context lives while something holds it."""

    def __init__(self, options: ContextOptions | None = None) -> None:
        self.options = options or ContextOptions()
        self._by_id: weakref.WeakValueDictionary[str, Context] = weakref.WeakValueDictionary()

    def put(self, value: ContextValue | Context | os.PathLike[str]) -> Context:
        """Register a context (describing it if need be); the same content gives the same one."""
        context = as_context(value, self.options)
        handle = context.describe()
        existing = self._by_id.get(handle.id)
        if existing is not None and existing.kind == context.kind:
            return existing
        self._by_id[handle.id] = context
        return context

    def get(self, id: str) -> Context:
        context = self._by_id.get(id)
        if context is None:
            raise ContextError(f"no context with id {id[:16]}... in this store")
        return context

    def _helpers(self, id: str) -> Helpers:
        return Helpers(self.get(id).open_local()[1])

    def read(self, id: str, start: int, end: int, *, doc: int | str | None = None) -> str:
        return self._helpers(id).slice(start, end, doc=doc)

    def length(self, id: str, *, doc: int | str | None = None) -> int | None:
        if doc is None:
            return self.get(id).describe().chars
        corpus = self.get(id).open_local()[1]
        return len(corpus.text(corpus.index(doc)))

    def search(self, id: str, pattern: str, *, around: int = 200, limit: int = 100) -> list[Hit]:
        return list(self._helpers(id).grep(pattern, around=around, limit=limit))

    def chunk(self, id: str, size: int, overlap: int = 0) -> list[str]:
        return self._helpers(id).chunk(size, overlap)
