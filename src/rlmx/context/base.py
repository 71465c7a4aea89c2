"""The context seam: options, and the handle the root prompt shows instead of the data.

A context is content-addressed: its ``id`` is a sha256 (of a text's UTF-8 bytes or a file's
bytes; of the documents' own hashes for several; of the manifest of paths, sizes and times for
a directory, whose files are read on demand). The handle carries what the root prompt shows
instead of the data: the kind, the length, the line count and a head/tail preview.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from rlmx.errors import ContextError

ContextKind = Literal["text", "documents", "directory"]
# What the REPL's `context` is: a str, a LazyText, a list of str, a lazy sequence of documents
# (some read on demand), or a directory's files read on demand.
ContextForm = Literal["str", "lazy", "list", "documents", "directory"]
ContextValue = str | Sequence[str]

MB = 1 << 20


@dataclass(frozen=True, slots=True)
class ContextOptions:
    """How contexts are opened and read.

    ``max_str_bytes``: up to this size a text is a ``str`` in the REPL, beyond it a lazy text.
    ``cache_bytes``: the LRU cache of files read on demand. ``max_file_bytes``: files larger are
    left out of a directory. ``max_read_bytes``: total bytes a directory context may read from
    disk in one session (None: no limit). ``include``/``exclude``: gitignore-style globs for
    directories; hidden files and paths ignored by ``.gitignore`` or ``.git/info/exclude`` are
    left out unless ``hidden`` or ``gitignore=False``. ``jsonl_field``: the text field of a
    JSONL file of documents.
    """

    max_str_bytes: int = 256 * MB
    cache_bytes: int = 32 * MB
    max_file_bytes: int = 16 * MB
    max_read_bytes: int | None = 8192 * MB
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    hidden: bool = False
    gitignore: bool = True
    jsonl_field: str | None = None
    preview_chars: int = 300

    def __post_init__(self) -> None:
        for name in ("max_str_bytes", "cache_bytes", "max_file_bytes", "preview_chars"):
            if getattr(self, name) <= 0:
                raise ContextError(f"{name} must be positive, got {getattr(self, name)}")
        if self.max_read_bytes is not None and self.max_read_bytes <= 0:
            raise ContextError(f"max_read_bytes must be positive, got {self.max_read_bytes}")


@dataclass(frozen=True, slots=True)
class ContextHandle:
    """A context as the root prompt and the trajectory see it (never the data itself).

    ``chars`` and ``lines`` are None for a directory, whose files are not read until asked for.
    """

    id: str
    kind: ContextKind
    form: ContextForm
    chars: int | None
    lines: int | None
    bytes: int
    parts: int
    head: str
    tail: str = ""
    name: str | None = None
    replaced: int = 0
    files: tuple[str, ...] = field(default=())

    @property
    def sha256(self) -> str:
        return self.id

    def summary(self) -> str:
        """One line for the root prompt, e.g. ``a str of 3,227,580 chars, 66,033 lines``."""
        size = f"{self.chars or 0:,} chars, {self.lines or 0:,} lines"
        if self.form == "str":
            return f"a str of {size}"
        if self.form == "lazy":
            return (
                f"a LazyText of {size}, read from disk on demand (too large for a str: "
                "context[a:b] gives a str; search it with the functions below, not re)"
            )
        if self.form == "list":
            return f"a list of {self.parts:,} str (total {size})"
        if self.form == "documents":
            return (
                f"a sequence of {self.parts:,} documents (total {size}), read on demand: "
                "context[i] is document i"
            )
        where = f" under {self.name}" if self.name else ""
        return (
            f"a directory of {self.parts:,} text files ({human_size(self.bytes)}){where}, read on "
            "demand: context[i] is '# file: PATH' and the text of file i"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "form": self.form,
            "chars": self.chars,
            "lines": self.lines,
            "parts": self.parts,
            "bytes": self.bytes,
            "sha256": self.id,
            "head": self.head,
            "tail": self.tail,
            "name": self.name,
        }


def human_size(n: int) -> str:
    for unit, scale in (("GB", 1 << 30), ("MB", MB), ("KB", 1 << 10)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n:,} bytes"
