"""Needle tasks: RULER's single needle (``sniah``) and the planted book secret (``book-needle``).

``sniah`` follows RULER's ``niah_single_2`` (NVIDIA/RULER, scripts/data/synthetic/niah.py):
a key made of an adjective and a noun from wonderwords' lists, a 7-digit value, the needle
sentence "One of the special magic numbers for {key} is: {value}." inserted at a sentence
boundary at an evenly spaced depth, and RULER's question. The haystack is public-domain book
text (War and Peace, then Moby Dick) instead of Paul Graham's essays, cut from its start,
so every task of one length shares its haystack and differs only in needle, key and depth.
"""

from __future__ import annotations

import random
from functools import lru_cache
from pathlib import Path

from rlmx.bench.book_needle import PHRASINGS, load_book, plant_secret
from rlmx.bench.datafiles import haystack_of, need
from rlmx.bench.tasks import CHARS_PER_TOKEN, Task

NEEDLE = "One of the special magic numbers for {key} is: {value}."
QUESTION = "What is the special magic number for {key} mentioned in the provided text?"


@lru_cache(maxsize=2)
def _words(root: Path) -> tuple[tuple[str, ...], tuple[str, ...]]:
    folder = root / "ruler_niah_words"

    def read(name: str) -> tuple[str, ...]:
        text = need(folder / name).read_text(encoding="utf-8")
        return tuple(sorted({w.strip() for w in text.splitlines() if w.strip()}))

    return read("adjectivelist.txt"), read("nounlist.txt")


def depth_of(index: int, n: int) -> float:
    """Evenly spaced depths that avoid the very ends: 5 %, 15 %, ... 95 % for n = 10."""
    return (index + 0.5) / max(1, n)


def _boundary(text: str, position: int) -> int:
    """Just after the first sentence end or paragraph break at or after ``position``."""
    found = [text.find(mark, position) for mark in (". ", ".\n", "\n\n")]
    ends = [i + 1 for i in found if i != -1]
    return min(ends) if ends else len(text)


def generate_sniah(length: int, n: int, seed: int, root: Path) -> list[Task]:
    adjectives, nouns = _words(root)
    total_chars = int(length * CHARS_PER_TOKEN)
    tasks = []
    for index in range(n):
        task_seed = seed * 1_000_003 + length * 31 + index
        rng = random.Random(task_seed)
        key = f"{rng.choice(adjectives)}-{rng.choice(nouns)}"
        value = str(rng.randint(1_000_000, 9_999_999))
        needle = NEEDLE.format(key=key, value=value)
        hay = haystack_of(root, max(0, total_chars - len(needle) - 2))
        depth = depth_of(index, n)
        at = _boundary(hay, int(depth * len(hay)))
        context = f"{hay[:at]} {needle}{hay[at:]}"
        tasks.append(
            Task(
                task_set="sniah",
                length=length,
                index=index,
                seed=task_seed,
                query=QUESTION.format(key=key),
                context=context,
                gold=value,
                scorer="contains",
                meta={"key": key, "depth": round(depth, 4), "needle_char": at},
            )
        )
    return tasks


BOOK = "war_and_peace/2600-0.txt"


def generate_book_needle(length: int, n: int, seed: int, root: Path) -> list[Task]:
    """A secret planted at a seeded random paragraph break of War and Peace, in one of
    several phrasings."""
    book = load_book(need(root / BOOK))
    tasks = []
    for index in range(n):
        task_seed = seed * 1_000_003 + index
        template, question = PHRASINGS[index % len(PHRASINGS)]
        planted = plant_secret(book, task_seed, template=template)
        tasks.append(
            Task(
                task_set="book-needle",
                length=length,
                index=index,
                seed=task_seed,
                query=question,
                context=planted.text,
                gold=planted.secret,
                scorer="contains",
                meta={
                    "depth": round(planted.depth, 4),
                    "phrasing": index % len(PHRASINGS),
                    "tokens_est": int(len(planted.text) / CHARS_PER_TOKEN),
                },
            )
        )
    return tasks
