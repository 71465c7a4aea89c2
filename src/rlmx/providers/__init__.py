"""Model clients behind one small protocol, and the registry that builds them from specs."""

from rlmx.providers.base import CallOptions, LLMClient, ModelProfile
from rlmx.providers.scripted import Rule, ScriptedModel

__all__ = ["CallOptions", "LLMClient", "ModelProfile", "Rule", "ScriptedModel"]
