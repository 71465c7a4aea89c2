"""Opening documents as contexts: a PDF, DOCX or HTML file, or a directory holding some.

A PDF file is a context of the ``directory`` kind whose files are its pages
(``report.pdf [page 1]`` ... ``report.pdf [page 300]``): ``list_files()``, ``read_file()``,
``search_files()`` and ``grep()`` work on pages, and every hit names its page. A DOCX or HTML
file is a text. In a directory, a PDF's pages are entries among the other files, and a DOCX or
HTML file is one entry. See :mod:`rlmx.context.converted` for when conversion happens.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from rlmx.context.base import ContextHandle, ContextOptions
from rlmx.context.converted import (
    ConvertedContext,
    open_pdf,
    page_docs,
    sha256_file,
    textless_note,
)
from rlmx.context.documents import PdfFile, require
from rlmx.context.files import check_path, open_regular
from rlmx.context.opened import Context, manifest_id
from rlmx.context.walk import Listing
from rlmx.errors import ContextError

NAMES = {"pdf": "PDF", "docx": "DOCX", "html": "HTML"}


def from_document(
    raw: str | os.PathLike[str],
    fmt: str,
    options: ContextOptions | None = None,
    *,
    label: str | None = None,
) -> Context:
    """A PDF (its pages, converted on demand), or a DOCX or HTML file (a text)."""
    options = options or ContextOptions()
    path = check_path(raw)
    fd, info = open_regular(path)
    os.close(fd)
    real, name = os.path.realpath(path), label or str(raw)
    if fmt == "pdf":
        return _from_pdf(real, name, info, options)
    require(fmt, name)
    how = {"format": fmt, "path": real, "label": name, "size": info.st_size}
    how["mtime_ns"] = info.st_mtime_ns
    doc = {"name": None, "label": name, "convert": how, "mode": "converted"}

    def describe(context: Context) -> ContextHandle:
        assert isinstance(context, ConvertedContext)
        text = context.converted_text(0)
        size = len(text.encode("utf-8", "surrogatepass"))
        chars = options.preview_chars
        return ContextHandle(
            id=sha256_file(real),
            kind="text",
            form="str",
            chars=len(text),
            lines=text.count("\n") + (1 if text and not text.endswith("\n") else 0),
            bytes=size,
            parts=1,
            head=text[:chars],
            tail=text[-chars:] if len(text) > chars else "",
            name=name,
        )

    note = f"{name}: read as the text of a {NAMES[fmt]} file; headings are [section: ...] lines"
    return ConvertedContext(
        kind="text", docs=[doc], options=options, describer=describe, pdfs={}, notes=[note]
    )


def _from_pdf(real: str, name: str, info: os.stat_result, options: ContextOptions) -> Context:
    pdf = open_pdf(real, name)
    if pdf.pages == 0:
        raise ContextError(f"{name} is a PDF without pages")
    if len(pdf.textless) == pdf.pages:
        raise ContextError(
            f"{name} has no text layer: none of its {pdf.pages:,} pages has any text (a scanned "
            "PDF?); run OCR on it first, e.g. ocrmypdf"
        )
    base = os.path.basename(real) if os.path.isabs(name) else name
    docs = page_docs(pdf, base, info)

    def describe(context: Context) -> ContextHandle:
        assert isinstance(context, ConvertedContext)
        first = context.converted_text(0)  # the preview: one page, never the whole file
        head = (
            f"a PDF of {pdf.pages:,} pages, one file per page, named '{base} [page 1]' to "
            f"'{base} [page {pdf.pages}]'; the first page:\n{first[: options.preview_chars]}"
        )
        return ContextHandle(
            id=sha256_file(real),
            kind="directory",
            form="directory",
            chars=None,
            lines=None,
            bytes=info.st_size,
            parts=pdf.pages,
            head=head,
            name=name,
            files=tuple(d["name"] for d in docs[:50]),
        )

    notes = [f"{name}: a PDF of {pdf.pages:,} pages, read page by page as '{base} [page N]'"]
    return ConvertedContext(
        kind="directory",
        docs=docs,
        options=options,
        describer=describe,
        pdfs={real: pdf},
        notes=notes + textless_note(pdf),
    )


def from_listing(
    root: Path,
    listing: Listing,
    text_docs: list[dict[str, Any]],
    options: ContextOptions,
    *,
    label: str | None = None,
) -> Context:
    """A directory some of whose files are documents (``FileEntry.format``); ``text_docs`` are
    the documents of its other files, in order."""
    texts: Iterator[dict[str, Any]] = iter(text_docs)
    docs: list[dict[str, Any]] = []
    pdfs: dict[str, PdfFile] = {}
    notes = listing.notes()
    shown: list[str] = []
    for f in listing.files:
        if f.format is None:
            docs.append(next(texts))
            shown.append(f"{f.rel} ({f.size:,} bytes)")
        elif f.format == "pdf":
            pdf = _listed_pdf(f.real, f.rel, notes)
            if pdf is not None:
                pdfs[f.real] = pdf
                docs.extend(page_docs(pdf, f.rel, f))
                shown.append(f"{f.rel} [page 1] to [page {pdf.pages}] ({f.size:,} bytes)")
        else:
            how = {"format": f.format, "path": f.real, "label": f.rel, "size": f.size}
            how["mtime_ns"] = f.mtime_ns
            docs.append(
                {
                    "name": f.rel,
                    "header": f"# file: {f.rel}\n",
                    "convert": how,
                    "mode": "converted",
                }
            )
            shown.append(f"{f.rel} ({NAMES[f.format]}, {f.size:,} bytes)")
    if not docs:
        raise ContextError(f"directory {root} has no text to read ({'; '.join(notes)})")
    if len(shown) > 20:
        shown[20:] = [f"... and {len(shown) - 20:,} more files"]
    manifest = [f"{f.rel}\0{f.size}\0{f.mtime_ns}" for f in listing.files]
    handle = ContextHandle(
        id=manifest_id(manifest),
        kind="directory",
        form="directory",
        chars=None,
        lines=None,
        bytes=sum(f.size for f in listing.files),
        parts=len(docs),
        head="\n".join(shown),
        name=label or str(root),
        files=tuple(d["name"] for d in docs[:50]),
    )
    real_root = os.path.realpath(root)
    return ConvertedContext(
        kind="directory",
        docs=docs,
        options=options,
        describer=lambda c: handle,
        pdfs=pdfs,
        root=real_root,
        notes=notes,
        bind_paths=[real_root],
    )


def _listed_pdf(real: str, rel: str, notes: list[str]) -> PdfFile | None:
    """A directory's PDF, or None (with a note) when it cannot be read or has no text."""
    try:
        pdf = open_pdf(real, rel)
    except ContextError as exc:
        notes.append(f"{rel}: left out: {exc}")
        return None
    if len(pdf.textless) == pdf.pages:
        notes.append(
            f"{rel}: left out: no text layer on any of its {pdf.pages:,} pages (a scanned "
            "PDF?); run OCR on it first, e.g. ocrmypdf"
        )
        return None
    notes.extend(textless_note(pdf))
    return pdf
