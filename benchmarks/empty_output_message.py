"""A/B for the small-model turn after a cell that printed nothing: `rlmx bench run` with the
bare "(nothing printed)" of the full style (no hint, no repeat warning), to set beside a normal
run on the same seeds.

python benchmarks/empty_output_message.py bench run sniah --methods rlm --lengths 16k,1m \
    --n 10 --out .bench/bare-empty-output

It replaces ``rlmx.engine.loop.format_cell_output`` in this process only.
"""

import sys
from typing import Any

import rlmx.engine.loop as loop
from rlmx.cli.main import main
from rlmx.engine.prompts import format_cell_output as _original


def bare(index: int, total: int, output: str, error: str | None, **_: Any) -> str:
    return _original(index, total, output, error, style="full")


setattr(loop, "format_cell_output", bare)  # noqa: B010 (loop imported the name)
sys.exit(main(sys.argv[1:]))
