"""`rlmx bench report`: one colour per method in every chart, and each cell's own n."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

from rlmx.bench.methods import METHOD_NAMES, BenchModels, MethodResult
from rlmx.bench.report import cells, charts, method_colours, render_html, render_markdown
from rlmx.bench.runner import Runner, read_rows
from rlmx.bench.tasks import Task
from rlmx.providers.scripted import ScriptedModel
from rlmx.types import Usage

from .test_bench import _models, _plan, _task


class _Fixed:
    """A method that answers from a table: ``right`` indices get the gold answer."""

    def __init__(
        self, name: str, right: Sequence[int] = (), *, wall_s: float = 1.0, truncated: bool = False
    ) -> None:
        self.name = name
        self.right = set(right)
        self.wall_s = wall_s
        self.truncated = truncated

    async def run(self, task: Task, models: BenchModels, recorder: Any) -> MethodResult:
        return MethodResult(
            answer=str(task.gold) if task.index in self.right else "no",
            status="completed",
            root=Usage(prompt_tokens=1_000 * (task.index + 1), completion_tokens=10),
            cost_usd=0.01,
            wall_s=self.wall_s,
            truncated=self.truncated,
        )


async def _rows(out: Path, plan: Sequence[tuple[str, int, Sequence[int], _Fixed]]) -> list[Any]:
    """Rows written by the real runner: (task set, length, task indices, method) per entry."""
    runner = Runner(_plan([]), _models(ScriptedModel([])), out)
    out.mkdir(parents=True, exist_ok=True)
    for task_set, length, indices, method in plan:
        for index in indices:
            task = _task(task_set=task_set, length=length, index=index, gold=f"g{index}")
            await runner.run_one(task, method)
    return read_rows(out)


def _svgs(html: str) -> list[ElementTree.Element]:
    found = re.findall(r"<svg\b.*?</svg>", html, flags=re.S)
    return [ElementTree.fromstring(svg) for svg in found]


def _series_colours(svg: ElementTree.Element) -> dict[str, set[str]]:
    """Every colour each series is painted in within one chart (fills, lines, legend)."""
    seen: dict[str, set[str]] = {}
    for element in svg.iter():
        name = element.get("data-series")
        if name is None:
            continue
        fill = element.get("fill")
        colour = fill if fill and fill != "none" else element.get("stroke")
        assert colour, ElementTree.tostring(element)
        seen.setdefault(name, set()).add(colour)
    return seen


async def test_a_method_has_one_colour_in_every_chart(tmp_path: Path) -> None:
    # Methods differ per task set, and the alphabetical order of the bar charts (direct,
    # retrieval, rlm) differs from the registry's (rlm, direct, retrieval): a colour by
    # position in each chart would not survive this.
    rows = await _rows(
        tmp_path,
        [
            ("sniah", 8192, range(2), _Fixed("rlm", [0, 1], wall_s=30)),
            ("sniah", 8192, range(2), _Fixed("direct", [0], wall_s=5)),
            ("sniah", 8192, range(2), _Fixed("retrieval", [1], wall_s=9)),
            ("sniah", 16384, range(2), _Fixed("rlm", [0], wall_s=40)),
            ("sniah", 16384, range(2), _Fixed("direct", [], wall_s=6)),
            ("logs", 0, range(2), _Fixed("retrieval", [0], wall_s=3)),
            ("logs", 0, range(2), _Fixed("direct", [0, 1], wall_s=2)),
        ],
    )
    html = render_html(rows, {})
    svgs = _svgs(html)
    titles = [svg.findtext("{http://www.w3.org/2000/svg}title") for svg in svgs]
    assert titles == [
        "logs: score by context length",
        "logs: tokens per task",
        "sniah: score by context length",
        "sniah: tokens per task",
        "total cost per method",
        "total wall time per method",
    ]
    per_method: dict[str, set[str]] = {}
    charts_with: dict[str, int] = {}
    for svg in svgs:
        for name, colours in _series_colours(svg).items():
            per_method.setdefault(name, set()).update(colours)
            charts_with[name] = charts_with.get(name, 0) + 1
    assert charts_with == {"rlm": 4, "direct": 6, "retrieval": 6}
    assert all(len(colours) == 1 for colours in per_method.values()), per_method
    colour = {name: colours.pop() for name, colours in per_method.items()}
    assert len(set(colour.values())) == 3
    assert colour == method_colours(["rlm", "direct", "retrieval"])

    # The legend and the score table's header swatches use the same colours.
    legend = re.search(r"<div class='legend'>(.*?)</div>", html)
    assert legend
    swatches = re.findall(r"<span data-series='([^']+)'><i[^>]*background:(#\w+)", legend[1])
    assert dict(swatches) == colour
    assert [m for m, _ in swatches] == ["rlm", "direct", "retrieval"]
    header = re.findall(r"<th><i class='swatch' style='background:(#\w+)'></i>([^<]+)</th>", html)
    assert {m: c for c, m in header} == colour

    # A report of a subset keeps each method's colour.
    only_retrieval = [r for r in rows if r["method"] == "retrieval"]
    for svg in _svgs(render_html(only_retrieval, {})):
        assert _series_colours(svg) == {"retrieval": {colour["retrieval"]}}


def test_registered_methods_keep_their_colour_whatever_the_subset() -> None:
    everything = method_colours(METHOD_NAMES)
    assert len(set(everything.values())) == len(METHOD_NAMES)
    for name in METHOD_NAMES:
        assert method_colours([name]) == {name: everything[name]}
    others = method_colours(["rlm", "zeta", "alpha"])
    assert others["rlm"] == everything["rlm"]
    assert len({*others.values(), *everything.values()}) == len(METHOD_NAMES) + 2


def _table(md: str, first_header: str) -> list[list[str]]:
    lines = md.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"| {first_header} |"))
    table = []
    for line in lines[start:]:
        if not line.startswith("|"):
            break
        if not line.startswith("|---"):
            table.append([c.strip() for c in line.strip("|").split("|")])
    return table


async def test_every_cell_shows_its_own_n(tmp_path: Path) -> None:
    rows = await _rows(
        tmp_path,
        [
            ("sniah", 8192, range(3), _Fixed("rlm", [0, 1])),  # --n 3
            ("sniah", 8192, [2], _Fixed("direct", [2], truncated=True)),  # --only 2
            ("sniah", 16384, range(4), _Fixed("rlm", [0])),  # --n 4
            ("sniah", 16384, range(2), _Fixed("direct", [0, 1])),  # --n 2
        ],
    )
    # A rerun of a task replaces its row: it still counts once.
    rows += await _rows(tmp_path / "again", [("sniah", 16384, [1], _Fixed("direct", [1]))])
    info = {"n": 20, "seed": 0, "root_model": "m", "sub_model": "m"}  # the last command's n
    md = render_markdown(rows, info)

    assert _table(md, "task set | length")[0:1] == [["task set", "length", "rlm", "direct"]]
    assert _table(md, "task set | length")[1:] == [
        ["sniah", "8K", "66.7 (n=3)", "0.0* [100] (n=1)"],
        ["sniah", "16K", "25.0 (n=4)", "100.0 (n=2)"],
    ]
    cost = _table(md, "task set | length | method")
    n_col = cost[0].index("n")
    assert [(r[1], r[2], r[n_col]) for r in cost[1:]] == [
        ("8K", "direct", "1"),
        ("8K", "rlm", "3"),
        ("16K", "direct", "2"),
        ("16K", "rlm", "4"),
    ]
    assert "n = 20" not in md
    assert "n=20" not in md

    html = render_html(rows, info)
    tds = re.findall(r"<td>([^<]*)</td>", html)
    for text in ("66.7 (n=3)", "0.0* [100] (n=1)", "25.0 (n=4)", "100.0 (n=2)"):
        assert text in tds
    assert "n = 20" not in html
    assert {(c.length, c.method): c.n for c in cells(rows)} == {
        (8192, "direct"): 1,
        (8192, "rlm"): 3,
        (16384, "direct"): 2,
        (16384, "rlm"): 4,
    }
    for svg in charts(cells(rows)):
        ElementTree.fromstring(svg)
