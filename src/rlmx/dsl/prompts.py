"""The system prompt and turn messages of the DSL: short, one line a command,
one worked example, the question restated every turn (as for small models at the code level)."""

from __future__ import annotations

from rlmx.context.base import ContextHandle

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
        "the answers come back in order (labels: each answer is one of them)",
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
        '{"cmd": "functions", "contains": "REGEX", "public": true, "documented": false}',
        "the Python functions and methods as path:Class.method, those whose source matches "
        "contains, public or not, with a docstring or not (each filter optional)",
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
Question: What is the code of the lighthouse door?
You send: {{"cmd": "grep", "pattern": "lighthouse", "around": 300}}
Result: 1 hit: [line 812, pos 40,213] ...the keeper said the code of the lighthouse door is \
BLUE-77, and left...
You send: {{"cmd": "final", "answer": "BLUE-77"}}

Reply with the JSON command only. Never guess: answer only from what the results show.
"""

_WHAT = {"text": "a long text", "documents": "some documents", "directory": "a directory of files"}


def system_prompt(handle: ContextHandle, *, sub_calls: bool = True) -> str:
    """The command list; ``sub_calls=False`` leaves ``llm_query`` out."""
    rows = [
        row
        for row in _COMMANDS
        if sub_calls or not any(name in row[0] for name in ('"llm_query"', '"map"'))
    ]
    rows += _DIRECTORY if handle.kind == "directory" else []
    commands = "\n".join(f"{cmd}  {what}" for cmd, what in rows)
    summary = handle.summary().split(", read on demand")[0].split(" (too large")[0]
    return _SYSTEM.format(what=_WHAT[handle.kind], summary=summary, commands=commands)


def first_turn(query: str) -> str:
    return f"Question: {query}\n\nSend a JSON command that searches for the answer."


def next_turn(query: str, result: str) -> str:
    return (
        f"Result:\n{result}\n\nQuestion: {query}\n"
        'If the result shows the answer, send {"cmd": "final", "answer": "..."} with the answer '
        "copied from it. Otherwise send another command."
    )


def corrective(query: str, problem: str) -> str:
    return f"{problem}\n\nQuestion: {query}\nSend one JSON command."


def last_chance(query: str) -> str:
    return (
        "You have no steps left. Reply with one JSON command, "
        '{"cmd": "final", "answer": "..."}, with the answer taken from the results above; if '
        'they did not show it, answer "not found".\n\nQuestion: ' + query
    )
