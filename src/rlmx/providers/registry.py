"""Resolves ``provider:model`` spec strings into clients, at the edge of the program.

Nothing below the CLI, the server or :class:`rlmx.RLM` parses a spec string.
"""

from __future__ import annotations

from dataclasses import dataclass

from rlmx.config import Settings
from rlmx.errors import ConfigError
from rlmx.providers.base import LLMClient


@dataclass(frozen=True, slots=True)
class Preset:
    """An OpenAI-compatible endpoint: where it is and which variable holds its key."""

    key_env: str | None
    key_required: bool
    base_url: str | None
    base_url_env: str | None


OPENAI_COMPATIBLE: dict[str, Preset] = {
    "openai": Preset("OPENAI_API_KEY", True, None, "OPENAI_BASE_URL"),
    "deepseek": Preset(
        "DEEPSEEK_API_KEY", True, "https://api.deepseek.com/v1", "DEEPSEEK_BASE_URL"
    ),
    "openrouter": Preset(
        "OPENROUTER_API_KEY", True, "https://openrouter.ai/api/v1", "OPENROUTER_BASE_URL"
    ),
    "ollama": Preset(None, False, "http://localhost:11434/v1", "OLLAMA_BASE_URL"),
    "vllm": Preset("VLLM_API_KEY", False, "http://localhost:8000/v1", "VLLM_BASE_URL"),
    "llamacpp": Preset("LLAMACPP_API_KEY", False, "http://localhost:8080/v1", "LLAMACPP_BASE_URL"),
}

OTHER_PROVIDERS = ("anthropic", "local", "scripted")
KNOWN_PROVIDERS = tuple(OPENAI_COMPATIBLE) + OTHER_PROVIDERS
KEY_VARIABLES = ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "DEEPSEEK_API_KEY", "OPENROUTER_API_KEY")


def split_spec(spec: str) -> tuple[str, str]:
    provider, sep, model = spec.partition(":")
    if not sep or not provider or not model:
        raise ConfigError(
            f"model spec {spec!r} must look like provider:model, e.g. openai:gpt-5-mini "
            f"(providers: {', '.join(KNOWN_PROVIDERS)})"
        )
    provider = provider.lower()
    if provider not in KNOWN_PROVIDERS:
        raise ConfigError(
            f"unknown provider {provider!r} in {spec!r}; known: {', '.join(KNOWN_PROVIDERS)}"
        )
    return provider, model


def has_provider_key(settings: Settings) -> bool:
    return any(settings.get(name) for name in KEY_VARIABLES)


def resolve_model(spec: str, *, settings: Settings, base_url: str | None = None) -> LLMClient:
    """Build the client named by ``spec``. Optional SDKs are imported only when asked for."""
    provider, model = split_spec(spec)
    if provider == "scripted":
        from rlmx.providers.scripted import ScriptedModel

        return ScriptedModel.from_file(model)
    if provider == "local":
        from rlmx.providers.local import local_client

        return local_client(model, settings=settings)
    if provider == "anthropic":
        from rlmx.providers.anthropic import AnthropicClient

        anthropic_key = settings.require("ANTHROPIC_API_KEY", f"model {spec}")
        return AnthropicClient(
            model=model,
            api_key=anthropic_key,
            base_url=base_url or settings.get("ANTHROPIC_BASE_URL"),
        )
    preset = OPENAI_COMPATIBLE[provider]
    from rlmx.providers.openai_compat import OpenAICompatClient

    key: str | None = None
    if preset.key_env is not None:
        key = (
            settings.require(preset.key_env, f"model {spec}")
            if preset.key_required
            else settings.get(preset.key_env)
        )
    url: str | None = base_url or (
        settings.get(preset.base_url_env) if preset.base_url_env else None
    )
    return OpenAICompatClient(
        provider=provider, model=model, api_key=key, base_url=url or preset.base_url
    )
