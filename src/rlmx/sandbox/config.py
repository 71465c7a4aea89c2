"""The knobs of a :class:`~rlmx.sandbox.process.ProcessSandbox`, as one value (host side).

A :class:`SandboxConfig` holds resolved values: ``AUTO`` limits have become the mode's defaults
(:func:`resolve_limit`: a cell may use 60 s of CPU time and 300 s of wall-clock time in the
confined modes, and has no limit in ``none``), and read paths are absolute.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from rlmx.errors import SandboxError
from rlmx.sandbox.launch import MAX_TASKS, MODES, Mode


class Auto(enum.Enum):
    AUTO = "auto"


AUTO = Auto.AUTO
DEFAULT_CELL_CPU_S = 60.0
DEFAULT_CELL_WALL_S = 300.0
DEFAULT_MEMORY_MB = 2048

MODE_HELP = (
    "where model-written code runs: 'default' confines a worker process with resource "
    "limits, Landlock and seccomp; 'strict' adds bubblewrap namespaces (needs bwrap); 'none' "
    "runs an unconfined worker with every installed package and no limits, for trusted data "
    "and heavy jobs only"
)


def check_mode(mode: object) -> None:
    if mode not in MODES:
        raise SandboxError(f"unknown sandbox mode {mode!r}: use one of {MODES}")


@dataclass(frozen=True, slots=True, kw_only=True)
class SandboxConfig:
    """What every worker of one session shares; ``None`` lifts a limit."""

    mode: Mode = "default"
    cell_cpu_s: float | None = DEFAULT_CELL_CPU_S
    cell_wall_s: float | None = DEFAULT_CELL_WALL_S
    memory_mb: int = DEFAULT_MEMORY_MB
    max_open_files: int = 64
    max_tasks: int | None = MAX_TASKS
    grace_s: float = 2.0
    capture_chars: int = 200_000
    max_message_bytes: int | None = None
    site_packages: bool = False
    read_paths: tuple[str, ...] = ()
    replay: bool = True
    python_guard: bool = True
    startup_timeout_s: float = 60.0
    pretend_missing: str | None = None  # tests only: act as if the kernel lacked it

    def __post_init__(self) -> None:
        check_mode(self.mode)


def resolve_limit(value: float | Auto | None, mode: Mode, default: float) -> float | None:
    """A per-cell limit as given, or for ``AUTO`` the mode's default (none in ``none``)."""
    if isinstance(value, Auto):
        return None if mode == "none" else default
    return value
