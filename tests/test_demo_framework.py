"""``rlmx demo``: the registry, the runner and the CLI, on the logs demo with a scripted root."""

from __future__ import annotations

import argparse
import csv
import io
import json
from collections import Counter
from pathlib import Path

import pytest
from rich.console import Console

from rlmx.cli.main import main
from rlmx.demos import registry
from rlmx.demos.base import Check, DemoQuestion, Prepared
from rlmx.demos.registry import DEMOS, load_demo
from rlmx.demos.runner import DemoModels, run_demo
from rlmx.demos.scoped import ScopedQuestion, context_of
from rlmx.errors import UsageError
from rlmx.sandbox.inprocess import InProcessRepl
from rlmx.trajectory.store import RunStore

from .conftest import repl, scripted

REPO = Path(__file__).resolve().parent.parent
APACHE_CSV = REPO / "data" / "loghub" / "Apache" / "Apache_2k.log_structured.csv"
IPS = "appear anywhere in this Apache log?"
ERRORS = "[error] lines of this Apache log"


def apache_gold() -> tuple[int, str]:
    """The Apache answers, read here from the structured CSV: client IPs, the top error
    with its count (the check holds a ranking to the count of its first kind)."""
    with APACHE_CSV.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    ips = {
        r["Content"].split("[client ", 1)[1].split("]")[0]
        for r in rows
        if "[client " in r["Content"]
    }
    errors = Counter(r["EventTemplate"] for r in rows if r["Level"] == "error")
    top, count = errors.most_common(1)[0]
    return len(ips), f"{top.replace('<*>', '6')} ({count})"


def script(tmp_path: Path, *, ips: str, errors: str) -> str:
    path = tmp_path / "root.json"
    rules = [
        {"contains": IPS, "reply": repl(f"FINAL({ips!r})")},
        {"contains": ERRORS, "reply": json.dumps({"cmd": "final", "answer": errors})},
    ]
    path.write_text(json.dumps({"responses": [], "rules": rules}))
    return f"scripted:{path}"


def run_cli(tmp_path: Path, model: str, *extra: str) -> tuple[int, str]:
    err = io.StringIO()
    code = main(
        [
            "demo",
            "run",
            "logs",
            "--model",
            model,
            "--only",
            "apache-ips,apache-errors-dsl",
            "--workdir",
            str(tmp_path / "work"),
            "--db",
            str(tmp_path / "runs.db"),
            "--sandbox",
            "none",
            *extra,
        ],
        console=Console(file=err, width=200),
    )
    return code, err.getvalue()


# The registry ---------------------------------------------------------------------------------


def test_the_registry_names_the_four_demos() -> None:
    assert DEMOS == ("logs", "mystery", "family-trees", "audit")
    demo = load_demo("logs")
    assert demo.name == "logs"
    assert demo.summary
    assert "Loghub" in demo.source


def test_an_unknown_demo_is_a_one_line_usage_error() -> None:
    with pytest.raises(UsageError) as caught:
        load_demo("weather")
    message = str(caught.value)
    assert "\n" not in message
    assert "'weather'" in message
    assert all(name in message for name in DEMOS)


def test_a_demo_not_yet_shipped_is_a_usage_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(registry, "DEMOS", (*DEMOS, "not-written"))
    with pytest.raises(UsageError, match="not installed in this version"):
        load_demo("not-written")


def test_a_scoped_question_carries_its_own_context(tmp_path: Path) -> None:
    prepared = Prepared(context=tmp_path, questions=())
    assert context_of(prepared, DemoQuestion("q", "?")) == tmp_path
    assert context_of(prepared, ScopedQuestion("q", "?", context="text")) == "text"


# The runner -------------------------------------------------------------------------------------


class _TwoQuestions:
    """A demo of two questions over a text, checked by equality: the runner's contract."""

    name = "tiny"
    summary = "two questions"
    source = "made up in the test"

    def prepare(self, workdir: Path, *, seed: int) -> Prepared:
        (workdir / "data.txt").write_text("alpha 1\nbeta 2\n")
        questions = (
            DemoQuestion("first", "Which word comes first?"),
            DemoQuestion("n", "How many?"),
        )
        return Prepared(workdir / "data.txt", questions, {"first": "alpha", "n": "2"})

    def check(self, prepared: Prepared, question: DemoQuestion, answer: str | None) -> Check:
        expected = prepared.expected[question.name]
        return Check(question.name, answer == expected, f"expected {expected}, got {answer}")


def test_the_runner_asks_checks_and_counts(tmp_path: Path) -> None:
    root = scripted(
        rules={"comes first": repl("FINAL(context.split()[0])"), "How many": repl("FINAL('3')")}
    )
    report = run_demo(
        _TwoQuestions(),
        DemoModels(root=root, sub=root, sandbox=InProcessRepl),
        workdir=tmp_path / "w",
    )
    assert [(r.question.name, r.answer, r.check.passed) for r in report.results] == [
        ("first", "alpha", True),
        ("n", "3", False),
    ]
    assert report.passed == 1
    assert not report.all_passed
    first = report.results[0]
    assert first.expected == "alpha"
    assert first.root_tokens > 0
    assert first.run_id
    assert json.loads(json.dumps(report.to_dict()))["total"] == 2


def test_the_cache_replays_a_second_run_when_asked(tmp_path: Path) -> None:
    root = scripted(
        rules={"comes first": repl("FINAL(context.split()[0])"), "How many": repl("FINAL('2')")}
    )
    for cache, calls in ((True, 0), (False, 2)):
        models = DemoModels(root=root, sub=root, sandbox=InProcessRepl, cache=cache)
        run_demo(_TwoQuestions(), models, workdir=tmp_path / "w")  # fills the cache
        before = len(root.calls)
        report = run_demo(_TwoQuestions(), models, workdir=tmp_path / "w")
        assert len(root.calls) - before == calls
        assert report.all_passed


def test_only_picks_questions_and_refuses_unknown_ones(tmp_path: Path) -> None:
    root = scripted(rules={"How many": repl("FINAL('2')")})
    models = DemoModels(root=root, sub=root, sandbox=InProcessRepl)
    report = run_demo(_TwoQuestions(), models, workdir=tmp_path / "w", only=("n",))
    assert [r.question.name for r in report.results] == ["n"]
    assert report.all_passed
    with pytest.raises(UsageError, match="first, n"):
        run_demo(_TwoQuestions(), models, workdir=tmp_path / "w", only=("nope",))


# The CLI ----------------------------------------------------------------------------------------


def test_demo_list(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "list"]) == 0
    out = capsys.readouterr().out
    logs = next(line for line in out.splitlines() if line.startswith("logs "))
    assert "code,dsl" in logs
    assert "Loghub" in logs
    assert all(name in out for name in DEMOS)


def test_demo_run_passes_and_records(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ips, top = apache_gold()
    code, err = run_cli(tmp_path, script(tmp_path, ips=f"There are {ips} IPs", errors=top))
    out = capsys.readouterr().out
    assert code == 0, out + err
    assert "apache-ips" in out
    assert "apache-errors-dsl" in out
    assert out.count("PASS") == 2
    assert "FAIL" not in out
    assert out.rstrip().endswith("2 of 2 passed")
    assert "▶" in err
    assert "(dsl)" in err
    store = RunStore(tmp_path / "runs.db")
    try:
        runs = store.list_runs()
    finally:
        store.close()
    assert len(runs) == 2
    assert {r.source for r in runs} == {"demo"}


def test_demo_run_fails_on_a_wrong_answer(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ips, _ = apache_gold()
    code, _ = run_cli(
        tmp_path, script(tmp_path, ips=str(ips + 1), errors="Directory index forbidden")
    )
    out = capsys.readouterr().out
    assert code == 1
    assert out.count("FAIL") == 2
    assert "0 of 2 passed" in out
    assert f"expected {ips}, got {ips + 1}" in out


def test_demo_run_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ips, top = apache_gold()
    code, _ = run_cli(
        tmp_path,
        script(tmp_path, ips=str(ips), errors=top),
        "--json",
        "--quiet",
        "--no-db",
        "--no-cache",
    )
    data = json.loads(capsys.readouterr().out)
    assert code == 0
    assert data["passed"] == data["total"] == 2
    by_name = {r["question"]: r for r in data["results"]}
    assert by_name["apache-ips"]["expected"] == ips
    assert by_name["apache-ips"]["passed"]
    assert by_name["apache-errors-dsl"]["level"] == "dsl"
    assert set(by_name["apache-ips"]["tokens"]) == {"root", "sub"}


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["demo", "run", "weather"], "no demo called 'weather'"),
        (
            ["demo", "run", "logs", "--only", "nope", "--model", "{model}", "--no-db"],
            "no question 'nope'",
        ),
        (["demo"], "required"),
        (["demo", "run", "logs", "--open", "--no-db", "--model", "{model}"], "--open"),
    ],
)
def test_bad_input_is_one_line(tmp_path: Path, argv: list[str], needle: str) -> None:
    err = io.StringIO()
    model = script(tmp_path, ips="1", errors="x")
    argv = [a.replace("{model}", model) for a in argv]
    argv = [*argv, "--workdir", str(tmp_path / "w")] if argv[:2] == ["demo", "run"] else argv
    code = main(argv, console=Console(file=err, width=300))
    text = err.getvalue()
    assert code == 2, text
    assert needle in text
    assert "Traceback" not in text
    assert len(text.strip().splitlines()) == 1


def test_the_viewer_of_open_is_configured_like_rlmx_serve(tmp_path: Path) -> None:
    """--open serves with rlmx serve's own defaults (its session options included)."""
    from rlmx.cli.demo import viewer_config

    args = argparse.Namespace(db=str(tmp_path / "runs.db"), sandbox="none")
    server_args, config = viewer_config(args)
    assert server_args.port == 0
    assert config.db_path == tmp_path / "runs.db"
    assert config.sandbox == "none"
    assert config.max_active_runs == 1
    assert config.session_idle_s > 0
