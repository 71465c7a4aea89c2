"""Bounded capture of what a cell prints: the head and the tail are kept, the middle counted."""

from __future__ import annotations

from collections import deque


class OutputCapture:
    def __init__(self, limit: int) -> None:
        self._limit = max(2, limit)
        self._head: list[str] = []
        self._head_len = 0
        self._tail: deque[str] = deque()
        self._tail_len = 0
        self.total = 0

    def write(self, text: str) -> int:
        self.total += len(text)
        room = self._limit // 2 - self._head_len
        if room > 0:
            self._head.append(text[:room])
            self._head_len += min(room, len(text))
            text = text[room:]
        if text:
            self._tail.append(text)
            self._tail_len += len(text)
            while self._tail and self._tail_len - len(self._tail[0]) >= self._limit // 2:
                self._tail_len -= len(self._tail.popleft())
        return len(text)

    def getvalue(self) -> tuple[str, bool]:
        """The captured text and whether anything was cut out of it."""
        head = "".join(self._head)
        tail = "".join(self._tail)
        if self.total <= self._limit:
            return head + tail, False
        tail = tail[-(self._limit // 2) :]
        dropped = self.total - len(head) - len(tail)
        marker = f"\n[... {dropped:,} chars not shown, of {self.total:,} printed ...]\n"
        return head + marker + tail, True


def truncate(text: str, limit: int) -> tuple[str, bool]:
    """Cut ``text`` to about ``limit`` chars, keeping its head and tail, with a visible marker."""
    if len(text) <= limit:
        return text, False
    capture = OutputCapture(limit)
    capture.write(text)
    return capture.getvalue()
