"""Landlock through raw syscalls (ctypes): read-only paths, no writes, no TCP, scoped signals.

Standard library only (the worker imports it under ``python -S``). The PyPI ``landlock``
package covers filesystem rules only; the worker also needs the network rules of ABI 4 and the
scopes of ABI 6, so the few syscalls are made here directly.

A ruleset handles every access right the running kernel knows, so anything not granted is
denied: the only grants are read (files and directory listings) beneath a few paths. With ABI
4 and later, binding and connecting TCP sockets are denied too (no port is granted); with ABI 6
and later, abstract Unix sockets and signals are scoped to the sandbox's own domain.

Landlock rules hold inodes, found by opening a path when the rules are made. The files of a
context are checked first: opened without following a symlink and compared by device and inode
with what the host saw the first time, so a file swapped for a symlink (or for another file)
after the listing is not granted; it is left out, and reading it fails.
"""

from __future__ import annotations

import ctypes
import errno
import os
import stat
from collections.abc import Iterable, Sequence
from typing import Any

SYS_CREATE_RULESET, SYS_ADD_RULE, SYS_RESTRICT_SELF = 444, 445, 446  # same on x86_64, aarch64
CREATE_RULESET_VERSION = 1
RULE_PATH_BENEATH = 1

EXECUTE, WRITE_FILE, READ_FILE, READ_DIR = 1 << 0, 1 << 1, 1 << 2, 1 << 3
# ABI 1: bits 0-12. ABI 2: REFER (13). ABI 3: TRUNCATE (14). ABI 5: IOCTL_DEV (15).
_FS_BITS_BY_ABI = {1: 13, 2: 14, 3: 15, 4: 15, 5: 16}
NET_BIND_TCP, NET_CONNECT_TCP = 1 << 0, 1 << 1
SCOPE_ABSTRACT_UNIX_SOCKET, SCOPE_SIGNAL = 1 << 0, 1 << 1
PR_SET_NO_NEW_PRIVS = 38

READ_ACCESS = READ_FILE | READ_DIR


class _RulesetAttr(ctypes.Structure):
    _fields_ = (
        ("handled_access_fs", ctypes.c_uint64),
        ("handled_access_net", ctypes.c_uint64),
        ("scoped", ctypes.c_uint64),
    )


class _PathBeneathAttr(ctypes.Structure):
    _pack_ = 1
    _fields_ = (("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32))


def _syscall(libc: ctypes.CDLL, *args: object) -> int:
    libc.syscall.restype = ctypes.c_long
    result: int = libc.syscall(*args)
    return result


def abi_version(libc: ctypes.CDLL) -> int:
    """The kernel's Landlock ABI version, or a negative errno (ENOSYS: not built in,
    EOPNOTSUPP: built in but not enabled at boot)."""
    version = _syscall(
        libc,
        ctypes.c_long(SYS_CREATE_RULESET),
        None,
        ctypes.c_size_t(0),
        ctypes.c_uint32(CREATE_RULESET_VERSION),
    )
    return version if version >= 0 else -ctypes.get_errno()


def unavailable_reason(code: int) -> str:
    if code == -errno.ENOSYS:
        return "the kernel was built without Landlock (needs Linux 5.13 or later)"
    if code == -errno.EOPNOTSUPP:
        return "Landlock is built in but disabled (add landlock to the lsm= boot parameter)"
    return f"Landlock is unavailable ({errno.errorcode.get(-code, code)})"


def handled_fs(abi: int) -> int:
    return (1 << _FS_BITS_BY_ABI.get(abi, 16)) - 1


def restrict(
    libc: ctypes.CDLL, read_paths: Iterable[str], read_files: Iterable[Sequence[Any]] = ()
) -> int:
    """Confine this process (and its future threads) for good; returns the ABI used.

    ``read_paths`` that do not exist are skipped. ``read_files`` are (path, device, inode):
    each is granted only while the path, not followed if it is a symlink, is still that
    regular file. Raises OSError when Landlock is missing or a step fails, so the caller can
    refuse to run unconfined.
    """
    abi = abi_version(libc)
    if abi < 1:
        raise OSError(-abi if abi < 0 else errno.ENOSYS, unavailable_reason(abi))
    attr = _RulesetAttr(handled_fs(abi), 0, 0)
    size = 8
    if abi >= 4:
        attr.handled_access_net = NET_BIND_TCP | NET_CONNECT_TCP
        size = 16
    if abi >= 6:
        attr.scoped = SCOPE_ABSTRACT_UNIX_SOCKET | SCOPE_SIGNAL
        size = 24
    ruleset = _syscall(
        libc,
        ctypes.c_long(SYS_CREATE_RULESET),
        ctypes.byref(attr),
        ctypes.c_size_t(size),
        ctypes.c_uint32(0),
    )
    if ruleset < 0:
        raise OSError(ctypes.get_errno(), "landlock_create_ruleset failed")
    try:
        for path in dict.fromkeys(read_paths):
            _allow_read(libc, ruleset, path)
        for path, device, inode in read_files:
            _allow_file(libc, ruleset, str(path), (int(device), int(inode)))
        if libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_NO_NEW_PRIVS) failed")
        restrict_self = ctypes.c_long(SYS_RESTRICT_SELF)
        if _syscall(libc, restrict_self, ctypes.c_int(ruleset), ctypes.c_uint32(0)) != 0:
            raise OSError(ctypes.get_errno(), "landlock_restrict_self failed")
    finally:
        os.close(ruleset)
    return abi


def _add_rule(libc: ctypes.CDLL, ruleset: int, fd: int, access: int, path: str) -> None:
    rule = _PathBeneathAttr(access, fd)
    add_rule = ctypes.c_long(SYS_ADD_RULE)
    kind = ctypes.c_int(RULE_PATH_BENEATH)
    if _syscall(libc, add_rule, ctypes.c_int(ruleset), kind, ctypes.byref(rule), 0) != 0:
        raise OSError(ctypes.get_errno(), f"landlock_add_rule failed for {path}")


def _allow_read(libc: ctypes.CDLL, ruleset: int, path: str) -> None:
    try:
        fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
    except FileNotFoundError:
        return
    try:
        is_dir = stat.S_ISDIR(os.fstat(fd).st_mode)
        _add_rule(libc, ruleset, fd, READ_ACCESS if is_dir else READ_FILE, path)
    finally:
        os.close(fd)


def _allow_file(libc: ctypes.CDLL, ruleset: int, path: str, identity: tuple[int, int]) -> None:
    """Read access to one context file, if ``path`` is still the file the host listed."""
    try:
        fd = os.open(path, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:  # gone, or a directory on the way became unreadable: not granted
        return
    try:
        info = os.fstat(fd)
        if stat.S_ISREG(info.st_mode) and (info.st_dev, info.st_ino) == identity:
            _add_rule(libc, ruleset, fd, READ_FILE, path)
    finally:
        os.close(fd)
