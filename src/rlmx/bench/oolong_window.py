"""OOLONG trec_coarse-style context windows, built from the TREC question-classification files.

Each line is ``Date: Mon DD, YYYY || User: NNNNN || Instance: <question>``; the label (one of 6
coarse TREC classes, in OOLONG's spelling) is hidden from the text and kept for the golds.
Header and footer are OOLONG's wording (``data/oolong_style``). A window of nominal length
``L`` tokens holds as many questions as OOLONG's window of that length (787 at 32K; others
interpolated at 0.0243 questions per token), so token counts follow OOLONG's, not ours.
Dates are uniform over Jan 2022 - May 2025 (41 months, as observed in OOLONG); user IDs are
5-digit numbers from a pool of one user per 8 questions, so users repeat.
"""

from __future__ import annotations

import datetime as dt
import json
import random
from collections import Counter
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from rlmx.bench.datafiles import need

QUESTIONS_PER_LENGTH = {
    8192: 188,
    16384: 388,
    32768: 787,
    65536: 1585,
    131072: 3182,
    262144: 6374,
    524288: 12760,
    1048576: 25531,
}
FIRST_DAY = dt.date(2022, 1, 1)
LAST_DAY = dt.date(2025, 5, 31)
QUESTIONS_PER_USER = 8


@dataclass(frozen=True, slots=True)
class Line:
    date: dt.date
    user: int
    question: str
    label: str

    def month(self) -> tuple[int, int]:
        return self.date.year, self.date.month


@dataclass(frozen=True, slots=True)
class Window:
    """One context window: its text, its labelled lines, and the labels in the shown order."""

    text: str
    lines: tuple[Line, ...]
    label_order: tuple[str, ...]
    seed: int

    def counts(self, lines: tuple[Line, ...] | list[Line] | None = None) -> Counter[str]:
        return Counter(line.label for line in (self.lines if lines is None else lines))

    def users(self) -> list[int]:
        return sorted({line.user for line in self.lines})

    def months(self) -> list[tuple[int, int]]:
        """Every calendar month of the date span, in order."""
        months, year, month = [], FIRST_DAY.year, FIRST_DAY.month
        while (year, month) <= (LAST_DAY.year, LAST_DAY.month):
            months.append((year, month))
            year, month = (year + 1, 1) if month == 12 else (year, month + 1)
        return months


@lru_cache(maxsize=2)
def spec(root: Path) -> dict[str, Any]:
    path = need(root / "oolong_style" / "trec_coarse_format_and_templates.json")
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


@lru_cache(maxsize=2)
def trec_questions(root: Path) -> tuple[tuple[str, str], ...]:
    """(question, label) for all 5,952 TREC questions, labels in OOLONG's spelling."""
    codes: dict[str, str] = spec(root)["trec_coarse_code_to_label"]
    items = []
    for name in ("train_5500.label", "TREC_10.label"):
        # One byte of train_5500.label is not UTF-8 (see data/trec_qc/SOURCE.txt).
        text = need(root / "trec_qc" / name).read_text(encoding="latin-1")
        for raw in text.splitlines():
            head, _, question = raw.partition(" ")
            if question.strip():
                items.append((question.strip(), codes[head.split(":", 1)[0]]))
    return tuple(items)


def questions_for(length: int) -> int:
    return QUESTIONS_PER_LENGTH.get(length) or max(10, round(length * 0.0243))


def build_window(root: Path, length: int, seed: int) -> Window:
    rng = random.Random(f"oolong-window/{seed}/{length}")
    pool = trec_questions(root)
    count = questions_for(length)
    picked = [pool[i] for i in rng.sample(range(len(pool)), min(count, len(pool)))]
    while len(picked) < count:  # beyond 5,952 questions: draw again (OOLONG repeats too)
        picked.append(pool[rng.randrange(len(pool))])
    users = rng.sample(range(10_000, 100_000), max(2, count // QUESTIONS_PER_USER))
    days = (LAST_DAY - FIRST_DAY).days
    lines = tuple(
        Line(FIRST_DAY + dt.timedelta(days=rng.randint(0, days)), rng.choice(users), q, label)
        for q, label in picked
    )
    data = spec(root)
    labels = list(data["labels"])
    rng.shuffle(labels)
    label_list = ", ".join(f"'{label}'" for label in labels)
    context = data["context"]
    body = "".join(
        context["line"].format(date=line.date, user_id=line.user, question=line.question)
        for line in lines
    )
    text = (
        context["header"].format(n=count, label_list=label_list)
        + body
        + "\n"
        + context["footer"].format(n=count, label_list=label_list)
    )
    return Window(text=text, lines=lines, label_order=tuple(labels), seed=seed)
