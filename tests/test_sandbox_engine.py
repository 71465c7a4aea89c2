"""The engine with its REPL in a sandbox worker.

Every engine test of tests/test_engine.py runs in each sandbox mode already (the ``sandbox``
fixture of tests/conftest.py); this is what only a worker can show.
"""

from __future__ import annotations

import os

import pytest

from rlmx import RLM
from rlmx.sandbox.launch import Mode
from rlmx.sandbox.process import sandbox_factory

from .conftest import repl, scripted
from .sandbox_support import ALL_MODES


@pytest.mark.parametrize("mode", ALL_MODES)
def test_cells_really_run_in_another_process(mode: Mode) -> None:
    rlm = RLM(model=scripted(repl("import os\nFINAL(os.getpid())")), sandbox=sandbox_factory(mode))
    result = rlm.run("What is the vault code?", "the vault code is ZETA-42")
    assert result.status == "completed"
    assert result.answer != str(os.getpid())
