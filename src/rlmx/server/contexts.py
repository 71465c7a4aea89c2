"""Contexts for runs: uploads kept once by sha256, and server-side paths under allowed roots,
opened as the CLI opens ``--context`` (lazily: a large file mapped, a directory read on demand)."""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from anyio import to_thread

from rlmx.context import ContextInput
from rlmx.context.files import open_regular
from rlmx.context.loading import decode_text
from rlmx.context.scan import looks_binary
from rlmx.context.sources import from_files, from_path
from rlmx.errors import ContextError
from rlmx.server.errors import ApiError
from rlmx.trajectory.contexts import ContextTable

CONTEXT_ID = re.compile(r"^[0-9a-f]{64}$")


def resolve_allowed(raw: str, roots: Sequence[Path], *, param: str) -> Path:
    """``raw`` as a path inside one of ``roots`` (relative to the first root it exists under).

    Refuses, with 403, anything that leaves the roots: ``..``, absolute paths elsewhere,
    symbolic links pointing out.
    """
    if not roots:
        raise ApiError(
            403,
            "server-side paths are disabled: start the server with --allow-path DIR, "
            "or upload the context with POST /v1/contexts",
            param=param,
        )
    if not raw or "\x00" in raw:
        raise ApiError(422, "a path must be a non-empty string without NUL bytes", param=param)
    candidates = []
    for root in roots:
        base = root.resolve()
        target = (base / raw).resolve()
        if not target.is_relative_to(base):
            continue
        if target.exists():
            return target
        candidates.append(target)
    if not candidates:
        raise ApiError(403, f"path {raw!r} is outside the allowed roots", param=param)
    raise ApiError(422, f"no file or folder {raw!r} under the allowed roots", param=param)


class ContextBlobs:
    """Uploaded contexts: one file per sha256 of its bytes, plus a row in ``table``."""

    def __init__(self, folder: Path, table: ContextTable, *, max_bytes: int) -> None:
        self.folder = folder
        self.table = table
        self.max_bytes = max_bytes

    def path(self, context_id: str) -> Path:
        return self.folder / context_id

    async def upload(
        self, chunks: AsyncIterator[bytes], *, name: str | None, declared: int | None
    ) -> dict[str, Any]:
        if declared is not None and declared > self.max_bytes:
            raise self._too_large()
        self.folder.mkdir(parents=True, exist_ok=True)
        hasher = hashlib.sha256()
        size = 0
        head = b""
        fd, tmp = tempfile.mkstemp(dir=self.folder, prefix=".upload-")
        try:
            with os.fdopen(fd, "wb") as out:
                async for chunk in chunks:
                    size += len(chunk)
                    if size > self.max_bytes:
                        raise self._too_large()
                    if len(head) < 8192:
                        head += chunk[: 8192 - len(head)]
                    hasher.update(chunk)
                    out.write(chunk)
            if size == 0:
                raise ApiError(422, "the uploaded context is empty")
            if looks_binary(head):
                raise ApiError(422, "the upload looks like binary data (it has NUL bytes)")
            context_id = hasher.hexdigest()
            info = await to_thread.run_sync(self._keep, Path(tmp), context_id, name, size)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        return info

    def _keep(self, tmp: Path, context_id: str, name: str | None, size: int) -> dict[str, Any]:
        text, note = decode_text(tmp.read_bytes(), name or "upload")
        lines = text.count("\n") + (1 if text and not text.endswith("\n") else 0)
        os.replace(tmp, self.path(context_id))
        self.table.add(context_id, name=name, size=size, chars=len(text), lines=lines)
        info = self.table.get(context_id) or {}
        return {**info, "note": note}

    def info(self, context_id: str) -> dict[str, Any] | None:
        """What the table knows of an upload (blocking: call in a thread)."""
        return self.table.get(context_id)

    def _too_large(self) -> ApiError:
        mb = self.max_bytes / (1024 * 1024)
        return ApiError(
            413,
            f"the context is larger than this server's upload limit of {self.max_bytes:,} bytes "
            f"({mb:g} MiB); start it with a larger --max-upload-mb, or pass a server-side path",
        )

    def locate(self, context_id: str, *, param: str) -> Path:
        """The stored file of the upload ``context_id``."""
        if not CONTEXT_ID.match(context_id):
            raise ApiError(422, f"{context_id!r} is not a context id (64 hex digits)", param=param)
        path = self.path(context_id)
        if not path.is_file():
            raise ApiError(
                422, f"no context {context_id}: upload it with POST /v1/contexts", param=param
            )
        return path

    def label(self, context_id: str) -> str:
        """What notes and errors call an upload: its name, else its id."""
        info = self.table.get(context_id) or {}
        return str(info.get("name") or context_id)


@dataclass(frozen=True, slots=True)
class _Source:
    """One file or directory of a run's context, with what the client called it."""

    path: Path
    label: str
    param: str


def gather_context(
    blobs: ContextBlobs,
    roots: Sequence[Path],
    *,
    context_ids: Sequence[str],
    paths: Sequence[str],
    text: str | None,
) -> tuple[ContextInput, list[str]]:
    """The run's context and the notes on opening it (blocking: call in a thread).

    As the CLI opens ``--context``: one upload or one path is opened by
    :func:`~rlmx.context.sources.from_path` (a text, a JSONL file of documents, or a directory
    read on demand); several are documents (:func:`~rlmx.context.sources.from_files`); a
    directory comes alone. Inline ``text`` alone is the str; with files, the files are read
    here (at most the upload limit in all) and the text is the last of the documents.
    """
    sources: list[_Source] = []
    for i, cid in enumerate(context_ids):
        param = f"context_ids[{i}]"
        sources.append(_Source(blobs.locate(cid, param=param), blobs.label(cid), param))
    for i, raw in enumerate(paths):
        param = f"paths[{i}]"
        sources.append(_Source(resolve_allowed(raw, roots, param=param), raw, param))
    if not sources:
        if text is None:
            raise ApiError(
                422, "no context given: pass context_ids, paths or text", param="context_ids"
            )
        return text, []
    if len(sources) > 1 or text is not None:
        for source in sources:
            if source.path.is_dir():
                raise ApiError(
                    422,
                    f"a directory ({source.label}) must be the only context: pass no other "
                    "context_ids, paths or text with it",
                    param=source.param,
                )
    if text is not None:
        docs, notes = _read_all(sources, max_bytes=blobs.max_bytes)
        return [*docs, text], notes
    try:
        if len(sources) == 1:
            context = from_path(sources[0].path, label=sources[0].label)
        else:
            context = from_files([str(s.path) for s in sources])
        context.describe()  # the pass that hashes and counts: any problem is a 422 here
    except ContextError as exc:
        raise _refusal(exc, sources) from None
    return context, [_relabel(note, sources) for note in context.notes]


def _read_all(sources: Sequence[_Source], *, max_bytes: int) -> tuple[list[str], list[str]]:
    """The files' texts (invalid UTF-8 replaced), at most ``max_bytes`` in all, and notes."""
    docs: list[str] = []
    notes: list[str] = []
    left = max_bytes
    for source in sources:
        try:
            fd, info = open_regular(source.path)
        except ContextError as exc:
            raise _refusal(exc, sources, source) from None
        with os.fdopen(fd, "rb") as file:
            data = file.read(left + 1) if info.st_size <= left else None
        if data is None or len(data) > left:
            raise ApiError(
                422,
                f"with inline text, the files are read into memory, at most {max_bytes:,} bytes "
                "in all (the upload limit): upload the text with POST /v1/contexts and pass its "
                "id with the others, or leave the text out",
                param=source.param,
            )
        left -= len(data)
        if looks_binary(data):
            raise ApiError(
                422,
                f"{source.label} looks like a binary file (it has NUL bytes); pass a text file",
                param=source.param,
            )
        doc, note = decode_text(data, source.label)
        docs.append(doc)
        if note:
            notes.append(note)
    return docs, notes


def _relabel(message: str, sources: Sequence[_Source]) -> str:
    """``message`` with each source's server path replaced by what the client called it."""
    names = {str(s.path): s.label for s in sources}
    pattern = "|".join(re.escape(p) for p in sorted(names, key=len, reverse=True))
    return re.sub(pattern, lambda m: names[m.group(0)], message)


def _refusal(
    exc: ContextError, sources: Sequence[_Source], source: _Source | None = None
) -> ApiError:
    """A 422 naming the source the error is about (the longest path it mentions)."""
    message = str(exc)
    if source is None:
        mentioned = [s for s in sources if str(s.path) in message]
        source = max(mentioned, key=lambda s: len(str(s.path)), default=sources[0])
    return ApiError(422, _relabel(message, sources), param=source.param)
