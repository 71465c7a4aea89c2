"""Which kind of work a question needs, asked of the root model before a small-model run.

One short call, its answer constrained to the four kind names where the backend can
(llama.cpp grammars) and read leniently elsewhere. The few-shot questions are about made-up
data of many shapes (logs, reviews, code, stories), none of them a benchmark's wording; the
choice only picks the worked example the system prompt shows (:mod:`rlmx.engine.examples`),
so a wrong kind costs a less fitting example, never a wrong answer by itself.
"""

from __future__ import annotations

from rlmx.engine.examples import KINDS, Kind
from rlmx.engine.options import question_stem
from rlmx.engine.semantic_map import read_label
from rlmx.providers.base import CallOptions
from rlmx.types import Message

_SYSTEM = """\
Sort a question about a large text by the work that answers it.
lookup: one fact written somewhere in the text (a name, a number, a code, a place, a file).
count: a number or list that code computes exactly by matching words, fields or patterns \
(lines with a word, different values, totals, averages, percentiles, the most frequent value).
classify: many items (lines, records, questions, reviews) must each be judged by what they \
mean, which no pattern can match (is it negative, is it about a person, what topic), and the \
judgements combined (how many are X, which kind is most common, what share).
explain: read one passage or file and explain, describe or summarise it (what, why, how).
Reply with one word: lookup, count, classify or explain."""

_SHOTS: tuple[tuple[str, Kind], ...] = (
    ("What did the captain name his dog?", "lookup"),
    ("How many requests returned status 503?", "count"),
    ("Of the customer messages, are more of them complaints or thanks?", "classify"),
    ("What does the function merge_shards do with empty shards?", "explain"),
    ("Which host sent the most rejected connections?", "count"),
    ("How many of the comments are angry?", "classify"),
    ("In which city was the contract signed?", "lookup"),
    ("How does the parser treat a missing header?", "explain"),
    ("What fraction of the listed questions ask about a person?", "classify"),
    ("Why did the expedition turn back?", "explain"),
)


def routing_messages(query: str) -> list[Message]:
    messages = [Message("system", _SYSTEM)]
    for question, kind in _SHOTS:
        messages += [Message("user", f"Question: {question}"), Message("assistant", kind)]
    # Without its options: the 1.5B router took a multiple-choice question for many items to
    # judge (7 of 8 codeqa questions routed as classify).
    messages.append(Message("user", f"Question: {question_stem(query)}"))
    return messages


ROUTING_OPTIONS: CallOptions = {"max_tokens": 4, "choices": list(KINDS)}


def read_kind(reply: str) -> Kind | None:
    label = read_label(reply, KINDS)
    return next((kind for kind in KINDS if kind == label), None)
