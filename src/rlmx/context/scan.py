"""One pass over a text file: its sha256, characters, lines, invalid bytes and checkpoints.

The pass reads 4 MiB at a time with positioned reads, so its memory stays flat for a file of
any size. SHA-256 runs on a second thread (``hashlib`` releases the GIL), overlapping the
counting. The checkpoints, a ``(byte, char, line)`` triple at every step, let a
:class:`~rlmx.context.textio.LazyText` seek by character or line without decoding from the
start. Standard library only.
"""

from __future__ import annotations

import hashlib
import os
import queue
import threading
from dataclasses import dataclass

from rlmx.context.textio import BOM, ContextChanged, Point, align, align_forward, decode

POINT_EVERY = 4 << 20
SNIFF_BYTES = 8192
REPLACEMENT = "\ufffd".encode()


@dataclass(frozen=True, slots=True)
class TextIndex:
    """What one pass over a file found. ``start`` is 3 when a byte-order mark was skipped."""

    sha256: str
    size: int
    mtime_ns: int
    start: int
    chars: int
    lines: int
    ascii: bool
    replaced: int
    points: tuple[Point, ...]
    head: str
    tail: str

    def to_spec(self) -> dict[str, object]:
        """What a worker needs to read the file lazily."""
        return {
            "chars": self.chars,
            "lines": self.lines,
            "ascii": self.ascii,
            "points": [list(p) for p in self.points],
        }


def looks_binary(data: bytes) -> bool:
    return b"\x00" in data[:SNIFF_BYTES]


class _Hasher:
    """SHA-256 on its own thread, fed in order through a short queue."""

    def __init__(self) -> None:
        self._sha = hashlib.sha256()
        self._queue: queue.Queue[bytes | None] = queue.Queue(maxsize=3)
        self._thread = threading.Thread(target=self._run, name="rlmx-sha256", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while (data := self._queue.get()) is not None:
            self._sha.update(data)

    def feed(self, data: bytes) -> None:
        self._queue.put(data)

    def finish(self) -> str:
        self._queue.put(None)
        self._thread.join()
        return self._sha.hexdigest()


def index_fd(
    fd: int,
    *,
    name: str,
    errors: str = "replace",
    preview_chars: int = 300,
    step: int = POINT_EVERY,
) -> TextIndex:
    """Index the whole of an open file. Raises :class:`ContextChanged` if it changes meanwhile."""
    before = os.fstat(fd)
    size = before.st_size
    start = 3 if os.pread(fd, 3, 0) == BOM else 0
    hasher = _Hasher()
    chars = newlines = replaced = 0
    ascii_only, last = True, b""
    points: list[Point] = [(0, 0, 0)]
    offset, carry = start, b""
    try:
        if start:
            hasher.feed(BOM)
        while offset < size:
            raw = os.pread(fd, min(step, size - offset), offset)
            if not raw:
                raise ContextChanged(f"{name} shrank while it was being read")
            hasher.feed(raw)
            offset += len(raw)
            newlines += raw.count(b"\n")  # a line break is never inside a multi-byte character
            if not carry and raw.isascii():
                chars += len(raw)
                last = raw[-1:]
            else:
                ascii_only = False
                data = carry + raw
                cut = len(data) if offset >= size else align(data, len(data) - 1)
                piece, carry = data[:cut], data[cut:]
                text = decode(piece, errors)
                chars += len(text)
                if errors == "replace":
                    replaced += text.count("\ufffd") - piece.count(REPLACEMENT)
                last = piece[-1:] or last
            points.append((offset - start - len(carry), chars, newlines - carry.count(b"\n")))
    finally:
        digest = hasher.finish()
    after = os.fstat(fd)
    if (after.st_size, after.st_mtime_ns) != (size, before.st_mtime_ns):
        raise ContextChanged(f"{name} changed while it was being read; try again")
    return TextIndex(
        sha256=digest,
        size=size,
        mtime_ns=before.st_mtime_ns,
        start=start,
        chars=chars,
        lines=newlines + (1 if chars and last != b"\n" else 0),
        ascii=ascii_only,
        replaced=replaced,
        points=tuple(points[:-1] if len(points) > 1 and points[-1][0] >= size - start else points),
        head=_head(fd, start, size, preview_chars, errors),
        tail=_tail(fd, start, size, preview_chars, errors),
    )


def _head(fd: int, start: int, size: int, chars: int, errors: str) -> str:
    data = os.pread(fd, min(size - start, chars * 4 + 4), start)
    cut = len(data) if start + len(data) >= size else align(data, len(data) - 1)
    return decode(data[:cut], errors)[:chars]


def _tail(fd: int, start: int, size: int, chars: int, errors: str) -> str:
    at = max(start, size - chars * 4 - 4)
    data = os.pread(fd, size - at, at)
    lo = 0 if at == start else align_forward(data, 0)
    return decode(data[lo:], errors)[-chars:] if chars else ""
