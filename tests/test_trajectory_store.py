"""The SQLite run store: migrations, recording a run tree, surviving a killed writer, import
and export, and the ``rlmx runs`` commands."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

from rlmx import RLM, Limits
from rlmx.cli.main import main
from rlmx.sandbox.inprocess import InProcessRepl
from rlmx.trajectory import (
    JsonlRecorder,
    MultiRecorder,
    RunStore,
    SqliteRecorder,
    import_trace,
    read_jsonl,
)
from rlmx.trajectory.events import IterationStarted, RunFinished, RunStarted
from rlmx.trajectory.migrations import MIGRATIONS, applied, migrate

from .conftest import repl, scripted

CONTEXT = "alpha\nthe vault code is ZETA-42\nomega\n"


def nested_run(store: RunStore, *, trace: Path | None = None) -> str:
    """A run with an llm_query and a nested rlm_query; returns its id."""
    root = scripted(
        repl("parts = llm_query_batched(['SUB a', 'SUB b'])\nprint(parts)"),
        repl("inner = rlm_query('find the code')\nprint(inner)"),
        repl("FINAL('ZETA-42')"),  # the nested run's only reply
        repl("FINAL(inner)"),
        rules={"SUB": "sub answer"},
    )
    jsonl = JsonlRecorder(trace) if trace is not None else None
    recorders = [r for r in (SqliteRecorder(store, source="python"), jsonl) if r is not None]
    rlm = RLM(
        model=root,
        limits=Limits(max_depth=2),
        recorder=MultiRecorder(recorders),
        sandbox=InProcessRepl,
    )
    try:
        result = rlm.run("What is the vault code?", CONTEXT)
    finally:
        if jsonl is not None:
            jsonl.close()
    assert result.status == "completed", result.error
    assert result.answer == "ZETA-42"
    return result.run_id


def test_migrations_are_named_recorded_and_applied_once(tmp_path: Path) -> None:
    db = sqlite3.connect(tmp_path / "m.db", isolation_level=None)
    assert migrate(db) == [name for name, _ in MIGRATIONS]
    assert migrate(db) == []
    assert applied(db) == [name for name, _ in MIGRATIONS]

    def add_column(conn: sqlite3.Connection) -> None:
        conn.execute("ALTER TABLE runs ADD COLUMN tag TEXT")

    later = [*MIGRATIONS, ("0099_tag", add_column)]
    assert migrate(db, later) == ["0099_tag"]
    assert migrate(db, later) == []
    db.execute("INSERT INTO runs (id, status, created_at, tag) VALUES ('x', 'running', 0, 't')")
    db.close()


def test_a_run_tree_is_recorded_under_its_top_level_run(tmp_path: Path) -> None:
    with RunStore(tmp_path / "rlmx.db") as store:
        run_id = nested_run(store, trace=tmp_path / "t.jsonl")
        runs = store.list_runs()
        assert [r.id for r in runs] == [run_id]  # the nested run is not a run of its own
        run = runs[0]
        assert run.status == "completed"
        assert run.answer == "ZETA-42"
        assert run.source == "python"
        assert (run.iterations, run.sub_calls) == (3, 3)
        assert run.query == "What is the vault code?"
        assert run.context["chars"] == len(CONTEXT)
        events = [json.loads(line) for _, line in store.iter_events(run_id)]
        numbers = [idx for idx, _ in store.iter_events(run_id)]
    assert numbers == list(range(len(events)))
    # The same events, in the same order, as the JSONL trace.
    assert events == read_jsonl(tmp_path / "t.jsonl")
    nested = {e["run_id"] for e in events} - {run_id}
    assert len(nested) == 1
    assert any(e["type"] == "run_started" and e.get("parent_run_id") == run_id for e in events)
    tokens = sum(
        e["usage"].get("total_tokens", 0) for e in events if e["type"] in ("root_reply", "sub_call")
    )
    assert run.total_tokens == tokens > 0
    assert run.cost_usd == 0.0


def test_totals_are_kept_current_while_the_run_goes(tmp_path: Path) -> None:
    with RunStore(tmp_path / "rlmx.db") as store:
        rec = SqliteRecorder(store)
        rec.on_event(
            RunStarted(
                run_id="live",
                query="q",
                context={},
                root_model="m",
                sub_model="m",
                limits={},
            )
        )
        rec.on_event(IterationStarted(run_id="live", iteration=1))
        run = store.get_run("live")
        assert run is not None
        assert run.status == "running"
        assert run.event_count == 2
        assert run.elapsed_s is not None
        rec.on_event(RunFinished(run_id="live", result={"status": "max_iterations"}))
        run = store.get_run("live")
        assert run is not None
        assert run.status == "max_iterations"


CRASHING_RUN = textwrap.dedent(
    """
    import sys
    from rlmx import RLM
    from rlmx.providers.scripted import ScriptedModel
    from rlmx.sandbox.inprocess import InProcessRepl
    from rlmx.trajectory import JsonlRecorder, MultiRecorder, SqliteRecorder

    model = ScriptedModel([
        "```repl\\nprint('first cell')\\n```",
        "```repl\\nimport os, signal\\nos.kill(os.getpid(), signal.SIGKILL)\\n```",
    ])
    db, trace = SqliteRecorder(sys.argv[1], source="cli"), JsonlRecorder(sys.argv[2])
    recorder = MultiRecorder([db, trace])
    RLM(model=model, recorder=recorder, sandbox=InProcessRepl).run("q", "some context")
    """
)


def test_a_killed_run_keeps_every_event_written(tmp_path: Path) -> None:
    db, trace = tmp_path / "rlmx.db", tmp_path / "t.jsonl"
    done = subprocess.run(
        [sys.executable, "-c", CRASHING_RUN, str(db), str(trace)], capture_output=True, timeout=60
    )
    assert done.returncode == -9, done.stderr.decode()
    with RunStore(db) as store:
        (run,) = store.list_runs()
        assert store.reap() == [run.id]
        run = store.get_run(run.id) or run
        assert run.status == "interrupted"
        assert "ended before the run finished" in (run.error or "")
        kinds = [json.loads(line)["type"] for _, line in store.iter_events(run.id)]
    core = [k for k in kinds if k in ("run_started", "root_reply", "cell_executed", "run_finished")]
    assert core == ["run_started", "root_reply", "cell_executed", "root_reply"]
    assert [e["type"] for e in read_jsonl(trace)] == kinds


ABANDONED_RUN = textwrap.dedent(
    """
    import sys
    from rlmx.trajectory import RunStarted, RunStore, SqliteRecorder

    with RunStore(sys.argv[1]) as store:
        started = RunStarted(
            run_id="gone", query="q", context={}, root_model="m", sub_model="m", limits={}
        )
        SqliteRecorder(store, source="cli").on_event(started)
    """
)


def abandoned_run(db: Path) -> None:
    """A run left ``running`` by a process that has exited."""
    done = subprocess.run(
        [sys.executable, "-c", ABANDONED_RUN, str(db)], capture_output=True, timeout=60
    )
    assert done.returncode == 0, done.stderr.decode()


def test_reading_never_writes_and_reaping_is_a_step_of_its_own(tmp_path: Path) -> None:
    db = tmp_path / "rlmx.db"
    abandoned_run(db)
    with RunStore(db) as store:
        before = store.database.total_changes
        (run,) = store.list_runs()
        assert run.status == "running"  # its process is gone, but reading changes nothing
        assert store.list_runs(status="running", search="go") == [run]
        assert store.get_run("gone") == run
        assert store.resolve_id("go") == "gone"
        assert [idx for idx, _ in store.iter_events("gone")] == [0]
        assert store.database.total_changes == before
        assert store.reap() == ["gone"]
        assert store.database.total_changes == before + 1
        assert store.reap() == []
        reaped = store.get_run("gone")
    assert reaped is not None
    assert reaped.status == "interrupted"
    assert "ended before the run finished" in (reaped.error or "")


def test_rlmx_runs_reaps_before_it_reads(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "rlmx.db"
    abandoned_run(db)
    assert main(["runs", "list", "--db", str(db), "--json"]) == 0
    (row,) = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert (row["id"], row["status"]) == ("gone", "interrupted")


def test_export_then_import_gives_the_same_run(tmp_path: Path) -> None:
    with RunStore(tmp_path / "a.db") as store:
        run_id = nested_run(store)
        original = store.get_run(run_id)
        lines = [line for _, line in store.iter_events(run_id)]
    trace = tmp_path / "export.jsonl"
    trace.write_text("\n".join(lines) + "\n{torn", encoding="utf-8")
    with RunStore(tmp_path / "b.db") as other:
        ids, skipped = import_trace(other, trace)
        assert (ids, skipped) == ([run_id], 0)
        copy = other.get_run(run_id)
        assert [line for _, line in other.iter_events(run_id)] == lines
        with pytest.raises(ValueError, match="already in the store"):
            import_trace(other, trace)
    assert original is not None
    assert copy is not None
    assert copy.source == "import"
    for name in ("status", "answer", "iterations", "sub_calls", "total_tokens", "query"):
        assert getattr(copy, name) == getattr(original, name), name


def test_an_unfinished_trace_imports_as_interrupted(tmp_path: Path) -> None:
    trace = tmp_path / "t.jsonl"
    started = RunStarted(
        run_id="cut", query="q", context={"kind": "text"}, root_model="m", sub_model="m", limits={}
    )
    trace.write_text(json.dumps(started.to_dict()) + "\n[1, 2]\n", encoding="utf-8")
    with RunStore(tmp_path / "rlmx.db") as store:
        assert import_trace(store, trace) == (["cut"], 1)
        run = store.get_run("cut")
        assert run is not None
        assert run.status == "interrupted"


def test_ids_resolve_by_unique_prefix(tmp_path: Path) -> None:
    with RunStore(tmp_path / "rlmx.db") as store:
        for run_id in ("abc111", "abc222", "xyz"):
            store.create_run(run_id, query="q", source="server")
        assert store.resolve_id("xy") == "xyz"
        assert store.resolve_id("abc1") == "abc111"
        assert store.resolve_id("nope") is None
        assert store.resolve_id("a%") is None
        with pytest.raises(ValueError, match="ambiguous"):
            store.resolve_id("abc")


def test_threads_recording_runs_at_once_keep_them_apart(tmp_path: Path) -> None:
    with RunStore(tmp_path / "rlmx.db") as store:

        def record(run_id: str) -> None:
            rec = SqliteRecorder(store)
            rec.on_event(
                RunStarted(
                    run_id=run_id,
                    query=run_id,
                    context={},
                    root_model="m",
                    sub_model="m",
                    limits={},
                )
            )
            for i in range(200):
                rec.on_event(IterationStarted(run_id=run_id, iteration=i))
            rec.on_event(RunFinished(run_id=run_id, result={"status": "completed"}))

        threads = [threading.Thread(target=record, args=(f"run{i}",)) for i in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        for i in range(4):
            numbers = [idx for idx, _ in store.iter_events(f"run{i}")]
            assert numbers == list(range(202))


def test_a_database_error_is_counted_not_raised(tmp_path: Path) -> None:
    store = RunStore(tmp_path / "rlmx.db")
    rec = SqliteRecorder(store)
    store.close()
    rec.on_event(IterationStarted(run_id="r", iteration=1))
    assert rec.dropped == 1


def test_runs_commands(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    db = tmp_path / "rlmx.db"
    with RunStore(db) as store:
        run_id = nested_run(store)
    assert main(["runs", "list", "--db", str(db)]) == 0
    out = capsys.readouterr().out
    assert run_id in out
    assert "completed" in out
    assert main(["runs", "list", "--db", str(db), "--json"]) == 0
    (row,) = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert row["id"] == run_id
    assert row["answer"] == "ZETA-42"
    assert main(["runs", "show", run_id[:6], "--db", str(db)]) == 0
    shown = capsys.readouterr().out
    assert "ZETA-42" in shown
    assert "iteration 2" in shown
    assert "nested run" in shown
    exported = tmp_path / "out.jsonl"
    assert main(["runs", "export", run_id, "--db", str(db), "-o", str(exported)]) == 0
    assert main(["runs", "export", run_id, "--db", str(db)]) == 0
    assert capsys.readouterr().out == exported.read_text(encoding="utf-8")
    other = tmp_path / "other.db"
    assert main(["runs", "import", str(exported), "--db", str(other)]) == 0
    assert main(["runs", "import", str(exported), "--db", str(other)]) == 2
    assert "already in the store" in capsys.readouterr().err
    assert main(["runs", "delete", run_id, "--db", str(other)]) == 0
    assert main(["runs", "show", run_id, "--db", str(other)]) == 2
    assert "no run" in capsys.readouterr().err
    assert main(["runs", "show", "x", "--db", str(tmp_path / "missing.db")]) == 2
    monkeypatch.setenv("RLMX_HOME", str(tmp_path / "home"))
    capsys.readouterr()
    assert main(["runs"]) == 0  # no action: list the default store
    assert "no runs yet" in capsys.readouterr().err


def _run_options() -> set[str]:
    from rlmx.cli.main import build_parser

    commands = next(a for a in build_parser()._actions if a.dest == "command")
    run_parser = commands.choices["run"]  # type: ignore[index]
    return set(run_parser._option_string_actions)


def test_rlmx_run_records_to_the_store_by_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if "--db" not in _run_options():
        pytest.skip("cli/run.py does not record to the store yet (the --db/--no-db hook)")
    book = tmp_path / "book.txt"
    book.write_text("the vault code is ZETA-42\n")
    script = tmp_path / "script.json"
    script.write_text(json.dumps({"rules": [{"contains": "", "reply": repl("FINAL('ZETA-42')")}]}))
    model = f"scripted:{script}"
    monkeypatch.setenv("RLMX_DB", str(tmp_path / "default.db"))
    assert main(["run", "q", "-c", str(book), "-m", model, "-q"]) == 0
    other = tmp_path / "other.db"
    assert main(["run", "q", "-c", str(book), "-m", model, "-q", "--db", str(other)]) == 0
    assert main(["run", "q", "-c", str(book), "-m", model, "-q", "--no-db"]) == 0
    for path in (tmp_path / "default.db", other):
        with RunStore(path) as store:
            (run,) = store.list_runs()
            assert (run.source, run.status, run.answer) == ("cli", "completed", "ZETA-42")
