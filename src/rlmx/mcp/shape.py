"""Tool results kept short: JSON-able dicts whose long texts are cut with a visible marker.

A coding agent reads every character a tool returns, so each long text (an answer, a question,
an event's code or output) is cut to a budget, and the marker says how much was left out and,
where there is a way, how to read the rest.
"""

from __future__ import annotations

import datetime
import json
from typing import Any

from rlmx.trajectory.summary import RunSummary
from rlmx.types import CellResult, RunResult

PREVIEW_CHARS = 200
EVENT_FIELD_CHARS = 600


def clip(text: str, limit: int, *, more: str = "") -> str:
    """``text`` cut to ``limit`` characters, with a marker saying what was left out."""
    if len(text) <= limit:
        return text
    hint = f"; {more}" if more else ""
    return f"{text[:limit]}\n[... truncated: {len(text) - limit:,} more characters{hint}]"


def window(text: str, offset: int, limit: int, *, tool: str, run_id: str) -> dict[str, Any]:
    """``limit`` characters of ``text`` from ``offset``, and where the next window starts."""
    end = min(len(text), offset + limit)
    part = text[offset:end]
    if end < len(text):
        part += (
            f"\n[... truncated: {len(text) - end:,} more characters; call {tool} with "
            f"run_id={run_id!r} and offset={end} for the rest]"
        )
    return {"text": part, "chars": len(text), "next_offset": end if end < len(text) else None}


def usage_brief(result: RunResult) -> dict[str, int]:
    usage = result.usage
    return {
        "root_tokens": usage.root.total_tokens,
        "sub_tokens": usage.sub.total_tokens,
        "total_tokens": usage.total.total_tokens,
        "prompt_tokens": usage.total.prompt_tokens,
        "completion_tokens": usage.total.completion_tokens,
        "cached_tokens": usage.total.cached_tokens,
    }


def run_reply(result: RunResult, *, limit: int, notes: tuple[str, ...] = ()) -> dict[str, Any]:
    """What ``ask`` returns: the answer (cut, with the way to read it whole), status, usage."""
    more = f"read it whole with get_run(run_id={result.run_id!r}, offset=...)"
    return {
        "run_id": result.run_id,
        "status": result.status,
        "answer": None if result.answer is None else clip(result.answer, limit, more=more),
        "error": None if result.error is None else clip(result.error, PREVIEW_CHARS * 2),
        "iterations": result.iterations,
        "sub_calls": result.sub_calls,
        "usage": usage_brief(result),
        "cost_usd": result.cost_usd,
        "wall_s": round(result.wall_s, 3),
        "notes": list(notes),
    }


def cell_reply(cell: CellResult, *, limit: int) -> dict[str, Any]:
    """What ``session_execute`` returns: the cell's output (cut) and how it ended."""
    return {
        "output": clip(cell.output, limit),
        "error": None if cell.error is None else clip(cell.error, limit // 2),
        "error_type": cell.error_type,
        "final": None if cell.final is None else clip(cell.final, limit),
        "truncated": cell.truncated or len(cell.output) > limit,
        "duration_s": round(cell.duration_s, 3),
    }


def _when(ts: float | None) -> str | None:
    if ts is None:
        return None
    return datetime.datetime.fromtimestamp(ts, tz=datetime.UTC).isoformat(timespec="seconds")


def summary_brief(summary: RunSummary) -> dict[str, Any]:
    """One line of ``list_runs``."""
    elapsed = summary.elapsed_s
    return {
        "run_id": summary.id,
        "status": summary.status,
        "query": clip(summary.query or "", PREVIEW_CHARS),
        "answer": None if summary.answer is None else clip(summary.answer, PREVIEW_CHARS),
        "source": summary.source,
        "created_at": _when(summary.created_at),
        "root_model": summary.root_model,
        "wall_s": None if elapsed is None else round(elapsed, 3),
        "total_tokens": summary.total_tokens,
        "cost_usd": summary.cost_usd,
    }


def summary_full(summary: RunSummary, *, offset: int, limit: int) -> dict[str, Any]:
    """``get_run``: the run's totals, what it was asked, and a window of its answer."""
    data = summary_brief(summary)
    answer = summary.answer
    data |= {
        "query": clip(summary.query or "", limit),
        "answer": None
        if answer is None
        else window(answer, offset, limit, tool="get_run", run_id=summary.id),
        "error": summary.error,
        "sub_model": summary.sub_model,
        "iterations": summary.iterations,
        "sub_calls": summary.sub_calls,
        "prompt_tokens": summary.prompt_tokens,
        "completion_tokens": summary.completion_tokens,
        "events": summary.event_count,
        "started_at": _when(summary.started_at),
        "finished_at": _when(summary.finished_at),
        "context": summary.context,
        "limits": summary.limits,
    }
    return data


def _short(value: Any, limit: int) -> Any:
    if isinstance(value, str):
        return clip(value, limit)
    if isinstance(value, dict):
        return {k: _short(v, limit) for k, v in value.items()}
    if isinstance(value, list):
        return [_short(v, limit) for v in value]
    return value


def events_reply(
    rows: list[tuple[int, str]], *, budget: int, more_in_store: bool
) -> dict[str, Any]:
    """``run_events``: events in order, each long field cut, until ``budget`` characters."""
    events: list[dict[str, Any]] = []
    spent = 0
    for idx, line in rows:
        event = _short(json.loads(line), EVENT_FIELD_CHARS)
        size = len(json.dumps(event, ensure_ascii=False))
        if events and spent + size > budget:
            break
        events.append({"idx": idx, **event})
        spent += size
    complete = len(events) == len(rows) and not more_in_store
    return {
        "events": events,
        "next_after": None if complete else events[-1]["idx"] if events else None,
    }
