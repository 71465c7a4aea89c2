"""Making :class:`~rlmx.context.opened.Context` objects: from a value, a file, several files, a
JSONL file of documents, a stream, or a directory.

Opening is cheap: a file is checked (regular, readable, not binary) and previewed; the pass
that hashes and counts it runs when the context is first described. Every error is a
:class:`~rlmx.errors.ContextError` raised before anything is returned: nothing half-loaded.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any, BinaryIO

from rlmx.context.base import ContextHandle, ContextOptions, ContextValue, human_size
from rlmx.context.describe import describe_value
from rlmx.context.document_sources import from_document, from_listing
from rlmx.context.documents import document_format
from rlmx.context.files import Spool, check_path, open_regular
from rlmx.context.jsonl import from_jsonl, jsonl_field_of
from rlmx.context.opened import Context, manifest_id
from rlmx.context.scan import SNIFF_BYTES, TextIndex, index_fd, looks_binary
from rlmx.context.textio import BOM
from rlmx.context.walk import walk_directory
from rlmx.errors import ContextError

COPY_BLOCK = 1 << 20


def from_value(value: object, options: ContextOptions | None = None) -> Context:
    """A str (a text) or a sequence of str (documents), held in memory as given."""
    options = options or ContextOptions()
    if isinstance(value, str):
        kind = "text"
    elif isinstance(value, Sequence) and all(isinstance(v, str) for v in value):
        kind = "documents"
    else:
        raise ContextError(f"a context is a str or a list of str, not {type(value).__name__}")
    text_or_docs: ContextValue = value
    return Context(
        kind=kind,
        value=text_or_docs,
        options=options,
        describer=lambda c: describe_value(text_or_docs, preview_chars=options.preview_chars),
    )


def as_context(value: object, options: ContextOptions | None = None) -> Context:
    """A :class:`Context` as given, or one made from a str or a list of str (held as they are),
    or from a path (``pathlib.Path``: a file or a directory, see :func:`from_path`)."""
    if isinstance(value, Context):
        return value
    if isinstance(value, os.PathLike):
        return from_path(value, options)
    return from_value(value, options)


def from_path(
    raw: str | os.PathLike[str], options: ContextOptions | None = None, *, label: str | None = None
) -> Context:
    """A directory, a JSONL file of documents (see :func:`jsonl_field_of`), or a text file.
    ``label`` is what notes and the prompt call a file or directory (default: ``raw``)."""
    options = options or ContextOptions()
    path = check_path(raw)
    if path.is_dir():
        return from_directory(path, options, label=label)
    fmt = document_format(path.name)
    if fmt is not None:
        return from_document(raw, fmt, options, label=label)
    field_name = jsonl_field_of(path, options.jsonl_field)
    if field_name is not None:
        return from_jsonl(path, field_name, options)
    return from_file(raw, options, label=label)


def _text_doc(fd: int, info: os.stat_result, label: str, options: ContextOptions) -> dict[str, Any]:
    """The description of one text file, after checking it is not binary."""
    try:
        head = os.pread(fd, SNIFF_BYTES, 0)
    except OSError as exc:
        raise ContextError(f"cannot read {label}: {exc.strerror}") from None
    if looks_binary(head):
        raise ContextError(f"{label} looks like a binary file (it has NUL bytes); pass a text file")
    start = 3 if head.startswith(BOM) else 0
    return {
        "name": None,
        "label": label,
        "size": info.st_size,
        "mtime_ns": info.st_mtime_ns,
        "span": [start, info.st_size],
        "errors": "replace",
        "mode": "eager" if info.st_size <= options.max_str_bytes else "lazy",
    }


def _index(doc: dict[str, Any], fd: int | None = None) -> TextIndex:
    """One pass over a document's file (see :mod:`rlmx.context.scan`), checked against the
    size and time it had when it was opened; fills the document's lazy-reading index."""
    own = fd is None
    if own:
        fd = os.open(doc["path"], os.O_RDONLY | os.O_CLOEXEC)
    assert fd is not None
    try:
        index = index_fd(fd, name=doc["label"])
    finally:
        if own:
            os.close(fd)
    if (index.size, index.mtime_ns) != (doc["size"], doc["mtime_ns"]):
        raise ContextError(f"{doc['label']} changed after it was opened; open it again")
    doc["index"] = index.to_spec()
    return index


def _notes(
    label: str, index: TextIndex, doc: dict[str, Any] | None = None, limit: int = 0
) -> list[str]:
    notes = []
    if index.replaced:
        notes.append(
            f"{label}: not valid UTF-8; {index.replaced:,} invalid byte sequence(s) replaced "
            "with U+FFFD"
        )
    if doc is not None and doc.get("mode") == "lazy":
        notes.append(
            f"{label}: {human_size(index.size)}, over the {human_size(limit)} limit for a str: "
            "the REPL reads it on demand (a LazyText)"
        )
    return notes


def from_file(
    raw: str | os.PathLike[str], options: ContextOptions | None = None, *, label: str | None = None
) -> Context:
    """A text file of any size: a str in the REPL up to ``max_str_bytes``, else a LazyText."""
    options = options or ContextOptions()
    path = check_path(raw)
    fd, info = open_regular(path)
    try:
        doc = _text_doc(fd, info, label or str(raw), options)
    finally:
        os.close(fd)
    doc["path"] = os.path.realpath(path)

    def describe(context: Context) -> ContextHandle:
        index = _index(context.docs[0])
        name = label or str(raw)
        context.notes.extend(_notes(name, index, context.docs[0], options.max_str_bytes))
        return _text_handle(index, context.docs[0], name)

    return Context(kind="text", docs=[doc], options=options, describer=describe)


def _text_handle(index: TextIndex, doc: dict[str, Any], name: str) -> ContextHandle:
    return ContextHandle(
        id=index.sha256,
        kind="text",
        form="str" if doc["mode"] == "eager" else "lazy",
        chars=index.chars,
        lines=index.lines,
        bytes=index.size,
        parts=1,
        head=index.head,
        tail=index.tail,
        name=name,
        replaced=index.replaced,
    )


def from_files(paths: Sequence[str], options: ContextOptions | None = None) -> Context:
    """Several text files as documents: a list of str, or read on demand when too large."""
    options = options or ContextOptions()
    docs = []
    for raw in paths:
        path = check_path(raw)
        if document_format(path.name) is not None and not path.is_dir():
            raise ContextError(
                f"{raw} is a document (PDF, DOCX or HTML): pass it as the only context, or "
                "put the files in a directory and pass that"
            )
        fd, info = open_regular(path)
        try:
            doc = _text_doc(fd, info, str(raw), options)
        finally:
            os.close(fd)
        doc.update(name=str(raw), path=os.path.realpath(path))
        docs.append(doc)
    total = sum(d["size"] for d in docs)
    for doc in docs:
        if total <= options.max_str_bytes:
            doc["mode"] = "eager"
        else:
            doc["mode"] = "lazy" if doc["size"] > options.max_file_bytes else "cached"

    def describe(context: Context) -> ContextHandle:
        indexes = [_index(d) for d in context.docs]
        for doc, index in zip(context.docs, indexes, strict=True):
            context.notes.extend(_notes(doc["label"], index))
        return _documents_handle(indexes, eager=total <= options.max_str_bytes)

    return Context(kind="documents", docs=docs, options=options, describer=describe)


def _documents_handle(indexes: Sequence[TextIndex], *, eager: bool) -> ContextHandle:
    return ContextHandle(
        id=manifest_id([i.sha256 for i in indexes]),
        kind="documents",
        form="list" if eager else "documents",
        chars=sum(i.chars for i in indexes),
        lines=sum(i.lines for i in indexes),
        bytes=sum(i.size for i in indexes),
        parts=len(indexes),
        head=indexes[0].head if indexes else "",
        tail=indexes[-1].tail if indexes else "",
        replaced=sum(i.replaced for i in indexes),
    )


def from_stream(
    stream: BinaryIO, name: str = "<stdin>", options: ContextOptions | None = None
) -> Context:
    """A stream copied to an unnamed spool file (never held whole in memory), then a text."""
    options = options or ContextOptions()
    with Spool.open() as spool:  # closed if the copy fails
        while block := stream.read(COPY_BLOCK):
            spool.file.write(block)
        spool.file.flush()
        fd = spool.fd
        doc = _text_doc(fd, os.fstat(fd), name, options)
    doc["fd"] = fd

    def describe(context: Context) -> ContextHandle:
        index = _index(context.docs[0], fd)
        context.notes.extend(_notes(name, index, context.docs[0], options.max_str_bytes))
        return _text_handle(index, context.docs[0], name)

    return Context(kind="text", docs=[doc], options=options, describer=describe, spool=spool)


def from_directory(
    raw: str | os.PathLike[str], options: ContextOptions | None = None, *, label: str | None = None
) -> Context:
    """A directory's text files, read on demand (see :mod:`rlmx.context.walk`)."""
    options = options or ContextOptions()
    root = check_path(raw)
    listing = walk_directory(root, options)
    docs = [
        {
            "name": f.rel,
            "header": f"# file: {f.rel}\n",
            "path": f.real,
            "size": f.size,
            "mtime_ns": f.mtime_ns,
            "span": [0, f.size],
            "errors": "replace",
            "mode": "cached",
            "bom": True,
        }
        for f in listing.files
        if f.format is None
    ]
    if len(docs) < len(listing.files):  # some are documents, converted on demand
        return from_listing(root, listing, docs, options, label=label)
    total = sum(f.size for f in listing.files)
    manifest = [f"{f.rel}\0{f.size}\0{f.mtime_ns}" for f in listing.files]
    shown = [f"{f.rel} ({f.size:,} bytes)" for f in listing.files[:20]]
    if len(listing.files) > 20:
        shown.append(f"... and {len(listing.files) - 20:,} more files")
    handle = ContextHandle(
        id=manifest_id(manifest),
        kind="directory",
        form="directory",
        chars=None,
        lines=None,
        bytes=total,
        parts=len(docs),
        head="\n".join(shown),
        name=label or str(raw),
        files=tuple(f.rel for f in listing.files[:50]),
    )
    real_root = os.path.realpath(root)
    return Context(
        kind="directory",
        docs=docs,
        options=options,
        describer=lambda c: handle,
        root=real_root,
        notes=listing.notes(),
        bind_paths=[real_root],
    )
