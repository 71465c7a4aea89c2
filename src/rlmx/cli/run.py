"""``rlmx run QUERY --context PATH``: answer a question over a context."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console

from rlmx.config import DEFAULT_OUTPUT_CHARS, DEFAULT_TIMEOUT_S, Assists, Limits, Settings
from rlmx.context import ContextOptions
from rlmx.context.paths import open_contexts
from rlmx.engine.answers import shape_of
from rlmx.errors import ConfigError, SandboxError, UsageError
from rlmx.providers.defaults import choose_models
from rlmx.rlm import LEVELS, RLM
from rlmx.sandbox.process import MODE_HELP, sandbox_factory
from rlmx.sandbox.spawn import preflight
from rlmx.trajectory.base import MultiRecorder, Recorder
from rlmx.trajectory.events import RunError, RunFinished
from rlmx.trajectory.jsonl import JsonlRecorder
from rlmx.trajectory.sqlite import SqliteRecorder
from rlmx.trajectory.store import RunStore, open_store
from rlmx.types import RunResult

from .interrupt import Interruption, RunTally
from .progress import ProgressRecorder
from .terminal import json_line, markup, shown


def register(commands: Any) -> None:
    parser = commands.add_parser(
        "run",
        help="answer a question over a context",
        description="Answer QUERY over the given context with a Recursive Language Model. "
        "stdout carries only the answer (or one JSON object with --json); progress goes to stderr.",
    )
    parser.add_argument("query", help="the question to answer")
    parser.add_argument(
        "--context",
        "-c",
        action="append",
        default=[],
        metavar="PATH",
        help="a file of any size, a directory (a codebase, read on demand), or - for stdin; "
        "repeat for several documents",
    )
    parser.add_argument(
        "--include",
        action="append",
        default=[],
        metavar="GLOB",
        help="with a directory: read only files matching this gitignore-style glob (repeatable)",
    )
    parser.add_argument(
        "--exclude",
        action="append",
        default=[],
        metavar="GLOB",
        help="with a directory: leave out files matching this glob (repeatable)",
    )
    parser.add_argument(
        "--jsonl-field",
        metavar="NAME",
        help="read a JSONL context as documents, one per line, from this field "
        "(default for .jsonl files with a 'text' field)",
    )
    parser.add_argument(
        "--level",
        choices=LEVELS,
        default="code",
        help="'code': the root model writes Python for a REPL (default); 'dsl': it sends one JSON "
        "command a turn and no model-written code runs (for weak models)",
    )
    parser.add_argument("--model", "-m", help="root model spec, e.g. openai:gpt-5-mini")
    parser.add_argument("--sub-model", help="model for llm_query sub-calls (default: the root)")
    parser.add_argument(
        "--base-url",
        action="append",
        metavar="URL",
        help="base URL for OpenAI-compatible providers; repeat it (or separate URLs with commas) "
        "to spread calls over several servers of the model, an endpoint pool (docs/scale.md)",
    )
    parser.add_argument("--max-depth", type=int, default=1, help="recursion depth of rlm_query")
    parser.add_argument("--max-iterations", type=int, default=30)
    parser.add_argument(
        "--max-sub-calls", type=int, help="sub-call budget for the whole tree; 0 turns them off"
    )
    parser.add_argument("--max-tokens", type=int, help="token budget for the whole run tree")
    parser.add_argument("--max-cost", type=float, help="budget in USD for the whole run tree")
    parser.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_TIMEOUT_S,
        help=f"wall-clock limit in seconds (default {DEFAULT_TIMEOUT_S:g})",
    )
    parser.add_argument("--concurrency", type=int, default=8, help="parallel sub-calls")
    parser.add_argument(
        "--executor",
        choices=("local", "ray"),
        default="local",
        help="where sub-model calls run: in this process (default), or on Ray: the cluster at "
        "$RAY_ADDRESS, else a local one (needs rlmx[ray]; docs/scale.md)",
    )
    parser.add_argument(
        "--max-output", type=int, default=DEFAULT_OUTPUT_CHARS, help="chars of REPL output shown"
    )
    parser.add_argument(
        "--sandbox", choices=("default", "strict", "none"), default="default", help=MODE_HELP
    )
    add_assists_option(parser)
    parser.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    parser.add_argument("--trace", metavar="FILE", help="write every event as JSON Lines")
    parser.add_argument(
        "--db", metavar="PATH", help="record the run here (default $RLMX_DB or $RLMX_HOME/rlmx.db)"
    )
    parser.add_argument("--no-db", action="store_true", help="do not record the run in the store")
    parser.add_argument(
        "--cache",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="answer a greedy sub-call asked before from the sub-call cache in the run store "
        "(--db), without calling the model; default: on for the embedded local: models only. "
        "--cache keeps every model's answers, --no-cache none (see rlmx cache)",
    )
    parser.add_argument(
        "--schema",
        metavar="FILE.json",
        help="a JSON schema the answer must match: it is validated (one corrective turn if "
        "not) and printed as JSON",
    )
    parser.add_argument(
        "--session",
        metavar="NAME",
        help="ask within the named session (created if new): its REPL's variables and earlier "
        "questions carry over, rebuilt from the store (rlmx sessions lists them)",
    )
    parser.add_argument("--quiet", "-q", action="store_true", help="no progress on stderr")
    parser.set_defaults(handler=handle)


def add_assists_option(parser: argparse.ArgumentParser) -> None:
    """``--assists-off NAMES``: the engine's help for small root models, switched off by name
    (for an A/B, or to see what a model does alone); read with ``Assists.without``."""
    parser.add_argument(
        "--assists-off",
        default="",
        metavar="NAMES",
        help="turn off the engine's help for small root models: all, or any of "
        + ", ".join(Assists.__dataclass_fields__),
    )


def handle(args: argparse.Namespace, console: Console) -> int:
    settings = Settings()
    if args.db:  # the run, its session and the sub-call cache all live in that store
        settings = Settings(env={**settings.env, "RLMX_DB": args.db})
    limits = Limits(
        max_iterations=args.max_iterations,
        max_sub_calls=args.max_sub_calls,
        max_tokens=args.max_tokens,
        max_cost_usd=args.max_cost,
        timeout_s=args.timeout,
        max_depth=args.max_depth,
        max_output_chars=args.max_output,
        concurrency=args.concurrency,
    )
    assists = Assists.without(args.assists_off)
    options = ContextOptions(
        include=tuple(args.include), exclude=tuple(args.exclude), jsonl_field=args.jsonl_field
    )
    if args.session is not None and (args.no_db or args.level != "code"):
        raise UsageError(
            "--session keeps its state in the run store at the code level: "
            "drop --no-db and --level dsl"
        )
    schema = _schema(args.schema) if args.schema else None
    loaded = open_contexts(args.context, stdin=sys.stdin.buffer, options=options)
    for note in loaded.notes:
        console.print(f"[yellow]note:[/] {markup(note)}", highlight=False)
    if args.level == "code":
        try:
            preflight(args.sandbox)
        except SandboxError as exc:
            raise ConfigError(str(exc)) from None
    choice = choose_models(args.model, args.sub_model, settings=settings)
    if choice.note and not args.quiet:
        console.print(f"[yellow]note:[/] {markup(choice.note)}", highlight=False)
    trace = JsonlRecorder(args.trace) if args.trace else None
    if trace is not None:
        trace.open()
    store = None if args.no_db else open_store(args.db, settings=settings)
    db = SqliteRecorder(store, source="cli") if store is not None else None
    progress = ProgressRecorder(console) if not args.quiet else None
    tally = RunTally()
    recorder = MultiRecorder([r for r in (trace, db, progress, tally) if r is not None])
    stop = Interruption()
    try:
        rlm = RLM(
            model=choice.root,
            sub_model=choice.sub,
            limits=limits,
            recorder=recorder,
            sandbox=sandbox_factory(args.sandbox),
            settings=settings,
            base_url=",".join(args.base_url) if args.base_url else None,
            level=args.level,
            assists=assists,
            cache=args.cache,
            executor=args.executor,
        )
        started = time.perf_counter()
        asking = Asking(args.query, loaded.context, args.session, store, schema)
        result = _run(rlm, asking, progress, stop)
        if result is None:
            interrupted = _record_interruption(tally, recorder, stop, started)
    finally:
        if trace is not None:
            trace.close()
        if store is not None:
            store.close()
    if result is None:
        return _report_interruption(interrupted, args, console, stop)
    return _report(result, args, console)


@dataclass(frozen=True, slots=True)
class Asking:
    """What one ``rlmx run`` asks: a question over a context, alone or in a named session."""

    query: str
    context: Any
    session: str | None = None
    store: RunStore | None = None
    schema: dict[str, Any] | None = None

    async def answer(self, rlm: RLM) -> RunResult:
        if self.session is None:
            return await rlm.arun(self.query, self.context, output=self.schema)
        session = rlm.session(self.context, name=self.session, store=self.store)
        try:
            return await session.aask(self.query, output=self.schema)
        finally:
            await session.aclose()


def _schema(path: str) -> dict[str, Any]:
    """The JSON schema in ``path``, checked, or a one-line error."""
    try:
        schema = json.loads(Path(path).expanduser().read_text(encoding="utf-8"))
    except OSError as exc:
        raise UsageError(f"cannot read --schema {path}: {exc.strerror}") from None
    except ValueError as exc:
        raise UsageError(f"--schema {path} is not JSON: {exc}") from None
    try:
        if not isinstance(schema, dict):
            raise ValueError("a JSON schema is an object")
        shape_of(schema)
    except ValueError as exc:
        raise UsageError(f"--schema {path} is not a usable JSON schema: {exc}") from None
    return schema


def _run(
    rlm: RLM, asking: Asking, progress: ProgressRecorder | None, stop: Interruption
) -> RunResult | None:
    """The run's result, or None when a signal stopped it (``stop.signum``)."""

    async def go() -> RunResult:
        stop.watch()
        try:
            return await asking.answer(rlm)
        finally:
            await rlm.aclose()

    with stop, progress or contextlib.nullcontext():
        try:
            return asyncio.run(go())
        except (asyncio.CancelledError, KeyboardInterrupt):
            if stop.signum is None:
                raise
            return None


def _record_interruption(
    tally: RunTally, recorder: Recorder, stop: Interruption, started: float
) -> dict[str, object]:
    """End the run's record (trace and store) as ``interrupted``, as the engine ends a run
    that failed; returns the result to report."""
    reason = f"interrupted by {stop.name}"
    result = tally.result(reason, time.perf_counter() - started)
    if tally.run_id is not None:  # else the run had not started: there is nothing to end
        recorder.on_event(RunError(run_id=tally.run_id, status="interrupted", error=reason))
        recorder.on_event(RunFinished(run_id=tally.run_id, result=result))
    return result


def _report_interruption(
    result: dict[str, object], args: argparse.Namespace, console: Console, stop: Interruption
) -> int:
    if args.json:
        sys.stdout.write(json_line(result) + "\n")
        sys.stdout.flush()
    run = f"; run {result['run_id']} recorded as interrupted" if result["run_id"] else ""
    console.print(f"[bold red]interrupted[/] by {stop.name}{run}", highlight=False)
    return stop.exit_code


def _report(result: RunResult, args: argparse.Namespace, console: Console) -> int:
    if args.json:
        sys.stdout.write(json_line(result.to_dict()) + "\n")
    elif result.value is not None:
        sys.stdout.write(f"{result.value_json()}\n")
    elif result.answer is not None:
        sys.stdout.write(shown(result.answer.rstrip("\n")) + "\n")
    sys.stdout.flush()
    usage = result.usage
    cost = "unknown" if result.cost_usd is None else f"${result.cost_usd:.4f}"
    hits = f" ({usage.sub.cache_hits:,} sub-calls cached)" if usage.sub.cache_hits else ""
    if not args.quiet:
        console.print(
            f"[dim]{result.status} · {result.iterations} iterations · "
            f"{result.sub_calls} sub-calls · "
            f"root {usage.root.total_tokens:,} tok · sub {usage.sub.total_tokens:,} tok{hits} · "
            f"cost {cost} · {result.wall_s:.1f} s[/]",
            highlight=False,
        )
    if result.status == "completed":
        return 0
    reason = result.error or "the model never called FINAL"
    console.print(
        f"[bold red]error:[/] run ended with status {result.status}: {markup(reason)}",
        highlight=False,
    )
    return 1
