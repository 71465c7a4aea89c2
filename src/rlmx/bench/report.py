"""``rlmx bench report DIR``: Markdown and a self-contained HTML page from ``results.jsonl``.

Scores are means x 100 over the tasks of a (task set, length, method) cell, and every cell
shows its own n (the tasks it averages: runs with different ``--n`` or ``--only`` leave cells
of different sizes). Following the paper, a ``direct`` prompt that had to be cut to fit the
window scores 0 (marked ``*``); the score its cut prompt actually got is shown beside it. Rows
with status ``error`` count as 0. Every method has one colour in all charts of all reports
(:func:`method_colours`).
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from html import escape
from pathlib import Path
from statistics import mean
from typing import Any

from rlmx.bench.methods import METHOD_NAMES
from rlmx.bench.svg import COLOURS, bar_chart, line_chart
from rlmx.bench.tasks import CHARS_PER_TOKEN, format_length

Row = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Cell:
    task_set: str
    length: int
    method: str
    rows: tuple[Row, ...]

    @property
    def n(self) -> int:
        return len(self.rows)

    @property
    def score(self) -> float:
        return 100 * mean(float(r["paper_score"]) for r in self.rows)

    @property
    def raw_score(self) -> float:
        return 100 * mean(float(r["score"]) for r in self.rows)

    @property
    def truncated(self) -> int:
        return sum(1 for r in self.rows if r.get("truncated"))

    @property
    def tokens(self) -> float:
        return mean(_tokens(r) for r in self.rows)

    @property
    def wall_s(self) -> float:
        return mean(float(r["wall_s"]) for r in self.rows)

    @property
    def cost(self) -> float | None:
        costs = [r.get("cost_usd") for r in self.rows]
        return None if any(c is None for c in costs) else sum(float(c or 0) for c in costs)

    @property
    def x(self) -> float:
        """Context length in tokens: nominal, or estimated for fixed-size task sets."""
        if self.length:
            return float(self.length)
        return mean(float(r["context_chars"]) for r in self.rows) / CHARS_PER_TOKEN

    def mean_of(self, key: str) -> float:
        return mean(float(r.get(key) or 0) for r in self.rows)


def _tokens(row: Row, part: str | None = None) -> int:
    tokens = row.get("tokens") or {}
    parts = [part] if part else ["root", "sub"]
    return sum(int((tokens.get(p) or {}).get("total_tokens", 0)) for p in parts)


def latest(rows: Sequence[Row]) -> list[Row]:
    """The last row of every (task, method) pair: a rerun replaces an errored row."""
    by_key: dict[tuple[str, str], Row] = {}
    for row in rows:
        by_key[(row["task_id"], row["method"])] = row
    return list(by_key.values())


def cells(rows: Sequence[Row]) -> list[Cell]:
    groups: dict[tuple[str, int, str], list[Row]] = defaultdict(list)
    for row in latest(rows):
        groups[(row["task_set"], int(row["length"]), row["method"])].append(row)
    return [Cell(s, n, m, tuple(rs)) for (s, n, m), rs in sorted(groups.items())]


def _methods(all_cells: Sequence[Cell]) -> list[str]:
    """The methods of these cells: the registry's in its order, then any others by name."""
    seen = {c.method for c in all_cells}
    return [m for m in METHOD_NAMES if m in seen] + sorted(seen - set(METHOD_NAMES))


def method_colours(methods: Iterable[str]) -> dict[str, str]:
    """One colour per method. A registered method always takes the palette slot of its place
    in :data:`METHOD_NAMES`, whatever subset a report shows; other names (methods outside the
    registry) take the slots after those, in name order."""
    names = set(methods)
    colours = {m: COLOURS[i % len(COLOURS)] for i, m in enumerate(METHOD_NAMES) if m in names}
    for i, m in enumerate(sorted(names - set(METHOD_NAMES)), start=len(METHOD_NAMES)):
        colours[m] = COLOURS[i % len(COLOURS)]
    return colours


def _length_name(cell: Cell) -> str:
    return format_length(cell.length) if cell.length else f"~{round(cell.x / 1024)}K"


def _score_text(cell: Cell) -> str:
    text = f"{cell.score:.1f}"
    if cell.truncated:
        text += f"* [{cell.raw_score:.0f}]"
    return f"{text} (n={cell.n})"


def score_table(all_cells: Sequence[Cell]) -> list[list[str]]:
    """One row per (task set, length), one column per method; each cell gives its own n."""
    methods = _methods(all_cells)
    header = ["task set", "length", *methods]
    by_key = {(c.task_set, c.length, c.method): c for c in all_cells}
    rows = [header]
    for task_set, length in sorted({(c.task_set, c.length) for c in all_cells}):
        present = [by_key.get((task_set, length, m)) for m in methods]
        first = next(c for c in present if c is not None)
        rows.append(
            [task_set, _length_name(first)] + [_score_text(c) if c else "-" for c in present]
        )
    return rows


def cost_table(all_cells: Sequence[Cell]) -> list[list[str]]:
    header = [
        "task set",
        "length",
        "method",
        "n",
        "root tok",
        "sub tok",
        "cost $",
        "wall s",
        "iters",
        "sub-calls",
        "status",
    ]
    rows = [header]
    for c in all_cells:
        statuses: dict[str, int] = defaultdict(int)
        for r in c.rows:
            statuses[r["status"]] += 1
        cost = "?" if c.cost is None else f"{c.cost:.4f}"
        rows.append(
            [
                c.task_set,
                _length_name(c),
                c.method,
                str(c.n),
                f"{mean(_tokens(r, 'root') for r in c.rows):,.0f}",
                f"{mean(_tokens(r, 'sub') for r in c.rows):,.0f}",
                cost,
                f"{c.wall_s:.1f}",
                f"{c.mean_of('iterations'):.1f}",
                f"{c.mean_of('sub_calls'):.1f}",
                ", ".join(f"{k} {v}" for k, v in sorted(statuses.items())),
            ]
        )
    return rows


def _markdown_table(rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(rows[0]) + " |", "|" + "---|" * len(rows[0])]
    lines += ["| " + " | ".join(r) + " |" for r in rows[1:]]
    return "\n".join(lines)


def _swatch(colour: str) -> str:
    return f"<i class='swatch' style='background:{colour}'></i>"


def _html_table(rows: Sequence[Sequence[str]], colours: Mapping[str, str] | None = None) -> str:
    """A table; a header that names a method in ``colours`` gets that method's swatch."""
    colours = colours or {}
    head = "".join(
        f"<th>{_swatch(colours[h]) if h in colours else ''}{escape(h)}</th>" for h in rows[0]
    )
    body = "".join("<tr>" + "".join(f"<td>{escape(v)}</td>" for v in r) + "</tr>" for r in rows[1:])
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


NOTE = (
    "Scores are means x 100 over the tasks of each cell; (n=...) is how many tasks that cell "
    "averages (S-NIAH and book-needle: needle found; OOLONG: exact match, "
    "0.75^|error| for numbers; OOLONG-Pairs: F1; codeqa: accuracy; logs: exact). "
    "`*`: some prompts did not fit the model's window and were cut; as in the paper they score "
    "0, and the score of the cut prompt is in square brackets."
)


def _info_lines(info: dict[str, Any]) -> list[str]:
    if not info:
        return []
    return [
        f"- root model: `{info.get('root_model')}` (window {info.get('root_window')} tokens)",
        f"- sub-model: `{info.get('sub_model')}`",
        # run.json is rewritten by every `rlmx bench run`: its n is the last command's, not the
        # cells'; each cell shows its own n in the tables.
        f"- seed {info.get('seed')}, rlmx {info.get('rlmx_version')}, "
        f"limits {json.dumps(info.get('limits'))}",
    ]


def charts(all_cells: Sequence[Cell]) -> list[str]:
    """Score and tokens per task set against length, then total cost and wall time per
    method: every method in the colour :func:`method_colours` gives it, in all of them."""
    methods = _methods(all_cells)
    colours = method_colours(methods)
    svgs = []
    for task_set in sorted({c.task_set for c in all_cells}):
        mine = [c for c in all_cells if c.task_set == task_set]
        score = {m: [(c.x, c.score) for c in mine if c.method == m] for m in _methods(mine)}
        tokens = {m: [(c.x, c.tokens) for c in mine if c.method == m] for m in _methods(mine)}
        ticks = sorted({(c.x, _length_name(c)) for c in mine})
        svgs.append(
            line_chart(
                f"{task_set}: score by context length",
                score,
                x_label="context length (tokens)",
                y_label="score",
                y_max=100,
                x_ticks=ticks,
                colours=colours,
            )
        )
        svgs.append(
            line_chart(
                f"{task_set}: tokens per task",
                tokens,
                x_label="context length (tokens)",
                y_label="tokens (root + sub)",
                x_ticks=ticks,
                colours=colours,
            )
        )
    totals: dict[str, float] = defaultdict(float)
    wall: dict[str, float] = defaultdict(float)
    unknown = set()
    for c in all_cells:
        if c.cost is None:
            unknown.add(c.method)
        totals[c.method] += c.cost or 0.0
        wall[c.method] += c.wall_s * c.n
    if any(totals.values()):
        title = "total cost per method" + (" (some prices unknown)" if unknown else "")
        cost = {m: totals[m] for m in methods}
        svgs.append(bar_chart(title, cost, y_label="USD", colours=colours))
    wall_time = {m: wall[m] for m in methods}
    svgs.append(
        bar_chart("total wall time per method", wall_time, y_label="seconds", colours=colours)
    )
    return [s for s in svgs if s]


def render_markdown(rows: Sequence[Row], info: dict[str, Any]) -> str:
    all_cells = cells(rows)
    parts = ["# rlmx bench report", "", *_info_lines(info), "", "## Scores", ""]
    parts += [_markdown_table(score_table(all_cells)), "", NOTE, "", "## Cost and effort", ""]
    parts += [_markdown_table(cost_table(all_cells)), ""]
    return "\n".join(parts)


CSS = (
    "body{font-family:sans-serif;max-width:1200px;margin:2em auto;padding:0 1em;color:#222}"
    "table{border-collapse:collapse;margin:1em 0;font-size:13px}"
    "th,td{border:1px solid #ccc;padding:3px 8px;text-align:right}"
    "th{background:#f3f3f3}td:first-child,th:first-child{text-align:left}"
    ".charts{display:flex;flex-wrap:wrap;gap:12px}"
    ".legend{display:flex;flex-wrap:wrap;gap:16px;margin:0.5em 0;font-size:13px}"
    ".swatch{display:inline-block;width:12px;height:12px;margin-right:5px;"
    "vertical-align:-1px;border-radius:2px}"
)


def legend(methods: Sequence[str]) -> str:
    """The method colours of every chart, once, as HTML."""
    colours = method_colours(methods)
    items = "".join(
        f"<span data-series='{escape(m)}'>{_swatch(colours[m])}{escape(m)}</span>" for m in methods
    )
    return f"<div class='legend'>{items}</div>"


def render_html(rows: Sequence[Row], info: dict[str, Any]) -> str:
    all_cells = cells(rows)
    methods = _methods(all_cells)
    colours = method_colours(methods)
    items = "".join(f"<li>{escape(line[2:]).replace('`', '')}</li>" for line in _info_lines(info))
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>rlmx bench report</title>"
        f"<style>{CSS}</style></head><body><h1>rlmx bench report</h1><ul>{items}</ul>"
        f"<h2>Scores</h2>{_html_table(score_table(all_cells), colours)}<p>{escape(NOTE)}</p>"
        f"<h2>Charts</h2>{legend(methods)}<div class='charts'>{''.join(charts(all_cells))}</div>"
        f"<h2>Cost and effort</h2>{_html_table(cost_table(all_cells))}</body></html>\n"
    )


def write_report(out: Path, rows: Sequence[Row]) -> tuple[Path, Path]:
    info_path = out / "run.json"
    info: dict[str, Any] = (
        json.loads(info_path.read_text(encoding="utf-8")) if info_path.exists() else {}
    )
    md, html = out / "report.md", out / "report.html"
    md.write_text(render_markdown(rows, info), encoding="utf-8")
    html.write_text(render_html(rows, info), encoding="utf-8")
    return md, html
