"""The trained context length of a GGUF model file, read from its header alone."""

from __future__ import annotations

import os
import struct
from pathlib import Path
from typing import BinaryIO

# GGUF metadata value types (see ggml's gguf.h); sizes of the fixed-width ones.
_GGUF_FIXED = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}
_GGUF_INT = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 10: "<Q", 11: "<q"}
_GGUF_STRING, _GGUF_ARRAY = 8, 9


def gguf_context_length(path: Path) -> int | None:
    """The trained context length (``<arch>.context_length``) from a GGUF file's header.

    Reads only the metadata, stopping as soon as the key is found; None if it is absent
    or the file is not GGUF (version 2 or later).
    """
    try:
        with path.open("rb") as f:
            return _read_context_length(f)
    except (OSError, OverflowError, struct.error, ValueError):  # UnicodeDecodeError too
        return None


def _read_context_length(f: BinaryIO) -> int | None:
    def read(fmt: str) -> int:
        data = f.read(struct.calcsize(fmt))
        return int(struct.unpack(fmt, data)[0])

    def read_str() -> str:
        size = read("<Q")
        if size > 1 << 20:  # a corrupt length must not make us allocate gigabytes
            raise ValueError(f"implausible GGUF string length {size}")
        return f.read(size).decode("utf-8")

    def skip(kind: int) -> None:
        if kind in _GGUF_FIXED:
            f.seek(_GGUF_FIXED[kind], os.SEEK_CUR)
        elif kind == _GGUF_STRING:
            f.seek(read("<Q"), os.SEEK_CUR)
        elif kind == _GGUF_ARRAY:
            item, count = read("<I"), read("<Q")
            if item in _GGUF_FIXED:
                f.seek(_GGUF_FIXED[item] * count, os.SEEK_CUR)
            else:
                for _ in range(count):
                    skip(item)
        else:
            raise ValueError(f"unknown GGUF value type {kind}")

    if f.read(4) != b"GGUF" or read("<I") < 2:
        return None
    read("<Q")  # tensor count
    arch: str | None = None
    for _ in range(read("<Q")):
        key, kind = read_str(), read("<I")
        if key == "general.architecture" and kind == _GGUF_STRING:
            arch = read_str()
        elif arch is not None and key == f"{arch}.context_length" and kind in _GGUF_INT:
            return read(_GGUF_INT[kind])
        else:
            skip(kind)
    return None
