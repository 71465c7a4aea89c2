"""Contexts whose text is converted from documents (PDF, DOCX, HTML), on demand.

A PDF is read page by page: each page is an entry named ``report.pdf [page 12]`` (its header
``# file: report.pdf [page 12]`` introduces it in ``context[i]`` and in ``chunk()`` pieces, and
search hits print that name, so answers can cite the page). A page is converted the first time
a helper reads it, never before: opening reads the page tree only, and describing converts the
first page, for the preview. A DOCX or HTML file is converted whole, the first time it is read
(headings become ``[section: Title]`` lines).

Every converted text is appended once to a :class:`PageStore`, an unnamed spool file, so that a
page is converted at most once per context, whoever reads it. Where the text goes:

- the in-process REPL, the DSL and the context store read through :meth:`Corpus.text`, which
  calls the store: conversion happens lazily, page by page;
- a confined sandbox worker cannot convert (it runs ``python -S`` with the standard library
  only, and Landlock keeps it from site-packages); it must not parse hostile PDFs with a
  library it cannot import anyway. So when its first worker starts (:meth:`spec`), the host
  converts the pages not converted yet into the spool and hands the worker a read-only
  descriptor of it, as for standard input; restarts and nested runs over the same context
  reuse it. The worker gets no read access to the documents themselves.
"""

from __future__ import annotations

import hashlib
import io
import os
import threading
from collections.abc import Sequence
from typing import Any

from rlmx.context.corpus import Corpus, Doc
from rlmx.context.documents import PdfFile, docx_text, html_text, read_checked, require
from rlmx.context.files import Spool
from rlmx.context.opened import Context
from rlmx.context.spec import open_spec
from rlmx.context.walk import FileEntry
from rlmx.errors import ContextError


class PageStore:
    """Converted texts by entry, each converted once and kept in a spool file."""

    def __init__(self, spool: Spool) -> None:
        self.spool = spool
        self.conversions = 0
        self._at: dict[int, tuple[int, int]] = {}
        self._end = 0
        self._sealed = False
        self._lock = threading.Lock()

    def text(self, key: int, convert: Any) -> str:
        """Entry ``key``'s text, from the spool, or made by ``convert()`` and kept."""
        with self._lock:
            span = self._at.get(key)
            if span is None:
                text: str = convert()
                self._put(key, text)
                return text
        start, end = span
        return os.pread(self.spool.fd, end - start, start).decode("utf-8", "surrogatepass")

    def _put(self, key: int, text: str) -> None:
        if self._sealed:  # handed to a worker: its size must not change
            raise RuntimeError("the converted text was sealed before every entry was converted")
        data = text.encode("utf-8", "surrogatepass")
        os.pwrite(self.spool.file.fileno(), data, self._end)
        self._at[key] = (self._end, self._end + len(data))
        self._end += len(data)
        self.conversions += 1

    def seal(self, keys: Sequence[int], convert: Any) -> tuple[dict[int, tuple[int, int]], int]:
        """Convert every entry of ``keys`` not converted yet; then the spool is final."""
        with self._lock:
            for key in keys:
                if key not in self._at:
                    self._put(key, convert(key))
            self._sealed = True
            return dict(self._at), self._end


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

    def _convert(self, i: int) -> str:
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
        """For a worker: every converted text in the spool, read through its descriptor."""
        spec = super().spec()
        keys = [i for i, d in enumerate(self.docs) if "convert" in d]
        spans, total = self.store.seal(keys, self._convert)
        docs = []
        for i, d in enumerate(self.docs):
            if "convert" not in d:
                docs.append(d)
                continue
            docs.append(
                {
                    "name": d["name"],
                    "header": d.get("header", ""),
                    "fd": self.store.spool.fd,
                    "size": total,
                    "mtime_ns": None,
                    "span": list(spans[i]),
                    "errors": "surrogatepass",
                    "mode": "cached",
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
