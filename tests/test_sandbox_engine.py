"""Every engine test of tests/test_engine.py again, with the REPL in a sandbox worker.

The tests are imported (pytest collects them here too) and an autouse fixture hands their
``RLM`` a process-sandbox factory, once per mode: the confined worker must keep the behaviour
the in-process REPL has.
"""

from __future__ import annotations

import os
from typing import Any

import pytest

from rlmx import RLM
from rlmx.sandbox.process import sandbox_factory

from . import test_engine
from .conftest import repl, scripted
from .sandbox_support import ALL_MODES
from .test_engine import *  # noqa: F403


@pytest.fixture(autouse=True, params=ALL_MODES)
def _process_sandbox(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    factory = sandbox_factory(request.param)

    class SandboxedRLM(RLM):
        def __init__(self, **kwargs: Any) -> None:
            kwargs["sandbox"] = factory
            super().__init__(**kwargs)

    monkeypatch.setattr(test_engine, "RLM", SandboxedRLM)


def test_cells_really_run_in_another_process() -> None:
    result, _ = test_engine.run(scripted(repl("import os\nFINAL(os.getpid())")))
    assert result.status == "completed"
    assert result.answer != str(os.getpid())
