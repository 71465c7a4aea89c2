"""The RLM loop: the root model writes code, the REPL runs it, until ``FINAL``."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from dataclasses import dataclass, replace
from typing import Literal

from rlmx.config import Assists, Limits
from rlmx.context import Context, ContextInput, LocalStore
from rlmx.dsl.loop import CommandRun, run_commands
from rlmx.engine.budget import Budget
from rlmx.engine.conversation import Conversation
from rlmx.engine.parsing import (
    answer_line,
    cut_invented_output,
    extract_code_blocks,
    find_bare_final,
    lenient_value,
    single_line_final,
    strip_code_blocks,
)
from rlmx.engine.planning import MapPlan
from rlmx.engine.preparation import EngineCall, prepare_turns
from rlmx.engine.prompts import SMALL_MODEL_OUTPUT_CHARS, format_cell_output
from rlmx.engine.subcalls import CHARS_PER_TOKEN, SubCallBridge, SubCallScope
from rlmx.engine.tree import Models, Tree
from rlmx.engine.turns import Next, Turns
from rlmx.errors import LimitExceeded, RlmxError
from rlmx.providers.base import CallOptions
from rlmx.sandbox.base import Sandbox, SandboxFactory
from rlmx.sandbox.capture import truncate
from rlmx.trajectory.base import Recorder
from rlmx.trajectory.events import (
    CellExecuted,
    CellStarted,
    FinalAnswer,
    IterationStarted,
    RootReply,
    RunError,
    RunFinished,
    RunStarted,
)
from rlmx.types import CellResult, Message, RunResult, RunStatus

log = logging.getLogger(__name__)

Level = Literal["code", "dsl"]
LEVELS: tuple[Level, ...] = ("code", "dsl")


@dataclass(slots=True)
class _RunState:
    run_id: str
    depth: int
    iterations: int = 0
    partial: str | None = None


class Engine:
    """Runs RLMs. Receives objects only: clients, a sandbox factory, limits, a recorder, a
    context store, and the level: ``code`` (the root model writes Python for a REPL) or ``dsl``
    (it sends one JSON command a turn, and no model-written code runs; see :mod:`rlmx.dsl`)."""

    def __init__(
        self,
        *,
        models: Models,
        limits: Limits,
        sandbox_factory: SandboxFactory,
        recorder: Recorder,
        store: LocalStore | None = None,
        level: Level = "code",
        assists: Assists | None = None,
    ) -> None:
        if level not in LEVELS:
            raise ValueError(f"unknown level {level!r}: use one of {LEVELS}")
        self._models = models
        self._limits = limits
        self._sandbox_factory = sandbox_factory
        self._recorder = recorder
        self._store = store or LocalStore()
        self._level = level
        self._assists = assists or Assists()

    async def run(
        self, query: str, context: ContextInput, *, run_id: str | None = None
    ) -> RunResult:
        tree = Tree(
            models=self._models,
            limits=self._limits,
            budget=Budget(self._limits),
            recorder=self._recorder,
            semaphore=asyncio.Semaphore(self._limits.concurrency),
        )
        return await self._run(tree, query, context, depth=0, parent=None, run_id=run_id)

    async def _run(
        self,
        tree: Tree,
        query: str,
        context: ContextInput,
        *,
        depth: int,
        parent: str | None,
        run_id: str | None = None,
    ) -> RunResult:
        state = _RunState(run_id=run_id or uuid.uuid4().hex[:12], depth=depth)
        started = time.perf_counter()
        opened = await asyncio.to_thread(self._store.put, context)
        info = opened.describe()
        tree.recorder.on_event(
            RunStarted(
                run_id=state.run_id,
                depth=depth,
                query=query,
                context=info.to_dict(),
                root_model=tree.models.root.spec,
                sub_model=tree.models.sub.spec,
                limits=_limits_dict(tree.limits),
                parent_run_id=parent,
            )
        )

        async def nested(q: str, ctx: ContextInput, d: int, parent_id: str) -> RunResult:
            return await self._run(tree, q, ctx, depth=d, parent=parent_id)

        bridge = SubCallBridge(
            tree=tree,
            scope=SubCallScope(run_id=state.run_id, depth=depth),
            loop=asyncio.get_running_loop(),
            nested=nested,
        )
        sandbox = self._sandbox_factory() if self._level == "code" else None
        answer: str | None = None
        status: RunStatus = "completed"
        error: str | None = None
        try:
            async with asyncio.timeout(tree.budget.remaining_s()):
                if sandbox is None:
                    answer, status = await self._commands(tree, state, bridge, query, opened)
                else:
                    await sandbox.start(opened, bridge)
                    answer, status = await self._iterate(tree, state, sandbox, query, opened)
        except TimeoutError:
            status, error = "timeout", f"timeout: {tree.limits.timeout_s:g} s wall clock used"
        except LimitExceeded as exc:
            status = "timeout" if exc.limit == "timeout" else "budget_exceeded"
            error = str(exc)
        except RlmxError as exc:
            status, error = "error", str(exc)
        except Exception as exc:  # a run reports its failure; it never escapes as a traceback
            log.exception("run %s failed", state.run_id)
            status, error = "error", f"{type(exc).__name__}: {exc}"
        finally:
            bridge.cancel_pending()
            if sandbox is not None:
                await sandbox.close()
        if status != "completed" and answer is None:
            answer = state.partial
        result = RunResult(
            answer=answer,
            status=status,
            iterations=state.iterations,
            sub_calls=tree.budget.sub_calls,
            usage=tree.budget.report(),
            cost_usd=tree.budget.cost_usd,
            wall_s=time.perf_counter() - started,
            run_id=state.run_id,
            error=error,
        )
        if status == "completed" and answer is not None:
            tree.recorder.on_event(
                FinalAnswer(
                    run_id=state.run_id, depth=depth, iteration=state.iterations, answer=answer
                )
            )
        elif error is not None:
            tree.recorder.on_event(
                RunError(run_id=state.run_id, depth=depth, status=status, error=error)
            )
        tree.recorder.on_event(
            RunFinished(run_id=state.run_id, depth=depth, result=result.to_dict())
        )
        return result

    async def _commands(
        self, tree: Tree, state: _RunState, bridge: SubCallBridge, query: str, context: Context
    ) -> tuple[str | None, RunStatus]:
        """A run in the command language (no sandbox: no model-written code runs)."""
        _, corpus = await asyncio.to_thread(context.open_local)

        async def root_call(messages: list[Message], iteration: int, options: CallOptions) -> str:
            return await self._root_call(tree, state, messages, iteration, options)

        def record(
            iteration: int, code: str, output: str, error: str | None, final: str | None
        ) -> None:
            self._record_cell(tree, state, iteration, 0, code, CellResult(output, error, final))

        run = CommandRun(
            query=query,
            handle=context.describe(),
            corpus=corpus,
            bridge=bridge,
            budget=tree.budget,
            max_iterations=tree.limits.max_iterations,
            max_output=min(tree.limits.max_output_chars, SMALL_MODEL_OUTPUT_CHARS)
            if tree.models.root.profile.small
            else tree.limits.max_output_chars,
            state=state,
            unstick=self._assists.unstick and tree.models.root.profile.small,
            root_call=root_call,
            record=record,
        )
        return await run_commands(run)

    async def _iterate(
        self, tree: Tree, state: _RunState, sandbox: Sandbox, query: str, context: Context
    ) -> tuple[str | None, RunStatus]:
        info = context.describe()
        turns = await self._turns(tree, state, query, context)
        sub_window = tree.models.sub.profile.context_window or 128_000
        system = turns.style.system(
            info,
            sub_chars=int(sub_window * CHARS_PER_TOKEN * 0.8),
            sub_calls=tree.limits.sub_calls_enabled,
        )
        talk = Conversation(system, turns.first_turn())
        if turns.plan is not None:
            await self._run_plan(tree, state, sandbox, turns, talk, turns.plan)
        for iteration in range(1, tree.limits.max_iterations + 1):
            tree.budget.check()
            state.iterations = iteration
            options = turns.sampling(iteration)
            text = await self._root_call(tree, state, talk.messages, iteration, options)
            if turns.style.name == "small":
                text = cut_invented_output(text)
            talk.reply(text)
            if turns.stalled(text):
                log.debug("run %s: the same reply came back again; ending", state.run_id)
                return await self._last_chance(tree, state, turns, talk.messages), "stalled"
            prose = strip_code_blocks(text)
            if prose:
                state.partial = prose
            blocks = extract_code_blocks(text)
            if not blocks:
                final = find_bare_final(text)
                line = answer_line(text) if final is None else None
                if final is None and line is None:
                    talk.answer(turns.no_code())
                    continue
                if final is not None:
                    answer, typed = await _resolve_bare_final(final.is_var, final.argument, sandbox)
                else:
                    answer, typed = line or "", True
                verdict = turns.review(answer, typed=typed)
                if verdict is None:
                    return answer, "completed"
                talk.follow(verdict.action, verdict.text)
                continue
            outcome = await self._run_blocks(tree, state, sandbox, turns, blocks, iteration)
            if isinstance(outcome, str):
                return outcome, "completed"
            talk.follow(outcome.action, outcome.text)
        last = await self._last_chance(tree, state, turns, talk.messages)
        return last, "max_iterations"

    async def _run_plan(
        self,
        tree: Tree,
        state: _RunState,
        sandbox: Sandbox,
        turns: Turns,
        talk: Conversation,
        plan: MapPlan,
    ) -> None:
        """Run the map the root model drafted (iteration 0) and show it as its own first
        reply. Shown the code instead, the 1.5B model wrote an output for it, copied from its
        worked example, rather than sending it to run."""
        code = plan.code()
        cell = await self._execute(tree, state, sandbox, code, 0, 0)
        output = _show_cell(state, turns, cell, 0, 1, hint=False)
        talk.reply(f"```repl\n{code}\n```")
        talk.answer(turns.style.next_turn(turns.query, output))

    async def _run_blocks(
        self,
        tree: Tree,
        state: _RunState,
        sandbox: Sandbox,
        turns: Turns,
        blocks: list[str],
        iteration: int,
    ) -> str | Next:
        """Run a reply's cells: the final answer, or how the conversation goes on."""
        outputs: list[str] = []
        printed = False
        for index, code in enumerate(blocks):
            tree.budget.check()
            cell = await self._execute(tree, state, sandbox, code, iteration, index)
            if cell.final is not None:
                verdict = turns.review(cell.final, typed=_typed_in(cell.final, code))
                if verdict is None:
                    return cell.final
                if verdict.action == "answer" and outputs:
                    return Next("answer", "\n\n".join([*outputs, verdict.text]))
                return verdict
            printed = printed or bool(cell.output.strip()) or cell.error is not None
            outputs.append(_show_cell(state, turns, cell, index, len(blocks), hint=True))
        return turns.after_cells("\n\n".join(b.strip() for b in blocks), outputs, printed)

    async def _turns(self, tree: Tree, state: _RunState, query: str, context: Context) -> Turns:
        call = EngineCall(
            root=tree.models.root,
            budget=tree.budget,
            recorder=tree.recorder,
            run_id=state.run_id,
            depth=state.depth,
        )
        return await prepare_turns(
            call,
            query=query,
            context=context,
            assists=self._assists,
            small=tree.models.root.profile.small,
            max_output_chars=tree.limits.max_output_chars,
            sub_calls=tree.limits.sub_calls_enabled,
        )

    async def _execute(
        self,
        tree: Tree,
        state: _RunState,
        sandbox: Sandbox,
        code: str,
        iteration: int,
        index: int,
    ) -> CellResult:
        tree.recorder.on_event(
            CellStarted(
                run_id=state.run_id, depth=state.depth, iteration=iteration, index=index, code=code
            )
        )
        cell = await sandbox.execute(code)
        failed_as_python = cell.error is not None and cell.error.rsplit("\n", 1)[-1].startswith(
            ("NameError", "SyntaxError")
        )
        lenient = single_line_final(code) if failed_as_python else None
        line = answer_line(code) if failed_as_python and lenient is None else None
        if lenient is not None:
            # `FINAL(AUSTERLITZ-1805)` without quotes fails as Python; small models write it.
            value, _ = await _resolve_bare_final(lenient.is_var, lenient.argument, sandbox)
            cell = replace(cell, error=None, final=value)
        elif line is not None:
            # So does `Answer: ...` fenced as code, in the form the question asked for.
            cell = replace(cell, error=None, final=line)
        self._record_cell(tree, state, iteration, index, code, cell)
        return cell

    @staticmethod
    def _record_cell(
        tree: Tree, state: _RunState, iteration: int, index: int, code: str, cell: CellResult
    ) -> None:
        tree.recorder.on_event(
            CellExecuted(
                run_id=state.run_id,
                depth=state.depth,
                iteration=iteration,
                index=index,
                code=code,
                output=cell.output,
                error=cell.error,
                final=cell.final,
                duration_s=round(cell.duration_s, 6),
            )
        )

    async def _root_call(
        self,
        tree: Tree,
        state: _RunState,
        messages: list[Message],
        iteration: int,
        options: CallOptions | None = None,
    ) -> str:
        root = tree.models.root
        tree.recorder.on_event(
            IterationStarted(run_id=state.run_id, depth=state.depth, iteration=iteration)
        )
        completion = await root.complete(messages, **(options or {}))
        tree.budget.record(completion, depth=state.depth, is_root=state.depth == 0)
        log.debug(
            "root %s iteration %d: %d tokens", root.spec, iteration, completion.usage.total_tokens
        )
        tree.recorder.on_event(
            RootReply(
                run_id=state.run_id,
                depth=state.depth,
                iteration=iteration,
                text=completion.text,
                usage=completion.usage.to_dict(),
                latency_s=round(completion.latency_s, 4),
                cost_usd=completion.cost_usd,
                model=root.spec,
            )
        )
        return completion.text

    async def _last_chance(
        self, tree: Tree, state: _RunState, turns: Turns, messages: list[Message]
    ) -> str | None:
        """Out of iterations, or stuck: one last call asking for an answer from what was
        already seen."""
        try:
            tree.budget.check()
        except LimitExceeded:
            return state.partial
        ask = turns.style.last_chance(turns.query)
        if messages[-1].role == "user":  # the small style's turn after a search found nothing
            messages = [*messages[:-1], Message("user", f"{messages[-1].content}\n\n{ask}")]
        else:
            messages = [*messages, Message("user", ask)]
        text = await self._root_call(tree, state, messages, state.iterations + 1)
        final = find_bare_final(text)
        if final is not None and not final.is_var:
            return lenient_value(final.argument)
        return strip_code_blocks(text) or state.partial


async def _resolve_bare_final(is_var: bool, argument: str, sandbox: Sandbox) -> tuple[str, bool]:
    """The answer of a ``FINAL(...)`` written outside code, and whether it was typed in (not a
    variable's value)."""
    if is_var:
        name = lenient_value(argument)
        value = await sandbox.get_variable(name)
        if value is not None:
            return value, False
    value = await sandbox.get_variable(argument) if argument.isidentifier() else None
    return (value, False) if value is not None else (lenient_value(argument), True)


def _show_cell(
    state: _RunState, turns: Turns, cell: CellResult, index: int, total: int, *, hint: bool
) -> str:
    """A cell's output as the root model reads it (its share of the output limit), kept as
    the best partial answer and remembered by the turn policy; with ``hint``, a cut or empty
    output names a rarer search key."""
    shown, cut = truncate(cell.output, turns.style.max_output_chars // total)
    if shown.strip():
        state.partial = shown.strip()[-2_000:]
    turns.shown(shown, failed=cell.error is not None, cut=cut)
    wants_hint = hint and (cut or not shown.strip())
    return format_cell_output(
        index,
        total,
        shown,
        cell.error,
        style=turns.style.name,
        cut=cut,
        hint=turns.cut_hint() if wants_hint else "",
    )


def _typed_in(answer: str, code: str) -> bool:
    """Whether a cell's answer was written out in its code rather than computed."""
    plain = answer.strip()
    return bool(plain) and plain in code


def _limits_dict(limits: Limits) -> dict[str, object]:
    return {name: getattr(limits, name) for name in limits.__dataclass_fields__}
