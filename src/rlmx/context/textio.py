"""Text of any size from files: UTF-8 decoding with replacement, and :class:`LazyText`.

Standard library only: the sandbox worker imports this module under ``python -S``.

A :class:`LazyText` is a file region too large to hold as a ``str``. Its positions are
characters of the decoded text, as for a ``str``; it reads with positioned reads (``pread``)
in steps of 16 MiB, never all at once. Random access (``text[a:b]``, :meth:`LazyText.lines`)
starts from the nearest checkpoint of the file's index (a ``(byte, char, line)`` triple every
few MiB, computed once by the host); sweeps (regex matches, splitting, chunking) read the
region from start to end. A file that shrinks or changes while it is being read raises
:class:`ContextChanged` instead of giving wrong text: reads are positioned reads rather than a
memory map because a mapped file that is truncated kills the process with ``SIGBUS``.
"""

from __future__ import annotations

import bisect
import mmap
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rlmx.context.regex import Compiled, Match, Search, Window

BOM = b"\xef\xbb\xbf"
STEP = 16 << 20  # bytes decoded or searched at once by a sweep
BEHIND = 4 << 10  # bytes kept before a step, for lookbehinds
TAIL = 64 << 10  # bytes read past a step, for matches that cross its end

PIECE = 1 << 20  # bytes read at once by random access

Point = tuple[int, int, int]  # (byte offset in the region, chars before it, newlines before it)


class ContextChanged(RuntimeError):
    """A file of the context changed, vanished or became unreadable after it was opened."""


def is_continuation(byte: int) -> bool:
    return 0x80 <= byte < 0xC0


def align(buf: bytes | bytearray, i: int, lo: int = 0) -> int:
    """The nearest position at or before ``i`` where UTF-8 decoding can start afresh.

    Decoding pieces cut at such positions gives exactly the text of decoding the whole.
    """
    if i >= len(buf):
        return len(buf)
    j = i
    while j > lo and i - j < 3 and is_continuation(buf[j]):
        j -= 1
    return i if is_continuation(buf[j]) else j


def align_forward(buf: bytes | bytearray, i: int) -> int:
    j = i
    while j < len(buf) and j - i < 3 and is_continuation(buf[j]):
        j += 1
    return j


class Source:
    """Where a text's bytes are: a path opened for each read (and checked against the size and
    modification time it had when the context was opened), or a file descriptor held open."""

    __slots__ = ("errors", "fd", "mtime_ns", "name", "path", "size")

    def __init__(
        self,
        *,
        name: str,
        size: int,
        path: str | None = None,
        fd: int | None = None,
        mtime_ns: int | None = None,
        errors: str = "replace",
    ) -> None:
        if (path is None) == (fd is None):
            raise ValueError("a source has a path or a file descriptor")
        self.name, self.size, self.path, self.fd = name, size, path, fd
        self.mtime_ns, self.errors = mtime_ns, errors

    @contextmanager
    def reader(self) -> Iterator[Callable[[int, int], bytes]]:
        """A ``read(offset, size)`` function over the file, checked for changes."""
        fd = self._open() if self.path is not None else self.fd
        assert fd is not None
        try:
            self._check(fd)

            def read(offset: int, size: int) -> bytes:
                try:
                    data = os.pread(fd, size, offset)
                except OSError as exc:
                    raise ContextChanged(f"cannot read {self.name}: {exc.strerror}") from None
                if len(data) < size and offset + len(data) < self.size:
                    raise self._changed(os.fstat(fd).st_size)
                return data

            yield read
        finally:
            if self.path is not None:
                os.close(fd)

    def read(self, offset: int, size: int) -> bytes:
        with self.reader() as read:
            return read(offset, size)

    def decode_all(self, start: int, end: int, *, bom: bool = False) -> str:
        """Bytes ``start`` to ``end`` decoded at once, through a read-only map of the file."""
        if end <= start:
            return ""
        fd = self._open() if self.path is not None else self.fd
        assert fd is not None
        try:
            self._check(fd)
            with mmap.mmap(fd, end, prot=mmap.PROT_READ) as mapped:
                view = memoryview(mapped)
                try:
                    if bom:
                        return decode_file(view[start:end], self.errors)
                    return decode(view[start:end], self.errors)
                finally:
                    view.release()
        finally:
            if self.path is not None:
                os.close(fd)

    def _open(self) -> int:
        assert self.path is not None
        try:
            return os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            raise ContextChanged(f"{self.name} was removed after the context was opened") from None
        except OSError as exc:
            raise ContextChanged(f"cannot read {self.name}: {exc.strerror}") from None

    def _check(self, fd: int) -> None:
        info = os.fstat(fd)
        if info.st_size != self.size or (
            self.mtime_ns is not None and info.st_mtime_ns != self.mtime_ns
        ):
            raise self._changed(info.st_size)

    def _changed(self, now: int) -> ContextChanged:
        return ContextChanged(
            f"{self.name} changed after the context was opened ({self.size:,} bytes then, "
            f"{now:,} now); open the context again to read the new contents"
        )


def decode(data: bytes | bytearray | memoryview, errors: str = "replace") -> str:
    return str(data, "utf-8", errors)


def decode_file(data: bytes | bytearray | memoryview, errors: str = "replace") -> str:
    """A whole file's text: a UTF-8 byte-order mark dropped, invalid bytes replaced."""
    view = memoryview(data)
    if view[:3] == BOM:
        view = view[3:]
    return decode(view, errors)


class LazyText:
    """A region of a file as text, read on demand. Supports ``len``, ``text[a:b]`` and the str
    methods ``find``, ``count``, ``startswith``, ``endswith`` and ``in``, plus :meth:`lines`
    and the sweeps the REPL helpers use."""

    def __init__(
        self,
        source: Source,
        start: int,
        end: int,
        *,
        chars: int,
        lines: int,
        ascii: bool,
        points: list[Point] | None = None,
    ) -> None:
        self.source, self.start, self.nbytes = source, start, end - start
        self.chars, self.line_count, self.ascii = chars, lines, ascii
        self.points: list[Point] = sorted(points or [(0, 0, 0)])
        self._chars = [p[1] for p in self.points]
        self._lines = [p[2] for p in self.points]

    # str-like ----------------------------------------------------------------------------------

    def __len__(self) -> int:
        return self.chars

    def __repr__(self) -> str:
        return (
            f"<LazyText of {self.chars:,} chars, {self.line_count:,} lines from "
            f"{self.source.name}: read it with text[a:b], lines(), grep(), count(), chunk()>"
        )

    __str__ = __repr__

    def __iter__(self) -> Iterator[str]:
        raise TypeError("a LazyText is too large to iterate by character: use chunk() or lines()")

    def __getitem__(self, key: int | slice) -> str:
        if isinstance(key, slice):
            start, stop, step = key.indices(self.chars)
            if step == 1:
                return self.slice(start, stop)
            picked = range(start, stop, step)
            if not picked:
                return ""
            lo = min(picked)
            text = self.slice(lo, max(picked) + 1)
            return "".join(text[i - lo] for i in picked)
        if not isinstance(key, int):
            raise TypeError(f"LazyText indices must be int or slice, not {type(key).__name__}")
        index = key + self.chars if key < 0 else key
        if not 0 <= index < self.chars:
            raise IndexError("LazyText index out of range")
        return self.slice(index, index + 1)

    def __contains__(self, text: object) -> bool:
        return isinstance(text, str) and self.find(text) >= 0

    def find(self, sub: str, start: int = 0, end: int | None = None) -> int:
        stop = self.chars if end is None else slice(0, end).indices(self.chars)[1]
        for s, e, _, _ in self.matches(Compiled(sub, literal=True), start=max(0, start)):
            return s if e <= stop else -1
        return -1

    def count(self, sub: str) -> int:
        return self.count_matches(Compiled(sub, literal=True))

    def startswith(self, prefix: str) -> bool:
        return self.slice(0, len(prefix)) == prefix

    def endswith(self, suffix: str) -> bool:
        return self.slice(self.chars - len(suffix), self.chars) == suffix

    # Random access -----------------------------------------------------------------------------

    def slice(self, start: int, end: int) -> str:
        start, end = max(0, start), min(end, self.chars)
        if start >= end:
            return ""
        if self.ascii:
            return decode(self.source.read(self.start + start, end - start), self.source.errors)
        first = self.points[bisect.bisect_right(self._chars, start) - 1]
        after = bisect.bisect_left(self._chars, end)
        stop = self.points[after][0] if after < len(self.points) else self.nbytes
        data = self.source.read(self.start + first[0], stop - first[0])
        return decode(data, self.source.errors)[start - first[1] : end - first[1]]

    def lines(self, first: int, last: int) -> str:
        """Lines ``first`` to ``last``, counted from 1, without the final line break."""
        first = max(1, first)
        if last < first:
            return ""
        with self.source.reader() as read:
            begin = self._after_newline(read, first - 1)
            stop = self._after_newline(read, last)
            if begin >= self.nbytes:
                return ""
            data = read(self.start + begin, stop - begin)
        text = decode(data, self.source.errors)
        return text[:-1] if text.endswith("\n") else text

    def _after_newline(self, read: Callable[[int, int], bytes], k: int) -> int:
        """The byte offset just after the ``k``-th line break (0 for k == 0; the end if fewer)."""
        if k <= 0:
            return 0
        point = self.points[bisect.bisect_left(self._lines, k) - 1]
        offset, need = point[0], k - point[2]
        while offset < self.nbytes:
            data = read(self.start + offset, min(PIECE, self.nbytes - offset))
            found = data.count(b"\n")
            if found < need:
                need, offset = need - found, offset + len(data)
                continue
            at = -1
            for _ in range(need):
                at = data.index(b"\n", at + 1)
            return offset + at + 1
        return self.nbytes

    # Sweeps ------------------------------------------------------------------------------------

    def blocks(self, start_char: int = 0) -> Iterator[tuple[int, str]]:
        """The decoded text in steps, from the checkpoint at or before ``start_char``:
        ``(char offset of the block, block)``."""
        byte, char, _ = self.points[bisect.bisect_right(self._chars, start_char) - 1]
        with self.source.reader() as read:
            while byte < self.nbytes:
                data = read(self.start + byte, min(STEP + 3, self.nbytes - byte))
                cut = len(data) if byte + len(data) >= self.nbytes else align(data, STEP)
                block = decode(memoryview(data)[:cut], self.source.errors)
                yield char, block
                byte, char = byte + cut, char + len(block)

    def count_matches(self, pattern: Compiled) -> int:
        return sum(n for n in self._sweep(pattern, 0, count=True) if isinstance(n, int))

    def matches(
        self, pattern: Compiled, *, start: int = 0, lines: bool = False, around: int | None = None
    ) -> Iterator[Match]:
        """Every match at or after char ``start``, in order, as ``re.finditer`` over the whole
        text would give them (lookbehinds see 4 KiB back; a match may be of any length)."""
        for found in self._sweep(pattern, start, lines=lines, around=around):
            if not isinstance(found, int):
                yield found

    def _sweep(
        self,
        pattern: Compiled,
        start: int,
        *,
        count: bool = False,
        lines: bool = False,
        around: int | None = None,
    ) -> Iterator[Match | int]:
        if self.nbytes == 0:  # an empty text: only an empty pattern can match, once
            empty: list[Match] = [(0, 0, 1, "") for _ in pattern.str.finditer("") if start == 0]
            yield from ([len(empty)] if count else empty)
            return
        byte, char, line = self.points[bisect.bisect_right(self._chars, start) - 1]
        resume, empty_at = start, -1
        with self.source.reader() as read:
            tail = TAIL
            while byte < self.nbytes:
                window = self._window(read, byte, tail, pattern)
                search = Search(window, char, resume, empty_at)
                if count:
                    n = search.count(pattern)
                    found: list[Match] = []
                else:
                    found = search.collect(pattern, lines, around)
                if search.redo:
                    tail *= 4
                    continue
                if count:
                    yield n
                for match in found:
                    yield match[0], match[1], (line + match[2] if lines else 0), match[3]
                if search.last is not None:
                    resume = search.last[1]
                    empty_at = resume if search.last[0] == search.last[1] else -1
                line += search.newlines
                byte, char, tail = window.core_end, char + window.core_chars, TAIL

    def _window(
        self, read: Callable[[int, int], bytes], byte: int, tail: int, pattern: Compiled
    ) -> Window:
        w0 = max(0, byte - BEHIND)
        w1 = min(self.nbytes, byte + STEP + tail)
        data = read(self.start + w0, w1 - w0)
        core_end = self.nbytes if byte + STEP >= self.nbytes else w0 + align(data, byte + STEP - w0)
        at_start, at_end = w0 == 0, w1 >= self.nbytes
        if pattern.bytes is not None and (self.ascii or data.isascii()):
            last = core_end >= self.nbytes
            return Window(
                data, byte - w0, core_end - w0, core_end, at_start, at_end, True, last=last
            )
        lo = 0 if at_start else min(align_forward(data, 0), byte - w0)
        hi = len(data) if at_end else align(data, len(data) - 1)
        errors = self.source.errors
        behind = decode(data[lo : byte - w0], errors)
        core = decode(data[byte - w0 : core_end - w0], errors)
        text = behind + core + decode(data[core_end - w0 : hi], errors)
        hi_core = len(behind) + len(core)
        last = core_end >= self.nbytes
        return Window(text, len(behind), hi_core, core_end, at_start, at_end, last=last)
