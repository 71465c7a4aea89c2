"""A context as the REPL helpers see it: one or more documents, each a ``str`` in memory, a file
read whole on demand through a byte-limited LRU cache, or a :class:`~rlmx.context.textio.LazyText`.

Standard library only: the sandbox worker builds its corpus from the host's description (see
:mod:`rlmx.context.spec`); the in-process REPL builds the same one on the host.
"""

from __future__ import annotations

import fnmatch
import sys
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from rlmx.context.textio import LazyText, Source, decode, decode_file

Text = str | LazyText
BLOCK = 1 << 20


class ReadLimitReached(RuntimeError):
    """The context's budget of bytes read from disk is used up."""


class Doc:
    """One document: its name (a path for files), the header that introduces it in ``chunk()``
    pieces and in ``context[i]``, and where its text is: a str, a file region, or ``load``, a
    function that makes the text on demand (a converted page of a PDF), read through the LRU
    cache like a file."""

    __slots__ = ("bom", "header", "lazy", "load", "name", "size", "source", "span", "text")

    def __init__(
        self,
        *,
        name: str | None = None,
        header: str = "",
        text: str | None = None,
        source: Source | None = None,
        span: tuple[int, int] = (0, 0),
        lazy: dict[str, Any] | None = None,
        bom: bool = False,
        load: Callable[[], str] | None = None,
    ) -> None:
        if [text, source, load].count(None) != 2:
            raise ValueError("a document has a text, a source or a load function")
        self.name, self.header, self.text, self.source = name, header, text, source
        self.span, self.lazy, self.bom, self.load = span, lazy, bom, load
        self.size = len(text) if text is not None else span[1] - span[0]


class LRU:
    """Decoded texts by document, evicted least recently used first beyond ``max_bytes``."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.used = 0
        self._items: OrderedDict[int, str] = OrderedDict()

    def get(self, key: int) -> str | None:
        text = self._items.get(key)
        if text is not None:
            self._items.move_to_end(key)
        return text

    def put(self, key: int, text: str) -> None:
        size = sys.getsizeof(text)
        if size > self.max_bytes or key in self._items:
            return
        self._items[key] = text
        self.used += size
        while self.used > self.max_bytes:
            _, old = self._items.popitem(last=False)
            self.used -= sys.getsizeof(old)


# How a helper's caller picks one document; the command level says it in its own words.
PICK_DOC = "pass doc=INDEX or doc=NAME"


class Corpus:
    """The documents of a context and how to read them. ``kind`` is ``text`` (one document),
    ``documents`` or ``directory``."""

    def __init__(
        self,
        docs: Sequence[Doc],
        *,
        kind: str,
        cache_bytes: int = 32 << 20,
        max_read_bytes: int | None = None,
        root: str | None = None,
    ) -> None:
        if kind == "text" and len(docs) != 1:
            raise ValueError("a text context has exactly one document")
        self.docs, self.kind, self.root = list(docs), kind, root
        self.cache = LRU(cache_bytes)
        self.max_read_bytes = max_read_bytes
        self.read_bytes = 0
        self._names = {d.name: i for i, d in enumerate(self.docs) if d.name is not None}

    @classmethod
    def from_value(cls, value: object) -> Corpus:
        if isinstance(value, str):
            return cls([Doc(text=value)], kind="text")
        if isinstance(value, Sequence) and all(isinstance(v, str) for v in value):
            return cls([Doc(text=v) for v in value], kind="documents")
        raise TypeError(f"a context is a str or a list of str, not {type(value).__name__}")

    # Which documents -----------------------------------------------------------------------

    def index(self, doc: int | str) -> int:
        if isinstance(doc, bool) or not isinstance(doc, int | str):
            raise TypeError(f"doc must be an index or a name, not {type(doc).__name__}")
        if isinstance(doc, str):
            found = self._names.get(doc.removeprefix("./"))
            if found is None:
                what = "file" if self.kind == "directory" else "document"
                hint = "list_files()" if self.kind == "directory" else "an index"
                raise KeyError(f"no {what} named {doc!r} in this context; use {hint}")
            return found
        n = len(self.docs)
        if not -n <= doc < n:
            raise IndexError(f"doc {doc} is out of range: this context has {n} document(s)")
        return doc % n

    def indices(self, doc: int | str | None) -> list[int]:
        return list(range(len(self.docs))) if doc is None else [self.index(doc)]

    def one(self, doc: int | str | None) -> int:
        if doc is None:
            if len(self.docs) == 1:
                return 0
            what = "files" if self.kind == "directory" else "documents"
            raise ValueError(f"this context has {len(self.docs):,} {what}: {PICK_DOC}")
        return self.index(doc)

    def matching(self, glob: str | None) -> list[int]:
        if glob is None:
            return list(range(len(self.docs)))
        found = []
        for i, d in enumerate(self.docs):
            name = d.name or ""
            if fnmatch.fnmatchcase(name, glob) or (
                "/" not in glob and fnmatch.fnmatchcase(name.rsplit("/", 1)[-1], glob)
            ):
                found.append(i)
        return found

    # Reading -------------------------------------------------------------------------------

    def text(self, i: int, *, scan: bool = False) -> Text:
        """Document ``i``'s text; a whole-file read is cached unless it is part of a scan."""
        doc = self.docs[i]
        if doc.text is not None:
            return doc.text
        if doc.source is not None and doc.lazy is not None:
            start, end = doc.span
            return LazyText(doc.source, start, end, **doc.lazy)
        cached = self.cache.get(i)
        if cached is not None:
            return cached
        if doc.load is not None:  # a converted document: read and charged as a file is
            text = doc.load()
            self._charge(len(text))
            if not scan:
                self.cache.put(i, text)
            return text
        assert doc.source is not None
        start, end = doc.span
        self._charge(end - start)
        data = doc.source.read(start, end - start)
        text = decode_file(data, doc.source.errors) if doc.bom else decode(data, doc.source.errors)
        if not scan:
            self.cache.put(i, text)
        return text

    def _charge(self, size: int) -> None:
        limit = self.max_read_bytes
        if limit is not None and self.read_bytes + size > limit:
            raise ReadLimitReached(
                f"this context's read budget of {limit:,} bytes is used up ({self.read_bytes:,} "
                "read so far): narrow the search to some files, e.g. with glob="
            )
        self.read_bytes += size

    def value(self) -> object:
        """What the REPL's ``context`` is: a str, a LazyText, a list of str or a lazy view."""
        if self.kind == "text":
            return self.text(0)
        if all(d.text is not None and not d.header for d in self.docs):
            return [d.text for d in self.docs]
        return DocumentsView(self)


class DocumentsView(Sequence[Any]):
    """Documents read on demand: ``context[i]`` is document ``i`` (for a directory, its header
    ``# file: PATH`` and its text), ``context["path"]`` a file's text by name."""

    def __init__(self, corpus: Corpus) -> None:
        self._corpus = corpus

    def __len__(self) -> int:
        return len(self._corpus.docs)

    def __getitem__(self, key: Any) -> Any:
        corpus = self._corpus
        if isinstance(key, slice):
            return [self[i] for i in range(*key.indices(len(self)))]
        if isinstance(key, str):
            return corpus.text(corpus.index(key))
        i = corpus.index(key)
        text = corpus.text(i)
        header = corpus.docs[i].header
        return header + text if header and isinstance(text, str) else text

    def __iter__(self) -> Iterator[Any]:
        for i in range(len(self)):
            yield self[i]

    def __repr__(self) -> str:
        corpus = self._corpus
        what = f"a directory of {len(self):,} files" if corpus.kind == "directory" else ""
        what = what or f"{len(self):,} documents"
        return f"<{what}, read on demand: context[i], or the helpers grep(), lines(), chunk()>"

    __str__ = __repr__


def str_lines(text: str, first: int, last: int) -> str:
    """Lines ``first`` to ``last`` of a str, counted from 1, without the final line break."""
    first = max(1, first)
    if last < first:
        return ""
    out = text[_after_newline(text, first - 1) : _after_newline(text, last)]
    return out[:-1] if out.endswith("\n") else out


def _after_newline(text: str, k: int) -> int:
    if k <= 0:
        return 0
    at = 0
    while at < len(text):
        found = text.count("\n", at, at + BLOCK)
        if found < k:
            k -= found
            at += BLOCK
            continue
        pos = at - 1
        for _ in range(k):
            pos = text.index("\n", pos + 1)
        return pos + 1
    return len(text)


def iter_blocks(text: Text) -> Iterator[str]:
    if isinstance(text, str):
        yield text
    else:
        for _, block in text.blocks():
            yield block
