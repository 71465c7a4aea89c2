"""rlmx: Recursive Language Models.

The data never enters the root model's prompt: it is a variable ``context`` in a REPL,
and the root model writes code to inspect it and calls sub-models on pieces of it.
"""

from __future__ import annotations

from rlmx.config import Assists, Limits, Settings
from rlmx.errors import (
    AuthenticationError,
    ConfigError,
    ContextError,
    LimitExceeded,
    ProviderError,
    RlmxError,
    SubCallsDisabled,
    UsageError,
)
from rlmx.providers.base import CallOptions, LLMClient, ModelProfile
from rlmx.providers.function import FunctionModel
from rlmx.providers.scripted import ScriptedModel
from rlmx.rlm import RLM
from rlmx.types import Completion, Message, RunResult, Usage, UsageReport

__version__ = "0.1.0"

__all__ = [
    "RLM",
    "Assists",
    "AuthenticationError",
    "CallOptions",
    "Completion",
    "ConfigError",
    "ContextError",
    "FunctionModel",
    "LLMClient",
    "LimitExceeded",
    "Limits",
    "Message",
    "ModelProfile",
    "ProviderError",
    "RlmxError",
    "RunResult",
    "ScriptedModel",
    "Settings",
    "SubCallsDisabled",
    "Usage",
    "UsageError",
    "UsageReport",
    "__version__",
]
