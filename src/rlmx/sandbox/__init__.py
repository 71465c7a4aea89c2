"""Where model-written code runs: the Sandbox seam and its implementations.

``ProcessSandbox`` (through ``sandbox_factory``) is what runs use: a confined worker process.
``InProcessRepl`` runs code in this interpreter, unconfined; it is a test double.
"""

from rlmx.sandbox.base import HostFunctions, Sandbox, SandboxFactory
from rlmx.sandbox.config import SandboxConfig
from rlmx.sandbox.inprocess import InProcessRepl
from rlmx.sandbox.process import MODE_HELP, ProcessSandbox, sandbox_factory

__all__ = [
    "MODE_HELP",
    "HostFunctions",
    "InProcessRepl",
    "ProcessSandbox",
    "Sandbox",
    "SandboxConfig",
    "SandboxFactory",
    "sandbox_factory",
]
