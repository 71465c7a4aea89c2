"""Shared fixtures. A guard refuses any connection off this machine: no test may reach a real
model endpoint by accident. Provider tests talk to servers they start on loopback."""

from __future__ import annotations

import ipaddress
import socket
import sys
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import Any

import pytest

from rlmx.config import Settings
from rlmx.providers.scripted import Rule, ScriptedModel

REPO = Path(__file__).resolve().parent.parent
SHARED_DATA = REPO.parent / "shared" / "data"

_real_connect = socket.socket.connect


def _is_local(address: Any) -> bool:
    if isinstance(address, str | bytes):  # a Unix socket path
        return True
    host = address[0]
    if host in ("localhost", ""):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _guarded_connect(self: socket.socket, address: Any) -> None:
    if not _is_local(address):
        raise RuntimeError(f"tests may not connect off this machine (tried {address!r})")
    _real_connect(self, address)


@pytest.fixture(autouse=True)
def _no_network(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(socket.socket, "connect", _guarded_connect)
    for name in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "DEEPSEEK_API_KEY", "OPENROUTER_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    # Runs a test records go to its own store, never to the user's.
    monkeypatch.setenv("RLMX_DB", str(tmp_path / "default-store.db"))


# The attack battery's count of hostile cells ------------------------------------------------


def _hostile_ledger() -> Any:
    """The ledger of tests/sandbox_support.py, if a test imported it (else there is nothing to
    count, and it is not imported here: most runs never start a sandbox)."""
    module = sys.modules.get(f"{__package__}.sandbox_support" if __package__ else "sandbox_support")
    return getattr(module, "HOSTILE", None)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, Any, None]:
    outcome = yield
    report = outcome.get_result()
    ledger = _hostile_ledger()
    if ledger is not None and report.when == "call":
        ledger.settle(report.outcome)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    ledger = _hostile_ledger()
    if ledger is not None and ledger.summary():
        terminalreporter.write_sep("-", "sandbox attack battery")
        for line in ledger.summary():
            terminalreporter.write_line(line)


# The embedded models are assembled once into this folder and reused by later runs.
TEST_HOME = REPO / ".rlmx-test-home"


@pytest.fixture(scope="session")
def local_settings() -> Iterator[Settings]:
    pytest.importorskip("xllamacpp")
    from rlmx.providers.local import unload_all

    yield Settings(env={"RLMX_HOME": str(TEST_HOME)})
    unload_all()


@pytest.fixture
def empty_settings() -> Settings:
    return Settings(env={})


def scripted(
    *responses: str, rules: dict[str, str] | None = None, latency_s: float = 0.0
) -> ScriptedModel:
    return ScriptedModel(
        list(responses),
        rules=[Rule(k, v) for k, v in (rules or {}).items()],
        latency_s=latency_s,
    )


def repl(code: str) -> str:
    return f"```repl\n{code}\n```"
