"""The worker's modules as bytecode, in a private directory that lives as long as one worker's
start-up (host side).

A worker imports its modules from a directory of ``.pyc`` files, so that it never compiles
them at start-up (where bytecode is not written, e.g. under PYTHONDONTWRITEBYTECODE, that costs
tens of milliseconds per worker). The modules are compiled once per host process; each worker
gets a fresh copy (``rlmx-worker-<host pid>-*`` in the temporary folder), which the host
removes as soon as the worker is ready or gone: the worker has imported everything by then, and
a confined one could not read the directory anyway. So a host killed with SIGKILL leaves no
directory behind unless it died while a worker was starting; such leftovers, whose host pid is
dead, are swept when the next host makes its first directory.
"""

from __future__ import annotations

import atexit
import os
import py_compile
import shutil
import tempfile
import time

from rlmx.sandbox.launch import PACKAGE_DIR, WORKER_PACKAGES

PREFIX = "rlmx-worker-"
# A leftover is swept only when this old, so that a directory of a host in another pid
# namespace (sharing the temporary folder, its pid unknown here) is not taken mid-start.
STALE_AFTER_S = 300.0

_bytecode: dict[str, bytes] = {}  # "sandbox/worker.pyc" -> the compiled module
_live: set[str] = set()
_swept: list[bool] = []


def package_dir() -> str:
    """A new private directory holding the worker's modules as bytecode, for one worker;
    hand it to :func:`release` once that worker is ready or gone. Falls back to the source
    tree (never removed) if the directory cannot be made."""
    if not _swept:
        _swept.append(True)
        sweep()
    try:
        root = tempfile.mkdtemp(prefix=f"{PREFIX}{os.getpid()}-")  # 0700: nobody can swap files
    except OSError:
        return PACKAGE_DIR
    _live.add(root)
    try:
        _fill(root)
    except (OSError, py_compile.PyCompileError):
        release(root)
        return PACKAGE_DIR
    return root


def _fill(root: str) -> None:
    for package in WORKER_PACKAGES:
        os.mkdir(os.path.join(root, package))
    if _bytecode:
        for name, data in _bytecode.items():
            with open(os.path.join(root, name), "xb") as file:
                file.write(data)
        return
    compiled = {}
    for package, names in WORKER_PACKAGES.items():
        for name in names:
            target = os.path.join(root, package, f"{name}.pyc")
            py_compile.compile(
                os.path.join(PACKAGE_DIR, package, f"{name}.py"),
                cfile=target,
                doraise=True,
                invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH,
            )
            with open(target, "rb") as file:
                compiled[f"{package}/{name}.pyc"] = file.read()
    _bytecode.update(compiled)


def release(path: str) -> None:
    """Remove a directory :func:`package_dir` made (any other path is left alone)."""
    if path in _live:
        _live.discard(path)
        shutil.rmtree(path, ignore_errors=True)


@atexit.register
def _release_all() -> None:
    for path in list(_live):
        release(path)


def sweep(folder: str | None = None) -> list[str]:
    """Remove leftover directories of hosts that died while a worker was starting; returns
    what was removed. Only this user's directories, old enough, whose host pid is not alive."""
    folder = folder or tempfile.gettempdir()
    removed: list[str] = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for entry in entries:
        if _is_leftover(entry):
            shutil.rmtree(entry.path, ignore_errors=True)
            removed.append(entry.path)
    return removed


def _is_leftover(entry: os.DirEntry[str]) -> bool:
    pid_text, dash, _ = entry.name[len(PREFIX) :].partition("-")
    if not entry.name.startswith(PREFIX) or not dash or not pid_text.isdigit():
        return False  # not ours, or made by an older version (no pid in the name)
    try:
        info = entry.stat(follow_symlinks=False)
    except OSError:
        return False
    if not entry.is_dir(follow_symlinks=False) or info.st_uid != os.getuid():
        return False
    return time.time() - info.st_mtime > STALE_AFTER_S and not _alive(int(pid_text))


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # another user's process: alive
        return True
    return True
