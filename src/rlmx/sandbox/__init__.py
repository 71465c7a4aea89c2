"""Where model-written code runs: the Sandbox seam and its implementations."""

from rlmx.sandbox.base import HostFunctions, Sandbox, SandboxFactory
from rlmx.sandbox.inprocess import InProcessRepl

__all__ = ["HostFunctions", "InProcessRepl", "Sandbox", "SandboxFactory"]
