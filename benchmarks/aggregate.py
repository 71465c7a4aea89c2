"""Aggregation by meaning on the embedded default, as a new user would ask it.

A list of N short unlabeled items (TREC questions, one a line, no categories named anywhere)
and three kinds of question about their meaning: which kind is more common, what share is of
one kind, how many are of a rare kind. Prints each answer beside the gold (from TREC's hidden
labels), the wall time, iterations and sub-calls of each run.

python benchmarks/aggregate.py --items 600 --seed 7

Seeds 0-3 were used while the map and the prompts were written; report other seeds.
"""

from __future__ import annotations

import argparse
import random
import re
import time
from collections import Counter
from pathlib import Path

from rlmx import RLM, Limits
from rlmx.bench.oolong_window import trec_questions

DATA = Path(__file__).resolve().parent.parent / "data"

QUESTIONS = (
    (
        "Among these questions, are there more that ask about a person or more that ask "
        "about a place? Answer person or place.",
        "compare",
    ),
    ("What percentage of these questions ask for a number?", "share"),
    ("How many of these questions ask what an abbreviation stands for?", "rare"),
)


def gold_for(kind: str, labels: list[str]) -> str:
    counts = Counter(labels)
    if kind == "compare":
        return "person" if counts["human being"] > counts["location"] else "place"
    if kind == "share":
        return f"{100 * counts['numeric value'] / len(labels):.0f}"
    return str(counts["abbreviation"])


def right(kind: str, answer: str, gold: str) -> bool:
    text = answer.lower()
    if kind == "compare":  # the first kind the answer names
        named = re.findall(r"person|people|human|place|location", text)
        first = named[0] if named else ""
        return ("person" if first in ("person", "people", "human") else "place") == gold and bool(
            named
        )
    numbers = [float(n) for n in re.findall(r"\d+(?:\.\d+)?", text)]
    if not numbers:
        return False
    value, target = numbers[0], float(gold)
    if kind == "share" and value <= 1 and "%" not in text:
        value *= 100
    tolerance = 5 if kind == "share" else max(2.0, 0.3 * target)
    return abs(value - target) <= tolerance


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--items", type=int, default=600)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--model", default="local:qwen2.5-coder-1.5b")
    parser.add_argument("--sub-model", default="local:qwen2.5-coder-1.5b")
    parser.add_argument("--max-iterations", type=int, default=10)
    parser.add_argument("--kinds", default="compare,share,rare", help="which questions to ask")
    args = parser.parse_args()
    picked = random.Random(args.seed).sample(list(trec_questions(DATA)), args.items)
    context = "\n".join(q for q, _ in picked)
    labels = [label for _, label in picked]
    rlm = RLM(
        model=args.model,
        sub_model=args.sub_model,
        limits=Limits(max_iterations=args.max_iterations, timeout_s=900),
        cache=False,  # a re-run measures the model again, not the cache
    )
    for question, kind in QUESTIONS:
        if kind not in args.kinds.split(","):
            continue
        started = time.perf_counter()
        result = rlm.run(question, context)
        wall = time.perf_counter() - started
        gold = gold_for(kind, labels)
        answer = result.answer or ""
        print(
            f"{kind:8} {'RIGHT' if right(kind, answer, gold) else 'wrong'} gold {gold!r} "
            f"answer {answer[:80]!r} · {result.status}, {wall:.0f} s, "
            f"{result.iterations} iterations, {result.sub_calls} sub-calls"
        )


if __name__ == "__main__":
    main()
