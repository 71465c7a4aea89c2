"""The system prompt and turn messages of the DSL: short, one line a command,
one worked example, the question restated every turn (as for small models at the code level)."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from functools import cache

from rlmx.context.base import ContextHandle
from rlmx.engine.examples import Kind

_COMMANDS = [
    ('{"cmd": "grep", "pattern": "REGEX", "around": 200}', "snippets around each match"),
    ('{"cmd": "find", "text": "TEXT"}', "positions of an exact text"),
    ('{"cmd": "count", "pattern": "REGEX"}', "how many matches"),
    ('{"cmd": "lines", "start": 10, "end": 20}', "lines 10 to 20"),
    ('{"cmd": "slice", "start": 1000, "end": 2000}', "the text between two positions"),
    ('{"cmd": "split", "separator": "TEXT"}', "cut the text into a list of pieces"),
    ('{"cmd": "chunk", "size": 20000}', "cut the text into a list of pieces of that size"),
    (
        '{"cmd": "llm_query", "prompt": "... {last} ..."}',
        'ask a helper model; {NAME} inserts a saved value; "each": NAME asks once per item '
        "of a saved list",
    ),
    (
        '{"cmd": "map", "instruction": "Is it about X?", "each": "NAME", "labels": ["yes", "no"]}',
        "ask a helper model the same thing about each item of a saved list, one at a time; "
        'the answers come back in order (labels: each answer is one of them; "keep": "yes" '
        "gives the items answered yes instead)",
    ),
    (
        '{"cmd": "extract", "pattern": "took (\\d+) ms"}',
        'every match in the whole text, as a list (the part in parentheses); "kind": "ipv4" '
        "(or number, email, url, date, time, duration, hex, uuid) instead of a pattern",
    ),
    (
        '{"cmd": "tally", "name": "NAME", "top": 10}',
        "how often each value of a saved list occurs, most common first, and how many are "
        'distinct; "templates": true counts messages alike when only numbers, times or ids differ',
    ),
    ('{"cmd": "stats", "name": "NAME"}', "count, min, max, mean, p50, p90, p95, p99 of numbers"),
    ('{"cmd": "top_words", "top": 10}', "the most frequent words, common English words left out"),
    ('{"cmd": "set", "name": "NAME", "value": ...}', "save a value"),
    ('{"cmd": "get", "name": "NAME"}', "show a saved value"),
    ('{"cmd": "final", "answer": "..."}', 'finish with the answer ("name": NAME: a saved value)'),
]
_DIRECTORY = [
    ('{"cmd": "list_files", "glob": "*.py"}', "the files' paths"),
    ('{"cmd": "read_file", "path": "PATH"}', "one file's text"),
    ('{"cmd": "search_files", "pattern": "REGEX"}', "each matching line as path:line: text"),
    (
        '{"cmd": "functions", "contains": "REGEX"}',
        "the Python functions and methods whose source matches the regex, as "
        'path:Class.method; without "contains", all of them. Other filters, only when asked '
        'for: "public": true (or false), "documented": false (no docstring; or true)',
    ),
    (
        '{"cmd": "imports", "local": true}',
        "each import of the Python files as path -> module (local: only this directory's files)",
    ),
]

_SYSTEM = """\
You answer a question about {what} that you cannot see: {summary}.
You read it by sending ONE JSON command per reply. I run it and show you the result.

Commands:
{commands}
Every result is saved as last; add "as": "NAME" to keep it under a name too. \
grep and count take "ignore_case": true; with several documents, "doc": N picks one.

Worked example.
{example}

Reply with the JSON command only. Never guess: answer only from what the results show.
"""

# One worked exchange per kind of work (as at the code level, :mod:`rlmx.engine.examples`): a
# 1.5B root imitates the one it is shown. A count is shown the lookup: on the logs demo's 14
# questions, an extract-then-tally example made it extract and tally every question (words,
# addresses, percentiles alike: 3 and 4 right in two runs) where the lookup example left it to
# pick the command from the list (6 right). Each is about made-up data no task uses.
_EXAMPLES: dict[Kind, str] = {
    "lookup": """\
Question: What is the code of the lighthouse door?
You send: {"cmd": "grep", "pattern": "lighthouse", "around": 300}
Result: 1 hit: [line 812, pos 40,213] ...the keeper said the code of the lighthouse door is \
BLUE-77, and left...
You send: {"cmd": "final", "answer": "BLUE-77"}""",
    "classify": """\
Question: Are more of the reviews about delivery or about price?
You send: {"cmd": "split", "separator": "\\n", "as": "reviews"}
Result: a list of 414 items, 414 distinct (saved as reviews)
[0] Mar 3 | Came two weeks late
...
You send: {"cmd": "map", "instruction": "Is this review about delivery, price, quality or \
other?", "each": "reviews", "labels": ["delivery", "price", "quality", "other"], "as": "kinds"}
Result: a list of 414 items, 4 distinct (saved as kinds)
You send: {"cmd": "tally", "name": "kinds"}
Result: 414 values, 4 distinct, most common first:
    161  quality
    131  delivery
     96  price
     26  other
You send: {"cmd": "final", "answer": "delivery (131 against 96 about price)"}""",
    "explain": """\
Question: Why did the keeper leave the lighthouse?
You send: {"cmd": "grep", "pattern": "keeper", "around": 300}
Result: 3 hits: [line 90, pos 5,120] ...the keeper packed his things the night the lamp failed...
You send: {"cmd": "llm_query", "prompt": "Why did the keeper leave? Answer from this \
text:\\n{last}"}
Result: He left because the lamp failed and the company stopped paying him.
You send: {"cmd": "final", "answer": "The lamp failed and he was no longer paid."}""",
}
# A directory's questions are about its files and functions, which the text examples never
# show: the 1.5B root split a package's text into lines to answer which module imports which.
_DIRECTORY_EXAMPLES: dict[Kind, str] = {
    "lookup": """\
Question: Which file sets the retry limit of the downloader?
You send: {"cmd": "search_files", "pattern": "retr(y|ies)", "ignore_case": true}
Result: 2 hits:
[fetch/download.py:12, pos 310] MAX_RETRIES = 5
[fetch/download.py:88, pos 2,915]     for attempt in range(MAX_RETRIES):
You send: {"cmd": "final", "answer": "fetch/download.py, line 12: MAX_RETRIES = 5"}""",
    "count": """\
Question: Which functions wait with time.sleep?
You send: {"cmd": "functions", "contains": "time\\.sleep\\("}
Result: a list of 3 items, 3 distinct (saved as last)
[0] fetch/download.py:Downloader.backoff
[1] fetch/poll.py:wait_ready
[2] fetch/poll.py:Poller.run
You send: {"cmd": "final", "name": "last"}""",
    "classify": """\
Question: Which functions retry a download after an error?
You send: {"cmd": "functions", "contains": "except", "as": "handlers"}
Result: a list of 14 items, 14 distinct (saved as handlers)
[0] fetch/download.py:Downloader.get
...
You send: {"cmd": "map", "instruction": "Does this function try the download again after \
an error?", "each": "handlers", "labels": ["yes", "no"], "keep": "yes"}
Result: a list of 2 items, 2 distinct (saved as last)
[0] fetch/download.py:Downloader.get
[1] fetch/poll.py:Poller.run
You send: {"cmd": "final", "name": "last"}""",
    "explain": """\
Question: What does the downloader do when the server is busy?
You send: {"cmd": "search_files", "pattern": "busy|503"}
Result: 1 hit:
[fetch/download.py:40, pos 1,204]     if response.status == 503:
You send: {"cmd": "read_file", "path": "fetch/download.py", "as": "source"}
Result: import time ... (4,210 chars)
You send: {"cmd": "llm_query", "prompt": "What does this code do when the server is busy \
(status 503)?\n{source}"}
Result: It waits twice as long each time and tries again, at most 5 times.
You send: {"cmd": "final", "answer": "It backs off, doubling the wait, and retries up to \
5 times."}""",
}

_EXAMPLE_ANSWER = re.compile(r'"cmd": "final", "answer": "((?:[^"\\]|\\.)+)"')


@cache  # the examples are constants: read once, not under every answer
def example_answers() -> frozenset[str]:
    """The final answers of the worked examples: about made-up data, never a question's."""
    texts = [*_EXAMPLES.values(), *_DIRECTORY_EXAMPLES.values()]
    return frozenset(
        json.loads(f'"{m.group(1)}"') for text in texts for m in _EXAMPLE_ANSWER.finditer(text)
    )


# Without sub-calls, the examples that need them fall back to ones that do not.
_WITHOUT_SUB_CALLS: dict[Kind, Kind] = {"classify": "lookup", "explain": "lookup"}

_WHAT = {"text": "a long text", "documents": "some documents", "directory": "a directory of files"}


def system_prompt(handle: ContextHandle, *, sub_calls: bool = True, kind: Kind = "lookup") -> str:
    """The command list and the worked example of the question's ``kind`` of work;
    ``sub_calls=False`` leaves ``llm_query`` and ``map`` out."""
    rows = [
        row
        for row in _COMMANDS
        if sub_calls or not any(name in row[0] for name in ('"llm_query"', '"map"'))
    ]
    rows += _DIRECTORY if handle.kind == "directory" else []
    commands = "\n".join(f"{cmd}  {what}" for cmd, what in rows)
    summary = handle.summary().split(", read on demand")[0].split(" (too large")[0]
    if not sub_calls:
        kind = _WITHOUT_SUB_CALLS.get(kind, kind)
    examples = _DIRECTORY_EXAMPLES if handle.kind == "directory" else _EXAMPLES
    example = examples.get(kind, examples["lookup"])
    return _SYSTEM.format(
        what=_WHAT[handle.kind], summary=summary, commands=commands, example=example
    )


_FIRST_STEP: dict[Kind, str] = {
    "lookup": "searches for the answer",
    "count": "searches for or computes the answer",
    "classify": "cuts the text into its items",
    "explain": "searches for the part that answers it",
}


# A directory's items are its files and functions: told to "cut the text into its items", the
# 1.5B root split a package's text into 4,459 lines to answer which module imports which.
# (Lookups keep the words of a text: "searches the files for the answer" drew long regexes
# that found nothing on two codeqa questions a plain name had answered.)
_FIRST_STEP_DIRECTORY: dict[Kind, str] = {
    **_FIRST_STEP,
    "count": "lists the functions, files or imports the question is about",
    "classify": "lists the functions or files the question is about",
}


def first_turn(query: str, kind: Kind = "lookup", *, directory: bool = False) -> str:
    step = (_FIRST_STEP_DIRECTORY if directory else _FIRST_STEP)[kind]
    return f"Question: {query}\n\nSend a JSON command that {step}."


def next_turn(query: str, result: str, *, answerable: bool = True) -> str:
    if not answerable:
        return (
            f"Result:\n{result}\n\nQuestion: {query}\n"
            "This result is not the answer yet: send the command it suggests."
        )
    return (
        f"Result:\n{result}\n\nQuestion: {query}\n"
        'If the result shows the answer, send {"cmd": "final", "answer": "..."} with the answer '
        "copied from it. Otherwise send another command."
    )


def corrective(query: str, problem: str) -> str:
    return f"{problem}\n\nQuestion: {query}\nSend one JSON command."


def last_chance(query: str, saved: Sequence[str] = ()) -> str:
    """The last call's message; ``saved``: the names of the run's saved values, one of which
    may be the answer (a list too long to copy: stalled on 111 functions it had found, the
    1.5B root answered "not found")."""
    by_name = (
        ' or {"cmd": "final", "name": "NAME"} to answer with a saved value (saved: '
        + ", ".join(saved)
        + ")"
        if saved
        else ""
    )
    return (
        'You have no steps left. Reply with one JSON command, {"cmd": "final", "answer": '
        f'"..."}}, with the answer taken from the results above{by_name}; if they did not '
        'show it, answer "not found".\n\nQuestion: ' + query
    )
