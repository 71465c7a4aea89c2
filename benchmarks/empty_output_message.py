"""Experiment: `rlmx bench run` with the small-model turn message changed after a cell that
printed nothing (the hook proposed in docs/benchmarks.md for engine/prompts.py).

python benchmarks/empty_output_message.py bench run sniah --methods rlm --lengths 16k,1m \
    --n 10 --out .bench/patched

It replaces ``rlmx.engine.loop.format_cell_output`` in this process only.
"""

import sys

import rlmx.engine.loop as loop
from rlmx.cli.main import main

_original = loop.format_cell_output
EMPTY = (
    "(nothing printed: your search found no match. Do not answer yet. Search again with "
    "fewer words: one distinctive name, number or key from the question.)"
)


def format_cell_output(index: int, total: int, output: str, error: str | None) -> str:
    if not output.strip() and not error:
        label = "Output" if total == 1 else f"Output of block {index + 1}"
        return f"{label}:\n{EMPTY}"
    return _original(index, total, output, error)


loop.format_cell_output = format_cell_output
sys.exit(main(sys.argv[1:]))
