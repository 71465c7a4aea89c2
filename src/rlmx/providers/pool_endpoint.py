"""One endpoint of a pool as the router sees it: its load, its health and its tally.

The state is plain numbers read and changed from the event loop the pool is called from, so
a pool used by successive loops (one ``RLM.run`` after another) carries its health and its
figures over; only the probe is a task, and a probe of a loop that has gone is forgotten.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

import httpx

from rlmx.providers.openai_compat import OpenAICompatClient
from rlmx.providers.pool_spec import Endpoint, PoolPolicy
from rlmx.types import Usage

# Weight of the newest latency in the recent-latency average that breaks ties between
# endpoints with as many calls in flight.
LATENCY_WEIGHT = 0.3


@dataclass(frozen=True, slots=True)
class EndpointStats:
    """What one endpoint of a pool has done so far.

    ``calls`` answered, ``failures`` attempts that failed (each moved to another endpoint or
    raised), ``usage`` of the answered calls, ``mean_latency_s`` over them and
    ``recent_latency_s`` (a moving average, None before the first answer). ``healthy``: it
    takes traffic; otherwise ``down_for_s`` seconds remain before its next probe.
    """

    url: str
    healthy: bool
    in_flight: int
    max_in_flight: int
    calls: int
    failures: int
    probes: int
    usage: Usage
    mean_latency_s: float
    recent_latency_s: float | None
    down_for_s: float

    def to_dict(self) -> dict[str, object]:
        return {
            "url": self.url,
            "healthy": self.healthy,
            "in_flight": self.in_flight,
            "max_in_flight": self.max_in_flight,
            "calls": self.calls,
            "failures": self.failures,
            "probes": self.probes,
            "usage": self.usage.to_dict(),
            "mean_latency_s": round(self.mean_latency_s, 4),
            "recent_latency_s": None
            if self.recent_latency_s is None
            else round(self.recent_latency_s, 4),
            "down_for_s": round(self.down_for_s, 3),
        }


@dataclass(slots=True)
class EndpointState:
    """The router's view of one endpoint, and the client that calls it."""

    endpoint: Endpoint
    client: OpenAICompatClient
    policy: PoolPolicy
    in_flight: int = 0
    calls: int = 0
    failures: int = 0
    probes: int = 0
    failures_in_row: int = 0
    usage: Usage = field(default_factory=Usage)
    latency_total: float = 0.0
    recent_latency: float | None = None
    down_until: float | None = None
    last_pick: int = 0
    probe_task: asyncio.Task[bool] | None = None

    @property
    def url(self) -> str:
        return self.endpoint.url

    @property
    def up(self) -> bool:
        return self.down_until is None

    @property
    def has_room(self) -> bool:
        return self.in_flight < self.endpoint.max_in_flight

    @property
    def probing(self) -> bool:
        task = self.probe_task
        return task is not None and not task.done() and not task.get_loop().is_closed()

    def rank(self) -> tuple[int, float, int]:
        """Lower is better: fewest calls in flight, then the lowest recent latency, then the
        one picked longest ago."""
        return (self.in_flight, self.recent_latency or 0.0, self.last_pick)

    def answered(self, usage: Usage, latency_s: float) -> None:
        self.calls += 1
        self.failures_in_row = 0
        self.usage = self.usage + usage
        self.latency_total += latency_s
        previous = self.recent_latency
        self.recent_latency = (
            latency_s
            if previous is None
            else LATENCY_WEIGHT * latency_s + (1 - LATENCY_WEIGHT) * previous
        )

    def failed(self, now: float) -> float:
        """Take the endpoint out; returns the back-off in seconds."""
        self.failures += 1
        self.failures_in_row += 1
        self.mark_down(now)
        return self.backoff()

    def backoff(self) -> float:
        doublings = max(self.failures_in_row - 1, 0)
        return min(self.policy.backoff_s * 2.0 ** min(doublings, 30), self.policy.max_backoff_s)

    def mark_down(self, now: float) -> None:
        self.down_until = now + self.backoff()

    def probe_due(self, now: float) -> bool:
        return self.down_until is not None and now >= self.down_until and not self.probing

    async def probe(self) -> bool:
        """``GET {url}/models``: any answer below 500 means the server is back."""
        self.probes += 1
        headers = (
            {"Authorization": f"Bearer {self.endpoint.api_key}"} if self.endpoint.api_key else {}
        )
        try:
            async with httpx.AsyncClient(timeout=self.policy.probe_timeout_s) as http:
                response = await http.get(f"{self.url}/models", headers=headers)
        except httpx.HTTPError:
            ok = False
        else:
            ok = response.status_code < 500
        if ok:
            self.down_until = None
        else:
            self.failures_in_row += 1
            self.mark_down(time.monotonic())
        return ok

    def stats(self, now: float) -> EndpointStats:
        return EndpointStats(
            url=self.url,
            healthy=self.up,
            in_flight=self.in_flight,
            max_in_flight=self.endpoint.max_in_flight,
            calls=self.calls,
            failures=self.failures,
            probes=self.probes,
            usage=self.usage,
            mean_latency_s=self.latency_total / self.calls if self.calls else 0.0,
            recent_latency_s=self.recent_latency,
            down_for_s=max((self.down_until or now) - now, 0.0),
        )
