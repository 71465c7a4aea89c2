"""The small-model turn policy (rlmx.engine.turns), one mechanism at a time, on scripted models."""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest

from rlmx import RLM, Assists, Limits
from rlmx.context import ContextInput
from rlmx.engine.search_keys import KeyCount, describe_keys, rank_keys, rarest_unused
from rlmx.engine.semantic_map import (
    calibrated_label,
    label_probabilities,
    mean_distribution,
    read_label,
)
from rlmx.providers.base import ModelProfile
from rlmx.providers.scripted import Rule, ScriptedModel
from rlmx.sandbox.inprocess import InProcessRepl
from rlmx.trajectory.events import SubCall

from .conftest import ListRecorder, repl, small_scripted

SMALL = ModelProfile(context_window=32_000, small=True)
LOG = "ok line\nok line\nthe vault code is ZETA-42\nok line\nerror line\n"


def small_run(
    replies: list[str],
    question: str,
    context: ContextInput = LOG,
    assists: Assists | None = None,
    sub: ScriptedModel | None = None,
    **kw: int,
) -> tuple[object, ScriptedModel, ListRecorder]:
    root = ScriptedModel(replies, profile=SMALL)
    events = ListRecorder()
    rlm = RLM(
        model=root,
        sub_model=sub,
        limits=Limits(**kw),  # type: ignore[arg-type]
        sandbox=InProcessRepl,
        recorder=events,
        assists=assists or Assists(),
    )
    return rlm.run(question, context), root, events


LIST = "Reviews, one a line.\nR1 || fine\nR2 || broken\nR3 || fine\nR4 || late\n"


def test_a_question_of_meaning_is_routed_and_its_drafted_map_run_first() -> None:
    plan = (
        '{"marker": "||", "instruction": "Is this review happy?", "labels": ["yes", "no", "other"]}'
    )
    sub = ScriptedModel(
        rules=[Rule("Write one", "R9 || a made-up review"), Rule("fine", "yes"), Rule("||", "no")]
    )
    result, root, events = small_run(
        ["classify", plan, "FINAL(no)", "FINAL(yes)"],
        "Are more of these reviews happy or unhappy?",
        context=LIST,
        sub=sub,
    )
    assert result.answer == "yes"  # type: ignore[attr-defined]
    routing, planning, first, checked = root.calls
    # Before it is final, an answer naming labels is set beside the printed counts, once.
    assert checked[-1].content.endswith(
        "compare your answer 'no' with the counts printed above:\nno: 2\nyes: 2\n"
        "So no (2) is as common as yes (2).\nReply FINAL with the answer these numbers support."
    )
    assert routing[-1].content == "Question: Are more of these reviews happy or unhappy?"
    assert root.options[0]["choices"] == ["lookup", "count", "classify", "explain"]
    # The plan is drafted from the head and the middle of the data, as JSON.
    assert "R1 || fine" in planning[-1].content
    assert "--- middle of the data ---\nR2 || broken\nR3 || fine" in planning[-1].content
    assert "json_schema" in root.options[1]
    # The system prompt shows the worked example of a question of meaning ...
    assert "quality or other?" in first[0].content
    # ... the first turn describes the plan, checked against the data ...
    assert "the items are the 4 lines that contain '||'" in first[1].content
    # ... and the engine ran it as the model's first reply, with the data's own description
    # of its items before the instruction.
    assert first[2].role == "assistant"
    assert "items = [line for line in context.splitlines() if '||' in line]" in first[2].content
    assert (
        "llm_map('Reviews, one a line.\\nIs this review happy?', items, "
        "labels=['yes', 'no', 'other'])" in first[2].content
    )
    assert "4 Counter({'yes': 2, 'no': 2})" in first[3].content
    made = [e.kind for e in events.events if isinstance(e, SubCall)]
    assert made[:2] == ["route", "plan"]
    assert made.count("map") == 3 + 1 + 4  # a primer per label, the logprobs probe, the items


def test_an_answer_about_labels_is_set_beside_the_counts_it_names_once() -> None:
    counted = repl(
        "from collections import Counter\n"
        "print(Counter({'quality': 161, 'delivery': 131, 'price': 96, 'human being': 5}))"
    )
    only = Assists(plan=False, rank_keys=False)
    result, root, _ = small_run(
        ["classify", counted, 'FINAL("price is more common than delivery")', "FINAL(delivery)"],
        "Are more of the reviews about delivery or about price?",
        assists=only,
    )
    assert result.answer == "delivery"  # type: ignore[attr-defined]  # the second answer stands
    assert "\nprice: 96\ndelivery: 131\nSo price (96) is less common than delivery (131)." in (
        root.calls[3][-1].content
    )
    # "being" names no label: taken at once.
    _, root, _ = small_run(["classify", counted, "FINAL(being)"], "Most common kind?", assists=only)
    assert len(root.calls) == 3
    # One label named: shown beside the largest count.
    _, root, _ = small_run(
        ["classify", counted, "FINAL('human being')", "FINAL(quality)"],
        "Which kind of review is most common?",
        assists=only,
    )
    assert "\nhuman being: 5\nquality: 161\n" in root.calls[3][-1].content


def test_a_plan_whose_marker_selects_nothing_falls_back_to_every_line() -> None:
    plan = '{"marker": "@@", "instruction": "Happy?", "labels": ["yes", "no"]}'
    sub = ScriptedModel(rules=[Rule("", "yes")])
    _, root, _ = small_run(
        ["classify", plan, repl("FINAL(len(context))")], "How many?", LIST, sub=sub
    )
    assert "the items are the 5 non-empty lines" in root.calls[2][1].content
    assert "if line.strip()]" in root.calls[2][2].content


def test_an_unusable_plan_leaves_the_plain_first_turn() -> None:
    _, root, _ = small_run(["classify", "no plan", repl("FINAL(len(context))")], "How many?", LIST)
    assert "splits `context` into its items" in root.calls[2][-1].content


def test_an_unreadable_route_falls_back_to_the_lookup_example() -> None:
    _, root, _ = small_run(["no idea", repl("FINAL(len(context))")], "What is the code?")
    assert 're.finditer(r"lighthouse"' in root.calls[1][0].content


def test_the_first_turn_names_the_question_words_rarest_first() -> None:
    _, root, _ = small_run(
        [repl("FINAL('x')")],
        "Which line holds the vault code, Kutuzov's or another?",
        assists=Assists(route=False),
    )
    turn = root.calls[0][-1].content
    assert "(rarest first): vault 1, code 1, line 4." in turn
    assert "Not in `context` at all: Kutuzov, another, holds." in turn


def test_rank_keys_counts_case_blind_from_the_start_of_words_within_a_time_budget() -> None:
    text = "Numbers: number NUMBER renumber. Vault."
    import re

    keys = rank_keys(
        "What number opens the vault of Prince Zed?",
        lambda pattern: len(re.findall(pattern, text, re.I)),
    )
    assert keys == [
        KeyCount("vault", 1),
        KeyCount("number", 3),
        KeyCount("Prince", 0),
        KeyCount("Zed", 0),
    ] or keys[:2] == [KeyCount("vault", 1), KeyCount("number", 3)]
    assert rarest_unused(keys, ['print(re.findall(r"vault", context))']) == KeyCount("number", 3)
    ticks = iter(range(100))
    few = rank_keys("alpha beta gamma delta", lambda p: 1, budget_s=2.5, clock=lambda: next(ticks))
    assert len(few) == 2
    assert describe_keys([KeyCount("a", 0)]) == "Not in `context` at all: a."


def test_an_empty_search_proposes_the_rarest_unused_word_with_its_count() -> None:
    search = repl("import re\nprint(*re.findall(r'vault code of the door', context))")
    _, root, _ = small_run(
        [search, repl("FINAL('x')")],
        "What is the vault code of the door?",
        assists=Assists(route=False),
    )
    assert 'search for r"door"' not in root.calls[1][-1].content  # "door" never occurs
    assert "Your code printed nothing" in root.calls[1][-1].content


def test_a_search_that_prints_only_the_question_words_is_taken_back() -> None:
    echo = repl("import re\nprint(re.search(r'vault code', context).group())")
    around = repl("import re\nm = re.search(r'vault code', context)\nprint(context[m.start():])")
    result, root, _ = small_run(
        [echo, 'FINAL("vault code")', around, "FINAL(ZETA-42)"],
        "What is the vault code?",
        assists=Assists(route=False, rank_keys=False),
    )
    assert result.answer == "ZETA-42"  # type: ignore[attr-defined]
    note = root.calls[1][-1].content
    assert "printed only words of the question" in note
    # The echo reply is taken back: the model never sees "vault code" as an output.
    assert [m.role for m in root.calls[1]] == ["system", "user"]
    # Its answer "vault code" was then typed with no output showing it: refused as well.
    assert "No output so far shows 'vault code'" in root.calls[2][-1].content


def test_a_printed_count_is_not_an_echo() -> None:
    count = repl("print(len(re.findall(r'ok line', context)))")
    result, _, _ = small_run(
        [repl("import re"), count, "FINAL(3)"],
        "How many times does ok line occur?",
        assists=Assists(route=False, rank_keys=False),
    )
    assert result.answer == "3"  # type: ignore[attr-defined]


def test_a_repeated_reply_is_sampled_and_the_third_repeat_ends_the_run() -> None:
    same = repl("print('still looking')")
    result, root, _ = small_run(
        [same, same, same, 'FINAL("not found")'],
        "What is the code?",
        assists=Assists(route=False, rank_keys=False),
    )
    assert (result.status, result.answer) == ("stalled", "not found")  # type: ignore[attr-defined]
    assert "temperature" not in root.options[1] or root.options[0] == {}
    assert root.options[2]["temperature"] > 0
    assert root.options[2]["seed"] == 1_003
    assert len(root.calls) == 4  # three replies and the last-chance call


def test_an_answer_typed_after_an_error_must_have_been_shown() -> None:
    result, root, _ = small_run(
        [
            repl("print(undefined_name)"),
            'FINAL("ZETA-99")',
            repl("print(context)"),
            "FINAL(ZETA-42)",
        ],
        "What is the vault code?",
        assists=Assists(route=False, rank_keys=False),
    )
    assert result.answer == "ZETA-42"  # type: ignore[attr-defined]
    refused = root.calls[2][-1].content
    assert "No output so far shows 'ZETA-99'" in refused
    assert [m.role for m in root.calls[2]] == ["system", "user", "assistant", "user"]


def test_an_answer_typed_after_a_cut_output_must_be_a_whole_word_of_what_was_shown() -> None:
    book = "In 1805 the army marched. " * 400 + "The vault code is 7. " + "More text. " * 400
    result, root, _ = small_run(
        [repl("print(context)"), 'FINAL("5")', repl("print(context[10400:10440])"), "FINAL(7)"],
        "What is the vault code?",
        context=book,
        assists=Assists(route=False, rank_keys=False),
        max_output_chars=2_000,
    )
    assert result.answer == "7"  # type: ignore[attr-defined]
    assert "No output so far shows '5'" in root.calls[2][-1].content  # "1805" is no "5"


def test_a_lookup_answer_of_question_words_after_a_cut_output_is_refused() -> None:
    book = "Count Rostov laughed. " * 400 + "The cellar opens with 4-4-2. " + "Rain. " * 400
    result, root, _ = small_run(
        [
            repl("print(context)"),
            'FINAL("Count")',
            repl("print(context[8800:8830])"),
            "FINAL(4-4-2)",
        ],
        "Which combination opens Count Rostov's cellar?",
        context=book,
        assists=Assists(route=False),
        max_output_chars=2_000,
    )
    assert result.answer == "4-4-2"  # type: ignore[attr-defined]
    note = root.calls[2][-1].content
    assert "'Count' is a word of the question, not its answer" in note
    assert 'search for r"cellar"' in note  # the rarest word of the context not tried yet


def test_a_computed_answer_after_an_error_is_not_held_to_the_outputs() -> None:
    result, _, _ = small_run(
        [repl("print(undefined_name)"), repl("FINAL(context.count('ok'))")],
        "How many ok lines?",
        assists=Assists(route=False, rank_keys=False, verify=False),
    )
    assert result.answer == "3"  # type: ignore[attr-defined]


def test_a_count_is_checked_another_way_before_it_is_final() -> None:
    result, root, _ = small_run(
        [
            "count",
            repl("FINAL(context.count('ok'))"),
            repl("import re\nFINAL(len(re.findall(r'^ok', context, re.M)))"),
        ],
        "How many ok lines are there?",
    )
    assert (result.status, result.answer) == ("completed", "3")  # type: ignore[attr-defined]
    assert "Before you finish, check '3' another way" in root.calls[2][-1].content


def test_a_count_of_zero_is_checked_against_the_datas_own_lines() -> None:
    again = repl("FINAL(context.count('error'))")
    result, root, _ = small_run(
        ["count", repl("FINAL(context.count('fail'))"), again, again],
        "How many error lines?",
        assists=Assists(rank_keys=False),
    )
    assert result.answer == "1"  # type: ignore[attr-defined]
    assert "A count of 0 usually means the pattern matched no line" in root.calls[2][-1].content
    # The same answer typed again with no code run is no check: asked once more.
    result, root, _ = small_run(
        ["count", repl("print(context.count('fail'))"), "FINAL(0)", "FINAL('0')", 'FINAL("0")'],
        "How many error lines?",
        assists=Assists(rank_keys=False),
    )
    assert (result.status, result.answer) == ("completed", "0")  # type: ignore[attr-defined]
    assert len(root.calls) == 5
    assert "A count of 0 usually means" in root.calls[4][-1].content


def test_answers_that_disagree_get_one_more_turn_then_the_last_stands() -> None:
    result, root, _ = small_run(
        [
            "count",
            repl("FINAL(context.count('line'))"),
            repl("FINAL(context.count('ok line'))"),
            repl("FINAL(context.count('line'))"),
        ],
        "How many lines are there?",
    )
    assert result.answer == "4"  # type: ignore[attr-defined]
    assert "Your check gave '3', which differs" in root.calls[3][-1].content


def test_capable_models_get_no_assists() -> None:
    root = ScriptedModel([repl("print(undefined)"), 'FINAL("made up")'])
    result = RLM(model=root, sandbox=InProcessRepl).run("How many lines?", LOG)
    assert result.answer == "made up"
    assert len(root.calls) == 2


def test_read_label_is_lenient_but_never_guesses() -> None:
    labels = ["human being", "location", "numeric value", "entity"]
    assert read_label("Human being.", labels) == "human being"
    assert read_label("Label: location", labels) == "location"
    assert read_label("The answer is numeric value", labels) == "numeric value"
    assert read_label("human", labels) == "human being"
    assert read_label("location or entity", labels) is None
    assert read_label("", labels) is None
    assert read_label("a date", labels) is None


def test_label_probabilities_read_the_first_token_of_each_label() -> None:
    labels = ["human being", "location", "how-to"]
    top = [(" human", math.log(0.3)), ("Human", math.log(0.1)), ("loc", math.log(0.2))]
    top += [("h", math.log(0.3)), ("The", math.log(0.1))]  # "h" begins two labels: no one's
    probs = label_probabilities(top, labels)
    assert probs == pytest.approx({"human being": 0.4 / 0.6, "location": 0.2 / 0.6})
    assert label_probabilities([("The", -0.1)], labels) == {}
    prior = mean_distribution([{"human being": 0.8, "location": 0.2}, {}])
    assert prior == {"human being": 0.8, "location": 0.2}
    assert calibrated_label(probs, prior) == "location"  # 0.33 / 0.2 beats 0.67 / 0.8
    assert calibrated_label(probs, {}) == "human being"
    assert calibrated_label({}, prior) is None


def test_a_primer_that_is_no_example_is_dropped() -> None:
    from rlmx.engine.semantic_map import read_primer

    samples = ["Who wrote Hamlet ?", "Where is Rome ?"]
    assert read_primer("Who painted the ceiling of the chapel ?\nmore", "person", samples) == (
        "Who painted the ceiling of the chapel ?"
    )
    assert read_primer("Person", "person", samples) is None
    assert read_primer("Location: New York", "location", samples) is None
    assert read_primer("Who wrote Hamlet ?", "person", samples) is None
    assert read_primer("", "person", samples) is None


def test_a_plan_is_checked_against_the_data() -> None:
    from rlmx.engine.planning import read_plan

    lines = ["Who wrote Hamlet ?", "Where is Rome ?", "What is DNA ?", "Who is Ada ? Why ?"]
    plan = read_plan(
        '{"marker": " ? ", "instruction": "What does it ask about?", '
        '"labels": ["person", "place"]}',
        lines,
        "Are more questions about a person or a place?",
    )
    assert plan is not None
    # A marker that only a few lines hold is no item marker: every line is an item.
    assert (plan.marker, plan.items) == ("", 4)
    # Two kinds rarely cover every item: "other" is added.
    assert plan.labels == ("person", "place", "other")
    assert plan.instruction == "What does it ask about?"
    # An instruction that restates the question is replaced by one about an item.
    copied = read_plan(
        '{"marker": "", "instruction": "Are more questions about a person or a place?", '
        '"labels": ["person", "place", "thing", "date"]}',
        lines,
        "Are more questions about a person or a place?",
    )
    assert copied is not None
    assert copied.instruction == "Which of these fits this item best: person, place, thing, date?"
    assert read_plan("not json", lines) is None
    assert read_plan('{"marker": "", "instruction": "x", "labels": ["one"]}', lines) is None
    # A marker that leaves out a tenth of the lines is a feature of some items.
    marked = '{"marker": "||", "instruction": "x", "labels": ["yes", "no"]}'
    most = [*(f"Q{i} || x" for i in range(50)), *(f"Q{i} x" for i in range(10))]
    partial = read_plan(marked, most)
    assert partial is not None
    assert (partial.marker, partial.items) == ("", 60)
    kept = read_plan(marked, most[:55])
    assert kept is not None
    assert (kept.marker, kept.items) == ("||", 50)  # 5 left out: a header's worth
    # Letters are the options of a multiple-choice question, not kinds of item.
    options = '{"marker": " ", "instruction": "Which option fits?", "labels": ["A", "B", "C"]}'
    assert read_plan(options, lines) is None
    spaced = read_plan('{"marker": " ", "instruction": "x", "labels": ["yes", "no"]}', lines)
    assert spaced is not None
    assert spaced.marker == ""


def test_no_map_is_drafted_over_more_items_than_the_run_can_afford() -> None:
    # Five items; sub-calls for three: the map would be refused half-way, so none is drafted
    # (the planning call is not even made) and the model gets the plain first turn.
    plan = '{"marker": "||", "instruction": "Happy?", "labels": ["yes", "no"]}'
    _, root, events = small_run(
        ["classify", plan, repl("FINAL(len(context))")],
        "Are more of these reviews happy?",
        context=LIST + "R5 || good\nR6 || bad\nR7 || fine\n",
        max_sub_calls=3,
    )
    assert [e.kind for e in events.of(SubCall)] == ["route"]
    assert "splits `context` into its items" in root.calls[1][-1].content
    # Seven items in a run of 2 s (0.2 s an item, half the time: room for 5): drafted, then
    # dropped, and no map runs.
    _, root, events = small_run(
        ["classify", plan, repl("FINAL(len(context))")],
        "Are more of these reviews happy?",
        context=LIST + "R5 || good\nR6 || bad\nR7 || fine\n",
        timeout_s=2,
    )
    assert [e.kind for e in events.of(SubCall)] == ["route", "plan"]
    assert "splits `context` into its items" in root.calls[2][-1].content
    # With room for them, the map is drafted as before.
    _, root, events = small_run(
        ["classify", plan, repl("FINAL(len(context))")],
        "Are more of these reviews happy?",
        context=LIST,
        sub=ScriptedModel(rules=[Rule("", "yes")]),
    )
    assert [e.kind for e in events.of(SubCall)][:2] == ["route", "plan"]


def test_a_directory_used_as_a_text_gets_the_helpers_named(tmp_path: Path) -> None:
    from rlmx.context.sources import from_directory

    (tmp_path / "a.py").write_text("def f():\n    pass\n")
    failing = repl("import ast\nprint(ast.parse(context))")
    finishing = repl("FINAL(str(len(list_files())))")
    only = Assists(route=False, plan=False, rank_keys=False)
    result, root, _ = small_run(
        [failing, finishing], "How many files?", from_directory(str(tmp_path)), assists=only
    )
    assert result.answer == "1"  # type: ignore[attr-defined]
    turn = root.calls[1][-1].content
    assert "TypeError" in turn
    assert "read_file(path) one file's text" in turn
    # Over a text, the same error is shown as it is; and the switch turns the note off.
    _, root, _ = small_run([failing, finishing], "How many files?", assists=only)
    assert "read_file(path)" not in root.calls[1][-1].content
    off = Assists(route=False, plan=False, rank_keys=False, explain_errors=False)
    _, root, _ = small_run(
        [failing, finishing], "How many files?", from_directory(str(tmp_path)), assists=off
    )
    assert "read_file(path) one file's text" not in root.calls[1][-1].content


def test_a_missing_module_is_said_to_be_missing_for_good() -> None:
    only = Assists(route=False, plan=False, rank_keys=False)
    result, root, _ = small_run(
        [repl("import nltk\nprint(nltk.__version__)"), repl("FINAL(str(len(context)))")],
        "How long is the log?",
        assists=only,
    )
    assert result.answer == str(len(LOG))  # type: ignore[attr-defined]
    turn = root.calls[1][-1].content
    assert "ModuleNotFoundError" in turn
    assert "not installed in this REPL and cannot be" in turn
    # A name the REPL defines, imported as a module: it is there already.
    _, root, _ = small_run(
        [repl("from context import context"), repl("FINAL(str(len(context)))")],
        "How long is the log?",
        assists=only,
    )
    turn = root.calls[1][-1].content
    assert "`context` is not a module to import: it is already defined" in turn
    assert "not installed" not in turn


def test_a_word_the_context_spells_with_accents_is_counted_as_spelled() -> None:
    text = "Count Rostóv came in. Natásha Rostóva laughed. Pierre stayed.\n" * 3
    keys = rank_keys(
        "Where did Natasha Rostov and Pierre dine?",
        lambda pattern: len(re.findall(pattern, text, re.IGNORECASE)),
        spell=lambda pattern: m[0] if (m := re.search(pattern, text, re.IGNORECASE)) else None,
    )
    assert {k.word: k.count for k in keys if k.count} == {"Natásha": 3, "Rostóv": 6, "Pierre": 3}
    assert [k.word for k in keys if not k.count] == ["dine"]
    # Through the engine: the first turn names the words as the context writes them.
    _, root, _ = small_run(
        [repl("FINAL('x')")],
        "Where did Natasha Rostov dine?",
        context=text,
        assists=Assists(route=False),
    )
    assert "Natásha 3" in root.calls[0][-1].content


def test_a_reply_that_repeats_the_examples_output_is_taken_back() -> None:
    # The 1.5B root began 7 of 8 held-out codeqa runs by replying with the classify example's
    # output, as if its code had run for this question.
    copied = (
        "414\n['Each review is about one of: delivery, price, quality, other.', "
        "'Mar 3 | Came two weeks late']"
    )
    search = repl("import re\nm = re.search(r'vault code', context)\nprint(context[m.start():])")
    result, root, _ = small_run(
        ["lookup", copied, search, "FINAL(ZETA-42)"], "What is the vault code?"
    )
    assert result.answer == "ZETA-42"  # type: ignore[attr-defined]
    note = root.calls[2][-1].content
    assert note.startswith(root.calls[1][-1].content)  # the first turn again, then the note
    assert note.endswith(
        "Your reply was the output of the worked example's code, not of this "
        "question: no code of yours has run yet. Write a ```repl block that looks at `context` "
        "for this question."
    )
    # Taken back: the next call has no assistant turn holding the copied output.
    assert [m.role for m in root.calls[2]] == ["system", "user"]
    # A reply with neither code nor a copy of an example gets the plain reminder, and stays.
    _, plain, _ = small_run(["lookup", "C", search, "FINAL(ZETA-42)"], "What is the vault code?")
    assert plain.calls[2][-1].content.startswith("Write a ```repl block")
    assert [m.role for m in plain.calls[2]] == ["system", "user", "assistant", "user"]


def test_a_multiple_choice_question_is_routed_by_its_stem() -> None:
    from rlmx.engine.options import question_stem
    from rlmx.engine.routing import routing_messages

    asked = "In which file is `load` defined?\nA) encoder.py\nB) tool.py\n(c) decoder.py\nAnswer."
    assert question_stem(asked) == "In which file is `load` defined?\nAnswer."
    assert routing_messages(asked)[-1].content == f"Question: {question_stem(asked)}"
    # One lettered line is no list of options; a question of only options is left whole.
    assert question_stem("A) is the plan. What is it?") == "A) is the plan. What is it?"
    assert question_stem("A) x\nB) y") == "A) x\nB) y"


def test_an_answer_naming_one_option_of_a_multiple_choice_question_is_told_its_letter() -> None:
    from rlmx.engine.options import named_option, option_letter, options

    asked = (
        "In which file is `read` defined?\nA) io/_base.py\nB) io/legacy.py\nC) _abc.py\n"
        "Answer with the letter of the correct option."
    )
    assert options(asked) == {"A": "io/_base.py", "B": "io/legacy.py", "C": "_abc.py"}
    assert named_option(asked, "io/legacy.py; it returns bytes") == ("B", "io/legacy.py")
    assert named_option(asked, "B") is None  # a letter already
    assert named_option(asked, "B) io/legacy.py") is None
    assert named_option(asked, "io/legacy.py or _abc.py") is None  # two options
    assert named_option(asked, "lib/_abc.py") is None  # not the option's file
    assert named_option("Where is `read`?", "io/legacy.py") is None  # no options
    code = repl("print('read is defined in io/legacy.py')")
    found = small_run(
        ["lookup", code, 'FINAL("io/legacy.py")', 'FINAL("B")'], asked, LOG.replace("ok", code)
    )
    result, root, _ = found
    assert result.answer == "B"  # type: ignore[attr-defined]
    # Told the letter, the 1.5B root replied with a bare letter: that is its answer.
    bare = small_run(["lookup", code, 'FINAL("io/legacy.py")', "(b)"], asked, LOG)
    assert bare[0].answer == "B"  # type: ignore[attr-defined]
    assert option_letter(asked, "D") is None  # not an option of this question
    assert root.calls[3][-1].content == (
        "Your answer names option B (io/legacy.py), and the question asks for the letter of an "
        "option: if io/legacy.py is right, answer B."
    )
    # At the command level, the same note, once.
    dsl = small_scripted(
        "lookup", '{"cmd": "final", "answer": "io/legacy.py"}', '{"cmd": "final", "answer": "B"}'
    )
    assert RLM(model=dsl, level="dsl").run(asked, LOG).answer == "B"
    assert "Your answer names option B (io/legacy.py)" in dsl.calls[2][-1].content
