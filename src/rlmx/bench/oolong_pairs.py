"""OOLONG-Pairs: the paper's 20 pair queries (verbatim) over one 32K-token OOLONG window.

Gold pair sets come from the hidden labels through each query's machine-readable ``spec``
(``data/oolong_style/oolong_pairs_queries.jsonl``). How the ambiguities are read:

- "all instances that are a human being for both users must be after January 6, 2023":
  strictly after (before) the date; a user with no instance of that label meets the
  condition (the literal reading of "all"; the paper does not say).
- Asymmetric queries ("one user has ..., and the other user has ..."): an unordered pair
  {u, v} with u != v qualifies if u meets the first role and v the second, or the reverse.
- A pair is written (lower ID, higher ID); a user is never paired with itself.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter, defaultdict
from functools import lru_cache
from itertools import combinations
from pathlib import Path
from typing import Any

from rlmx.bench.datafiles import need
from rlmx.bench.oolong_window import Line, build_window
from rlmx.bench.tasks import Task

PAIRS_LENGTH = 32768


@lru_cache(maxsize=2)
def pair_queries(root: Path) -> tuple[dict[str, Any], ...]:
    path = need(root / "oolong_style" / "oolong_pairs_queries.jsonl")
    lines = path.read_text(encoding="utf-8").splitlines()
    return tuple(json.loads(line) for line in lines if line.strip())


def _user_lines(lines: tuple[Line, ...]) -> dict[int, list[Line]]:
    by_user: dict[int, list[Line]] = defaultdict(list)
    for line in lines:
        by_user[line.user].append(line)
    return by_user


def _meets_symmetric(lines: list[Line], spec: dict[str, Any]) -> bool:
    labels = set(spec["each_user_has_any_of"])
    if not any(x.label in labels for x in lines):
        return False
    constraint = spec.get("date_constraint_all_instances_of_label")
    if constraint is None:
        return True
    day = dt.date.fromisoformat(constraint["date"])
    marked = [x for x in lines if x.label == constraint["label"]]
    if constraint["op"] == "after":
        return all(x.date > day for x in marked)
    return all(x.date < day for x in marked)


def _meets_role(counts: Counter[str], role: dict[str, list[Any]]) -> bool:
    for label, (op, n) in role.items():
        have = counts[label]
        if (op == ">=" and have < n) or (op == "==" and have != n):
            return False
    return True


def gold_pairs(lines: tuple[Line, ...], spec: dict[str, Any]) -> list[tuple[int, int]]:
    by_user = _user_lines(lines)
    users = sorted(by_user)
    if spec["kind"] == "symmetric":
        ok = [u for u in users if _meets_symmetric(by_user[u], spec)]
        return list(combinations(ok, 2))
    counts = {u: Counter(x.label for x in by_user[u]) for u in users}
    role_a = {u for u in users if _meets_role(counts[u], spec["role_a"])}
    role_b = {u for u in users if _meets_role(counts[u], spec["role_b"])}
    pairs = {(min(u, v), max(u, v)) for u in role_a for v in role_b if u != v}
    return sorted(pairs)


def generate_pairs(length: int, n: int, seed: int, root: Path) -> list[Task]:
    """Task ``i`` is the paper's query ``i % 20 + 1``, all over one window."""
    window = build_window(root, length, seed)
    queries = pair_queries(root)
    tasks = []
    for index in range(n):
        item = queries[index % len(queries)]
        gold = gold_pairs(window.lines, item["spec"])
        tasks.append(
            Task(
                task_set="oolong-pairs",
                length=length,
                index=index,
                seed=seed,
                query=item["query"],
                context=window.text,
                gold=[list(pair) for pair in gold],
                scorer="pairs_f1",
                meta={"paper_task": item["task"], "gold_pairs": len(gold), "window_seed": seed},
            )
        )
    return tasks
