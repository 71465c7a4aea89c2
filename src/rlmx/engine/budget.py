"""Accounting shared by a whole recursion tree: tokens, cost, sub-calls, time.

One :class:`Budget` is created per top-level run and handed to every nested run, so limits
hold across recursion levels. It is touched from the event loop and from REPL threads, hence
the lock.

A nested run in another process (an executor's remote child) cannot share the object: the
tree's budget lends it a :class:`Lease` instead, and the child's own :class:`Budget` enforces
it. The rule, for tokens, dollars and sub-calls alike: a child is lent half of what the tree has
neither spent nor lent (all of it once that is under a thousandth of the limit); when it has
spent its share it asks for more and gets half of what is free then (at least what a batch it
is about to send needs, if that much is free); it stops when nothing is free. What is lent
counts as spent for everyone else until the child returns, and then its exact use is recorded
(:meth:`Budget.settle`) and the rest comes back. So the tree never passes a limit (beyond the
last call's own tokens, as in one process), and a child alone stops where a child in this
process would; concurrent children may stop early by what a sibling holds unspent.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from rlmx.config import Limits
from rlmx.errors import LimitExceeded
from rlmx.types import Completion, Usage, UsageReport

# The limited amounts, by their name in Limits.
_CAPS = {"tokens": "max_tokens", "cost_usd": "max_cost_usd", "sub_calls": "max_sub_calls"}


@dataclass(frozen=True, slots=True)
class Amounts:
    """Tokens, dollars and sub-calls: spent, lent, or still wanted."""

    tokens: int = 0
    cost_usd: float = 0.0
    sub_calls: int = 0

    def __add__(self, other: Amounts) -> Amounts:
        return Amounts(
            self.tokens + other.tokens,
            self.cost_usd + other.cost_usd,
            self.sub_calls + other.sub_calls,
        )

    def most(self, other: Amounts) -> Amounts:
        """The larger of each amount."""
        return Amounts(
            max(self.tokens, other.tokens),
            max(self.cost_usd, other.cost_usd),
            max(self.sub_calls, other.sub_calls),
        )


@dataclass(frozen=True, slots=True)
class Lease:
    """What a remote nested run may spend of its tree's budget: ``allowance`` itself, while
    the rest of the tree has spent or holds ``outside``; ``elapsed_s`` of the tree's wall clock
    were gone when it was lent."""

    allowance: Amounts
    outside: Amounts
    elapsed_s: float


@dataclass(frozen=True, slots=True)
class Spending:
    """What one budget's own calls used: a remote nested run's part of its tree."""

    usage: UsageReport
    cost_usd: float
    cost_known: bool
    sub_calls: int
    tripped: str | None = None  # the sub-call limit's message, if the run used them all


# A remote child's ask for more: what it has spent, and what it is short of (a sub-call
# batch's size; 1 for "any more"). The answer is its new lease, or None when none comes.
Refill = Callable[[Amounts, Amounts], Lease | None]


class Budget:
    def __init__(
        self,
        limits: Limits,
        *,
        clock: Callable[[], float] = time.monotonic,
        lease: Lease | None = None,
        refill: Refill | None = None,
    ) -> None:
        self.limits = limits
        self._clock = clock
        self._started = clock() - (lease.elapsed_s if lease is not None else 0.0)
        self._lock = threading.Lock()
        self._root = Usage()
        self._sub = Usage()
        self._by_depth: dict[int, Usage] = {}
        self._cost = 0.0
        self._cost_known = True
        self._sub_calls = 0
        self._tripped: LimitExceeded | None = None
        # Borrowed (a remote child's view of its tree) or lent (to remote children).
        self._lease = lease
        self._refill = refill
        self._lent: dict[str, Amounts] = {}
        self._first: dict[str, Amounts] = {}

    @property
    def elapsed_s(self) -> float:
        return self._clock() - self._started

    def remaining_s(self) -> float | None:
        if self.limits.timeout_s is None:
            return None
        return max(0.0, self.limits.timeout_s - self.elapsed_s)

    @property
    def sub_calls(self) -> int:
        return self._sub_calls

    @property
    def cost_usd(self) -> float | None:
        """Total cost, or None when any call's price was unknown."""
        return round(self._cost, 8) if self._cost_known else None

    def check(self) -> None:
        """Raise :class:`LimitExceeded` if any tree-wide limit is used up."""
        if self._tripped is not None:
            raise self._tripped
        limits = self.limits
        remaining = self.remaining_s()
        if remaining is not None and remaining <= 0:
            raise LimitExceeded("timeout", f"{limits.timeout_s:g} s wall clock used")
        short = self._short(Amounts(tokens=1, cost_usd=1.0))
        if short != Amounts() and self._borrow(short):
            short = self._short(Amounts(tokens=1, cost_usd=1.0))
        if short.tokens:
            total = self._seen("tokens")
            raise LimitExceeded("max_tokens", f"{total:,} of {limits.max_tokens:,} tokens used")
        if short.cost_usd:
            raise LimitExceeded(
                "max_cost_usd", f"${self._seen('cost_usd'):.4f} of ${limits.max_cost_usd:.4f} spent"
            )

    def reserve_sub_call(self) -> None:
        """Count a sub-call before it is made; refuse it when the tree has used them all."""
        self.check()
        cap = self.limits.max_sub_calls
        if cap is None:
            with self._lock:
                self._sub_calls += 1
            return
        if self._short(Amounts(sub_calls=1)).sub_calls:
            self._borrow(Amounts(sub_calls=1))
        with self._lock:
            if self._sub_calls >= self._ceiling("sub_calls"):
                refused = LimitExceeded("max_sub_calls", f"all {cap} sub-calls used")
                if not self._lent:  # what is lent may come back; else the tree has none left
                    # Ends the whole tree at its next check, even if model code catches this.
                    self._tripped = refused
                raise refused
            self._sub_calls += 1

    def sub_calls_left(self, want: int = 0) -> int | None:
        """How many sub-calls the tree may still make; None when unlimited. A remote child
        about to make ``want`` of them asks its tree for what its lease lacks first."""
        cap = self.limits.max_sub_calls
        if cap is None:
            return None
        short = self._short(Amounts(sub_calls=want))
        if short.sub_calls:
            self._borrow(short)
        with self._lock:
            return max(0, cap - self._sub_calls - self._others().sub_calls)

    def record(self, completion: Completion, *, depth: int, is_root: bool) -> None:
        """Add one model call. ``is_root`` is true only for the top-level run's root model."""
        usage = completion.usage
        with self._lock:
            if is_root:
                self._root = self._root + usage
            else:
                self._sub = self._sub + usage
            self._by_depth[depth] = self._by_depth.get(depth, Usage()) + usage
            if completion.cost_usd is None:
                self._cost_known = False
            else:
                self._cost += completion.cost_usd

    def report(self) -> UsageReport:
        with self._lock:
            return UsageReport(root=self._root, sub=self._sub, by_depth=dict(self._by_depth))

    # A remote child's side of a lease ----------------------------------------------------------

    def spending(self) -> Spending:
        """What this budget's own calls used (a remote child's, to settle with its tree)."""
        with self._lock:
            return Spending(
                usage=UsageReport(root=self._root, sub=self._sub, by_depth=dict(self._by_depth)),
                cost_usd=self._cost,
                cost_known=self._cost_known,
                sub_calls=self._sub_calls,
                tripped=None if self._tripped is None else self._tripped.detail,
            )

    def _own(self) -> Amounts:
        return Amounts((self._root + self._sub).total_tokens, self._cost, self._sub_calls)

    def _others(self) -> Amounts:
        """What the rest of the tree has spent or holds, as this budget knows it."""
        total = self._lease.outside if self._lease is not None else Amounts()
        for held in self._lent.values():
            total = total + held
        return total

    def _ceiling(self, name: str) -> float:
        """How far this budget's own use of ``name`` may go before it asks for more."""
        if self._lease is not None:
            return float(getattr(self._lease.allowance, name))
        cap = getattr(self.limits, _CAPS[name])
        return float(cap) - float(getattr(self._others(), name))

    def _seen(self, name: str) -> Any:
        """The tree's use of ``name`` as this budget sees it (an int of tokens, dollars)."""
        with self._lock:
            return getattr(self._own(), name) + getattr(self._others(), name)

    def _short(self, want: Amounts) -> Amounts:
        """Of ``want`` (1 token or dollar: any more; n sub-calls), what this budget lacks."""
        with self._lock:
            own = self._own()
            lacks = {}
            for name, cap_name in _CAPS.items():
                needed = getattr(want, name)
                if not needed or getattr(self.limits, cap_name) is None:
                    continue
                room = self._ceiling(name) - getattr(own, name)
                if name == "sub_calls" and needed > room:
                    lacks[name] = int(needed - max(room, 0))
                elif name != "sub_calls" and room <= 0:
                    lacks[name] = needed
            return Amounts(**lacks)

    def _borrow(self, short: Amounts) -> bool:
        """Ask the tree for more (a remote child only; a blocking round trip to the driver)."""
        if self._refill is None:
            return False
        with self._lock:
            spent = self._own()
        lease = self._refill(spent, short)
        if lease is None:
            return False
        with self._lock:
            self._lease = lease
        return True

    # The tree's side: lending to remote children ---------------------------------------------

    def lend(self, key: str) -> Lease:
        """Lend the remote child ``key`` its first share."""
        with self._lock:
            self._lent[key] = Amounts()
            self._lent[key] = self._first[key] = self._grant(Amounts(), Amounts(1, 1.0, 1))
            return self._lease_of(key)

    def top_up(self, key: str, spent: Amounts, short: Amounts) -> Lease | None:
        """More for the child ``key``, which has spent ``spent`` and lacks ``short``."""
        with self._lock:
            held = self._lent.get(key)
            if held is None:
                return None
            self._lent[key] = held.most(spent)  # what it spent beyond its share is spent
            self._lent[key] = self._grant(self._lent[key], short)
            return self._lease_of(key)

    def restart(self, key: str) -> None:
        """The child ``key`` starts again from its first share (its worker was lost)."""
        with self._lock:
            if key in self._lent:
                self._lent[key] = self._first[key]

    def settle(self, key: str, spent: Spending) -> None:
        """The child ``key`` has returned: record its exact use, and take back its lease."""
        usage = spent.usage.root + spent.usage.sub
        with self._lock:
            self._drop(key)
            self._sub = self._sub + usage
            for depth, used in spent.usage.by_depth.items():
                self._by_depth[depth] = self._by_depth.get(depth, Usage()) + used
            self._cost += spent.cost_usd
            self._cost_known = self._cost_known and spent.cost_known
            self._sub_calls += spent.sub_calls
            if spent.tripped is not None and self._tripped is None:
                self._tripped = LimitExceeded("max_sub_calls", spent.tripped)

    def release(self, key: str) -> None:
        """The child ``key`` ended without a result: its lease comes back whole."""
        with self._lock:
            self._drop(key)

    def _drop(self, key: str) -> None:
        self._lent.pop(key, None)
        self._first.pop(key, None)

    def _grant(self, held: Amounts, short: Amounts) -> Amounts:
        """``held`` plus, for each amount ``short`` names, half of what is free (all of it under
        a thousandth of the limit), at least what is short if that much is free."""
        grown = dataclasses.asdict(held)
        free = self._free()
        for name, cap_name in _CAPS.items():
            cap = getattr(self.limits, cap_name)
            wanted = getattr(short, name)
            if cap is None or not wanted:
                continue
            left = getattr(free, name)
            if left <= cap / 1000:
                share = left
            elif name == "cost_usd":
                share = left / 2
            else:
                share = (left + 1) // 2
            floor = wanted if name == "sub_calls" else 0  # a batch's size, if that much is free
            grown[name] += min(left, max(share, floor))
        return Amounts(**grown)

    def _free(self) -> Amounts:
        """What the tree has neither spent nor lent (0 where there is no limit)."""
        taken = self._own() + self._others()
        amounts = {}
        for name, cap_name in _CAPS.items():
            cap = getattr(self.limits, cap_name)
            amounts[name] = 0 if cap is None else max(cap - getattr(taken, name), 0)
        return Amounts(**amounts)

    def _lease_of(self, key: str) -> Lease:
        held = self._lent[key]
        others = self._own()
        for other, amount in self._lent.items():
            if other != key:
                others = others + amount
        if self._lease is not None:
            others = others + self._lease.outside
        return Lease(allowance=held, outside=others, elapsed_s=self.elapsed_s)
