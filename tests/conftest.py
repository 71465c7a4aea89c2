"""Shared fixtures. A guard refuses any connection off this machine: no test may reach a real
model endpoint by accident. Provider tests talk to servers they start on loopback."""

from __future__ import annotations

import ipaddress
import socket
import sys
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import Any, Protocol, TypeVar

import pytest

from rlmx import RLM
from rlmx.config import Assists, Limits, Settings
from rlmx.providers.base import LLMClient
from rlmx.providers.scripted import Rule, ScriptedModel
from rlmx.sandbox.base import SandboxFactory
from rlmx.sandbox.inprocess import InProcessRepl
from rlmx.trajectory.base import Recorder
from rlmx.trajectory.events import Event

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


# The engine in every sandbox ---------------------------------------------------------------


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """A test that takes ``sandbox`` (itself or through ``make_rlm``) runs once with the
    in-process REPL and once in each sandbox mode."""
    if "sandbox" in metafunc.fixturenames:
        # Imported only here: it probes the kernel, and most runs never start a sandbox.
        from .sandbox_support import ALL_MODES

        metafunc.parametrize("sandbox", ["inprocess", *ALL_MODES], indirect=True)


@pytest.fixture
def sandbox(request: pytest.FixtureRequest) -> SandboxFactory:
    """The REPL of the engine under test: ``inprocess``, or a worker in a sandbox mode."""
    if request.param == "inprocess":
        return InProcessRepl
    from rlmx.sandbox.process import sandbox_factory

    return sandbox_factory(request.param)


class MakeRLM(Protocol):
    def __call__(
        self,
        *,
        model: LLMClient,
        sub_model: LLMClient | None = None,
        limits: Limits | None = None,
        recorder: Recorder | None = None,
        assists: Assists | None = None,
    ) -> RLM: ...


@pytest.fixture
def make_rlm(sandbox: SandboxFactory) -> MakeRLM:
    """``RLM(...)`` with its REPL in ``sandbox``."""

    def make(
        *,
        model: LLMClient,
        sub_model: LLMClient | None = None,
        limits: Limits | None = None,
        recorder: Recorder | None = None,
        assists: Assists | None = None,
    ) -> RLM:
        return RLM(
            model=model,
            sub_model=sub_model,
            limits=limits,
            recorder=recorder,
            sandbox=sandbox,
            assists=assists,
        )

    return make


E = TypeVar("E", bound=Event)


class ListRecorder:
    """Keeps every event of a run, in order."""

    def __init__(self) -> None:
        self.events: list[Event] = []

    def on_event(self, event: Event) -> None:
        self.events.append(event)

    def of(self, kind: type[E]) -> list[E]:
        return [e for e in self.events if isinstance(e, kind)]


# The embedded models are assembled once into this folder and reused by later runs.
TEST_HOME = REPO / ".rlmx-test-home"


@pytest.fixture(scope="session")
def local_settings(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    pytest.importorskip("xllamacpp")
    from rlmx.providers.local import unload_all

    # A store of this session's own: the embedded models' answers are cached in the store, and
    # a test of the real models must call them, not read an earlier session's answers.
    store = tmp_path_factory.mktemp("local-store") / "rlmx.db"
    yield Settings(env={"RLMX_HOME": str(TEST_HOME), "RLMX_DB": str(store)})
    unload_all()


@pytest.fixture
def embedded_demo_models(local_settings: Settings) -> Any:
    """A demo's models as ``rlmx demo run`` picks them with no key: the embedded defaults, in
    the default sandbox."""
    from rlmx.demos.runner import DemoModels
    from rlmx.providers.defaults import LOCAL_ROOT, LOCAL_SUB
    from rlmx.providers.registry import resolve_model
    from rlmx.sandbox.process import sandbox_factory

    root = resolve_model(LOCAL_ROOT, settings=local_settings)
    sub = root if LOCAL_SUB == LOCAL_ROOT else resolve_model(LOCAL_SUB, settings=local_settings)
    return DemoModels(
        root=root, sub=sub, sandbox=sandbox_factory("default"), settings=local_settings
    )


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


def small_scripted(*replies: str, rules: dict[str, str] | None = None) -> ScriptedModel:
    """A scripted root that rlmx treats as a small model (routing, examples, reviews)."""
    from rlmx.providers.base import ModelProfile

    return ScriptedModel(
        list(replies),
        rules=[Rule(k, v) for k, v in (rules or {}).items()],
        profile=ModelProfile(context_window=32_000, small=True),
    )


def repl(code: str) -> str:
    return f"```repl\n{code}\n```"
