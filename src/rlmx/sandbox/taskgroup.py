"""A pids cgroup for one session's workers (host side), where this machine lets the host make one.

The kernel then refuses a worker's thread (or any task) past ``pids.max``, whoever runs it: this
is what bounds a thread bomb as root, where ``RLIMIT_NPROC`` does not apply (see
:func:`rlmx.sandbox.confine.limit_tasks`). The host makes the group and opens its
``cgroup.procs`` for writing; the worker writes ``0`` to that descriptor (meaning itself) before
it confines itself and closes it, so model code never holds it. That works inside bubblewrap's
namespaces too, since the kernel checks the credentials and cgroup namespace of whoever opened
the file.

Making a cgroup needs write access to a cgroup hierarchy with the pids controller: root, or a
delegated cgroup v2 subtree. Elsewhere :meth:`TaskGroup.create` returns None.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import time
import weakref

PREFIX = "rlmx-"


def _mounts() -> list[tuple[str, str, str, set[str]]]:
    """cgroup mounts: (type, root within the hierarchy, mount point, options)."""
    found = []
    try:
        with open("/proc/self/mountinfo", encoding="utf-8") as mountinfo:
            for line in mountinfo:
                left, _, right = line.partition(" - ")
                fields, tail = left.split(), right.split()
                if len(fields) >= 5 and len(tail) >= 3 and tail[0] in ("cgroup", "cgroup2"):
                    options = set(tail[2].split(","))
                    found.append((tail[0], fields[3], fields[4], options))
    except OSError:
        pass
    return found


def _within(mount_root: str, path: str) -> str | None:
    if mount_root == "/":
        return path
    if path == mount_root or path.startswith(mount_root + "/"):
        return path[len(mount_root) :] or "/"
    return None


def candidates() -> list[str]:
    """Directories in which a pids cgroup for the workers could be made, best first: beside
    this process in cgroup v1's pids hierarchy; in v2, beside this process's cgroup (a v2
    cgroup that holds processes cannot hand controllers to children)."""
    try:
        with open("/proc/self/cgroup", encoding="utf-8") as file:
            lines = [line.rstrip("\n").split(":", 2) for line in file]
    except OSError:
        return []
    mounts = _mounts()
    found = []
    for hierarchy, controllers, path in (p for p in lines if len(p) == 3):
        for kind, root, point, options in mounts:
            if kind == "cgroup" and "pids" in controllers.split(",") and "pids" in options:
                parent = path
            elif kind == "cgroup2" and hierarchy == "0":
                parent = path if path == "/" else os.path.dirname(path)
            else:
                continue
            inside = _within(root, parent)
            if inside is not None:
                found.append(os.path.normpath(point + inside))
    return list(dict.fromkeys(found))


def _remove(path: str, wait_s: float = 0.0) -> bool:
    """rmdir a cgroup, waiting up to ``wait_s`` for its last tasks to be reaped."""
    deadline = time.monotonic() + wait_s
    while True:
        try:
            os.rmdir(path)
            return True
        except FileNotFoundError:
            return True
        except OSError as exc:
            if exc.errno != errno.EBUSY or time.monotonic() >= deadline:
                return False
        time.sleep(0.01)


def _sweep(parent: str) -> None:
    """Remove groups left behind by hosts that died without closing their sessions."""
    with contextlib.suppress(OSError):
        for name in os.listdir(parent):
            owner = name[len(PREFIX) :].split("-")[0] if name.startswith(PREFIX) else ""
            if owner.isdigit() and not os.path.exists(f"/proc/{owner}"):
                _remove(os.path.join(parent, name))


class TaskGroup:
    """A pids cgroup and a write descriptor of its ``cgroup.procs``, for the workers."""

    def __init__(self, path: str, procs_fd: int) -> None:
        self.path, self.procs_fd = path, procs_fd
        # Removed at the latest when the host exits, if the session was never closed.
        self._finalizer = weakref.finalize(self, _remove, path)

    @classmethod
    def create(cls, max_tasks: int) -> TaskGroup | None:
        for parent in candidates():
            _sweep(parent)
            path = os.path.join(parent, f"{PREFIX}{os.getpid()}-{secrets.token_hex(4)}")
            try:
                os.mkdir(path, 0o700)
            except OSError:
                continue
            try:
                with open(os.path.join(path, "pids.max"), "w", encoding="ascii") as limit:
                    limit.write(str(max_tasks))
                fd = os.open(os.path.join(path, "cgroup.procs"), os.O_WRONLY | os.O_CLOEXEC)
            except OSError:  # e.g. a v2 group without the pids controller
                _remove(path)
                continue
            return cls(path, fd)
        return None

    def tasks(self) -> int | None:
        """How many tasks the group holds now (None once it is gone)."""
        try:
            with open(os.path.join(self.path, "pids.current"), encoding="ascii") as current:
                return int(current.read())
        except (OSError, ValueError):
            return None

    def close(self) -> None:
        """Close the descriptor and remove the group once its workers are gone (a worker in
        bubblewrap dies just after bubblewrap, so give it a moment)."""
        if self.procs_fd >= 0:
            os.close(self.procs_fd)
            self.procs_fd = -1
        if _remove(self.path, wait_s=1.0):
            self._finalizer.detach()
