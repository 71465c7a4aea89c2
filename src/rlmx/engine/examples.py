"""Worked examples for small root models, one per kind of work a question needs.

A 1.5B model imitates the one example it is shown, closely: with only a lookup example it
answered every question with one regex search, even "do more of these lines ask about X or
Y?", which no search can answer. So the question is first sorted into a kind
(:mod:`rlmx.engine.routing`) and the system prompt shows that kind's example. Every example
is about made-up data that no task uses, and ends in a concrete answer; a placeholder such as
``FINAL("the answer")`` was copied verbatim by the 1.5B model.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Kind = Literal["lookup", "count", "classify", "explain"]
KINDS: tuple[Kind, ...] = ("lookup", "count", "classify", "explain")
Form = Literal["str", "other", "directory"]


@dataclass(frozen=True, slots=True)
class Example:
    """One worked exchange: a question, then (code, output) steps, then the answer."""

    question: str
    steps: tuple[tuple[str, str], ...]
    answer: str

    def render(self) -> str:
        parts = [f"Question: {self.question}"]
        for code, output in self.steps:
            parts.append(f"You write:\n```repl\n{code}\n```\nOutput: {output}")
        parts.append(f'You write: FINAL("{self.answer}")')
        return "\n".join(parts)


# The answers of every example: a small model that finds nothing sometimes copies one.
LOOKUP_ANSWER = "BLUE-77"

_LOOKUP_STR = Example(
    "What is the code of the lighthouse door?",
    (
        (
            'import re\nfor m in re.finditer(r"lighthouse", context, re.I):\n'
            '    print(context[max(0, m.start() - 300):m.end() + 300])\n    print("---")',
            f"...the keeper said the code of the lighthouse door is {LOOKUP_ANSWER}, and left...",
        ),
    ),
    LOOKUP_ANSWER,
)
_LOOKUP_OTHER = Example(
    _LOOKUP_STR.question,
    (
        (
            'for hit in grep(r"lighthouse", around=300, flags=re.I):\n    print(hit)\n'
            '    print("---")',
            _LOOKUP_STR.steps[0][1],
        ),
    ),
    LOOKUP_ANSWER,
)
_LOOKUP_DIRECTORY = Example(
    "Which file defines the function open_door, and what does it return?",
    (
        (
            'for line in search_files(r"def open_door"):\n    print(line)',
            "keeper/doors.py:41: def open_door(code):",
        ),
        (
            'text = read_file("keeper/doors.py")\ni = text.find("def open_door")\n'
            "print(text[i:i + 600])",
            "def open_door(code):\n    ...\n    return code == SECRET",
        ),
    ),
    "keeper/doors.py; it returns code == SECRET",
)

# extract() reads every match however large the context (a grep() stops at its limit, a
# regex written by hand gets the edge cases wrong), and tally() counts them.
_COUNT_STEP = (
    'names = extract(r"ship (\\w+)")\n'
    'print(len(names), "mentions,", len(set(names)), "different")\n'
    "print(tally(names, top=3))",
    "57 mentions, 12 different\n57 values, 12 distinct, the first 3, most common "
    "first:\n      9  Albatross\n      8  Corsair\n      7  Breeze",
)
_COUNT_STR = Example("How many different ships are named in the harbour log?", (_COUNT_STEP,), "12")
_COUNT_OTHER = _COUNT_STR

# The data of this example names its categories in a first line and keeps one record a line,
# as lists handed to an RLM often do: the code takes the labels from the data, keeps only the
# record lines, and asks about each one. The 1.5B model copies an example's instruction and
# labels when the example does not show where they come from.
_CLASSIFY_STR = Example(
    "Are more of the reviews about delivery or about price?",
    (
        (
            "lines = context.splitlines()\nprint(len(lines))\nprint(lines[:2])\n"
            "print(lines[len(lines) // 2:len(lines) // 2 + 2])",
            "414\n['Each review is about one of: delivery, price, quality, other.', "
            "'Mar 3 | Came two weeks late']\n['Jun 2 | Too expensive for what it is', "
            "'Jun 2 | Handle broke in a week']",
        ),
        (
            "from collections import Counter\n"
            'items = [line for line in lines if " | " in line]\n'
            'kinds = llm_map("Is this review about delivery, price, quality or other?", '
            'items, labels=["delivery", "price", "quality", "other"])\n'
            "print(len(items), Counter(kinds))",
            "413 Counter({'quality': 161, 'delivery': 131, 'price': 96, 'other': 25})",
        ),
    ),
    "delivery",
)
_CLASSIFY_OTHER = Example(
    _CLASSIFY_STR.question,
    (
        (
            'lines = split("\\n")\nprint(len(lines))\nprint(lines[:2])\n'
            "print(lines[len(lines) // 2:len(lines) // 2 + 2])",
            _CLASSIFY_STR.steps[0][1],
        ),
        _CLASSIFY_STR.steps[1],
    ),
    "delivery",
)

_EXPLAIN_STR = Example(
    "Why did the keeper leave the lighthouse?",
    (
        (
            'import re\nhits = [m.start() for m in re.finditer(r"keeper", context, re.I)]\n'
            "print(len(hits))\nfor i in hits[:5]:\n    print(context[max(0, i - 300):i + 300])",
            "3\n...the keeper packed his things the night the lamp failed...",
        ),
        (
            "i = hits[0]\n"
            'print(llm_query("Why did the keeper leave? Answer from this text:\\n" '
            "+ context[max(0, i - 3000):i + 3000]))",
            "He left because the lamp failed and the company stopped paying him.",
        ),
    ),
    "The lamp failed and he was no longer paid.",
)
_EXPLAIN_OTHER = Example(
    _EXPLAIN_STR.question,
    (
        (
            'hits = grep(r"keeper", around=300, flags=re.I)\nprint(len(hits))\n'
            "for hit in hits[:5]:\n    print(hit)",
            _EXPLAIN_STR.steps[0][1],
        ),
        (
            "i = hits[0].pos\n"
            'print(llm_query("Why did the keeper leave? Answer from this text:\\n" '
            "+ slice(i - 3000, i + 3000)))",
            _EXPLAIN_STR.steps[1][1],
        ),
    ),
    _EXPLAIN_STR.answer,
)

# A directory's counts and judgements are mostly about its functions: functions() gives each
# with its name, docstring and source, so a filter replaces reading the files line by line.
_COUNT_DIRECTORY = Example(
    "Which functions wait with time.sleep?",
    (
        (
            'found = [f for f in functions() if re.search(r"time\\.sleep\\(", f.text)]\n'
            "print(len(found))\nfor f in found:\n    print(f)",
            "3\nfetch/download.py:Downloader.backoff\nfetch/poll.py:wait_ready\n"
            "fetch/poll.py:Poller.run",
        ),
    ),
    "fetch/download.py:Downloader.backoff, fetch/poll.py:wait_ready, fetch/poll.py:Poller.run",
)
_CLASSIFY_DIRECTORY = Example(
    "Which functions retry a download after an error?",
    (
        (
            'handlers = [f for f in functions() if "except" in f.text]\n'
            'answers = llm_map("Does this function try the download again after an error?", '
            '[f.text for f in handlers], labels=["yes", "no"])\n'
            'kept = [str(f) for f, a in zip(handlers, answers) if a == "yes"]\n'
            "print(len(handlers), kept)",
            "14 ['fetch/download.py:Downloader.get', 'fetch/poll.py:Poller.run']",
        ),
    ),
    "fetch/download.py:Downloader.get, fetch/poll.py:Poller.run",
)

_EXAMPLES: dict[tuple[Kind, Form], Example] = {
    ("lookup", "str"): _LOOKUP_STR,
    ("lookup", "other"): _LOOKUP_OTHER,
    ("lookup", "directory"): _LOOKUP_DIRECTORY,
    ("count", "str"): _COUNT_STR,
    ("count", "other"): _COUNT_OTHER,
    ("count", "directory"): _COUNT_DIRECTORY,
    ("classify", "str"): _CLASSIFY_STR,
    ("classify", "other"): _CLASSIFY_OTHER,
    ("classify", "directory"): _CLASSIFY_DIRECTORY,
    ("explain", "str"): _EXPLAIN_STR,
    ("explain", "other"): _EXPLAIN_OTHER,
    ("explain", "directory"): _LOOKUP_DIRECTORY,
}

# Without sub-calls, the examples that need them fall back to ones that do not.
_WITHOUT_SUB_CALLS: dict[Kind, Kind] = {"classify": "count", "explain": "lookup"}


def example_for(kind: Kind, form: Form, *, sub_calls: bool = True) -> Example:
    if not sub_calls:
        kind = _WITHOUT_SUB_CALLS.get(kind, kind)
    return _EXAMPLES[(kind, form)]


EXAMPLE_ANSWERS = frozenset(example.answer for example in _EXAMPLES.values())
# The long lines the examples' outputs print: a 1.5B root sometimes replies with one of them,
# as if the example's code had run for its own question (7 of 8 held-out codeqa runs began so).
EXAMPLE_OUTPUT_LINES = frozenset(
    line.strip()
    for example in _EXAMPLES.values()
    for _, output in example.steps
    for line in output.splitlines()
    if len(line.strip()) >= 12
)


def copies_example_output(reply: str) -> bool:
    """Whether a reply repeats a line of a worked example's output."""
    return any(line.strip() in EXAMPLE_OUTPUT_LINES for line in reply.splitlines())
