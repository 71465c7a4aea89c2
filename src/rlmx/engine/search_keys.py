"""Search keys for a question, ranked by how rare they are in this context.

A small model searches for the question's whole phrase, or for a capitalised word: measured,
``Prince`` matched thousands of times in War and Peace, most of the output was cut, and the
model then answered from what it saw. How rare each word of the question is can be counted
in the context itself, cheaply, before the first turn; the rarest words that occur at all are
the best first searches, and the ones that never occur are worth saying too.
"""

from __future__ import annotations

import re
import time
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass

_COMMON_WORDS = frozenset(
    """a about after all also an and answer any are as at be been before between but by can
    context could did do does each either for from given has have how if in into is it its
    mentioned many more most much of on one only or other provided question says should so
    some text than that the their them then there these they this those to was were what
    when where which who whom whose why will with within would you your""".split()  # noqa: SIM905
)
MAX_KEYS = 8
COUNT_BUDGET_S = 5.0


@dataclass(frozen=True, slots=True)
class KeyCount:
    word: str
    count: int


def search_keys(query: str, limit: int = 2) -> list[str]:
    """The question's most distinctive words by their form alone, best first: a hyphen, digit
    or underscore inside a word (``fierce-eyelash``, ``ERR-42``) beats a capitalised name,
    which beats a long word."""
    scored = _scored(query)
    ranked = sorted(scored, key=lambda w: scored[w][:2], reverse=True)
    return [w for w in ranked if scored[w][0] > 0][:limit]


def candidates(query: str, limit: int = MAX_KEYS) -> list[str]:
    """Every word of the question worth counting, the most distinctive by form first."""
    scored = _scored(query)
    return sorted(scored, key=lambda w: scored[w][:2], reverse=True)[:limit]


def _scored(query: str) -> dict[str, tuple[int, int, int]]:
    words = re.findall(r"[A-Za-z0-9][\w.-]*[A-Za-z0-9]|[A-Za-z0-9]", query)
    scored: dict[str, tuple[int, int, int]] = {}
    seen: set[str] = set()
    for position, word in enumerate(words):
        word = word.removesuffix("'s")
        if word.lower() in _COMMON_WORDS or len(word) < 3 or word.lower() in seen:
            continue
        seen.add(word.lower())
        if re.search(r"[\d_-]", word):
            rank = 3
        elif word[0].isupper() and position > 0:
            rank = 2
        elif len(word) >= 7:
            rank = 1
        else:
            rank = 0
        scored[word] = (rank, len(word), -position)
    return scored


def _accented() -> dict[str, str]:
    """Each ASCII letter with its accented forms in Latin-1 and Latin Extended-A."""
    forms: dict[str, str] = {}
    for point in range(0xC0, 0x180):
        char = chr(point)
        base = unicodedata.normalize("NFD", char)[0].lower()
        if base.isascii() and base.isalpha() and char.lower() != base:
            forms[base] = forms.get(base, "") + char
    return forms


_ACCENTED = _accented()


def accent_pattern(word: str) -> str:
    """:func:`key_pattern` with every letter also matching its accented forms."""
    parts = [
        f"[{re.escape(c)}{_ACCENTED[c.lower()]}]" if c.lower() in _ACCENTED else re.escape(c)
        for c in word
    ]
    return r"(?<![A-Za-z0-9])" + "".join(parts)


def key_pattern(word: str) -> str:
    """Matches the word at the start of a word, in any case: ``number`` finds ``numbers``."""
    return rf"(?<![A-Za-z0-9]){re.escape(word)}"


def rank_keys(
    query: str,
    count: Callable[[str], int],
    *,
    spell: Callable[[str], str | None] | None = None,
    budget_s: float = COUNT_BUDGET_S,
    clock: Callable[[], float] = time.monotonic,
) -> list[KeyCount]:
    """The question's words with their counts in the context (``count`` takes a regex and
    counts it case-blind), rarest present word first, absent words last. A word the context
    has only with accents ("Rostov" for "Rostóv") is counted and named as the context spells
    it, when ``spell`` (a regex -> its first match) is given. Counting stops when
    ``budget_s`` is spent: on a huge context a few words are better than a slow start."""
    started = clock()
    counted: list[KeyCount] = []
    for word in candidates(query):
        if clock() - started > budget_s:
            break
        found = count(key_pattern(word))
        if not found and spell is not None and word.isascii():
            pattern = accent_pattern(word)
            found = count(pattern) if pattern != key_pattern(word) else 0
            word = (spell(pattern) or word) if found else word
        counted.append(KeyCount(word, found))
    present = sorted((k for k in counted if k.count), key=lambda k: k.count)
    return present + [k for k in counted if not k.count]


def rarest_unused(keys: Sequence[KeyCount], codes: Sequence[str]) -> KeyCount | None:
    """The rarest word that occurs in the context and that no code written so far used."""
    for key in keys:
        if key.count and not any(key.word.lower() in code for code in codes):
            return key
    return None


def describe_keys(keys: Sequence[KeyCount], limit: int = 6) -> str:
    """``vault 3, password 5, Prince 2,310; not in it: Kutuzov``, for the first turn."""
    present = [f"{k.word} {k.count:,}" for k in keys if k.count][:limit]
    absent = [k.word for k in keys if not k.count][:limit]
    parts = []
    if present:
        parts.append(
            "How often words of the question occur in `context` (rarest first): "
            + ", ".join(present)
            + "."
        )
    if absent:
        parts.append("Not in `context` at all: " + ", ".join(absent) + ".")
    return " ".join(parts)
