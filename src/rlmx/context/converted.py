"""Contexts whose text is converted from documents (PDF, DOCX, HTML), on demand.

A PDF is read page by page: each page is an entry named ``report.pdf [page 12]`` (its header
``# file: report.pdf [page 12]`` introduces it in ``context[i]`` and in ``chunk()`` pieces, and
search hits print that name, so answers can cite the page). A page is converted the first time
a helper reads it, never before: opening reads the page tree only, and describing converts the
first page, for the preview. A DOCX or HTML file is converted whole, the first time it is read
(headings become ``[section: Title]`` lines).

Every converted text is appended once to a :class:`PageStore`, an unnamed spool file, so that a
page is converted at most once per context, whoever reads it. A converted text is cut at the
context's ``max_file_bytes`` (the size above which a directory leaves a file out), with a line
saying so. Where the text goes:

- the in-process REPL, the DSL and the context store read through :meth:`Corpus.text`, which
  calls the store: conversion happens lazily, page by page;
- a confined sandbox worker cannot convert (it runs ``python -S`` with the standard library
  only, and Landlock keeps it from site-packages); it must not parse hostile PDFs with a
  library it cannot import anyway. Its description of the context (:meth:`spec`) marks each
  converted entry (``"mode": "converted"``) and gives it a read-only descriptor of the spool.
  The first time model code reads such an entry, the worker asks the host for it (a ``doc``
  frame, see :mod:`rlmx.sandbox.calls`); the host converts that entry into the spool, if it
  was not yet, and answers where its text lies (:meth:`ConvertedContext.converted_span`); the
  worker reads it from the spool and keeps the place. Entries converted before the worker
  started have their place in the description already. Restarts and nested runs over the same
  context share the spool. The worker gets no read access to the documents themselves.
"""

from __future__ import annotations

import hashlib
import io
import os
import threading
from collections.abc import Callable
from typing import Any

from rlmx.context.corpus import Corpus, Doc
from rlmx.context.documents import PdfFile, docx_text, html_text, read_checked, require
from rlmx.context.files import Spool
from rlmx.context.opened import Context
from rlmx.context.spec import open_spec
from rlmx.context.walk import FileEntry
from rlmx.errors import ContextError


class PageStore:
    """Converted texts by entry, each converted once and kept in a spool file. The spool only
    grows: a span once written never changes, so a worker may read it while others are added."""

    def __init__(self, spool: Spool) -> None:
        self.spool = spool
        self.conversions = 0
        self._at: dict[int, tuple[int, int]] = {}
        self._end = 0
        self._lock = threading.Lock()

    def span(self, key: int, convert: Callable[[], str]) -> tuple[int, int]:
        """Where entry ``key``'s text is in the spool (start and end bytes), converting it by
        ``convert()`` the first time."""
        with self._lock:
            span = self._at.get(key)
            if span is None:
                span = self._put(key, convert())
            return span

    def text(self, key: int, convert: Callable[[], str]) -> str:
        """Entry ``key``'s text, from the spool, or made by ``convert()`` and kept."""
        start, end = self.span(key, convert)
        return os.pread(self.spool.fd, end - start, start).decode("utf-8", "surrogatepass")

    def spans(self) -> dict[int, tuple[int, int]]:
        """The entries converted so far and where they are."""
        with self._lock:
            return dict(self._at)

    def _put(self, key: int, text: str) -> tuple[int, int]:
        data = text.encode("utf-8", "surrogatepass")
        os.pwrite(self.spool.file.fileno(), data, self._end)
        span = self._at[key] = (self._end, self._end + len(data))
        self._end += len(data)
        self.conversions += 1
        return span


class ConvertedContext(Context):
    """A context some of whose documents (``docs`` with a ``convert`` entry) are converted
    from PDF, DOCX or HTML on demand; the rest are text files, read as usual."""

    def __init__(self, *, pdfs: dict[str, PdfFile], **kwargs: Any) -> None:
        self.store = PageStore(Spool.open("rlmx-converted-"))
        super().__init__(spool=self.store.spool, **kwargs)
        self._pdfs = pdfs

    @property
    def conversions(self) -> int:
        """How many entries (pages, documents) have been converted so far."""
        return self.store.conversions

    def converted_text(self, i: int) -> str:
        return self.store.text(i, lambda: self._convert(i))

    def is_converted(self, i: int) -> bool:
        """Whether entry ``i`` exists and is converted from a document."""
        return 0 <= i < len(self.docs) and "convert" in self.docs[i]

    def converted_span(self, i: int) -> tuple[int, int]:
        """Where converted entry ``i``'s text is in the spool, converting it first if needed
        (what a sandbox worker asks for; :meth:`spec`)."""
        if not self.is_converted(i):
            raise ValueError(f"entry {i} of this context is not a converted document")
        return self.store.span(i, lambda: self._convert(i))

    def _convert(self, i: int) -> str:
        return cap_text(self._convert_whole(i), self.options.max_file_bytes)

    def _convert_whole(self, i: int) -> str:
        how = self.docs[i]["convert"]
        path, label = how["path"], how["label"]
        try:
            if how["format"] == "pdf":
                return self._pdfs[path].page_text(int(how["page"]))
            data = read_checked(path, how["size"], how["mtime_ns"], label)
            if how["format"] == "docx":
                return docx_text(io.BytesIO(data), label)
            return html_text(data)
        except ContextError as exc:
            if self.kind != "directory":
                raise
            return f"[{label} could not be converted: {exc}]\n"

    def spec(self) -> dict[str, Any]:
        """For a worker: a converted entry is read from the spool, where the host puts it when
        the worker first asks (``"mode": "converted"``); those converted already say where."""
        spec = super().spec()
        spans = self.store.spans()
        docs = []
        for i, d in enumerate(self.docs):
            if "convert" not in d:
                docs.append(d)
                continue
            span = spans.get(i)
            docs.append(
                {
                    "name": d["name"],
                    "header": d.get("header", ""),
                    "mode": "converted",
                    "doc": i,
                    "fd": self.store.spool.fd,
                    "span": None if span is None else list(span),
                }
            )
        spec["docs"] = docs
        return spec

    def open_local(self) -> tuple[object, Corpus]:
        """The corpus in this process: converted entries are converted when first read."""
        with self._lock:
            if self._local is None:
                self.describe()
                plain = [d for d in self.docs if "convert" not in d]
                read = iter(open_spec({**super().spec(), "docs": plain})[1].docs if plain else [])
                docs = [
                    Doc(name=d["name"], header=d.get("header", ""), load=self._loader(i))
                    if "convert" in d
                    else next(read)
                    for i, d in enumerate(self.docs)
                ]
                corpus = Corpus(
                    docs,
                    kind=self.kind,
                    cache_bytes=self.options.cache_bytes,
                    max_read_bytes=self.options.max_read_bytes
                    if self.kind == "directory"
                    else None,
                    root=self.root,
                )
                self._local = corpus.value(), corpus
            return self._local

    def _loader(self, i: int) -> Any:
        return lambda: self.converted_text(i)


def cap_text(text: str, limit: int) -> str:
    """``text``, or its first ``limit`` bytes (whole characters) and a line saying so."""
    data = text.encode("utf-8", "surrogatepass")
    if len(data) <= limit:
        return text
    kept = data[:limit].decode("utf-8", "ignore")
    return f"{kept}\n[... cut here: the text is {len(data):,} bytes, over the limit of {limit:,}]\n"


def sha256_file(path: str) -> str:
    hasher = hashlib.sha256()
    with open(path, "rb") as file:
        while block := file.read(1 << 20):
            hasher.update(block)
    return hasher.hexdigest()


def page_docs(pdf: PdfFile, rel: str, info: FileEntry | os.stat_result) -> list[dict[str, Any]]:
    """One entry per page of a PDF, named ``rel [page N]``."""
    size = info.size if isinstance(info, FileEntry) else info.st_size
    how = {"format": "pdf", "path": pdf.path, "label": rel, "size": size}
    return [
        {
            "name": f"{rel} [page {n}]",
            "header": f"# file: {rel} [page {n}]\n",
            "convert": {**how, "page": n},
            "mode": "converted",
        }
        for n in range(1, pdf.pages + 1)
    ]


def textless_note(pdf: PdfFile) -> list[str]:
    if not pdf.textless:
        return []
    pages = ", ".join(str(n) for n in pdf.textless[:20])
    more = ", ..." if len(pdf.textless) > 20 else ""
    return [
        f"{pdf.label}: {len(pdf.textless):,} of {pdf.pages:,} pages have no text layer (scanned "
        f"images?): pages {pages}{more}; their entries say so. OCR them first (e.g. ocrmypdf)"
    ]


def open_pdf(path: str, label: str) -> PdfFile:
    require("pdf", label)
    try:
        return PdfFile(path, label)
    except OSError as exc:
        raise ContextError(f"cannot read {label}: {exc.strerror}") from None
