"""The live progress drawn on stderr while a run works."""

from __future__ import annotations

import io

from rich.console import Console

from rlmx.cli.progress import ProgressRecorder
from rlmx.trajectory.events import CellExecuted, SubCall


def _call(kind: str, latency: float, error: str | None = None, depth: int = 0) -> SubCall:
    return SubCall(
        run_id="r1",
        depth=depth,
        call_id="c",
        kind=kind,
        model="local:m",
        prompt="p",
        response="r",
        usage={"total_tokens": 10},
        latency_s=latency,
        cost_usd=None,
        error=error,
    )


def _cell() -> CellExecuted:
    return CellExecuted(
        run_id="r1",
        iteration=1,
        index=0,
        code='{"cmd": "map"}',
        output="a list of 300 items",
        error=None,
        final=None,
        duration_s=1.0,
    )


def _draw(*events: object) -> list[str]:
    out = io.StringIO()
    console = Console(file=out, width=200, color_system=None, force_terminal=False)
    with ProgressRecorder(console) as progress:
        for event in events:
            progress.on_event(event)  # type: ignore[arg-type]
    return [line for line in out.getvalue().splitlines() if "↳" in line or "│" in line]


def test_sub_calls_in_a_row_are_one_line_with_their_count_and_time() -> None:
    lines = _draw(
        _call("route", 0.5),
        *[_call("map", 0.25) for _ in range(300)],
        _call("map", 0.5, error="timed out"),
        _cell(),
        _call("llm", 1.5),
    )
    assert lines[0].strip() == "↳ route_query local:m 0.5 s"
    assert lines[1].strip() == (
        "↳ map_query ×301 local:m 75.5 s in all 1 failed, the first: timed out"
    )
    assert lines[2].strip().startswith('│ {"cmd": "map"}')  # the cell after its calls
    assert lines[3].strip() == "↳ llm_query local:m 1.5 s"  # drawn when the run ends
    assert len(lines) == 4


def test_calls_of_a_nested_run_are_not_counted_with_the_parents() -> None:
    lines = _draw(_call("llm", 1.0), _call("llm", 1.0, depth=1), _call("llm", 1.0))
    assert [line.strip() for line in lines] == [
        "↳ llm_query local:m 1.0 s",
        "↳ llm_query local:m 1.0 s",
        "↳ llm_query local:m 1.0 s",
    ]
