"""Regular expressions over text held in pieces: a pattern compiled for ``str`` and, where that
is exactly equivalent, for ASCII bytes; and the search of one window of a sweep.

Standard library only: the sandbox worker imports this module under ``python -S``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

MARGIN = 1 << 10  # a match ending this close to a window's end is searched again in a wider one
META = frozenset(".^$*+?{}[]\\|()")
MAX_LITERAL = 1 << 10


class Compiled:
    """A pattern compiled for ``str`` text, and for ASCII bytes when that is exactly equivalent
    (an ASCII pattern without ``\\s``, whose meaning differs between the two)."""

    __slots__ = ("bytes", "literal", "source", "str")

    def __init__(self, pattern: object, flags: int = 0, *, literal: bool = False) -> None:
        if isinstance(pattern, re.Pattern):
            if not isinstance(pattern.pattern, str):
                raise TypeError("use a str pattern, not a bytes one")
            flags |= pattern.flags & ~re.UNICODE
            pattern = pattern.pattern
        if not isinstance(pattern, str):
            raise TypeError(f"a pattern must be a str, not {type(pattern).__name__}")
        if not pattern:
            raise ValueError("the pattern is empty")
        source = re.escape(pattern) if literal else pattern
        try:
            self.str: re.Pattern[str] = re.compile(source, flags)
        except re.error as exc:
            raise ValueError(f"bad regular expression {pattern!r}: {exc}") from None
        self.source = pattern
        # A plain text, counted with str.count / bytes.count instead of the regex engine.
        plain = literal or not (META & set(pattern) or flags & (re.IGNORECASE | re.VERBOSE))
        self.literal = pattern if plain and len(pattern) <= MAX_LITERAL else None
        self.bytes: re.Pattern[bytes] | None = None
        if source.isascii() and "\\s" not in source.lower():
            try:
                self.bytes = re.compile(source.encode("ascii"), flags & ~re.UNICODE)
            except re.error:
                self.bytes = None


# A match: (start, end, line, snippet); ``line`` counts from 1 (0 when not asked for), the
# snippet is None when not asked for or not at hand.
Match = tuple[int, int, int, str | None]


class Window:
    """One step of a sweep: the core searched, with text before and after it in view."""

    __slots__ = ("at_end", "at_start", "core_end", "data", "hi", "is_bytes", "last", "lo")

    def __init__(
        self,
        data: Any,
        lo: int,
        hi: int,
        core_end: int,
        at_start: bool,
        at_end: bool,
        is_bytes: bool = False,
        *,
        last: bool = False,
    ) -> None:
        self.data, self.lo, self.hi, self.core_end = data, lo, hi, core_end
        self.at_start, self.at_end, self.is_bytes, self.last = at_start, at_end, is_bytes, last

    @property
    def core_chars(self) -> int:
        return self.hi - self.lo

    def in_core(self, start: int) -> bool:
        return start < self.hi or (start == self.hi and self.last)


class Search:
    """The matches of one window that start in its core. ``redo`` when the last one ran too
    close to the window's end to be sure of it (the sweep then widens the window); after a
    search with ``lines``, ``newlines`` is the number of line breaks in the core."""

    def __init__(self, window: Window, char: int, resume: int, empty_at: int) -> None:
        self.w, self.char, self.empty_at = window, char, empty_at
        self.begin = window.lo + max(0, resume - char)
        self.redo = False
        self.last: tuple[int, int] | None = None
        self.newlines = 0

    def _matches(self, pattern: Compiled) -> Iterator[re.Match[Any]]:
        w = self.w
        if self.begin > w.hi:
            return
        rx: Any = pattern.bytes if w.is_bytes else pattern.str
        for m in rx.finditer(w.data, self.begin):
            if not w.in_core(m.start()):
                return
            yield m

    def _skip(self, m: re.Match[Any]) -> bool:
        """An empty match where the previous window's last match, also empty, was."""
        return m.start() == m.end() and self.char + m.start() - self.w.lo == self.empty_at

    def _finish(self, m: re.Match[Any] | None) -> bool:
        """Note the last match; False (and ``redo``) when it runs too close to the end."""
        w = self.w
        if m is None:
            return True
        if m.end() > len(w.data) - MARGIN and not w.at_end:
            self.redo = True
            return False
        self.last = (self.char + m.start() - w.lo, self.char + m.end() - w.lo)
        return True

    def count(self, pattern: Compiled) -> int:
        literal = pattern.literal
        if literal is not None and not _overlaps_itself(literal):
            return self._count_literal(literal)
        n, first, prev = 0, None, None
        for m in self._matches(pattern):
            if first is None:
                first = m
                if self._skip(m):
                    continue
            n += 1
            prev = m
        return n if self._finish(prev) else 0

    def _count_literal(self, literal: str) -> int:
        """Non-overlapping occurrences of a text that cannot overlap itself, at C speed: the
        same count, and the same last match, as the regex engine would give."""
        w = self.w
        if self.begin > w.hi:
            return 0
        needle: Any = literal.encode("ascii") if w.is_bytes else literal
        end = min(len(w.data), w.hi + len(needle) - (0 if w.last else 1))
        n: int = w.data.count(needle, self.begin, end)
        if n:
            at = w.data.rfind(needle, self.begin, end)
            self.last = (self.char + at - w.lo, self.char + at + len(needle) - w.lo)
        return n

    def collect(self, pattern: Compiled, lines: bool, around: int | None) -> list[Match]:
        w, prev = self.w, None
        found: list[Match] = []
        data, lo = w.data, w.lo
        newline: Any = b"\n" if w.is_bytes else "\n"
        cursor, seen = lo, 0
        for m in self._matches(pattern):
            if prev is None and not found and self._skip(m):
                continue
            prev = m
            s, e = m.span()
            if lines:
                seen += data.count(newline, cursor, s)
                cursor = s
            snippet = None
            if around is not None:
                before_ok = s - around >= 0 or w.at_start
                if before_ok and (e + around <= len(data) or w.at_end):
                    piece = data[max(0, s - around) : e + around]
                    snippet = piece.decode("ascii") if w.is_bytes else piece
            found.append((self.char + s - lo, self.char + e - lo, seen + 1, snippet))
        if not self._finish(prev):
            return []
        if lines:
            self.newlines = seen + data.count(newline, cursor, w.hi)
        return found


def _overlaps_itself(text: str) -> bool:
    return any(text[:k] == text[-k:] for k in range(1, len(text)))
