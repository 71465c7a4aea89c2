"""The level seam: how the turns of one run are driven.

A :class:`Level` is chosen above the engine (:class:`rlmx.RLM` picks one from ``level=``) and
handed to it as an object. The engine owns what every run shares (the context put in the
store, the sub-call bridge, the clock, the mapping of failures to a status, the result and its
events); the level owns the turns. Two implement it: :class:`rlmx.engine.code_level.CodeLevel`
(the root model writes Python for a REPL in a sandbox) and :class:`rlmx.dsl.session.DslLevel`
(it sends one DSL command a turn, and no model-written code runs).
"""

from __future__ import annotations

from typing import Protocol

from rlmx.engine.run import Run
from rlmx.types import RunStatus

# How a run's turns ended: the answer (None if there is none) and the run's status.
Ending = tuple[str | None, RunStatus]


class Session(Protocol):
    """The turns of one run at one level. Made before the run's clock starts; :meth:`drive`
    runs on the clock; :meth:`close` always follows, after the clock has stopped, once the
    sub-calls still pending have been cancelled."""

    async def drive(self) -> Ending: ...

    async def close(self) -> None: ...


class Level(Protocol):
    """How the turns of every run of a tree are driven."""

    def open(self, run: Run) -> Session: ...
