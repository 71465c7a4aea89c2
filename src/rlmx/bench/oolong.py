"""OOLONG trec_coarse-style aggregation questions, in the paper's task mix.

All ``n`` tasks of one length ask about the same window (as OOLONG's 50 tasks share
``context_window_id`` 0). Question wording is OOLONG's 8 templates, verbatim with their
typos. Each task draws its type from the paper's 50-task mix (weights in
``data/oolong_style``), then its labels, users, month or dates from its own seed; a draw
whose gold would be ambiguous (a tie for "most common", no month where one label leads) is
drawn again. Golds are computed from the hidden labels.
"""

from __future__ import annotations

import calendar
import datetime as dt
import random
from collections import Counter
from pathlib import Path
from typing import Any

from rlmx.bench.oolong_window import FIRST_DAY, LAST_DAY, Line, Window, build_window, spec
from rlmx.bench.tasks import Task

# (template index, subset kind, weight): the paper's 50 tasks at 131K (oolong_style json).
MIX: tuple[tuple[int, str | None, int], ...] = (
    (0, None, 1),
    (1, None, 8),
    (2, None, 2),
    (3, None, 1),
    (0, "user1", 1),
    (1, "user", 6),
    (2, "user", 1),
    (4, None, 2),
    (0, "month", 1),
    (1, "month", 4),
    (2, "month", 2),
    (1, "date_range", 5),
    (2, "date_range", 1),
    (5, None, 3),
    (6, None, 9),
    (7, None, 3),
)


class _Redraw(Exception):
    """The drawn parameters give an ambiguous gold; draw again."""


def generate_oolong(length: int, n: int, seed: int, root: Path) -> list[Task]:
    window = build_window(root, length, seed)
    tasks = []
    for index in range(n):
        task_seed = seed * 1_000_003 + length * 31 + index
        rng = random.Random(task_seed)
        for _attempt in range(200):
            template, subset, _w = rng.choices(MIX, weights=[m[2] for m in MIX])[0]
            try:
                query, gold, meta = _make(root, window, rng, template, subset)
                break
            except _Redraw:
                continue
        else:  # pragma: no cover - 200 ambiguous draws in a row do not happen
            raise RuntimeError("could not draw an unambiguous OOLONG task")
        tasks.append(
            Task(
                task_set="oolong",
                length=length,
                index=index,
                seed=task_seed,
                query=query,
                context=window.text,
                gold=gold,
                scorer="oolong",
                meta={**meta, "window_seed": seed, "questions": len(window.lines)},
            )
        )
    return tasks


def _two_labels(rng: random.Random, labels: list[str]) -> tuple[str, str]:
    a, b = rng.sample(labels, 2)
    return a, b


def _compare(x: int, y: int, words: tuple[str, str, str]) -> str:
    return words[0] if x > y else words[1] if x < y else words[2]


def _subset(
    rng: random.Random, window: Window, kind: str | None, prefixes: dict[str, str]
) -> tuple[str, list[Line], dict[str, Any]]:
    lines = list(window.lines)
    if kind is None:
        return "In the above data, ", lines, {}
    if kind in ("user", "user1"):
        users = sorted(rng.sample(window.users(), 1 if kind == "user1" else rng.randint(2, 5)))
        text = prefixes["user"].format(user_ids=", ".join(map(str, users)))
        return text, [x for x in lines if x.user in users], {"users": users}
    if kind == "month":
        month = rng.randint(1, 12)
        name = calendar.month_name[month]
        text = prefixes["month"].format(month_name=name)
        return text, [x for x in lines if x.date.month == month], {"month": name}
    days = sorted(rng.sample(range((LAST_DAY - FIRST_DAY).days + 1), 2))
    start, end = (FIRST_DAY + dt.timedelta(days=d) for d in days)
    text = prefixes["date_range"].format(start=start, end=end)
    chosen = [x for x in lines if start <= x.date <= end]
    return text, chosen, {"start": start.isoformat(), "end": end.isoformat()}


def _make(
    root: Path, window: Window, rng: random.Random, index: int, subset: str | None
) -> tuple[str, Any, dict[str, Any]]:
    data = spec(root)
    template = data["question_templates"][index]
    labels = list(window.label_order)
    meta: dict[str, Any] = {"template": index, "task": template["task"], "subset": subset}
    meta["answer_type"] = template["answer_type"].rsplit(".", 1)[-1]
    prefix, lines, extra = _subset(rng, window, subset, data["subset_prefixes"])
    meta.update(extra)
    counts = Counter(x.label for x in lines)
    form = template["text"] if subset is None else template["subset_form"]
    fill: dict[str, Any] = {"prefix": prefix}
    if index == 0:
        top = counts.most_common(2)
        if not top or (len(top) == 2 and top[0][1] == top[1][1]):
            raise _Redraw
        shown = [x for x in labels if counts[x] > 0] if subset else labels
        rng.shuffle(shown)
        fill["label_list_plain"] = ", ".join(shown)
        gold: Any = top[0][0]
    elif index == 1:
        a, b = _two_labels(rng, labels)
        fill.update(a=a, b=b)
        gold = _compare(
            counts[a], counts[b], ("more common than", "less common than", "same frequency as")
        )
    elif index == 2:
        a = rng.choice(labels)
        fill["a"] = a
        gold = counts[a]
    elif index == 3:
        top_users = Counter(x.user for x in lines).most_common(2)
        if top_users[0][1] == top_users[1][1]:
            raise _Redraw
        gold = str(top_users[0][0])
    elif index == 4:
        a = rng.choice(labels)
        day = FIRST_DAY + dt.timedelta(days=rng.randint(120, 1120))
        fill.update(a=a, d=day)
        before = sum(1 for x in lines if x.label == a and x.date < day)
        after = sum(1 for x in lines if x.label == a and x.date > day)
        gold = _compare(before, after, ("more common", "less common", "the same frequency"))
        meta["date"] = day.isoformat()
    else:
        a, b = _two_labels(rng, labels)
        fill.update(a=a, b=b)
        gold = _timeline(window, lines, index, a, b)
    meta.update({k: v for k, v in fill.items() if k in ("a", "b")})
    return form.format(**fill), gold, meta


def _timeline(window: Window, lines: list[Line], index: int, a: str, b: str) -> Any:
    by_month: dict[tuple[int, int], Counter[str]] = {m: Counter() for m in window.months()}
    for x in lines:
        by_month[x.month()][x.label] += 1
    if index == 5:
        for (year, month), counts in by_month.items():
            if counts[a] > counts[b]:
                return f"{calendar.month_name[month]} {year}"
        raise _Redraw
    if index == 6:
        return sum(1 for c in by_month.values() if c[a] > c[b])
    wins = 0
    for counts in by_month.values():
        top = counts.most_common(2)
        if top and top[0][0] == a and (len(top) == 1 or top[0][1] > top[1][1]):
            wins += 1
    return wins
