"""The L1 loop: the root model sends one JSON command per turn, rlmx runs it, until ``final``.

No model-written code runs: each command is checked (:mod:`rlmx.dsl.commands`) and executed by
rlmx's own helpers (:mod:`rlmx.dsl.machine`). A malformed command gets a corrective message
and costs a turn, never a crash. The run shares the engine's budget, sub-call bridge (so
``llm_query`` is counted and recorded as in code mode) and recorder: every command appears in
the trajectory as a cell whose code is the command's JSON.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from rlmx.context.base import ContextHandle
from rlmx.context.corpus import Corpus
from rlmx.dsl import prompts
from rlmx.dsl.commands import CommandError, parse_reply
from rlmx.dsl.machine import Machine
from rlmx.engine.budget import Budget
from rlmx.engine.repeats import RepeatWatch
from rlmx.engine.subcalls import SubCallBridge
from rlmx.errors import LimitExceeded
from rlmx.providers.base import CallOptions
from rlmx.types import Message, RunStatus

RootCall = Callable[[list[Message], int, CallOptions], Awaitable[str]]
# (iteration, code, output, error, final)
RecordCell = Callable[[int, str, str, "str | None", "str | None"], None]


class RunState(Protocol):
    iterations: int
    partial: str | None


@dataclass(slots=True)
class CommandRun:
    """What one run in the command language needs from the engine."""

    query: str
    handle: ContextHandle
    corpus: Corpus
    bridge: SubCallBridge
    budget: Budget
    max_iterations: int
    max_output: int
    state: RunState
    unstick: bool
    root_call: RootCall
    record: RecordCell


async def run_commands(run: CommandRun) -> tuple[str | None, RunStatus]:
    query, state = run.query, run.state
    machine = Machine(
        run.corpus,
        query=run.bridge.query,
        query_batched=run.bridge.query_batched,
        query_map=run.bridge.query_map,
        max_output=run.max_output,
    )
    directory = run.handle.kind == "directory"
    messages = [
        Message(
            "system",
            prompts.system_prompt(run.handle, sub_calls=run.budget.limits.sub_calls_enabled),
        ),
        Message("user", prompts.first_turn(query)),
    ]
    repeats = RepeatWatch(enabled=run.unstick)
    for iteration in range(1, run.max_iterations + 1):
        run.budget.check()
        state.iterations = iteration
        text = await run.root_call(messages, iteration, repeats.sampling(iteration))
        messages.append(Message("assistant", text))
        if repeats.stalled(text):
            return await _last_chance(run, machine, messages), "stalled"
        try:
            command = parse_reply(text, directory=directory)
        except CommandError as exc:
            run.record(iteration, text.strip()[:2_000], "", str(exc), None)
            messages.append(Message("user", prompts.corrective(query, str(exc))))
            continue
        try:
            outcome = await machine.execute(command)
        except CommandError as exc:
            run.record(iteration, command.to_json(), "", str(exc), None)
            messages.append(Message("user", prompts.corrective(query, str(exc))))
            continue
        run.record(iteration, command.to_json(), outcome.output, None, outcome.final)
        if outcome.final is not None:
            return outcome.final, "completed"
        if outcome.output.strip():
            state.partial = outcome.output.strip()[-2_000:]
        messages.append(Message("user", prompts.next_turn(query, outcome.output)))
    return await _last_chance(run, machine, messages), "max_iterations"


async def _last_chance(run: CommandRun, machine: Machine, messages: list[Message]) -> str | None:
    """Out of turns: one last call asking for a final answer from what was already seen."""
    try:
        run.budget.check()
    except LimitExceeded:  # a limit is used up: keep the best partial answer
        return run.state.partial
    ask = [*messages, Message("user", prompts.last_chance(run.query))]
    text = await run.root_call(ask, run.state.iterations + 1, {})
    try:
        command = parse_reply(text, directory=run.handle.kind == "directory")
        if command.name == "final":
            outcome = await machine.execute(command)
            return outcome.final
    except CommandError:
        pass
    return run.state.partial
