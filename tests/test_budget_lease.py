"""Leases of a tree's budget to nested runs in other processes (``engine/budget.py``): a child
alone stops where a child in the same process would; concurrent children never take the tree
past a limit; what a child used is recorded once, exactly, when it returns."""

from __future__ import annotations

import pytest

from rlmx.config import Limits
from rlmx.engine.budget import Amounts, Budget
from rlmx.errors import LimitExceeded
from rlmx.types import Completion, Usage


def call(tokens: int, cost: float = 0.0) -> Completion:
    return Completion(
        text="x", usage=Usage(prompt_tokens=tokens, calls=1), model="m", cost_usd=cost
    )


def child_of(tree: Budget, key: str) -> Budget:
    def refill(spent: Amounts, short: Amounts):  # type: ignore[no-untyped-def]
        return tree.top_up(key, spent, short)

    return Budget(tree.limits, lease=tree.lend(key), refill=refill)


def spend_until_refused(budget: Budget, tokens: int) -> tuple[int, str]:
    calls = 0
    while True:
        try:
            budget.check()
        except LimitExceeded as exc:
            return calls, str(exc)
        budget.record(call(tokens), depth=1, is_root=False)
        calls += 1


def test_a_lone_child_stops_where_a_child_in_this_process_would() -> None:
    limits = Limits(max_tokens=1_000)
    local = Budget(limits)
    local.record(call(130), depth=0, is_root=True)
    expected = spend_until_refused(local, 70)

    tree = Budget(limits)
    tree.record(call(130), depth=0, is_root=True)
    child = child_of(tree, "a")
    assert child.spending().usage.total.total_tokens == 0
    got = spend_until_refused(child, 70)
    assert got == expected
    assert got[1].endswith("1,040 of 1,000 tokens used")
    tree.settle("a", child.spending())
    assert tree.report() == local.report()
    with pytest.raises(LimitExceeded):
        tree.check()


def test_what_is_lent_counts_as_spent_until_it_comes_back() -> None:
    tree = Budget(Limits(max_tokens=1_000))
    first = tree.lend("a")
    assert first.allowance.tokens == 500  # half of what is free
    tree.record(call(499), depth=0, is_root=True)
    tree.check()
    tree.record(call(1), depth=0, is_root=True)
    with pytest.raises(LimitExceeded):
        tree.check()
    tree.release("a")
    tree.check()
    assert tree.report().total.total_tokens == 500


def test_concurrent_children_share_sub_calls_and_never_pass_the_limit() -> None:
    tree = Budget(Limits(max_sub_calls=20))
    children = [child_of(tree, key) for key in ("a", "b", "c")]
    made = [0, 0, 0]
    refused: set[int] = set()
    messages: set[str] = set()
    while len(refused) < 3:
        for i, child in enumerate(children):
            if i in refused:
                continue
            try:
                child.reserve_sub_call()
                made[i] += 1
            except LimitExceeded as exc:
                refused.add(i)
                messages.add(str(exc))
    assert messages == {"limit max_sub_calls reached: all 20 sub-calls used"}
    assert sum(made) == 20
    assert all(made)  # no child was starved
    for key, child in zip("abc", children, strict=True):
        tree.settle(key, child.spending())
    assert tree.sub_calls == 20
    with pytest.raises(LimitExceeded, match="all 20 sub-calls used"):
        tree.check()  # a child used the last one: the tree ends, as in one process


def test_a_batch_gets_what_it_needs_if_the_tree_has_it() -> None:
    tree = Budget(Limits(max_sub_calls=100))
    child = child_of(tree, "a")
    assert child.sub_calls_left() == 100
    assert child.sub_calls_left(want=90) == 100
    for _ in range(90):
        child.reserve_sub_call()
    assert child.sub_calls_left() == 10


def test_a_lost_attempt_gives_back_what_it_was_topped_up_with() -> None:
    tree = Budget(Limits(max_cost_usd=1.0))
    first = tree.lend("a").allowance.cost_usd
    more = tree.top_up("a", Amounts(cost_usd=first), Amounts(cost_usd=1.0))
    assert more is not None
    assert more.allowance.cost_usd > first
    tree.restart("a")
    again = tree.top_up("a", Amounts(), Amounts())
    assert again is not None
    assert again.allowance.cost_usd == first


def test_a_child_keeps_the_trees_clock() -> None:
    now = [100.0]
    tree = Budget(Limits(timeout_s=10), clock=lambda: now[0])
    now[0] += 4
    child = Budget(tree.limits, lease=tree.lend("a"), clock=lambda: now[0])
    assert child.remaining_s() == pytest.approx(6.0)


def test_a_child_without_the_limits_tree_wide_amounts_is_unlimited() -> None:
    tree = Budget(Limits(timeout_s=None))
    child = child_of(tree, "a")
    for _ in range(50):
        child.reserve_sub_call()
        child.record(call(10_000, cost=1.0), depth=1, is_root=False)
    child.check()
    tree.settle("a", child.spending())
    assert (tree.sub_calls, tree.cost_usd) == (50, 50.0)
