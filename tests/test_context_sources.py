"""Opening contexts: files of any size, documents, JSONL, streams and directories; every kind of
bad input answered with one clear ContextError, and nothing half-loaded; the content-addressed
store."""

from __future__ import annotations

import errno
import hashlib
import io
import json
import os
from pathlib import Path

import pytest

from rlmx.context import ContextOptions, LocalStore
from rlmx.context.jsonl import from_jsonl
from rlmx.context.paths import open_contexts
from rlmx.context.sources import from_directory, from_file, from_stream, from_value
from rlmx.errors import ContextError


def test_a_file_opens_without_being_read_and_is_described_in_one_pass(tmp_path: Path) -> None:
    path = tmp_path / "log.txt"
    data = b"".join(b"2024-01-01 INFO request %d ok\n" % i for i in range(2000))
    path.write_bytes(data)
    small = from_file(path, ContextOptions(max_str_bytes=1 << 20))
    lazy = from_file(path, ContextOptions(max_str_bytes=1000))
    assert small.docs[0]["mode"] == "eager"
    assert lazy.docs[0]["mode"] == "lazy"
    assert "index" not in lazy.docs[0]  # nothing read yet beyond the first 8 KiB
    handle = lazy.describe()
    assert handle.id == hashlib.sha256(data).hexdigest() == small.describe().id
    assert (handle.kind, handle.form, handle.chars, handle.lines) == (
        "text",
        "lazy",
        len(data),
        2000,
    )
    assert handle.head.startswith("2024-01-01 INFO request 0 ok")
    assert handle.tail.endswith("request 1999 ok\n")
    assert small.describe().form == "str"
    assert "LazyText of" in handle.summary()
    assert lazy.notes == [
        f"{path}: 61.4 KB, over the 1,000 bytes limit for a str: the REPL reads it on demand "
        "(a LazyText)"
    ]
    assert small.notes == []
    assert handle.to_dict()["sha256"] == handle.id
    value, _ = small.open_local()
    assert value == data.decode()


def test_invalid_utf8_is_replaced_and_counted(tmp_path: Path) -> None:
    path = tmp_path / "latin1.txt"
    path.write_bytes("café olé\n".encode("latin-1"))
    context = from_file(path)
    handle = context.describe()
    assert handle.replaced == 2
    assert context.notes == [
        f"{path}: not valid UTF-8; 2 invalid byte sequence(s) replaced with U+FFFD"
    ]
    assert context.open_local()[0] == "caf\ufffd ol\ufffd\n"


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: p / "missing.txt", "context file not found"),
        (lambda p: _binary(p), "binary"),
        (lambda p: _loop(p), "symlink loop"),
        (lambda p: _broken(p), "broken symlink"),
        (lambda p: _fifo(p), "not a regular file"),
    ],
)
def test_bad_files_get_one_clear_error(tmp_path: Path, make: object, message: str) -> None:
    path = make(tmp_path)  # type: ignore[operator]
    with pytest.raises(ContextError, match=message):
        open_contexts([str(path)])


def _binary(root: Path) -> Path:
    path = root / "x.bin"
    path.write_bytes(b"\x7fELF\x00\x00\x00")
    return path


def _loop(root: Path) -> Path:
    (root / "a").symlink_to(root / "b")
    (root / "b").symlink_to(root / "a")
    return root / "a"


def _broken(root: Path) -> Path:
    (root / "dangling").symlink_to(root / "nowhere")
    return root / "dangling"


def _fifo(root: Path) -> Path:
    os.mkfifo(root / "pipe")
    return root / "pipe"


def test_permission_denied_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "secret.txt"
    path.write_text("x")
    real_open = os.open

    def refuse(p: object, *args: object, **kwargs: object) -> int:
        if str(p) == str(path):
            raise PermissionError(errno.EACCES, "Permission denied")
        return real_open(p, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "open", refuse)
    with pytest.raises(ContextError, match="permission denied"):
        from_file(path)


def test_a_file_changed_between_opening_and_describing_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "t.txt"
    path.write_text("first version\n")
    context = from_file(path)
    path.write_text("second, longer version\n")
    with pytest.raises(ContextError, match="changed after it was opened"):
        context.describe()


def test_several_files_are_documents_and_too_many_bytes_read_on_demand(tmp_path: Path) -> None:
    paths = []
    for i in range(3):
        path = tmp_path / f"d{i}.txt"
        path.write_text(f"document {i}\n" * (10 + i))
        paths.append(str(path))
    opened = open_contexts(paths)
    assert opened.context.describe().form == "list"
    value, _ = opened.context.open_local()
    assert value == [Path(p).read_text() for p in paths]
    lazy = open_contexts(paths, options=ContextOptions(max_str_bytes=100, max_file_bytes=130))
    handle = lazy.context.describe()
    assert (handle.form, handle.parts, handle.lines) == ("documents", 3, 33)
    view, _ = lazy.context.open_local()
    assert len(view) == 3  # type: ignore[arg-type]
    assert view[0] == Path(paths[0]).read_text()  # type: ignore[index]
    assert view[2][:10] == "document 2"  # type: ignore[index]  # a LazyText: it is large
    with pytest.raises(ContextError, match="must be the only --context"):
        open_contexts([paths[0], str(tmp_path)])


def test_jsonl_documents(tmp_path: Path) -> None:
    path = tmp_path / "docs.jsonl"
    records = [{"text": "alpha one", "id": 1}, {"text": "beta \ud800 two", "id": 2}]
    path.write_text("\n".join(json.dumps(r) for r in records) + "\n\n")
    opened = open_contexts([str(path)])
    value, _corpus = opened.context.open_local()
    assert value == ["alpha one", "beta \ud800 two"]
    assert "read as 2 documents from the 'text' field" in opened.notes[0]
    assert opened.context.describe().parts == 2
    other = tmp_path / "o.jsonl"
    other.write_text('{"body": "x"}\n')
    assert open_contexts([str(other)]).context.kind == "text"  # no text field: plain text
    assert from_jsonl(other, "body").open_local()[0] == ["x"]
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "ok"}\nnot json\n')
    with pytest.raises(ContextError, match="line 2 is not valid JSON"):
        from_jsonl(bad, "text")
    with pytest.raises(ContextError, match="line 1 has no string field 'body'"):
        from_jsonl(path, "body")


def test_a_stream_is_spooled_not_held(tmp_path: Path) -> None:
    data = "piped text\n" * 100
    context = from_stream(io.BytesIO(data.encode()), "<stdin>", ContextOptions(max_str_bytes=50))
    handle = context.describe()
    assert (handle.form, handle.chars, handle.name) == ("lazy", len(data), "<stdin>")
    value, _ = context.open_local()
    assert value[:10] == "piped text"  # type: ignore[index]
    assert context.fds()
    assert not context.read_paths()
    context.close()
    with pytest.raises(ContextError, match="binary"):
        from_stream(io.BytesIO(b"\x00\x01"), "<stdin>")


def make_tree(root: Path) -> Path:
    (root / "src" / "deep").mkdir(parents=True)
    (root / "src" / "app.py").write_text("print('app')\n")
    (root / "src" / "deep" / "mod.py").write_text("X = 1\n")
    (root / "docs").mkdir()
    (root / "docs" / "guide.md").write_text("# Guide\n")
    (root / ".env").write_text("SECRET=1\n")
    (root / ".git").mkdir()
    (root / ".git" / "config").write_text("[core]\n")
    (root / "build").mkdir()
    (root / "build" / "out.txt").write_text("artifact\n")
    (root / "debug.log").write_text("log\n")
    (root / ".gitignore").write_text("build/\n*.log\n")
    (root / "src" / ".gitignore").write_text("deep/\n")
    (root / "image.png").write_bytes(b"\x89PNG\x00\x00")
    (root / "big.txt").write_text("y" * 5000)
    (root / "link_to_app.py").symlink_to(root / "src" / "app.py")
    (root / "outside").symlink_to("/etc")
    (root / "loop").symlink_to(root / "loop")
    return root


def test_a_directory_respects_gitignore_globs_binaries_and_symlinks(tmp_path: Path) -> None:
    root = make_tree(tmp_path / "repo")
    context = from_directory(root, ContextOptions(max_file_bytes=1000))
    handle = context.describe()
    names = [d["name"] for d in context.docs]
    assert names == ["docs/guide.md", "link_to_app.py", "src/app.py"]
    assert (handle.kind, handle.form, handle.parts, handle.chars) == (
        "directory",
        "directory",
        3,
        None,
    )
    note = context.notes[0]
    for part in (
        "1 binary",
        "1 larger than",
        "ignored by .gitignore",
        "hidden",
        "broken or looping",
    ):
        assert part in note
    assert context.read_paths() == [str((root / n).resolve()) for n in names]
    assert context.bind_paths() == [str(root.resolve())]
    only_py = from_directory(root, ContextOptions(include=("*.py",), exclude=("link_*",)))
    assert [d["name"] for d in only_py.docs] == ["src/app.py"]
    with_hidden = from_directory(root, ContextOptions(hidden=True, gitignore=False))
    hidden_names = [d["name"] for d in with_hidden.docs]
    assert ".env" in hidden_names
    assert "debug.log" in hidden_names
    assert "build/out.txt" in hidden_names
    assert not any(n.startswith(".git/") for n in hidden_names)
    again = from_directory(root, ContextOptions(max_file_bytes=1000))
    assert again.describe().id == handle.id  # the manifest, not the contents, is hashed


def test_a_directory_without_text_files_is_refused(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(ContextError, match="no text files"):
        from_directory(tmp_path / "empty")
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "a.bin").write_bytes(b"\x00")
    with pytest.raises(ContextError, match="1 binary"):
        from_directory(tmp_path / "bin")


def test_a_directory_file_that_changes_is_reported_when_read(tmp_path: Path) -> None:
    root = tmp_path / "r"
    root.mkdir()
    (root / "a.txt").write_text("one\n")
    _, corpus = from_directory(root).open_local()
    (root / "a.txt").write_text("one and more\n")
    with pytest.raises(RuntimeError, match="changed after the context was opened"):
        corpus.text(0)


def test_the_store_is_content_addressed(tmp_path: Path) -> None:
    store = LocalStore()
    first = store.put("the same text")
    assert store.put("the same text") is first
    assert store.get(first.describe().id) is first
    assert store.put(from_value(["a", "b"])).describe().kind == "documents"
    path = tmp_path / "book.txt"
    path.write_text("Chapter 1\nThe code is ZETA-42.\n")
    book = store.put(from_file(path))
    id_ = book.describe().id
    assert store.read(id_, 10, 21) == "The code is"
    assert store.length(id_) == 31
    assert store.search(id_, "ZETA", around=3)[0].pos == 22
    assert store.chunk(id_, 12)[0] == "Chapter 1\n"
    with pytest.raises(ContextError, match="no context with id"):
        store.get("0" * 64)
    with pytest.raises(ContextError, match="a str or a list of str"):
        store.put(42)  # type: ignore[arg-type]


def test_options_are_checked() -> None:
    with pytest.raises(ContextError, match="max_str_bytes must be positive"):
        ContextOptions(max_str_bytes=0)
    with pytest.raises(ContextError, match="max_read_bytes"):
        ContextOptions(max_read_bytes=-1)
