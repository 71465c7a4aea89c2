"""A JSONL file as documents: the string in one field of each record, spooled to an unnamed file
(never held whole in memory), hashed and counted as it is read."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from rlmx.context.base import ContextHandle, ContextOptions
from rlmx.context.files import Spool, check_path
from rlmx.context.opened import Context
from rlmx.errors import ContextError


def from_jsonl(
    raw: str | os.PathLike[str], field: str, options: ContextOptions | None = None
) -> Context:
    """One document per line of a JSONL file: the string in ``field`` of each object."""
    options = options or ContextOptions()
    path = check_path(raw)
    docs: list[dict[str, Any]] = []
    hasher, chars, lines, offset = hashlib.sha256(), 0, 0, 0
    with Spool.open() as spool:  # closed if anything below raises
        try:
            with open(path, "rb") as file:
                for number, line in enumerate(file, 1):
                    if not line.strip():
                        continue
                    text = _jsonl_text(line, field, raw, number)
                    data = text.encode("utf-8", "surrogatepass")
                    spool.file.write(data)
                    hasher.update(len(data).to_bytes(8, "little") + data)
                    chars += len(text)
                    lines += text.count("\n") + (1 if text and not text.endswith("\n") else 0)
                    docs.append({"span": [offset, offset + len(data)], "label": f"{raw}:{number}"})
                    offset += len(data)
            spool.file.flush()
        except OSError as exc:
            raise ContextError(f"cannot read {raw}: {exc.strerror}") from None
        if not docs:
            raise ContextError(f"{raw} has no JSON lines with a {field!r} field")
    eager = offset <= options.max_str_bytes
    for doc in docs:
        doc.update(name=None, fd=spool.fd, size=offset, mtime_ns=None, errors="surrogatepass")
        doc["mode"] = "eager" if eager else "cached"
    first = _jsonl_text(_first_line(path), field, raw, 1)
    handle = ContextHandle(
        id=hasher.hexdigest(),
        kind="documents",
        form="list" if eager else "documents",
        chars=chars,
        lines=lines,
        bytes=offset,
        parts=len(docs),
        head=first[: options.preview_chars],
        name=str(raw),
    )
    note = f"{raw}: read as {len(docs):,} documents from the {field!r} field"
    return Context(
        kind="documents",
        docs=docs,
        options=options,
        describer=lambda c: handle,
        notes=[note],
        spool=spool,
    )


def _first_line(path: Path) -> bytes:
    with open(path, "rb") as file:
        for line in file:
            if line.strip():
                return line
    return b"{}"


def _jsonl_text(line: bytes, field: str, raw: object, number: int) -> str:
    try:
        record = json.loads(line)
    except ValueError as exc:
        raise ContextError(f"{raw} line {number} is not valid JSON: {exc}") from None
    value = record.get(field) if isinstance(record, dict) else None
    if not isinstance(value, str):
        raise ContextError(f"{raw} line {number} has no string field {field!r}")
    return value


def jsonl_field_of(path: Path, wanted: str | None) -> str | None:
    """The text field to read a ``.jsonl`` file by: the one asked for, else ``text`` if its
    first record has it; None to read the file as plain text."""
    if wanted:
        return wanted
    if path.suffix.lower() not in (".jsonl", ".ndjson"):
        return None
    try:
        record = json.loads(_first_line(path))
    except (OSError, ValueError):
        return None
    return "text" if isinstance(record, dict) and isinstance(record.get("text"), str) else None
