"""Limits that hold against hostile model code and hostile providers: batches capped by the
budget and run through a bounded pool, nested runs held to the tree's concurrency, a default
wall clock, a total timeout per HTTP request, and empty replies that are errors."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence
from typing import Any

from rlmx import RLM, Limits
from rlmx.context import ContextInput
from rlmx.engine.pool import bounded_map
from rlmx.providers.scripted import Rule, ScriptedModel
from rlmx.sandbox.base import HostFunctions
from rlmx.sandbox.inprocess import InProcessRepl
from rlmx.types import Completion, Message, RunResult

from .conftest import repl, scripted


def _run(root: ScriptedModel, sub: ScriptedModel | None = None, **limits: Any) -> RunResult:
    rlm = RLM(model=root, sub_model=sub, limits=Limits(**limits), sandbox=InProcessRepl)
    return rlm.run("What is the vault code?", "the vault code is ZETA-42\n")


class TaskCountingModel(ScriptedModel):
    """Answers every prompt, and notes the most asyncio tasks alive during any call."""

    def __init__(self) -> None:
        super().__init__(rules=[Rule("", "r")])
        self.most_tasks = 0

    async def complete(self, messages: Sequence[Message], **options: Any) -> Completion:
        self.most_tasks = max(self.most_tasks, len(asyncio.all_tasks()))
        return await super().complete(messages, **options)


# Finding 4: llm_query_batched made a coroutine per prompt before the budget was checked.


def test_a_batch_larger_than_the_sub_calls_left_is_refused_before_any_call() -> None:
    code = (
        "try:\n"
        "    answers = llm_query_batched(['x'] * 200_000)\n"
        "    print('answered', len(answers))\n"
        "except Exception as e:\n"
        "    print(type(e).__name__, e)"
    )
    root = scripted(repl(code), repl("FINAL('stopped')"))
    sub = scripted(rules={"x": "r"})
    result = _run(root, sub, max_sub_calls=5)
    shown = root.calls[1][-1].content
    assert "llm_query_batched of 200,000 prompts, but 5 sub-calls left" in shown
    assert "answered" not in shown
    assert sub.calls == []
    assert (result.status, result.answer, result.sub_calls) == ("completed", "stopped", 0)


def test_a_batch_within_the_budget_runs_through_a_bounded_pool() -> None:
    prompts = 3_000
    code = (
        f"answers = llm_query_batched([f'p{{i}}' for i in range({prompts})])\nFINAL(len(answers))"
    )
    sub = TaskCountingModel()
    result = _run(scripted(repl(code)), sub, concurrency=4)
    assert result.answer == str(prompts)
    assert result.sub_calls == prompts
    # A task per prompt would put thousands alive at once; the pool keeps its width of them.
    assert sub.most_tasks < 40


def test_llm_map_runs_through_the_same_bounded_pool() -> None:
    code = "answers = llm_map('Which?', [f'item {i}' for i in range(2_000)])\nFINAL(len(answers))"
    sub = TaskCountingModel()
    result = _run(scripted(repl(code)), sub, concurrency=4)
    assert result.answer == "2000"
    assert sub.most_tasks < 40


def test_the_pool_keeps_order_holds_its_width_and_raises_the_first_error() -> None:
    alive = 0
    most = 0

    async def double(n: int) -> int:
        nonlocal alive, most
        alive += 1
        most = max(most, alive)
        await asyncio.sleep(0)
        alive -= 1
        if n == 77:
            raise ValueError("item 77")
        return n * 2

    assert asyncio.run(bounded_map(double, range(50), 3)) == [n * 2 for n in range(50)]
    assert most == 3
    try:
        asyncio.run(bounded_map(double, range(100), 3))
    except ValueError as exc:
        assert str(exc) == "item 77"
    else:
        raise AssertionError("the pool swallowed an error")


# Finding 8: nested runs ignored --concurrency.


class CountingRepl(InProcessRepl):
    """An in-process REPL that counts how many are started and not yet closed."""

    lock = threading.Lock()
    live = 0
    most = 0

    async def start(self, context: ContextInput, host: HostFunctions) -> None:
        with CountingRepl.lock:
            CountingRepl.live += 1
            CountingRepl.most = max(CountingRepl.most, CountingRepl.live)
        await super().start(context, host)

    async def close(self) -> None:
        with CountingRepl.lock:
            CountingRepl.live -= 1
        await super().close()


def test_nested_runs_take_the_trees_concurrency() -> None:
    fan_out = (
        "import threading\n"
        "answers = []\n"
        "def ask(i):\n"
        "    answers.append(rlm_query(f'task {i}', context='a small context'))\n"
        "threads = [threading.Thread(target=ask, args=(i,)) for i in range(12)]\n"
        "for t in threads: t.start()\n"
        "for t in threads: t.join()\n"
        "print(sorted(answers))"
    )
    # Each nested run sleeps in its cell, so runs started together are alive together.
    nested = repl("import time\ntime.sleep(0.3)\nFINAL('done')")
    root = scripted(repl(fan_out), repl("FINAL('all done')"), rules={"task ": nested})
    CountingRepl.live = CountingRepl.most = 0
    rlm = RLM(model=root, limits=Limits(concurrency=3, max_depth=1), sandbox=CountingRepl)
    result = rlm.run("Fan out.", "root context")
    assert result.answer == "all done"
    assert "['done', 'done'" in root.calls[-1][-1].content
    assert CountingRepl.live == 0
    assert CountingRepl.most <= 1 + 3  # the root's REPL and three nested ones


def test_nested_runs_deeper_than_one_level_do_not_deadlock_on_the_slots() -> None:
    # With one slot per depth, a run holding its slot can still start a deeper nested run.
    outer = repl("FINAL(rlm_query('level two', context='ctx'))")
    inner = repl("FINAL('deep answer')")
    root = scripted(
        repl("FINAL(rlm_query('level one', context='ctx'))"),
        rules={"level one": outer, "level two": inner},
    )
    rlm = RLM(
        model=root, limits=Limits(concurrency=1, max_depth=2, timeout_s=60), sandbox=InProcessRepl
    )
    result = rlm.run("Go deep.", "root context")
    assert (result.status, result.answer) == ("completed", "deep answer")
