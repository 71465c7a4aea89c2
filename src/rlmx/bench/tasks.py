"""Benchmark tasks: one record per question, with its context, its gold answer and its seed.

Every generator is deterministic: the same task set, length, count and seed give byte-identical
tasks, so a run can be resumed, repeated or compared across methods and models.

Lengths are in tokens. Where a generator needs characters it converts with
:data:`CHARS_PER_TOKEN` (book prose) or its own documented rule; see ``docs/benchmarks.md``.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from rlmx.context import ContextValue
from rlmx.context.sources import from_path
from rlmx.errors import UsageError

# A task's context: a text, a list of documents, or a directory (a Path) that the RLM reads on
# demand through the directory store and the baselines read whole.
TaskContext = ContextValue | Path

# Characters per token of English book prose under the Qwen2.5 tokenizer: the body of War and
# Peace (3,208,273 chars) is 777,270 tokens (docs/benchmarks.md), 4.13 chars a token.
CHARS_PER_TOKEN = 4.1

ScorerName = Literal["contains", "oolong", "pairs_f1", "choice", "exact", "number"]


@dataclass(frozen=True, slots=True)
class Task:
    """One question over one context. ``gold`` and ``meta`` are JSON-serialisable."""

    task_set: str
    length: int
    index: int
    seed: int
    query: str
    context: TaskContext = field(repr=False)
    gold: Any
    scorer: ScorerName
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def task_id(self) -> str:
        return f"{self.task_set}/{self.length}/{self.index}"

    @property
    def context_chars(self) -> int:
        plain = self.plain_context()
        if isinstance(plain, str):
            return len(plain)
        return sum(len(part) for part in plain)

    def plain_context(self) -> ContextValue:
        """The context as a str or a list of str; a directory becomes one ``# file: PATH``
        document per file, the form ``context[i]`` has in the REPL."""
        if isinstance(self.context, Path):
            return directory_documents(self.context)
        return self.context

    def context_text(self) -> str:
        """The context as one string, as a plain prompt would carry it."""
        plain = self.plain_context()
        return plain if isinstance(plain, str) else "\n\n".join(plain)

    def record(self) -> dict[str, Any]:
        """What a result row says about its task (never the context itself)."""
        return {
            "task_id": self.task_id,
            "task_set": self.task_set,
            "length": self.length,
            "index": self.index,
            "seed": self.seed,
            "query": self.query,
            "gold": self.gold,
            "context_chars": self.context_chars,
            "meta": self.meta,
        }


@dataclass(frozen=True, slots=True)
class TaskSetSpec:
    """A generator and what it accepts: ``generate(length, n, seed, data_dir) -> tasks``."""

    name: str
    description: str
    default_lengths: tuple[int, ...]
    generate: Callable[[int, int, int, Path], list[Task]]
    fixed_length: bool = False


_LENGTH = re.compile(r"^(\d+(?:\.\d+)?)([kKmM]?)$")


def parse_length(text: str) -> int:
    """``8k`` -> 8192, ``1m`` -> 1048576, ``5000`` -> 5000 (powers of two, as RULER names them)."""
    match = _LENGTH.match(text.strip())
    if match is None:
        raise UsageError(f"bad length {text!r}: use a token count such as 8k, 128k, 1m or 5000")
    number, unit = float(match.group(1)), match.group(2).lower()
    scale = {"": 1, "k": 1024, "m": 1024 * 1024}[unit]
    value = int(number * scale)
    if value <= 0:
        raise UsageError(f"bad length {text!r}: must be positive")
    return value


def parse_lengths(text: str | None) -> list[int] | None:
    if text is None or not text.strip():
        return None
    return [parse_length(part) for part in text.split(",") if part.strip()]


def format_length(tokens: int) -> str:
    """The short name of a length: 8192 -> ``8K``, 1048576 -> ``1M``."""
    if tokens >= 1024 * 1024 and tokens % (1024 * 1024) == 0:
        return f"{tokens // (1024 * 1024)}M"
    if tokens >= 1024 and tokens % 1024 == 0:
        return f"{tokens // 1024}K"
    return str(tokens)


def split_csv(text: str, known: Sequence[str], what: str) -> list[str]:
    names = [part.strip() for part in text.split(",") if part.strip()]
    unknown = [n for n in names if n not in known]
    if unknown or not names:
        raise UsageError(
            f"unknown {what} {', '.join(unknown) or text!r}; known: {', '.join(known)}"
        )
    return list(dict.fromkeys(names))


# A row records its task's size and a baseline reads its text more than once; a directory
# task's files are read once per process, not at each of those.
@functools.lru_cache(maxsize=4)
def directory_documents(tree: Path) -> tuple[str, ...]:
    """Every file the directory store lists under ``tree`` (same skips: binary, .gitignore)."""
    _, corpus = from_path(tree).open_local()
    documents = []
    for index, doc in enumerate(corpus.docs):
        text = corpus.text(index)
        documents.append(doc.header + (text if isinstance(text, str) else text[:]))
    return tuple(documents)
