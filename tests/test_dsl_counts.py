"""The review of count answers at the command level: values counted by eye are held to a
tally, and values named without the counts a tally showed are held to those counts."""

from __future__ import annotations

import json

import pytest

from rlmx import RLM
from rlmx.dsl.review import named_values

from .conftest import small_scripted

CANCELED = "A connection request was canceled before the completion."
REFUSED = "Could not connect to proxy: connection refused"
PROXY_LOG = "".join(
    f"[10.30 17:{i % 60:02d}:42] app.exe - host{i}.example.com:443 error : "
    f"{CANCELED if i % 4 else REFUSED}\n"
    f"[10.30 17:{i % 60:02d}:43] app.exe - host{i}.example.com:443 close, lifetime 00:0{i % 9}\n"
    for i in range(60)
)
QUESTION = "Which error messages are most common? Give the top 2 with their counts."


def test_a_count_given_by_eye_is_held_to_a_tally_then_to_the_counts_it_shows() -> None:
    """The 1.5B root extracted 97 messages (8 distinct) and answered "A connection request
    was canceled before the completion. 11 times" (31 in the list); after the tally it
    answered the message alone."""
    root = small_scripted(
        "count",
        '{"cmd": "extract", "pattern": "error : (.*)", "as": "errors"}',
        f'{{"cmd": "final", "answer": "{CANCELED} 60 times"}}',
        '{"cmd": "tally", "name": "errors"}',
        f'{{"cmd": "final", "answer": "{CANCELED[2:]}: 60 hits, then: {REFUSED}"}}',
        json.dumps({"cmd": "final", "answer": f"1. {CANCELED}: 45\n2. {REFUSED}: 15"}),
    )
    result = RLM(model=root, level="dsl").run(QUESTION, PROXY_LOG)
    note = root.calls[3][-1].content
    assert f"Your answer counts by eye: errors has 60 items, and {CANCELED!r} is 45 of them" in note
    tally = {"cmd": "tally", "name": "errors"}
    assert root.options[3]["json_schema"] == {"anyOf": [{"const": tally}]}
    assert "45  " + CANCELED in root.calls[4][-1].content
    assert "json_schema" not in root.options[4]
    note = root.calls[5][-1].content
    assert "leaves out the counts the tally showed" in note
    ranking = {"cmd": "final", "answer": f"1. {CANCELED}: 45\n2. {REFUSED}: 15"}
    assert root.options[5]["json_schema"] == {"anyOf": [{"const": ranking}]}
    assert result.answer == ranking["answer"]


def test_an_answer_with_the_counts_the_tally_showed_is_accepted_at_once() -> None:
    root = small_scripted(
        "count",
        '{"cmd": "extract", "pattern": "error : (.*)", "as": "errors"}',
        '{"cmd": "tally", "name": "errors"}',
        f'{{"cmd": "final", "answer": "{CANCELED} (45), {REFUSED} (15)"}}',
    )
    result = RLM(model=root, level="dsl").run(QUESTION, PROXY_LOG)
    assert result.answer == f"{CANCELED} (45), {REFUSED} (15)"
    assert len(root.calls) == 4


def test_a_lookup_naming_listed_values_is_not_held_to_counts() -> None:
    root = small_scripted(
        "lookup",
        '{"cmd": "extract", "pattern": "error : (.*)", "as": "errors"}',
        f'{{"cmd": "final", "answer": "{REFUSED}"}}',
    )
    result = RLM(model=root, level="dsl").run("What does a refused connection say?", PROXY_LOG)
    assert result.answer == REFUSED
    assert len(root.calls) == 3


def test_a_count_answer_whose_numbers_are_true_of_the_list_is_not_held() -> None:
    """A number alone, or values with the list's own sizes: nothing was counted by eye."""
    answers = ("60", f"{REFUSED} and {CANCELED}, 2 kinds of 60")
    # (One value given the list's size, "CANCELED 60 times", is counted by eye: below.)
    for answer in answers:
        root = small_scripted(
            "count",
            '{"cmd": "extract", "pattern": "error : (.*)", "as": "errors"}',
            json.dumps({"cmd": "final", "answer": answer}),
        )
        result = RLM(model=root, level="dsl").run("How many error lines are there?", PROXY_LOG)
        assert result.answer == answer
        assert len(root.calls) == 3


def test_named_values_reads_an_answer_as_a_reader_would() -> None:
    values = [
        "Failed password for invalid user admin from <*> port <*> ssh2",
        "Failed password for invalid user support from <*> port <*> ssh2",
        "Failed password for root from <*> port <*> ssh2",
        "error] mod_jk child workerEnv in error state <*>",
    ]
    # Variables written out, in the answer's own order; a shared stretch goes to the value
    # that matches more of its words.
    answer = (
        "Failed password for root from 1.2.3.4 port 22 ssh2, then Failed password for invalid "
        "user support from <*> port <*> ssh2"
    )
    assert named_values(answer, values) == [2, 1]
    # A prefix left out ("error]"), a masked number left out.
    assert named_values("mod_jk child workerEnv in error state", values) == [3]
    # Words shared with every value, but not enough of any one.
    assert named_values("Failed password", values) == []
    assert named_values("no such thing", values) == []
    # A tally of three-letter pieces: "in", "the" and "and" are in any sentence.
    pieces = ["in ", "the", "and", "Win"]
    assert named_values("The three most common in the log and Win", pieces) == [3]


RANKED = f"1. {CANCELED}: 45\n2. {REFUSED}: 15"


@pytest.mark.parametrize("answer", ["error", "error: 60", "2 kinds"])
def test_a_ranking_naming_nothing_tallied_is_held_to_the_tallys_head(answer: str) -> None:
    """Under a tally whose first row was 539 "error] mod_jk child workerEnv in error state
    <*>", the 1.5B root answered "error"; under one of 808 values whose first row was 475
    "WARN <*> ...: Address change detected", "WARN: 808" (the tally's size)."""
    root = small_scripted(
        "count",
        '{"cmd": "extract", "pattern": "error : (.*)", "as": "errors"}',
        '{"cmd": "tally", "name": "errors"}',
        json.dumps({"cmd": "final", "answer": answer}),
        json.dumps({"cmd": "final", "answer": RANKED}),
    )
    result = RLM(model=root, level="dsl").run(QUESTION, PROXY_LOG)
    note = root.calls[4][-1].content
    assert "Your answer names none of the values the tally counted" in note
    held = {"cmd": "final", "answer": RANKED}  # the question's top 2, as the tally shows them
    assert root.options[4]["json_schema"] == {"anyOf": [{"const": held}]}
    assert result.answer == RANKED


def test_a_ranking_with_a_count_of_its_own_is_not_held_to_the_tally() -> None:
    root = small_scripted(
        "count",
        '{"cmd": "extract", "pattern": "error : (.*)", "as": "errors"}',
        '{"cmd": "tally", "name": "errors"}',
        '{"cmd": "final", "answer": "error: 45"}',
    )
    result = RLM(model=root, level="dsl").run(QUESTION, PROXY_LOG)
    assert result.answer == "error: 45"
    assert len(root.calls) == 4


async def test_a_tally_shows_the_head_of_its_ranking_and_keeps_the_whole() -> None:
    from rlmx.context.corpus import Corpus
    from rlmx.dsl import Command

    from .test_dsl import machine_without_sub_calls

    log = "".join(f"user{i % 30} {'x' * (i % 30)}\n" for i in range(300))
    machine = machine_without_sub_calls(Corpus.from_value(log), max_output=50_000)
    await machine.execute(Command("extract", {"pattern": r"user\d+"}, "users"))
    out = await machine.execute(Command("tally", {"name": "users"}))
    assert out.output.startswith("300 values, 30 distinct, the first 20, most common first:")
    assert len(out.output.splitlines()) == 21
    assert len(machine.variables["last"]) == 30


def test_the_command_held_to_is_the_one_the_returned_note_proposes() -> None:
    """A later check's proposal once replaced the returned note's: told to extract every
    match, the reply was held to a tally."""
    root = small_scripted(
        "count",
        '{"cmd": "extract", "pattern": "error : (.*)", "as": "errors"}',
        '{"cmd": "grep", "pattern": "canceled"}',
        f'{{"cmd": "final", "answer": "{CANCELED} 12 times"}}',
    )
    RLM(model=root, level="dsl").run(QUESTION, PROXY_LOG)
    note = root.calls[4][-1].content
    assert "read from the 10 matches shown, of the 45 the grep found" in note
    extract = {"cmd": "extract", "pattern": "canceled.*", "as": "matches"}
    assert root.options[4]["json_schema"] == {"anyOf": [{"const": extract}]}


def test_a_list_no_name_holds_any_more_is_not_proposed_for_a_tally() -> None:
    """Saved only as "last", which the next command replaced: a tally of "last" would fail."""
    root = small_scripted(
        "count",
        '{"cmd": "extract", "pattern": "error : (.*)"}',
        '{"cmd": "count", "pattern": "refused"}',
        f'{{"cmd": "final", "answer": "{CANCELED}: 40"}}',
        f'{{"cmd": "final", "answer": "{CANCELED}: 40"}}',
    )
    RLM(model=root, level="dsl").run(QUESTION, PROXY_LOG)
    assert "counts by eye" not in root.calls[4][-1].content
    assert all("json_schema" not in options for options in root.options)


def test_right_counts_from_other_commands_and_a_saved_tally_are_accepted() -> None:
    ranking = f"1. {CANCELED}: 45\n2. {REFUSED}: 15"
    root = small_scripted(
        "count",
        '{"cmd": "extract", "pattern": "error : (.*)", "as": "errors"}',
        '{"cmd": "count", "pattern": "canceled"}',
        '{"cmd": "count", "pattern": "refused"}',
        json.dumps({"cmd": "final", "answer": ranking}),
    )
    assert RLM(model=root, level="dsl").run(QUESTION, PROXY_LOG).answer == ranking
    assert len(root.calls) == 5
    # A tally sent by name is the answer rlmx computed: its counts are not checked against
    # the 20 rows on show.
    log = "".join(f"user{i} logged in\n" * i for i in range(1, 41))
    root = small_scripted(
        "count",
        '{"cmd": "extract", "pattern": "user\\\\d+", "as": "users"}',
        '{"cmd": "tally", "name": "users"}',
        '{"cmd": "final", "name": "last"}',
    )
    result = RLM(model=root, level="dsl").run("Rank the users with their counts.", log)
    assert result.answer.startswith("820 values, 40 distinct, most common first:")
    assert len(root.calls) == 4


def test_counts_are_proposed_in_the_tally_order_and_only_when_asked_for() -> None:
    root = small_scripted(
        "count",
        '{"cmd": "extract", "pattern": "error : (.*)", "as": "errors"}',
        '{"cmd": "tally", "name": "errors"}',
        f'{{"cmd": "final", "answer": "{REFUSED} first, then {CANCELED}"}}',
    )
    RLM(model=root, level="dsl").run(QUESTION, PROXY_LOG)
    ranking = {"cmd": "final", "answer": f"1. {CANCELED}: 45\n2. {REFUSED}: 15"}
    assert root.options[4]["json_schema"] == {"anyOf": [{"const": ranking}]}
    # Which is most common, with no counts asked for: the name alone is an answer.
    root = small_scripted(
        "count",
        '{"cmd": "extract", "pattern": "error : (.*)", "as": "errors"}',
        '{"cmd": "tally", "name": "errors"}',
        f'{{"cmd": "final", "answer": "{CANCELED}"}}',
    )
    result = RLM(model=root, level="dsl").run("Which error message is most common?", PROXY_LOG)
    assert result.answer == CANCELED
    assert len(root.calls) == 4


async def test_a_tally_shows_every_row_its_top_asks_for() -> None:
    from rlmx.context.corpus import Corpus
    from rlmx.dsl import Command

    from .test_dsl import machine_without_sub_calls

    log = "".join(f"user{i} in\n" * i for i in range(1, 41))
    machine = machine_without_sub_calls(Corpus.from_value(log), max_output=50_000)
    await machine.execute(Command("extract", {"pattern": r"user\d+"}, "users"))
    out = await machine.execute(Command("tally", {"name": "users", "top": 30}))
    assert len(out.output.splitlines()) == 31


def test_values_without_letters_are_never_named() -> None:
    """Status codes: "404 occurred 200 times" names 404 by its count as much as by itself."""
    assert named_values("404 occurred 200 times", ["200", "404"]) == []
    assert named_values("GET /index 404", ["GET /index 404", "POST /form 200"]) == [0]


def test_an_answer_that_gives_the_greps_total_is_not_told_it_read_a_sample() -> None:
    root = small_scripted(
        "count",
        '{"cmd": "grep", "pattern": "canceled"}',
        '{"cmd": "final", "answer": "45 lines"}',
    )
    result = RLM(model=root, level="dsl").run("How many lines say canceled?", PROXY_LOG)
    assert result.answer == "45 lines"
    assert len(root.calls) == 3


HADOOP_LOG = "".join(
    f"2015-10-18 18:05:{i % 60:02d},570 {'WARN' if i % 5 else 'ERROR'} [main] "
    f"{'Address change detected.' if i % 5 else 'ERROR IN CONTACTING RM.'} id {i}\n"
    for i in range(50)
)


def test_a_rejected_command_sent_again_later_is_held_to_what_its_note_offered() -> None:
    """The 1.5B root extracted the word "WARN" (one text, 808 times), then "ERROR", then
    "WARN" again."""
    root = small_scripted(
        "count",
        '{"cmd": "extract", "pattern": "WARN", "as": "lines"}',
        '{"cmd": "extract", "pattern": "ERROR", "as": "lines"}',
        '{"cmd": "extract", "pattern": "WARN", "as": "lines"}',
        '{"cmd": "extract", "pattern": "WARN(.*)", "as": "lines"}',
    )
    RLM(model=root, level="dsl").run(
        "Which messages are most common among the WARN lines?", HADOOP_LOG
    )
    assert "Every match is the same text 'WARN'" in root.calls[2][-1].content
    assert "json_schema" not in root.options[2]  # another command: it runs
    assert "Every match is the same text 'ERROR'" in root.calls[3][-1].content
    assert "json_schema" not in root.options[3]
    note = root.calls[4][-1].content
    assert "You sent this command before, and its result was not the answer" in note
    # A ranking of messages: the whole lines first, then what follows the word.
    offered = [
        {"cmd": "extract", "pattern": pattern, "as": "lines"}
        for pattern in (".*WARN.*", "WARN(.*)", "WARN\\W+(\\S+)")
    ]
    assert root.options[4]["json_schema"] == {"anyOf": [{"const": c} for c in offered]}
    assert "a list of 40 items" in root.calls[5][-1].content


def test_a_list_sent_by_name_for_a_ranking_is_held_to_its_tally() -> None:
    """The 1.5B root sent its 595 extracted messages by name, before and after a tally of
    them had shown 539 of one kind."""
    root = small_scripted(
        "count",
        '{"cmd": "extract", "pattern": "error : (.*)", "as": "errors"}',
        '{"cmd": "final", "name": "errors"}',
        '{"cmd": "tally", "name": "errors"}',
        '{"cmd": "final", "name": "errors"}',
        json.dumps({"cmd": "final", "answer": RANKED}),
    )
    result = RLM(model=root, level="dsl").run(QUESTION, PROXY_LOG)
    note = root.calls[3][-1].content
    assert "Your answer is the list itself, without counts" in note
    tally = {"cmd": "tally", "name": "errors"}
    assert root.options[3]["json_schema"] == {"anyOf": [{"const": tally}]}
    note = root.calls[5][-1].content
    assert "Answer from the tally's rows" in note
    held = {"cmd": "final", "answer": RANKED}
    assert root.options[5]["json_schema"] == {"anyOf": [{"const": held}]}
    assert result.answer == RANKED


def test_a_list_sent_by_name_for_a_question_without_counts_stands() -> None:
    root = small_scripted(
        "count",
        '{"cmd": "extract", "pattern": "error : (.*)", "as": "errors"}',
        '{"cmd": "final", "name": "errors"}',
    )
    result = RLM(model=root, level="dsl").run("List the error messages.", PROXY_LOG)
    assert result.answer is not None
    assert CANCELED in result.answer
    assert len(root.calls) == 3  # the routing call and two replies: no note


def test_an_answer_a_note_composed_is_accepted_as_sent() -> None:
    """Held to the ranking a note composed ("1. ...: 314" down to "8. ...: 2"), the 1.5B root
    sent it, and was told its item numbers 5, 7 and 8 were values no result showed."""
    kinds = [f"worker {name} stopped" for name in "abcdefgh"]
    log = "".join(
        f"[10.30 17:00:{i % 60:02d}] error : {kind}\n"
        for n, kind in enumerate(kinds)
        for i in range(20 - 2 * n)
    )
    question = "Which error messages are most common? Give the top 8 with their counts."
    named = ", ".join(kinds)
    ranking = "\n".join(f"{i}. {kind}: {20 - 2 * (i - 1)}" for i, kind in enumerate(kinds, 1))
    root = small_scripted(
        "count",
        '{"cmd": "extract", "pattern": "error : (.*)", "as": "errors"}',
        '{"cmd": "tally", "name": "errors"}',
        json.dumps({"cmd": "final", "answer": f"The most common are: {named}"}),
        json.dumps({"cmd": "final", "answer": ranking}),
    )
    result = RLM(model=root, level="dsl").run(question, log)
    assert "leaves out the counts the tally showed" in root.calls[4][-1].content
    assert root.options[4]["json_schema"] == {
        "anyOf": [{"const": {"cmd": "final", "answer": ranking}}]
    }
    assert result.answer == ranking
    assert len(root.calls) == 5  # accepted: no note on the numbers 5 to 8


def test_a_yes_no_maps_answers_are_not_the_values_a_ranking_names() -> None:
    """The 1.5B root asked "Is it about FATAL?" of 347 lines (343 yes, 4 no), then answered
    with messages; "no" in its answer was read as a value counted by eye."""
    answers = ["yes"] * 30 + ["no"] * 3
    answer = f"1. {CANCELED}: 30 (no other kind comes close)"
    root = small_scripted(
        "count",
        json.dumps({"cmd": "set", "name": "about", "value": answers}),
        '{"cmd": "tally", "name": "about"}',
        json.dumps({"cmd": "final", "answer": answer}),
    )
    result = RLM(model=root, level="dsl").run(QUESTION, PROXY_LOG)
    assert result.answer == answer
    assert len(root.calls) == 4  # the routing call and three replies: no note
