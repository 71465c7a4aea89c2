"""A/B for the small-model turns after fruitless code: `rlmx bench run` with replies whose
code printed nothing (or re-ran with the same output) kept in the conversation, and the bare
"(nothing printed)" of the full style, to set beside a normal run on the same seeds.

python benchmarks/empty_output_message.py bench run sniah --methods rlm --lengths 128k,1m \
    --n 10 --out .bench/keep-fruitless

It changes ``rlmx.engine.loop`` in this process only.
"""

import dataclasses
import sys
from typing import Any

import rlmx.engine.loop as loop
from rlmx.cli.main import main
from rlmx.engine.prompts import PromptStyle
from rlmx.engine.prompts import format_cell_output as _format
from rlmx.engine.prompts import prompt_style_for as _style_for


def bare(index: int, total: int, output: str, error: str | None, **_: Any) -> str:
    return _format(index, total, output, error, style="full")


def keeping(*, small: bool, max_output_chars: int) -> PromptStyle:
    style = _style_for(small=small, max_output_chars=max_output_chars)
    return dataclasses.replace(style, drop_fruitless_replies=False)


# setattr: loop imported both names, so they are replaced where it looks them up.
setattr(loop, "format_cell_output", bare)  # noqa: B010
setattr(loop, "prompt_style_for", keeping)  # noqa: B010
sys.exit(main(sys.argv[1:]))
