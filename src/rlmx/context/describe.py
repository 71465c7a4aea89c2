"""A context's shape, size and a short preview: what the root prompt shows instead of the data."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

ContextValue = str | Sequence[str]

PREVIEW_CHARS = 300


@dataclass(frozen=True, slots=True)
class ContextInfo:
    kind: str
    chars: int
    lines: int
    parts: int
    sha256: str
    head: str

    def summary(self) -> str:
        """One line for the root prompt, e.g. ``a str of 3,227,580 chars, 66,033 lines``."""
        if self.kind == "str":
            return f"a str of {self.chars:,} chars, {self.lines:,} lines"
        return f"a list of {self.parts:,} str (total {self.chars:,} chars, {self.lines:,} lines)"

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "chars": self.chars,
            "lines": self.lines,
            "parts": self.parts,
            "sha256": self.sha256,
            "head": self.head,
        }


_HASH_CHUNK = 1 << 22


def _sha256_of_str(text: str) -> str:
    """The sha256 of the UTF-8 text, hashed in slices so a 100 MB context is never copied whole."""
    hasher = hashlib.sha256()
    for start in range(0, len(text), _HASH_CHUNK):
        hasher.update(text[start : start + _HASH_CHUNK].encode("utf-8", "surrogatepass"))
    return hasher.hexdigest()


def describe_context(context: ContextValue, *, preview_chars: int = PREVIEW_CHARS) -> ContextInfo:
    if isinstance(context, str):
        digest = _sha256_of_str(context)
        return ContextInfo(
            kind="str",
            chars=len(context),
            lines=context.count("\n") + (1 if context and not context.endswith("\n") else 0),
            parts=1,
            sha256=digest,
            head=context[:preview_chars],
        )
    hasher = hashlib.sha256()
    chars = lines = 0
    for part in context:
        encoded = part.encode("utf-8", "surrogatepass")
        hasher.update(len(encoded).to_bytes(8, "little"))
        hasher.update(encoded)
        chars += len(part)
        lines += part.count("\n") + (1 if part and not part.endswith("\n") else 0)
    head = context[0][:preview_chars] if len(context) else ""
    return ContextInfo(
        kind="list",
        chars=chars,
        lines=lines,
        parts=len(context),
        sha256=hasher.hexdigest(),
        head=head,
    )
