"""The one exception tree of rlmx.

::

    RlmxError
    ├── UsageError                 bad input from the user: exit code 2 in the CLI
    │   ├── ConfigError            an unknown provider, a bad model spec, a missing API key
    │   └── ContextError           a context that cannot be loaded
    ├── ProviderError              a model endpoint failed (carries provider, model, status)
    │   └── AuthenticationError    the endpoint refused the credentials (401/403)
    ├── ScriptExhaustedError       a ``scripted:`` model ran out of responses
    ├── ModelAssetError            an embedded model is missing or fails its checksum
    ├── SandboxError               the REPL could not run at all (not the model's own exceptions)
    ├── SubCallsDisabled           model code called a sub-model in a run with sub-calls off
    ├── InvalidAnswer              a typed answer failed its schema after a corrective turn
    └── LimitExceeded              a limit of the run tree was hit (carries the limit)

Every message says what went wrong and how to fix it, on one line.
"""

from __future__ import annotations

from typing import Literal

LimitKind = Literal["max_iterations", "max_sub_calls", "max_tokens", "max_cost_usd", "timeout"]


class RlmxError(Exception):
    """Base class of every error rlmx raises on purpose."""


class UsageError(RlmxError):
    """The user asked for something that cannot work as asked."""


class ConfigError(UsageError):
    """A model spec, option or environment setting is wrong or missing."""


class ContextError(UsageError):
    """A context could not be loaded (missing, unreadable, binary, empty)."""


class ProviderError(RlmxError):
    """A model endpoint failed after retries."""

    def __init__(
        self,
        message: str,
        *,
        provider: str,
        model: str,
        status: int | None = None,
    ) -> None:
        self.provider = provider
        self.model = model
        self.status = status
        where = f"{provider}:{model}"
        code = f" (HTTP {status})" if status is not None else ""
        super().__init__(f"{where}{code}: {message}")


class AuthenticationError(ProviderError):
    """The endpoint refused the credentials."""


class ScriptExhaustedError(RlmxError):
    """A scripted model was asked for more replies than its script holds."""


class ModelAssetError(RlmxError):
    """An embedded model's packages are missing, or its assembled file is wrong."""


class SandboxError(RlmxError):
    """The REPL itself failed (as opposed to the model's code raising)."""


class SubCallsDisabled(RlmxError):
    """Model code called a sub-model in a run whose limits allow no sub-calls."""

    def __init__(self) -> None:
        super().__init__(
            "sub-calls are off in this run (max_sub_calls=0): answer with code over `context`"
        )


class InvalidAnswer(RlmxError):
    """The root model's answer did not match the schema asked for, twice."""


class LimitExceeded(RlmxError):
    """A limit shared by the whole recursion tree was reached."""

    def __init__(self, limit: LimitKind, detail: str) -> None:
        self.limit = limit
        self.detail = detail
        super().__init__(f"limit {limit} reached: {detail}")
