"""The demo seam: a real question on shipped or generated data, and how to check its answer.

A :class:`Demo` prepares its data in a working folder (copied from the package's data, or
generated from a seed), asks one or more :class:`DemoQuestion` of it, and checks each answer
against a result it computed itself (from Loghub's structured files, a generator's culprit, a
gold list, an ``ast`` walk). The runner (``rlmx demo run NAME``) runs every question through
:class:`rlmx.RLM` like ``rlmx run`` does, records it in the run store, and prints the answer
beside the expected result with a pass/fail line.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

Level = Literal["code", "dsl"]


@dataclass(frozen=True, slots=True)
class DemoQuestion:
    """One question of a demo. ``name`` is short and stable (``error-ranking``); ``level`` is
    the capability level it is asked at; ``max_depth`` > 1 lets the root delegate to nested
    runs (``rlm_query``)."""

    name: str
    query: str
    level: Level = "code"
    max_depth: int = 1
    max_iterations: int = 12


@dataclass(frozen=True, slots=True)
class Prepared:
    """A demo's data, ready: the context (a path to a file or directory, or documents) and the
    questions with what each should find (``expected``, by question name, for display and the
    check)."""

    context: Path | list[str] | str
    questions: tuple[DemoQuestion, ...]
    expected: dict[str, Any] = field(default_factory=dict)
    notes: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Check:
    """A checked answer: ``passed``, and one line that says why (``expected 14, got 12``, or
    ``precision 0.83, recall 0.71``); ``score`` in [0, 1] where a demo measures more than
    right or wrong."""

    question: str
    passed: bool
    detail: str
    score: float | None = None


class Demo(Protocol):
    """A demonstration: ``name`` (``logs``), a one-line ``summary``, the data's source note."""

    name: str
    summary: str
    source: str

    def prepare(self, workdir: Path, *, seed: int) -> Prepared:
        """Write or copy the data under ``workdir`` (created by the caller) and say what to ask."""
        ...

    def check(self, prepared: Prepared, question: DemoQuestion, answer: str | None) -> Check:
        """Check one answer against the result computed from the data, never from a model."""
        ...
