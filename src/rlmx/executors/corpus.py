"""The corpus helpers over a list of documents, and how a list is cut into shards and the
shards' answers merged: the same results, in the same order, as the helpers over the whole
list in one process (:class:`rlmx.context.helpers.Helpers`)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from rlmx.context.helpers import Helpers, Hit, Hits
from rlmx.context.spec import open_spec

DocSpec = dict[str, Any]


def helpers_over(docs: Sequence[DocSpec], kind: str = "directory") -> Helpers:
    """The REPL helpers over ``docs``, read from their paths, as a context of ``kind``
    (``directory`` or ``documents``: how a hit names its document)."""
    _, corpus = open_spec({"kind": kind, "docs": list(docs)})
    return Helpers(corpus)


def count_docs(docs: Sequence[DocSpec], pattern: str, flags: int = 0) -> int:
    return helpers_over(docs).count(pattern, flags=flags) if docs else 0


def search_docs(
    docs: Sequence[DocSpec], pattern: str, limit: int, flags: int = 0
) -> tuple[list[dict[str, Any]], bool]:
    """The hits of one shard as plain dicts (their ``doc`` counted within the shard) and
    whether the shard had more than ``limit``."""
    if not docs:
        return [], False
    hits = helpers_over(docs).search_files(pattern, limit=limit, flags=flags)
    return [hit.as_dict() for hit in hits], hits.limited


def grep_docs(
    docs: Sequence[DocSpec],
    pattern: str,
    around: int,
    limit: int,
    flags: int = 0,
    kind: str = "directory",
) -> tuple[list[dict[str, Any]], bool]:
    """``grep`` over one shard, as :func:`search_docs`."""
    if not docs:
        return [], False
    hits = helpers_over(docs, kind).grep(pattern, around=around, limit=limit, flags=flags)
    return [hit.as_dict() for hit in hits], hits.limited


def shard(docs: Sequence[DocSpec], parts: int) -> list[tuple[int, list[DocSpec]]]:
    """``docs`` cut into at most ``parts`` runs of neighbours of about equal bytes, each with
    the index of its first document."""
    if not docs:
        return []
    parts = max(1, min(parts, len(docs)))
    weights = [max(1, int(d.get("size", 0))) for d in docs]
    total = sum(weights)
    shards: list[tuple[int, list[DocSpec]]] = []
    start, seen = 0, 0
    for i, weight in enumerate(weights):
        seen += weight
        cut = (len(shards) + 1) * total / parts
        if seen >= cut and len(shards) < parts - 1:
            shards.append((start, list(docs[start : i + 1])))
            start = i + 1
    if start < len(docs):
        shards.append((start, list(docs[start:])))
    return shards


def merge_hits(
    parts: Iterable[tuple[int, list[dict[str, Any]], bool]],
    limit: int,
    kind: str = "directory",
    separator: str = "\n",
) -> Hits:
    """The shards' hits in order (their ``doc`` made an index of the whole list), at most
    ``limit``; ``limited`` as the helper in one process says it. ``separator`` is how they
    print: a line each for ``search_files``, ``---`` between ``grep``'s snippets."""
    merged = Hits()
    merged.separator = separator
    for offset, hits, limited in parts:
        for hit in hits:
            if len(merged) >= limit:
                merged.limited = True
                return merged
            merged.append(
                Hit(
                    pos=hit["pos"],
                    end=hit["end"],
                    line=hit["line"],
                    text=hit["text"],
                    doc=hit["doc"] + offset,
                    path=hit["path"],
                    kind=kind,
                )
            )
        if limited:  # the shard stopped at the limit: the whole list has more than it
            merged.limited = True
            return merged
    return merged
