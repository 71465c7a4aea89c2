"""Starting and stopping the workers of one session (host side).

A :class:`Spawner` holds what every worker of a session shares: the mode, the configuration
sent in ``init``, the context file (written once; a restarted worker maps the same file) and
the hash seed (fixed per session, so that a replay orders sets and dicts as before), the files
of a context in files with their identities, and the pids cgroup that bounds the workers' tasks.
"""

from __future__ import annotations

import asyncio
import os
import stat
import sys
import time
import weakref
from collections.abc import Callable
from typing import Any

import rlmx.sandbox.bytecode as bytecode
import rlmx.sandbox.launch as launch
import rlmx.sandbox.protocol as protocol
from rlmx.context import Context
from rlmx.context.files import Spool
from rlmx.errors import SandboxError
from rlmx.sandbox.config import SandboxConfig
from rlmx.sandbox.launch import Mode
from rlmx.sandbox.supervisor import WorkerDied, WorkerProcess, WorkerRefused
from rlmx.sandbox.taskgroup import TaskGroup

REFUSAL_HINT = (
    "The sandbox will not run model code unconfined: use a kernel with Landlock (Linux 5.13+, "
    "lsm=landlock) and seccomp, or pass --sandbox none for trusted data only."
)


# The files of each context in files as the first worker for it saw them (see context_files).
_FIRST_SEEN: weakref.WeakKeyDictionary[Context, list[list[Any]]] = weakref.WeakKeyDictionary()


def context_files(context: Context) -> list[list[Any]]:
    """[path, device, inode] of each file a worker may read, taken once per context (when its
    first worker starts, just after the listing) and kept: restarted workers and the workers
    of nested runs over the same context get rules for these very files. A path that is not a
    regular file then (a symlink put in its place), or whose size or time no longer match the
    listing, is left out: the worker cannot read it."""
    known = _FIRST_SEEN.get(context)
    if known is None:
        known = [entry for doc in context.docs if (entry := _identity(doc)) is not None]
        _FIRST_SEEN[context] = known
    return known


def _identity(doc: dict[str, Any]) -> list[Any] | None:
    path = doc.get("path")
    if not path:
        return None
    try:
        info = os.lstat(path)
    except OSError:
        return None
    listed = (doc.get("size", info.st_size), doc.get("mtime_ns", info.st_mtime_ns))
    if not stat.S_ISREG(info.st_mode) or (info.st_size, info.st_mtime_ns) != listed:
        return None
    return [path, info.st_dev, info.st_ino]


def preflight(mode: Mode) -> str | None:
    """Refuse early where a mode cannot work; returns the path of bwrap for ``strict``."""
    if mode == "none":
        return None
    if not sys.platform.startswith("linux"):
        raise SandboxError(
            f"--sandbox {mode} needs Linux (Landlock and seccomp); on this system only "
            "--sandbox none is available, for trusted data only"
        )
    if mode != "strict":
        return None
    bwrap = launch.find_bwrap()
    if bwrap is None:
        raise SandboxError(
            "--sandbox strict needs bubblewrap: install it (apt-get install bubblewrap) so "
            "that `bwrap` is on PATH, or use --sandbox default"
        )
    return bwrap


class Spawner:
    """Launches, handshakes and disposes of a session's workers."""

    def __init__(
        self,
        *,
        config: SandboxConfig,
        seed: int,
        on_message: Callable[[WorkerProcess, dict[str, Any]], None],
    ) -> None:
        mode = self.mode = config.mode
        self.bwrap = preflight(mode)
        self._config = config
        self._site = launch.site_paths() if config.site_packages and mode != "none" else []
        self._read_paths = [*config.read_paths, *self._site]
        self._seed = seed
        self._host_pid = os.getpid()  # the worker checks its parent is still this process
        self._on_message = on_message
        self._context_file: Spool | None = None
        self.context_meta: dict[str, Any] = {}
        self.scans = False  # the worker sends count, grep and search_files to the host
        self._pass_fds: list[int] = []
        self._context_files: list[list[Any]] = []
        self._context_binds: list[str] = []
        self.max_tasks = config.max_tasks
        self.tasks: TaskGroup | None = None
        if mode != "none" and self.max_tasks:
            self.tasks = TaskGroup.create(self.max_tasks)

    async def first(self, context: Context) -> tuple[WorkerProcess, dict[str, Any]]:
        """Hand the context over: an in-memory one is written to a context file while the
        first worker boots; one in files is described, and the worker may read those files."""
        if context.value is None:
            self.context_meta = await asyncio.to_thread(context.spec)
            self._pass_fds = context.fds()
            self._context_files = context_files(context)
            self._context_binds = context.bind_paths()
            return await self.spawn()
        spool = self._context_file = Spool.open(launch.CONTEXT_FILE_PREFIX)
        self._pass_fds = [spool.fd]
        worker = self.launch()
        try:
            try:
                meta = await asyncio.to_thread(protocol.write_context, spool.file, context.value)
                self.context_meta = {**meta, "fd": spool.fd}
            finally:
                spool.close_file()
            worker.max_message_bytes = self.message_limit()
            info = await self.handshake(worker)
        except BaseException:  # cancelled, refused, or a bad context: leave nothing behind
            worker.close(grace_s=0.0)
            raise
        return worker, info

    async def spawn(self) -> tuple[WorkerProcess, dict[str, Any]]:
        worker = self.launch()
        try:
            return worker, await self.handshake(worker)
        except BaseException:
            worker.close(grace_s=0.0)
            raise

    def message_limit(self) -> int:
        data_bytes = int(self.context_meta.get("data_bytes", 0))
        return self._config.max_message_bytes or (64 << 20) + data_bytes

    def launch(self) -> WorkerProcess:
        mode, bwrap = self.mode, self.bwrap
        python = sys.executable if mode == "none" else launch.python_binary()
        compiled = bytecode.package_dir()  # removed once the worker is ready or gone
        package_dir = launch.SANDBOX_PACKAGE_DIR if bwrap else compiled
        read_paths = [*self._read_paths, *self._context_binds]

        def argv(in_fd: int, out_fd: int, info_fd: int | None) -> list[str]:
            command = launch.worker_argv(mode, python, package_dir, in_fd, out_fd)
            if bwrap is not None and info_fd is not None:
                wrapper = launch.bwrap_argv(bwrap, python, read_paths, info_fd, compiled)
                command = wrapper + command
            return command

        tasks_fds = [self.tasks.procs_fd] if self.tasks is not None else []
        return WorkerProcess(
            argv=argv,
            env=launch.worker_env(mode, self._seed),
            pass_fds=[*self._pass_fds, *tasks_fds],
            max_message_bytes=self.message_limit(),
            on_message=self._on_message,
            bwrap_info=bwrap is not None,
            on_started=lambda: bytecode.release(compiled),
        )

    def init_message(self) -> dict[str, Any]:
        config = self._config
        return {
            "memory_mb": config.memory_mb,
            "max_open_files": config.max_open_files,
            "capture_chars": config.capture_chars,
            "cpu_s": config.cell_cpu_s,
            "wall_s": config.cell_wall_s,
            "guard": config.python_guard,
            "pretend_missing": config.pretend_missing,
            "host_pid": self._host_pid,
            "t": protocol.INIT,
            "mode": self.mode,
            "confine": self.mode != "none",
            "read_paths": self._read_paths,
            "read_files": self._context_files,
            "max_tasks": self.max_tasks,
            "tasks_fd": None if self.tasks is None else self.tasks.procs_fd,
            "own_user_namespace": self.mode == "strict",
            "sys_path": self._site,
            "context": self.context_meta,
            "scans": self.scans,
            "seed": self._seed,
        }

    async def handshake(self, worker: WorkerProcess) -> dict[str, Any]:
        """Send the configuration; wait until the worker is confined and ready."""
        mode = self.mode
        worker.send(self.init_message())
        future = asyncio.wrap_future(worker.ready)
        try:
            return await asyncio.wait_for(future, self._config.startup_timeout_s)
        except WorkerRefused as exc:
            message = f"--sandbox {mode} refuses to start: {exc.reason}. {REFUSAL_HINT}"
            raise SandboxError(message) from None
        except WorkerDied as exc:
            tail = worker.stderr_tail()
            detail = f": {tail}" if tail else ""
            message = f"the {mode} sandbox worker failed to start ({exc.reason}){detail}"
            raise SandboxError(message) from None
        except TimeoutError:
            limit = self._config.startup_timeout_s
            message = f"the {mode} sandbox worker did not start within {limit:g} s"
            raise SandboxError(message) from None

    @staticmethod
    async def dispose(worker: WorkerProcess, *, graceful: bool) -> None:
        """Stop a worker: ask it to exit (for up to a second) if ``graceful``, else kill it."""
        if graceful and worker.dead is None:
            worker.send({"t": protocol.EXIT})
            deadline = time.monotonic() + 1.0
            while worker.dead is None and time.monotonic() < deadline:
                await asyncio.sleep(0.005)
        worker.close(grace_s=0.0)

    def close(self) -> None:
        if self._context_file is not None:
            self._context_file.close()
            self._context_file = None
        if self.tasks is not None:
            self.tasks.close()
            self.tasks = None
