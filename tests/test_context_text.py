"""Large texts read on demand: the one-pass index, and a LazyText that behaves like the str it
stands for, across step boundaries, multi-byte characters and invalid bytes."""

from __future__ import annotations

import os
import random
import re
from pathlib import Path

import pytest

from rlmx.context import regex, textio
from rlmx.context.regex import Compiled
from rlmx.context.scan import index_fd
from rlmx.context.textio import BOM, ContextChanged, LazyText, Source, decode_file

PIECES = [
    b"a",
    b"b",
    b"\n",
    b"ab",
    "é".encode(),
    "日本".encode(),
    b"\xff",
    b"\xe2\x82",
    b"\x80",
    b"ERROR",
    b" ",
    "\ufffd".encode(),
    b"\r\n",
    "😀".encode(),
]
PATTERNS = [
    "a",
    "ab+",
    "ERROR",
    "\n",
    "é",
    "a|b",
    "(?<=a)b",
    "b$",
    "^a",
    "(?m)^a",
    "x*",
    "[^\n]{3}",
    "\ufffd",
    ".{5,9}",
    "日本",
    "aa",
    "abab",
    "b a",
]


def lazy_over(path: Path, *, step: int = 4 << 20) -> tuple[LazyText, str]:
    data = path.read_bytes()
    fd = os.open(path, os.O_RDONLY)
    try:
        index = index_fd(fd, name=str(path), step=step)
    finally:
        os.close(fd)
    info = path.stat()
    source = Source(name=path.name, size=info.st_size, path=str(path), mtime_ns=info.st_mtime_ns)
    lazy = LazyText(
        source,
        index.start,
        info.st_size,
        chars=index.chars,
        lines=index.lines,
        ascii=index.ascii,
        points=list(index.points),
    )
    return lazy, decode_file(data)


def expected_lines(text: str, first: int, last: int) -> str:
    lines = text.split("\n")
    if text.endswith("\n"):
        lines = lines[:-1]
    return "\n".join(lines[max(1, first) - 1 : last]) if last >= max(1, first) else ""


@pytest.mark.parametrize("seed", range(60))
def test_lazy_text_matches_the_str_it_stands_for(
    seed: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rnd = random.Random(seed)
    # Tiny steps, so that every operation crosses many step and checkpoint boundaries.
    monkeypatch.setattr(textio, "STEP", rnd.choice([7, 16, 33, 64]))
    monkeypatch.setattr(textio, "BEHIND", rnd.choice([4, 8, 16]))
    monkeypatch.setattr(textio, "TAIL", rnd.choice([64, 128]))
    monkeypatch.setattr(textio, "PIECE", rnd.choice([5, 13, 64]))
    monkeypatch.setattr(regex, "MARGIN", rnd.choice([1, 2, 4]))
    data = (BOM if seed % 5 == 0 else b"") + b"".join(
        rnd.choice(PIECES) for _ in range(rnd.randint(0, 300))
    )
    path = tmp_path / "t.txt"
    path.write_bytes(data)
    lazy, text = lazy_over(path, step=rnd.choice([5, 9, 17, 64]))
    assert len(lazy) == len(text)
    for _ in range(15):
        a, b = rnd.randint(-5, len(text) + 5), rnd.randint(-5, len(text) + 5)
        assert lazy[a:b] == text[a:b]
    for _ in range(8):
        first = rnd.randint(0, lazy.line_count + 2)
        last = rnd.randint(first - 1, lazy.line_count + 3)
        assert lazy.lines(first, last) == expected_lines(text, first, last)
    for pattern in PATTERNS:
        compiled = Compiled(pattern)
        spans = [m.span() for m in re.finditer(pattern, text)]
        found = list(lazy.matches(compiled, lines=True, around=3))
        assert [(s, e) for s, e, _, _ in found] == spans, pattern
        assert [line for _, _, line, _ in found] == [text.count("\n", 0, s) + 1 for s, _ in spans]
        for s, e, _, snippet in found:
            assert snippet is None or snippet == text[max(0, s - 3) : e + 3]
        assert lazy.count_matches(compiled) == len(spans)
        start = rnd.randint(0, len(text))
        later = [m.span() for m in re.compile(pattern).finditer(text, start)]
        assert [(s, e) for s, e, _, _ in lazy.matches(compiled, start=start)] == later
    assert "".join(block for _, block in lazy.blocks()) == text


def test_index_counts_hashes_and_reports_invalid_bytes(tmp_path: Path) -> None:
    path = tmp_path / "mixed.txt"
    data = BOM + "café\n".encode() + b"\xff\xfe bad\n" + "\ufffd genuine\n".encode()
    path.write_bytes(data)
    fd = os.open(path, os.O_RDONLY)
    try:
        index = index_fd(fd, name="mixed.txt", step=4)
    finally:
        os.close(fd)
    text = decode_file(data)
    assert index.start == 3
    assert (index.chars, index.lines) == (len(text), 3)
    assert index.replaced == 2  # the genuine U+FFFD is not counted
    assert not index.ascii
    import hashlib

    assert index.sha256 == hashlib.sha256(data).hexdigest()
    assert index.head.startswith("café")
    assert index.tail.endswith("genuine\n")


def test_a_file_that_changes_after_opening_raises_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "log.txt"
    path.write_text("line one\nline two\n")
    lazy, _ = lazy_over(path)
    assert lazy[0:4] == "line"
    with path.open("a") as file:
        file.write("line three\n")
    with pytest.raises(ContextChanged, match="changed after the context was opened"):
        lazy[0:4]
    path.unlink()
    with pytest.raises(ContextChanged, match="removed"):
        lazy.count_matches(Compiled("line"))


def test_a_truncated_file_gives_an_error_not_wrong_text(tmp_path: Path) -> None:
    path = tmp_path / "t.txt"
    path.write_text("x" * 1000)
    info = path.stat()
    fd = os.open(path, os.O_RDONLY)
    try:
        source = Source(name="t.txt", size=info.st_size, fd=fd)
        lazy = LazyText(source, 0, 1000, chars=1000, lines=1, ascii=True)
        os.truncate(path, 10)
        with pytest.raises(ContextChanged, match="changed"):
            lazy[500:600]
    finally:
        os.close(fd)


def test_lazy_text_behaves_like_a_str_where_it_can(tmp_path: Path) -> None:
    path = tmp_path / "t.txt"
    path.write_text("alpha beta\ngamma beta\n")
    lazy, text = lazy_over(path)
    assert lazy.find("beta") == text.find("beta")
    assert lazy.find("beta", 7) == text.find("beta", 7)
    assert lazy.find("nope") == -1
    assert lazy.count("beta") == 2
    assert "gamma" in lazy
    assert lazy.startswith("alpha")
    assert lazy.endswith("beta\n")
    assert lazy[-5:] == text[-5:]
    assert lazy[::3] == text[::3]
    assert lazy[2] == text[2]
    assert "LazyText of 22 chars, 2 lines" in repr(lazy)
    with pytest.raises(TypeError, match="too large to iterate"):
        list(lazy)
    with pytest.raises(IndexError):
        lazy[100]


def test_patterns_are_checked() -> None:
    with pytest.raises(ValueError, match="bad regular expression"):
        Compiled("(unclosed")
    with pytest.raises(ValueError, match="empty"):
        Compiled("")
    with pytest.raises(TypeError):
        Compiled(b"bytes")
    assert Compiled(r"\s+").bytes is None  # \s means more in a str than in bytes
    assert Compiled("caf\u00e9").bytes is None
    assert Compiled(re.compile("ab", re.I)).str.flags & re.I
