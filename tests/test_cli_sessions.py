"""``rlmx run --session NAME`` and ``rlmx sessions``: each question its own process, in effect."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rlmx.cli.main import main

from .conftest import repl


def _model(path: Path, *responses: str) -> str:
    path.write_text(json.dumps({"responses": list(responses)}))
    return f"scripted:{path}"


def test_questions_of_a_named_session_share_its_variables_from_one_command_to_the_next(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    book = tmp_path / "book.txt"
    book.write_text("Chapter 1\nThe password is OSPREY-7.\nThe end.\n")
    db = str(tmp_path / "runs.db")
    first = _model(
        tmp_path / "a.json",
        repl(
            "import re\nword = re.search(r'password is (\\S+)\\.', context).group(1)\nprint(word)"
        ),
        repl("FINAL(word)"),
    )
    sub = _model(tmp_path / "sub.json")
    args = ["--context", str(book), "--db", db, "--session", "vault", "--sub-model", sub]
    assert main(["run", "What is the password?", "--model", first, *args]) == 0
    second = _model(tmp_path / "b.json", repl("FINAL(word.lower())"))
    assert main(["run", "Lower-case it.", "--model", second, *args]) == 0
    out, _ = capsys.readouterr()
    assert out.splitlines() == ["OSPREY-7", "osprey-7"]

    assert main(["sessions", "list", "--db", db, "--json"]) == 0
    listed = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(s["name"], s["questions"]) for s in listed] == [("vault", 2)]
    assert main(["sessions", "show", "vault", "--db", db]) == 0
    shown = capsys.readouterr().out
    assert "1. Q: What is the password?" in shown
    assert "A: osprey-7" in shown
    assert main(["sessions", "delete", "vault", "--db", db]) == 0
    assert main(["sessions", "show", "vault", "--db", db]) == 2
    assert "no session 'vault'" in capsys.readouterr().err


def test_a_session_needs_the_store(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    book = tmp_path / "book.txt"
    book.write_text("text\n")
    code = main(["run", "q", "-c", str(book), "--session", "s", "--no-db", "-m", "scripted:x"])
    assert code == 2
    err = capsys.readouterr().err
    assert "--session keeps its state in the run store" in err
    assert "Traceback" not in err
