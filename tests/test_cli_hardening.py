"""The CLI prints model and stored text without letting it drive the terminal.

A model's answer, a cell's output, a stored query or an imported trace may hold escape
sequences (OSC 52 writes the clipboard, OSC 0 sets the title, CSI 2J clears the screen) or C1
controls. Wherever the CLI prints them they appear as visible escapes (``\\x1b``); ``--json``
keeps every value exact and still writes no raw control character.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rlmx.cli.main import main
from rlmx.cli.terminal import json_line, markup, shown

from .conftest import repl

HOSTILE = "\x1b]0;T\x07\x1b[2J\x9b31m\rX"
SHOWN = "\\x1b]0;T\\x07\\x1b[2J\\x9b31m\\x0dX"
RAW_CONTROLS = ("\x1b", "\x07", "\x9b", "\r")


def _clean(text: str) -> bool:
    return not any(c in text for c in RAW_CONTROLS)


def _model(tmp_path: Path, *responses: str) -> str:
    path = tmp_path / "script.json"
    path.write_text(json.dumps({"responses": list(responses)}))
    return f"scripted:{path}"


@pytest.fixture
def context(tmp_path: Path) -> Path:
    path = tmp_path / "ctx.txt"
    path.write_text("some context\n")
    return path


def test_shown_keeps_newlines_and_tabs_and_shows_every_other_control() -> None:
    assert shown("a\tb\nc") == "a\tb\nc"
    assert shown(HOSTILE) == SHOWN
    assert shown("\x00\x7f\x85\x9f é ✓") == "\\x00\\x7f\\x85\\x9f é ✓"
    assert markup("[bold]\x1b[1m") == "\\[bold]\\x1b[1m"
    text = json_line({"a": HOSTILE + "é"})
    assert _clean(text)
    assert json.loads(text) == {"a": HOSTILE + "é"}


def test_an_answer_on_stdout_cannot_drive_the_terminal(
    tmp_path: Path, context: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = _model(tmp_path, repl(f"FINAL({HOSTILE!r})"))
    assert main(["run", "q", "-c", str(context), "-m", model, "--no-db"]) == 0
    out, err = capsys.readouterr()
    assert out == SHOWN + "\n"
    assert _clean(err)


def test_json_output_stays_exact(
    tmp_path: Path, context: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = _model(tmp_path, repl(f"FINAL({HOSTILE!r})"))
    assert main(["run", "q", "-c", str(context), "-m", model, "--no-db", "--json"]) == 0
    out, _ = capsys.readouterr()
    assert _clean(out)
    assert json.loads(out)["answer"] == HOSTILE


def test_live_progress_shows_cell_output_and_code_as_text(
    tmp_path: Path, context: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    clipboard = "print('\\x1b]52;c;cHduZWQ=\\x1b\\\\')\n"
    raw_in_code = "x = '\x1b[2J'\n"  # a raw escape in the code itself
    model = _model(tmp_path, repl(clipboard + raw_in_code + "FINAL('ok')"))
    assert main(["run", "q", "-c", str(context), "-m", model, "--no-db"]) == 0
    out, err = capsys.readouterr()
    assert out == "ok\n"
    assert _clean(err)
    assert "\\x1b]52;c;cHduZWQ=\\x1b\\" in err
    assert "x = '\\x1b[2J'" in err


def test_stored_runs_are_listed_and_shown_as_text(
    tmp_path: Path, context: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = str(tmp_path / "runs.db")
    model = _model(tmp_path, repl(f"print({HOSTILE!r})\nFINAL({HOSTILE!r})"))
    query = "what is \x1b[2J this"
    assert main(["run", query, "-c", str(context), "-m", model, "--db", db, "-q", "--json"]) == 0
    run_id = json.loads(capsys.readouterr().out)["run_id"]
    assert main(["runs", "list", "--db", db]) == 0
    listed, _ = capsys.readouterr()
    assert run_id in listed
    assert _clean(listed)
    assert main(["runs", "show", run_id, "--db", db]) == 0
    shown_run, _ = capsys.readouterr()
    assert _clean(shown_run)
    assert "what is \\x1b[2J this" in shown_run
    assert SHOWN in shown_run
    assert main(["runs", "show", run_id, "--db", db, "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["answer"] == HOSTILE
    assert data["query"] == query
    assert main(["runs", "list", "--db", db, "--json"]) == 0
    lines, _ = capsys.readouterr()
    assert _clean(lines)
    assert json.loads(lines)["query"] == query


def test_an_error_quoting_untrusted_text_is_shown_as_text(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = str(tmp_path / "no\x1b]0;owned\x07file.txt")
    assert main(["run", "q", "-c", missing, "-m", "scripted:x.json"]) == 2
    _, err = capsys.readouterr()
    assert "no\\x1b]0;owned\\x07file.txt" in err
    assert _clean(err)


def test_an_exported_trace_holds_no_raw_control_and_imports_exactly(
    tmp_path: Path, context: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # A stored line keeps C1 controls and DEL raw (JSON escapes only C0): `runs export` to a
    # terminal must write them as \u escapes, and the trace must still import to the same run.
    db, other = str(tmp_path / "runs.db"), str(tmp_path / "other.db")
    answer = HOSTILE + "\x7f\x85"
    model = _model(tmp_path, repl(f"print({answer!r})\nFINAL({answer!r})"))
    assert main(["run", "q", "-c", str(context), "-m", model, "--db", db, "-q", "--json"]) == 0
    run_id = json.loads(capsys.readouterr().out)["run_id"]
    assert main(["runs", "export", run_id, "--db", db]) == 0
    exported, _ = capsys.readouterr()
    assert _clean(exported)
    assert not any(c in exported for c in "\x7f\x85")
    trace = tmp_path / "exported.jsonl"
    trace.write_text(exported, encoding="utf-8")
    assert main(["runs", "import", str(trace), "--db", other]) == 0
    capsys.readouterr()
    assert main(["runs", "show", run_id, "--db", other, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["answer"] == answer
