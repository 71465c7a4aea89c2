"""One run of a recursion tree: where it stands, and what every level records of it (the root
model's calls, and each cell or command it ran)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from rlmx.context import Context
from rlmx.engine.answers import AnswerShape
from rlmx.engine.cache import complete_cached
from rlmx.engine.subcalls import SubCallBridge
from rlmx.engine.tree import Tree
from rlmx.providers.base import CallOptions
from rlmx.trajectory.events import CellExecuted, CellStarted, IterationStarted, RootReply
from rlmx.types import CellResult, Message

log = logging.getLogger(__name__)


@dataclass(slots=True)
class Run:
    """One run: its place in the tree, its question and context, the bridge its sub-calls go
    through, and how far it got (``iterations``, and ``partial``, the best answer so far)."""

    tree: Tree
    run_id: str
    depth: int
    query: str
    context: Context
    bridge: SubCallBridge
    iterations: int = 0
    partial: str | None = None
    preamble: str | None = None  # said before the question in the first turn
    shape: AnswerShape | None = None  # what a typed answer must look like
    value: Any = None  # the typed answer, once validated
    corrected: bool = False  # whether the answer's shape has had its corrective turn

    async def root_call(
        self, messages: list[Message], iteration: int, options: CallOptions | None = None
    ) -> str:
        """One call of the root model, counted and recorded; its reply's text. A greedy call
        asked before is answered from the tree's cache, if it has one: the same conversation
        decodes to the same reply."""
        root = self.tree.models.root
        options = options or {}
        self.tree.recorder.on_event(
            IterationStarted(run_id=self.run_id, depth=self.depth, iteration=iteration)
        )
        completion, _ = await complete_cached(root, messages, options, self.tree.cache)
        self.tree.budget.record(completion, depth=self.depth, is_root=self.depth == 0)
        log.debug(
            "root %s iteration %d: %d tokens", root.spec, iteration, completion.usage.total_tokens
        )
        self.tree.recorder.on_event(
            RootReply(
                run_id=self.run_id,
                depth=self.depth,
                iteration=iteration,
                text=completion.text,
                usage=completion.usage.to_dict(),
                latency_s=round(completion.latency_s, 4),
                cost_usd=completion.cost_usd,
                model=root.spec,
            )
        )
        return completion.text

    def cell_started(self, iteration: int, index: int, code: str) -> None:
        self.tree.recorder.on_event(
            CellStarted(
                run_id=self.run_id, depth=self.depth, iteration=iteration, index=index, code=code
            )
        )

    def record_cell(self, iteration: int, index: int, code: str, cell: CellResult) -> None:
        self.tree.recorder.on_event(
            CellExecuted(
                run_id=self.run_id,
                depth=self.depth,
                iteration=iteration,
                index=index,
                code=code,
                output=cell.output,
                error=cell.error,
                final=cell.final,
                duration_s=round(cell.duration_s, 6),
            )
        )
