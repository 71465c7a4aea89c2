"""``rlmx demo list`` and ``rlmx demo run NAME``: runnable offline demonstrations.

A run prepares the demo's data under ``.demo/NAME/``, asks each question with live progress on
stderr (as ``rlmx run`` does), records every question's run in the store, and prints a table
of each answer beside the expected result, then ``N of M passed``. Exit 0 when all passed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console

from rlmx.cli.progress import ProgressRecorder
from rlmx.cli.terminal import json_line, markup, shown
from rlmx.config import Settings
from rlmx.demos.base import Demo, DemoQuestion, Prepared
from rlmx.demos.registry import DEMOS, load_demo
from rlmx.demos.runner import (
    DemoModels,
    DemoReport,
    QuestionResult,
    arun_demo,
    prepare,
    select,
)
from rlmx.errors import ConfigError, SandboxError, UsageError
from rlmx.providers.base import LLMClient
from rlmx.providers.defaults import choose_models
from rlmx.providers.registry import resolve_model
from rlmx.sandbox.process import MODE_HELP, sandbox_factory
from rlmx.sandbox.spawn import preflight
from rlmx.trajectory.base import Recorder
from rlmx.trajectory.sqlite import SqliteRecorder
from rlmx.trajectory.store import RunStore, open_store

from .interrupt import Interruption

if TYPE_CHECKING:  # the server is an extra: imported only when --open serves the viewer
    from rlmx.server.config import ServerConfig

ANSWER_WIDTH = 34
EXPECTED_WIDTH = 34


def register(commands: Any) -> None:
    parser = commands.add_parser(
        "demo",
        help="run the offline demonstrations",
        description="Runnable demonstrations: a real question on shipped or generated data, run "
        "live and checked against a result computed from the data (docs/demos.md).",
    )
    verbs = parser.add_subparsers(
        dest="demo_command", metavar="VERB", parser_class=type(parser), required=True
    )
    listing = verbs.add_parser("list", help="the demos, what each asks, and at which levels")
    listing.set_defaults(handler=handle_list)
    run = verbs.add_parser("run", help="run one demo and check its answers")
    run.add_argument("name", metavar="NAME", help=f"one of {', '.join(DEMOS)}")
    run.add_argument("--model", "-m", help="root model spec (default: the embedded model)")
    run.add_argument("--sub-model", help="model for sub-calls (default: the root)")
    run.add_argument("--seed", type=int, default=0, help="seed of generated data (default 0)")
    run.add_argument("--only", metavar="QUESTION[,..]", help="ask only these questions")
    run.add_argument("--workdir", metavar="DIR", help="where to prepare the data (.demo/NAME)")
    run.add_argument("--open", action="store_true", help="open the recorded runs in the viewer")
    run.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    run.add_argument("--quiet", "-q", action="store_true", help="no progress on stderr")
    run.add_argument("--db", metavar="PATH", help="record the runs here ($RLMX_HOME/rlmx.db)")
    run.add_argument("--no-db", action="store_true", help="do not record the runs")
    run.add_argument(
        "--cache",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="answer a model call asked before from the cache in the run store (default: on for "
        "the embedded models, so a second run replays the first); --no-cache calls the models",
    )
    run.add_argument(
        "--sandbox", choices=("default", "strict", "none"), default="default", help=MODE_HELP
    )
    run.set_defaults(handler=handle_run)


def levels_of(demo: Demo) -> tuple[str, ...]:
    """The levels a demo asks at: its own ``levels`` if it says, else from its questions."""
    declared = getattr(demo, "levels", None)
    if declared is not None:
        return tuple(declared)
    with tempfile.TemporaryDirectory(prefix="rlmx-demo-") as scratch:
        prepared = demo.prepare(Path(scratch), seed=0)
    return tuple(dict.fromkeys(q.level for q in prepared.questions))


def handle_list(args: argparse.Namespace, console: Console) -> int:
    for name in DEMOS:
        try:
            demo = load_demo(name)
        except UsageError:
            sys.stdout.write(f"{name:<14} {'-':<10} (not in this version)\n")
            continue
        levels = ",".join(levels_of(demo))
        sys.stdout.write(f"{name:<14} {levels:<10} {demo.summary}\n")
    return 0


def _models(args: argparse.Namespace, settings: Settings, console: Console) -> DemoModels:
    choice = choose_models(args.model, args.sub_model, settings=settings)
    if choice.note and not args.quiet:
        console.print(f"[yellow]note:[/] {markup(choice.note)}", highlight=False)
    root: LLMClient = resolve_model(choice.root, settings=settings)
    sub = root if choice.sub == choice.root else resolve_model(choice.sub, settings=settings)
    return DemoModels(
        root=root,
        sub=sub,
        sandbox=sandbox_factory(args.sandbox),
        settings=settings,
        cache=args.cache,
    )


def handle_run(args: argparse.Namespace, console: Console) -> int:
    demo = load_demo(args.name)
    if args.open and args.no_db:
        raise UsageError("--open shows the recorded runs: leave out --no-db")
    try:
        preflight(args.sandbox)
    except SandboxError as exc:
        raise ConfigError(str(exc)) from None
    settings = Settings()
    if args.db:  # the runs and the model-call cache both live in that store, as for rlmx run
        settings = Settings(env={**settings.env, "RLMX_DB": args.db})
    models = _models(args, settings, console)
    workdir = Path(args.workdir or Path(".demo") / args.name).expanduser().resolve()
    only = tuple(n.strip() for n in (args.only or "").split(",") if n.strip())
    prepared = prepare(demo, workdir, seed=args.seed)
    select(prepared, only)  # an unknown question is refused before anything runs
    store = None if args.no_db else open_store(args.db, settings=settings)
    stop = Interruption()
    if not args.quiet:
        console.print(f"[bold]{markup(demo.name)}[/]: {markup(demo.source)}", highlight=False)
    try:
        report = _run(demo, models, args, (workdir, prepared, only), store, console, stop)
    finally:
        if store is not None:
            store.close()
    if report is None:
        console.print(f"[bold red]interrupted[/] by {stop.name}", highlight=False)
        return stop.exit_code
    _print_report(report, args)
    if args.open:
        _open_viewer(report, args, console)
    return 0 if report.all_passed else 1


def _run(
    demo: Demo,
    models: DemoModels,
    args: argparse.Namespace,
    what: tuple[Path, Prepared, tuple[str, ...]],
    store: RunStore | None,
    console: Console,
    stop: Interruption,
) -> DemoReport | None:
    workdir, prepared, only = what
    recorder = SqliteRecorder(store, source="demo") if store is not None else None
    counter = iter(range(1, 10_000))

    @contextlib.contextmanager
    def observe(question: DemoQuestion) -> Iterator[Recorder | None]:
        if args.quiet:
            yield None
            return
        console.print(
            f"\n[bold]▶ {next(counter)}. {markup(question.name)}[/] "
            f"[dim]({question.level})[/] {markup(question.query)}",
            highlight=False,
        )
        with ProgressRecorder(console) as progress:
            yield progress

    async def go() -> DemoReport:
        stop.watch()
        return await arun_demo(
            demo,
            models,
            workdir=workdir,
            seed=args.seed,
            only=only,
            recorder=recorder,
            observe=observe,
            prepared=prepared,
        )

    with stop:
        try:
            return asyncio.run(go())
        except (asyncio.CancelledError, KeyboardInterrupt):
            if stop.signum is None:
                raise
            return None


def brief(value: object, width: int) -> str:
    """``value`` on one line of at most ``width`` characters, control characters shown."""
    if isinstance(value, dict):
        text = ", ".join(f"{k} {v}" for k, v in value.items())
    elif isinstance(value, list | tuple):
        text = ", ".join(
            f"{v[0]} ({v[1]})" if isinstance(v, list | tuple) and len(v) == 2 else str(v)
            for v in value
        )
    else:
        text = "" if value is None else str(value)
    text = " ".join(shown(text).split())
    return text if len(text) <= width else text[: width - 1] + "…"


def _row(result: QuestionResult) -> str:
    verdict = "PASS" if result.check.passed else "FAIL"
    tokens = f"{result.root_tokens:,}/{result.sub_tokens:,}"
    return (
        f"{result.question.name:<18} {result.question.level:<5} "
        f"{brief(result.answer, ANSWER_WIDTH):<{ANSWER_WIDTH}} "
        f"{brief(result.expected, EXPECTED_WIDTH):<{EXPECTED_WIDTH}} "
        f"{verdict:<4} {result.wall_s:>7.1f} {tokens:>13}"
    )


def _print_report(report: DemoReport, args: argparse.Namespace) -> None:
    if args.json:
        sys.stdout.write(json_line(report.to_dict()) + "\n")
        sys.stdout.flush()
        return
    header = (
        f"{'question':<18} {'level':<5} {'answer':<{ANSWER_WIDTH}} "
        f"{'expected':<{EXPECTED_WIDTH}} {'':<4} {'seconds':>7} {'tokens r/s':>13}"
    )
    lines = ["", header, *(_row(r) for r in report.results), ""]
    lines += [f"  {r.question.name}: {shown(r.check.detail)}" for r in report.results]
    lines.append(f"\n{report.passed} of {len(report.results)} passed")
    sys.stdout.write("\n".join(lines) + "\n")
    sys.stdout.flush()


def viewer_config(args: argparse.Namespace) -> tuple[argparse.Namespace, ServerConfig]:
    """The options and configuration of the viewer ``--open`` serves: ``rlmx serve``'s own
    defaults (so the two never drift apart), on any free port, over the demo's run store."""
    from rlmx.cli.serve import add_server_options, build_config

    serve = argparse.ArgumentParser(add_help=False)
    add_server_options(serve, port=0)
    server_args = serve.parse_args([])
    server_args.db, server_args.sandbox, server_args.max_runs = args.db, args.sandbox, 1
    return server_args, build_config(server_args, Settings())


def _open_viewer(report: DemoReport, args: argparse.Namespace, console: Console) -> None:
    from rlmx.cli.serve import run_server

    server_args, config = viewer_config(args)
    from rlmx.server.app import create_app

    ids = [r.run_id for r in report.results]
    path = f"/#/runs/{ids[0]}" if len(ids) == 1 else "/"
    run_server(create_app(config), server_args, console, path=path, browse=True)
