"""``Context``: a context ready for a run.

A :class:`Context` knows how to describe itself (its :class:`ContextHandle`, computed once, in
one pass over its files for texts; see :mod:`rlmx.context.scan`), how a REPL reads it (a JSON
description for the sandbox worker, or a corpus built here for the in-process REPL and the
DSL), and what a confined worker must be allowed to read: the files themselves
(one Landlock rule per file, never a whole directory, so ignored and excluded files stay out of
reach), or a file descriptor of an unnamed spool file.
"""

from __future__ import annotations

import hashlib
import threading
import weakref
from collections.abc import Callable, Sequence
from typing import Any

from rlmx.context.base import ContextHandle, ContextOptions, ContextValue
from rlmx.context.corpus import Corpus
from rlmx.context.files import Spool
from rlmx.context.spec import open_spec
from rlmx.context.textio import ContextChanged
from rlmx.errors import ContextError

Describer = Callable[["Context"], ContextHandle]


class Context:
    """A context: in memory (``value``), or documents in files described by ``docs`` (the JSON
    of :mod:`rlmx.context.spec`). Build one with :mod:`rlmx.context.sources`."""

    def __init__(
        self,
        *,
        kind: str,
        describer: Describer,
        options: ContextOptions,
        value: ContextValue | None = None,
        docs: Sequence[dict[str, Any]] = (),
        root: str | None = None,
        notes: Sequence[str] = (),
        spool: Spool | None = None,
        bind_paths: Sequence[str] = (),
    ) -> None:
        self.kind, self.options, self.value, self.root = kind, options, value, root
        self.docs = [dict(d) for d in docs]
        self.notes = list(notes)
        self._describer = describer
        self._handle: ContextHandle | None = None
        self._lock = threading.RLock()
        self._spool = spool
        self._bind_paths = list(bind_paths)
        self._local: tuple[object, Corpus] | None = None
        if spool is not None:
            weakref.finalize(self, spool.close)

    @property
    def in_memory(self) -> bool:
        return self.value is not None

    def describe(self) -> ContextHandle:
        """The handle, computed on first use (a pass over a text's files). Thread-safe."""
        with self._lock:
            if self._handle is None:
                try:
                    self._handle = self._describer(self)
                except ContextChanged as exc:
                    raise ContextError(str(exc)) from None
                except OSError as exc:
                    raise ContextError(f"cannot read the context: {exc}") from None
            return self._handle

    @property
    def handle(self) -> ContextHandle:
        return self.describe()

    # For REPLs -----------------------------------------------------------------------------

    def spec(self) -> dict[str, Any]:
        """The JSON a worker builds its corpus from (a context in files only)."""
        if self.in_memory:
            raise ValueError("an in-memory context travels as a context file, not a spec")
        self.describe()  # lazy documents need their index
        options = self.options
        return {
            "form": "files",
            "kind": self.kind,
            "root": self.root,
            "cache_bytes": options.cache_bytes,
            "max_read_bytes": options.max_read_bytes if self.kind == "directory" else None,
            "docs": self.docs,
        }

    def read_paths(self) -> list[str]:
        """The files a confined worker must be able to read, one by one."""
        return [d["path"] for d in self.docs if d.get("path")]

    def bind_paths(self) -> list[str]:
        """What bubblewrap must bind read-only: the directory, or each file."""
        return self._bind_paths or self.read_paths()

    @property
    def spool_fd(self) -> int | None:
        """The read-only descriptor of the spool file holding the data, while it is open."""
        return None if self._spool is None else self._spool.fd

    def fds(self) -> list[int]:
        return [self.spool_fd] if self.spool_fd is not None else []

    def open_local(self) -> tuple[object, Corpus]:
        """The REPL's ``context`` value and corpus in this process (built once)."""
        with self._lock:
            if self._local is None:
                if self.value is not None:
                    self._local = self.value, Corpus.from_value(self.value)
                else:
                    try:
                        self._local = open_spec(self.spec())
                    except ContextChanged as exc:
                        raise ContextError(str(exc)) from None
            return self._local

    def materialize(self, max_chars: int) -> ContextValue:
        """The whole context as a str or list of str, if at most ``max_chars``."""
        if self.value is not None:
            return self.value
        handle = self.describe()
        if handle.chars is None:
            raise ValueError(
                "a directory cannot be sent whole to a sub-model; pass read_file(path) or a chunk"
            )
        if handle.chars > max_chars:
            raise ValueError(
                f"this context ({handle.chars:,} chars) is too large to send whole; pass a slice"
            )
        _, corpus = self.open_local()
        texts = [corpus.text(i) for i in range(len(corpus.docs))]
        parts = [t if isinstance(t, str) else t[:] for t in texts]
        return parts[0] if self.kind == "text" else parts

    def close(self) -> None:
        spool, self._spool = self._spool, None
        if spool is not None:
            spool.close()


def manifest_id(lines: Sequence[str]) -> str:
    hasher = hashlib.sha256()
    for line in lines:
        hasher.update(line.encode("utf-8", "surrogatepass") + b"\n")
    return hasher.hexdigest()
