"""A question asked of its own context.

:class:`~rlmx.demos.base.Prepared` carries one context for all of a demo's questions. A demo
whose questions each read a different file (one log per system) says which with a
:class:`ScopedQuestion`; the runner reads the context of a question with :func:`context_of`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from rlmx.demos.base import DemoQuestion, Prepared


@dataclass(frozen=True, slots=True)
class ScopedQuestion(DemoQuestion):
    """A :class:`DemoQuestion` with its own context (a path, a text, or documents)."""

    context: Path | list[str] | str | None = None


def context_of(prepared: Prepared, question: DemoQuestion) -> Path | list[str] | str:
    """The question's own context if it has one, else the demo's."""
    if isinstance(question, ScopedQuestion) and question.context is not None:
        return question.context
    return prepared.context
