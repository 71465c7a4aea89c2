"""Describing a context held in memory: its sha256, size, lines and a head/tail preview.

``describe_context`` is kept for callers of the earlier API; it returns the same
:class:`~rlmx.context.base.ContextHandle` that every context has (``ContextInfo`` is an alias).
"""

from __future__ import annotations

import hashlib

from rlmx.context.base import ContextHandle
from rlmx.context.base import ContextValue as ContextValue

PREVIEW_CHARS = 300
_HASH_CHUNK = 1 << 22

ContextInfo = ContextHandle


def _lines(text: str) -> int:
    return text.count("\n") + (1 if text and not text.endswith("\n") else 0)


def _hash_str(hasher: hashlib._Hash, text: str) -> int:
    """Feed the UTF-8 text in slices, so a 100 MB str is never copied whole; returns its bytes."""
    size = 0
    for start in range(0, len(text), _HASH_CHUNK):
        data = text[start : start + _HASH_CHUNK].encode("utf-8", "surrogatepass")
        hasher.update(data)
        size += len(data)
    return size


def describe_value(context: ContextValue, *, preview_chars: int = PREVIEW_CHARS) -> ContextHandle:
    """The handle of a str (a text) or of a sequence of str (documents)."""
    if isinstance(context, str):
        hasher = hashlib.sha256()
        size = _hash_str(hasher, context)
        return ContextHandle(
            id=hasher.hexdigest(),
            kind="text",
            form="str",
            chars=len(context),
            lines=_lines(context),
            bytes=size,
            parts=1,
            head=context[:preview_chars],
            tail=context[-preview_chars:] if len(context) > preview_chars else "",
        )
    hasher = hashlib.sha256()
    chars = lines = size = 0
    for part in context:
        encoded = part.encode("utf-8", "surrogatepass")
        hasher.update(len(encoded).to_bytes(8, "little"))
        hasher.update(encoded)
        chars += len(part)
        lines += _lines(part)
        size += len(encoded)
    last = context[-1] if len(context) else ""
    return ContextHandle(
        id=hasher.hexdigest(),
        kind="documents",
        form="list",
        chars=chars,
        lines=lines,
        bytes=size,
        parts=len(context),
        head=context[0][:preview_chars] if len(context) else "",
        tail=last[-preview_chars:],
    )


def describe_context(context: ContextValue, *, preview_chars: int = PREVIEW_CHARS) -> ContextInfo:
    return describe_value(context, preview_chars=preview_chars)
