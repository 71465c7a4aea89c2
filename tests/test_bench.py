"""`rlmx bench`: generators, scorers, methods and the runner, on scripted models (fast)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import pytest

from rlmx.bench.baselines import Direct, Retrieval, Summary, bm25_rank
from rlmx.bench.chunking import chunk_context, truncate_head
from rlmx.bench.codeqa import generate_codeqa
from rlmx.bench.logs import generate_logs
from rlmx.bench.methods import BenchModels, RlmMethod, build_method
from rlmx.bench.needles import generate_book_needle, generate_sniah
from rlmx.bench.oolong import generate_oolong
from rlmx.bench.oolong_pairs import gold_pairs, pair_queries
from rlmx.bench.oolong_window import Line, build_window
from rlmx.bench.report import cells, charts, render_html, render_markdown
from rlmx.bench.runner import BenchPlan, Runner, read_rows
from rlmx.bench.scoring import pairs_f1, parse_choice, parse_pairs, score, score_oolong
from rlmx.bench.tasks import Task, format_length, parse_length
from rlmx.cli.main import main
from rlmx.config import Limits
from rlmx.errors import UsageError
from rlmx.providers.base import ModelProfile
from rlmx.providers.scripted import ScriptedModel
from rlmx.sandbox.process import sandbox_factory
from rlmx.trajectory.base import NullRecorder

from .conftest import REPO, repl

DATA = REPO / "data"
FIND_NUMBER = repl(
    "import re\n"
    "m = re.search(r'magic numbers? for \\S+ is: (\\d+)', context)\n"
    "FINAL(m.group(1) if m else 'none')"
)


def _task(**kw: Any) -> Task:
    base: dict[str, Any] = {
        "task_set": "t",
        "length": 1,
        "index": 0,
        "seed": 0,
        "query": "q",
        "context": "x",
        "gold": "g",
        "scorer": "contains",
    }
    return Task(**{**base, **kw})


def _models(root: ScriptedModel, sub: ScriptedModel | None = None) -> BenchModels:
    return BenchModels(
        root=root,
        sub=sub or root,
        limits=Limits(max_iterations=3, timeout_s=30),
        sandbox=sandbox_factory("none"),
    )


# Generators ---------------------------------------------------------------------------------


def test_lengths_parse_like_ruler() -> None:
    assert parse_length("8k") == 8192
    assert parse_length("1M") == 1_048_576
    assert parse_length("5000") == 5000
    assert format_length(131072) == "128K"
    with pytest.raises(UsageError):
        parse_length("lots")


def test_sniah_is_deterministic_and_plants_one_needle_per_depth() -> None:
    tasks = generate_sniah(16384, 4, 7, DATA)
    again = generate_sniah(16384, 4, 7, DATA)
    assert [t.context for t in tasks] == [t.context for t in again]
    for task in tasks:
        assert task.context.count(f"is: {task.gold}.") == 1
        assert task.meta["key"] in task.query
        assert abs(task.context_chars - 16384 * 4.1) < 200
    depths = [t.meta["needle_char"] / t.context_chars for t in tasks]
    assert depths == sorted(depths)
    assert depths[0] < 0.2 < 0.8 < depths[-1]
    assert len({t.seed for t in tasks}) == 4


def test_book_needle_phrasings_vary_and_keep_the_secret_once() -> None:
    tasks = generate_book_needle(0, 4, 1, DATA)
    assert len({t.query for t in tasks}) == 4
    for task in tasks:
        assert isinstance(task.context, str)
        assert task.context.count(task.gold) == 1
        assert task.meta["tokens_est"] > 700_000


def test_oolong_window_hides_labels_and_matches_oolong_sizes() -> None:
    window = build_window(DATA, 32768, 0)
    assert len(window.lines) == 787
    assert "Label:" not in window.text
    assert window.text.count(" || Instance: ") == 787
    tasks = generate_oolong(32768, 12, 0, DATA)
    assert {t.meta["answer_type"] for t in tasks} >= {"NUMERIC", "COMPARISON"}
    assert all(t.context == window.text for t in tasks)


def test_pairs_golds_follow_the_documented_reading() -> None:
    import datetime as dt

    day = dt.date(2023, 6, 1)
    lines = (
        Line(day, 1, "q", "human being"),
        Line(day, 2, "q", "location"),
        Line(dt.date(2022, 1, 1), 3, "q", "human being"),
        Line(day, 4, "q", "entity"),
    )
    queries = {q["task"]: q["spec"] for q in pair_queries(DATA)}
    # task 4: human being or location; every human-being instance after Jan 6, 2023
    assert gold_pairs(lines, queries[4]) == [(1, 2)]
    assert len(pair_queries(DATA)) == 20


def test_logs_golds_come_from_the_structured_files() -> None:
    tasks = generate_logs(0, 8, 0, DATA)
    assert len({t.meta["kind"] for t in tasks}) == 8
    by_kind = {t.meta["kind"]: t for t in tasks}
    assert by_kind["ssh_top_source"].gold in by_kind["ssh_top_source"].context
    assert by_kind["apache_errors"].gold == by_kind["apache_errors"].context.count("[error]")
    assert by_kind["apache_top_error"].scorer == "choice"


def test_codeqa_asks_about_a_whole_package_tree() -> None:
    (task,) = generate_codeqa(0, 1, 0, DATA)
    assert isinstance(task.context, Path)
    assert task.context.name == task.meta["package"]
    documents = task.plain_context()
    python_files = sorted(
        p.relative_to(task.context).as_posix() for p in task.context.rglob("*.py")
    )
    assert [d.split("\n", 1)[0] for d in documents if d.split("\n", 1)[0].endswith(".py")] == [
        f"# file: {name}" for name in python_files
    ]
    assert task.context_chars == sum(len(d) for d in documents)
    assert task.gold in "ABCD"
    assert task.meta["answer"] in task.query


async def test_codeqa_context_is_a_directory_in_the_repl() -> None:
    (task,) = generate_codeqa(0, 1, 0, DATA)
    code = repl("FINAL(str(len(list_files('*.py'))) + ' ' + str(len(context)))")
    result = await RlmMethod().run(task, _models(ScriptedModel([code])), NullRecorder())
    python_files = len(list(task.context.rglob("*.py")))  # type: ignore[union-attr]
    assert result.answer == f"{python_files} {len(task.plain_context())}"


# Scorers ------------------------------------------------------------------------------------


def test_scorers() -> None:
    assert score(_task(gold="1234567"), "The number is 1234567.") == 1.0
    assert score(_task(gold="1234567"), None) == 0.0
    assert score_oolong("Answer: 12", 10, "NUMERIC") == pytest.approx(0.75**2)
    assert score_oolong("Label: numeric value", "numeric value", "LABEL") == 1.0
    comparison = "Answer: entity is more common than location"
    assert score_oolong(comparison, "more common than", "COMPARISON") == 1.0
    assert score_oolong("more common before 2023", "less common", "COMPARISON") == 0.0
    assert parse_pairs("(3, 1)\n(1, 3)\n(2,4)") == {(1, 3), (2, 4)}
    assert pairs_f1({(1, 2)}, {(1, 2), (3, 4)}) == pytest.approx(2 / 3)
    assert parse_choice("The answer is C.") == "C"
    assert parse_choice("B) futures/process.py") == "B"
    options = "Where?\nA) futures/process.py\nB) futures/thread.py\nC) 10\nD) 8\nA letter."
    assert parse_choice("`futures/process.py`", options) == "A"
    assert parse_choice("10", options) == "C"
    assert parse_choice("process.py", options) is None
    assert parse_choice("futures/process.py") is None
    assert score(_task(scorer="number", gold=0.28634), "p90 = 0.28634 s") == 1.0
    assert score(_task(scorer="exact", gold="1.2.3.4"), "IP 1.2.3.4") == 1.0


# Methods ------------------------------------------------------------------------------------


async def test_rlm_method_reports_tokens_and_trace_id() -> None:
    task = generate_sniah(8192, 1, 0, DATA)[0]
    result = await RlmMethod().run(task, _models(ScriptedModel([FIND_NUMBER])), NullRecorder())
    assert result.answer == task.gold
    assert result.status == "completed"
    assert result.root.calls == 1
    assert result.trace_id


async def test_rlm_no_sub_turns_sub_calls_off() -> None:
    code = repl(
        "try:\n    llm_query('hi', model='root')\nexcept Exception as e:\n    FINAL(str(e))"
    )
    root, sub = ScriptedModel([code]), ScriptedModel(["never used"])
    result = await RlmMethod(sub_calls=False).run(_task(), _models(root, sub), NullRecorder())
    assert "sub-calls are off" in (result.answer or "")
    assert result.sub_calls == 0
    assert sub.remaining == 1
    assert "llm_query" not in root.calls[0][0].content


async def test_rlm_dsl_answers_with_commands_and_runs_no_code() -> None:
    task = generate_sniah(8192, 1, 0, DATA)[0]
    method = build_method("rlm-dsl")
    assert method.name == "rlm-dsl"
    root = ScriptedModel([json.dumps({"cmd": "final", "answer": task.gold})])
    result = await method.run(task, _models(root), NullRecorder())
    assert (result.answer, result.status) == (task.gold, "completed")
    assert '{"cmd": "grep"' in root.calls[0][0].content  # the command language's prompt


async def test_direct_truncates_to_the_window_and_flags_it() -> None:
    root = ScriptedModel(["no idea"], profile=ModelProfile(context_window=2_000))
    task = _task(context="word " * 20_000)
    result = await Direct().run(task, _models(root), NullRecorder())
    assert result.truncated
    assert len(root.calls[0][0].content) < 6_000
    assert result.notes["total_chars"] == 100_000


async def test_summary_reads_every_chunk_with_the_sub_model() -> None:
    small = ModelProfile(context_window=4_000)
    sub = ScriptedModel(["notes 1", "notes 2", "notes 3"], profile=small)
    root = ScriptedModel(["42"], profile=small)
    task = _task(context="line of text\n" * 1_200)
    result = await Summary(chunk_tokens=2_000).run(task, _models(root, sub), NullRecorder())
    assert result.answer == "42"
    assert result.sub_calls == 3
    assert "notes 3" in root.calls[0][0].content


async def test_retrieval_puts_the_bm25_hit_in_the_prompt() -> None:
    root = ScriptedModel(["ok"])
    context = "\n".join(f"line {i} about weather and rain" for i in range(2_000))
    context += "\nthe zebra password is ORCHID\n"
    task = _task(context=context, query="What is the zebra password?")
    result = await Retrieval(chunk_tokens=100, top_k=2).run(task, _models(root), NullRecorder())
    assert result.status == "completed"
    assert "ORCHID" in root.calls[0][0].content
    assert bm25_rank(["a b", "zebra c"], "zebra", 1) == [1]


def test_chunking_keeps_lines_and_file_heads() -> None:
    assert "".join(chunk_context("a\n" * 100, 20)) == "a\n" * 100
    docs = chunk_context(["# file: x.py\n" + "y = 1\n" * 100], 100)
    assert all(d.startswith("# file: x.py") for d in docs)
    assert truncate_head("abc\ndef\nghi", 9) == ("abc\ndef", True)


# Runner, report, CLI ------------------------------------------------------------------------


def _plan(methods: Sequence[Any]) -> BenchPlan:
    return BenchPlan(
        task_sets=["sniah"], methods=list(methods), lengths=[8192], n=2, seed=0, data=DATA
    )


async def test_runner_writes_rows_and_resumes(tmp_path: Path) -> None:
    root = ScriptedModel(rules=[], responses=[FIND_NUMBER, FIND_NUMBER])
    runner = Runner(_plan([RlmMethod()]), _models(root), tmp_path)
    rows = await runner.run()
    assert [r["score"] for r in rows] == [1.0, 1.0]
    row = rows[0]
    for key in ("tokens", "cost_usd", "wall_s", "iterations", "sub_calls", "status", "trace_id"):
        assert key in row
    assert (tmp_path / row["trace"]).exists()
    assert await runner.run() == []  # finished pairs are not run again
    assert len(read_rows(tmp_path)) == 2
    md = render_markdown(read_rows(tmp_path), {})
    assert "| sniah | 8K | 100.0 (n=2) |" in md
    html = render_html(read_rows(tmp_path), {})
    assert "<svg" in html
    assert "<script" not in html
    assert "http" not in html.replace("http://www.w3.org/2000/svg", "")
    for svg in charts(cells(read_rows(tmp_path))):
        ElementTree.fromstring(svg)  # each chart is well-formed XML


def test_cli_bench_run_and_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    script = tmp_path / "model.json"
    script.write_text(json.dumps({"rules": [{"contains": "", "reply": FIND_NUMBER}]}))
    out = tmp_path / "out"
    args = ["bench", "run", "sniah", "--methods", "rlm,direct", "--model", f"scripted:{script}"]
    args += ["--lengths", "8k", "--n", "2", "--out", str(out), "--sandbox", "none", "-q"]
    assert main(args) == 0
    rows = read_rows(out)
    assert sorted((r["method"], r["score"]) for r in rows) == [
        ("direct", 0.0),
        ("direct", 0.0),
        ("rlm", 1.0),
        ("rlm", 1.0),
    ]
    assert main(["bench", "report", str(out)]) == 0
    assert (out / "report.html").read_text().startswith("<!doctype html>")
    assert main(["bench", "list"]) == 0
    assert main(["bench", "run", "nope", "--out", str(out)]) == 2


def test_cli_only_runs_the_given_task_indices_with_their_plan_ids(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    script = tmp_path / "model.json"
    script.write_text(json.dumps({"rules": [{"contains": "", "reply": FIND_NUMBER}]}))
    out = tmp_path / "out"
    args = ["bench", "run", "sniah", "--methods", "rlm", "--model", f"scripted:{script}"]
    args += ["--lengths", "8k", "--n", "4", "--out", str(out), "--sandbox", "none", "-q"]
    assert main([*args, "--only", "1,3"]) == 0
    rows = read_rows(out)
    assert sorted(r["task_id"] for r in rows) == ["sniah/8192/1", "sniah/8192/3"]
    full = {t.task_id: t.seed for t in generate_sniah(8192, 4, 0, DATA)}
    assert all(r["seed"] == full[r["task_id"]] for r in rows)
    assert main(args) == 0  # the rest of the plan: tasks 0 and 2
    assert len(read_rows(out)) == 4
    assert main([*args, "--only", "4"]) == 2
    assert "--only: every index must be between 0 and 3" in capsys.readouterr().err


class _Broken:
    name = "broken"

    async def run(self, task: Task, models: BenchModels, recorder: Any) -> Any:
        raise ValueError("bug in a method")


async def test_a_crashing_method_becomes_an_error_row_and_is_retried(tmp_path: Path) -> None:
    runner = Runner(_plan([_Broken()]), _models(ScriptedModel([])), tmp_path)
    rows = await runner.run()
    assert [r["status"] for r in rows] == ["error", "error"]
    assert "bug in a method" in rows[0]["error"]
    assert len(await runner.run()) == 2  # errors are run again on resume


def test_book_needle_phrasings_are_many_and_mostly_worded_apart_from_their_questions() -> None:
    from rlmx.bench.book_needle import PHRASINGS, shared_phrases

    assert len(PHRASINGS) >= 8
    apart = [s for s, q in PHRASINGS if not shared_phrases(s, q)]
    assert len(apart) >= len(PHRASINGS) / 2
    assert shared_phrases("the code of the door is {secret}", "what is the code of the door") == {
        ("the", "code", "of"),
        ("code", "of", "the"),
        ("of", "the", "door"),
    }
