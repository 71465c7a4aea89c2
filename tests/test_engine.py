"""The RLM loop driven by scripted models: answers, statuses, token totals, events.

Every test that runs the engine takes the ``sandbox`` fixture (through ``make_rlm``, ``run``
or ``small_rlm``), so it runs once with the in-process REPL and once in each sandbox mode of
``tests/sandbox_support.ALL_MODES``: the confined worker must keep the behaviour the in-process
REPL has. ``-k inprocess`` runs the quick half alone.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Sequence
from typing import Any, Protocol, Unpack

import pytest

from rlmx import RLM, Assists, ConfigError, Limits
from rlmx.context import ContextInput
from rlmx.engine.search_keys import search_keys
from rlmx.engine.semantic_map import CONTENT_FREE
from rlmx.providers.base import CallOptions, ModelProfile
from rlmx.providers.scripted import Rule, ScriptedModel
from rlmx.trajectory.events import CellExecuted, RootReply, RunFinished, RunStarted, SubCall
from rlmx.types import Completion, Message, RunResult, Usage

from .conftest import ListRecorder, MakeRLM, repl, scripted

CONTEXT = "alpha line\nthe vault code is ZETA-42\nomega line\n"


class Runner(Protocol):
    def __call__(
        self,
        root: ScriptedModel,
        sub: ScriptedModel | None = None,
        context: ContextInput = CONTEXT,
        **limits: Any,
    ) -> tuple[RunResult, ListRecorder]: ...


@pytest.fixture
def run(make_rlm: MakeRLM) -> Runner:
    """Ask the vault question of ``context``; the result and every event recorded."""

    def go(
        root: ScriptedModel,
        sub: ScriptedModel | None = None,
        context: ContextInput = CONTEXT,
        **limits: Any,
    ) -> tuple[RunResult, ListRecorder]:
        recorder = ListRecorder()
        rlm = make_rlm(model=root, sub_model=sub, limits=Limits(**limits), recorder=recorder)
        return rlm.run("What is the vault code?", context), recorder

    return go


def test_final_in_code_completes_with_value_and_usage(run: Runner) -> None:
    root = scripted(
        repl("import re\nm = re.search(r'code is (\\S+)', context)\nprint(m.group(1))"),
        repl("FINAL(m.group(1))"),
    )
    result, rec = run(root)
    assert result.status == "completed"
    assert result.answer == "ZETA-42"
    assert result.iterations == 2
    # The second root call saw the first cell's printed output.
    assert "ZETA-42" in root.calls[1][-1].content
    replies = rec.of(RootReply)
    assert [r.iteration for r in replies] == [1, 2]
    expected = sum(r.usage["total_tokens"] for r in replies)
    assert result.usage.root.total_tokens == expected > 0
    assert result.usage.sub.total_tokens == 0
    assert result.cost_usd == 0.0
    assert isinstance(rec.events[0], RunStarted)
    last = rec.events[-1]
    assert isinstance(last, RunFinished)
    assert last.result["answer"] == "ZETA-42"


class CachingModel(ScriptedModel):
    """A scripted model whose every call reads 30 and writes 20 prompt-cache tokens."""

    async def complete(
        self, messages: Sequence[Message], **options: Unpack[CallOptions]
    ) -> Completion:
        done = await super().complete(messages, **options)
        usage = Usage(
            prompt_tokens=done.usage.prompt_tokens + 50,
            completion_tokens=done.usage.completion_tokens,
            cached_tokens=30,
            cache_write_tokens=20,
            calls=1,
        )
        return Completion(text=done.text, usage=usage, model=done.model, cost_usd=0.001)


def test_cache_write_tokens_reach_events_and_totals(run: Runner) -> None:
    root = CachingModel([repl("x = llm_query('hi')"), repl("FINAL('done')")])
    sub = CachingModel([], rules=[Rule("hi", "hello")])
    result, rec = run(root, sub)
    assert result.status == "completed"
    events: list[RootReply | SubCall] = [*rec.of(RootReply), *rec.of(SubCall)]
    assert len(events) == 3
    for event in events:
        assert event.usage["cache_write_tokens"] == 20
        assert event.usage["cached_tokens"] == 30
    assert result.usage.root.cache_write_tokens == 40
    assert result.usage.sub.cache_write_tokens == 20
    assert result.usage.by_depth[1].cache_write_tokens == 20
    total = rec.of(RunFinished)[-1].result["usage"]["total"]
    assert total["cache_write_tokens"] == 60
    assert total["cached_tokens"] == 90
    assert result.cost_usd == pytest.approx(0.003)


def test_context_never_enters_the_root_prompt(run: Runner) -> None:
    secret_tail = "UNSEEN-TAIL-" + "x" * 50
    context = "head " * 200 + secret_tail
    root = scripted(repl("FINAL('done')"))
    result, _ = run(root, context=context)
    assert result.status == "completed"
    prompt = "\n".join(m.content for m in root.calls[0])
    assert secret_tail not in prompt
    assert f"{len(context):,} chars" in prompt


def test_final_var_returns_the_value_not_the_name(run: Runner) -> None:
    root = scripted(repl("answer = context.split()[6]\nFINAL_VAR('answer')"))
    result, _ = run(root)
    assert result.answer == "ZETA-42"


def test_state_persists_between_cells_and_blocks(run: Runner) -> None:
    root = scripted(
        "two blocks\n" + repl("x = 40") + "\nand\n" + repl("x += 2\nprint(x)"),
        repl("FINAL(x)"),
    )
    result, rec = run(root)
    assert result.answer == "42"
    cells = rec.of(CellExecuted)
    assert [c.index for c in cells[:2]] == [0, 1]
    assert "42" in root.calls[1][-1].content


@pytest.mark.parametrize(
    ("reply", "answer"),
    [
        ('I found it.\nFINAL("ZETA-42")', "ZETA-42"),
        ("FINAL(ZETA-42)", "ZETA-42"),
        ("**FINAL(ZETA 42 with spaces)**", "ZETA 42 with spaces"),
    ],
)
def test_bare_final_outside_code_is_parsed_leniently(reply: str, answer: str, run: Runner) -> None:
    result, _ = run(scripted(reply))
    assert result.status == "completed"
    assert result.answer == answer


def test_bare_final_of_a_variable_name_gives_its_value(run: Runner) -> None:
    root = scripted(repl("found = 'ZETA-42'"), "FINAL(found)")
    result, _ = run(root)
    assert result.answer == "ZETA-42"


def test_unquoted_final_inside_code_is_accepted(run: Runner) -> None:
    result, rec = run(scripted(repl("FINAL(ZETA-42)")))
    assert result.answer == "ZETA-42"
    assert rec.of(CellExecuted)[0].error is None


def test_failing_final_expression_is_not_taken_literally(run: Runner) -> None:
    root = scripted(repl("items = []\nFINAL(items[0])"), repl("FINAL('fallback')"))
    result, _ = run(root)
    assert result.answer == "fallback"
    assert "IndexError" in root.calls[1][-1].content


def test_reply_without_code_gets_a_corrective_turn(run: Runner) -> None:
    root = scripted("Please provide the context.", repl("FINAL('ok')"))
    result, _ = run(root)
    assert result.status == "completed"
    assert result.iterations == 2
    corrective = root.calls[1][-1].content
    assert "```repl" in corrective
    assert "What is the vault code?" in corrective


def test_errors_reach_the_model_with_the_cells_own_traceback(run: Runner) -> None:
    root = scripted(repl("y = 1\nprint(undefined_name)"), repl("FINAL(y)"))
    result, _ = run(root)
    feedback = root.calls[1][-1].content
    assert "NameError: name 'undefined_name' is not defined" in feedback
    assert "print(undefined_name)" in feedback
    assert "inprocess.py" not in feedback
    assert result.answer == "1"


def test_trailing_expression_is_echoed(run: Runner) -> None:
    root = scripted(repl("len(context)"), repl("FINAL('x')"))
    run(root)
    assert str(len(CONTEXT)) in root.calls[1][-1].content


def test_output_is_truncated_with_a_marker(run: Runner) -> None:
    root = scripted(repl("print('A' * 50_000 + 'END')"), repl("FINAL('x')"))
    run(root, max_output_chars=1_000)
    feedback = root.calls[1][-1].content
    assert "chars not shown" in feedback
    assert feedback.count("A") < 1_200
    assert "END" in feedback


def test_sub_calls_are_counted_and_recorded(run: Runner) -> None:
    root = scripted(repl("a = llm_query('SUB: summarise')\nFINAL(a)"))
    sub = scripted(rules={"SUB:": "a summary"})
    result, rec = run(root, sub)
    assert result.answer == "a summary"
    assert result.sub_calls == 1
    calls = rec.of(SubCall)
    assert len(calls) == 1
    assert calls[0].prompt == "SUB: summarise"
    assert calls[0].depth == 1
    assert result.usage.sub.total_tokens == calls[0].usage["total_tokens"] > 0
    assert result.usage.by_depth[1].calls == 1


def test_batched_sub_calls_run_concurrently_and_failures_become_strings(run: Runner) -> None:
    prompts = [f"Q{i}" for i in range(16)]
    root = scripted(repl(f"answers = llm_query_batched({prompts!r})\nFINAL('|'.join(answers))"))
    sub = ScriptedModel(["r"] * 15, latency_s=0.2)  # one response short: the 16th call fails
    started = time.perf_counter()
    result, _ = run(root, sub)
    elapsed = time.perf_counter() - started
    assert result.answer is not None
    answers = result.answer.split("|")
    assert len(answers) == 16
    assert answers.count("r") == 15
    assert sum(a.startswith("ERROR:") for a in answers) == 1
    assert elapsed < 16 * 0.2 / 2  # sequential calls would take 3.2 s


def test_concurrency_limit_is_respected(run: Runner) -> None:
    # Distinct prompts: a repeated greedy one is answered from the memo once the first is back.
    root = scripted(repl("r = llm_query_batched([f'a{i}' for i in range(8)])\nFINAL(len(r))"))
    sub = ScriptedModel(["r"] * 8, latency_s=0.2)
    started = time.perf_counter()
    result, _ = run(root, sub, concurrency=2)
    assert result.answer == "8"
    assert time.perf_counter() - started >= 4 * 0.2 * 0.9


def test_rlm_query_runs_a_nested_rlm_with_its_own_repl(run: Runner) -> None:
    root = scripted(
        repl("r = rlm_query('find the code', context=context)\nFINAL(r)"),
        repl("import re\nFINAL(re.search(r'code is (\\S+)', context).group(1))"),
    )
    result, rec = run(root, scripted(), max_depth=1)
    assert result.answer == "ZETA-42"
    starts = rec.of(RunStarted)
    assert [s.depth for s in starts] == [0, 1]
    assert starts[1].parent_run_id == starts[0].run_id
    assert result.usage.by_depth[1].calls == 1  # the nested run's root call
    nested = [c for c in rec.of(SubCall) if c.kind == "rlm"]
    assert nested[0].child_run_id == starts[1].run_id


def test_rlm_query_at_the_depth_limit_degrades_to_llm_query(run: Runner) -> None:
    root = scripted(repl("r = rlm_query('Q: what?', context='short ctx')\nFINAL(r)"))
    sub = scripted(rules={"Q: what?": "plain answer"})
    result, rec = run(root, sub, max_depth=0)
    assert result.answer == "plain answer"
    assert not [e for e in rec.of(RunStarted) if e.depth > 0]
    assert "short ctx" in sub.calls[0][-1].content


def test_max_iterations_ends_with_a_last_chance_answer(run: Runner) -> None:
    root = scripted(
        repl("print('nothing here')"), repl("print('still nothing')"), 'FINAL("best guess")'
    )
    result, _ = run(root, max_iterations=2)
    assert result.status == "max_iterations"
    assert result.answer == "best guess"
    assert result.iterations == 2


def test_token_budget_stops_the_tree(run: Runner) -> None:
    root = scripted(*[repl("print('x' * 400)")] * 10)
    result, _ = run(root, max_tokens=600)
    assert result.status == "budget_exceeded"
    assert "max_tokens" in (result.error or "")
    assert result.iterations < 10


def test_sub_call_cap_ends_the_run_even_if_code_catches_it(run: Runner) -> None:
    code = (
        "try:\n    llm_query('a'); llm_query('b')\nexcept Exception as e:\n    print('caught', e)"
    )
    root = scripted(repl(code), repl("FINAL('never')"))
    result, _ = run(root, scripted("r1", "r2"), max_sub_calls=1)
    assert result.status == "budget_exceeded"
    assert "max_sub_calls" in (result.error or "")
    assert result.sub_calls == 1


def test_zero_sub_calls_turns_them_off_for_every_model_and_the_prompt(run: Runner) -> None:
    code = (
        "for call in (lambda: llm_query('a'), lambda: llm_query('b', model='root'),\n"
        "             lambda: llm_query_batched(['c']), lambda: rlm_query('d')):\n"
        "    try:\n        call()\n    except Exception as e:\n"
        "        print(type(e).__name__, e)"
    )
    root = scripted(repl(code), repl("FINAL('done')"))
    sub = scripted("never")
    result, rec = run(root, sub, max_sub_calls=0)
    assert result.status == "completed"
    assert result.answer == "done"
    assert result.sub_calls == 0
    assert sub.remaining == 1
    output = rec.of(CellExecuted)[0].output
    assert output.count("SubCallsDisabled sub-calls are off") == 4
    system = root.calls[0][0].content
    assert "llm_query" not in system
    assert "rlm_query" not in system
    assert "no sub-models in this run" in system
    assert rec.of(SubCall) == []


def test_a_cell_that_prints_nothing_is_named_in_the_next_turn(run: Runner) -> None:
    root = scripted(repl("hits = [1 for _ in []]"), repl("FINAL('x')"))
    result, _ = run(root)
    assert result.answer == "x"
    turn = root.calls[1][-1].content
    assert turn.startswith("Output:\n(nothing printed)")
    assert "Question: What is the vault code?" in turn


SMALL = ModelProfile(context_window=32_000, small=True)
# The tests of one mechanism turn off the question's routing (an extra root call) and the
# word counts (which change the first turn); tests/test_turns.py covers those.
ONE_AT_A_TIME = Assists(route=False, rank_keys=False, verify=False)


class SmallRLM(Protocol):
    def __call__(
        self, root: ScriptedModel, assists: Assists = ONE_AT_A_TIME, **limits: Any
    ) -> RLM: ...


@pytest.fixture
def small_rlm(make_rlm: MakeRLM) -> SmallRLM:
    """An RLM whose root is a small model, with the assists of one mechanism at a time."""

    def make(root: ScriptedModel, assists: Assists = ONE_AT_A_TIME, **limits: Any) -> RLM:
        return make_rlm(model=root, limits=Limits(**limits), assists=assists)

    return make


def test_a_small_model_does_not_see_its_empty_searches_and_is_given_a_shorter_key(
    make_rlm: MakeRLM,
) -> None:
    search = repl(
        "import re\nfor m in re.finditer(r'the vault code for the door', context):\n    print(m)"
    )
    root = ScriptedModel(
        [search, search, repl("print([])"), repl("FINAL('x')")],
        profile=ModelProfile(context_window=32_000, small=True),
    )
    recorder = ListRecorder()
    rlm = make_rlm(model=root, limits=Limits(), recorder=recorder, assists=ONE_AT_A_TIME)
    assert rlm.run("What is the code of the Zeta-9 vault?", CONTEXT).answer == "x"
    first_turn = root.calls[0][-1].content
    # The reply that found nothing is dropped; the first turn is repeated with a note.
    assert [m.role for m in root.calls[1]] == ["system", "user"]
    assert root.calls[1][-1].content.startswith(first_turn + "\n\nYour code printed nothing")
    assert "Do not answer yet, and do not search the same way again" in root.calls[1][-1].content
    assert 'e.g. r"Zeta-9"' in root.calls[1][-1].content
    assert [m.role for m in root.calls[2]] == ["system", "user"]
    # The repeated search is answered by sampling, not by the same greedy prompt.
    assert (root.options[2].get("temperature") or 0) > 0
    assert "seed" in root.options[2]
    # Once something is printed, even an empty list, the conversation grows as usual, and the
    # note is gone: the kept reply answers the first turn as it was.
    assert [m.role for m in root.calls[3]] == ["system", "user", "assistant", "user"]
    assert root.calls[3][1].content == first_turn
    assert root.calls[3][-1].content.startswith("Output:\n[]\n")
    # The trace keeps every reply and every cell.
    assert len(recorder.of(RootReply)) == 4
    assert len(recorder.of(CellExecuted)) == 4


def test_a_small_model_repeating_code_with_the_same_output_is_told_so(small_rlm: SmallRLM) -> None:
    search = repl("import re\nprint(re.search(r'code is (\\S+)', context).group(0))")
    step = repl("n = globals().get('n', 0) + 1\nprint(n)")
    root = ScriptedModel(
        [search, search, step, step, repl("FINAL('ZETA-42')")],
        profile=ModelProfile(context_window=32_000, small=True),
    )
    assert small_rlm(root).run("What is the vault code?", CONTEXT).answer == "ZETA-42"
    shown = root.calls[1][-1].content
    assert shown.startswith("Output:\ncode is ZETA-42")
    # The repeat is dropped and the turn with its output says it did not change.
    assert [m.role for m in root.calls[2]] == ["system", "user", "assistant", "user"]
    assert root.calls[2][-1].content == (
        shown + "\n\nYou ran that same code again, and it printed the same output, shown above. "
        "If it shows the answer, reply FINAL with the answer copied from it. "
        "Otherwise write different code."
    )
    # The same code printing something new is an ordinary turn.
    assert root.calls[4][-1].content.startswith("Output:\n2")
    assert len(root.calls[4]) == 8


def test_out_of_turns_after_empty_searches_asks_in_the_same_user_turn(small_rlm: SmallRLM) -> None:
    search = repl("import re\nprint(*re.findall(r'no such words', context))")
    root = ScriptedModel(
        [search, search, 'FINAL("not found")'],
        profile=ModelProfile(context_window=32_000, small=True),
    )
    result = small_rlm(root, max_iterations=2).run("What is the code of the Zeta-9 vault?", CONTEXT)
    assert (result.status, result.answer) == ("max_iterations", "not found")
    last = root.calls[2]
    assert [m.role for m in last] == ["system", "user"]
    assert "Your code printed nothing" in last[-1].content
    assert last[-1].content.endswith("Question: What is the code of the Zeta-9 vault?")


def test_a_small_model_is_told_when_most_of_an_output_was_cut(small_rlm: SmallRLM) -> None:
    root = ScriptedModel(
        [repl("print('line ' * 5000)"), repl("print('short')"), repl("FINAL('x')")],
        profile=ModelProfile(context_window=32_000, small=True),
    )
    assert small_rlm(root).run("What is the vault code?", CONTEXT).answer == "x"
    cut_turn, plain_turn = root.calls[1][-1].content, root.calls[2][-1].content
    assert "chars not shown, of 25,001 printed" in cut_turn
    assert "(Most of this output was cut. If it does not show the answer: search " in cut_turn
    assert "Most of this output was cut" not in plain_turn


@pytest.mark.parametrize("final", ['FINAL("BLUE-77")', repl("FINAL('BLUE-77')")])
def test_a_small_model_copying_the_worked_example_answer_is_told_so(
    final: str, small_rlm: SmallRLM
) -> None:
    root = ScriptedModel(
        [repl("print(context[:10])"), final, repl("FINAL('ZETA-42')")],
        profile=ModelProfile(context_window=32_000, small=True),
    )
    result = small_rlm(root).run("What code?", CONTEXT)
    assert (result.status, result.answer, result.iterations) == ("completed", "ZETA-42", 3)
    # The copied answer is taken back; the turn with the output is sent again with a note.
    assert [m.role for m in root.calls[2]] == ["system", "user", "assistant", "user"]
    turn = root.calls[2][-1].content
    assert turn.startswith(root.calls[1][-1].content + "\n\nThat is the answer of the worked")
    assert "If the output above does not show the answer: search with fewer words" in turn


def test_the_worked_example_answer_stands_when_an_output_showed_it(small_rlm: SmallRLM) -> None:
    root = ScriptedModel(
        [repl("print(context)"), 'FINAL("BLUE-77")'],
        profile=ModelProfile(context_window=32_000, small=True),
    )
    assert small_rlm(root).run("What code?", "the door code is BLUE-77").answer == "BLUE-77"


def test_search_keys_prefer_marked_words_then_names_then_long_words() -> None:
    assert search_keys("What is the special magic number for fierce-eyelash?") == [
        "fierce-eyelash",
        "special",
    ]
    assert search_keys("What is Prince Andrei's secret vault code?") == ["Prince", "Andrei"]
    assert search_keys("Which user reported error E1234 on 2023-05-01?") == ["2023-05-01", "E1234"]
    assert search_keys("What is it?") == []


def test_negative_sub_call_limit_is_refused() -> None:
    with pytest.raises(ConfigError, match="max_sub_calls must be 0"):
        Limits(max_sub_calls=-1)


def test_timeout_ends_the_run_with_a_status(run: Runner) -> None:
    root = scripted(repl("import time\ntime.sleep(5)"))
    started = time.perf_counter()
    result, rec = run(root, timeout_s=0.5)
    assert result.status == "timeout"
    assert time.perf_counter() - started < 3
    assert isinstance(rec.events[-1], RunFinished)


def test_a_failing_model_ends_with_status_error_and_keeps_events(run: Runner) -> None:
    root = scripted(repl("print('step one')"))  # then the script runs dry
    result, rec = run(root)
    assert result.status == "error"
    assert "no response left" in (result.error or "")
    assert result.answer == "step one"  # the best partial answer: the last output
    assert isinstance(rec.events[-1], RunFinished)
    assert len(rec.of(CellExecuted)) == 1


def test_list_context_is_described_by_parts(run: Runner) -> None:
    root = scripted(repl("FINAL(len(context))"))
    result, _ = run(root, context=["doc one", "doc two", "doc three"])
    assert result.answer == "3"
    assert "a list of 3 str" in root.calls[0][0].content


def test_small_models_get_the_short_prompt_with_a_worked_example(small_rlm: SmallRLM) -> None:
    from rlmx.providers.base import ModelProfile

    small = ScriptedModel(
        [repl("FINAL('x')")], profile=ModelProfile(context_window=32_768, small=True)
    )
    small_rlm(small).run("What is the vault code?", CONTEXT)
    system = small.calls[0][0].content
    assert "re.finditer" in system
    assert "llm_map(instruction, items, labels=None)" in system
    assert len(system) < 2_000


# llm_map -------------------------------------------------------------------------------------

ANIMALS = "the cat sat\na dog ran\nthe cat ran\na bird flew"


def _animal_labeller() -> ScriptedModel:
    return ScriptedModel(
        rules=[
            Rule("Write one new item", "a made-up item"),  # a primer: one per label
            Rule("cat", "animal: cat"),
            Rule("dog", "dog"),
            Rule("bird", "Bird."),
        ]
    )


def _item_calls(sub: ScriptedModel) -> list[tuple[list[Message], CallOptions]]:
    return [
        (c, o)
        for c, o in zip(sub.calls, sub.options, strict=True)
        if "Write one" not in c[-1].content and c[-1].content not in CONTENT_FREE
    ]


def test_llm_map_asks_each_item_alone_and_returns_the_answers_in_order(run: Runner) -> None:
    sub = _animal_labeller()
    root = scripted(
        repl(
            "kinds = llm_map('Which animal?', context.splitlines(), labels=['cat', 'dog', 'bird'])"
            "\nprint(kinds)"
        ),
        repl("FINAL(kinds.count('cat'))"),
    )
    result, rec = run(root, sub, context=ANIMALS)
    assert (result.status, result.answer) == ("completed", "2")
    assert "['cat', 'dog', 'cat', 'bird']" in root.calls[1][-1].content
    # a primer per label, one probe for first-token logprobs (a script has none), an item each
    assert result.sub_calls == 3 + 1 + 4
    assert [c.kind for c in rec.of(SubCall)] == ["map"] * 8
    # The primers ask for an item of each label, in the style of the real items.
    primers = [c for c in sub.calls if "Write one new item" in c[-1].content]
    assert sorted(p[-1].content.rsplit(": ", 1)[-1] for p in primers) == ["bird", "cat", "dog"]
    assert "the cat sat" in primers[0][-1].content
    # Every item call shares one prefix (a prompt cache reads it once): the instruction, and
    # the primers as worked examples; then the item alone.
    items = _item_calls(sub)
    assert len(items) == 4
    prefixes = {tuple(m.content for m in c[:-1]) for c, _ in items}
    assert len(prefixes) == 1
    prefix = prefixes.pop()
    assert prefix[0] == "Which animal?\nAnswer with exactly one of: cat; dog; bird."
    assert prefix[1:] == (
        "a made-up item",
        "cat",
        "a made-up item",
        "dog",
        "a made-up item",
        "bird",
    )
    assert sorted(c[-1].content for c, _ in items) == sorted(ANIMALS.splitlines())
    assert all(o["choices"] == ["cat", "dog", "bird"] for _, o in items)


def test_llm_map_with_examples_uses_them_instead_of_primers(run: Runner) -> None:
    sub = _animal_labeller()
    root = scripted(
        repl(
            "print(llm_map('Which animal?', ['a cat'], labels=['cat', 'dog'], "
            "examples=[('a puppy', 'dog')]))"
        ),
        repl("FINAL('x')"),
    )
    result, _ = run(root, sub)
    assert "['cat']" in root.calls[1][-1].content
    assert result.sub_calls == 1 + 1  # the logprobs probe, the item
    assert [m.content for m in sub.calls[0][1:3]] == ["a puppy", "dog"]


def test_llm_map_divides_out_the_sub_models_lean_read_from_content_free_items(run: Runner) -> None:
    lean = {"cat": math.log(0.9), "dog": math.log(0.1)}
    sub = ScriptedModel(
        rules=[
            Rule("barking", "cat", top_logprobs=(("cat", math.log(0.6)), ("Dog", math.log(0.4)))),
            Rule("purring", "cat", top_logprobs=(("cat", math.log(0.99)), ("dog", -4.6))),
            Rule("", "cat", top_logprobs=tuple(lean.items())),  # "N/A", "", "[MASK]"
        ]
    )
    root = scripted(
        repl(
            "print(llm_map('Which animal?', ['a barking animal', 'a purring animal'], "
            "labels=['cat', 'dog'], examples=[('a puppy', 'dog')]))"
        ),
        repl("FINAL('x')"),
    )
    result, _ = run(root, sub)
    # 0.4 / 0.1 beats 0.6 / 0.9: the item raised "dog" most above the model's lean.
    assert "['dog', 'cat']" in root.calls[1][-1].content
    assert result.sub_calls == len(CONTENT_FREE) + 2
    assert [c[-1].content for c in sub.calls[:3]] == list(CONTENT_FREE)
    assert all(o["max_tokens"] == 1 and o["top_logprobs"] == 20 for o in sub.options)


def test_llm_map_keeps_the_models_own_choices_when_calibration_would_make_them_all_one(
    run: Runner,
) -> None:
    # An item that says nothing leans hard to "no"; divided by that lean, every item would be
    # "yes", although the model itself answered three "no" and three "yes".
    lean = (("no", math.log(0.97)), ("yes", math.log(0.03)))
    sure_no = (("no", math.log(0.8)), ("yes", math.log(0.2)))
    sure_yes = (("yes", math.log(0.9)), ("no", math.log(0.1)))
    sub = ScriptedModel(
        rules=[
            Rule("alibi", "no", top_logprobs=sure_no),
            Rule("seen", "yes", top_logprobs=sure_yes),
            Rule("", "no", top_logprobs=lean),  # "N/A", "", "[MASK]"
        ]
    )
    items = ["alibi 1", "seen 1", "alibi 2", "seen 2", "alibi 3", "seen 3"]
    root = scripted(
        repl(f"print(llm_map('Was this person seen?', {items!r}, labels=['yes', 'no']))"),
        repl("FINAL('x')"),
    )
    run(root, sub)
    assert "['no', 'yes', 'no', 'yes', 'no', 'yes']" in root.calls[1][-1].content


def test_llm_map_writes_no_primers_when_the_backend_reports_logprobs(run: Runner) -> None:
    even = (("cat", math.log(0.5)), ("dog", math.log(0.5)))
    sub = ScriptedModel(
        rules=[
            Rule("puppy", "dog", top_logprobs=(("dog", -0.1), ("cat", -2.4))),
            Rule("", "cat", top_logprobs=even),
        ]
    )
    root = scripted(
        repl("print(llm_map('Which animal?', ['a puppy'], labels=['cat', 'dog']))"),
        repl("FINAL('x')"),
    )
    result, _ = run(root, sub)
    assert "['dog']" in root.calls[1][-1].content
    assert result.sub_calls == len(CONTENT_FREE) + 1
    assert not any("Write one new item" in c[-1].content for c in sub.calls)


class SettlingModel(ScriptedModel):
    """A scripted model that says when every call it started has ended, answered or
    cancelled."""

    def __init__(self, rules: list[Rule], latency_s: float) -> None:
        super().__init__(rules=rules, latency_s=latency_s)
        self.started = 0
        self.active = 0
        self.settled = asyncio.Event()

    async def complete(
        self, messages: Sequence[Message], **options: Unpack[CallOptions]
    ) -> Completion:
        self.started += 1
        self.active += 1
        self.settled.clear()
        try:
            return await super().complete(messages, **options)
        finally:
            self.active -= 1
            if self.active == 0:
                self.settled.set()


async def test_calls_in_flight_when_the_run_times_out_are_cancelled(make_rlm: MakeRLM) -> None:
    sub = SettlingModel(rules=[Rule("", "cat")], latency_s=1.5)
    root = scripted(
        repl("llm_map('Which animal?', ['a cat'] * 20, labels=['cat', 'dog'])"),
        repl("FINAL('x')"),
    )
    events = ListRecorder()
    rlm = make_rlm(
        model=root,
        sub_model=sub,
        limits=Limits(timeout_s=1.0, concurrency=4),
        recorder=events,
    )
    # The event loop outlives the run, as in a server or a benchmark of many runs.
    result = await rlm.arun("Which animals?", "a cat")
    assert result.status == "timeout"
    if sub.started:  # a slow worker start may leave the map no time to begin
        # Until the calls in flight have ended; a call that answered is recorded as it returns.
        await asyncio.wait_for(sub.settled.wait(), timeout=10)
    await asyncio.sleep(0)
    assert sub.active == 0
    kinds = [type(e).__name__ for e in events.events]
    # Nothing after the run's end: the calls in flight were cancelled, not recorded.
    assert kinds[-1] == "RunFinished"
    assert "SubCall" not in kinds


def test_llm_map_retries_an_unreadable_answer_by_sampling_then_gives_none(run: Runner) -> None:
    sub = ScriptedModel(
        rules=[Rule("Write one", "an item"), Rule("cat", "cat"), Rule("fish", "no idea")]
    )
    root = scripted(
        repl("print(llm_map('Which animal?', ['a cat', 'a fish'], labels=['cat', 'dog']))"),
        repl("FINAL('done')"),
    )
    result, _ = run(root, sub)
    assert "['cat', None]" in root.calls[1][-1].content
    # two primers, the logprobs probe; the unreadable item was asked twice
    assert result.sub_calls == 2 + 1 + 3
    retry = [o for c, o in _item_calls(sub) if c[-1].content == "a fish"]
    assert "temperature" not in retry[0]
    assert (retry[1].get("temperature") or 0) > 0
    assert isinstance(retry[1]["seed"], int)


def test_llm_map_without_labels_returns_free_answers(run: Runner) -> None:
    sub = ScriptedModel(rules=[Rule("cat", " a small cat \n")])
    root = scripted(repl("FINAL(llm_map('Describe it', ['the cat'])[0])"))
    result, _ = run(root, sub)
    assert result.answer == "a small cat"
    assert sub.calls[0][0].content == "Describe it\nAnswer briefly, in a few words."


def test_llm_map_larger_than_the_sub_call_budget_is_refused_before_any_call(run: Runner) -> None:
    sub = _animal_labeller()
    root = scripted(
        repl("llm_map('Which animal?', context.splitlines(), labels=['cat', 'dog'])"),
        repl("FINAL('stopped')"),
    )
    result, _ = run(root, sub, context=ANIMALS, max_sub_calls=5)
    assert sub.calls == []
    assert "llm_map of 4 items, but 5 sub-calls left" in root.calls[1][-1].content
    assert result.answer == "stopped"


def test_llm_map_refuses_one_text_and_bad_labels(run: Runner) -> None:
    root = scripted(
        repl("llm_map('Which?', context)"),
        repl("llm_map('Which?', ['a'], labels='cat')"),
        repl("FINAL('x')"),
    )
    run(root, _animal_labeller())
    assert "not one text: split it first" in root.calls[1][-1].content
    assert "labels must be a list of texts" in root.calls[2][-1].content


def test_llm_map_of_no_items_says_how_to_fix_it(run: Runner) -> None:
    root = scripted(repl("llm_map('Which?', [x for x in [] if x])"), repl("FINAL('x')"))
    result, _ = run(root, _animal_labeller())
    assert "llm_map got no items: print how you split the context" in root.calls[1][-1].content
    assert result.sub_calls == 0


@pytest.mark.parametrize(
    "reply", [repl("Answer: ZETA-42 is the code"), "Answer: ZETA-42 is the code"]
)
def test_an_answer_line_in_the_asked_form_finishes_the_run(reply: str, run: Runner) -> None:
    root = scripted(repl("print(context)"), reply)
    result, _ = run(root)
    assert (result.status, result.answer) == ("completed", "Answer: ZETA-42 is the code")


def test_a_small_model_inventing_the_output_of_its_code_is_cut_there(small_rlm: SmallRLM) -> None:
    reply = repl("print(context.count('line'))") + "\nOutput: 7\n```repl\nFINAL('7 lines')\n```"
    root = ScriptedModel(
        [reply, repl("FINAL(context.count('line'))")],
        profile=ModelProfile(context_window=32_000, small=True),
    )
    result = small_rlm(root).run("How many lines?", CONTEXT)
    assert result.answer == "2"  # the invented answer never ran
    assert root.calls[1][2].content == repl("print(context.count('line'))")
    assert root.calls[1][-1].content.startswith("Output:\n2\n")


def test_a_repeated_greedy_sub_call_is_answered_from_the_run_memo(run: Runner) -> None:
    sub = ScriptedModel(["first reply", "second reply"])
    root = scripted(
        repl("a = llm_query('same prompt')\nb = llm_query('same prompt')\nprint(a, '|', b)"),
        repl("FINAL('x')"),
    )
    result, rec = run(root, sub)
    assert "first reply | first reply" in root.calls[1][-1].content
    assert len(sub.calls) == 1
    assert result.usage.sub.calls == 1
    calls = rec.of(SubCall)
    assert [c.cached for c in calls] == [False, True]
    assert calls[1].usage == Usage(cache_hits=1).to_dict()  # no tokens, one hit
    assert result.usage.sub.cache_hits == 1
