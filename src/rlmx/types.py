"""Frozen records shared across layers."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Literal

Role = Literal["system", "user", "assistant"]
RunStatus = Literal["completed", "max_iterations", "stalled", "budget_exceeded", "timeout", "error"]


@dataclass(frozen=True, slots=True)
class Message:
    role: Role
    content: str

    def to_dict(self) -> dict[str, str]:
        return {"role": self.role, "content": self.content}


@dataclass(frozen=True, slots=True)
class Usage:
    """Token counts of one call or of many.

    ``prompt_tokens`` is the whole input. ``cached_tokens`` (read from a prompt cache) and
    ``cache_write_tokens`` (written to one, which Anthropic bills above the input rate) are
    parts of it; the rest is plain input. ``cache_hits`` counts sub-calls answered from the
    sub-call cache instead of a model: they cost no tokens, so they add to no other count.
    """

    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    calls: int = 0
    cache_write_tokens: int = 0
    cache_hits: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            prompt_tokens=self.prompt_tokens + other.prompt_tokens,
            completion_tokens=self.completion_tokens + other.completion_tokens,
            cached_tokens=self.cached_tokens + other.cached_tokens,
            calls=self.calls + other.calls,
            cache_write_tokens=self.cache_write_tokens + other.cache_write_tokens,
            cache_hits=self.cache_hits + other.cache_hits,
        )

    def to_dict(self) -> dict[str, int]:
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "cached_tokens": self.cached_tokens,
            "cache_write_tokens": self.cache_write_tokens,
            "total_tokens": self.total_tokens,
            "calls": self.calls,
            "cache_hits": self.cache_hits,
        }


@dataclass(frozen=True, slots=True)
class Completion:
    """One model reply. ``model`` is the answering client's ``provider:model`` spec;
    ``cost_usd`` is None when the model's price is unknown.

    ``top_logprobs``: the most likely first tokens of the reply with their log-probabilities
    (before any constraint on decoding), when the call asked for them with the option
    ``top_logprobs=N`` and the backend reports them; empty otherwise. ``endpoint``: the
    server that answered, when the client spreads calls over several (an endpoint pool)."""

    text: str
    usage: Usage
    model: str
    latency_s: float = 0.0
    cost_usd: float | None = None
    finish_reason: str | None = None
    top_logprobs: tuple[tuple[str, float], ...] = ()
    endpoint: str | None = None


@dataclass(frozen=True, slots=True)
class CellResult:
    """What running one code cell produced."""

    output: str
    error: str | None = None
    final: str | None = None
    truncated: bool = False
    duration_s: float = 0.0
    # The class name of the exception that ended the cell ("NameError"), None when it did not
    # raise: what the engine decides on, where ``error`` is the text the model is shown.
    error_type: str | None = None


@dataclass(frozen=True, slots=True)
class UsageReport:
    """Token totals of a run: the root model's own calls, every other call, and per depth."""

    root: Usage = field(default_factory=Usage)
    sub: Usage = field(default_factory=Usage)
    by_depth: dict[int, Usage] = field(default_factory=dict)

    @property
    def total(self) -> Usage:
        return self.root + self.sub

    def to_dict(self) -> dict[str, object]:
        return {
            "root": self.root.to_dict(),
            "sub": self.sub.to_dict(),
            "total": self.total.to_dict(),
            "by_depth": {str(d): u.to_dict() for d, u in sorted(self.by_depth.items())},
        }


@dataclass(frozen=True, slots=True)
class RunResult:
    """The outcome of one RLM run. ``answer`` is the best partial answer when not completed."""

    answer: str | None
    status: RunStatus
    iterations: int
    sub_calls: int
    usage: UsageReport
    cost_usd: float | None
    wall_s: float
    run_id: str
    error: str | None = None
    # A typed answer, parsed and validated (a pydantic model, or JSON data); None otherwise.
    value: Any = None

    def to_dict(self) -> dict[str, object]:
        data: dict[str, object] = {
            "answer": self.answer,
            "status": self.status,
            "iterations": self.iterations,
            "sub_calls": self.sub_calls,
            "usage": self.usage.to_dict(),
            "cost_usd": self.cost_usd,
            "wall_s": round(self.wall_s, 3),
            "run_id": self.run_id,
            "error": self.error,
        }
        if self.value is not None:
            data["value"] = _plain(self.value)
        return data

    def value_json(self) -> str | None:
        """The typed answer as JSON text, or None when there is none."""
        return None if self.value is None else json.dumps(_plain(self.value), ensure_ascii=False)


def _plain(value: Any) -> Any:
    """A typed answer as JSON data."""
    dump = getattr(value, "model_dump", None)
    return dump(mode="json") if callable(dump) else value
