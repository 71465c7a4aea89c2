"""The OpenAI-compatible endpoints rlmx knows by name, as values handed to the client.

A :class:`Preset` says where an endpoint is, which variable holds its key, and what it
does beyond the Chat Completions API that every such server speaks.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Preset:
    """An OpenAI-compatible endpoint.

    ``name`` is the provider part of a spec (``vllm`` in ``vllm:qwen2.5-7b``).
    ``key_env`` names the variable holding the API key (None: the server takes none), which
    ``key_required`` says must be set. ``base_url`` is the default address and
    ``base_url_env`` the variable that overrides it. ``choice_grammar``: the server
    constrains a reply to ``choices`` with a llama.cpp grammar (its ``grammar`` field).
    ``max_completion_tokens``: ``max_tokens`` is sent under that name, as OpenAI's reasoning
    models require.
    """

    name: str
    key_env: str | None
    key_required: bool
    base_url: str | None
    base_url_env: str | None
    choice_grammar: bool = False
    max_completion_tokens: bool = False


OPENAI = Preset(
    "openai", "OPENAI_API_KEY", True, None, "OPENAI_BASE_URL", max_completion_tokens=True
)
DEEPSEEK = Preset(
    "deepseek", "DEEPSEEK_API_KEY", True, "https://api.deepseek.com/v1", "DEEPSEEK_BASE_URL"
)
OPENROUTER = Preset(
    "openrouter",
    "OPENROUTER_API_KEY",
    True,
    "https://openrouter.ai/api/v1",
    "OPENROUTER_BASE_URL",
)
OLLAMA = Preset("ollama", None, False, "http://localhost:11434/v1", "OLLAMA_BASE_URL")
VLLM = Preset("vllm", "VLLM_API_KEY", False, "http://localhost:8000/v1", "VLLM_BASE_URL")
LLAMACPP = Preset(
    "llamacpp",
    "LLAMACPP_API_KEY",
    False,
    "http://localhost:8080/v1",
    "LLAMACPP_BASE_URL",
    choice_grammar=True,
)

PRESETS: dict[str, Preset] = {
    preset.name: preset for preset in (OPENAI, DEEPSEEK, OPENROUTER, OLLAMA, VLLM, LLAMACPP)
}
