"""Multiple-choice questions: their options, and the option an answer names.

A question that lists options (``A) ...``, ``(b) ...``, ``C. ...``) and asks for one expects
its letter. The 1.5B root found the right file for 2 of 8 ``codeqa`` questions (seed 9200) and
answered with the file's name instead of the letter; the small-model reviews at both levels
send such an answer back once, saying which option it names.
"""

from __future__ import annotations

import re

# Two or more lines that each offer an option.
OPTION_LINES = re.compile(r"(?:^[ \t]*\(?[A-Ha-h][).:][ \t]+\S.*(?:\n|$)){2,}", re.MULTILINE)
_OPTION = re.compile(r"^[ \t]*\(?([A-Ha-h])[).:][ \t]+(\S.*?)\s*$", re.MULTILINE)
_LETTER_ANSWER = re.compile(r"^\W*\(?([A-Ha-h])\b(?:[).:]|\s|$)")


def options(query: str) -> dict[str, str]:
    """The question's options by capital letter; empty when it lists fewer than two."""
    block = OPTION_LINES.search(query)
    if block is None:
        return {}
    return {m.group(1).upper(): m.group(2) for m in _OPTION.finditer(block.group(0))}


def question_stem(query: str) -> str:
    """The question without its list of options (the whole question if nothing is left)."""
    return OPTION_LINES.sub("", query).strip() or query


def named_option(query: str, answer: str) -> tuple[str, str] | None:
    """``(letter, text)`` of the one option an answer names by its text, not by its letter;
    None when the answer gives a letter, names no option or several."""
    offered = options(query)
    if not offered or _LETTER_ANSWER.match(answer.strip()):
        return None
    named = [(letter, text) for letter, text in offered.items() if _names(answer, text)]
    return named[0] if len(named) == 1 else None


def _names(answer: str, text: str) -> bool:
    """Whether ``text`` occurs in ``answer`` as a whole (not inside a longer word or path)."""
    pattern = rf"(?<![\w./]){re.escape(text.strip('`'))}(?![\w/]|\.\w)"
    return re.search(pattern, answer) is not None


def option_letter(query: str, reply: str) -> str | None:
    """The letter a reply that is nothing but one of the question's option letters gives
    (``D``, ``(d)``, ``D.``): the 1.5B root answered the note below with a bare letter."""
    match = re.fullmatch(r"\W*\(?([A-Ha-h])[).:]?\W*", reply.strip())
    letter = match.group(1).upper() if match else None
    return letter if letter is not None and letter in options(query) else None


def option_note(letter: str, text: str) -> str:
    return (
        f"Your answer names option {letter} ({text}), and the question asks for the letter of "
        f"an option: if {text} is right, answer {letter}."
    )
