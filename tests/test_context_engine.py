"""Contexts through the engine and the CLI: what the root prompt says about each kind, runs over
lazy texts and directories, nested runs over the session's context, and the new options."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rlmx import RLM, Assists, Limits
from rlmx.context import ContextOptions, describe_context, helpers
from rlmx.context.sources import from_directory, from_file
from rlmx.engine.prompts import prompt_style_for
from rlmx.providers.base import ModelProfile
from rlmx.providers.scripted import ScriptedModel
from rlmx.sandbox.inprocess import InProcessRepl
from rlmx.trajectory.events import RunStarted

from .conftest import ListRecorder, repl, scripted
from .test_cli import script

LOG = "".join(f"12:00:{i % 60:02d} INFO request {i} ok\n" for i in range(2000))
SECRET_LOG = LOG[:30_000] + "12:30:00 ERROR vault code is ZETA-42\n" + LOG[30_000:]


@pytest.fixture
def big_log(tmp_path: Path) -> Path:
    path = tmp_path / "app.log"
    path.write_text(SECRET_LOG)
    return path


def run(root: ScriptedModel, context: object, sub: ScriptedModel | None = None, **kw: object):  # type: ignore[no-untyped-def]
    recorder = ListRecorder()
    rlm = RLM(  # type: ignore[arg-type]
        model=root,
        sub_model=sub,
        limits=Limits(**kw),
        recorder=recorder,
        sandbox=InProcessRepl,
        assists=Assists(route=False),  # one root call less for small profiles
    )
    return rlm.run("What is the vault code?", context), recorder  # type: ignore[arg-type]


def test_a_lazy_text_is_searched_with_the_helpers(big_log: Path) -> None:
    context = from_file(big_log, ContextOptions(max_str_bytes=10_000))
    root = scripted(
        repl("print(type(context).__name__)\nprint(grep(r'vault code is \\S+', around=0))"),
        repl("FINAL(grep(r'code is (\\S+)', around=0)[0].text.split()[-1])"),
    )
    result, rec = run(root, context)
    assert result.status == "completed", result.error
    assert result.answer == "ZETA-42"
    assert "LazyText\n1 hit:\n[line " in root.calls[1][-1].content
    started = rec.of(RunStarted)[0].context  # type: ignore[attr-defined]
    assert (started["kind"], started["form"], started["chars"]) == ("text", "lazy", len(SECRET_LOG))
    system = root.calls[0][0].content
    assert "a LazyText of" in system
    assert "and ends:" in system  # a long context shows its tail too
    for line in helpers.describe("text"):
        assert line in system
    assert "ZETA-42" not in system


def test_a_directory_run_lists_files_and_uses_file_helpers(tmp_path: Path) -> None:
    (tmp_path / "repo" / "src").mkdir(parents=True)
    (tmp_path / "repo" / "src" / "auth.py").write_text("def login():\n    return 'ok'\n")
    (tmp_path / "repo" / "README.md").write_text("# App\n")
    root = scripted(repl("FINAL(search_files(r'def (\\w+)')[0].path)"))
    result, _ = run(root, from_directory(tmp_path / "repo"))
    assert result.answer == "src/auth.py"
    system = root.calls[0][0].content
    assert "a directory of 2 text files" in system
    assert "Its files include:" in system
    assert "src/auth.py (" in system
    assert "search_files(pattern, glob=None)" in system


@pytest.mark.parametrize("kind", ["str", "lazy", "documents", "directory"])
def test_the_small_prompt_stays_short_for_every_kind(kind: str, tmp_path: Path) -> None:
    path = tmp_path / "t.txt"
    path.write_text(LOG)
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "a.py").write_text("x = 1\n")
    handle = {
        "str": describe_context(LOG),
        "lazy": from_file(path, ContextOptions(max_str_bytes=10)).describe(),
        "documents": describe_context([LOG, LOG]),
        "directory": from_directory(tmp_path / "d").describe(),
    }[kind]
    system = prompt_style_for(small=True, max_output_chars=20_000).system(handle, sub_chars=9_000)
    assert len(system) < 2_200  # about 550 tokens, the directory's path included
    assert "grep(pattern, around=200)" in system
    if kind == "str":
        assert "re.finditer" in system  # the worked example small models answer from
    elif kind == "directory":
        assert 'for line in search_files(r"def open_door")' in system
        assert "search_files(pattern)" in system
    else:
        assert "for hit in grep(" in system
        assert "re.finditer" not in system


def test_rlm_query_over_the_session_context_keeps_it_lazy(big_log: Path) -> None:
    context = from_file(big_log, ContextOptions(max_str_bytes=10_000))
    root = scripted(
        repl("r = rlm_query('find the code', context=context)\nFINAL(r)"),
        repl("FINAL(type(context).__name__ + ' ' + str(count('ZETA')))"),
    )
    result, rec = run(root, context)
    assert result.answer == "LazyText 1"
    nested = [e for e in rec.of(RunStarted) if e.depth == 1]
    assert nested[0].context["form"] == "lazy"  # type: ignore[attr-defined]


def test_rlm_query_at_the_depth_limit_refuses_a_context_too_large_to_inline(
    big_log: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("rlmx.engine.subcalls.MAX_INLINE_CHARS", 1_000)
    context = from_file(big_log, ContextOptions(max_str_bytes=10_000))
    root = scripted(
        repl("try:\n    rlm_query('q', context=context)\nexcept ValueError as e:\n    print(e)"),
        repl("FINAL('done')"),
    )
    result, _ = run(root, context, max_depth=0)
    assert result.answer == "done"
    assert "too large to send whole; pass a slice" in root.calls[1][-1].content


def test_cli_directory_with_include_and_exclude(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = tmp_path / "repo"
    (repo / "src").mkdir(parents=True)
    (repo / "src" / "a.py").write_text("A = 1\n")
    (repo / "src" / "b_test.py").write_text("B = 2\n")
    (repo / "notes.md").write_text("notes\n")
    model = script(tmp_path, repl("FINAL(','.join(list_files()))"))
    args = ["run", "q", "-c", str(repo), "--include", "*.py", "--exclude", "*_test.py"]
    from rlmx.cli.main import main

    assert main([*args, "-m", model, "--sandbox", "none"]) == 0
    out, err = capsys.readouterr()
    assert out == "src/a.py\n"
    assert "excluded by --include/--exclude" in err
    assert "directory of 1 files" in err


def test_cli_jsonl_documents(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "reviews.jsonl"
    data.write_text("\n".join(json.dumps({"body": f"review {i}"}) for i in range(5)))
    model = script(tmp_path, repl("FINAL(f'{len(context)} {context[3]}')"))
    from rlmx.cli.main import main

    code = main(["run", "q", "-c", str(data), "--jsonl-field", "body", "-m", model, "-q"])
    assert code == 0
    assert capsys.readouterr().out == "5 review 3\n"


def test_small_profile_reaches_the_lazy_prompt(big_log: Path) -> None:
    small = ScriptedModel(
        [repl("FINAL(grep('ZETA', around=0)[0].line)")],
        profile=ModelProfile(context_window=32_768, small=True),
    )
    result, _ = run(small, from_file(big_log, ContextOptions(max_str_bytes=10_000)))
    assert result.answer == str(SECRET_LOG[: SECRET_LOG.index("ZETA")].count("\n") + 1)
    assert "for hit in grep(" in small.calls[0][0].content


def test_a_path_is_opened_as_a_file_or_a_directory(tmp_path: Path) -> None:
    book = tmp_path / "book.txt"
    book.write_text("The vault code is ZETA-42.\n")
    result, rec = run(scripted(repl("FINAL(type(context).__name__)")), book)
    assert result.answer == "str"
    assert rec.of(RunStarted)[0].context["name"] == str(book)  # type: ignore[attr-defined]
    (tmp_path / "repo").mkdir()
    (tmp_path / "repo" / "a.py").write_text("A = 1\n")
    result, _ = run(scripted(repl("FINAL(list_files()[0])")), tmp_path / "repo")
    assert result.answer == "a.py"


def test_a_helper_name_reused_as_a_variable_is_the_models_own() -> None:
    root = scripted(repl("lines = 'ZETA-42'\nSHOW_VARS()"), "FINAL_VAR(lines)")
    result, _ = run(root, "some text")
    assert result.answer == "ZETA-42"
    assert "lines: str" in root.calls[1][-1].content
    root = scripted(repl("SHOW_VARS()"), repl("FINAL('x')"))
    run(root, "some text")
    assert "No variables yet." in root.calls[1][-1].content  # the helpers are not listed


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        ("empty_dir", "has no text files"),
        ("loop", "symlink loop"),
        ("dir_and_file", "must be the only --context"),
    ],
)
def test_cli_bad_contexts_exit_2_with_one_line(
    setup: str, message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from rlmx.cli.main import main

    (tmp_path / "empty").mkdir()
    (tmp_path / "loop").symlink_to(tmp_path / "loop")
    (tmp_path / "f.txt").write_text("x")
    paths = {
        "empty_dir": [str(tmp_path / "empty")],
        "loop": [str(tmp_path / "loop")],
        "dir_and_file": [str(tmp_path / "f.txt"), str(tmp_path / "empty")],
    }[setup]
    args = [a for p in paths for a in ("-c", p)]
    assert main(["run", "q", *args, "-m", "scripted:x.json"]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert message in err
    assert err.strip().startswith("error:")
    assert "Traceback" not in err
