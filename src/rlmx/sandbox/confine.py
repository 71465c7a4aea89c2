"""Confinement of the sandbox worker, applied by the worker to itself before any model code runs.

Standard library only (the worker imports it under ``python -S``). The order matters:

1. resource limits: data memory (``RLIMIT_DATA``, counted from what the worker already holds,
   so the decoded context is not charged to the model's code), no file writes (``FSIZE`` 0),
   few open files, no core dumps, nothing locked in memory, hard limits equal to soft ones;
   a bound on its tasks (threads): the session's pids cgroup where the host made one, and
   ``RLIMIT_NPROC`` where the kernel applies it (see :func:`limit_tasks`);
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

import rlmx.sandbox.landlock as landlock
import rlmx.sandbox.seccomp as seccomp

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


# 1b. Tasks ----------------------------------------------------------------------------------

CLONE_NEWUSER = 0x10000000


def join_task_group(fd: int) -> None:
    """Move into the pids cgroup the host made for the session (it opened the group's
    ``cgroup.procs``; writing 0 means the writer). Threads made later are counted there."""
    try:
        os.write(fd, b"0")
    except OSError as exc:
        raise ConfinementError(f"cannot join the session's pids cgroup: {exc}") from None
    finally:
        os.close(fd)


def outer_uid() -> int:
    """This process's uid as its user namespace's parent sees it: bubblewrap's uid 65534 is
    whoever started it, root included."""
    uid = os.getuid()
    try:
        with open("/proc/self/uid_map", encoding="ascii") as uid_map:
            for line in uid_map:
                inside, outside, count = (int(x) for x in line.split())
                if inside <= uid < inside + count:
                    return outside + uid - inside
    except (OSError, ValueError):
        pass
    return uid


def tasks_of_user(uid: int) -> int:
    """Threads of every process of ``uid`` that /proc shows (what RLIMIT_NPROC counts)."""
    total = 0
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/status", encoding="utf-8") as status:
                fields = dict(line.split(":", 1) for line in status if ":" in line)
            if int(fields["Uid"].split()[0]) == uid:
                total += int(fields["Threads"])
        except (OSError, KeyError, ValueError, IndexError):
            continue
    return total


def limit_tasks(lib: ctypes.CDLL, max_tasks: int, *, own_user_namespace: bool) -> str:
    """``RLIMIT_NPROC`` so that this worker has at most ``max_tasks`` tasks; returns how.

    The kernel never applies it to uid 0 of the initial user namespace (nor with
    CAP_SYS_RESOURCE), and counts tasks per user *and user namespace*. In ``strict`` the worker
    is alone in bubblewrap's namespace; in ``default`` it first moves into a namespace of its
    own, so that the user's other processes do not count; where the kernel refuses that (no
    unprivileged user namespaces), the limit sits above the tasks the user already has, which
    bounds the worker as well but shrinks its share when the user starts more processes.
    """
    if outer_uid() == 0:
        return "none (root: RLIMIT_NPROC does not apply)"
    how = "rlimit"
    base = 0
    if not own_user_namespace and lib.unshare(CLONE_NEWUSER) != 0:
        base, how = tasks_of_user(os.getuid()) - own_threads(), "rlimit (per user)"
    limit = base + max_tasks
    _, hard = resource.getrlimit(resource.RLIMIT_NPROC)
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    try:
        resource.setrlimit(resource.RLIMIT_NPROC, (limit, limit))
    except (ValueError, OSError) as exc:
        raise ConfinementError(f"setrlimit(RLIMIT_NPROC, {limit}) failed: {exc}") from None
    return how


def own_threads() -> int:
    """This process's own threads."""
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("Threads:"):
                return int(line.split()[1])
    return 1


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


def bound_tasks(
    lib: ctypes.CDLL, max_tasks: int | None, tasks_fd: int | None, own_user_namespace: bool
) -> list[str]:
    """Every bound on the worker's tasks this machine offers; an empty list when none does."""
    bounds = []
    if tasks_fd is not None:
        join_task_group(tasks_fd)
        bounds.append("cgroup")
    if max_tasks is not None:
        how = limit_tasks(lib, max_tasks, own_user_namespace=own_user_namespace)
        if how.startswith("rlimit"):
            bounds.append(how)
    return bounds


def apply(
    *,
    memory_mb: int | None,
    max_open_files: int,
    read_paths: Iterable[str],
    read_files: Iterable[Sequence[Any]] = (),
    max_tasks: int | None = None,
    tasks_fd: int | None = None,
    own_user_namespace: bool = False,
) -> dict[str, Any]:
    """Limits, capabilities, Landlock, seccomp, in that order; returns what was applied.

    ``read_files`` are (path, device, inode): files read only if still those very files
    (see :func:`rlmx.sandbox.landlock.restrict`). ``max_tasks`` bounds threads, through the
    pids cgroup whose ``cgroup.procs`` is open as ``tasks_fd`` and through RLIMIT_NPROC.
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
    info["task_bounds"] = bound_tasks(lib, max_tasks, tasks_fd, own_user_namespace)
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
