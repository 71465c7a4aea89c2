"""Prices per million tokens, so that every call can carry its cost.

A model missing from the table has an unknown price: its cost is ``None``, never 0.
Self-hosted providers (local, ollama, vllm, llamacpp, scripted) cost nothing per token.
"""

from __future__ import annotations

from dataclasses import dataclass

from rlmx.types import Usage


@dataclass(frozen=True, slots=True)
class Price:
    """Rates per 1M tokens. A missing cache rate means such tokens cost the plain input rate."""

    input: float
    output: float
    cached_input: float | None = None
    cache_write: float | None = None

    def cost(self, usage: Usage) -> float:
        cached_rate = self.input if self.cached_input is None else self.cached_input
        write_rate = self.input if self.cache_write is None else self.cache_write
        fresh = usage.prompt_tokens - usage.cached_tokens - usage.cache_write_tokens
        total = fresh * self.input + usage.cached_tokens * cached_rate
        total += usage.cache_write_tokens * write_rate
        total += usage.completion_tokens * self.output
        return total / 1_000_000


FREE_PROVIDERS = frozenset({"local", "ollama", "vllm", "llamacpp", "scripted"})

# USD per 1M tokens: input, output, cached input (a cache read) and, for Claude, a cache write;
# list prices as published by each provider. Anthropic bills a cache read at 0.1x the input rate
# and a write to the default 5-minute cache at 1.25x.
PRICES: dict[str, Price] = {
    "gpt-5": Price(1.25, 10.0, 0.125),
    "gpt-5-mini": Price(0.25, 2.0, 0.025),
    "gpt-5-nano": Price(0.05, 0.40, 0.005),
    "gpt-4.1": Price(2.0, 8.0, 0.50),
    "gpt-4.1-mini": Price(0.40, 1.60, 0.10),
    "gpt-4.1-nano": Price(0.10, 0.40, 0.025),
    "gpt-4o": Price(2.50, 10.0, 1.25),
    "gpt-4o-mini": Price(0.15, 0.60, 0.075),
    "o3": Price(2.0, 8.0, 0.50),
    "o4-mini": Price(1.10, 4.40, 0.275),
    "deepseek-chat": Price(0.27, 1.10, 0.07),
    "deepseek-reasoner": Price(0.55, 2.19, 0.14),
    "claude-opus-4-1": Price(15.0, 75.0, 1.50, 18.75),
    "claude-opus-4": Price(15.0, 75.0, 1.50, 18.75),
    "claude-sonnet-4-5": Price(3.0, 15.0, 0.30, 3.75),
    "claude-sonnet-4": Price(3.0, 15.0, 0.30, 3.75),
    "claude-haiku-4-5": Price(1.0, 5.0, 0.10, 1.25),
    "claude-3-5-haiku": Price(0.80, 4.0, 0.08, 1.0),
}


def price_for(provider: str, model: str) -> Price | None:
    """The price of ``model`` at ``provider``; matches dated names such as ``gpt-4o-2024-08-06``."""
    if provider in FREE_PROVIDERS:
        return Price(0.0, 0.0, 0.0)
    name = model.rsplit("/", 1)[-1].lower()  # openrouter names: "openai/gpt-5-mini"
    if name in PRICES:
        return PRICES[name]
    candidates = [key for key in PRICES if name.startswith(key + "-")]
    return PRICES[max(candidates, key=len)] if candidates else None


def cost_of(provider: str, model: str, usage: Usage) -> float | None:
    price = price_for(provider, model)
    return None if price is None else price.cost(usage)
