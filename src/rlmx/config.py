"""Value objects for limits and settings; the one place that reads environment variables."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from rlmx.errors import ConfigError

DEFAULT_OUTPUT_CHARS = 20_000
# A run's wall clock when none is given: a stalled provider or a stuck cell cannot hold a run
# (and its REPL worker) forever. Long runs set their own; ``timeout_s=None`` removes it.
DEFAULT_TIMEOUT_S = 3600.0


@dataclass(frozen=True, slots=True)
class Limits:
    """Hard limits shared by a whole recursion tree (the root run and every nested run).

    ``None`` means unlimited. ``max_iterations`` applies to each run in the tree separately;
    every other limit is a total over the tree. ``timeout_s`` is one hour unless given
    (:data:`DEFAULT_TIMEOUT_S`). ``concurrency`` bounds the sub-calls in flight, and apart from
    them the nested runs going at once at each depth (each holds a REPL worker).
    ``max_sub_calls=0`` turns sub-calls off (the paper's "no sub-calls" ablation): the prompt
    leaves ``llm_query``, ``llm_query_batched`` and ``rlm_query`` out, and calling them raises
    :class:`~rlmx.errors.SubCallsDisabled`.
    """

    max_iterations: int = 30
    max_sub_calls: int | None = None
    max_tokens: int | None = None
    max_cost_usd: float | None = None
    timeout_s: float | None = DEFAULT_TIMEOUT_S
    max_depth: int = 1
    max_output_chars: int = DEFAULT_OUTPUT_CHARS
    concurrency: int = 8

    def __post_init__(self) -> None:
        _positive("max_iterations", self.max_iterations)
        _positive("max_output_chars", self.max_output_chars)
        _positive("concurrency", self.concurrency)
        for name in ("max_tokens", "max_cost_usd", "timeout_s"):
            value = getattr(self, name)
            if value is not None:
                _positive(name, value)
        if self.max_sub_calls is not None and self.max_sub_calls < 0:
            raise ConfigError(
                f"max_sub_calls must be 0 (no sub-calls) or more, got {self.max_sub_calls}"
            )
        if self.max_depth < 0:
            raise ConfigError(f"max_depth must be 0 or more, got {self.max_depth}")

    @property
    def sub_calls_enabled(self) -> bool:
        return self.max_sub_calls != 0

    def to_dict(self) -> dict[str, object]:
        """Every limit by name, as the trace's ``run_started`` event records them."""
        return dataclasses.asdict(self)


@dataclass(frozen=True, slots=True)
class Assists:
    """What the engine does for a small root model beyond the prompt (``docs/prompts.md``).

    Each switch is one mechanism, so it can be turned off alone to measure what it brings.
    Capable models get none of them: they are given the full prompt and left to work.

    - ``route``: sort the question into a kind of work first (one root call) and show the
      worked example of that kind.
    - ``plan``: for a question of meaning over a list of lines, draft the ``llm_map`` call
      (which lines, what to ask each, the possible answers; one root call) and show it as code.
    - ``rank_keys``: count the question's words in the context and name the rarest.
    - ``drop_fruitless``: take back a reply whose code printed nothing, re-ran with the same
      output, or (for a lookup) printed only words of the question, and say so.
    - ``unstick``: sample (seeded) after a repeated reply; stop once one reply came three times.
    - ``ground``: refuse an answer, typed in after an error, an empty or a cut output, that no
      output showed as a whole word or number.
    - ``verify``: before a count is final, have it computed again another way; before an answer
      about labels is final, set it beside the printed counts of the labels it names.
    - ``explain_errors``: after a cell that imported a module that is not installed, say so and
      point to the standard library; after one that failed on a directory's ``context`` (used
      as a string, or its files opened with ``open``), name the helpers that read its files.
    """

    route: bool = True
    plan: bool = True
    rank_keys: bool = True
    drop_fruitless: bool = True
    unstick: bool = True
    ground: bool = True
    verify: bool = True
    explain_errors: bool = True

    @classmethod
    def none(cls) -> Assists:
        return cls(**dict.fromkeys(cls.__dataclass_fields__, False))

    @classmethod
    def without(cls, names: str) -> Assists:
        """All assists but those named, comma-separated (``"verify,route"``; ``"all"``)."""
        wanted = [n.strip().replace("-", "_") for n in names.split(",") if n.strip()]
        if wanted == ["all"]:
            return cls.none()
        known = list(cls.__dataclass_fields__)
        unknown = [n for n in wanted if n not in known]
        if unknown:
            raise ConfigError(
                f"unknown assist {', '.join(unknown)}: use all or any of {', '.join(known)}"
            )
        return cls(**{n: n not in wanted for n in known})


def _positive(name: str, value: float) -> None:
    if value <= 0:
        raise ConfigError(f"{name} must be positive, got {value}")


@dataclass(frozen=True, slots=True)
class Settings:
    """What rlmx reads from the environment, captured once at the edge."""

    env: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))

    @property
    def home(self) -> Path:
        """Where rlmx keeps assembled models and its database (``$RLMX_HOME``)."""
        explicit = self.env.get("RLMX_HOME")
        if explicit:
            return Path(explicit).expanduser()
        from platformdirs import user_cache_dir

        return Path(user_cache_dir("rlmx"))

    def get(self, name: str) -> str | None:
        value = self.env.get(name)
        return value if value else None

    def require(self, name: str, purpose: str) -> str:
        value = self.get(name)
        if value is None:
            raise ConfigError(f"{purpose} needs an API key: set the environment variable {name}")
        return value
