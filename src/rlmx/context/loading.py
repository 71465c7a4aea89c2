"""Turning paths and streams into a context value, with clear errors and honest notes.

A single file becomes a ``str``; several files, or a directory, become a list of documents.
Nothing is half-loaded: any error is raised before a value is returned.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from rlmx.context.describe import ContextValue
from rlmx.errors import ContextError

BINARY_SNIFF_BYTES = 8192
SKIP_DIRS = frozenset({".git", ".hg", ".svn", "__pycache__", "node_modules", ".venv", ".tox"})


@dataclass(frozen=True, slots=True)
class LoadedContext:
    value: ContextValue
    sources: tuple[str, ...]
    notes: tuple[str, ...] = field(default=())


def decode_text(data: bytes, name: str) -> tuple[str, str | None]:
    """UTF-8 text, with invalid bytes replaced; the note says how many were."""
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    try:
        return data.decode("utf-8"), None
    except UnicodeDecodeError:
        text = data.decode("utf-8", errors="replace")
        bad = text.count("\ufffd") - data.decode("utf-8", "ignore").count("\ufffd")
        return (
            text,
            f"{name}: not valid UTF-8; {bad:,} invalid byte sequence(s) replaced with U+FFFD",
        )


def looks_binary(data: bytes) -> bool:
    return b"\x00" in data[:BINARY_SNIFF_BYTES]


def _read_file(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise ContextError(f"context file not found: {path}") from None
    except PermissionError:
        raise ContextError(f"cannot read context file {path}: permission denied") from None
    except IsADirectoryError:
        raise ContextError(f"{path} is a directory") from None
    except OSError as exc:
        raise ContextError(f"cannot read context file {path}: {exc.strerror}") from None


def load_file(path: Path) -> tuple[str, str | None]:
    data = _read_file(path)
    if looks_binary(data):
        raise ContextError(f"{path} looks like a binary file (it has NUL bytes); pass a text file")
    return decode_text(data, str(path))


def load_stream(stream: BinaryIO, name: str = "<stdin>") -> tuple[str, str | None]:
    data = stream.read()
    if looks_binary(data):
        raise ContextError(f"{name} looks like binary data (it has NUL bytes); pass text")
    return decode_text(data, name)


def load_directory(root: Path) -> tuple[list[str], list[str], list[str]]:
    """Every text file under ``root`` as a document headed by its relative path."""
    docs, names, notes = [], [], []
    skipped = 0
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames[:] = sorted(d for d in dirnames if d not in SKIP_DIRS and not d.startswith("."))
        for filename in sorted(filenames):
            path = Path(dirpath) / filename
            if path.is_symlink() or not path.is_file():
                continue
            try:
                data = path.read_bytes()
            except OSError:
                skipped += 1
                continue
            if looks_binary(data):
                skipped += 1
                continue
            text, note = decode_text(data, str(path))
            rel = path.relative_to(root).as_posix()
            docs.append(f"# file: {rel}\n{text}")
            names.append(rel)
            if note:
                notes.append(note)
    if not docs:
        raise ContextError(f"directory {root} has no readable text files")
    if skipped:
        notes.append(f"{root}: skipped {skipped:,} binary or unreadable file(s)")
    return docs, names, notes


def load_contexts(paths: Sequence[str], *, stdin: BinaryIO | None = None) -> LoadedContext:
    """Load ``--context`` arguments: files, directories, or ``-`` for standard input."""
    if not paths:
        raise ContextError("no context given: pass --context PATH (a file, a directory, or -)")
    parts: list[str] = []
    sources: list[str] = []
    notes: list[str] = []
    single_text = len(paths) == 1
    for raw in paths:
        if raw == "-":
            if stdin is None:
                raise ContextError("--context - needs standard input")
            text, note = load_stream(stdin)
            parts.append(text)
            sources.append("<stdin>")
        else:
            path = Path(raw).expanduser()
            if path.is_dir():
                docs, names, dir_notes = load_directory(path)
                parts.extend(docs)
                sources.extend(str(path / n) for n in names)
                notes.extend(dir_notes)
                single_text = False
                continue
            if not path.exists():
                raise ContextError(f"context file not found: {raw}")
            text, note = load_file(path)
            parts.append(text)
            sources.append(str(path))
        if note:
            notes.append(note)
    value: ContextValue = parts[0] if single_text else parts
    return LoadedContext(value=value, sources=tuple(sources), notes=tuple(notes))
