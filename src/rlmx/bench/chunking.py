"""Cutting a context into pieces for the baselines: on line breaks, never inside a line."""

from __future__ import annotations

from rlmx.context import ContextValue


def chunk_text(text: str, size: int) -> list[str]:
    """Pieces of about ``size`` characters, cut at the last line break before the limit."""
    size = max(1, size)
    chunks, start = [], 0
    while start < len(text):
        end = min(len(text), start + size)
        if end < len(text):
            cut = text.rfind("\n", start + size // 2, end)
            end = cut + 1 if cut != -1 else end
        chunks.append(text[start:end])
        start = end
    return chunks


def chunk_context(context: ContextValue, size: int) -> list[str]:
    """A string is cut into pieces; a list of documents is cut document by document."""
    if isinstance(context, str):
        return chunk_text(context, size)
    chunks: list[str] = []
    for doc in context:
        if len(doc) <= size:
            chunks.append(doc)
            continue
        head = doc.split("\n", 1)[0] + "\n" if doc.startswith("# file:") else ""
        for index, piece in enumerate(chunk_text(doc, size - len(head))):
            chunks.append(piece if index == 0 or not head else head + piece)
    return chunks


def truncate_head(text: str, max_chars: int) -> tuple[str, bool]:
    """The first ``max_chars`` characters (cut at a line break), and whether anything was cut."""
    if len(text) <= max_chars:
        return text, False
    cut = text.rfind("\n", max_chars // 2, max_chars)
    return text[: cut if cut != -1 else max_chars], True
