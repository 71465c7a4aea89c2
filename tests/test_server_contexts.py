"""How the server opens a run's context: with the CLI's lazy stores (a directory read on demand,
several files as documents), a directory alone, inline text with files as a list of str, and
every problem a 422 naming the field it is about."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import httpx
import pytest

from rlmx.context import Context
from rlmx.server.contexts import ContextBlobs, gather_context
from rlmx.server.errors import ApiError
from rlmx.trajectory.contexts import ContextTable
from rlmx.trajectory.database import Database

from .conftest import repl
from .test_server_support import Served, follow, make_config, serve

OCTET = {"content-type": "application/octet-stream"}
BOOK = b"Chapter 1\nthe vault code is ZETA-42\nThe end.\n"


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    yield from serve(make_config(tmp_path))


def upload(client: httpx.Client, data: bytes = BOOK, **params: str) -> str:
    response = client.post("/v1/contexts", content=data, headers=OCTET, params=params)
    assert response.status_code == 201, response.text
    context_id: str = response.json()["id"]
    return context_id


def answer_of(served: Served, client: httpx.Client, body: dict[str, object], code: str) -> str:
    """Run ``code`` (one REPL cell that calls FINAL) on the context ``body`` gives."""
    spec = served.script("final.json", repl(code))
    response = client.post("/v1/runs", json={"query": "q", "model": spec, **body})
    assert response.status_code == 202, response.text
    run_id = response.json()["id"]
    follow(client, run_id)
    run = client.get(f"/v1/runs/{run_id}").json()
    assert run["status"] == "completed", run
    answer: str = run["answer"]
    return answer


def make_tree(root: Path) -> int:
    """A small codebase with an ignored, a hidden and a binary file; the count of text files."""
    (root / "src").mkdir(parents=True)
    (root / "src" / "main.py").write_text("print('hello')\n")
    (root / "src" / "util.py").write_text("def f():\n    return 42\n")
    (root / "README.md").write_text("# demo\n")
    (root / ".gitignore").write_text("build/\n")
    (root / "build").mkdir()
    (root / "build" / "out.txt").write_text("generated\n")
    (root / "logo.png").write_bytes(b"\x89PNG\x00\x00\x01")
    return 3


def test_a_directory_path_is_read_on_demand(served: Served) -> None:
    count = make_tree(served.root / "repo")
    with served.client() as client:
        answer = answer_of(
            served,
            client,
            {"paths": ["repo"]},
            "FINAL(f'{len(list_files())} {sorted(list_files())[0]} {type(context).__name__}')",
        )
        runs = client.get("/v1/runs").json()["runs"]
    files, first, kind = answer.split()
    assert int(files) == count
    assert first == "README.md"
    assert kind != "list"  # not the files read into memory
    context = runs[0]["context"]
    assert (context["kind"], context["form"], context["parts"]) == ("directory", "directory", 3)
    assert context["name"] == "repo"  # what the client sent, not the server's own path
    assert context["chars"] is None
    assert context["bytes"] == sum(
        p.stat().st_size
        for p in (served.root / "repo").rglob("*")
        if p.suffix in (".py", ".md") and p.is_file()
    )


def test_a_directory_with_anything_else_is_refused(served: Served) -> None:
    make_tree(served.root / "repo")
    (served.root / "notes.txt").write_text("notes\n")
    with served.client() as client:
        for body, param in (
            ({"paths": ["notes.txt", "repo"]}, "paths[1]"),
            ({"paths": ["repo"], "text": "more"}, "paths[0]"),
            ({"paths": ["repo"], "context_ids": [upload(client)]}, "paths[0]"),
        ):
            response = client.post("/v1/runs", json={"query": "q", **body})
            assert response.status_code == 422, response.text
            error = response.json()["error"]
            assert error["message"].startswith("a directory (repo) must be the only context")
            assert error["param"] == param
        assert client.get("/v1/runs").json()["runs"] == []


def test_an_upload_and_a_path_are_two_documents(served: Served) -> None:
    (served.root / "notes.txt").write_text("second document\n")
    with served.client() as client:
        context_id = upload(client, name="book.txt")
        answer = answer_of(
            served,
            client,
            {"context_ids": [context_id], "paths": ["notes.txt"]},
            "FINAL(f'{len(context)}|{\"ZETA-42\" in context[0]}|{context[1].strip()}')",
        )
        run = client.get("/v1/runs").json()["runs"][0]
    assert answer == "2|True|second document"
    assert (run["context"]["kind"], run["context"]["parts"]) == ("documents", 2)


def test_a_started_run_returns_the_notes_on_its_context(served: Served) -> None:
    """What ``rlmx run`` prints when it opens a context, the API returns with the run."""
    spec = served.script("final.json", repl("FINAL('ok')"))
    with served.client() as client:
        latin = upload(client, b"caf\xe9\n", name="latin.txt")
        plain = upload(client)
        for ids, notes in (
            (
                [latin],
                ["latin.txt: not valid UTF-8; 1 invalid byte sequence(s) replaced with U+FFFD"],
            ),
            ([plain], []),
        ):
            response = client.post(
                "/v1/runs", json={"query": "q", "model": spec, "context_ids": ids}
            )
            assert response.status_code == 202, response.text
            assert response.json()["notes"] == notes
            follow(client, response.json()["id"])


def test_one_upload_is_a_text(served: Served) -> None:
    with served.client() as client:
        context_id = upload(client)
        answer = answer_of(
            served,
            client,
            {"context_ids": [context_id]},
            "FINAL(f'{type(context).__name__} {len(context)}')",
        )
    assert answer == f"str {len(BOOK)}"


def test_text_with_a_file_is_a_list_of_str(served: Served) -> None:
    (served.root / "notes.txt").write_text("from the file\n")
    with served.client() as client:
        answer = answer_of(
            served,
            client,
            {"paths": ["notes.txt"], "text": "inline"},
            "FINAL(f'{type(context).__name__}|{len(context)}|{context[0].strip()}|{context[1]}')",
        )
    assert answer == "list|2|from the file|inline"


# gather_context itself: notes, errors and the bound on what it reads -------------------------


@pytest.fixture
def blobs_in(tmp_path: Path) -> Iterator[Callable[..., ContextBlobs]]:
    database = Database(tmp_path / "db")

    def make(max_bytes: int = 1024) -> ContextBlobs:
        return ContextBlobs(tmp_path / "blobs", ContextTable(database), max_bytes=max_bytes)

    yield make
    database.close()


def put(blobs: ContextBlobs, data: bytes, name: str | None = None) -> str:
    async def chunks() -> AsyncIterator[bytes]:
        yield data

    info = asyncio.run(blobs.upload(chunks(), name=name, declared=None))
    context_id: str = info["id"]
    return context_id


def test_notes_and_errors_name_what_the_client_gave(
    tmp_path: Path, blobs_in: Callable[..., ContextBlobs]
) -> None:
    blobs = blobs_in()
    root = tmp_path / "root"
    root.mkdir()
    (root / "bin.dat").write_bytes(b"a\x00b")
    latin = put(blobs, b"caf\xe9\n", name="latin.txt")

    context, notes = gather_context(blobs, [root], context_ids=[latin], paths=[], text=None)
    assert isinstance(context, Context)
    assert context.kind == "text"
    assert notes == ["latin.txt: not valid UTF-8; 1 invalid byte sequence(s) replaced with U+FFFD"]

    value, notes = gather_context(blobs, [root], context_ids=[latin], paths=[], text="t")
    assert value == ["caf\ufffd\n", "t"]
    assert notes[0].startswith("latin.txt: not valid UTF-8")

    for text in (None, "t"):
        with pytest.raises(ApiError) as caught:
            gather_context(blobs, [root], context_ids=[latin], paths=["bin.dat"], text=text)
        assert caught.value.param == "paths[0]"
        assert str(root) not in caught.value.message
        assert "bin.dat looks like a binary file" in caught.value.message


def test_text_with_files_reads_at_most_the_upload_limit(
    tmp_path: Path, blobs_in: Callable[..., ContextBlobs]
) -> None:
    blobs = blobs_in(max_bytes=1000)
    root = tmp_path / "root"
    root.mkdir()
    (root / "big.txt").write_text("x" * 700)
    first = put(blobs, b"y" * 600)
    context, _ = gather_context(blobs, [root], context_ids=[first], paths=["big.txt"], text=None)
    assert isinstance(context, Context)  # opened lazily: the limit is not for this
    assert context.describe().parts == 2
    with pytest.raises(ApiError) as caught:
        gather_context(blobs, [root], context_ids=[first], paths=["big.txt"], text="t")
    assert caught.value.status == 422
    assert caught.value.param == "paths[0]"
    assert "upload the text with POST /v1/contexts" in caught.value.message
