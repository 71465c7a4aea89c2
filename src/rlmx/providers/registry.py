"""Resolves ``provider:model`` spec strings into clients, at the edge of the program.

Nothing below the CLI, the server or :class:`rlmx.RLM` parses a spec string. Each provider
maps to a factory in :data:`FACTORIES`; optional SDKs are imported only by the factory that
needs them.
"""

from __future__ import annotations

from typing import Protocol

from rlmx.config import Settings
from rlmx.errors import ConfigError
from rlmx.providers.base import LLMClient
from rlmx.providers.presets import PRESETS, Preset


class ClientFactory(Protocol):
    """Builds the client for ``model`` at one provider; ``spec`` is the whole string, for
    error messages."""

    def __call__(
        self, model: str, *, spec: str, settings: Settings, base_url: str | None
    ) -> LLMClient: ...


class _OpenAICompatible:
    """The factory for one OpenAI-compatible :class:`Preset`."""

    def __init__(self, preset: Preset) -> None:
        self.preset = preset

    def __call__(
        self, model: str, *, spec: str, settings: Settings, base_url: str | None
    ) -> LLMClient:
        from rlmx.providers.openai_compat import OpenAICompatClient

        preset = self.preset
        key: str | None = None
        if preset.key_env is not None:
            key = (
                settings.require(preset.key_env, f"model {spec}")
                if preset.key_required
                else settings.get(preset.key_env)
            )
        url = base_url or (settings.get(preset.base_url_env) if preset.base_url_env else None)
        if url is not None and "," in url:  # several servers of the model: an endpoint pool
            from rlmx.providers.pool import pool_of_urls

            return pool_of_urls(spec, preset, model, url, key)
        return OpenAICompatClient(preset=preset, model=model, api_key=key, base_url=url)


def _anthropic(model: str, *, spec: str, settings: Settings, base_url: str | None) -> LLMClient:
    from rlmx.providers.anthropic import AnthropicClient

    return AnthropicClient(
        model=model,
        api_key=settings.require("ANTHROPIC_API_KEY", f"model {spec}"),
        base_url=base_url or settings.get("ANTHROPIC_BASE_URL"),
    )


def _local(model: str, *, spec: str, settings: Settings, base_url: str | None) -> LLMClient:
    from rlmx.providers.local import local_client

    return local_client(model, settings=settings)


def _pool(model: str, *, spec: str, settings: Settings, base_url: str | None) -> LLMClient:
    from rlmx.providers.pool import shared_pool

    return shared_pool(spec, settings=settings)


def _scripted(model: str, *, spec: str, settings: Settings, base_url: str | None) -> LLMClient:
    from rlmx.providers.scripted import ScriptedModel

    return ScriptedModel.from_file(model)


FACTORIES: dict[str, ClientFactory] = {
    **{name: _OpenAICompatible(preset) for name, preset in PRESETS.items()},
    "anthropic": _anthropic,
    "local": _local,
    "pool": _pool,
    "scripted": _scripted,
}
KNOWN_PROVIDERS = tuple(FACTORIES)
KEY_VARIABLES = ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "DEEPSEEK_API_KEY", "OPENROUTER_API_KEY")


def split_spec(spec: str) -> tuple[str, str]:
    provider, sep, model = spec.partition(":")
    if not sep or not provider or not model:
        raise ConfigError(
            f"model spec {spec!r} must look like provider:model, e.g. openai:gpt-5-mini "
            f"(providers: {', '.join(KNOWN_PROVIDERS)})"
        )
    provider = provider.lower()
    if provider not in FACTORIES:
        raise ConfigError(
            f"unknown provider {provider!r} in {spec!r}; known: {', '.join(KNOWN_PROVIDERS)}"
        )
    return provider, model


def has_provider_key(settings: Settings) -> bool:
    return any(settings.get(name) for name in KEY_VARIABLES)


def resolve_model(spec: str, *, settings: Settings, base_url: str | None = None) -> LLMClient:
    """Build the client named by ``spec``. Optional SDKs are imported only when asked for."""
    provider, model = split_spec(spec)
    return FACTORIES[provider](model, spec=spec, settings=settings, base_url=base_url)
