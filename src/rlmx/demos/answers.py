"""Reading a model's free-text answer: its numbers, its words, its list items.

Checks are tolerant of form (``32``, ``There are 32 distinct IPs.``, ``{'p50': 0.26}``,
``[('proxy', 2990), ...]``) and strict about content: what these return is then compared with
a result computed from the data.
"""

from __future__ import annotations

import re

_IPV4 = re.compile(r"\b(?:\d{1,3}\.){3}\d{1,3}\b")
_NUMBER = re.compile(r"(?<![\w.])-?\d+(?:\.\d+)?(?:[eE]-?\d+)?(?![\d.]\d)")
# Labels of percentiles (p50, 95th, 99%) are names, not values.
_PERCENTILE_LABEL = re.compile(r"\b(?:p\d{1,2}(?:\.\d+)?|\d{1,2}(?:st|nd|rd|th)|\d{1,2}\s*%)", re.I)
_ITEM_BREAK = re.compile(
    r"\n|;|\||(?<=\d)\s*,\s*|\)\s*,\s*|\]\s*,\s*|'\s*,\s*'|\"\s*,\s*\"|(?:^|\s)\d+[.)]\s+"
)
_WORD = re.compile(r"[a-z]{3,}")


def without_ips(text: str) -> str:
    return _IPV4.sub(" ", text)


def numbers(text: str) -> list[float]:
    """Every number in ``text``, in order (IP addresses and
    percentile labels such as ``p95`` or ``99th`` left out)."""
    text = _PERCENTILE_LABEL.sub(" ", without_ips(text))
    return [float(m.group().replace(",", "")) for m in _NUMBER.finditer(text)]


def first_integer(text: str) -> int | None:
    """The first whole number of ``text`` (``32`` in ``There are 32 IPs``), else None."""
    for value in numbers(text):
        if value == int(value):
            return int(value)
    return None


def words(text: str, *, ignore: frozenset[str] = frozenset()) -> list[str]:
    """The distinct words of ``text`` (lowercase letters, at least 3), in order of first use."""
    seen: dict[str, None] = {}
    for word in _WORD.findall(text.lower()):
        if word not in ignore:
            seen.setdefault(word, None)
    return list(seen)


def items(text: str) -> list[str]:
    """``text`` cut into list items: lines, numbered entries, elements of a printed list."""
    return [part.strip() for part in _ITEM_BREAK.split(text) if part and part.strip()]
