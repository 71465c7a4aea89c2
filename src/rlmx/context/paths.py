"""Turning ``--context`` arguments into a :class:`~rlmx.context.opened.Context`.

One file is a text (a ``.jsonl`` file whose records have a ``text`` field, or any JSONL file
with ``jsonl_field``, is documents); several files are documents; a directory is a codebase
read on demand; ``-`` is standard input. The context is described (hashed and counted) before
it is returned, so every problem, and every note such as invalid UTF-8 replaced, comes first.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import BinaryIO

from rlmx.context.base import ContextOptions
from rlmx.context.files import check_path
from rlmx.context.opened import Context
from rlmx.context.sources import from_files, from_path, from_stream
from rlmx.errors import ContextError


@dataclass(frozen=True, slots=True)
class OpenedContext:
    context: Context
    sources: tuple[str, ...]
    notes: tuple[str, ...] = field(default=())


def open_contexts(
    paths: Sequence[str],
    *,
    stdin: BinaryIO | None = None,
    options: ContextOptions | None = None,
) -> OpenedContext:
    """Open ``--context`` arguments: files, one directory, or ``-`` for standard input."""
    options = options or ContextOptions()
    if not paths:
        raise ContextError("no context given: pass --context PATH (a file, a directory, or -)")
    if len(paths) > 1:
        for raw in paths:
            if raw == "-" or check_path(raw).is_dir():
                what = "standard input (-)" if raw == "-" else f"a directory ({raw})"
                raise ContextError(f"{what} must be the only --context; several must be files")
        context = from_files(paths, options)
    elif paths[0] == "-":
        if stdin is None:
            raise ContextError("--context - needs standard input")
        context = from_stream(stdin, "<stdin>", options)
    else:
        context = from_path(paths[0], options)
    context.describe()
    sources = tuple(str(d.get("path") or d.get("label") or "") for d in context.docs)
    return OpenedContext(context=context, sources=sources, notes=tuple(context.notes))
