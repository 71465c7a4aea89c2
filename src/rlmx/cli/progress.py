"""Live progress of a run on stderr: one line per step, and a status line that keeps time.

Everything shown from an event is model or stored text: printed through
:func:`~rlmx.cli.terminal.markup`, so that it cannot drive the terminal."""

from __future__ import annotations

import time
from dataclasses import dataclass

from rich.console import Console
from rich.status import Status

from rlmx.trajectory.events import CellExecuted, Event, RootReply, RunFinished, RunStarted, SubCall

from .terminal import markup


def _first_lines(text: str, n: int, width: int = 110) -> list[str]:
    lines = [line[:width] for line in text.strip().splitlines() if line.strip()]
    return [*lines[:n], f"… ({len(lines) - n} more lines)"] if len(lines) > n else lines


@dataclass(slots=True)
class _Calls:
    """Sub-calls in a row of one kind, model and depth: a map over 1,134 items is one line,
    not 1,134."""

    kind: str
    model: str
    depth: int
    count: int = 0
    seconds: float = 0.0
    errors: int = 0
    first_error: str | None = None

    def add(self, event: SubCall) -> None:
        self.count += 1
        self.seconds += event.latency_s
        if event.error:
            self.errors += 1
            self.first_error = self.first_error or event.error

    def line(self) -> str:
        indent = "  " * self.depth
        head = f"{indent}  [yellow]↳ {markup(self.kind)}_query[/]"
        if self.count > 1:
            head += f" ×{self.count:,}"
        mark = f"{self.seconds:.1f} s" + (" in all" if self.count > 1 else "")
        if self.errors:
            failed = "" if self.count == 1 else f"{self.errors:,} failed, the first: "
            mark += f" [red]{failed}{markup(self.first_error or '')}[/]"
        return f"{head} {markup(self.model)} {mark}"


class ProgressRecorder:
    """A :class:`~rlmx.trajectory.base.Recorder` that draws the run for a person watching."""

    def __init__(self, console: Console, *, show_code: bool = True) -> None:
        self._console = console
        self._show_code = show_code
        self._started = time.monotonic()
        self._root_tokens = 0
        self._sub_tokens = 0
        self._sub_calls = 0
        self._iteration = 0
        self._status: Status | None = None
        self._calls: _Calls | None = None

    def __enter__(self) -> ProgressRecorder:
        self._status = self._console.status(self._line(), spinner="dots")
        self._status.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._flush()
        if self._status is not None:
            self._status.stop()
            self._status = None

    def _line(self) -> str:
        elapsed = time.monotonic() - self._started
        return (
            f"iteration {self._iteration} · root {self._root_tokens:,} tok · "
            f"sub {self._sub_calls} calls {self._sub_tokens:,} tok · {elapsed:.1f} s"
        )

    def _print(self, text: str) -> None:
        self._console.print(text, highlight=False)

    def _flush(self) -> None:
        if self._calls is not None:
            self._print(self._calls.line())
            self._calls = None

    def on_event(self, event: Event) -> None:
        indent = "  " * event.depth
        if not isinstance(event, SubCall):
            self._flush()
        if isinstance(event, RunStarted) and event.depth == 0:
            ctx = event.context
            if ctx.get("chars") is None:  # a directory, read on demand
                size = f"{ctx.get('parts', 0):,} files, {ctx.get('bytes', 0):,} bytes"
            else:
                size = f"{ctx['chars']:,} chars, {ctx['lines']:,} lines"
            self._print(
                f"[dim]context: {markup(ctx.get('form', ctx['kind']))} of {size} · "
                f"root {markup(event.root_model)} · sub {markup(event.sub_model)}[/]"
            )
        elif isinstance(event, RunStarted):
            self._print(f"{indent}[magenta]↳ nested run {markup(event.run_id)}[/]")
        elif isinstance(event, RootReply):
            tokens = event.usage.get("total_tokens", 0)
            if event.depth == 0:
                self._iteration = event.iteration
                self._root_tokens += tokens
            else:
                self._sub_tokens += tokens
            self._print(
                f"{indent}[bold cyan]▸ iteration {event.iteration}[/] "
                f"[dim]({tokens:,} tok, {event.latency_s:.1f} s)[/]"
            )
        elif isinstance(event, CellExecuted) and self._show_code:
            for line in _first_lines(event.code, 6):
                self._print(f"{indent}  [green]│[/] {markup(line)}")
            for line in _first_lines(event.error or event.output, 3):
                style = "red" if event.error else "dim"
                self._print(f"{indent}  [{style}]→ {markup(line)}[/]")
        elif isinstance(event, SubCall):
            self._sub_calls += 1
            self._sub_tokens += event.usage.get("total_tokens", 0)
            calls = self._calls
            if calls is None or (calls.kind, calls.model, calls.depth) != (
                event.kind,
                event.model,
                event.depth,
            ):
                self._flush()
                calls = self._calls = _Calls(event.kind, event.model, event.depth)
            calls.add(event)
        elif isinstance(event, RunFinished) and event.depth > 0:
            self._print(f"{indent}[magenta]↲ nested run {markup(event.result['status'])}[/]")
        if self._status is not None:
            self._status.update(self._line())
