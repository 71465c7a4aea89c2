"""The CLI in-process: stdout carries only the answer, errors are one line with the right code."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from rlmx.cli.main import main
from rlmx.config import Settings
from rlmx.errors import ConfigError
from rlmx.providers.defaults import LOCAL_ROOT, LOCAL_SUB, choose_models
from rlmx.trajectory.jsonl import read_jsonl

from .conftest import repl


def script(tmp_path: Path, *responses: str, rules: dict[str, str] | None = None) -> str:
    path = tmp_path / "script.json"
    data = {
        "responses": list(responses),
        "rules": [{"contains": k, "reply": v} for k, v in (rules or {}).items()],
    }
    path.write_text(json.dumps(data))
    return f"scripted:{path}"


@pytest.fixture
def book(tmp_path: Path) -> Path:
    path = tmp_path / "book.txt"
    path.write_text("Chapter 1\nThe password is OSPREY-7.\nThe end.\n")
    return path


def test_answer_alone_on_stdout(
    tmp_path: Path, book: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = script(
        tmp_path, repl("import re\nFINAL(re.search(r'password is (\\S+)\\.', context).group(1))")
    )
    code = main(["run", "What is the password?", "--context", str(book), "--model", model])
    out, err = capsys.readouterr()
    assert code == 0
    assert out == "OSPREY-7\n"
    assert "completed" in err


def test_json_output_and_trace(
    tmp_path: Path, book: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = script(tmp_path, repl("a = llm_query('SUB find')\nFINAL(a)"), rules={"SUB": "OSPREY-7"})
    trace = tmp_path / "trace.jsonl"
    code = main(["run", "q", "-c", str(book), "-m", model, "--json", "--trace", str(trace), "-q"])
    out, _ = capsys.readouterr()
    assert code == 0
    data = json.loads(out)
    assert set(data) >= {
        "answer",
        "status",
        "iterations",
        "sub_calls",
        "usage",
        "cost_usd",
        "wall_s",
    }
    assert data["answer"] == "OSPREY-7"
    assert data["status"] == "completed"
    assert data["sub_calls"] == 1
    assert set(data["usage"]) >= {"root", "sub", "total"}
    assert data["usage"]["total"]["total_tokens"] == (
        data["usage"]["root"]["total_tokens"] + data["usage"]["sub"]["total_tokens"]
    )
    events = read_jsonl(trace)
    assert events[0]["type"] == "run_started"
    assert events[-1]["type"] == "run_finished"
    assert {"root_reply", "cell_executed", "sub_call"} <= {e["type"] for e in events}
    assert all(e["schema_version"] == 1 for e in events)


def test_stdin_context(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    stdin = io.TextIOWrapper(io.BytesIO(b"piped text 123"))
    monkeypatch.setattr("sys.stdin", stdin)
    model = script(tmp_path, repl("FINAL(context.split()[-1])"))
    assert main(["run", "q", "--context", "-", "--model", model, "-q"]) == 0
    assert capsys.readouterr().out == "123\n"


def test_directory_becomes_a_list_of_documents(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    docs = tmp_path / "docs"
    (docs / "sub").mkdir(parents=True)
    (docs / "a.txt").write_text("first")
    (docs / "sub" / "b.md").write_text("second")
    (docs / "blob.bin").write_bytes(b"\x00\x01\x02")
    model = script(tmp_path, repl("FINAL(str(len(context)) + ' ' + context[1].splitlines()[0])"))
    assert main(["run", "q", "--context", str(docs), "--model", model]) == 0
    out, err = capsys.readouterr()
    assert out == "2 # file: sub/b.md\n"
    assert "skipped 1 binary" in err


def test_invalid_utf8_is_replaced_and_reported(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "latin1.txt"
    bad.write_bytes("caf\xe9 ok".encode("latin-1"))
    model = script(tmp_path, repl("FINAL(context)"))
    assert main(["run", "q", "--context", str(bad), "--model", model]) == 0
    out, err = capsys.readouterr()
    assert out == "caf\ufffd ok\n"
    assert "1 invalid byte" in err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--context", "/nonexistent/file.txt", "--model", "scripted:x.json"],
            "context file not found",
        ),
        (["--context", "{book}", "--model", "nope:model"], "unknown provider 'nope'"),
        (["--context", "{book}", "--model", "openai:gpt-5-mini"], "OPENAI_API_KEY"),
        (["--context", "{book}", "--model", "anthropic:claude-sonnet-4-5"], "ANTHROPIC_API_KEY"),
        (["--context", "{book}", "--model", "justaname"], "provider:model"),
        (["--context", "{book}", "--model", "scripted:/nonexistent.json"], "not found"),
        (
            ["--context", "{book}", "--max-iterations", "0", "--model", "scripted:x"],
            "max_iterations must be positive",
        ),
        (["--context", "{book}", "--bogus-flag"], "unrecognized arguments"),
    ],
)
def test_usage_errors_are_one_line_with_exit_2(
    args: list[str], message: str, book: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["run", "q", *[a.replace("{book}", str(book)) for a in args]])
    out, err = capsys.readouterr()
    assert code == 2
    assert out == ""
    assert message in err
    assert "Traceback" not in err
    assert err.strip().startswith("error:")


def test_binary_context_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    blob = tmp_path / "x.bin"
    blob.write_bytes(b"\x7fELF\x00\x00\x00")
    assert main(["run", "q", "--context", str(blob), "--model", "scripted:x.json"]) == 2
    assert "binary" in capsys.readouterr().err


def test_a_model_that_never_finishes_exits_1_and_keeps_the_trace(
    tmp_path: Path, book: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = script(tmp_path, repl("print('looking')"), repl("print('still looking')"), "I give up.")
    trace = tmp_path / "t.jsonl"
    code = main(
        ["run", "q", "-c", str(book), "-m", model, "--max-iterations", "2", "--trace", str(trace)]
    )
    _, err = capsys.readouterr()
    assert code == 1
    assert "max_iterations" in err
    events = read_jsonl(trace)
    assert events[-1]["type"] == "run_finished"
    assert events[-1]["result"]["status"] == "max_iterations"
    assert sum(e["type"] == "cell_executed" for e in events) == 2


def test_a_provider_failure_mid_run_exits_1_with_one_line(
    tmp_path: Path, book: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = script(tmp_path, repl("print('one')"))
    trace = tmp_path / "t.jsonl"
    code = main(["run", "q", "-c", str(book), "-m", model, "--trace", str(trace)])
    _, err = capsys.readouterr()
    assert code == 1
    assert "no response left" in err
    assert "Traceback" not in err
    assert read_jsonl(trace)[-1]["result"]["status"] == "error"


def test_debug_shows_the_traceback(book: Path) -> None:
    with pytest.raises(ConfigError):
        main(["--debug", "run", "q", "--context", str(book), "--model", "nope:x"])


def test_default_models_are_local_without_a_key() -> None:
    choice = choose_models(None, None, settings=Settings(env={}))
    assert (choice.root, choice.sub) == (LOCAL_ROOT, LOCAL_SUB)
    assert choice.note is not None
    assert "no API key" in choice.note
    with pytest.raises(ConfigError, match="--model"):
        choose_models(None, None, settings=Settings(env={"OPENAI_API_KEY": "sk-x"}))
    assert choose_models("openai:gpt-5", None, settings=Settings(env={})).sub == "openai:gpt-5"
