"""The demos by name. Each lives in ``rlmx.demos.<name with - as _>`` as a module-level
``DEMO``, imported only when asked for, so one demo's data or generator never slows another.
"""

from __future__ import annotations

import importlib

from rlmx.demos.base import Demo
from rlmx.errors import UsageError

DEMOS: tuple[str, ...] = ("logs", "mystery", "family-trees", "audit")


def module_name(name: str) -> str:
    return f"rlmx.demos.{name.replace('-', '_')}"


def _unknown(name: str, why: str) -> UsageError:
    return UsageError(f"{why} {name!r}: the demos are {', '.join(DEMOS)} (see rlmx demo list)")


def load_demo(name: str) -> Demo:
    """The demo called ``name``; a usage error naming the known ones when there is none."""
    if name not in DEMOS:
        raise _unknown(name, "no demo called")
    target = module_name(name)
    try:
        module = importlib.import_module(target)
    except ModuleNotFoundError as exc:
        # Only the demo's own module missing means "not there yet"; a missing dependency
        # inside it is a real error and keeps its traceback.
        if exc.name != target:
            raise
        raise _unknown(name, "not installed in this version: demo") from None
    demo = getattr(module, "DEMO", None)
    if demo is None:
        raise _unknown(name, f"{target} defines no DEMO for demo")
    found: Demo = demo
    return found
