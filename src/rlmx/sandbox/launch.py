"""The command line and environment of a sandbox worker, per mode (host side)."""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
import sysconfig
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import rlmx.sandbox.protocol as protocol
from rlmx.context import ContextValue
from rlmx.context.files import Spool
from rlmx.sandbox.worker import BOOT

Mode = Literal["default", "strict", "none"]
MODES: tuple[Mode, ...] = ("default", "strict", "none")

PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SANDBOX_PACKAGE_DIR = "/opt/rlmx"  # where strict mode binds the worker's modules
SANDBOX_UID = 65534
CONTEXT_FILE_PREFIX = "rlmx-context-"
# The most tasks (threads, its own included) a confined worker may have: ample for thread pools
# of sub-calls, far below the machine's pid_max.
MAX_TASKS = 256

# What a worker in `none` mode may inherit from the host's environment: nothing secret.
INHERITED_ENV = ("PATH", "HOME", "USER", "LOGNAME", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "TMPDIR")


# The modules a worker imports: compiled once per host process (see rlmx.sandbox.bytecode).
WORKER_MODULES = (
    "worker",
    "runtime",
    "timers",
    "protocol",
    "capture",
    "cells",
    "scans",
    "guard",
    "confine",
    "landlock",
    "seccomp",
)
# The context modules the worker's REPL helpers need (standard library only).
CONTEXT_MODULES = ("textio", "regex", "corpus", "analytics", "pysource", "helpers", "spec")
WORKER_PACKAGES = {"sandbox": WORKER_MODULES, "context": CONTEXT_MODULES}


def python_binary() -> str:
    """The real interpreter behind ``sys.executable`` (a venv's python is a symlink to it)."""
    return os.path.realpath(sys.executable)


def interpreter_flags(mode: Mode) -> list[str]:
    # -S: no site-packages (stdlib only) in the confined modes; -s: no user site; -P: no script
    # or working directory on sys.path; -B: never try to write bytecode.
    return ["-s", "-P", "-B"] if mode == "none" else ["-S", "-s", "-P", "-B"]


def worker_argv(mode: Mode, python: str, package_dir: str, in_fd: int, out_fd: int) -> list[str]:
    return [
        python,
        *interpreter_flags(mode),
        "-c",
        BOOT,
        package_dir,
        str(in_fd),
        str(out_fd),
    ]


def worker_env(mode: Mode, seed: int, host_env: Mapping[str, str] | None = None) -> dict[str, str]:
    """An empty environment but for the hash seed (fixed per session, so that a replay after a
    restart orders sets and dicts as before) and UTF-8 mode. ``none`` keeps a few harmless
    variables (PATH, HOME, locale) so that installed packages behave; never an API key."""
    env = {"PYTHONHASHSEED": str(seed), "PYTHONUTF8": "1"}
    if mode == "none":
        source = os.environ if host_env is None else host_env
        env.update({k: source[k] for k in INHERITED_ENV if k in source})
    return env


def stdlib_paths() -> set[str]:
    # Not sysconfig's "platstdlib": in a venv it names the venv's lib directory, which holds
    # site-packages.
    return {os.path.realpath(os.path.dirname(os.__file__)), sysconfig.get_paths()["stdlib"]}


def site_paths() -> list[str]:
    """The host's import path beyond the standard library: site-packages and editable installs."""
    stdlib = stdlib_paths()
    found = []
    for entry in sys.path:
        if not entry or not os.path.isabs(entry) or not os.path.isdir(entry):
            continue
        real = os.path.realpath(entry)
        if real in stdlib or any(real.startswith(p + os.sep) for p in stdlib):
            continue
        found.append(entry)
    return found


@functools.cache
def bwrap_supports(option: str, bwrap: str) -> bool:
    try:
        text = subprocess.run(
            [bwrap, "--help"], capture_output=True, text=True, timeout=10, check=False
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return False
    return option in text


def _mirror_root_link(path: str) -> list[str]:
    """/lib, /lib64: a symlink in the sandbox where the host has one, else a read-only bind."""
    if os.path.islink(path):
        return ["--symlink", os.readlink(path), path]
    return ["--ro-bind-try", path, path]


def bwrap_argv(
    bwrap: str,
    python: str,
    read_paths: Sequence[str],
    info_fd: int,
    package_dir: str,
) -> list[str]:
    """bubblewrap around the worker: new user (uid 65534, no capabilities), pid, net, ipc, uts
    and mount namespaces, with read-only binds of the Python installation, the system libraries
    and the worker's own modules, and nothing else."""
    args = [
        bwrap,
        "--unshare-user",
        "--unshare-pid",
        "--unshare-net",
        "--unshare-ipc",
        "--unshare-uts",
        "--unshare-cgroup-try",
        "--uid",
        str(SANDBOX_UID),
        "--gid",
        str(SANDBOX_UID),
        "--hostname",
        "rlmx-sandbox",
        "--cap-drop",
        "ALL",
        "--die-with-parent",
        "--new-session",
        "--as-pid-1",
        "--info-fd",
        str(info_fd),
    ]
    if bwrap_supports("--disable-userns", bwrap):
        args.append("--disable-userns")
    binds = [sys.base_prefix, sys.base_exec_prefix, os.path.dirname(python), *read_paths]
    for lib in ("/usr/lib", "/usr/lib64", "/usr/local/lib", "/usr/share/zoneinfo"):
        binds.append(lib)
    for path in dict.fromkeys(os.path.realpath(p) for p in binds if p):
        args += ["--ro-bind-try", path, path]
    for path in ("/lib", "/lib64", "/lib32", "/libx32"):
        if os.path.lexists(path):
            args += _mirror_root_link(path)
    for path in ("/etc/ld.so.cache", "/etc/localtime"):
        args += ["--ro-bind-try", path, path]
    for package in WORKER_PACKAGES:
        target = f"{SANDBOX_PACKAGE_DIR}/{package}"
        args += ["--ro-bind", os.path.join(package_dir, package), target]
    args += ["--proc", "/proc", "--dev", "/dev", "--chdir", "/", "--"]
    return args


def find_bwrap() -> str | None:
    return shutil.which("bwrap")


def write_context_file(context: ContextValue) -> tuple[int, dict[str, Any]]:
    """The context in a file, as a session writes it; returns the read-only fd and layout."""
    with Spool.open(CONTEXT_FILE_PREFIX) as spool:
        layout = protocol.write_context(spool.file, context)
        spool.close_file()
    return spool.fd, layout
