"""Model clients behind one small protocol, and the registry that builds them from specs.

:class:`ScriptedModel` and :class:`FunctionModel` are test models for users' tests.
"""

from rlmx.providers.base import CallOptions, LLMClient, ModelProfile
from rlmx.providers.function import FunctionModel
from rlmx.providers.pool import PoolClient, PoolPolicy
from rlmx.providers.scripted import Rule, ScriptedModel

__all__ = [
    "CallOptions",
    "FunctionModel",
    "LLMClient",
    "ModelProfile",
    "PoolClient",
    "PoolPolicy",
    "Rule",
    "ScriptedModel",
]
