"""The DSL level: the root model sends one DSL command per turn, rlmx runs it, until ``final``.

No model-written code runs, so no sandbox is started: each command is checked
(:mod:`rlmx.dsl.commands`) and executed by rlmx's own helpers (:mod:`rlmx.dsl.machine`). A
malformed command gets a corrective message and costs a turn, never a crash. The run shares
the engine's budget, sub-call bridge (so ``llm_query`` is counted and recorded as at the code
level) and recorder: every command appears in the trajectory as a cell whose code is the
command's JSON.
"""

from __future__ import annotations

import asyncio
import json

from rlmx.config import Assists
from rlmx.dsl.commands import Command, CommandError, MissingValue, maker_schema, parse_reply
from rlmx.dsl.machine import Machine, Outcome
from rlmx.dsl.prompts import corrective, first_turn, last_chance, next_turn, system_prompt
from rlmx.dsl.review import AnswerReview, ranks
from rlmx.engine.base import Ending
from rlmx.engine.examples import Kind
from rlmx.engine.preparation import EngineCall, route
from rlmx.engine.prompts import SMALL_MODEL_OUTPUT_CHARS
from rlmx.engine.repeats import RepeatWatch
from rlmx.engine.run import Run
from rlmx.errors import LimitExceeded
from rlmx.providers.base import CallOptions
from rlmx.types import CellResult, Message

# How many constrained replies a command that read an unsaved value waits for its maker.
MAKER_TRIES = 2
# A grep's sample for a question of counting: enough to see what the lines look like, as the
# count itself needs every match (extract and tally).
COUNT_HITS_SHOWN = 10


class DslLevel:
    """Drives each run in the DSL; ``assists.unstick`` applies to a small root model."""

    def __init__(self, *, assists: Assists | None = None) -> None:
        self._assists = assists or Assists()

    def open(self, run: Run) -> DslSession:
        return DslSession(run, self._assists)


class DslSession:
    """One run in the DSL."""

    def __init__(self, run: Run, assists: Assists) -> None:
        self._run = run
        small = run.tree.models.root.profile.small
        self._small, self._assists = small, assists
        self._review = AnswerReview(run.query) if small and assists.ground else None
        limit = run.tree.limits.max_output_chars
        self._max_output = min(limit, SMALL_MODEL_OUTPUT_CHARS) if small else limit
        self._repeats = RepeatWatch(enabled=assists.unstick and small)
        self._directory = False
        # A command that read a saved value nobody made: the 1.5B root sent the same
        # {"cmd": "stats", "name": "request_times"} three times, told each time to make the
        # list first. While it waits, the next reply is held to a command that makes that
        # value (a JSON schema), and the waiting command runs again once it exists.
        self._waiting: tuple[Command, str] | None = None
        self._maker_tries = 0
        # A reply that ignores the commands a result proposed (a functions filter that left
        # nothing, sent again as it was; an answer after a group that took the same text
        # every time) is held to the proposals. _last: the commands the last step ran (the
        # reply's, and one that waited for its value) and the commands its result proposed.
        self._last: tuple[frozenset[str], tuple[Command, ...]] = (frozenset(), ())
        self._held_to: tuple[Command, ...] = ()
        # Every command whose result a note rejected, with what that note proposed: the 1.5B
        # root extracted the word "WARN", then "ERROR", then "WARN" again.
        self._rejected: dict[str, tuple[Command, ...]] = {}

    async def close(self) -> None:
        return None

    async def drive(self) -> Ending:
        run = self._run
        handle = run.context.describe()
        self._directory = handle.kind == "directory"
        _, corpus = await asyncio.to_thread(run.context.open_local)
        bridge = run.bridge
        machine = Machine(
            corpus,
            query=bridge.query,
            query_batched=bridge.query_batched,
            query_map=bridge.query_map,
            max_output=self._max_output,
        )
        sub_calls = run.tree.limits.sub_calls_enabled
        kind: Kind = "lookup"
        if self._small and self._assists.route:
            kind = await route(EngineCall.for_run(run), run.query)
        if kind == "count":
            machine.hits_shown = COUNT_HITS_SHOWN
            machine.ranks_lines = ranks(run.query)
        if self._review is not None:
            self._review.counts = kind == "count"
        messages = [
            Message("system", system_prompt(handle, sub_calls=sub_calls, kind=kind)),
            Message("user", first_turn(run.query, kind, directory=self._directory)),
        ]
        for iteration in range(1, run.tree.limits.max_iterations + 1):
            run.tree.budget.check()
            run.iterations = iteration
            options = self._call_options(iteration)
            text = await run.root_call(messages, iteration, options)
            messages.append(Message("assistant", text))
            if self._repeats.stalled(text):
                return await self._last_chance(machine, messages), "stalled"
            answer, turn = await self._step(machine, text, iteration)
            if answer is not None:
                return answer, "completed"
            messages.append(Message("user", turn))
        return await self._last_chance(machine, messages), "max_iterations"

    async def _step(self, machine: Machine, text: str, iteration: int) -> tuple[str | None, str]:
        """Run a reply's command: the final answer, or the next turn."""
        run, query = self._run, self._run.query
        command: Command | None = None
        try:
            command = parse_reply(text, directory=self._directory)
            repeated = self._repeats_ignoring_proposals(command)
            if repeated is not None:
                self._record(iteration, command.to_json(), CellResult(repeated, None))
                return None, corrective(query, repeated)
            outcome = await machine.execute(command)
        except CommandError as exc:
            code = text.strip()[:2_000] if command is None else command.to_json()
            self._record(iteration, code, CellResult("", str(exc)))
            if isinstance(exc, MissingValue) and command is not None and command.name != "final":
                self._wait(command, exc.name)
            return None, corrective(query, str(exc))
        if outcome.final is not None and self._review is not None:
            by_name = (
                str(command.args["name"])
                if command.name == "final" and "name" in command.args
                else None
            )
            note = self._review.note(outcome.final, machine.variables, by_name=by_name)
            if note is not None:
                if self._review.proposed is not None and self._assists.unstick:
                    self._held_to = (self._review.proposed,)
                self._record(iteration, command.to_json(), CellResult(note, None))
                return None, corrective(query, note)
        self._record(iteration, command.to_json(), CellResult(outcome.output, None, outcome.final))
        if outcome.final is not None:
            return outcome.final, ""
        outcome, resumed = await self._resume(machine, outcome, iteration)
        ran = {command.to_json()} | ({resumed.to_json()} if resumed else set())
        if self._waiting is not None and not outcome.answerable:
            # Held back on a value its note rejects: sent now, it would run on that value.
            ran.add(self._waiting[0].to_json())
        self._last = (frozenset(ran), outcome.proposals)
        if not outcome.answerable and outcome.proposals:
            self._rejected[command.to_json()] = outcome.proposals
        if self._review is not None:
            self._review.saw(outcome.output, command, machine.variables.get("last"))
        if outcome.output.strip():
            last = machine.variables.get("last")
            # A run that ends without an answer keeps its last result, a list whole: stalled
            # re-listing 111 functions, the 1.5B root's run kept only the five on show.
            if isinstance(last, list) and last and all(isinstance(i, str) for i in last):
                run.partial = "\n".join(last)
            else:
                run.partial = outcome.output.strip()[-2_000:]
        return None, next_turn(query, outcome.output, answerable=outcome.answerable)

    def _record(self, iteration: int, code: str, cell: CellResult, index: int = 0) -> None:
        self._run.record_cell(iteration, index, code, cell)

    def _repeats_ignoring_proposals(self, command: Command) -> str | None:
        """The note for a reply that ignores the commands the last result proposed (the same
        command again, or an answer), or that sends again a command whose result a note
        rejected earlier; the next reply is then held to those proposals (None: run it)."""
        sent, proposals = self._last
        if not (self._small and self._assists.unstick):
            return None
        earlier = self._rejected.get(command.to_json())
        if earlier and command.to_json() not in sent:
            problem = "You sent this command before, and its result was not the answer."
            return self._hold(problem, earlier)
        if not proposals:
            return None
        if self._waiting is not None and command == self._waiting[0]:
            problem = f"{command.to_json()} waits for a value the last note says is not right yet."
        elif command.to_json() in sent:
            problem = "You sent the same command again, and it gives the same result."
        elif command.name == "final":
            problem = "The last result is not the answer yet."
        else:
            return None
        return self._hold(problem, proposals)

    def _hold(self, problem: str, proposals: tuple[Command, ...]) -> str:
        """Hold the next reply to ``proposals``; the note that says so."""
        self._last, self._held_to = (frozenset(), ()), proposals
        listed = "; ".join(p.to_json() for p in proposals)
        return f"{problem} Send one of the commands its note proposed: {listed}."

    def _call_options(self, iteration: int) -> CallOptions:
        """Greedy, or seeded sampling after a repeat; held to making a value while a command
        waits for it (each call so held counts against MAKER_TRIES), or to the commands a
        result proposed when the last reply ignored them."""
        options = self._repeats.sampling(iteration)
        if self._held_to:
            shapes = [{"const": json.loads(p.to_json())} for p in self._held_to]
            self._held_to = ()
            return {**options, "json_schema": {"anyOf": shapes}}
        if self._waiting is None:
            return options
        if self._maker_tries >= MAKER_TRIES:
            self._waiting = None
            return options
        self._maker_tries += 1
        schema = maker_schema(self._waiting[1], directory=self._directory)
        return {**options, "json_schema": schema}

    def _wait(self, command: Command, name: str) -> None:
        if not (self._small and self._assists.unstick):
            return
        if self._waiting is None or self._waiting[1] != name:
            self._maker_tries = 0
        self._waiting = (command, name)

    async def _resume(
        self, machine: Machine, outcome: Outcome, iteration: int
    ) -> tuple[Outcome, Command | None]:
        """Once the value a command waited for exists, that command runs too; both results
        are shown. Also the waiting command, when it ran."""
        if self._waiting is None or self._waiting[1] not in machine.variables:
            return outcome, None
        if not outcome.answerable:
            # The value's own note says it is not what was meant (1,137 copies of the word
            # "error"): the waiting map would ask a sub-model about each copy. Still waiting.
            return outcome, None
        waiting, _ = self._waiting
        try:
            resumed = await machine.execute(waiting)
        except CommandError as exc:
            # Still waiting: the next reply may make the value again (stats of 947 copies of
            # the word "lifetime" failed; the 1.5B root then typed percentiles of its own).
            self._record(iteration, waiting.to_json(), CellResult("", str(exc)), index=1)
            failed = f"{outcome.output}\n\nThen {waiting.to_json()} failed: {exc}"
            return Outcome(failed), None
        self._waiting = None
        self._record(iteration, waiting.to_json(), CellResult(resumed.output, None), index=1)
        output = f"{outcome.output}\n\nThen {waiting.to_json()} ran:\n{resumed.output}"
        answerable = outcome.answerable and resumed.answerable
        proposals = outcome.proposals + resumed.proposals
        return Outcome(output, answerable=answerable, proposals=proposals), waiting

    async def _last_chance(self, machine: Machine, messages: list[Message]) -> str | None:
        """Out of turns: one last call asking for a final answer from what was already seen."""
        run = self._run
        try:
            run.tree.budget.check()
        except LimitExceeded:  # a limit is used up: keep the best partial answer
            return run.partial
        ask = [*messages, Message("user", last_chance(run.query, sorted(machine.variables)))]
        text = await run.root_call(ask, run.iterations + 1, {})
        try:
            command = parse_reply(text, directory=self._directory)
            if command.name == "final":
                outcome = await machine.execute(command)
                return outcome.final
        except CommandError:
            pass
        return run.partial
