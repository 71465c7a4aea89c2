"""Checking and opening the paths of contexts: one clear error for each kind of bad path, no
blocking on a FIFO; and the unnamed spool files that hold streamed contexts."""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import tempfile
from pathlib import Path
from typing import IO

from rlmx.errors import ContextError


def check_path(raw: str | os.PathLike[str]) -> Path:
    """The path, if it exists; else a ContextError saying what is wrong with it."""
    path = Path(raw).expanduser()
    try:
        os.stat(path)
    except FileNotFoundError:
        if os.path.lexists(path):
            raise ContextError(f"{raw} is a broken symlink") from None
        raise ContextError(f"context file not found: {raw}") from None
    except PermissionError:
        raise ContextError(f"cannot read {raw}: permission denied") from None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise ContextError(f"{raw} is a symlink loop (too many levels of links)") from None
        raise ContextError(f"cannot read {raw}: {exc.strerror}") from None
    return path


def open_regular(path: Path) -> tuple[int, os.stat_result]:
    """A read-only descriptor of a regular file (never blocking on a FIFO), and its status."""
    try:
        mode = os.stat(path).st_mode
        if stat.S_ISDIR(mode):
            raise ContextError(f"{path} is a directory")
        if not stat.S_ISREG(mode):
            raise ContextError(f"{path} is not a regular file")
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK)
    except PermissionError:
        raise ContextError(f"cannot read context file {path}: permission denied") from None
    except OSError as exc:
        raise ContextError(f"cannot read context file {path}: {exc.strerror}") from None
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):  # replaced meanwhile
        os.close(fd)
        raise ContextError(f"{path} is not a regular file")
    return fd, info


class Spool:
    """An unnamed temporary file, and a second, read-only descriptor of it for a worker (a new
    open file description: the worker cannot write through it).

    :meth:`close` releases both, once. As a context manager, a spool is closed if the block
    raises and kept open otherwise (it is filled, then handed on).
    """

    __slots__ = ("_closed", "fd", "file")

    def __init__(self, file: IO[bytes], fd: int) -> None:
        self.file, self.fd, self._closed = file, fd, False

    @classmethod
    def open(cls, prefix: str = "rlmx-spool-") -> Spool:
        file = tempfile.TemporaryFile(prefix=prefix)  # noqa: SIM115 (kept by the Spool)
        try:
            fd = os.open(f"/proc/self/fd/{file.fileno()}", os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:  # no /proc (not Linux): only `none` mode runs there
            fd = os.dup(file.fileno())
        return cls(file, fd)

    def close_file(self) -> None:
        """Close the writable file, once filled; the worker's descriptor stays open."""
        self.file.close()

    def close(self) -> None:
        """Close the file and the worker's descriptor (which may be gone already)."""
        if self._closed:
            return
        self._closed = True
        self.file.close()
        with contextlib.suppress(OSError):
            os.close(self.fd)

    def __enter__(self) -> Spool:
        return self

    def __exit__(self, kind: type[BaseException] | None, *_: object) -> None:
        if kind is not None:
            self.close()
