"""The book-needle task: a secret sentence planted at a seeded random place in a long book."""

from __future__ import annotations

import random
import re
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
    # Worded apart from their questions (no three-word phrase in common; a pronoun or a title
    # where the question has a name), as a user's question rarely quotes the text it is about.
    (
        "The old count kept his wine cellar locked, and only he knew that its lock opened "
        "with {secret}.",
        "Which combination opens Count Rostov's wine cellar?",
    ),
    (
        "Her brother had sent it from the army: the cipher for their letters was {secret}.",
        "Which cipher protected the letters between Princess Marya and her brother?",
    ),
    (
        "Dolokhov laughed and said the stake at tonight's card table would be settled only "
        "with the token {secret}.",
        "What token settles Dolokhov's gambling debt?",
    ),
    (
        "At the ball she was told, under her breath, that the key to the hidden music box "
        "was {secret}.",
        "Which key unlocks the concealed music box Natasha heard of while dancing?",
    ),
    (
        "The regiment's quartermaster stamped every crate of powder with the mark {secret}.",
        "What mark was stamped on the gunpowder crates of the regiment?",
    ),
    (
        "Speransky's clerk confirmed that the sealed decree was filed under the number {secret}.",
        "What filing number did the clerk give Speransky's secret order?",
    ),
    (
        "Nobody at Bald Hills but the old prince knew that the study safe answered to {secret}.",
        "What is the combination of Prince Bolkonsky's safe in his study?",
    ),
    (
        "Whoever wishes to cross the ferry at night must tell the boatman {secret}.",
        "What password does the boatman need to take someone over the river after dark?",
    ),
)


def shared_phrases(sentence: str, question: str, size: int = 3) -> set[tuple[str, ...]]:
    """The ``size``-word phrases a needle sentence and its question have in common."""

    def grams(text: str) -> set[tuple[str, ...]]:
        words = re.findall(r"[a-z0-9']+", text.lower().replace("{secret}", ""))
        return {tuple(words[i : i + size]) for i in range(len(words) - size + 1)}

    return grams(sentence) & grams(question)
