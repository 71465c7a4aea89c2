"""Where the engine's fan-out runs: in this process (:class:`LocalExecutor`) or on a Ray cluster
(:class:`rlmx.executors.ray.RayExecutor`, with the ``rlmx[ray]`` extra)."""

from rlmx.executors.base import Executor
from rlmx.executors.local import LocalExecutor

__all__ = ["Executor", "LocalExecutor"]
