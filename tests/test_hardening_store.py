"""Input from outside the run: traces imported into the store (an import may only add runs;
lines that are not what a recorder writes are skipped and counted instead of crashing the
import or its readers), a repository's own ignore list, and model files named over the API."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from rlmx import RLM
from rlmx.cli.main import main
from rlmx.context import ContextOptions
from rlmx.context.sources import from_directory
from rlmx.sandbox.inprocess import InProcessRepl
from rlmx.trajectory import SqliteRecorder
from rlmx.trajectory.jsonl import import_trace
from rlmx.trajectory.store import RunStore

from .conftest import repl, scripted
from .test_server_support import Served, make_config, serve


def recorded_run(store: RunStore) -> tuple[str, str]:
    """A finished run with a nested run; returns the ids of both."""
    root = scripted(
        repl("inner = rlm_query('find the code', context='the code is ZETA-42')\nprint(inner)"),
        repl("FINAL('ZETA-42')"),  # the nested run's only reply
        repl("FINAL(inner)"),
    )
    rlm = RLM(model=root, recorder=SqliteRecorder(store), sandbox=InProcessRepl)
    result = rlm.run("What is the vault code?", "the vault")
    assert result.answer == "ZETA-42"
    nested = [
        json.loads(line)["run_id"]
        for _, line in store.iter_events(result.run_id)
        if json.loads(line)["depth"] == 1
    ]
    return result.run_id, nested[0]


def write_trace(path: Path, *events: dict[str, Any] | str) -> Path:
    lines = [e if isinstance(e, str) else json.dumps(e) for e in events]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def started(run_id: str, **extra: Any) -> dict[str, Any]:
    return {
        "type": "run_started",
        "run_id": run_id,
        "depth": 0,
        "ts": 1_700_000_000.0,
        "query": "q",
        "context": {"kind": "text", "form": "str", "chars": 10, "lines": 1},
        "root_model": "m",
        "sub_model": "m",
        "limits": {},
        **extra,
    }


def finished(run_id: str, answer: str) -> dict[str, Any]:
    return {
        "type": "run_finished",
        "run_id": run_id,
        "result": {"status": "completed", "answer": answer},
    }


# Finding 9: an import could rewrite a stored run.


@pytest.mark.parametrize(
    "forged",
    [
        "only run_finished of the stored run",
        "an event of the stored run's nested run",
        "a new nested run under the stored run",
    ],
)
def test_a_trace_naming_a_stored_run_is_refused_whole(tmp_path: Path, forged: str) -> None:
    with RunStore(tmp_path / "rlmx.db") as store:
        run_id, nested_id = recorded_run(store)
        before = store.get_run(run_id)
        events_before = list(store.iter_events(run_id))
        fresh = started("brand-new")
        forgeries = {
            "only run_finished of the stored run": finished(run_id, "FORGED"),
            "an event of the stored run's nested run": finished(nested_id, "FORGED"),
            "a new nested run under the stored run": started("child", parent_run_id=run_id),
        }
        trace = write_trace(tmp_path / "t.jsonl", fresh, forgeries[forged])
        with pytest.raises(ValueError, match="already in the store") as info:
            import_trace(store, trace)
        assert "\n" not in str(info.value)
        assert store.get_run(run_id) == before
        assert list(store.iter_events(run_id)) == events_before
        assert store.get_run("brand-new") is None  # nothing of the trace was written


def test_the_cli_refuses_the_rewrite_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "rlmx.db"
    with RunStore(db) as store:
        run_id, _ = recorded_run(store)
    trace = write_trace(tmp_path / "t.jsonl", finished(run_id, "FORGED"))
    assert main(["runs", "import", str(trace), "--db", str(db)]) == 2
    err = capsys.readouterr().err.strip()
    assert f"run {run_id} is already in the store" in err
    with RunStore(db) as store:
        run = store.get_run(run_id)
    assert run is not None
    assert run.answer == "ZETA-42"


# Finding 10a: hostile lines crashed the import or `runs show`.

HOSTILE: dict[str, str] = {
    "a token count past 64 bits": json.dumps(
        {
            "type": "root_reply",
            "run_id": "ok",
            "iteration": 1,
            "text": "t",
            "usage": {"prompt_tokens": 2**70, "total_tokens": 2**70},
            "latency_s": 0.1,
            "cost_usd": 0.0,
            "model": "m",
        }
    ),
    "a depth that is a string": json.dumps(
        {"type": "iteration_started", "run_id": "ok", "depth": "deep", "iteration": 2}
    ),
    "a negative iteration": json.dumps(
        {"type": "iteration_started", "run_id": "ok", "iteration": -1}
    ),
    "a NaN time": '{"type": "iteration_started", "run_id": "ok", "iteration": 3, "ts": NaN}',
    "a lone surrogate": (
        '{"type": "final_answer", "run_id": "ok", "iteration": 3, "answer": "\\ud800"}'
    ),
    "an answer that is an object": json.dumps(
        finished("ok", "x") | {"result": {"status": "completed", "answer": {"a": 1}}}
    ),
    "a context without a kind": json.dumps(started("other", context={"chars": "many"})),
    "a run id that is a number": json.dumps(
        {"type": "iteration_started", "run_id": 7, "iteration": 1}
    ),
    "an integer of 5,000 digits": '{"type": "iteration_started", "run_id": "ok", "iteration": '
    + "9" * 5000
    + "}",
    "nesting 100,000 deep": '{"type": "x", "run_id": "ok", "deep": '
    + "[" * 100_000
    + "]" * 100_000
    + "}",
    "a missing field": json.dumps({"type": "cell_executed", "run_id": "ok", "iteration": 1}),
}


def test_hostile_lines_are_skipped_and_counted(tmp_path: Path) -> None:
    trace = write_trace(
        tmp_path / "t.jsonl",
        started("ok"),
        *HOSTILE.values(),
        {"type": "iteration_started", "run_id": "ok", "iteration": 1},
        finished("ok", "fine"),
    )
    with RunStore(tmp_path / "rlmx.db") as store:
        assert import_trace(store, trace) == (["ok"], len(HOSTILE))
        run = store.get_run("ok")
        assert run is not None
        assert (run.status, run.answer, run.event_count) == ("completed", "fine", 3)


@pytest.mark.parametrize("line", list(HOSTILE.values()), ids=list(HOSTILE))
def test_runs_show_reads_what_a_hostile_trace_left(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], line: str
) -> None:
    db = tmp_path / "rlmx.db"
    trace = write_trace(tmp_path / "t.jsonl", started("ok"), line, finished("ok", "fine"))
    assert main(["runs", "import", str(trace), "--db", str(db)]) == 0
    assert "imported ok (1 bad lines skipped)" in capsys.readouterr().err
    assert main(["runs", "show", "ok", "--db", str(db)]) == 0
    assert "fine" in capsys.readouterr().out


def test_a_recorded_run_exports_and_imports_into_another_store(tmp_path: Path) -> None:
    with RunStore(tmp_path / "a.db") as store:
        run_id, _ = recorded_run(store)
        lines = [line for _, line in store.iter_events(run_id)]
    trace = write_trace(tmp_path / "t.jsonl", *lines)
    with RunStore(tmp_path / "b.db") as other:
        assert import_trace(other, trace) == ([run_id], 0)
        assert [line for _, line in other.iter_events(run_id)] == lines


# Finding 10d: .git/info/exclude was not honoured in directory contexts.


def test_a_repositorys_info_exclude_is_honoured_below_its_gitignore(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    (root / ".git" / "info").mkdir(parents=True)
    (root / ".git" / "info" / "exclude").write_text("secret*.txt\nlocal/\n")
    (root / ".gitignore").write_text("!secret-kept.txt\n")  # .gitignore overrides exclude
    for name in ("keep.txt", "secret.txt", "secret-kept.txt", "local/notes.txt", "sub/secret2.txt"):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(f"{name}\n")
    context = from_directory(root)
    assert [d["name"] for d in context.docs] == ["keep.txt", "secret-kept.txt"]
    assert "3 ignored by .gitignore or .git/info/exclude" in context.notes[0]
    everything = from_directory(root, ContextOptions(gitignore=False))
    assert len(everything.docs) == 5


# Finding 10e: over the API, local:/path.gguf escaped --allow-path and told whether it existed.


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    yield from serve(make_config(tmp_path))


def test_a_local_model_file_outside_the_allowed_roots_gets_one_answer(served: Served) -> None:
    outside = served.root.parent
    (outside / "real.gguf").write_bytes(b"GGUF" + b"\x00" * 64)
    script = served.script("x.json", repl("FINAL('x')"))
    answers = []
    with served.client() as client:
        for name in ("real.gguf", "missing.gguf"):
            spec = f"local:{outside / name}"
            for body in (
                {"query": "q", "text": "t", "model": spec},
                {"query": "q", "text": "t", "model": script, "sub_model": spec},
            ):
                response = client.post("/v1/runs", json=body)
                message = response.json()["error"]["message"]
                answers.append((response.status_code, message.replace(name, "NAME")))
            chat = {"model": f"rlm:{spec}", "messages": [{"role": "user", "content": "q"}]}
            response = client.post("/v1/chat/completions", json=chat)
            message = response.json()["error"]["message"]
            answers.append((response.status_code, message.replace(name, "NAME")))
        assert client.get("/v1/runs").json()["runs"] == []
    assert answers[:3] == answers[3:]
    assert {status for status, _ in answers} == {403}
    assert all("outside the allowed roots" in message for _, message in answers)


def test_a_local_model_spec_that_is_neither_a_name_nor_a_gguf_file_is_refused(
    served: Served,
) -> None:
    with served.client() as client:
        body = {"query": "q", "text": "t", "model": "local:/etc/passwd"}
        response = client.post("/v1/runs", json=body)
    assert response.status_code == 422
    assert "unknown local model" in response.json()["error"]["message"]
