"""Contexts for runs: uploads kept once by sha256, and server-side paths under allowed roots."""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

from anyio import to_thread

from rlmx.context import ContextValue
from rlmx.context.loading import decode_text, load_contexts, looks_binary
from rlmx.errors import ContextError
from rlmx.server.errors import ApiError
from rlmx.trajectory.store import RunStore

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
    """Uploaded contexts: one file per sha256 of its bytes, plus a row in the store."""

    def __init__(self, folder: Path, store: RunStore, *, max_bytes: int) -> None:
        self.folder = folder
        self.store = store
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
        self.store.add_context(context_id, name=name, size=size, chars=len(text), lines=lines)
        info = self.store.get_context(context_id) or {}
        return {**info, "note": note}

    def _too_large(self) -> ApiError:
        mb = self.max_bytes / (1024 * 1024)
        return ApiError(
            413,
            f"the context is larger than this server's upload limit of {self.max_bytes:,} bytes "
            f"({mb:g} MiB); start it with a larger --max-upload-mb, or pass a server-side path",
        )

    def read(self, context_id: str, *, param: str) -> str:
        if not CONTEXT_ID.match(context_id):
            raise ApiError(422, f"{context_id!r} is not a context id (64 hex digits)", param=param)
        try:
            data = self.path(context_id).read_bytes()
        except FileNotFoundError:
            raise ApiError(
                422, f"no context {context_id}: upload it with POST /v1/contexts", param=param
            ) from None
        return decode_text(data, context_id)[0]


def gather_context(
    blobs: ContextBlobs,
    roots: Sequence[Path],
    *,
    context_ids: Sequence[str],
    paths: Sequence[str],
    text: str | None,
) -> tuple[ContextValue, list[str]]:
    """The run's context value and the notes on loading it (blocking: call in a thread)."""
    parts: list[str] = []
    notes: list[str] = []
    for i, cid in enumerate(context_ids):
        parts.append(blobs.read(cid, param=f"context_ids[{i}]"))
    resolved = [resolve_allowed(p, roots, param=f"paths[{i}]") for i, p in enumerate(paths)]
    for i, path in enumerate(resolved):
        try:
            loaded = load_contexts([str(path)])
        except ContextError as exc:
            raise ApiError(422, str(exc), param=f"paths[{i}]") from None
        notes.extend(loaded.notes)
        value = loaded.value
        parts.extend([value] if isinstance(value, str) else value)
        if len(resolved) == 1 and not context_ids and text is None and isinstance(value, list):
            return list(value), notes
    if text is not None:
        parts.append(text)
    if not parts:
        raise ApiError(
            422, "no context given: pass context_ids, paths or text", param="context_ids"
        )
    return (parts[0] if len(parts) == 1 else parts), notes
