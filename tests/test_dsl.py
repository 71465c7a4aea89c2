"""The DSL level: parsing and checking replies, executing commands with rlmx's own
helpers, and whole runs on scripted models (no sandbox is ever started)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rlmx import RLM, Limits
from rlmx.cli.main import main
from rlmx.context import describe_context
from rlmx.context.corpus import Corpus
from rlmx.context.helpers import Helpers
from rlmx.context.sources import from_directory
from rlmx.dsl import Command, CommandError, parse_reply
from rlmx.dsl.machine import Machine, nested_repetition
from rlmx.dsl.prompts import system_prompt
from rlmx.providers.scripted import ScriptedModel
from rlmx.trajectory.events import CellExecuted

from .conftest import ListRecorder, scripted, small_scripted
from .test_cli import script

CONTEXT = "alpha line\nthe vault code is ZETA-42\nomega line\n"


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        ('{"cmd": "grep", "pattern": "vault"}', Command("grep", {"pattern": "vault"})),
        (
            'I will search.\n```json\n{"command": "count", "pattern": "x", "as": "n"}\n```',
            Command("count", {"pattern": "x"}, "n"),
        ),
        ('{"op": "LINES", "start": 2, "end": 3}', Command("lines", {"start": 2, "end": 3})),
        ('{"grep": "vault"}', Command("grep", {"pattern": "vault"})),
        ('{"grep": {"pattern": "v", "around": 9}}', Command("grep", {"pattern": "v", "around": 9})),
        ('{"final": "ZETA-42"}', Command("final", {"answer": "ZETA-42"})),
        ("FINAL(ZETA-42)", Command("final", {"answer": "ZETA-42"})),
        # Quotes left unescaped inside an answer: the answer runs to the object's end.
        (
            '{"cmd": "final", "answer": "a.py, line 3: __all__ = ["A", "B"]"}',
            Command("final", {"answer": 'a.py, line 3: __all__ = ["A", "B"]'}),
        ),
        # An object closed by a parenthesis, as FINAL(...) would be: not an answer cut off.
        ('{"cmd": "final", "answer": "A")', Command("final", {"answer": "A"})),
        ('```json\n{"cmd": "grep", "pattern": "x"]\n```', Command("grep", {"pattern": "x"})),
        ("FINAL_VAR(code)", Command("final", {"name": "code"})),
        (
            '{"cmd": "slice", "start": 0, "end": null, "why": "ignored"}',
            Command("slice", {"start": 0}),
        ),
        (
            '{"cmd": "set", "name": "x", "value": [1, 2]}',
            Command("set", {"name": "x", "value": [1, 2]}),
        ),
        # Regexes written into JSON unescaped, as small models do: the backslash was meant.
        (
            '{"cmd": "count", "pattern": "took (\\d+)\\.\\s"}',
            Command("count", {"pattern": "took (\\d+)\\.\\s"}),
        ),
        (
            '{"cmd": "grep", "pattern": "\\bport\\b \\\\d"}',
            Command("grep", {"pattern": "\\bport\\b \\d"}),
        ),
        (
            '{"cmd": "extract", "pattern": "(\\d+\\.\\d+)", "kind": "ipv4"}',
            Command("extract", {"kind": "ipv4"}),
        ),
    ],
)
def test_replies_are_parsed_leniently(reply: str, expected: Command) -> None:
    assert parse_reply(reply) == expected


@pytest.mark.parametrize(
    ("reply", "message"),
    [
        ("Please provide the text.", "no JSON command"),
        ('{"cmd": "explode"}', "Unknown command 'explode'"),
        ('{"cmd": "grep"}', "grep needs 'pattern'"),
        ('{"cmd": "lines", "start": "ten"}', "'start' must be a whole number"),
        ('{"cmd": "lines", "start": true}', "'start' must be a whole number"),
        ('{"cmd": "grep", "pattern": "x", "as": "not a name"}', "simple name"),
        ('{"cmd": "get", "name": "__class__"}', "simple name"),
        ('{"cmd": "list_files"}', "directory context only"),
        ('{"cmd": "final"}', "final needs"),
        ('{"cmd": "grep", "pattern": "x", "as": "last"}', "simple name"),
    ],
)
def test_malformed_commands_get_a_corrective_message(reply: str, message: str) -> None:
    with pytest.raises(CommandError, match=message):
        parse_reply(reply)


def test_directory_commands_are_accepted_for_a_directory() -> None:
    assert parse_reply('{"cmd": "list_files"}', directory=True) == Command("list_files")


@pytest.mark.parametrize(
    ("pattern", "nested"),
    [
        ("(a+)+b", True),
        ("(x*)*", True),
        ("(?:ab|c+)*", True),
        ("(a|b)+", False),
        ("a+b+", False),
        (r"ERROR .*timeout after \d+ms", False),
        ("(ab){2}", False),
        ("(unclosed", False),
    ],
)
def test_nested_repetition_is_detected(pattern: str, nested: bool) -> None:
    assert nested_repetition(pattern) is nested


async def test_the_machine_keeps_values_and_fills_prompts() -> None:
    seen: list[str] = []

    async def query(prompt: str, model: str | None) -> str:
        seen.append(prompt)
        return "answer"

    async def batched(prompts: object, model: str | None) -> list[str]:
        seen.extend(prompts)  # type: ignore[arg-type]
        return [f"a{i}" for i, _ in enumerate(prompts)]  # type: ignore[arg-type]

    async def mapped(
        instruction: str, items: object, labels: object, model: str | None
    ) -> list[str | None]:
        return [str(item).split()[0] for item in items]  # type: ignore[attr-defined]

    machine = Machine(
        Corpus.from_value(CONTEXT),
        query=query,
        query_batched=batched,
        query_map=mapped,
        max_output=500,
    )
    out = await machine.execute(Command("grep", {"pattern": "vault", "around": 4}))
    assert out.output == "1 hit:\n[line 2, pos 15] the vault cod"
    await machine.execute(Command("set", {"name": "topic", "value": "codes"}))
    await machine.execute(Command("llm_query", {"prompt": "About {topic}: {last}"}))
    assert seen[-1] == "About codes: 1 hit:\n[line 2, pos 15] the vault cod"
    out = await machine.execute(Command("chunk", {"size": 20}, save_as="pieces"))
    assert out.output.startswith("a list of 3 items, 3 distinct (saved as pieces)\n[0] alpha line")
    out = await machine.execute(Command("llm_query", {"prompt": "Code?", "each": "pieces"}))
    pieces = Helpers(Corpus.from_value(CONTEXT)).chunk(20)
    assert seen[-3:] == [f"Code?\n\n{p}" for p in pieces]
    assert "a list of 3 items" in out.output
    final = await machine.execute(Command("final", {"name": "topic"}))
    assert final.final == "codes"
    with pytest.raises(CommandError, match="nothing is saved as 'nope'"):
        await machine.execute(Command("llm_query", {"prompt": "{nope}"}))
    with pytest.raises(CommandError, match="No saved value named 'gone'"):
        await machine.execute(Command("get", {"name": "gone"}))
    with pytest.raises(CommandError, match="lines failed"):
        await machine.execute(Command("lines", {"start": 1, "doc": 7}))
    with pytest.raises(CommandError, match="repeats a repeated group"):
        await machine.execute(Command("count", {"pattern": "(a+)+$"}))


def machine_without_sub_calls(corpus: Corpus, *, max_output: int = 500) -> Machine:
    async def never(*args: object) -> object:
        raise AssertionError("no sub-call expected")

    return Machine(
        corpus,
        query=never,  # type: ignore[arg-type]
        query_batched=never,  # type: ignore[arg-type]
        query_map=never,  # type: ignore[arg-type]
        max_output=max_output,
    )


def refuse_sandbox() -> object:
    raise AssertionError("the DSL level must not start a sandbox")


def run_dsl(
    root: ScriptedModel, sub: ScriptedModel | None = None, context: object = CONTEXT, **kw: object
):  # type: ignore[no-untyped-def]
    recorder = ListRecorder()
    rlm = RLM(  # type: ignore[arg-type]
        model=root,
        sub_model=sub,
        limits=Limits(**kw),
        recorder=recorder,
        sandbox=refuse_sandbox,
        level="dsl",
    )
    return rlm.run("What is the vault code?", context), recorder  # type: ignore[arg-type]


def test_a_run_searches_then_answers() -> None:
    root = scripted(
        '{"cmd": "grep", "pattern": "vault code is (\\\\S+)", "around": 10}',
        '{"cmd": "final", "answer": "ZETA-42"}',
    )
    result, rec = run_dsl(root)
    assert (result.status, result.answer, result.iterations) == ("completed", "ZETA-42", 2)
    assert "ZETA-42" in root.calls[1][-1].content
    cells = rec.of(CellExecuted)
    assert json.loads(cells[0].code) == {  # type: ignore[attr-defined]
        "cmd": "grep",
        "pattern": "vault code is (\\S+)",
        "around": 10,
    }
    assert cells[-1].final == "ZETA-42"  # type: ignore[attr-defined]
    system = root.calls[0][0].content
    assert '{"cmd": "grep", "pattern": "REGEX", "around": 200}' in system
    assert "a str of 48 chars, 3 lines" in system
    assert "ZETA" not in system


def test_bad_replies_cost_a_turn_not_the_run() -> None:
    root = scripted(
        "Please provide the context.",
        '{"cmd": "grep", "pattern": "(a+)+"}',
        '{"cmd": "lines", "start": "two"}',
        '{"cmd": "lines", "start": 2}',
        'FINAL("ZETA-42")',
    )
    result, rec = run_dsl(root)
    assert (result.status, result.answer) == ("completed", "ZETA-42")
    errors = [c.error for c in rec.of(CellExecuted)]  # type: ignore[attr-defined]
    assert errors[0] is not None
    assert "no JSON command" in errors[0]
    assert errors[1] is not None
    assert "repeats a repeated group" in errors[1]
    assert errors[2] is not None
    assert "whole number" in errors[2]
    assert errors[3] is None
    assert "the vault code is ZETA-42" in root.calls[4][-1].content
    assert all("What is the vault code?" in call[-1].content for call in root.calls)


def test_sub_calls_are_counted_and_batched() -> None:
    root = scripted(
        '{"cmd": "chunk", "size": 20, "as": "parts"}',
        '{"cmd": "llm_query", "prompt": "Any code here? {item}", "each": "parts"}',
        '{"cmd": "final", "name": "last"}',
    )
    sub = ScriptedModel(["no", "ZETA-42", "no"])
    result, _ = run_dsl(root, sub)
    assert result.sub_calls == 3
    assert result.answer == "no\nZETA-42\nno"
    assert result.usage.sub.calls == 3


async def test_a_final_that_names_an_unsaved_value_is_told_how_to_answer_that_text() -> None:
    machine = machine_without_sub_calls(Corpus.from_value(CONTEXT), max_output=500)
    with pytest.raises(CommandError) as caught:
        await machine.execute(Command("final", {"name": "A"}))
    assert str(caught.value) == (
        "No saved value named 'A' (saved: none yet). To answer with that text itself, send "
        '{"cmd": "final", "answer": "A"}.'
    )


def test_out_of_turns_asks_for_a_last_answer() -> None:
    root = scripted('{"count": "line"}', '{"count": "vault"}', '{"cmd": "final", "answer": "2"}')
    result, _ = run_dsl(root, max_iterations=2)
    assert (result.status, result.answer, result.iterations) == ("max_iterations", "2", 2)
    assert "no steps left" in root.calls[2][-1].content
    # A saved value may be the answer, a list too long to copy: the last call names them.
    assert '{"cmd": "final", "name": "NAME"} to answer with a saved value (saved: last)' in (
        root.calls[2][-1].content
    )
    root = scripted(
        '{"cmd": "count", "pattern": "line", "as": "n"}', '{"cmd": "final", "name": "n"}'
    )
    result, _ = run_dsl(root, max_iterations=1)
    assert (result.status, result.answer) == ("max_iterations", "2")
    assert "(saved: last, n)" in root.calls[1][-1].content


def test_the_sub_call_budget_ends_the_run() -> None:
    root = scripted(*['{"cmd": "llm_query", "prompt": "again"}'] * 5)
    result, _ = run_dsl(root, scripted("a", "b", "c"), max_sub_calls=2)
    assert result.status == "budget_exceeded"
    assert "max_sub_calls" in (result.error or "")


def test_with_sub_calls_off_llm_query_is_not_offered_and_refuses() -> None:
    root = scripted('{"cmd": "llm_query", "prompt": "hi"}', '{"cmd": "final", "answer": "x"}')
    sub = scripted("never")
    result, rec = run_dsl(root, sub, max_sub_calls=0)
    assert (result.status, result.answer, result.sub_calls) == ("completed", "x", 0)
    assert "llm_query" not in root.calls[0][0].content
    assert "sub-calls are off" in (rec.of(CellExecuted)[0].error or "")  # type: ignore[attr-defined]
    assert sub.remaining == 1


def test_a_directory_context_gets_the_file_commands(tmp_path: Path) -> None:
    (tmp_path / "repo").mkdir()
    (tmp_path / "repo" / "auth.py").write_text("def login():\n    return 'ok'\n")
    root = scripted(
        '{"cmd": "search_files", "pattern": "def \\\\w+"}',
        '{"cmd": "read_file", "path": "auth.py", "as": "src"}',
        '{"cmd": "final", "answer": "auth.py"}',
    )
    result, _ = run_dsl(root, context=from_directory(tmp_path / "repo"))
    assert result.answer == "auth.py"
    assert "[auth.py:1, pos 0] def login():" in root.calls[1][-1].content
    assert "return 'ok'" in root.calls[2][-1].content
    assert '{"cmd": "search_files", "pattern": "REGEX"}' in root.calls[0][0].content


def test_cli_level_dsl(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    book = tmp_path / "book.txt"
    book.write_text(CONTEXT)
    model = script(
        tmp_path, '{"cmd": "find", "text": "ZETA"}', '{"cmd": "final", "answer": "ZETA-42"}'
    )
    code = main(["run", "q", "-c", str(book), "-m", model, "--level", "dsl", "--json", "-q"])
    assert code == 0
    data = json.loads(capsys.readouterr().out)
    assert (data["answer"], data["iterations"]) == ("ZETA-42", 2)


async def test_map_and_tally_combine_answers_in_the_command_language() -> None:
    asked: list[tuple[str, list[str], object]] = []

    async def mapped(
        instruction: str, items: object, labels: object, model: str | None
    ) -> list[str | None]:
        asked.append((instruction, list(items), labels))  # type: ignore[call-overload]
        return ["yes" if "vault" in str(item) else "no" for item in items]  # type: ignore[attr-defined]

    async def never(*_: object) -> object:
        raise AssertionError("not called")

    machine = Machine(
        Corpus.from_value(CONTEXT),
        query=never,  # type: ignore[arg-type]
        query_batched=never,  # type: ignore[arg-type]
        query_map=mapped,
        max_output=500,
    )
    await machine.execute(Command("split", {"separator": "\n"}, save_as="rows"))
    await machine.execute(
        Command(
            "map",
            {"instruction": "About a vault?", "each": "rows", "labels": ["yes", "no"]},
            save_as="answers",
        )
    )
    assert asked[0][0] == "About a vault?"
    assert asked[0][2] == ["yes", "no"]
    out = await machine.execute(Command("tally", {"name": "answers"}))
    # Most common first, with how many values and how many distinct ones.
    assert out.output.splitlines() == [
        "4 values, 2 distinct, most common first:",
        "      3  no",
        "      1  yes",
    ]
    assert machine.variables["last"] == [("no", 3), ("yes", 1)]
    with pytest.raises(CommandError, match="No saved value named"):
        await machine.execute(Command("map", {"instruction": "x", "each": "answers_missing"}))


def test_a_command_sent_three_times_ends_the_run_as_stalled() -> None:
    from rlmx.providers.base import ModelProfile
    from rlmx.providers.scripted import ScriptedModel

    same = '{"cmd": "count", "pattern": "vault"}'
    root = ScriptedModel(
        ["count", same, same, same, '{"cmd": "final", "answer": "1 vault"}'],
        profile=ModelProfile(context_window=32_000, small=True),
    )
    result = RLM(model=root, level="dsl").run("How many vaults?", CONTEXT)
    assert (result.status, result.answer) == ("stalled", "1 vault")
    # A small root is first asked the question's kind of work; a count is shown the lookup
    # example (measured better than one of extract and tally), meaning the map example.
    assert root.options[0]["choices"] == ["lookup", "count", "classify", "explain"]
    assert "lighthouse" in root.calls[1][0].content
    handle = describe_context(CONTEXT)
    assert '"cmd": "map", "instruction": "Is this review' in system_prompt(handle, kind="classify")
    assert "lighthouse" in system_prompt(handle, kind="classify", sub_calls=False)
    assert root.options[2] == {}  # nothing repeated yet
    assert root.options[3]["temperature"] > 0  # the repeat is answered by sampling
    assert len(root.calls) == 5


LOG = (
    "[Sun Dec 04 04:47:44 2005] [error] mod_jk child workerEnv in error state 6\n"
    "[Sun Dec 04 04:47:45 2005] [notice] jk2_init() Found child 6725 in scoreboard slot 10\n"
    "[Mon Dec 05 11:02:09 2005] [error] mod_jk child workerEnv in error state 7\n"
    "[Mon Dec 05 11:02:10 2005] [error] [client 10.0.0.7] Directory index forbidden by rule\n"
    "[Mon Dec 05 11:02:11 2005] [notice] request from 10.0.0.7 took 120 ms\n"
    "[Mon Dec 05 11:02:12 2005] [notice] request from 8.8.8.8 took 80 ms\n"
)


def test_log_analytics_in_the_command_language() -> None:
    """extract, tally (with templates), stats and top_words: a log's usual questions."""
    root = scripted(
        '{"cmd": "extract", "pattern": "\\\\[error\\\\] (.*)", "as": "errors"}',
        '{"cmd": "tally", "name": "errors", "templates": true}',
        '{"cmd": "extract", "kind": "ipv4"}',
        '{"cmd": "tally", "name": "last"}',
        '{"cmd": "extract", "pattern": "took (\\\\d+) ms", "as": "times"}',
        '{"cmd": "stats", "name": "times"}',
        '{"cmd": "top_words", "top": 3}',
        '{"cmd": "extract"}',
        '{"cmd": "final", "answer": "mod_jk child workerEnv in error state"}',
    )
    result, _ = run_dsl(root, context=LOG, max_iterations=12)
    assert result.answer == "mod_jk child workerEnv in error state"
    shown = [call[-1].content for call in root.calls[1:]]
    assert (
        "3 values, 2 distinct, most common first:\n      2  mod_jk child workerEnv in error "
        "state <*>\n      1  Directory index forbidden by rule" in shown[1]
    )
    assert "a list of 3 items, 2 distinct" in shown[2]
    assert "[0] 10.0.0.7" in shown[2]
    assert "3 values, 2 distinct" in shown[3]
    assert "2  10.0.0.7" in shown[3]
    assert '"p50": 100.0' in shown[5]
    assert '"count": 2' in shown[5]
    assert "the first 3, most common first:\n      6  dec\n" in shown[6]
    assert 'extract needs "pattern"' in shown[7]


def test_replies_with_a_line_break_inside_a_string_are_read() -> None:
    reply = '{"cmd": "final", "answer": "first line\nsecond line"}'
    assert parse_reply(reply) == Command("final", {"answer": "first line\nsecond line"})


async def test_an_unsaved_name_is_answered_with_how_to_save_it() -> None:
    machine = machine_without_sub_calls(Corpus.from_value(CONTEXT), max_output=500)
    with pytest.raises(CommandError, match='adding "as": "times"') as caught:
        await machine.execute(Command("stats", {"name": "times"}))
    assert '{"cmd": "extract", "pattern": "...", "as": "times"}' in str(caught.value)


IPS = "from 10.0.0.1\nfrom 10.0.0.2\nfrom 10.0.0.1\nfrom 10.0.0.1\nlifetime 00:03\n"


def test_an_item_count_given_for_distinct_values_is_sent_back_once() -> None:
    root = small_scripted(
        "count",
        '{"cmd": "extract", "kind": "ipv4", "as": "ips"}',
        '{"cmd": "final", "answer": "4 distinct addresses"}',
        '{"cmd": "final", "answer": "2"}',
    )
    result = RLM(model=root, level="dsl").run("How many distinct addresses are there?", IPS)
    assert result.answer == "2"
    note = root.calls[3][-1].content
    assert "ips has 4 items, but only 2 distinct values" in note


def test_a_command_on_an_unsaved_value_waits_for_a_reply_held_to_making_it() -> None:
    """The 1.5B root sent stats of a list it never made, three times: the next reply is held
    to a command that makes that list, and the stats run once it exists."""
    root = small_scripted(
        "count",
        '{"cmd": "stats", "name": "lifetimes"}',
        '{"cmd": "extract", "pattern": "lifetime", "as": "lifetimes"}',
        '{"cmd": "extract", "pattern": "lifetime (.*)", "as": "lifetimes"}',
        '{"cmd": "final", "answer": "p50 3"}',
    )
    result = RLM(model=root, level="dsl").run("What is the p50 of the lifetimes?", IPS)
    assert result.answer == "p50 3"
    assert "json_schema" not in root.options[1]
    held = root.options[2]["json_schema"]["anyOf"]
    assert {shape["properties"]["cmd"]["const"] for shape in held} == {
        "extract",
        "grep",
        "split",
        "chunk",
    }
    assert all(shape["properties"]["as"] == {"const": "lifetimes"} for shape in held)
    # The stats failed on the word itself: still waiting, so the next reply is held too.
    shown = root.calls[3][-1].content
    assert 'Then {"cmd": "stats", "name": "lifetimes"} failed' in shown
    assert "json_schema" in root.options[3]
    shown = root.calls[4][-1].content
    assert 'Then {"cmd": "stats", "name": "lifetimes"} ran:' in shown
    assert '"p50": 3.0' in shown
    assert "json_schema" not in root.options[4]


def test_a_shown_value_given_under_another_label_is_sent_back_once() -> None:
    """Shown p90 240 and p95 388.8, the 1.5B root answered "p95: 240.0, p99: 388.8"."""
    lifetimes = "".join(f"lifetime 00:{n:02d}\n" for n in range(1, 41))
    root = small_scripted(
        "count",
        '{"cmd": "extract", "pattern": "lifetime (.*)", "as": "t"}',
        '{"cmd": "stats", "name": "t"}',
        '{"cmd": "final", "answer": "p50: 20.5, p95: 36.1, p99: 38.05"}',
        '{"cmd": "final", "answer": "p50: 20.5, p95: 38.05, p99: 39.61"}',
    )
    result = RLM(model=root, level="dsl").run("What are the p50, p95 and p99?", lifetimes)
    note = root.calls[4][-1].content
    assert (
        "p95 is 38.05 (not 36.1, which is the p90); p99 is 39.61 (not 38.05, which is the p95)"
        in note
    )
    # The next reply is held to the model's own answer with the shown values in place.
    corrected = {"cmd": "final", "answer": "p50: 20.5, p95: 38.05, p99: 39.61"}
    assert corrected["answer"] in note
    assert root.options[4]["json_schema"] == {"anyOf": [{"const": corrected}]}
    assert "json_schema" not in root.options[3]
    assert result.answer == "p50: 20.5, p95: 38.05, p99: 39.61"


def test_labels_listed_before_their_values_are_read_in_order() -> None:
    """Shown p90 323.5 and p95 339.75, the 1.5B root answered "The p50, p95, and p99 of the
    lease durations are 193.5, 323.5, and 339.75 seconds, respectively"."""
    lifetimes = "".join(f"lifetime 00:{n:02d}\n" for n in range(1, 41))
    said = "The p50, p95, and p99 of the lifetimes are {}, {}, and {} seconds, respectively."
    root = small_scripted(
        "count",
        '{"cmd": "extract", "pattern": "lifetime (.*)", "as": "t"}',
        '{"cmd": "stats", "name": "t"}',
        json.dumps({"cmd": "final", "answer": said.format("20.5", "36.1", "38.05")}),
        json.dumps({"cmd": "final", "answer": said.format("20.5", "38.05", "39.61")}),
    )
    result = RLM(model=root, level="dsl").run("What are the p50, p95 and p99?", lifetimes)
    note = root.calls[4][-1].content
    assert "p95 is 38.05 (not 36.1, which is the p90); p99 is 39.61" in note
    corrected = {"cmd": "final", "answer": said.format("20.5", "38.05", "39.61")}
    assert root.options[4]["json_schema"] == {"anyOf": [{"const": corrected}]}
    assert result.answer == corrected["answer"]


def test_a_label_shown_with_two_values_is_noted_but_not_corrected() -> None:
    """Two stats shown with different p95s: which the answer meant is not known."""
    root = small_scripted(
        "count",
        '{"cmd": "set", "name": "a", "value": {"p95": 7.5}}',
        '{"cmd": "set", "name": "b", "value": {"p95": 9.5}}',
        '{"cmd": "final", "answer": "p95: 8.5"}',
        '{"cmd": "final", "answer": "p95: 9.5"}',
    )
    result = RLM(model=root, level="dsl").run("What is the p95?", IPS)
    note = root.calls[4][-1].content
    assert "p95 is 7.5 or 9.5 (not 8.5)" in note
    assert "json_schema" not in root.options[4]
    assert result.answer == "p95: 9.5"


def test_a_root_that_is_not_small_is_never_held_to_a_schema() -> None:
    root = scripted(
        '{"cmd": "stats", "name": "lifetimes"}',
        '{"cmd": "extract", "pattern": "lifetime (.*)", "as": "lifetimes"}',
        '{"cmd": "final", "answer": "p50 3"}',
    )
    result = RLM(model=root, level="dsl").run("What is the p50 of the lifetimes?", IPS)
    assert result.answer == "p50 3"
    assert all("json_schema" not in options for options in root.options)
    assert "Then" not in root.calls[2][-1].content


def test_a_directory_may_make_the_waited_for_list_with_its_own_commands() -> None:
    from rlmx.dsl.commands import maker_schema

    text = {s["properties"]["cmd"]["const"] for s in maker_schema("x")["anyOf"]}
    files = {s["properties"]["cmd"]["const"] for s in maker_schema("x", directory=True)["anyOf"]}
    assert files - text == {"functions", "search_files", "list_files", "imports"}
    extract = next(
        s for s in maker_schema("x")["anyOf"] if s["properties"]["cmd"]["const"] == "extract"
    )
    assert extract["required"] == ["cmd", "pattern", "as"]


def test_numbers_no_result_showed_are_sent_back_once() -> None:
    root = small_scripted(
        "count",
        '{"cmd": "extract", "pattern": "lifetime", "as": "lifetimes"}',
        '{"cmd": "final", "answer": "p50: 1234 seconds"}',
        '{"cmd": "final", "answer": "p50: 1234 seconds"}',
    )
    result = RLM(model=root, level="dsl").run("What is the p50 of the lifetimes?", IPS)
    assert "Your answer has 1234, which no result showed" in root.calls[3][-1].content
    assert result.answer == "p50: 1234 seconds"  # said once: the second answer stands
    # An answer whose numbers were shown, or the question's own, is accepted at once.
    root = small_scripted(
        "count",
        '{"cmd": "extract", "kind": "ipv4"}',
        '{"cmd": "final", "answer": "10.0.0.1 and 10.0.0.2, 4 in all"}',
    )
    result = RLM(model=root, level="dsl").run("Which addresses appear?", IPS)
    assert result.answer == "10.0.0.1 and 10.0.0.2, 4 in all"
    assert len(root.calls) == 3
    # A shown value written to the answer's own precision was shown: 3.0 as 3, 1.5 as 2.
    root = small_scripted(
        "count",
        '{"cmd": "set", "name": "p", "value": [3.0, 1.5]}',
        '{"cmd": "final", "answer": "p50 is 3, p95 is 2"}',
    )
    result = RLM(model=root, level="dsl").run("What are the p50 and p95?", IPS)
    assert result.answer == "p50 is 3, p95 is 2"
    assert len(root.calls) == 3


async def test_a_search_that_found_nothing_counts_each_part_of_its_pattern() -> None:
    """The 1.5B root searched the question's placeholder ("from IP port") and answered "no
    hits"; the note shows which part of the pattern is not in the text."""
    log = "".join(f"sshd: Failed password for root from 10.0.0.{i} port 22\n" for i in range(5))
    text = log + "[client 1.2.3.4] x\n"
    machine = machine_without_sub_calls(Corpus.from_value(text), max_output=2_000)
    out = await machine.execute(Command("grep", {"pattern": "Failed password for .* from IP port"}))
    assert out.output.startswith("no hits\nNothing matches the whole pattern. Its parts alone: ")
    assert "'Failed password for ' 5 times, ' from IP port' 0 times. A part found 0" in out.output
    assert out.output.endswith(
        'With the missing words as \\S+, "Failed password for .* from \\S+ port" matches.'
    )
    assert not out.answerable
    assert out.proposals == (Command("grep", {"pattern": "Failed password for .* from \\S+ port"}),)
    out = await machine.execute(Command("count", {"pattern": "\\[client IP\\]"}))
    assert "Its parts alone: 'client' 1 time, 'IP' 0 times." in out.output
    assert out.proposals == (Command("count", {"pattern": "\\[client \\S+\\]"}),)
    out = await machine.execute(Command("extract", {"pattern": "root from (\\d+) port"}))
    assert "'root from ' 5 times, ' port' 5 times. Each is there, but not as" in out.output
    assert out.answerable
    assert out.proposals == ()
    out = await machine.execute(Command("grep", {"pattern": "nowhere"}))
    assert out.output == "no hits"  # one part, not in the text: nothing to add
    out = await machine.execute(
        Command("count", {"pattern": "FAILED PASSWORD", "ignore_case": True})
    )
    assert out.output == "5"


async def test_a_group_that_always_took_the_same_text_is_widened() -> None:
    """The 1.5B root extracted "time: ([0-9]+)" from times such as 0.2477829: 1,017 zeros."""
    log = "".join(f"GET /v2 time: 0.{n}4\n" for n in range(10))
    machine = machine_without_sub_calls(Corpus.from_value(log), max_output=2_000)
    out = await machine.execute(Command("extract", {"pattern": "time: ([0-9]+)"}))
    assert "Every match is the same text '0': the part in parentheses stops too early" in (
        out.output
    )
    assert 'send "time: (\\S+)"' in out.output
    out = await machine.execute(Command("extract", {"pattern": "time: (\\S+)"}))
    assert "Every match" not in out.output
    assert "10 distinct" in out.output


def test_an_answer_after_a_group_that_took_one_text_is_held_to_the_wider_group() -> None:
    """The 1.5B root extracted "time: ([0-9]+)" (all zeros), ran stats and answered 0.0."""
    log = "".join(f"GET /v2 time: 0.{n}4\n" for n in range(10))
    root = small_scripted(
        "count",
        '{"cmd": "extract", "pattern": "time: ([0-9]+)", "as": "t"}',
        '{"cmd": "final", "answer": "0"}',
        '{"cmd":"extract","pattern":"time: (\\\\S+)","as":"t"}',
        '{"cmd": "stats", "name": "t"}',
        '{"cmd": "final", "answer": "p50 0.49"}',
    )
    result = RLM(model=root, level="dsl").run("What is the p50 of the times?", log)
    assert result.answer == "p50 0.49"
    assert root.calls[2][-1].content.endswith(
        "This result is not the answer yet: send the command it suggests."
    )
    held = root.calls[3][-1].content
    assert held.startswith("The last result is not the answer yet. Send one of the commands")
    assert '{"cmd": "extract", "pattern": "time: (\\\\S+)", "as": "t"}' in held
    assert root.options[3]["json_schema"] == {
        "anyOf": [{"const": {"cmd": "extract", "pattern": "time: (\\S+)", "as": "t"}}]
    }
    assert '"p50": 0.49' in root.calls[5][-1].content


def test_the_waiting_command_sent_again_counts_as_sent_again() -> None:
    """Held to a maker, the 1.5B root extracted all zeros, and it sent the stats that waited
    rather than the wider group the note proposed. The note says the list is not right yet,
    so the stats is held back; sent, it is not run, and the reply is held to the proposal."""
    log = "".join(f"GET /v2 time: 0.{n}4\n" for n in range(10))
    root = small_scripted(
        "count",
        '{"cmd": "stats", "name": "t"}',
        '{"cmd": "extract", "pattern": "time: ([0-9]+)", "as": "t"}',
        '{"cmd": "stats", "name": "t"}',
        '{"cmd":"extract","pattern":"time: (\\\\S+)","as":"t"}',
        '{"cmd": "stats", "name": "t"}',
        '{"cmd": "final", "answer": "p50 0.49"}',
    )
    result = RLM(model=root, level="dsl").run("What is the p50 of the times?", log)
    assert "Then" not in root.calls[3][-1].content
    assert "waits for a value the last note says is not right yet" in root.calls[4][-1].content
    assert root.options[4]["json_schema"]["anyOf"][0]["const"]["pattern"] == "time: (\\S+)"
    assert result.answer == "p50 0.49"


async def test_an_extract_that_only_matched_itself_says_how_to_take_a_value() -> None:
    machine = machine_without_sub_calls(Corpus.from_value(IPS), max_output=500)
    out = await machine.execute(Command("extract", {"pattern": "from"}))
    assert "Every match is the same text 'from': the pattern matched only itself" in out.output
    assert '"from\\W+(\\S+)" for the next word or number' in out.output
    assert '".*from.*" gives whole lines' in out.output
    assert out.proposals[0].args["pattern"] == "from\\W+(\\S+)"
    # For a question that ranks kinds of lines the word marks the lines: whole lines first.
    machine.ranks_lines = True
    out = await machine.execute(Command("extract", {"pattern": "from"}))
    assert out.output.index('".*from.*" gives whole lines') < out.output.index("next word")
    assert [c.args["pattern"] for c in out.proposals] == [".*from.*", "from(.*)", "from\\W+(\\S+)"]
    out = await machine.execute(Command("extract", {"pattern": "from (\\S+)"}))
    assert "Every match" not in out.output
    # Matches that are the words of an alternation are the pattern's own words too.
    log = "".join(f"sshd: {w} password for root\n" for w in ["Failed", "Invalid"] * 5)
    words = machine_without_sub_calls(Corpus.from_value(log), max_output=2_000)
    out = await words.execute(Command("extract", {"pattern": "Failed|Invalid"}))
    assert "Every match is one of 'Failed', 'Invalid'" in out.output
    assert '"(?:Failed|Invalid)(.*)" for the rest of the line' in out.output
    out = await words.execute(Command("extract", {"pattern": "(Failed|Invalid)"}))
    assert "Every match" not in out.output  # a group: the words are what was asked for
    # A kind's name written as the pattern, in any case, is the kind.
    await machine.execute(Command("extract", {"pattern": "IPv4"}))
    assert machine.variables["last"] == ["10.0.0.1", "10.0.0.2", "10.0.0.1", "10.0.0.1"]


def test_a_final_answer_cut_off_by_the_token_limit_is_told_to_name_a_saved_value() -> None:
    reply = '```json\n{"cmd": "final", "answer": "a.py:f, b.py:g, c.py:h, d.py:'
    with pytest.raises(CommandError, match="final answer was cut off") as caught:
        parse_reply(reply)
    assert '{"cmd": "final", "name": "last"}' in str(caught.value)


async def test_a_grep_cut_at_its_limit_says_how_many_matches_there_are_first() -> None:
    # The 1.5B root answered "how many lines" with the 20 snippets a grep showed.
    log = "".join(f"GET /a time: 0.{i:03d}\n" for i in range(1, 101))
    machine = machine_without_sub_calls(Corpus.from_value(log), max_output=4_000)
    out = await machine.execute(Command("grep", {"pattern": r"time: \d", "around": 5}))
    assert out.output.startswith("100 matches, the first 20 shown:")
    assert "count() gives the total" not in out.output
    few = await machine.execute(Command("grep", {"pattern": "0.007", "around": 5}))
    assert few.output.startswith("1 hit:")


async def test_a_command_that_needs_a_document_says_so_in_commands() -> None:
    machine = machine_without_sub_calls(Corpus.from_value(["first text", "second text"]))
    with pytest.raises(CommandError) as caught:
        await machine.execute(Command("slice", {"start": 0, "end": 5}))
    assert str(caught.value) == (
        'slice failed: this context has 2 documents: add "doc": 0 to the command'
    )
    out = await machine.execute(Command("slice", {"start": 0, "end": 5, "doc": 1}))
    assert out.output == "secon"


NAMES = ("admin", "test", "oracle", "guest", "pi")
SSH_LOG = "".join(
    f"12:{i % 60:02d}:07 sshd[{4000 + i}]: Failed password for root from 10.0.{i % 7}.{i} port "
    f"{30000 + i}\n"
    if i % 3
    else f"12:{i % 60:02d}:09 sshd[{4000 + i}]: Invalid user {NAMES[i % 5]} from 10.1.0.{i}\n"
    for i in range(240)
)


def test_a_count_read_from_a_cut_grep_is_held_to_every_match_then_to_a_tally_by_kind() -> None:
    """The 1.5B root answered "most common failure messages" with three of the 20 lines a grep
    showed of 1,484."""
    root = small_scripted(
        "count",
        '{"cmd": "grep", "pattern": "Failed|Invalid", "around": 100}',
        '{"cmd": "final", "answer": "Failed password for root from 10.0.1.1 port 30001"}',
        '{"cmd": "extract", "pattern": "(?:Failed|Invalid).*", "as": "matches"}',
        '{"cmd": "final", "answer": "Failed password for root"}',
        '{"cmd": "tally", "name": "matches", "templates": true}',
        '{"cmd": "final", "answer": "Failed password for root from <*> port <*>: 160"}',
    )
    result = RLM(model=root, level="dsl").run("Which failure messages are most common?", SSH_LOG)
    # A question of counting is shown a sample of 10, not 20: no sample answers it.
    assert "240 matches, the first 10 shown" in root.calls[2][-1].content
    note = root.calls[3][-1].content
    assert "read from the 10 matches shown, of the 240 the grep found" in note
    proposed = {"cmd": "extract", "pattern": "(?:Failed|Invalid).*", "as": "matches"}
    assert root.options[3]["json_schema"] == {"anyOf": [{"const": proposed}]}
    # Every match kept: all distinct, six kinds once numbers are masked (one per name).
    extracted = root.calls[4][-1].content
    assert "by kind they are 6" in extracted
    assert "json_schema" not in root.options[4]
    # An answer sent instead of the tally the note proposed is held to it.
    tally = {"cmd": "tally", "name": "matches", "templates": True}
    assert root.options[5]["json_schema"] == {"anyOf": [{"const": tally}]}
    assert "160  Failed password for root from <*> port <*>" in root.calls[6][-1].content
    assert result.answer == "Failed password for root from <*> port <*>: 160"


def test_a_lookup_read_from_a_cut_grep_is_accepted() -> None:
    root = small_scripted(
        "lookup",
        '{"cmd": "grep", "pattern": "Invalid user", "around": 100}',
        '{"cmd": "final", "answer": "admin"}',
    )
    result = RLM(model=root, level="dsl").run("Which user name was tried first?", SSH_LOG)
    assert result.answer == "admin"
    assert len(root.calls) == 3
    assert "80 matches, the first 20 shown" in root.calls[2][-1].content


def test_the_kinds_note_is_only_for_many_distinct_texts_of_few_kinds() -> None:
    from rlmx.dsl.notes import kinds_note

    lines = [f"job {i} took {i * 3} ms" for i in range(40)]
    assert "by kind they are 1" in kinds_note(lines).text
    assert kinds_note(lines[:5]).text == ""  # few enough to read
    assert kinds_note(["same text"] * 40).text == ""  # one text: nothing to mask
    words = [f"{w} arrived" for w in ("cat", "dog", "owl", "elk", "fox", "ant", "bee", "cod")] * 5
    assert kinds_note(words).text == ""  # repeated, not distinct
    names = [f"{chr(97 + i % 26)}{chr(97 + i // 26)} left" for i in range(40)]
    assert kinds_note(names).text == ""  # as many kinds as texts
    # Mostly repeated texts that still split by a number: 10 distinct, 1 kind.
    states = [f"child workerEnv in error state {i % 10}" for i in range(40)]
    assert "are 10 distinct" in kinds_note(states).text


def test_values_that_are_wholly_variable_get_no_kinds_note() -> None:
    """Addresses are all distinct and all one template, "<*>": no kind to count them by."""
    from rlmx.dsl.notes import kinds_note

    assert kinds_note([f"10.0.{i}.{i}" for i in range(40)]).text == ""
    assert kinds_note([str(i * 7) for i in range(40)]).text == ""
