"""``rlmx runs list|show|export|import|delete``: the runs kept in the store."""

from __future__ import annotations

import argparse
import datetime
import json
import sys
from pathlib import Path
from typing import IO, Any

from rich import box
from rich.console import Console
from rich.table import Table

from rlmx.errors import UsageError
from rlmx.trajectory.events import event_from_dict
from rlmx.trajectory.jsonl import import_trace
from rlmx.trajectory.store import RunStore
from rlmx.trajectory.summary import RunSummary

from .progress import ProgressRecorder
from .store_actions import existing_store_path, store_actions, store_path
from .terminal import json_line, json_text, markup


def register(commands: Any) -> None:
    parser = commands.add_parser(
        "runs",
        help="list, show, export or import recorded runs",
        description="The runs recorded in the store: --db, else $RLMX_DB, else "
        "$RLMX_HOME/rlmx.db. IDs may be shortened to any unique prefix.",
    )
    parser.set_defaults(handler=_list, limit=20, status=None, json=False, db=None)
    action = store_actions(parser, "runs_command")

    listing = action("list", "list recent runs, newest first")
    listing.add_argument("--limit", "-n", type=int, default=20)
    listing.add_argument("--status", help="only runs with this status")
    listing.add_argument("--json", action="store_true", help="one JSON object per line")
    listing.set_defaults(handler=_list)
    show = action("show", "show one run: its totals, answer and steps")
    show.add_argument("id")
    show.add_argument("--json", action="store_true", help="the summary as JSON")
    show.set_defaults(handler=_show)
    export = action("export", "write a run's events as JSON Lines (the --trace format)")
    export.add_argument("id")
    export.add_argument("--output", "-o", metavar="FILE", help="file to write (default stdout)")
    export.set_defaults(handler=_export)
    imp = action("import", "add JSONL traces to the store")
    imp.add_argument("traces", nargs="+", metavar="TRACE.jsonl")
    imp.set_defaults(handler=_import)
    delete = action("delete", "remove a finished run and its events")
    delete.add_argument("id")
    delete.set_defaults(handler=_delete)


def _store(args: argparse.Namespace, *, must_exist: bool = True) -> RunStore:
    """The store, its runs whose recording process died marked ``interrupted`` first (reading
    never does that by itself), so that what is listed or shown is their real status."""
    store = RunStore(existing_store_path(args) if must_exist else store_path(args))
    store.reap()
    return store


def _resolve(store: RunStore, prefix: str) -> RunSummary:
    try:
        run_id = store.resolve_id(prefix)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    summary = store.get_run(run_id) if run_id else None
    if summary is None:
        raise UsageError(f"no run {prefix!r} in {store.path} (see rlmx runs list)")
    return summary


def _when(ts: float | None) -> str:
    if ts is None:
        return "-"
    return datetime.datetime.fromtimestamp(ts).strftime("%m-%d %H:%M")


def _cost(usd: float | None) -> str:
    if usd is None:
        return "?"
    return "$0" if usd == 0 else f"${usd:.4f}"


def _secs(s: float | None) -> str:
    return "-" if s is None else f"{s:.1f} s"


_STYLES = {"completed": "green", "running": "cyan", "queued": "cyan", "error": "red"}


def _list(args: argparse.Namespace, console: Console) -> int:
    out = Console()
    path = store_path(args)
    if not path.exists():
        console.print(f"no runs yet (no store at {markup(path)})", highlight=False)
        return 0
    with _store(args) as store:
        runs = store.list_runs(limit=args.limit, status=args.status)
    if args.json:
        for run in runs:
            sys.stdout.write(json_line(run.to_dict()) + "\n")
        return 0
    table = Table(title=f"Runs in {markup(path)}", title_justify="left", box=box.SIMPLE_HEAD)
    wide = out.width >= 110
    table.add_column("id", no_wrap=True, min_width=12)
    table.add_column("status", no_wrap=True, min_width=9)
    if wide:
        table.add_column("started", no_wrap=True)
    table.add_column("query", ratio=1, overflow="fold", min_width=16)
    if wide:
        table.add_column("model", overflow="fold", max_width=28)
        table.add_column("iter", justify="right", no_wrap=True)
        table.add_column("sub", justify="right", no_wrap=True)
    for column in ("tokens", "cost", "time"):
        table.add_column(column, justify="right", no_wrap=True)
    for run in runs:
        style = _STYLES.get(run.status, "yellow")
        query = markup(run.query.replace("\n", " ")[:80])
        extra = [markup(run.root_model or "-"), str(run.iterations), str(run.sub_calls)]
        table.add_row(
            markup(run.id),
            f"[{style}]{markup(run.status)}[/]",
            *([_when(run.created_at), query, *extra] if wide else [query]),
            f"{run.total_tokens:,}",
            _cost(run.cost_usd),
            _secs(run.elapsed_s),
        )
    out.print(table)
    if not runs:
        out.print("no runs match")
    return 0


def _show(args: argparse.Namespace, console: Console) -> int:
    out = Console(soft_wrap=True)
    with _store(args) as store:
        run = _resolve(store, args.id)
        if args.json:
            sys.stdout.write(json_line(run.to_dict(), indent=2) + "\n")
            return 0
        events = [json.loads(line) for _, line in store.iter_events(run.id)]
    style = _STYLES.get(run.status, "yellow")
    out.print(
        f"[bold]run {markup(run.id)}[/] [{style}]{markup(run.status)}[/]  ({markup(run.source)})",
        highlight=False,
    )
    out.print(f"query:   {markup(run.query)}", highlight=False)
    models = f"root {markup(run.root_model or '-')} · sub {markup(run.sub_model or '-')}"
    out.print(f"models:  {models}", highlight=False)
    out.print(
        f"started: {_when(run.started_at or run.created_at)} · {_secs(run.elapsed_s)} · "
        f"{run.iterations} iterations · {run.sub_calls} sub-calls · "
        f"{run.total_tokens:,} tokens ({run.prompt_tokens:,} prompt) · cost {_cost(run.cost_usd)}",
        highlight=False,
    )
    steps = ProgressRecorder(out)
    for data in events:
        try:
            steps.on_event(event_from_dict(data))
        except ValueError:
            continue
    if run.answer is not None:
        out.print("[bold green]answer:[/]", highlight=False)
        out.print(markup(run.answer), highlight=False)
    if run.error:
        out.print(f"[bold red]error:[/] {markup(run.error)}", highlight=False)
    return 0


def _export(args: argparse.Namespace, console: Console) -> int:
    with _store(args) as store:
        run = _resolve(store, args.id)
        target: IO[str]
        if args.output:
            try:
                target = Path(args.output).expanduser().open("w", encoding="utf-8")
            except OSError as exc:
                raise UsageError(f"cannot write {args.output}: {exc.strerror}") from None
        else:
            target = sys.stdout
        count = 0
        try:
            for _, line in store.iter_events(run.id):
                target.write(json_text(line) + "\n")  # C1 controls are stored raw
                count += 1
        finally:
            if target is not sys.stdout:
                target.close()
    if args.output:
        console.print(f"wrote {count} events of run {markup(run.id)} to {markup(args.output)}")
    return 0


def _import(args: argparse.Namespace, console: Console) -> int:
    with _store(args, must_exist=False) as store:
        for trace in args.traces:
            try:
                ids, skipped = import_trace(store, trace)
            except ValueError as exc:
                raise UsageError(f"{trace}: {exc}") from None
            note = f" ({skipped} bad lines skipped)" if skipped else ""
            imported = markup(", ".join(ids) or "no runs")
            console.print(f"{markup(trace)}: imported {imported}{note}", highlight=False)
    return 0


def _delete(args: argparse.Namespace, console: Console) -> int:
    with _store(args) as store:
        run = _resolve(store, args.id)
        if run.active:
            raise UsageError(f"run {run.id} is still {run.status}; cancel it first")
        store.delete_run(run.id)
    console.print(f"deleted run {markup(run.id)}", highlight=False)
    return 0
