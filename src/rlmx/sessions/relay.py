"""The host functions of a session's REPL: the running question's, recorded cell by cell.

A session's worker outlives the runs that use it, so its host functions cannot be one run's
sub-call bridge: :class:`RelayHost` forwards each call to the bridge of the run in progress,
and writes down what every call answered while a cell runs. A successful cell is kept as a
:class:`CellRecord` (its code, a digest of its output, the answers it got); replaying the
records into a new worker, with the answers served from them instead of a model, rebuilds the
session's variables after a restart of the process.
"""

from __future__ import annotations

import json
import threading
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from rlmx.context import ContextInput
from rlmx.errors import SandboxError
from rlmx.sandbox.base import HostFunctions
from rlmx.sandbox.replay import digest

# (the call's key, what it answered), in the order the answers came.
Calls = list[tuple[str, Any]]


@dataclass(slots=True)
class CellRecord:
    """A cell that ran without an error, kept to be replayed into a new worker."""

    code: str
    digest: str
    calls: Calls = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "digest": self.digest, "calls": self.calls}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CellRecord:
        calls = [(str(key), answer) for key, answer in data.get("calls", [])]
        return cls(code=str(data["code"]), digest=str(data["digest"]), calls=calls)


def call_key(fn: str, args: Sequence[object]) -> str:
    """The same request gives the same key; contexts that are not JSON count by their text."""
    blob = json.dumps([fn, list(args)], sort_keys=True, ensure_ascii=False, default=str)
    return digest(blob)


class Replay:
    """The answers of one recorded cell, served by request (not by order: a cell's threads
    may ask in another order the second time). ``diverged`` says why the replay failed."""

    def __init__(self, calls: Sequence[tuple[str, Any]]) -> None:
        self._answers: dict[str, deque[Any]] = {}
        for key, answer in calls:
            self._answers.setdefault(key, deque()).append(answer)
        self.diverged: str | None = None

    def answer(self, key: str) -> Any:
        answers = self._answers.get(key)
        if answers:
            return answers.popleft()
        self.diverged = "it made a sub-call it had not made the first time"
        raise SandboxError("replay: this sub-call has no recorded answer")


class RelayHost:
    """Host functions that forward to ``current`` (the running question's bridge), or answer
    from a :class:`Replay` while recorded cells are replayed. Called from worker threads."""

    def __init__(self) -> None:
        self.current: HostFunctions | None = None
        self.replay: Replay | None = None
        self._recording: Calls | None = None
        self._lock = threading.Lock()

    def begin(self) -> Calls:
        """Start writing down the answers of the cell about to run."""
        calls: Calls = []
        self._recording = calls
        return calls

    def end(self) -> None:
        self._recording = None

    def _call(self, fn: str, args: Sequence[object], key_args: Sequence[object] = ()) -> Any:
        key = call_key(fn, key_args or args)
        if self.replay is not None:
            return self.replay.answer(key)
        host = self.current
        if host is None:
            raise SandboxError("no question is running in this session")
        answer = getattr(host, fn)(*args)
        with self._lock:
            if self._recording is not None:
                self._recording.append((key, answer))
        return answer

    def llm_query(self, prompt: str, model: str | None = None) -> str:
        return str(self._call("llm_query", (prompt, model)))

    def llm_query_batched(self, prompts: Sequence[str], model: str | None = None) -> list[str]:
        answers = self._call("llm_query_batched", (prompts, model), (list(prompts), model))
        return [str(a) for a in answers]

    def llm_map(
        self,
        instruction: str,
        items: Sequence[str],
        labels: Sequence[str] | None = None,
        model: str | None = None,
        examples: Sequence[tuple[str, str]] | None = None,
    ) -> list[str | None]:
        args = (instruction, items, labels, model, examples)
        plain = (
            instruction,
            list(items),
            None if labels is None else list(labels),
            model,
            None if examples is None else [list(e) for e in examples],
        )
        answers = self._call("llm_map", args, plain)
        return [None if a is None else str(a) for a in answers]

    def rlm_query(self, prompt: str, context: ContextInput | None = None) -> str:
        return str(self._call("rlm_query", (prompt, context)))
