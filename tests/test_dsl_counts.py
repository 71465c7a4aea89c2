"""The review of count answers at the command level: values counted by eye are held to a
tally, and values named without the counts a tally showed are held to those counts."""

from __future__ import annotations

import json

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


def test_a_count_answer_naming_nothing_tallied_is_sent_back_once() -> None:
    """Under a tally whose first row was 539 "error] mod_jk child workerEnv in error state
    <*>", the 1.5B root answered "error"."""
    root = small_scripted(
        "count",
        '{"cmd": "extract", "pattern": "error : (.*)", "as": "errors"}',
        '{"cmd": "tally", "name": "errors"}',
        '{"cmd": "final", "answer": "error"}',
        '{"cmd": "final", "answer": "error"}',
    )
    result = RLM(model=root, level="dsl").run(QUESTION, PROXY_LOG)
    note = root.calls[4][-1].content
    assert "Your answer names none of the values the tally counted, and no count" in note
    assert "json_schema" not in root.options[4]
    assert result.answer == "error"  # said once: the second answer stands


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
