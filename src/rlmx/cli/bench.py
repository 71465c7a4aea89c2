"""``rlmx bench``: run the paper's long-context tasks with every method, and report.

``rlmx bench list`` shows the task sets and methods; ``rlmx bench run TASKS ...`` appends
one JSON line per (task, method) to DIR/results.jsonl and is resumable; ``rlmx bench report
DIR`` writes DIR/report.md and DIR/report.html.
"""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from rlmx.bench.datafiles import data_dir
from rlmx.bench.methods import METHOD_NAMES, BenchModels, build_method
from rlmx.bench.registry import TASK_SETS
from rlmx.bench.report import write_report
from rlmx.bench.runner import BenchPlan, Runner, read_rows
from rlmx.bench.tasks import format_length, parse_lengths, split_csv
from rlmx.cli.interrupt import Interruption
from rlmx.cli.run import add_assists_option
from rlmx.cli.terminal import markup
from rlmx.config import Assists, Limits, Settings
from rlmx.errors import UsageError
from rlmx.providers.defaults import choose_models
from rlmx.providers.registry import resolve_model
from rlmx.sandbox.process import MODE_HELP, sandbox_factory


def register(commands: Any) -> None:
    parser = commands.add_parser(
        "bench",
        help="run the paper's long-context benchmarks and report",
        description="Benchmarks from the RLM paper (S-NIAH, OOLONG, OOLONG-Pairs, ...) with "
        "the RLM and its baselines on the same models. See docs/benchmarks.md.",
    )
    sub = parser.add_subparsers(dest="bench_command", metavar="ACTION", required=True)
    listing = sub.add_parser("list", help="show the task sets and methods")
    listing.set_defaults(handler=handle_list)

    run = sub.add_parser("run", help="run task sets with methods; resumable")
    run.add_argument("tasks", help=f"comma-separated task sets, or all: {', '.join(TASK_SETS)}")
    run.add_argument(
        "--methods",
        default="rlm,direct",
        help=f"comma-separated, or all: {', '.join(METHOD_NAMES)}",
    )
    run.add_argument("--model", "-m", help="root model spec (default: the embedded local model)")
    run.add_argument("--sub-model", help="sub-model spec (default: the embedded small model)")
    run.add_argument("--lengths", help="context lengths in tokens, e.g. 8k,32k,128k,1m")
    run.add_argument("--n", type=int, default=10, help="tasks per task set and length")
    run.add_argument("--seed", type=int, default=0, help="base seed of every generator")
    run.add_argument(
        "--only",
        metavar="I,J",
        help="run only these task indices (0 .. n-1) of each task set and length",
    )
    run.add_argument("--out", required=True, metavar="DIR", help="results folder (resumable)")
    run.add_argument("--max-iterations", type=int, default=10, help="RLM iterations per task")
    run.add_argument("--timeout", type=float, default=900, help="seconds per task and method")
    run.add_argument(
        "--sandbox", choices=("default", "strict", "none"), default="default", help=MODE_HELP
    )
    run.add_argument("--data", metavar="DIR", help="benchmark data folder (default: data/)")
    run.add_argument("--base-url", help="base URL for OpenAI-compatible providers")
    add_assists_option(run)
    run.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    run.set_defaults(handler=handle_run)

    report = sub.add_parser("report", help="write report.md and report.html for a results DIR")
    report.add_argument("dir", metavar="DIR")
    report.set_defaults(handler=handle_report)


def handle_list(args: argparse.Namespace, console: Console) -> int:
    for spec in TASK_SETS.values():
        lengths = (
            "fixed" if spec.fixed_length else ",".join(map(format_length, spec.default_lengths))
        )
        console.print(
            f"[bold]{spec.name}[/] [dim]({lengths})[/] {escape(spec.description)}", highlight=False
        )
    console.print(f"[bold]methods:[/] {', '.join(METHOD_NAMES)}", highlight=False)
    return 0


def handle_run(args: argparse.Namespace, console: Console) -> int:
    if args.n <= 0:
        raise UsageError("--n must be positive")
    settings = Settings()
    task_sets = split_csv(_all(args.tasks, TASK_SETS), list(TASK_SETS), "task set")
    method_names = split_csv(_all(args.methods, METHOD_NAMES), METHOD_NAMES, "method")
    plan = BenchPlan(
        task_sets=task_sets,
        methods=[build_method(name) for name in method_names],
        lengths=parse_lengths(args.lengths),
        n=args.n,
        seed=args.seed,
        data=data_dir(settings, args.data),
        options={"sandbox": args.sandbox, "assists_off": args.assists_off or None},
        only=_indices(args.only, args.n),
    )
    choice = choose_models(args.model, args.sub_model, settings=settings)
    root = resolve_model(choice.root, settings=settings, base_url=args.base_url)
    sub = (
        root
        if choice.sub == choice.root
        else resolve_model(choice.sub, settings=settings, base_url=args.base_url)
    )
    limits = Limits(max_iterations=args.max_iterations, timeout_s=args.timeout)
    models = BenchModels(
        root=root,
        sub=sub,
        limits=limits,
        sandbox=sandbox_factory(args.sandbox),
        assists=Assists.without(args.assists_off),
    )
    out = Path(args.out)
    console.print(
        f"[dim]bench: {', '.join(task_sets)} x {', '.join(method_names)} · "
        f"root {escape(root.spec)} · sub {escape(sub.spec)} · "
        f"{plan.pending(read_rows(out))} runs to do -> {out}[/]",
        highlight=False,
    )
    total = plan.pending(read_rows(out))
    stop = Interruption()
    with stop:
        try:
            rows = asyncio.run(_run(Runner(plan, models, out), total, console, args.quiet, stop))
        except (asyncio.CancelledError, KeyboardInterrupt):
            if stop.signum is None:
                raise
            console.print(
                f"[bold red]interrupted[/] by {stop.name}; the runs done are in {markup(out)}: "
                "the same command resumes",
                highlight=False,
            )
            return stop.exit_code
    errors = sum(1 for r in rows if r["status"] == "error")
    console.print(
        f"[dim]{len(rows)} runs done, {errors} errors; results in {out / 'results.jsonl'}; "
        f"report with: rlmx bench report {out}[/]",
        highlight=False,
    )
    return 0


def _all(text: str, names: Any) -> str:
    return ",".join(names) if text.strip() == "all" else text


async def _run(
    runner: Runner, total: int, console: Console, quiet: bool, stop: Interruption
) -> list[dict[str, Any]]:
    stop.watch()  # SIGINT or SIGTERM: cancelled, so that the sandboxes stop their workers
    try:
        if quiet:
            return await runner.run()
        columns = (
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("eta"),
            TimeRemainingColumn(),
        )
        with Progress(*columns, console=console, transient=False) as bar:
            job = bar.add_task("bench", total=total)

            def progress(row: dict[str, Any]) -> None:
                bar.advance(job)
                mark = "red" if row["status"] == "error" else "green" if row["score"] else "yellow"
                bar.console.print(
                    f"[{mark}]{row['task_id']} {row['method']}: score {row['score']:.2f}[/] "
                    f"[dim]{row['status']}{' truncated' if row['truncated'] else ''} · "
                    f"{row['wall_s']:.0f} s[/]",
                    highlight=False,
                )

            return await runner.run(progress)
    finally:
        clients = {id(c): c for c in (runner.models.root, runner.models.sub)}
        for client in clients.values():
            await client.aclose()


def handle_report(args: argparse.Namespace, console: Console) -> int:
    out = Path(args.dir)
    rows = read_rows(out)
    if not rows:
        raise UsageError(f"no results in {out}: run `rlmx bench run ... --out {out}` first")
    md, html = write_report(out, rows)
    console.print(f"wrote {md} and {html}", highlight=False)
    return 0


def _indices(raw: str | None, n: int) -> frozenset[int] | None:
    if raw is None:
        return None
    try:
        indices = frozenset(int(part) for part in raw.split(",") if part.strip())
    except ValueError:
        raise UsageError(f"--only takes task indices such as 0,3,7; got {raw!r}") from None
    if not indices or any(not 0 <= i < n for i in indices):
        raise UsageError(f"--only: every index must be between 0 and {n - 1} (--n {n})")
    return indices
