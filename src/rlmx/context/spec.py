"""Building a :class:`~rlmx.context.corpus.Corpus` from the host's description of a context.

The description is plain JSON (it travels in the sandbox worker's ``init`` message): each
document's name, header, where its bytes are (a path, or a file descriptor the worker
inherited), their size and modification time, and how to read it: ``eager`` (decoded now, so
the REPL's ``context`` can be a ``str``), ``lazy`` (a :class:`~rlmx.context.textio.LazyText`,
with the checkpoints of the host's index) or ``cached`` (read whole on demand through the LRU
cache: a directory's files). Standard library only.
"""

from __future__ import annotations

from typing import Any

from rlmx.context.corpus import Corpus, Doc
from rlmx.context.textio import Source

MODES = ("eager", "lazy", "cached")


def open_spec(spec: dict[str, Any]) -> tuple[object, Corpus]:
    """The REPL's ``context`` value and the corpus behind the helpers."""
    docs = [_doc(d) for d in spec["docs"]]
    corpus = Corpus(
        docs,
        kind=str(spec["kind"]),
        cache_bytes=int(spec.get("cache_bytes", 32 << 20)),
        max_read_bytes=spec.get("max_read_bytes"),
        root=spec.get("root"),
    )
    return corpus.value(), corpus


def _doc(d: dict[str, Any]) -> Doc:
    mode = d.get("mode")
    if mode not in MODES:
        raise ValueError(f"unknown document mode {mode!r}")
    name = d.get("name")
    source = Source(
        name=str(name or d.get("label") or "the context file"),
        size=int(d["size"]),
        path=d.get("path"),
        fd=d.get("fd"),
        mtime_ns=d.get("mtime_ns"),
        errors=str(d.get("errors", "replace")),
    )
    start, end = (int(x) for x in d["span"])
    header, bom = str(d.get("header", "")), bool(d.get("bom", False))
    if mode == "eager":
        return Doc(name=name, header=header, text=source.decode_all(start, end, bom=bom))
    lazy = None
    if mode == "lazy":
        index = d["index"]
        lazy = {
            "chars": int(index["chars"]),
            "lines": int(index["lines"]),
            "ascii": bool(index["ascii"]),
            "points": [tuple(p) for p in index["points"]],
        }
    return Doc(name=name, header=header, source=source, span=(start, end), lazy=lazy, bom=bom)
