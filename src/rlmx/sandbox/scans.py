"""The corpus helpers ``count``, ``grep`` and ``search_files`` made by the host's executor, for a
REPL over a directory or a set of files whose run spreads its scans (a Ray cluster).

The REPL's side is :class:`HostScans`: the three helpers with the signatures, the checks and
the results of :class:`rlmx.context.helpers.Helpers`. A search of one document (``doc=``) is
still made in the REPL; otherwise a request names the pattern, its flags and the documents
(all of them, or the indices a ``glob`` picked), is charged to the context's read budget, and
goes to the host. The host's side is :func:`check_scan` and :func:`answer_scan`: a request is
untrusted and checked (types, sizes) before the executor sees it, and a refused one is an
error in the cell, in one line.

Standard library only: the sandbox worker imports this module.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from rlmx.context.helpers import Helpers, Hit, Hits
from rlmx.context.regex import Compiled

if TYPE_CHECKING:
    from rlmx.context.corpus import Corpus
    from rlmx.sandbox.base import Scans

SCANS = ("count", "grep", "search_files")
MAX_PATTERN_CHARS = 1 << 16
MAX_AROUND = 100_000
MAX_LIMIT = 1_000_000
# The flags a scan may carry; re.DEBUG would print on the host, re.LOCALE never fits a str.
FLAGS = re.IGNORECASE | re.MULTILINE | re.DOTALL | re.VERBOSE | re.ASCII | re.UNICODE
FLAG_NAMES = "re.I, re.M, re.S, re.X, re.A, re.U"

Ask = Callable[[str, dict[str, Any]], Any]


class HostScans:
    """``count``, ``grep`` and ``search_files`` over ``corpus`` as the host makes them:
    ``ask(fn, args)`` sends a request and gives back the host's answer (or raises its error)."""

    def __init__(self, corpus: Corpus, ask: Ask) -> None:
        self._corpus, self._ask = corpus, ask
        self._local = Helpers(corpus)

    def functions(self) -> dict[str, Callable[..., Any]]:
        return {"count": self.count, "grep": self.grep, "search_files": self.search_files}

    def count(self, pattern: Any, doc: int | str | None = None, flags: int = 0) -> int:
        """How many times a regex matches (non-overlapping, as ``re.findall``)."""
        if doc is not None:
            return self._local.count(pattern, doc=doc, flags=flags)
        source, flags = _plain(pattern, flags)
        value = self._request("count", source, flags, None, {})
        if not isinstance(value, int) or isinstance(value, bool):
            raise RuntimeError("the host sent no count")
        return value

    def grep(
        self,
        pattern: Any,
        around: int = 200,
        doc: int | str | None = None,
        limit: int = 100,
        flags: int = 0,
    ) -> Hits:
        """Each match of a regex with ``around`` chars either side, at most ``limit`` of them."""
        if doc is not None:
            return self._local.grep(pattern, around=around, doc=doc, limit=limit, flags=flags)
        if not isinstance(around, int) or around < 0:
            raise ValueError("around must be an int of 0 or more")
        source, flags = _plain(pattern, flags)
        extra = {"around": around, "limit": limit}
        return self._hits(self._request("grep", source, flags, None, extra), Hits.separator)

    def search_files(
        self, pattern: Any, glob: str | None = None, limit: int = 200, flags: int = 0
    ) -> Hits:
        """Each line that matches a regex, as ``path:line: text`` (at most ``limit``)."""
        source, flags = _plain(pattern, flags)
        picked = self._corpus.matching(glob)
        docs = None if len(picked) == len(self._corpus.docs) else picked
        if not picked:
            found = Hits()
            found.separator = "\n"
            return found
        value = self._request("search_files", source, flags, docs, {"limit": limit})
        return self._hits(value, "\n")

    def _request(
        self, fn: str, pattern: str, flags: int, docs: list[int] | None, extra: dict[str, Any]
    ) -> Any:
        self._charge(range(len(self._corpus.docs)) if docs is None else docs)
        return self._ask(fn, {"pattern": pattern, "flags": flags, "docs": docs, **extra})

    def _charge(self, picked: Sequence[int]) -> None:
        """Count the files the scan reads against the context's read budget, as a scan in the
        REPL would (files already in its cache are not read again there)."""
        corpus, size = self._corpus, 0
        for i in picked:
            doc = corpus.docs[i]
            if doc.source is not None and doc.lazy is None and corpus.cache.get(i) is None:
                size += doc.span[1] - doc.span[0]
        corpus._charge(size)

    def _hits(self, value: Any, separator: str) -> Hits:
        if not isinstance(value, dict) or not isinstance(value.get("hits"), list):
            raise RuntimeError("the host sent no hits")
        found, kind = Hits(), self._corpus.kind
        found.separator = separator
        found.limited = value.get("limited") is True
        for h in value["hits"]:
            found.append(
                Hit(
                    pos=int(h["pos"]),
                    end=int(h["end"]),
                    line=int(h["line"]),
                    text=str(h["text"]),
                    doc=int(h["doc"]),
                    path=None if h.get("path") is None else str(h["path"]),
                    kind=kind,
                )
            )
        return found


def _plain(pattern: Any, flags: int) -> tuple[str, int]:
    """The pattern as its source and flags, checked as the helpers check it."""
    compiled = Compiled(pattern, flags)  # the REPL's own errors, before anything is sent
    if isinstance(pattern, re.Pattern):
        flags |= pattern.flags & ~re.UNICODE
    return compiled.source, flags


# The host's side ------------------------------------------------------------------------------


def _int(args: dict[str, Any], name: str, low: int, high: int) -> int:
    value = args.get(name)
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"{name} must be an int")
    if not low <= value <= high:
        raise ValueError(f"{name} must be from {low:,} to {high:,} here, not {value:,}")
    return value


def check_scan(fn: object, args: object, documents: int) -> dict[str, Any]:
    """A scan request's arguments, checked for a context of ``documents`` documents: only the
    known ones are kept. Raises TypeError or ValueError, in one line."""
    if fn not in SCANS:
        raise ValueError(f"unknown scan {str(fn)[:40]!r}")
    if not isinstance(args, dict):
        raise TypeError("a scan's arguments must be an object")
    pattern = args.get("pattern")
    if not isinstance(pattern, str):
        raise TypeError(f"a pattern must be a str, not {type(pattern).__name__}")
    if not 0 < len(pattern) <= MAX_PATTERN_CHARS:
        raise ValueError(f"a pattern must have 1 to {MAX_PATTERN_CHARS:,} chars")
    flags = _int(args, "flags", 0, FLAGS)
    if flags & ~FLAGS:
        raise ValueError(f"flags must be made of {FLAG_NAMES}")
    Compiled(pattern, flags)  # a bad expression is refused before any shard is sent
    checked: dict[str, Any] = {"pattern": pattern, "flags": flags, "docs": _docs(args, documents)}
    if fn == "grep":
        checked["around"] = _int(args, "around", 0, MAX_AROUND)
    if fn != "count":
        checked["limit"] = _int(args, "limit", -MAX_LIMIT, MAX_LIMIT)
    return checked


def _docs(args: dict[str, Any], documents: int) -> list[int] | None:
    docs = args.get("docs")
    if docs is None:
        return None
    if not isinstance(docs, list) or len(docs) > documents:
        raise TypeError("docs must be a list of document indices")
    last = -1
    for i in docs:
        if not isinstance(i, int) or isinstance(i, bool) or not last < i < documents:
            raise ValueError("docs must be indices of this context, in increasing order")
        last = i
    return docs


def answer_scan(
    scans: Scans, docs: Sequence[dict[str, Any]], kind: str, fn: str, args: dict[str, Any]
) -> int | dict[str, Any]:
    """The answer to a checked request: a count, or the hits as plain dicts (each ``doc`` an
    index of the whole context) and whether there were more."""
    picked = args["docs"]
    chosen = list(docs) if picked is None else [docs[i] for i in picked]
    pattern, flags = args["pattern"], args["flags"]
    if fn == "count":
        return scans.count(chosen, pattern, flags)
    if fn == "grep":
        hits = scans.grep(
            chosen, pattern, around=args["around"], limit=args["limit"], flags=flags, kind=kind
        )
    else:
        hits = scans.search_files(chosen, pattern, limit=args["limit"], flags=flags)
    found = [hit.as_dict() for hit in hits]
    if picked is not None:
        for hit in found:
            hit["doc"] = picked[hit["doc"]]
    return {"hits": found, "limited": hits.limited}


def one_line(exc: BaseException) -> str:
    """An error's message as one line (a cluster's errors can run to a traceback)."""
    text = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
    lines = str(text).strip().splitlines()
    return lines[0] if lines else type(exc).__name__
