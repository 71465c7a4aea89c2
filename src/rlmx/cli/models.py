"""``rlmx models``: list the embedded models, and ``rlmx models prepare NAME|all``."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.table import Table

from rlmx.config import Settings
from rlmx.errors import ModelAssetError
from rlmx.local.models import (
    INSTALL_HINT,
    EmbeddedModel,
    ModelStatus,
    get_model,
    list_models,
    prepare,
    status,
)

# The width of the table without its path column, borders included.
_OTHER_COLUMNS_WIDTH = 110


def register(commands: Any) -> None:
    """Add the ``models`` subcommand to the top-level subparsers ``commands``."""
    parser = commands.add_parser(
        "models",
        help="list the embedded offline models, or prepare one",
        description="List the embedded models (weights shipped in Python packages) or "
        "assemble and verify one before first use.",
    )
    parser.set_defaults(handler=_list)
    actions = parser.add_subparsers(dest="models_command", metavar="ACTION")
    prep = actions.add_parser(
        "prepare",
        help="assemble and verify an embedded model (or 'all' installed ones)",
        description="Assemble an embedded model from its packages and check its sha256; "
        "prints the model file's path.",
    )
    prep.add_argument("name", help="a model name from 'rlmx models', or 'all'")
    prep.set_defaults(handler=_prepare)


def _size(n: int | None) -> str:
    if n is None:
        return "-"
    value = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{n} B"  # pragma: no cover - the loop always returns


def _installed(st: ModelStatus) -> str:
    if st.installed:
        return "yes"
    total = len(st.model.parts)
    return f"no ({len(st.missing)} of {total} missing)" if total > 1 else "no"


def _list(args: argparse.Namespace, console: Console) -> int:
    home = Settings().home
    out = Console()
    statuses = [status(model, home) for model in list_models()]
    paths = [str(st.path) if st.path is not None else "-" for st in statuses]
    # A path folded inside a cell is hard to copy: when the table would not fit the
    # terminal with its paths, list them under it instead.
    wide = out.width >= _OTHER_COLUMNS_WIDTH + max(map(len, paths))
    table = Table(title=f"Embedded models (home: {home})", title_justify="left")
    for column in ("name", "title", "context", "packages", "assembled", "size"):
        table.add_column(column, overflow="fold", no_wrap=column != "title")
    if wide:
        table.add_column("path", no_wrap=True)
    for st, path in zip(statuses, paths, strict=True):
        model = st.model
        row = [
            model.name,
            model.title,
            f"{model.context_window:,}",
            _installed(st),
            ("verified" if model.in_place else "yes") if st.assembled else "no",
            _size(st.size if st.assembled else model.size),
        ]
        table.add_row(*row, *([path] if wide else []))
    out.print(table)
    if not wide:
        for st, path in zip(statuses, paths, strict=True):
            out.print(f"{st.model.name}: {path}", soft_wrap=True, highlight=False, markup=False)
    return 0


def _prepare_one(model: EmbeddedModel, home: Path, console: Console) -> None:
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=True,
        disable=not console.is_terminal,
    ) as progress:
        verb = "verifying" if model.in_place else "assembling"
        task = progress.add_task(f"{verb} {model.name}", total=model.size)

        def on_progress(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        path = prepare(model, home, on_progress=on_progress)
    console.print(f"[green]ready:[/] {model.name}", highlight=False)
    Console().print(str(path), soft_wrap=True, highlight=False, markup=False)


def _prepare(args: argparse.Namespace, console: Console) -> int:
    home = Settings().home
    if args.name.lower() != "all":
        _prepare_one(get_model(args.name), home, console)
        return 0
    ready = 0
    for model in list_models():
        st = status(model, home)
        if not st.installed:
            console.print(f"skipping {model.name}: its packages are not installed", highlight=False)
            continue
        _prepare_one(model, home, console)
        ready += 1
    if ready == 0:
        raise ModelAssetError(f"no embedded model packages are installed: {INSTALL_HINT}")
    return 0
