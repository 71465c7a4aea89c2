"""Confinement of the sandbox worker, applied by the worker to itself before any model code runs.

Standard library only (the worker imports it under ``python -S``). The order matters:

1. resource limits: data memory (``RLIMIT_DATA``, counted from what the worker already holds,
   so the decoded context is not charged to the model's code), no file writes (``FSIZE`` 0),
   few open files, no core dumps, nothing locked in memory, hard limits equal to soft ones;
2. capabilities: when the worker starts as root, every capability is dropped (effective,
   permitted, inheritable, ambient and bounding sets) and the securebits are locked, so uid 0
   no longer overrides permissions;
3. Landlock: read-only access to the Python installation, the system libraries and the paths
   the host names; no writes anywhere; no TCP; signals and abstract sockets scoped;
4. seccomp: see :mod:`rlmx.sandbox.seccomp`.

Any failure raises :class:`ConfinementError`: the worker then refuses to run rather than run
unconfined. :func:`probe` tells the host, without starting a worker, what this machine offers.
"""

from __future__ import annotations

import ctypes
import os
import resource
import sys
import sysconfig
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from rlmx.sandbox import landlock, seccomp

if TYPE_CHECKING:
    from typing import Any


class ConfinementError(Exception):
    """The kernel lacks a feature the sandbox needs, or a confinement step failed."""


def libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


# 1. Resource limits -------------------------------------------------------------------------


def data_bytes_in_use() -> int:
    """This process's data segment (``VmData``): what ``RLIMIT_DATA`` counts."""
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmData:"):
                return int(line.split()[1]) * 1024
    raise ConfinementError("cannot read VmData from /proc/self/status")


def set_limits(memory_mb: int, max_open_files: int) -> dict[str, int]:
    """Lower this process's limits for good (hard = soft); returns what was set."""
    data = data_bytes_in_use() + memory_mb * 1024 * 1024
    wanted = {
        resource.RLIMIT_DATA: data,
        resource.RLIMIT_FSIZE: 0,
        resource.RLIMIT_NOFILE: max_open_files,
        resource.RLIMIT_CORE: 0,
        resource.RLIMIT_MEMLOCK: 0,
        resource.RLIMIT_MSGQUEUE: 0,
        resource.RLIMIT_RTPRIO: 0,
        resource.RLIMIT_NICE: 0,
    }
    for limit in (resource.RLIMIT_STACK, resource.RLIMIT_CPU, resource.RLIMIT_SIGPENDING):
        wanted.setdefault(limit, resource.getrlimit(limit)[0])
    if hasattr(resource, "RLIMIT_RTTIME"):
        wanted[resource.RLIMIT_RTTIME] = 0
    for limit, value in wanted.items():
        _, hard = resource.getrlimit(limit)
        if hard != resource.RLIM_INFINITY and (value == resource.RLIM_INFINITY or value > hard):
            value = hard
        try:
            resource.setrlimit(limit, (value, value))
        except (ValueError, OSError) as exc:
            raise ConfinementError(f"setrlimit({limit}, {value}) failed: {exc}") from None
    return {"data_bytes": data, "open_files": max_open_files}


# 2. Capabilities ----------------------------------------------------------------------------

PR_CAPBSET_DROP, PR_SET_SECUREBITS, PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL = 24, 28, 47, 4
# NOROOT, NO_SETUID_FIXUP and NO_CAP_AMBIENT_RAISE, each with its lock, and KEEP_CAPS_LOCKED.
SECUREBITS_LOCKED = 0b11101111
_CAPABILITY_VERSION_3 = 0x20080522


class _CapHeader(ctypes.Structure):
    _fields_ = (("version", ctypes.c_uint32), ("pid", ctypes.c_int))


class _CapData(ctypes.Structure):
    _fields_ = (
        ("effective", ctypes.c_uint32),
        ("permitted", ctypes.c_uint32),
        ("inheritable", ctypes.c_uint32),
    )


def effective_capabilities() -> int:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("CapEff:"):
                return int(line.split()[1], 16)
    return 0


def drop_capabilities(lib: ctypes.CDLL) -> bool:
    """Drop every capability for good; False when there were none to drop."""
    if effective_capabilities() == 0:
        return False
    if lib.prctl(PR_SET_SECUREBITS, SECUREBITS_LOCKED, 0, 0, 0) != 0:
        raise ConfinementError(f"cannot lock securebits (errno {ctypes.get_errno()})")
    lib.prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0)
    for cap in range(64):
        if lib.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0:
            break  # past the kernel's last capability
    header = _CapHeader(_CAPABILITY_VERSION_3, 0)
    data = (_CapData * 2)()
    if lib.capset(ctypes.byref(header), data) != 0:
        raise ConfinementError(f"capset failed (errno {ctypes.get_errno()})")
    if effective_capabilities() != 0:
        raise ConfinementError("capabilities are still effective after capset")
    return True


# 3. Paths Landlock lets the worker read ------------------------------------------------------

SYSTEM_READ_PATHS = (
    "/lib",
    "/lib64",
    "/usr/lib",
    "/usr/lib64",
    "/usr/local/lib",
    "/etc/ld.so.cache",
    "/etc/localtime",
    "/usr/share/zoneinfo",
)


def python_read_paths() -> list[str]:
    """The running interpreter's installation: prefixes, stdlib and its binary's directory."""
    binary_dir = os.path.dirname(os.path.realpath(sys.executable))
    paths = {sys.base_prefix, sys.base_exec_prefix, binary_dir}
    for key in ("stdlib", "platstdlib"):
        paths.add(sysconfig.get_paths()[key])
    libdir = sysconfig.get_config_var("LIBDIR")
    if isinstance(libdir, str):
        paths.add(libdir)
    return sorted(p for p in paths if p)


def apply(
    *,
    memory_mb: int | None,
    max_open_files: int,
    read_paths: Iterable[str],
    read_files: Iterable[Sequence[Any]] = (),
) -> dict[str, Any]:
    """Limits, capabilities, Landlock, seccomp, in that order; returns what was applied.

    ``read_files`` are (path, device, inode): files read only if still those very files
    (see :func:`rlmx.sandbox.landlock.restrict`).
    """
    lib = libc()
    reason = seccomp.available(lib)
    if reason is not None:
        raise ConfinementError(reason)
    abi = landlock.abi_version(lib)
    if abi < 1:
        raise ConfinementError(landlock.unavailable_reason(abi))
    info: dict[str, Any] = {"uid": os.getuid()}
    if memory_mb is not None:
        info.update(set_limits(memory_mb, max_open_files))
    info["capabilities_dropped"] = drop_capabilities(lib)
    paths = [*python_read_paths(), *SYSTEM_READ_PATHS, *read_paths]
    try:
        info["landlock_abi"] = landlock.restrict(lib, paths, read_files)
        seccomp.install(lib, os.getpid())
    except OSError as exc:
        raise ConfinementError(str(exc)) from None
    mode = lib.prctl(seccomp.PR_GET_SECCOMP, 0, 0, 0, 0)
    if mode != 2:
        raise ConfinementError(f"seccomp filter not in force after install (mode {mode})")
    info["seccomp"] = "filter"
    return info


def forget_ctypes() -> None:
    """Drop the modules that held ctypes, so model code finds none already imported."""
    for name in [n for n in sys.modules if n.split(".")[0] in ("ctypes", "_ctypes")]:
        del sys.modules[name]
    for name in ("rlmx.sandbox.confine", "rlmx.sandbox.landlock", "rlmx.sandbox.seccomp"):
        sys.modules.pop(name, None)


# Host side ----------------------------------------------------------------------------------


def probe() -> dict[str, Any]:
    """What this machine offers each sandbox mode, checked from the host without confining it."""
    result: dict[str, Any] = {"platform": sys.platform, "landlock_abi": None, "seccomp": None}
    if not sys.platform.startswith("linux"):
        result["problem"] = "Landlock and seccomp exist on Linux only"
        return result
    lib = libc()
    abi = landlock.abi_version(lib)
    result["landlock_abi"] = abi if abi > 0 else None
    reason = seccomp.available(lib)
    result["seccomp"] = reason is None
    problems = []
    if abi < 1:
        problems.append(landlock.unavailable_reason(abi))
    if reason is not None:
        problems.append(reason)
    if problems:
        result["problem"] = "; ".join(problems)
    import shutil

    result["bwrap"] = shutil.which("bwrap")
    return result
