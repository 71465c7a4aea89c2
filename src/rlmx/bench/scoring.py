"""Scorers: one per kind of gold answer, each returning a score in [0, 1].

- ``contains``: 1 if the gold string appears in the answer (RULER's S-NIAH metric).
- ``oolong``: OOLONG's rule: parse the text after the last ``:``, exact match for labels,
  comparisons, users and dates; ``0.75 ** abs(gold - predicted)`` for numbers.
- ``pairs_f1``: F1 between the predicted and gold sets of unordered pairs (OOLONG-Pairs).
- ``choice``: 1 if the first option letter the answer commits to is the gold letter; an answer
  without a letter that is exactly one option's text (``futures/process.py``) counts as that
  option.
- ``exact``: case- and space-insensitive equality, or the gold appearing as a whole token.
- ``number``: the last number in the answer equals the gold within 0.5 % (relative).
"""

from __future__ import annotations

import re
from typing import Any

from rlmx.bench.tasks import Task

COMPARISON_PHRASES = (
    "more common than",
    "less common than",
    "same frequency as",
    "the same frequency",
    "more common",
    "less common",
)
_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?")
_PAIR = re.compile(r"\(\s*(\d+)\s*,\s*(\d+)\s*\)")


def score(task: Task, answer: str | None) -> float:
    if not answer:
        return 0.0
    kind = task.scorer
    if kind == "contains":
        return 1.0 if str(task.gold) in answer else 0.0
    if kind == "oolong":
        return score_oolong(answer, task.gold, str(task.meta.get("answer_type", "")))
    if kind == "pairs_f1":
        return pairs_f1(parse_pairs(answer), {(int(a), int(b)) for a, b in task.gold})
    if kind == "choice":
        return 1.0 if parse_choice(answer, task.query) == str(task.gold) else 0.0
    if kind == "exact":
        return score_exact(answer, str(task.gold))
    if kind == "number":
        return score_number(answer, float(task.gold))
    raise ValueError(f"unknown scorer {kind!r}")


def _clean(text: str) -> str:
    return re.sub(r"\s+", " ", text.replace("*", "").replace("[", "").replace("]", "")).strip()


def oolong_parse(answer: str) -> str:
    """OOLONG's parse: a comparison phrase if present, else the text after the last colon."""
    lowered = answer.lower()
    for phrase in COMPARISON_PHRASES:
        if phrase in lowered:
            return phrase
    tail = answer.rsplit(":", 1)[-1]
    return _clean(tail).strip(" .'\"`").lower()


def score_oolong(answer: str, gold: Any, answer_type: str) -> float:
    if answer_type == "NUMERIC":
        parsed = oolong_parse(answer)
        match = _NUMBER.search(parsed) or _last_number(answer)
        if match is None:
            return 0.0
        try:
            predicted = int(float(match.group(0).replace(",", "")))
        except ValueError:
            return 0.0
        return float(0.75 ** abs(int(gold) - predicted))
    parsed = oolong_parse(answer)
    gold_text = str(gold).lower()
    if answer_type == "COMPARISON":
        return 1.0 if parsed == gold_text else 0.0
    return 1.0 if parsed == gold_text or parsed.strip(" .") == gold_text else 0.0


def _last_number(text: str) -> re.Match[str] | None:
    matches = list(_NUMBER.finditer(text))
    return matches[-1] if matches else None


def parse_pairs(answer: str) -> set[tuple[int, int]]:
    pairs = set()
    for a, b in _PAIR.findall(answer):
        x, y = int(a), int(b)
        if x != y:
            pairs.add((min(x, y), max(x, y)))
    return pairs


def pairs_f1(predicted: set[tuple[int, int]], gold: set[tuple[int, int]]) -> float:
    if not predicted and not gold:
        return 1.0
    if not predicted or not gold:
        return 0.0
    hits = len(predicted & gold)
    if hits == 0:
        return 0.0
    precision, recall = hits / len(predicted), hits / len(gold)
    return 2 * precision * recall / (precision + recall)


_CHOICE = re.compile(r"(?:^|[^A-Za-z])\(?([A-D])\)?(?:[^A-Za-z]|$)")


_OPTION = re.compile(r"^([A-D])\) (.+)$", re.M)


def parse_choice(answer: str, question: str = "") -> str | None:
    """The option letter an answer commits to; with the ``question``'s ``A) ...`` lines, an
    answer that is exactly one option's text (quotes, backticks and case aside) is that option."""
    text = answer.strip()
    explicit = re.search(r"(?:answer|option|choice)\s*(?:is|:)?\s*\(?([A-D])\b", text, re.I)
    if explicit:
        return explicit.group(1).upper()
    match = _CHOICE.search(text)
    if match:
        return match.group(1)
    plain = _plain_option(text)
    options = _OPTION.findall(question)
    same = [letter for letter, option in options if _plain_option(option) == plain]
    return same[0] if len(same) == 1 else None


def _plain_option(text: str) -> str:
    return text.strip().strip(" .'\"`").lower()


def score_exact(answer: str, gold: str) -> float:
    norm_answer = _clean(answer).lower().strip(" .'\"`")
    norm_gold = _clean(gold).lower()
    if norm_answer == norm_gold:
        return 1.0
    tokens = re.split(r"[\s,;'\"`()\[\]]+", norm_answer)
    return 1.0 if norm_gold in tokens else 0.0


def score_number(answer: str, gold: float) -> float:
    match = _last_number(answer)
    if match is None:
        return 0.0
    try:
        predicted = float(match.group(0).replace(",", ""))
    except ValueError:
        return 0.0
    tolerance = max(abs(gold) * 0.005, 1e-9)
    return 1.0 if abs(predicted - gold) <= tolerance else 0.0
