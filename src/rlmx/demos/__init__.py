"""``rlmx demo``: runnable offline demonstrations, each a real question on shipped or generated
data with a check computed from the data itself.

The seam is :mod:`rlmx.demos.base`; :mod:`rlmx.demos.registry` finds a demo by name, and
:mod:`rlmx.demos.runner` runs its questions through :class:`rlmx.RLM` and checks each answer.
Nothing here imports the runner, so that listing the demos loads no engine.
"""

from rlmx.demos.base import Check, Demo, DemoQuestion, Prepared
from rlmx.demos.registry import DEMOS, load_demo
from rlmx.demos.scoped import ScopedQuestion, context_of

__all__ = [
    "DEMOS",
    "Check",
    "Demo",
    "DemoQuestion",
    "Prepared",
    "ScopedQuestion",
    "context_of",
    "load_demo",
]
