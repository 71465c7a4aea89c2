"""What a context is, and how it is described to the root model instead of being shown."""

from rlmx.context.describe import ContextInfo, ContextValue, describe_context

__all__ = ["ContextInfo", "ContextValue", "describe_context"]
