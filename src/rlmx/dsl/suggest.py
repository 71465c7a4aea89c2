"""The commands a question's own words point to, named in the first turn of a small root.

A 1.5B root reads the command list once and then reaches for the first command it saw: asked
which modules import which, it sent ``slice`` with ``imports`` three lines down the list. The
question's words are matched against each command's name and description; a word that several
commands describe ("list", "text", "saved") points to none of them.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence

from rlmx.context.analytics import STOP_WORDS

MAX_SUGGESTED = 3
# A word found in the descriptions of more commands than this is too common to point anywhere.
MAX_COMMANDS_PER_WORD = 2
_WORD = re.compile(r"[a-z]+[0-9]*")
# Words that describe the command language itself, or any question's form, not its data.
_GENERIC = frozenset(
    {
        "answer",
        "answers",
        "one",
        "per",
        "every",
        "each",
        "list",
        "lists",
        "line",
        "lines",
        "text",
        "value",
        "values",
        "saved",
        "name",
        "result",
        "give",
        "show",
        "many",
        "much",
        "first",
        "number",
        "numbers",
        "python",
    }
)
_NAME = re.compile(r'"cmd": "([a-z_]+)"')


def _stems(text: str) -> set[str]:
    """Lowercase words of 3 or more characters, stop words out, a plural's ``s`` dropped."""
    words = _WORD.findall(text.lower().replace("_", " "))
    return {_stem(w) for w in words if len(w) >= 3 and w not in STOP_WORDS and w not in _GENERIC}


def _stem(word: str) -> str:
    if word.endswith("ies") and len(word) > 5:
        return word[:-3] + "y"
    if word.endswith("s") and not word.endswith("ss") and len(word) > 4:
        return word[:-1]
    return word


def matching_commands(query: str, rows: Sequence[tuple[str, str]]) -> list[str]:
    """The commands (their JSON, from ``rows`` of the command list) whose name or description
    shares an uncommon word with ``query``, most shared words first."""
    described = []
    for command, what in rows:
        name = _NAME.search(command)
        if name is not None and name.group(1) != "final":
            described.append((command, _stems(f"{name.group(1)} {what}")))
    spread = Counter(word for _, words in described for word in words)
    asked = _stems(query)
    scored = []
    for order, (command, words) in enumerate(described):
        shared = {w for w in words & asked if spread[w] <= MAX_COMMANDS_PER_WORD}
        if shared:
            scored.append((-len(shared), order, command))
    return [command for _, _, command in sorted(scored)[:MAX_SUGGESTED]]
