"""How the server opened each of its sessions, kept beside the run store to reopen them.

The store's ``sessions`` table holds what rebuilds a session's REPL (its history and recorded
cells) and the id of its context, not where the context came from nor which models answered.
The server writes that down here when it opens a session, one small JSON file per session, and
reads it again when a session is asked after a restart: uploads are found by id, paths are
checked against the allowed roots of the day, model specs are checked again. A chat
conversation's session has no sources (every request brings its context again) but the keys
of the conversation it continues.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

SCHEMA_VERSION = 1
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
# A chat session remembers the keys of its last few turns (a client may retry or regenerate).
CHAT_KEYS = 8

OriginKind = Literal["sources", "chat"]


@dataclass(frozen=True, slots=True)
class SessionOrigin:
    """Where a session's context came from, its model specs (as the client gave them) and its
    limits (the fields the client set, applied over the server's own limits)."""

    kind: OriginKind
    context_ids: tuple[str, ...] = ()
    paths: tuple[str, ...] = ()
    model: str | None = None
    sub_model: str | None = None
    limits: dict[str, Any] = field(default_factory=dict)
    chat_keys: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        for name in ("context_ids", "paths", "chat_keys"):
            data[name] = list(data[name])
        return {"schema_version": SCHEMA_VERSION, **data}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SessionOrigin:
        kind: OriginKind = "chat" if data.get("kind") == "chat" else "sources"
        return cls(
            kind=kind,
            context_ids=tuple(str(c) for c in data.get("context_ids", ())),
            paths=tuple(str(p) for p in data.get("paths", ())),
            model=data.get("model"),
            sub_model=data.get("sub_model"),
            limits=dict(data.get("limits") or {}),
            chat_keys=tuple(str(k) for k in data.get("chat_keys", ())),
        )

    def with_key(self, key: str) -> SessionOrigin:
        kept = (*(k for k in self.chat_keys if k != key), key)[-CHAT_KEYS:]
        return SessionOrigin(
            kind=self.kind,
            context_ids=self.context_ids,
            paths=self.paths,
            model=self.model,
            sub_model=self.sub_model,
            limits=self.limits,
            chat_keys=kept,
        )

    def describe(self) -> dict[str, Any]:
        """What a client is shown of it."""
        return {
            "kind": self.kind,
            "context_ids": list(self.context_ids),
            "paths": list(self.paths),
            "model": self.model,
            "sub_model": self.sub_model,
            "limits": dict(self.limits),
        }


class OriginFiles:
    """One JSON file per session name in ``folder``. Blocking: call from a worker thread."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def _path(self, name: str) -> Path:
        if not NAME.match(name):
            raise ValueError(f"not a session name: {name!r}")
        return self.folder / f"{name}.json"

    def read(self, name: str) -> SessionOrigin | None:
        try:
            data = json.loads(self._path(name).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return SessionOrigin.from_dict(data) if isinstance(data, dict) else None

    def write(self, name: str, origin: SessionOrigin) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.folder, prefix=".origin-")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                json.dump(origin.to_dict(), out)
            os.replace(tmp, self._path(name))
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)

    def delete(self, name: str) -> None:
        self._path(name).unlink(missing_ok=True)

    def all(self) -> dict[str, SessionOrigin]:
        found: dict[str, SessionOrigin] = {}
        if not self.folder.is_dir():
            return found
        for path in self.folder.glob("*.json"):
            origin = self.read(path.stem) if NAME.match(path.stem) else None
            if origin is not None:
                found[path.stem] = origin
        return found

    def prune(self, keep: set[str]) -> list[str]:
        """Delete the files of sessions not in ``keep`` (expired or deleted from the store)."""
        gone = [name for name in self.all() if name not in keep]
        for name in gone:
            self.delete(name)
        return gone
