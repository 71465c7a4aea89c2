"""Accounting shared by a whole recursion tree: tokens, cost, sub-calls, time.

One :class:`Budget` is created per top-level run and handed to every nested run, so limits
hold across recursion levels. It is touched from the event loop and from REPL threads, hence
the lock.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from rlmx.config import Limits
from rlmx.errors import LimitExceeded
from rlmx.types import Completion, Usage, UsageReport


class Budget:
    def __init__(self, limits: Limits, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.limits = limits
        self._clock = clock
        self._started = clock()
        self._lock = threading.Lock()
        self._root = Usage()
        self._sub = Usage()
        self._by_depth: dict[int, Usage] = {}
        self._cost = 0.0
        self._cost_known = True
        self._sub_calls = 0
        self._tripped: LimitExceeded | None = None

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
        with self._lock:
            total = self._root.total_tokens + self._sub.total_tokens
            if limits.max_tokens is not None and total >= limits.max_tokens:
                raise LimitExceeded("max_tokens", f"{total:,} of {limits.max_tokens:,} tokens used")
            if limits.max_cost_usd is not None and self._cost >= limits.max_cost_usd:
                raise LimitExceeded(
                    "max_cost_usd", f"${self._cost:.4f} of ${limits.max_cost_usd:.4f} spent"
                )

    def reserve_sub_call(self) -> None:
        """Count a sub-call before it is made; refuse it when the tree has used them all."""
        self.check()
        with self._lock:
            cap = self.limits.max_sub_calls
            if cap is not None and self._sub_calls >= cap:
                # Ends the whole tree at its next check, even if model code catches this.
                self._tripped = LimitExceeded("max_sub_calls", f"all {cap} sub-calls used")
                raise self._tripped
            self._sub_calls += 1

    def sub_calls_left(self) -> int | None:
        """How many sub-calls the tree may still make; None when unlimited."""
        cap = self.limits.max_sub_calls
        with self._lock:
            return None if cap is None else max(0, cap - self._sub_calls)

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
