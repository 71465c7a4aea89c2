"""The book-needle task: a secret sentence planted at a seeded random place in a long book."""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

START_MARK = "*** START OF THE PROJECT GUTENBERG EBOOK"
END_MARK = "*** END OF THE PROJECT GUTENBERG EBOOK"

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
    text = raw.replace("\r\n", "\n")
    start = text.find(START_MARK)
    if start != -1:
        text = text[text.index("\n", start) + 1 :]
    end = text.find(END_MARK)
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
