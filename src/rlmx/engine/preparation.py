"""What a small root model is given before its first turn: the question's kind of work, its
words' counts in the context, and for a question of meaning a drafted ``llm_map``.

Each step is a root-model call the engine makes for itself (:class:`EngineCall`), recorded as
a sub-call of its kind (``route``, ``plan``) so the trace shows it, with its tokens counted as
the root model's.
"""

from __future__ import annotations

import asyncio
import re
import time
from dataclasses import dataclass

from rlmx.config import Assists
from rlmx.context import Context
from rlmx.context.helpers import Helpers
from rlmx.engine.budget import Budget
from rlmx.engine.cache import SubCallCache, complete_cached
from rlmx.engine.examples import Kind
from rlmx.engine.planning import PLAN_OPTIONS, MapPlan, plan_messages, read_plan, sample_lines
from rlmx.engine.prompts import prompt_style_for
from rlmx.engine.routing import ROUTING_OPTIONS, read_kind, routing_messages
from rlmx.engine.run import Run
from rlmx.engine.search_keys import KeyCount, rank_keys
from rlmx.engine.turns import Turns
from rlmx.providers.base import CallOptions, LLMClient
from rlmx.trajectory.base import Recorder
from rlmx.trajectory.events import SubCall
from rlmx.types import Message


@dataclass(frozen=True, slots=True)
class EngineCall:
    """Root-model calls the engine makes for itself within one run."""

    root: LLMClient
    budget: Budget
    recorder: Recorder
    run_id: str
    depth: int
    cache: SubCallCache | None = None

    async def __call__(self, messages: list[Message], options: CallOptions, *, kind: str) -> str:
        started = time.perf_counter()
        completion, cached = await complete_cached(self.root, messages, options, self.cache)
        self.budget.record(completion, depth=self.depth, is_root=self.depth == 0)
        self.recorder.on_event(
            SubCall(
                run_id=self.run_id,
                depth=self.depth + 1,
                call_id=f"{self.run_id}.{kind}",
                kind=kind,
                model=self.root.spec,
                prompt=messages[-1].content,
                response=completion.text,
                usage=completion.usage.to_dict(),
                latency_s=round(completion.latency_s or time.perf_counter() - started, 4),
                cost_usd=completion.cost_usd,
                cached=cached,
            )
        )
        return completion.text

    @classmethod
    def for_run(cls, run: Run) -> EngineCall:
        tree = run.tree
        return cls(
            root=tree.models.root,
            budget=tree.budget,
            recorder=tree.recorder,
            run_id=run.run_id,
            depth=run.depth,
            cache=tree.cache,
        )


async def route(call: EngineCall, query: str) -> Kind:
    """The kind of work ``query`` needs (one short root-model call); lookup when unreadable."""
    reply = await call(routing_messages(query), ROUTING_OPTIONS, kind="route")
    return read_kind(reply) or "lookup"


async def prepare_turns(
    call: EngineCall,
    *,
    query: str,
    context: Context,
    assists: Assists,
    small: bool,
    max_output_chars: int,
    sub_calls: bool,
) -> Turns:
    """The turn policy of one run; a capable model (``small=False``) gets no assists."""
    assists = assists if small else Assists.none()
    kind: Kind = "lookup"
    if assists.route:
        kind = await route(call, query)
    style = prompt_style_for(small=small, max_output_chars=max_output_chars, kind=kind)
    keys: list[KeyCount] = []
    if assists.rank_keys and kind != "classify":
        _, corpus = await asyncio.to_thread(context.open_local)
        counter = Helpers(corpus)
        keys = await asyncio.to_thread(
            rank_keys,
            query,
            lambda pattern: counter.count(pattern, flags=re.IGNORECASE),
            spell=lambda pattern: _first_match(counter, pattern),
        )
    plan = None
    if assists.plan and kind == "classify" and sub_calls:
        plan = await _plan(call, query, context)
    return Turns(
        style=style,
        query=query,
        assists=assists,
        kind=kind,
        keys=keys,
        plan=plan,
        context_kind=context.kind,
    )


# The pace of llm_map on the embedded 1.5B sub-model on 2 cores (about 0.2 s an item, measured
# on 600 items: docs/benchmarks.md), and the share of the run's time a drafted map may take.
MAP_SECONDS_PER_ITEM = 0.2
PLAN_TIME_SHARE = 0.5


async def _plan(call: EngineCall, query: str, context: Context) -> MapPlan | None:
    """A drafted ``llm_map`` for a question of meaning over a text of lines."""
    value, _ = await asyncio.to_thread(context.open_local)
    if not isinstance(value, str):
        return None  # documents and directories are not a list of lines
    lines = await asyncio.to_thread(value.splitlines)
    most = _most_items(call.budget)
    filled = sum(1 for line in lines if line.strip())
    if most is not None and filled / 2 > most:
        return None  # even the fewest items a plan may keep would not fit the run
    reply = await call(plan_messages(query, sample_lines(lines)), PLAN_OPTIONS, kind="plan")
    plan = read_plan(reply, lines, query)
    if plan is not None and most is not None and plan.items > most:
        return None
    return plan


def _first_match(helpers: Helpers, pattern: str) -> str | None:
    """The first text ``pattern`` matches, as the context spells it."""
    hits = helpers.grep(pattern, around=0, limit=1, flags=re.IGNORECASE)
    return hits[0].text if hits else None


def _most_items(budget: Budget) -> int | None:
    """How many items a drafted map may cover: what half the run's time left allows at the
    measured pace of a map on the embedded models, and no more than the sub-calls left. A
    map over every line of a novel (51,861 items) would take hours; the root model can search
    first instead."""
    bounds = []
    remaining = budget.remaining_s()
    if remaining is not None:
        bounds.append(int(remaining * PLAN_TIME_SHARE / MAP_SECONDS_PER_ITEM))
    calls = budget.sub_calls_left()
    if calls is not None:
        bounds.append(calls)
    return min(bounds) if bounds else None
