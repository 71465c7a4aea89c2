"""The audit demo: its findings on a hand-made package (listed here by hand), the reading of
answers, the scoring, the shipped urllib's findings, and a scripted run end to end."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from rlmx import RLM
from rlmx.config import Limits
from rlmx.context.sources import from_directory
from rlmx.demos.audit import DEMO, QUESTIONS, check_answer
from rlmx.demos.audit_answers import read_edges, read_functions, score
from rlmx.demos.audit_truth import compute_truth, load_package
from rlmx.demos.runner import DemoModels, run_demo
from rlmx.dsl.commands import Command, CommandError, check
from rlmx.providers.scripted import Rule, ScriptedModel
from rlmx.sandbox.inprocess import InProcessRepl

from .conftest import REPO, repl, scripted, small_scripted
from .test_dsl import machine_without_sub_calls

TINY = {
    "__init__.py": '''
        """Pkg."""
        from .core import run
        ''',
    "core.py": '''
        import json
        import socket
        from pkg import util
        from . import helpers


        def run(path):
            data = open(path).read()
            return data


        def load(path):
            """Documented."""
            with open(path) as f:
                return json.load(f)


        def connect(host):
            """Documented."""
            sock = socket.create_connection((host, 80))
            sock.sendall(b"x")


        def fetch(path):
            """Documented."""
            f = open(path, "rb")
            try:
                return f.read()
            finally:
                f.close()


        class Client:
            def __init__(self, host):
                self.sock = socket.socket()

            def send(self, data):
                try:
                    self.sock.sendall(data)
                except:
                    pass

            def reader(self, path):
                """Documented."""

                def inner():
                    return open(path)

                fp = open(path)
                return Wrapper(fp)

            def _private(self):
                pass


        class _Hidden:
            def visible(self):
                pass


        try:
            import zlib
        except:
            zlib = None
        ''',
    "helpers.py": """
        def helper():
            import pkg.util
            return pkg.util
        """,
    "util.py": '''
        """Utils."""


        def tool():
            """Doc."""
            return 1
        ''',
    "_private.py": """
        from .sub.deep import thing


        def exposed():
            pass
        """,
    "sub/__init__.py": "",
    "sub/deep.py": '''
        from .. import util
        from ..core import run


        def thing():
            """Doc."""
            f = open("x")
            print(f.readline())
        ''',
}


@pytest.fixture
def tiny(tmp_path: Path) -> Path:
    root = tmp_path / "pkg"
    for name, text in TINY.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(textwrap.dedent(text).lstrip())
    return root


def test_findings_of_a_hand_made_package(tiny: Path) -> None:
    truth = compute_truth(tiny)
    # Leaks: a file read and dropped, a socket never closed, a file read in a subpackage.
    # Not leaks: with, close in finally, stored on self, returned, wrapped and returned.
    assert truth.unclosed == {("core.py", "run"), ("core.py", "connect"), ("sub/deep.py", "thing")}
    assert truth.bare_except == {("core.py", "Client.send"), ("core.py", "<module>")}
    # Not listed: dunders, _private, methods of _Hidden, nested inner, the _private module.
    assert truth.undocumented == {
        ("core.py", "run"),
        ("core.py", "Client.send"),
        ("helpers.py", "helper"),
    }
    assert truth.imports == {
        ("__init__", "core"),
        ("core", "util"),
        ("core", "helpers"),
        ("helpers", "util"),
        ("_private", "sub.deep"),
        ("sub.deep", "util"),
        ("sub.deep", "core"),
    }


def test_the_shipped_urllib_findings() -> None:
    truth = compute_truth(REPO / "data" / "audit" / "urllib")
    # RobotFileParser.read reads the response of urlopen and never closes it.
    assert truth.unclosed == {("robotparser.py", "RobotFileParser.read")}
    assert truth.bare_except == {
        ("request.py", "AbstractHTTPHandler.do_open"),
        ("request.py", "ftpwrapper.__init__"),
    }
    assert truth.imports == {
        ("error", "response"),
        ("request", "error"),
        ("request", "parse"),
        ("request", "response"),
        ("robotparser", "parse"),
        ("robotparser", "request"),
    }
    assert len(truth.undocumented) == 102
    assert ("parse.py", "urlparse") not in truth.undocumented  # it has a docstring
    assert ("request.py", "HTTPHandler.http_open") in truth.undocumented


def test_functions_are_read_by_name_line_and_json(tiny: Path) -> None:
    package = load_package(tiny)
    prefer = frozenset({("core.py", "Client.send")})
    answer = """Found these:
    - `core.py:run`
    2. pkg/core.py::send()
    core.py:28
    pkg.sub.deep:thing
    missing.py:nowhere
    Note: nothing else
    """
    # send resolves to the method in the findings; line 28 is inside fetch.
    assert read_functions(answer, package, prefer) == {
        "core.py:run",
        "core.py:Client.send",
        "core.py:fetch",
        "sub/deep.py:thing",
        "missing.py:nowhere",
    }
    as_json = '[{"path": "core.py", "function": "run"}, {"file": "util.py", "line": 4}]'
    assert read_functions(as_json, package, prefer) == {"core.py:run", "util.py:tool"}
    assert read_functions('["core.py:run", "helpers.py:helper"]', package, prefer) == {
        "core.py:run",
        "helpers.py:helper",
    }
    assert read_functions("{'core.py': ['run', 'Client.send']}", package, prefer) == {
        "core.py:run",
        "core.py:Client.send",
    }
    assert read_functions("I could not find any.", package, prefer) == set()
    # A sentence before a list on one line: "are" is not a file, "core.py" not a function.
    in_a_sentence = "The functions with one are: core.py:run, util.py:tool"
    assert read_functions(in_a_sentence, package, prefer) == {"core.py:run", "util.py:tool"}


def test_imports_are_read_in_several_forms(tiny: Path) -> None:
    package = load_package(tiny)
    text = """core -> util, helpers
    pkg/helpers.py imports pkg.util
    sub.deep: util and core, json
    pkg -> core
    socket -> core
    """
    assert read_edges(text, package) == {
        "core -> util",
        "core -> helpers",
        "helpers -> util",
        "sub.deep -> util",
        "sub.deep -> core",
        "__init__ -> core",
    }
    assert read_edges('{"core": ["util"], "_private": ["sub.deep"]}', package) == {
        "core -> util",
        "_private -> sub.deep",
    }
    assert read_edges('[["helpers", "util"], ["core", "core"]]', package) == {"helpers -> util"}


def test_scoring_by_precision_and_recall() -> None:
    result = score({"a", "b", "c", "d", "e"}, {"a", "b", "c", "d", "x"})
    assert (result.precision, result.recall) == (0.8, 0.8)
    assert result.passed()
    assert "missed e" in result.detail()
    assert "wrong x" in result.detail()
    weak = score({"a", "b", "c", "d", "e"}, {"a", "b", "c"})
    assert (weak.precision, weak.recall, weak.passed()) == (1.0, 0.6, False)
    assert not score({"a"}, set()).passed()
    assert score(set(), set()).passed()  # nothing to find, nothing named


def test_checks_of_right_wrong_and_missing_answers(tmp_path: Path) -> None:
    prepared = DEMO.prepare(tmp_path, seed=0)
    assert (tmp_path / "LICENSE.txt").is_file()
    assert (tmp_path / "SOURCE.txt").is_file()
    assert [q.name for q in prepared.questions] == [q.name for q in QUESTIONS]
    for question in prepared.questions:
        expected = prepared.expected[question.name]
        right = DEMO.check(prepared, question, "\n".join(expected))
        assert right.passed, (question.name, right.detail)
        assert right.score == 1.0
        half = DEMO.check(prepared, question, "\n".join(expected[: len(expected) // 2]))
        assert not half.passed
        assert not DEMO.check(prepared, question, None).passed
    # Lines as search_files prints them are read as the functions holding them.
    assert isinstance(prepared.context, Path)
    by_line = "request.py:1353\nrequest.py:2414"
    assert check_answer(prepared.context, "bare-except", by_line)[1].passed


def test_a_scripted_root_walks_the_files_and_its_answers_pass(tmp_path: Path) -> None:
    prepared = DEMO.prepare(tmp_path, seed=0)
    questions = {q.name: q for q in prepared.questions}
    # A search for the clause, printed as path:line, then the printed lines as the answer.
    bare = scripted(
        repl(
            'hits = search_files(r"except:")\n'
            'found = "\\n".join(f"{h.path}:{h.line}" for h in hits)\n'
            "print(found)"
        ),
        repl("FINAL(found)"),
    )
    # The syntax trees of every file, read with read_file.
    undocumented = scripted(
        repl(
            "import ast\n"
            "found = []\n"
            'for path in list_files("*.py"):\n'
            "    tree = ast.parse(read_file(path))\n"
            "    for node in tree.body:\n"
            "        defs = [(node, node.name)] if isinstance(node, ast.FunctionDef) else []\n"
            "        if isinstance(node, ast.ClassDef) and not node.name.startswith('_'):\n"
            "            defs = [(d, node.name + '.' + d.name) for d in node.body\n"
            "                    if isinstance(d, ast.FunctionDef)]\n"
            "        for d, name in defs:\n"
            "            if not d.name.startswith('_') and ast.get_docstring(d) is None:\n"
            "                found.append(f'{path}:{name}')\n"
            "print(len(found))"
        ),
        repl('FINAL("\\n".join(found))'),
    )
    for name, root in (("bare-except", bare), ("undocumented", undocumented)):
        question = questions[name]
        rlm = RLM(
            model=root,
            limits=Limits(max_iterations=question.max_iterations, max_depth=question.max_depth),
            sandbox=InProcessRepl,
        )
        result = rlm.run(question.query, prepared.context)
        assert result.status == "completed", result.answer
        check = DEMO.check(prepared, question, result.answer)
        assert check.passed, (name, check.detail)
    assert "request.py:1353" in bare.calls[1][-1].content  # the search's output was shown


def test_the_command_level_answers_from_the_index_of_functions_and_imports(
    tmp_path: Path,
) -> None:
    prepared = DEMO.prepare(tmp_path, seed=0)
    questions = {q.name: q for q in prepared.questions}
    assert {q.level for q in prepared.questions} == {"code", "dsl"}
    commands = {
        "bare-except-dsl": {"cmd": "functions", "contains": r"except\s*:"},
        "undocumented-dsl": {"cmd": "functions", "public": True, "documented": False},
        "imports-dsl": {"cmd": "imports", "local": True},
    }
    for name, command in commands.items():
        root = scripted(json.dumps(command), '{"cmd": "final", "name": "last"}')
        result = RLM(model=root, level="dsl", limits=Limits(max_iterations=4)).run(
            questions[name].query, prepared.context
        )
        check = DEMO.check(prepared, questions[name], result.answer)
        assert check.passed, (name, check.detail)


@pytest.mark.slow
@pytest.mark.xfail(
    reason="measured: 3 of 4 at the command level at most (bare excepts, undocumented "
    "functions, imports), the bare excepts alone as Python; the 1.5B root asks no sub-model "
    "about the functions that open files (docs/demos.md)",
    strict=False,
)
def test_embedded_models_answer_every_question(
    embedded_demo_models: DemoModels, tmp_path: Path
) -> None:
    """Acceptance: precision and recall of 0.8 on every question, each under 10 minutes."""
    report = run_demo(DEMO, embedded_demo_models, workdir=tmp_path / "audit")
    for r in report.results:
        assert r.wall_s < 600, (r.question.name, r.wall_s)
    assert report.all_passed, [(r.question.name, r.answer, r.check.detail) for r in report.results]


def test_functions_that_found_nothing_say_what_each_filter_keeps(tiny: Path) -> None:
    # The 1.5B root copied every filter of the command list; the note shows which one emptied it.
    root = small_scripted(
        "count",
        '{"cmd": "functions", "contains": "except:", "public": true, "documented": true}',
        '{"cmd": "functions", "contains": "except:"}',
        '{"cmd": "final", "name": "last"}',
    )
    result = RLM(model=root, level="dsl").run("Which functions have a bare except?", tiny)
    note = root.calls[2][-1].content
    assert "a list of 0 items" in note
    assert (
        "No function passes all 3 filters together (14 functions in all); "
        'without "contains": "except:", 6 pass: {"cmd": "functions", "public": true, '
        '"documented": true}; without "documented": true, 1 pass: {"cmd": "functions", '
        '"contains": "except:", "public": true}. Send the one with only the filters the question '
        "asks for."
    ) in note
    assert note.endswith("This result is not the answer yet: send the command it suggests.")
    assert result.answer == "core.py:Client.send"


def test_a_filter_sent_again_after_its_note_is_held_to_the_proposed_commands(tiny: Path) -> None:
    """Shown the commands with each filter left out, the 1.5B root sent its own again."""
    empty = '{"cmd": "functions", "contains": "except:", "public": true, "documented": true}'
    root = small_scripted(
        "count",
        empty,
        empty,
        '{"cmd":"functions","contains":"except:","public":true}',
        '{"cmd": "final", "name": "last"}',
    )
    result = RLM(model=root, level="dsl").run("Which functions have a bare except?", tiny)
    assert result.answer == "core.py:Client.send"
    note = root.calls[3][-1].content
    assert note.startswith("You sent the same command again, and it gives the same result.")
    held = root.options[3]["json_schema"]["anyOf"]
    assert [shape["const"] for shape in held] == [
        {"cmd": "functions", "public": True, "documented": True},
        {"cmd": "functions", "contains": "except:", "public": True},
    ]
    assert all("json_schema" not in options for i, options in enumerate(root.options) if i != 3)
    # A root that is not small runs its command again, as sent.
    root = scripted(empty, empty, '{"cmd": "final", "answer": "none"}')
    result = RLM(model=root, level="dsl").run("Which functions have a bare except?", tiny)
    assert "a list of 0 items" in root.calls[2][-1].content
    assert all("json_schema" not in options for options in root.options)


async def test_a_filter_name_typed_as_source_text_has_one_way_out(tiny: Path) -> None:
    """ "contains": "public" beside "public": true names a filter, not source text."""
    _, corpus = from_directory(tiny).open_local()
    machine = machine_without_sub_calls(corpus, max_output=2_000)
    args = {"contains": "public", "public": True, "documented": True}
    out = await machine.execute(Command("functions", args))
    assert out.proposals == (Command("functions", {"public": True, "documented": True}),)
    assert 'without "public": true' not in out.output


async def test_a_file_search_that_found_nothing_counts_the_parts_of_its_pattern(
    tiny: Path,
) -> None:
    _, corpus = from_directory(tiny).open_local()
    machine = machine_without_sub_calls(corpus, max_output=2_000)
    out = await machine.execute(Command("search_files", {"pattern": "def NAME\\(path"}))
    assert out.output.startswith("no hits\nNothing matches the whole pattern. Its parts alone:")
    assert "'NAME' 0 times" in out.output
    assert out.proposals == (Command("search_files", {"pattern": "def \\S+\\(path"}),)


def test_a_run_that_stalls_on_a_list_keeps_the_whole_list(tiny: Path) -> None:
    listing = '{"cmd": "functions"}'
    root = small_scripted("count", listing, listing, listing, "none")
    result = RLM(model=root, level="dsl").run("Which functions are there?", tiny)
    assert result.status == "stalled"
    assert result.answer is not None
    assert len(result.answer.splitlines()) == 14  # every function, not the five on show


def test_an_answer_that_copies_a_cut_list_is_told_to_finish_with_the_list(tiny: Path) -> None:
    """Shown 5 functions and "... and 9 more", the 1.5B root answered with what it saw."""
    root = small_scripted(
        "count",
        '{"cmd": "functions", "as": "found"}',
        '{"cmd": "final", "answer": "core.py:a\\ncore.py:b\\n... and 9 more"}',
        '{"cmd":"final","name":"found"}',
    )
    result = RLM(model=root, level="dsl").run("Which functions are there?", tiny)
    note = root.calls[3][-1].content
    assert note.startswith("Your answer copies a list as it was shown, cut after its first items")
    assert 'send {"cmd": "final", "name": "found"}.' in note
    assert root.options[3]["json_schema"] == {
        "anyOf": [{"const": {"cmd": "final", "name": "found"}}]
    }
    assert result.answer is not None
    assert len(result.answer.splitlines()) == 14


def test_a_map_over_functions_reads_their_source_and_keeps_the_items_answered_yes(
    tiny: Path,
) -> None:
    root = small_scripted(
        "classify",
        '{"cmd": "functions", "contains": "open\\\\(", "as": "openers"}',
        '{"cmd": "map", "instruction": "Is the file it opens left open?", "each": "openers", '
        '"labels": ["yes", "no"], "keep": "yes"}',
        '{"cmd": "final", "name": "last"}',
    )
    # The sub-model sees each function's source: only run() reads a file it never closes.
    sub = ScriptedModel([], rules=[Rule("open(path).read()", "yes"), Rule("def ", "no")])
    result = RLM(model=root, sub_model=sub, level="dsl").run(
        "Which functions leave a file open?", tiny
    )
    assert result.answer == "core.py:run"
    prompts = [call[-1].content for call in sub.calls]
    assert any("def run(path):" in p and "open(path).read()" in p for p in prompts)
    assert "the items whose answer is 'yes'" in root.calls[3][-1].content
    with pytest.raises(CommandError, match='"keep" must be one of its "labels"'):
        check({"cmd": "map", "instruction": "x", "each": "a", "labels": ["y", "n"], "keep": "no"})


@pytest.mark.parametrize(
    ("kind", "shown"),
    [("count", '"contains": "time'), ("classify", '"keep": "yes"'), ("lookup", "search_files")],
)
def test_a_directory_gets_worked_examples_about_files_and_functions(
    tiny: Path, kind: str, shown: str
) -> None:
    dsl_root = small_scripted(kind, '{"cmd": "final", "answer": "x"}')
    RLM(model=dsl_root, level="dsl").run("Which functions do X?", tiny)
    assert shown in dsl_root.calls[1][0].content
    # The first turn names a directory's items, never "the text" (which it would split).
    step = dsl_root.calls[1][1].content.split("\n\n")[-1]
    assert "text" not in step
    assert ("files" in step) == (kind != "lookup")
    code_root = small_scripted(kind, 'FINAL("x")')
    RLM(model=code_root, sandbox=InProcessRepl).run("Which functions do X?", tiny)
    system = code_root.calls[1][0].content
    assert ("found = [f for f in functions()" in system) == (kind == "count")
    assert ("answers = llm_map(" in system) == (kind == "classify")
    assert ('search_files(r"def open_door")' in system) == (kind == "lookup")


def test_a_slice_of_a_directory_is_told_how_to_name_a_file_in_commands(tiny: Path) -> None:
    root = small_scripted(
        "lookup", '{"cmd": "slice", "start": 0, "end": 20}', '{"cmd": "final", "answer": "x"}'
    )
    RLM(model=root, level="dsl").run("What does core.py start with?", tiny)
    note = root.calls[2][-1].content
    assert note.startswith(
        'slice failed: this context has 7 files: add "doc": 0 to the command, or a name such '
        'as "doc": "__init__.py"\n'
    )
    assert "doc=INDEX" not in note


def test_a_search_for_import_statements_is_offered_the_imports_command(tmp_path: Path) -> None:
    """The 1.5B root asked which modules import which with "contains": "import", and tried
    to copy out the 18 functions that import inside their body."""
    prepared = DEMO.prepare(tmp_path, seed=0)
    question = {q.name: q for q in prepared.questions}["imports-dsl"]
    root = small_scripted(
        "count",
        '{"cmd": "functions", "contains": "import", "as": "imports"}',
        '{"cmd": "final", "name": "imports"}',
        '{"cmd": "imports", "local": true}',
        '{"cmd": "final", "name": "last"}',
    )
    result = RLM(model=root, level="dsl").run(question.query, prepared.context)
    note = root.calls[2][-1].content
    assert "most imports are at the top of a file, outside any function" in note
    offered = [{"cmd": "imports", "local": True}, {"cmd": "imports"}]
    assert root.options[3]["json_schema"] == {"anyOf": [{"const": c} for c in offered]}
    check = DEMO.check(prepared, question, result.answer)
    assert check.passed, check.detail


def test_an_answer_copied_from_the_worked_example_is_sent_back(tiny: Path) -> None:
    root = small_scripted(
        "lookup",
        '{"cmd": "search_files", "pattern": "open"}',
        '{"cmd": "final", "answer": "fetch/download.py:12: MAX_RETRIES = 5"}',
        '{"cmd": "final", "answer": "core.py:Client.send"}',
    )
    result = RLM(model=root, level="dsl").run("Which function opens a socket?", tiny)
    assert "Your answer is the worked example's" in root.calls[3][-1].content
    assert result.answer == "core.py:Client.send"
