"""What ``rlmx mcp`` is told: the models, the folders clients may name, and the caps on a run.

No import of the ``mcp`` SDK here, so the CLI can build and check a configuration without the
extra installed."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

from rlmx.config import Limits, Settings
from rlmx.errors import ConfigError
from rlmx.sandbox.launch import MODES
from rlmx.trajectory.database import default_db_path

DEFAULT_MCP_PORT = 8766
DEFAULT_MAX_ITERATIONS = 20
DEFAULT_TIMEOUT_S = 600.0
DEFAULT_RESULT_CHARS = 8_000
DEFAULT_MAX_TEXT_CHARS = 16 * 1024 * 1024


@dataclass(frozen=True, slots=True, kw_only=True)
class McpConfig:
    """The MCP server's settings; every field has a safe default.

    ``allowed_roots``: the folders whose files and subfolders a tool call may name as context
    (none: only inline text). ``model``/``sub_model``: specs resolved once at start-up.
    ``max_iterations`` and ``timeout_s`` are both the default of a run and the cap a tool call
    may ask for; ``limits`` holds the rest of a run's limits. ``max_runs`` runs go at once
    (more wait their turn); ``result_chars`` bounds each long text in a tool result.
    """

    allowed_roots: tuple[Path, ...] = ()
    db_path: Path | None = None
    model: str | None = None
    sub_model: str | None = None
    base_url: str | None = None
    sandbox: str = "default"
    max_iterations: int = DEFAULT_MAX_ITERATIONS
    timeout_s: float = DEFAULT_TIMEOUT_S
    limits: Limits = field(default_factory=Limits)
    max_runs: int = 4
    max_sessions: int = 8
    result_chars: int = DEFAULT_RESULT_CHARS
    max_text_chars: int = DEFAULT_MAX_TEXT_CHARS
    settings: Settings = field(default_factory=Settings)

    def __post_init__(self) -> None:
        if self.sandbox not in MODES:
            raise ConfigError(f"unknown sandbox mode {self.sandbox!r}: use one of {MODES}")
        for name in ("max_iterations", "max_runs", "max_sessions", "result_chars"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"{name} must be positive, got {getattr(self, name)}")
        if self.timeout_s <= 0:
            raise ConfigError(f"the timeout must be positive, got {self.timeout_s:g}")
        for root in self.allowed_roots:
            if not root.is_dir():
                raise ConfigError(f"--allow-path {root}: not a directory")

    @property
    def database(self) -> Path:
        return self.db_path if self.db_path is not None else default_db_path(self.settings)

    def run_limits(self, max_iterations: int | None, timeout_s: float | None) -> Limits:
        """The limits of one run: what the call asks for, refused above the server's caps."""
        if max_iterations is not None and not 1 <= max_iterations <= self.max_iterations:
            raise ConfigError(
                f"max_iterations must be between 1 and this server's cap of "
                f"{self.max_iterations}, got {max_iterations}"
            )
        if timeout_s is not None and not 0 < timeout_s <= self.timeout_s:
            raise ConfigError(
                f"timeout_s must be above 0 and at most this server's cap of "
                f"{self.timeout_s:g} s, got {timeout_s:g}"
            )
        return replace(
            self.limits,
            max_iterations=max_iterations or self.max_iterations,
            timeout_s=timeout_s or self.timeout_s,
        )
