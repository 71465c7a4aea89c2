"""Sessions: questions that share one REPL, durable by name across processes."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rlmx import RLM
from rlmx.errors import ConfigError
from rlmx.providers.scripted import ScriptedModel
from rlmx.sandbox.base import SandboxFactory
from rlmx.sandbox.inprocess import InProcessRepl
from rlmx.sessions import SessionPolicy
from rlmx.trajectory.sessions import SessionTable
from rlmx.trajectory.store import open_store

from .conftest import ListRecorder, repl, scripted

CONTEXT = "alpha beta gamma\n" * 50


def _rlm(root: ScriptedModel, sub: ScriptedModel | None = None, **kwargs: object) -> RLM:
    return RLM(model=root, sub_model=sub or scripted(), sandbox=InProcessRepl, **kwargs)  # type: ignore[arg-type]


def test_later_questions_find_the_variables_of_earlier_ones_and_are_told_of_them() -> None:
    root = scripted(
        repl("words = context.split()\nprint(len(words))"),
        repl("FINAL(str(len(words)))"),
        repl("FINAL(str(words.count('beta')))"),
        repl("FINAL(words[-1])"),
    )
    with _rlm(root).session(CONTEXT) as session:
        first = session.ask("How many words are there?")
        second = session.ask("How many times does beta occur?")
        third = session.ask("What is the last word?")
    assert (first.answer, second.answer, third.answer) == ("150", "50", "gamma")
    assert [e.question for e in session.history] == [
        "How many words are there?",
        "How many times does beta occur?",
        "What is the last word?",
    ]
    third_turn = root.calls[3][1].content  # the first user turn of the third question
    assert "1. Q: How many words are there?" in third_turn
    assert "A: 150" in third_turn
    assert "2. Q: How many times does beta occur?" in third_turn
    assert third_turn.index("A: 50") < third_turn.index("What is the last word?")
    assert session.records[0].code.startswith("words = context.split()")


async def test_an_async_session_records_each_question_as_a_run() -> None:
    recorder = ListRecorder()
    root = scripted(repl("n = 7\nFINAL('set')"), repl("FINAL(str(n * 6))"))
    async with _rlm(root, recorder=recorder).session(CONTEXT) as session:
        assert (await session.aask("Set n.")).answer == "set"
        second = await session.aask("What is n times six?")
    assert second.answer == "42"
    started = [e.run_id for e in recorder.events if e.type == "run_started"]
    assert started == [e.run_id for e in session.history]
    assert len(set(started)) == 2
    assert not session.worker_running


def test_execute_runs_a_cell_in_the_session_and_refuses_sub_calls() -> None:
    root = scripted(repl("FINAL(str(total + 1))"))
    with _rlm(root).session(CONTEXT) as session:
        assert session.execute("total = 41").error is None
        refused = session.execute("llm_query('hello')")
        assert refused.error is not None
        assert "use Session.ask" in refused.error
        assert session.ask("What is total plus one?").answer == "42"


def test_a_named_session_continues_in_a_new_instance_without_asking_the_sub_model_again(
    tmp_path: Path,
) -> None:
    store = open_store(tmp_path / "runs.db")
    sub = scripted("a summary of the text")
    root = scripted(
        repl("summary = llm_query('Summarise: ' + context[:40])\nprint(summary)"),
        repl("FINAL('noted')"),
    )
    with _rlm(root, sub).session(CONTEXT, name="notes", store=store) as session:
        assert session.ask("Summarise the text.").answer == "noted"
    assert len(sub.calls) == 1

    silent_sub = scripted()  # any call to it would fail: it has no answer to give
    root2 = scripted(repl("FINAL(summary.upper())"))
    with _rlm(root2, silent_sub).session(CONTEXT, name="notes", store=store) as again:
        result = again.ask("Shout the summary.")
    assert result.answer == "A SUMMARY OF THE TEXT"
    assert silent_sub.calls == []
    assert [e.question for e in again.history] == ["Summarise the text.", "Shout the summary."]
    assert "1. Q: Summarise the text." in root2.calls[0][1].content
    rows = SessionTable(store.database).rows()
    assert [(r.name, r.questions) for r in rows] == [("notes", 2)]


def test_a_replay_that_cannot_reproduce_a_cell_says_so(tmp_path: Path) -> None:
    store = open_store(tmp_path / "runs.db")
    root = scripted(repl("import random\nr = random.random()\nprint(r)"), repl("FINAL('ok')"))
    with _rlm(root).session(CONTEXT, name="dice", store=store) as session:
        session.ask("Roll.")
    root2 = scripted(repl("FINAL('again')"))
    with _rlm(root2).session(CONTEXT, name="dice", store=store) as again:
        again.ask("And now?")
    first_turn = root2.calls[0][1].content
    assert "it printed something different this time" in first_turn
    assert "import random" in first_turn


def test_a_named_session_refuses_another_context(tmp_path: Path) -> None:
    store = open_store(tmp_path / "runs.db")
    with _rlm(scripted(repl("FINAL('x')"))).session(CONTEXT, name="s", store=store) as session:
        session.ask("Anything?")
    with pytest.raises(ConfigError, match="opened over another context"):
        _rlm(scripted()).session("other text", name="s", store=store)


def test_an_idle_session_lets_its_worker_go_and_restores_it_for_the_next_question() -> None:
    root = scripted(repl("k = 5\nFINAL('set')"), repl("FINAL(str(k))"))
    policy = SessionPolicy(worker_idle_s=0.05)
    with _rlm(root).session(CONTEXT, policy=policy) as session:
        session.ask("Set k.")
        deadline = time.monotonic() + 10
        while session.worker_running and time.monotonic() < deadline:
            time.sleep(0.02)
        assert not session.worker_running
        assert session.ask("What is k?").answer == "5"


def test_stored_sessions_expire_by_idle_time_and_by_total_size(tmp_path: Path) -> None:
    table = SessionTable(open_store(tmp_path / "runs.db").database)
    table.save("old", "c1", {"history": []}, questions=0)
    with table.database.writing() as db:
        db.execute("UPDATE sessions SET used_at = used_at - 1000 WHERE name = 'old'")
    table.save("big", "c2", {"blob": "x" * 5000}, questions=1)
    table.save("small", "c3", {"blob": "y" * 10}, questions=1)
    gone = table.expire(idle_s=500, max_bytes=1000, keep="small")
    assert gone == ["old", "big"]
    assert [r.name for r in table.rows()] == ["small"]


def test_the_dsl_level_has_no_sessions() -> None:
    with pytest.raises(ConfigError, match="level='code'"):
        RLM(model=scripted(), level="dsl").session(CONTEXT)


# A session survives the death of its process (kill -9 between questions) -------------------

_ASK = """
import os, sys
from rlmx import RLM
from rlmx.context.sources import from_directory
from rlmx.trajectory.store import open_store
rlm = RLM(model=sys.argv[1], sub_model=sys.argv[2])
path = sys.argv[3]
context = from_directory(path) if os.path.isdir(path) else open(path).read()
session = rlm.session(context, name="survivor", store=open_store(sys.argv[4]))
for question in sys.argv[5].split("||"):
    print(session.ask(question).answer, flush=True)
print("asked", flush=True)
if sys.argv[6] == "hang":
    import time
    time.sleep(600)
session.close()
"""


def _script(path: Path, responses: list[str]) -> str:
    path.write_text(json.dumps({"responses": responses}), encoding="utf-8")
    return f"scripted:{path}"


def test_a_session_survives_kill_9_between_questions(tmp_path: Path) -> None:
    context = tmp_path / "context.txt"
    context.write_text(CONTEXT, encoding="utf-8")
    db = str(tmp_path / "runs.db")
    root1 = _script(
        tmp_path / "root1.json",
        [repl("s = llm_query('name a colour')\nprint(s)"), repl("FINAL('remembered')")],
    )
    sub1 = _script(tmp_path / "sub1.json", ["teal"])
    first = subprocess.Popen(
        [sys.executable, "-c", _ASK, root1, sub1, str(context), db, "Pick a colour.", "hang"],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert first.stdout is not None
    assert first.stdout.readline().strip() == "remembered"
    assert first.stdout.readline().strip() == "asked"
    os.kill(first.pid, signal.SIGKILL)
    first.wait(timeout=30)
    first.stdout.close()

    root2 = _script(tmp_path / "root2.json", [repl("FINAL(s + '!')")])
    sub2 = _script(tmp_path / "sub2.json", [])  # asked anything, it fails the run
    second = subprocess.run(
        [sys.executable, "-c", _ASK, root2, sub2, str(context), db, "Which colour?", "end"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert second.returncode == 0, second.stderr
    assert second.stdout.splitlines()[0] == "teal!"


def test_sessions_work_in_every_sandbox(sandbox: SandboxFactory) -> None:
    root = scripted(
        repl("seen = context.count('beta')\nprint(seen)"),
        repl("FINAL('ok')"),
        repl("FINAL(str(seen))"),
    )
    rlm = RLM(model=root, sub_model=scripted(), sandbox=sandbox)
    with rlm.session(CONTEXT) as session:
        session.ask("Count beta.")
        assert session.ask("How many?").answer == "50"


def test_asking_a_closed_session_is_a_clear_error() -> None:
    session = _rlm(scripted()).session(CONTEXT)
    session.close()
    with pytest.raises(ConfigError, match="closed"):
        asyncio.run(session.aask("Hello?"))


def test_three_questions_over_this_project_s_source_tree(tmp_path: Path) -> None:
    from rlmx.context.sources import from_directory

    source = Path(__file__).resolve().parent.parent / "src" / "rlmx"
    root = scripted(
        repl("py = [f for f in list_files() if f.endswith('.py')]\nprint(len(py))"),
        repl("FINAL(str(len(py)))"),
        repl("big = max(py, key=lambda f: len(read_file(f)))\nFINAL(big)"),
        repl("FINAL(str(sum(1 for f in py if f.startswith(big.split('/')[0]))))"),
    )
    store = open_store(tmp_path / "runs.db")
    with _rlm(root).session(from_directory(str(source)), name="tree", store=store) as session:
        count = session.ask("How many Python files are there?")
        biggest = session.ask("Which one is the largest?")
        same = session.ask("How many files share its top folder?")
    expected = sorted(str(p.relative_to(source)) for p in source.rglob("*.py"))
    assert count.answer == str(len(expected))
    assert biggest.answer in expected
    assert same.answer is not None
    assert int(same.answer) >= 1
    assert [r.code.split("\n")[0] for r in session.records][:1] == [
        "py = [f for f in list_files() if f.endswith('.py')]"
    ]


def test_three_questions_over_the_source_tree_survive_kill_9(tmp_path: Path) -> None:
    source = str(Path(__file__).resolve().parent.parent / "src" / "rlmx")
    db = str(tmp_path / "runs.db")
    root1 = _script(
        tmp_path / "root1.json",
        [
            repl(
                "py = sorted(f for f in list_files() if f.endswith('.py'))\n"
                "gist = llm_query('What does this package do? ' + read_file(py[0])[:300])\n"
                "print(len(py), gist)"
            ),
            repl("FINAL(str(len(py)))"),
        ],
    )
    first = subprocess.Popen(
        [
            sys.executable,
            "-c",
            _ASK,
            root1,
            _script(tmp_path / "sub1.json", ["it answers"]),
            source,
            db,
            "How many Python files?",
            "hang",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert first.stdout is not None
    count = first.stdout.readline().strip()
    assert first.stdout.readline().strip() == "asked"
    os.kill(first.pid, signal.SIGKILL)
    first.wait(timeout=30)
    first.stdout.close()

    root2 = _script(
        tmp_path / "root2.json",
        [repl("FINAL(py[0] + ': ' + gist)"), repl("FINAL(str(sum(1 for f in py if '/' in f)))")],
    )
    second = subprocess.run(
        [
            sys.executable,
            "-c",
            _ASK,
            root2,
            _script(tmp_path / "sub2.json", []),
            source,
            db,
            "What does the first file do?||How many are in subfolders?",
            "end",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert second.returncode == 0, second.stderr
    what, nested, asked = second.stdout.splitlines()
    assert what.endswith(": it answers")  # the first question's sub-call answer, not asked again
    assert int(nested) <= int(count)
    assert asked == "asked"
