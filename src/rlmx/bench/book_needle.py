"""The book-needle task: a secret sentence planted at a seeded random place in a long book."""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

START_MARK = "*** START OF THE PROJECT GUTENBERG EBOOK"
END_MARK = "*** END OF THE PROJECT GUTENBERG EBOOK"
# Older files (e.g. Moby Dick, 2008) say "THIS" instead of "THE".
_MARKS = (
    (START_MARK, END_MARK),
    (START_MARK.replace("THE", "THIS"), END_MARK.replace("THE", "THIS")),
)

_WORDS = (
    "AUSTERLITZ", "BORODINO", "SMOLENSK", "TILSIT", "MOZHAISK", "OLMUTZ", "BRUNN", "VIAZMA",
    "KRASNOE", "SCHON", "GRABEN", "MOSCOW",
)  # fmt: skip
_COLOURS = ("SKY", "AMBER", "IVORY", "COBALT", "EMBER", "JADE", "SILVER", "CRIMSON")

DEFAULT_QUESTION = "What is the password to Prince Andrei's secret vault?"
SENTENCE = "The password to Prince Andrei's secret vault is {secret}."


@dataclass(frozen=True, slots=True)
class PlantedBook:
    text: str
    secret: str
    position: int
    sentence: str

    @property
    def depth(self) -> float:
        """Where the secret sits, as a fraction of the text."""
        return self.position / max(1, len(self.text))


def gutenberg_body(raw: str) -> str:
    """The book without the Project Gutenberg header and licence, with LF line endings."""
    text = raw.replace("\r\n", "\n").removeprefix("\ufeff")
    for start_mark, end_mark in _MARKS:
        start = text.find(start_mark)
        if start != -1:
            text = text[text.index("\n", start) + 1 :]
        end = text.find(end_mark)
        if end != -1:
            text = text[:end]
    return text.strip() + "\n"


def make_secret(rng: random.Random) -> str:
    return f"{rng.choice(_WORDS)}-{rng.randint(1000, 9999)}-{rng.choice(_COLOURS)}"


def plant_secret(text: str, seed: int, *, template: str = SENTENCE) -> PlantedBook:
    """Insert the secret sentence at a paragraph break chosen by ``seed``."""
    rng = random.Random(seed)
    secret = make_secret(rng)
    sentence = template.format(secret=secret)
    breaks = [i for i in _paragraph_breaks(text) if 0.02 * len(text) < i < 0.98 * len(text)]
    position = rng.choice(breaks) if breaks else len(text) // 2
    planted = text[:position] + "\n" + sentence + "\n" + text[position:]
    return PlantedBook(text=planted, secret=secret, position=position + 1, sentence=sentence)


def _paragraph_breaks(text: str) -> list[int]:
    breaks, start = [], 0
    while (index := text.find("\n\n", start)) != -1:
        breaks.append(index + 1)
        start = index + 2
    return breaks


def load_book(path: Path) -> str:
    return gutenberg_body(path.read_text(encoding="utf-8"))


# (sentence template, question): several phrasings, so a method cannot key on one wording.
# Like the demo's "secret vault", each names a thing found nowhere else in War and Peace.
PHRASINGS = (
    (SENTENCE, DEFAULT_QUESTION),
    (
        "Natasha whispered that the combination of the iron strongbox in the Rostov attic "
        "is {secret}.",
        "What is the combination of the iron strongbox in the Rostov attic?",
    ),
    (
        "Pierre wrote the Masonic passphrase on a slip of paper: {secret}.",
        "What is the Masonic passphrase that Pierre wrote on a slip of paper?",
    ),
    (
        "The code word that the courier must give to Kutuzov is {secret}.",
        "What code word must the courier give to Kutuzov?",
    ),
)
