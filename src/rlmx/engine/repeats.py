"""Replies that come back unchanged, and how to get out of them.

Greedy decoding answers an identical prompt with an identical reply: in one measured run a
refused answer came back 28 times in a row, until the iteration cap. So after a repeated reply
the next call samples (seeded by the turn, so a run stays reproducible), and once one reply has
come :data:`STALL_AFTER` times the run stops with the best answer it has.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from rlmx.providers.base import CallOptions

UNSTICK_TEMPERATURE = 0.8
STALL_AFTER = 3
_SEED_BASE = 1_000


@dataclass(slots=True)
class RepeatWatch:
    enabled: bool = True
    _seen: dict[str, int] = field(default_factory=dict)
    _repeated: bool = False

    def stalled(self, reply: str) -> bool:
        """Count ``reply``; true once the same reply (whitespace aside) came ``STALL_AFTER``
        times."""
        key = " ".join(reply.split())
        times = self._seen.get(key, 0) + 1
        self._seen[key] = times
        self._repeated = times > 1
        return self.enabled and times >= STALL_AFTER

    def sampling(self, iteration: int) -> CallOptions:
        """Options for the next call: none (greedy), or seeded sampling after a repeat."""
        if self.enabled and self._repeated:
            return {"temperature": UNSTICK_TEMPERATURE, "seed": _SEED_BASE + iteration}
        return {}
