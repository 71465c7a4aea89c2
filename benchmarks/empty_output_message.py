"""A/B for the small-model turn after a cell that printed nothing: `rlmx bench run` with the
earlier bare "(nothing printed)" restored, to set beside a normal run on the same seeds.

python benchmarks/empty_output_message.py bench run sniah --methods rlm --lengths 16k,1m \
    --n 10 --out .bench/bare-empty-output

It changes ``rlmx.engine.prompts._EMPTY_OUTPUT`` in this process only.
"""

import sys

import rlmx.engine.prompts as prompts
from rlmx.cli.main import main

prompts._EMPTY_OUTPUT["small"] = prompts._EMPTY_OUTPUT["full"]
sys.exit(main(sys.argv[1:]))
