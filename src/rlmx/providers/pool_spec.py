"""What an endpoint pool is made of, read from a spec string or a pool file.

Three ways to name a pool of OpenAI-compatible servers that serve the same model::

    pool:vllm:Qwen/Qwen2.5-7B-Instruct@http://gpu1:8000/v1,http://gpu2:8000/v1
    pool:pools/qwen.toml          (or .json: per-endpoint limits, keys and knobs)
    vllm:Qwen/Qwen2.5-7B-Instruct with a base URL listing several servers, comma-separated
                                  (rlmx run --base-url given several times, or VLLM_BASE_URL)

The part before the model names the preset (:mod:`rlmx.providers.presets`: ``vllm``,
``llamacpp``, ``ollama``, ``openai``, ...), which says which variable holds the key and what
the servers honour beyond chat completions. A pool file::

    model = "vllm:Qwen/Qwen2.5-7B-Instruct"
    max_in_flight = 8        # calls in flight per endpoint (default 8)
    backoff_s = 5            # a failed endpoint is out this long, doubling to max_backoff_s
    endpoints = [
      "http://gpu1:8000/v1",
      { url = "http://gpu2:8000/v1", max_in_flight = 16, api_key_env = "GPU2_KEY" },
    ]
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from rlmx.config import Settings
from rlmx.errors import ConfigError
from rlmx.providers.presets import PRESETS, Preset
from rlmx.providers.sdk import REQUEST_TIMEOUT_S

POOL_PREFIX = "pool:"
DEFAULT_MAX_IN_FLIGHT = 8
FILE_SUFFIXES = (".toml", ".json")


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One server of a pool: its base URL (often ending in ``/v1``), how many calls it takes
    at once, and its API key (None: the preset's variable, else none)."""

    url: str
    max_in_flight: int = DEFAULT_MAX_IN_FLIGHT
    api_key: str | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        parts = urlsplit(self.url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ConfigError(
                f"endpoint {self.url!r} is not an http(s) URL, e.g. http://gpu1:8000/v1"
            )
        if self.max_in_flight <= 0:
            raise ConfigError(f"max_in_flight of {self.url} must be positive")


@dataclass(frozen=True, slots=True)
class PoolPolicy:
    """How a pool treats its endpoints.

    A failed endpoint (refused connection, 5xx, 408/429, timeout) is out for ``backoff_s``,
    doubling with each failure in a row up to ``max_backoff_s``; then a probe (``GET
    {url}/models``, at most ``probe_timeout_s``) must answer before it gets traffic again.
    ``timeout_s`` bounds one attempt at one endpoint; a failed attempt moves to another
    endpoint, each endpoint tried at most once per call. ``max_retries`` are the SDK's own
    retries at the same endpoint before the pool moves on (0: fail over at once).
    """

    backoff_s: float = 5.0
    max_backoff_s: float = 60.0
    probe_timeout_s: float = 5.0
    timeout_s: float = REQUEST_TIMEOUT_S
    max_retries: int = 0

    def __post_init__(self) -> None:
        if min(self.backoff_s, self.max_backoff_s, self.probe_timeout_s, self.timeout_s) <= 0:
            raise ConfigError("a pool's back-off, probe timeout and timeout must be positive")
        if self.max_retries < 0:
            raise ConfigError("a pool's max_retries must be 0 or more")


@dataclass(frozen=True, slots=True)
class PoolConfig:
    """A whole pool: the spec that names it, the preset and model, its endpoints, its policy."""

    spec: str
    preset: Preset
    model: str
    endpoints: tuple[Endpoint, ...]
    policy: PoolPolicy = field(default_factory=PoolPolicy)

    def __post_init__(self) -> None:
        if not self.endpoints:
            raise ConfigError(f"pool {self.spec!r} names no endpoint")
        urls = [e.url for e in self.endpoints]
        if len(set(urls)) != len(urls):
            raise ConfigError(f"pool {self.spec!r} names an endpoint twice")


def preset_and_model(text: str, where: str) -> tuple[Preset, str]:
    """``vllm:MODEL`` into its preset and model."""
    name, sep, model = text.partition(":")
    preset = PRESETS.get(name.strip().lower())
    if not sep or not model.strip() or preset is None:
        raise ConfigError(
            f"{where}: name the servers' preset and model as PRESET:MODEL, e.g. vllm:Qwen2.5-7B "
            f"(presets: {', '.join(PRESETS)})"
        )
    return preset, model.strip()


def split_urls(text: str) -> list[str]:
    return [u.strip().rstrip("/") for u in text.split(",") if u.strip()]


def default_key(preset: Preset, settings: Settings) -> str | None:
    return settings.get(preset.key_env) if preset.key_env else None


def parse_pool(spec: str, *, settings: Settings) -> PoolConfig:
    """The pool a ``pool:`` spec names: ``pool:PRESET:MODEL@URL,URL`` or ``pool:FILE``."""
    body = spec[len(POOL_PREFIX) :] if spec.lower().startswith(POOL_PREFIX) else spec
    if "@" not in body and body.lower().endswith(FILE_SUFFIXES):
        return _from_file(spec, Path(body).expanduser(), settings)
    named, sep, urls = body.partition("@")
    if not sep or not split_urls(urls):
        raise ConfigError(
            f"pool spec {spec!r} must look like pool:vllm:MODEL@http://h1:8000/v1,"
            "http://h2:8000/v1 or pool:FILE.toml"
        )
    preset, model = preset_and_model(named, f"pool spec {spec!r}")
    key = default_key(preset, settings)
    endpoints = tuple(Endpoint(url, api_key=key) for url in split_urls(urls))
    return PoolConfig(spec=spec, preset=preset, model=model, endpoints=endpoints)


def _from_file(spec: str, path: Path, settings: Settings) -> PoolConfig:
    try:
        text = path.read_text(encoding="utf-8")
        data = json.loads(text) if path.suffix.lower() == ".json" else tomllib.loads(text)
    except OSError as exc:
        raise ConfigError(f"cannot read the pool file {path}: {exc.strerror}") from None
    except ValueError as exc:  # JSONDecodeError and TOMLDecodeError both are
        raise ConfigError(f"the pool file {path} is not valid: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"the pool file {path} must hold a table (model, endpoints)")
    return config_from_mapping(spec, data, settings=settings, where=f"pool file {path}")


def config_from_mapping(
    spec: str, data: Mapping[str, Any], *, settings: Settings, where: str
) -> PoolConfig:
    """A pool described by a mapping (a pool file's table)."""
    knobs = {f.name for f in fields(PoolPolicy)}
    unknown = set(data) - knobs - {"model", "endpoints", "max_in_flight"}
    if unknown:
        raise ConfigError(f"{where}: unknown keys {', '.join(sorted(unknown))}")
    model = data.get("model")
    if not isinstance(model, str):
        raise ConfigError(f'{where}: set model = "PRESET:MODEL", e.g. "vllm:Qwen2.5-7B"')
    preset, name = preset_and_model(model, where)
    limit = _number(data.get("max_in_flight", DEFAULT_MAX_IN_FLIGHT), "max_in_flight", where)
    raw = data.get("endpoints")
    if not isinstance(raw, list) or not raw:
        raise ConfigError(f"{where}: endpoints must be a list of URLs or tables with a url")
    endpoints = tuple(
        _endpoint(item, int(limit), default_key(preset, settings), settings, where) for item in raw
    )
    given: dict[str, Any] = {k: _number(v, k, where) for k, v in data.items() if k in knobs}
    policy = PoolPolicy(**given)
    return PoolConfig(spec=spec, preset=preset, model=name, endpoints=endpoints, policy=policy)


def _endpoint(
    item: object, limit: int, key: str | None, settings: Settings, where: str
) -> Endpoint:
    if isinstance(item, str):
        return Endpoint(item.rstrip("/"), max_in_flight=limit, api_key=key)
    if not isinstance(item, dict) or not isinstance(item.get("url"), str):
        raise ConfigError(f"{where}: each endpoint is a URL or a table with a url")
    unknown = set(item) - {"url", "max_in_flight", "api_key_env"}
    if unknown:
        raise ConfigError(f"{where}: unknown endpoint keys {', '.join(sorted(unknown))}")
    key_env = item.get("api_key_env")
    if key_env is not None:
        key = settings.require(str(key_env), f"the endpoint {item['url']}")
    own = _number(item.get("max_in_flight", limit), "max_in_flight", where)
    return Endpoint(str(item["url"]).rstrip("/"), max_in_flight=int(own), api_key=key)


def _number(value: object, name: str, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"{where}: {name} must be a number, got {value!r}")
    return value
