"""What ``rlmx serve`` is told: where to keep data, what clients may ask for, who may ask."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from pathlib import Path

from rlmx.config import Limits, Settings
from rlmx.errors import ConfigError
from rlmx.rlm import EXECUTORS
from rlmx.sandbox.launch import MODES
from rlmx.sessions.session import SessionPolicy
from rlmx.trajectory.database import default_db_path

# The library's own session policy, so a server and a Python session age alike by default.
SESSION_DEFAULTS = SessionPolicy()
MAX_LIVE_SESSIONS = 32

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765
DEFAULT_MAX_UPLOAD_BYTES = 256 * 1024 * 1024
TOKEN_ENV = "RLMX_API_TOKEN"


@dataclass(frozen=True, slots=True, kw_only=True)
class ServerConfig:
    """The service's settings; every field has a safe default.

    ``allowed_roots`` are the folders whose files a client may name as server-side context
    (and as ``scripted:`` model files); with none, clients can only upload contexts.
    ``model``/``sub_model`` are the specs used when a request names none. Runs beyond
    ``max_active_runs`` wait, queued; beyond ``max_queued_runs`` more are refused with 429.

    Sessions (``/v1/sessions``, and chat conversations that repeat their context): a session's
    REPL worker is stopped after ``session_idle_s`` without a question (the next one rebuilds
    it by replay); at most ``max_live_sessions`` are held in memory (the least recently used
    beyond that are let go, and reopened from the store when asked again); stored sessions
    unused for ``session_expire_s``, and the least recently used beyond ``session_max_bytes``
    in all, are deleted. ``chat_sessions`` lets ``/v1/chat/completions`` keep a session per
    conversation.

    ``executor`` is where the runs' sub-calls and corpus scans go: ``local`` (this process) or
    ``ray`` (the cluster at ``RAY_ADDRESS``, else a local Ray started with the server): one
    executor for the whole server, closed when it stops.
    """

    db_path: Path | None = None
    allowed_roots: tuple[Path, ...] = ()
    max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES
    token: str | None = None
    model: str | None = None
    sub_model: str | None = None
    limits: Limits = field(default_factory=Limits)
    sandbox: str = "default"
    max_active_runs: int = 4
    max_queued_runs: int = 64
    heartbeat_s: float = 15.0
    settings: Settings = field(default_factory=Settings)
    session_idle_s: float = SESSION_DEFAULTS.worker_idle_s
    session_expire_s: float = SESSION_DEFAULTS.expire_idle_s
    session_max_bytes: int = SESSION_DEFAULTS.max_stored_bytes
    max_live_sessions: int = MAX_LIVE_SESSIONS
    chat_sessions: bool = True
    executor: str = "local"

    def __post_init__(self) -> None:
        if self.max_upload_bytes <= 0:
            raise ConfigError(f"the upload limit must be positive, got {self.max_upload_bytes}")
        if self.max_active_runs <= 0 or self.max_queued_runs < 0:
            raise ConfigError("max_active_runs must be positive and max_queued_runs 0 or more")
        if min(self.session_idle_s, self.session_expire_s, self.session_max_bytes) <= 0:
            raise ConfigError("the session idle time, expiry and size limit must be positive")
        if self.max_live_sessions <= 0:
            raise ConfigError(f"max_live_sessions must be positive, got {self.max_live_sessions}")
        if self.executor not in EXECUTORS:
            raise ConfigError(f"unknown executor {self.executor!r}: use one of {EXECUTORS}")
        if self.sandbox not in MODES:
            raise ConfigError(f"unknown sandbox mode {self.sandbox!r}: use one of {MODES}")
        for root in self.allowed_roots:
            if not root.is_dir():
                raise ConfigError(f"--allow-path {root}: not a directory")

    @property
    def database(self) -> Path:
        return self.db_path if self.db_path is not None else default_db_path(self.settings)

    @property
    def run_settings(self) -> Settings:
        """The settings runs are built with: the server's, with its store as ``RLMX_DB`` so
        that the runs' model-call cache lives in it too."""
        return Settings(env={**self.settings.env, "RLMX_DB": str(self.database)})

    @property
    def contexts_dir(self) -> Path:
        """Uploaded contexts, one file per sha256, beside the database."""
        return self.database.parent / "contexts"

    @property
    def sessions_dir(self) -> Path:
        """How this server's sessions were opened (their context's sources and models), one
        JSON file per session, beside the database: what reopens one after a restart."""
        return self.database.parent / "sessions"


def is_loopback(host: str) -> bool:
    name = host.strip("[]").lower()
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def check_bind(host: str, token: str | None) -> None:
    """Refuse to listen beyond this machine without a token."""
    if not is_loopback(host) and not token:
        raise ConfigError(
            f"refusing to listen on {host} without a token: anyone who can reach it could run "
            f"code through the models. Set {TOKEN_ENV} (clients send it as "
            f"'Authorization: Bearer TOKEN'), or bind {DEFAULT_HOST}"
        )
