"""Notes under a DSL result that a small root misread: what its pattern matched, and what to
send instead. Each states a fact about the result and, where one follows, the command or
pattern to send; none answers the question."""

from __future__ import annotations

import importlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from rlmx.context import analytics

OWN_WORDS = 3  # an extract with no group whose matches are at most this many texts
MANY_TEXTS = 10  # fewer extracted texts are read, not counted by kind
MIN_KINDS = 4  # fewer distinct texts are read at a glance
_WORDS = re.compile(r"[^\W\d_]{2,}")


@dataclass(frozen=True, slots=True)
class Note:
    """A note under a result; ``answerable`` False when the result is not an answer yet (it
    found nothing, or the pattern's own words), ``pattern`` the one pattern to send instead
    when there is one."""

    text: str = ""
    answerable: bool = True
    pattern: str | None = None
    # Several patterns the note offers, one of which is meant (the next word, the rest of
    # the line, the whole line): each a proposal, none chosen by rlmx.
    alternatives: tuple[str, ...] = ()


def same_text_note(found: list[str], pattern: str | None, *, lines_first: bool = False) -> Note:
    """A note under an ``extract`` whose matches are only the pattern's own words: it matched
    itself (``"lifetime"``: 947 times the same text; ``"fail|invalid"``: two words), not the
    values or the messages beside it. ``lines_first`` offers the whole lines first, for a
    question that ranks kinds of lines: a word such as ``WARN`` marks the lines to count, and
    the word after it is another field (a thread's name), not the message."""
    if pattern is None or len(found) < 2:
        return Note()
    distinct = list(dict.fromkeys(found))
    try:
        groups = re.compile(pattern).groups
    except re.error:
        return Note()
    if len(distinct) > 1 and (groups or len(distinct) > OWN_WORDS or len(found) < 3 * OWN_WORDS):
        return Note()
    shown = ", ".join(repr(text) for text in distinct)
    if groups:
        # The group matched, but always the same: "time: ([0-9]+)" took the 0 of 0.2477829.
        wider = widen_first_group(pattern)
        text = (
            f"\nEvery match is the same text {shown}: the part in parentheses stops too early "
            "or holds no value that changes."
            + (f' To take the whole word or number there, send "{wider}".' if wider else "")
        )
        return Note(text, answerable=False, pattern=wider)
    whole = f"(?:{pattern})" if "|" in pattern else pattern
    word, rest, line = f"{whole}\\W+(\\S+)", f"{whole}(.*)", f".*{whole}.*"
    head = (
        f"\nEvery match is {'the same text' if len(distinct) == 1 else 'one of'} {shown}: the "
        "pattern matched only itself. "
    )
    lines = f'"{line}" gives whole lines (tally them with "templates": true to count messages)'
    if lines_first:
        text = (
            f"{head}{lines}; to get what comes after it, put that part in "
            f'parentheses: "{rest}" for the rest of the line, "{word}" for the next word.'
        )
        return Note(text, answerable=False, alternatives=(line, rest, word))
    text = (
        f"{head}To get what comes after it, put that part in parentheses: "
        f'"{word}" for the next word or number, "{rest}" for the rest of the line; {lines}.'
    )
    return Note(text, answerable=False, alternatives=(word, rest, line))


# Import statements, as a search for them would match one.
_IMPORT_LINES = ("import os", "from os import path")


def searches_imports(pattern: object) -> bool:
    """Whether a ``functions`` or ``search_files`` regex matches an import statement: the
    1.5B root asked which modules import which with ``"contains": "import"`` and listed the
    18 functions that import something inside their body."""
    if not isinstance(pattern, str) or not pattern:
        return False
    try:
        return any(re.search(pattern, line) for line in _IMPORT_LINES)
    except re.error:
        return False


IMPORTS_NOTE = (
    "\nThese are the lines or functions that mention an import; most imports are at the top "
    "of a file, outside any function. Every import of the files, each as path -> module, is "
    '{"cmd": "imports"} ("local": true for only this directory\'s modules).'
)


def kinds_note(found: list[Any]) -> Note:
    """A note under an ``extract`` of messages that fall into far fewer kinds (at most half as
    many) once numbers, times and ids are masked: counted as they are, "mod_jk child
    workerEnv in error state 6" and "... state 7" count apart, and 1,345 failure lines of an
    OpenSSH log are 681 distinct texts but 188 kinds."""
    if len(found) < MANY_TEXTS or not all(isinstance(text, str) for text in found):
        return Note()
    distinct = len(set(found))
    templates = {analytics.template(text) for text in found}
    # Values that are wholly variable (addresses, numbers) are one "kind" of nothing.
    if not any(_WORDS.search(t.replace(analytics.VARIABLE, " ")) for t in templates):
        return Note()
    kinds = len(templates)
    if distinct < MIN_KINDS or kinds * 2 > distinct:
        return Note()
    return Note(
        f"\nThe {len(found):,} texts are {distinct:,} distinct, but many differ only in "
        f"numbers, times or ids: by kind they are {kinds:,}. To count them by kind, tally them "
        'with "templates": true.'
    )


def widen_first_group(pattern: str) -> str | None:
    """``pattern`` with its first capturing group replaced by ``(\\S+)``, or None."""
    depth, start, escaped, in_class = 0, -1, False, False
    for i, char in enumerate(pattern):
        if escaped:
            escaped = False
        elif char == "\\":
            escaped = True
        elif in_class:
            in_class = char != "]"
        elif char == "[":
            in_class = True
        elif char == "(":
            if start < 0 and not pattern.startswith("(?", i):
                start, depth = i, 0
            depth += 1
        elif char == ")" and start >= 0:
            depth -= 1
            if depth == 0:
                return pattern[:start] + "(\\S+)" + pattern[i + 1 :]
    return None


_sre: Any = importlib.import_module("re._parser")
PART_CHARS = 3  # shorter literal parts ("a ", ": ") say nothing about where a pattern failed
MAX_PARTS = 4


def literal_parts(pattern: str) -> list[str]:
    """The runs of literal text in ``pattern`` (``"Failed password for .* from IP port"`` has
    ``"Failed password for "`` and ``" from IP port"``), longest first, at most
    :data:`MAX_PARTS`; none for a pattern that does not compile."""
    try:
        tree = _sre.parse(pattern)
    except re.error:
        return []
    parts: list[str] = []
    _collect(list(tree), parts, [])
    kept = [p for p in dict.fromkeys(parts) if len(p.strip()) >= PART_CHARS]
    if len(kept) == 1:
        # One run of text ("[client IP]"): its words tell which one is not there.
        words = re.findall(r"\w{2,}", kept[0])
        kept = words if len(words) > 1 else kept
    return sorted(kept, key=len, reverse=True)[:MAX_PARTS]


def _collect(items: list[Any], parts: list[str], run: list[str]) -> None:
    for op, arg in items:
        if str(op) == "LITERAL":
            run.append(chr(arg))
            continue
        if run:
            parts.append("".join(run))
            run.clear()
        if str(op) == "SUBPATTERN":
            _collect(list(arg[-1]), parts, [])
    if run:
        parts.append("".join(run))
        run.clear()


def without_words(pattern: str, words: Sequence[str]) -> str | None:
    """``pattern`` with each of ``words`` (standing alone, not part of an escape such as
    ``\\d``) replaced by ``\\S+``; None when none of them is there."""
    wider = pattern
    for word in words:
        wider = re.sub(rf"(?<![\\\w]){re.escape(word)}(?!\w)", r"\\S+", wider)
    return wider if wider != pattern else None


def no_match_note(counts: Sequence[tuple[str, int]], wider: str | None = None) -> Note:
    """Under a search that found nothing: how often each literal part of its pattern occurs on
    its own, and the pattern with the words that are nowhere in the text made ``\\S+`` when that
    one matches. A 1.5B root searched "from IP port", the question's placeholder for an
    address, and answered "no hits"."""
    if len(counts) < 2 and not any(n for _, n in counts):
        return Note()
    shown = ", ".join(f"{part!r} {n:,} time{'s' if n != 1 else ''}" for part, n in counts)
    head = f"\nNothing matches the whole pattern. Its parts alone: {shown}. "
    if all(n for _, n in counts):
        return Note(
            head + "Each is there, but not as the pattern joins them: search for one part alone to "
            "see the lines."
        )
    text = (
        head + "A part found 0 times is not in the text as written: a word of the question "
        "that stands for a value (a name, an address, a number) must be a pattern for that "
        "value, such as \\S+ or \\d+."
    )
    if wider is not None:
        text += f' With the missing words as \\S+, "{wider}" matches.'
    return Note(text, answerable=False, pattern=wider)
