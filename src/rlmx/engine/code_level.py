"""The ``code`` level: the root model writes Python, a REPL in a sandbox runs it, until
``FINAL``.

The loop here is mechanism only: a root call, the reply's cells run, the next turn. What the
model is told and which of its answers are taken is asked of :class:`~rlmx.engine.turns.Turns`,
the one seam of the small-model policy.
"""

from __future__ import annotations

import logging
from dataclasses import replace

from rlmx.config import Assists
from rlmx.engine.answers import correction, shape_request
from rlmx.engine.base import Ending
from rlmx.engine.conversation import Conversation
from rlmx.engine.options import option_letter
from rlmx.engine.parsing import (
    FinalCall,
    answer_line,
    extract_code_blocks,
    find_bare_final,
    lenient_value,
    single_line_final,
    strip_code_blocks,
)
from rlmx.engine.preparation import EngineCall, prepare_turns
from rlmx.engine.run import Run
from rlmx.engine.subcalls import CHARS_PER_TOKEN
from rlmx.engine.turns import Next, Turns
from rlmx.errors import InvalidAnswer, LimitExceeded
from rlmx.sandbox.base import Sandbox, SandboxFactory
from rlmx.types import CellResult

log = logging.getLogger(__name__)

# A sub-model's context window when its profile does not say.
_DEFAULT_SUB_WINDOW = 128_000


class CodeLevel:
    """Runs each run's code in a sandbox from ``sandbox_factory``; ``assists`` are the help a
    small root model gets (:class:`~rlmx.config.Assists`; a capable one gets none)."""

    def __init__(self, *, sandbox_factory: SandboxFactory, assists: Assists | None = None) -> None:
        self._sandbox_factory = sandbox_factory
        self._assists = assists or Assists()

    def open(self, run: Run) -> CodeSession:
        return CodeSession(run, self._sandbox_factory(), self._assists)


class CodeSession:
    """One run at the code level: its sandbox, started on the run's clock."""

    def __init__(self, run: Run, sandbox: Sandbox, assists: Assists) -> None:
        self._run = run
        self._sandbox = sandbox
        self._assists = assists

    async def drive(self) -> Ending:
        await self._sandbox.start(self._run.context, self._run.bridge)
        return await self._iterate()

    async def close(self) -> None:
        await self._sandbox.close()

    async def _iterate(self) -> Ending:
        run, tree = self._run, self._run.tree
        info = run.context.describe()
        turns = await self._prepare()
        sub_window = tree.models.sub.profile.context_window or _DEFAULT_SUB_WINDOW
        system = turns.system(
            info,
            sub_chars=int(sub_window * CHARS_PER_TOKEN * 0.8),
            sub_calls=tree.limits.sub_calls_enabled,
        )
        first = "\n\n".join(
            part
            for part in (
                run.preamble,
                turns.first_turn(),
                shape_request(run.shape) if run.shape else None,
            )
            if part
        )
        talk = Conversation(system, first)
        opening = turns.opening_cell()
        if opening is not None:
            await self._open_with(opening, turns, talk)
        for iteration in range(1, tree.limits.max_iterations + 1):
            tree.budget.check()
            run.iterations = iteration
            options = turns.sampling(iteration)
            text = turns.received(await run.root_call(talk.messages, iteration, options))
            talk.reply(text)
            if turns.stalled(text):
                log.debug("run %s: the same reply came back again; ending", run.run_id)
                return await self._last_chance(turns, talk), "stalled"
            prose = strip_code_blocks(text)
            if prose:
                run.partial = prose
            step = await self._step(turns, text, iteration)
            if isinstance(step, str):
                step = self._typed(step)
            if isinstance(step, str):
                return step, "completed"
            talk.follow(step.action, step.text)
        return await self._last_chance(turns, talk), "max_iterations"

    def _typed(self, answer: str) -> str | Next:
        """A typed answer validated (its value kept on the run), or the one corrective turn;
        a second answer of the wrong shape ends the run with :class:`InvalidAnswer`."""
        run = self._run
        if run.shape is None:
            return answer
        checked = run.shape.check(answer)
        if checked.ok:
            run.value = checked.value
            return answer
        if run.corrected:
            raise InvalidAnswer(f"the answer does not match the schema: {checked.error}")
        run.corrected = True
        return Next("answer", correction(checked.error or "unreadable"))

    async def _prepare(self) -> Turns:
        run, tree = self._run, self._run.tree
        call = EngineCall.for_run(run)
        return await prepare_turns(
            call,
            query=run.query,
            context=run.context,
            assists=self._assists,
            small=tree.models.root.profile.small,
            max_output_chars=tree.limits.max_output_chars,
            sub_calls=tree.limits.sub_calls_enabled,
        )

    async def _open_with(self, code: str, turns: Turns, talk: Conversation) -> None:
        """Run ``code`` as iteration 0 and show it as the model's own first reply."""
        cell = await self._execute(code, 0, 0)
        output = self._show(turns, cell, 0, 1, hint=False)
        talk.reply(f"```repl\n{code}\n```")
        talk.answer(turns.next_turn(output))

    async def _step(self, turns: Turns, text: str, iteration: int) -> str | Next:
        """What a reply comes to: the final answer, or how the conversation goes on."""
        blocks = extract_code_blocks(text)
        if blocks:
            return await self._run_blocks(turns, blocks, iteration)
        final = find_bare_final(text)
        if final is not None:
            answer, typed = await _resolve_bare_final(final, self._sandbox)
        else:
            line = answer_line(text) or option_letter(self._run.query, text)
            if line is None:
                return turns.no_code(text)
            answer, typed = line, True
        verdict = turns.review(answer, typed=typed)
        return answer if verdict is None else verdict

    async def _run_blocks(self, turns: Turns, blocks: list[str], iteration: int) -> str | Next:
        """Run a reply's cells: the final answer, or how the conversation goes on."""
        outputs: list[str] = []
        printed = False
        for index, code in enumerate(blocks):
            self._run.tree.budget.check()
            cell = await self._execute(code, iteration, index)
            if cell.final is not None:
                typed = _typed_in(cell.final, code)
                verdict = turns.review_cell(cell.final, typed=typed, outputs=outputs)
                return cell.final if verdict is None else verdict
            printed = printed or bool(cell.output.strip()) or cell.error is not None
            outputs.append(self._show(turns, cell, index, len(blocks), hint=True))
        return turns.after_cells("\n\n".join(b.strip() for b in blocks), outputs, printed)

    async def _execute(self, code: str, iteration: int, index: int) -> CellResult:
        self._run.cell_started(iteration, index, code)
        cell = await self._leniently(code, await self._sandbox.execute(code))
        self._run.record_cell(iteration, index, code, cell)
        return cell

    async def _leniently(self, code: str, cell: CellResult) -> CellResult:
        """A one-line cell that failed as Python but reads as an answer, taken as one:
        ``FINAL(AUSTERLITZ-1805)`` without quotes (small models write it), or ``Answer: ...``
        fenced as code, in the form the question asked for."""
        if not _failed_as_python(cell):
            return cell
        lenient = single_line_final(code)
        if lenient is not None:
            value, _ = await _resolve_bare_final(lenient, self._sandbox)
            return replace(cell, error=None, final=value)
        line = answer_line(code)
        return cell if line is None else replace(cell, error=None, final=line)

    def _show(self, turns: Turns, cell: CellResult, index: int, total: int, *, hint: bool) -> str:
        """A cell's turn text; what it shows is kept as the best partial answer."""
        shown = turns.show(cell, index, total, hint=hint)
        if shown.visible.strip():
            self._run.partial = shown.visible.strip()[-2_000:]
        return shown.text

    async def _last_chance(self, turns: Turns, talk: Conversation) -> str | None:
        """Out of iterations, or stuck: one last call asking for an answer from what was
        already seen."""
        run = self._run
        try:
            run.tree.budget.check()
        except LimitExceeded:
            return run.partial
        text = await run.root_call(turns.last_chance(talk.messages), run.iterations + 1)
        final = find_bare_final(text)
        if final is not None and not final.is_var:
            return lenient_value(final.argument)
        return strip_code_blocks(text) or run.partial


def _failed_as_python(cell: CellResult) -> bool:
    """Whether a cell failed before it could mean anything as Python: it does not parse, or it
    names a variable that does not exist."""
    return cell.error is not None and cell.error_type in ("NameError", "SyntaxError")


async def _resolve_bare_final(final: FinalCall, sandbox: Sandbox) -> tuple[str, bool]:
    """The answer of a ``FINAL(...)`` written outside code, and whether it was typed in (not a
    variable's value)."""
    argument = final.argument
    if final.is_var:
        value = await sandbox.get_variable(lenient_value(argument))
        if value is not None:
            return value, False
    value = await sandbox.get_variable(argument) if argument.isidentifier() else None
    return (value, False) if value is not None else (lenient_value(argument), True)


def _typed_in(answer: str, code: str) -> bool:
    """Whether a cell's answer was written out in its code rather than computed."""
    plain = answer.strip()
    return bool(plain) and plain in code
