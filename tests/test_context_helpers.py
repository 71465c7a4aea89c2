"""The REPL helpers, the same on every kind of context: a str, a lazy text, documents and a
directory (through the in-process REPL; tests/test_context_sandbox.py runs them confined)."""

from __future__ import annotations

from pathlib import Path

import pytest

from rlmx.context import ContextOptions
from rlmx.context.corpus import LRU, Corpus, Doc, ReadLimitReached
from rlmx.context.helpers import Helpers, Hits, build, cut, describe
from rlmx.context.sources import from_directory, from_file, from_files, from_value

BOOK = "Chapter 1\nThe vault code is ZETA-42.\nNothing else.\nChapter 2\nThe end.\n"


def helpers_for_every_text(tmp_path: Path) -> list[Helpers]:
    """The same text as a str, as a lazy text, and as one of two documents read on demand."""
    path = tmp_path / "book.txt"
    path.write_text(BOOK)
    as_str = from_value(BOOK).open_local()[1]
    lazy = from_file(path, ContextOptions(max_str_bytes=10)).open_local()[1]
    return [Helpers(as_str), Helpers(lazy)]


def test_helpers_agree_on_a_str_and_a_lazy_text(tmp_path: Path) -> None:
    results = []
    for h in helpers_for_every_text(tmp_path):
        hits = h.grep(r"code is (\S+)", around=5)
        results.append(
            (
                h.slice(10, 20),
                h.slice(-9),
                h.lines(2),
                h.lines(2, 3),
                [(x.pos, x.line, x.text) for x in hits],
                [(x.pos, x.line) for x in h.find("Chapter")],
                h.count("Chapter"),
                h.count(r"chapter", flags=2),
                h.split("Chapter"),
                h.chunk(30),
                h.chunk(30, overlap=5),
            )
        )
    assert results[0] == results[1]
    got = results[0]
    assert got[0] == BOOK[10:20]
    assert got[2] == "The vault code is ZETA-42."
    assert got[3] == "The vault code is ZETA-42.\nNothing else."
    assert got[4] == [(20, 2, "ault code is ZETA-42.\nNoth")]
    assert got[5] == [(0, 1), (BOOK.index("Chapter 2"), 4)]
    assert got[6] == got[7] == 2
    assert got[8] == BOOK.split("Chapter")
    assert "".join(got[9]) == BOOK
    assert all(len(p) <= 30 for p in got[9] + got[10])


def test_hits_print_their_place_and_text() -> None:
    h = Helpers(Corpus.from_value(BOOK))
    hits = h.grep("ZETA", around=4)
    assert str(hits) == "1 hit:\n[line 2, pos 28]  is ZETA-42."
    assert hits[0].as_dict()["line"] == 2
    assert str(h.grep("absent")) == "no hits"
    many = h.grep("e", limit=3)
    assert len(many) == 3
    assert many.limited
    assert "limit reached" in str(many)


def test_documents_are_addressed_by_index_or_name(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("first doc\n")
    (tmp_path / "b.txt").write_text("second doc\nwith code ZETA\n")
    paths = [str(tmp_path / "a.txt"), str(tmp_path / "b.txt")]
    value, corpus = from_files(paths).open_local()
    assert value == ["first doc\n", "second doc\nwith code ZETA\n"]  # small: a list of str
    h = Helpers(corpus)
    hit = h.grep("ZETA", around=3)[0]
    assert (hit.doc, hit.path, hit.line, hit.pos) == (1, paths[1], 2, 21)
    assert str(hit).startswith(f"[doc 1 ({paths[1]}), line 2, pos 21]")
    assert h.lines(2, doc=1) == "with code ZETA"
    assert h.slice(0, 5, doc=paths[1]) == "secon"
    assert h.count("doc") == 2
    with pytest.raises(ValueError, match="pass doc="):
        h.slice(0, 5)
    with pytest.raises(KeyError, match="no document named"):
        h.lines(1, doc="missing.txt")
    with pytest.raises(IndexError, match="out of range"):
        h.lines(1, doc=5)


def test_chunk_packs_small_documents_and_splits_large_ones() -> None:
    docs = ["a" * 10, "b" * 10, "c" * 45]
    pieces = Helpers(Corpus.from_value(docs)).chunk(25)
    assert pieces[0] == "a" * 10 + "\n" + "b" * 10
    assert "".join(pieces[1:]) == "c" * 45
    assert all(len(p) <= 25 for p in pieces)
    with pytest.raises(ValueError, match="overlap"):
        Helpers(Corpus.from_value(docs)).chunk(10, overlap=10)


def test_cut_prefers_line_breaks_and_keeps_everything() -> None:
    text = "".join(f"line {i}\n" for i in range(200))
    pieces = list(cut(iter([text[:300], text[300:]]), 100, 0))
    assert "".join(pieces) == text
    assert all(p.endswith("\n") for p in pieces[:-1])
    overlapped = list(cut(iter([text]), 100, 20))
    assert all(len(p) <= 100 for p in overlapped)
    assert overlapped[1].startswith(overlapped[0][-20:][:5])


def make_repo(root: Path) -> Path:
    (root / "src" / "pkg").mkdir(parents=True)
    (root / "src" / "app.py").write_text("def handle_login(user):\n    return check(user)\n")
    (root / "src" / "pkg" / "util.py").write_text("def check(user):\n    return True\n")
    (root / "README.md").write_text("# Demo\nRun handle_login.\n")
    return root


def test_directory_helpers(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    context = from_directory(repo)
    value, corpus = context.open_local()
    ns = build(corpus)
    assert set(ns) >= {"list_files", "read_file", "file_info", "search_files", "grep"}
    assert ns["list_files"]() == ["README.md", "src/app.py", "src/pkg/util.py"]
    assert ns["list_files"]("*.py") == ["src/app.py", "src/pkg/util.py"]
    assert ns["list_files"]("src/pkg/*") == ["src/pkg/util.py"]
    assert ns["read_file"]("./src/pkg/util.py").startswith("def check")
    info = ns["file_info"]("src/app.py")
    assert (info["lines"], info["bytes"], info["path"]) == (2, 47, "src/app.py")
    found = ns["search_files"](r"def \w+")
    assert [str(h) for h in found] == [
        "[src/app.py:1, pos 0] def handle_login(user):",
        "[src/pkg/util.py:1, pos 0] def check(user):",
    ]
    assert ns["search_files"]("handle_login", glob="*.md")[0].path == "README.md"
    assert ns["lines"](2, doc="src/app.py") == "    return check(user)"
    assert len(value) == 3  # type: ignore[arg-type]
    assert value[1].startswith("# file: src/app.py\ndef handle_login")  # type: ignore[index]
    assert value["src/pkg/util.py"].startswith("def check")  # type: ignore[index]
    assert "a directory of 3 files" in repr(value)
    assert ns["chunk"](1000)[0].startswith("# file: README.md\n# Demo")
    with pytest.raises(KeyError, match="list_files"):
        ns["read_file"]("nope.py")
    described = describe("directory")
    assert any(line.startswith("search_files(") for line in described)
    assert described[-1].startswith("top_words(")
    assert "list_files" not in build(Corpus.from_value("text"))


def test_the_lru_cache_and_the_read_budget(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    context = from_directory(repo, ContextOptions(cache_bytes=200, max_read_bytes=100))
    _, corpus = context.open_local()
    h = Helpers(corpus)
    h.read_file("src/app.py")  # 47 bytes read, then cached
    h.read_file("src/app.py")
    assert corpus.read_bytes == 47
    with pytest.raises(ReadLimitReached, match="read budget"):
        h.count("def")  # the other two files push it past 100 bytes

    cache = LRU(200)
    cache.put(1, "a" * 100)
    cache.put(2, "b" * 100)  # over 200 bytes with the str overhead: evicts 1
    assert cache.get(1) is None
    assert cache.get(2) is not None
    cache.put(3, "c" * 1000)  # larger than the whole cache: not kept
    assert cache.get(3) is None


def test_a_corpus_refuses_shapes_it_does_not_know() -> None:
    with pytest.raises(TypeError):
        Corpus.from_value(42)
    with pytest.raises(ValueError, match="exactly one"):
        Corpus([Doc(text="a"), Doc(text="b")], kind="text")
    assert isinstance(Helpers(Corpus.from_value("x")).grep("x"), Hits)
