"""Decoding text read into memory: UTF-8 with invalid bytes replaced, and a note saying so.

The context stores (:mod:`rlmx.context.sources`) read files on demand; this is for the few
bytes held whole: an upload being checked, or the files a server run takes with inline text.
"""

from __future__ import annotations


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
