"""The public API is what ``rlmx.__all__`` names: a change to it is deliberate."""

from __future__ import annotations

import rlmx

PUBLIC = [
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


def test_the_public_names_are_pinned_and_importable() -> None:
    assert rlmx.__all__ == PUBLIC
    for name in PUBLIC:
        assert getattr(rlmx, name) is not None, name


def test_the_test_models_are_the_ones_the_providers_package_ships() -> None:
    from rlmx.providers import FunctionModel, ScriptedModel

    assert rlmx.FunctionModel is FunctionModel
    assert rlmx.ScriptedModel is ScriptedModel
