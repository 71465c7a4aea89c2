"""A seccomp-BPF filter for the sandbox worker, assembled by hand and installed through ctypes.

Standard library only (the worker imports it under ``python -S``). The filter is a deny list
with argument checks, plus a ceiling: a syscall number above every number this module knows
answers ``ENOSYS``, so a future kernel's new syscalls are refused until reviewed here. Blocked
calls fail with ``EPERM`` (``EACCES`` for opening a file for writing), which Python raises as
``PermissionError``; a syscall from another ABI (32-bit ``int 0x80``, x32) kills the process.

What it refuses: sockets of every family, ``execve``, ``fork``/``vfork`` and any ``clone`` that
is not a thread (or that makes namespaces), ``ptrace`` and cross-process memory access, mounts
and namespaces, signals to any other process (``kill`` and its kin, and the ``fcntl`` commands
that make I/O signal a file's owner), changes to the scheduling of any other process
(``setpriority``, ``sched_set*``, ``ioprio_set``), ``setrlimit`` and any ``prlimit64`` that sets a
limit, identity and capability changes, ``prctl`` beyond a few read-only options, kernel
interfaces (bpf, perf, keyrings, io_uring, modules, ...), System V and POSIX IPC, memory that
escapes ``RLIMIT_DATA`` (``memfd_create``, shared anonymous ``mmap``, SysV shm), and every
filesystem change (create, write-open, truncate, chmod, chown, xattr, link, rename, unlink), a
second wall behind Landlock, and file leases. ``TIOCSTI`` (typing into a terminal) is refused
too.

Supported architectures: x86_64 (tested) and aarch64 (numbers from the kernel's generic table).
"""

from __future__ import annotations

import ctypes
import errno
import os
import struct

# name=x86_64/aarch64 ("-" where aarch64 has no such syscall); from the kernel's unistd headers.
_TABLE = """
socket=41/198 socketpair=53/199 connect=42/203 bind=49/200 listen=50/201 accept=43/202
accept4=288/242 sendto=44/206 recvfrom=45/207 sendmsg=46/211 recvmsg=47/212 sendmmsg=307/269
recvmmsg=299/243 shutdown=48/210 getsockname=51/204 getpeername=52/205 setsockopt=54/208
getsockopt=55/209 execve=59/221 execveat=322/281 fork=57/- vfork=58/- clone=56/220
clone3=435/435 ptrace=101/117 process_vm_readv=310/270 process_vm_writev=311/271 kcmp=312/272
pidfd_open=434/434 pidfd_getfd=438/438 pidfd_send_signal=424/424 process_madvise=440/440
process_mrelease=448/448 mount=165/40 umount2=166/39 pivot_root=155/41 chroot=161/51
unshare=272/97 setns=308/268 open_tree=428/428 move_mount=429/429 fsopen=430/430
fsconfig=431/431 fsmount=432/432 fspick=433/433 mount_setattr=442/442 kill=62/129 tkill=200/130
tgkill=234/131 rt_sigqueueinfo=129/138 rt_tgsigqueueinfo=297/240 setrlimit=160/164
prlimit64=302/261 setuid=105/146 setgid=106/144 setreuid=113/145 setregid=114/143
setresuid=117/147 setresgid=119/149 setgroups=116/159 setfsuid=122/151 setfsgid=123/152
capset=126/91 personality=135/92 prctl=157/167 seccomp=317/277 landlock_create_ruleset=444/444
landlock_add_rule=445/445 landlock_restrict_self=446/446 bpf=321/280 perf_event_open=298/241
keyctl=250/219 add_key=248/217 request_key=249/218 userfaultfd=323/282 io_uring_setup=425/425
io_uring_enter=426/426 io_uring_register=427/427 init_module=175/105 finit_module=313/273
delete_module=176/106 kexec_load=246/104 kexec_file_load=320/294 reboot=169/142 swapon=167/224
swapoff=168/225 acct=163/89 settimeofday=164/170 clock_settime=227/112 clock_adjtime=305/266
adjtimex=159/171 sethostname=170/161 setdomainname=171/162 iopl=172/- ioperm=173/-
quotactl=179/60 quotactl_fd=443/443 syslog=103/116 vhangup=153/58 uselib=134/- _sysctl=156/-
modify_ldt=154/- lookup_dcookie=212/18 nfsservctl=180/42 fanotify_init=300/262
name_to_handle_at=303/264 open_by_handle_at=304/265 mbind=237/235 migrate_pages=256/238
move_pages=279/239 set_mempolicy=238/237 set_mempolicy_home_node=450/450 memfd_create=319/279
memfd_secret=447/447 shmget=29/194 shmat=30/196 shmctl=31/195 shmdt=67/197 msgget=68/186
msgsnd=69/189 msgrcv=70/188 msgctl=71/187 semget=64/190 semop=65/193 semctl=66/191
semtimedop=220/192 mq_open=240/180 mq_unlink=241/181 mq_timedsend=242/182
mq_timedreceive=243/183 mq_notify=244/184 mq_getsetattr=245/185 mlock=149/228 mlock2=325/284
mlockall=151/230 creat=85/- open=2/- openat=257/56 openat2=437/437 truncate=76/45
ftruncate=77/46 chmod=90/- fchmod=91/52 fchmodat=268/53 chown=92/- fchown=93/55 lchown=94/-
fchownat=260/54 setxattr=188/5 lsetxattr=189/6 fsetxattr=190/7 removexattr=197/14
lremovexattr=198/15 fremovexattr=199/16 utime=132/- utimes=235/- utimensat=280/88
futimesat=261/- mknod=133/- mknodat=259/33 link=86/- linkat=265/37 symlink=88/-
symlinkat=266/36 unlink=87/- unlinkat=263/35 rename=82/- renameat=264/38 renameat2=316/276
mkdir=83/- mkdirat=258/34 rmdir=84/- fallocate=285/47 mmap=9/222 ioctl=16/29 fchmodat2=452/452
statmount=457/457 listmount=458/458 lsm_set_self_attr=460/460 setxattrat=463/463
removexattrat=466/466 open_tree_attr=467/467 file_setattr=469/469 fcntl=72/25
setpriority=141/140 sched_setparam=142/118 sched_setscheduler=144/119
sched_setaffinity=203/122 sched_setattr=314/274 ioprio_set=251/30
"""

# The highest syscall number reviewed here (file_setattr, Linux 6.17); above it: ENOSYS.
MAX_KNOWN_NR = 469

# Syscalls with an argument check; every other name in the table is refused outright.
_SIGNALS = frozenset({"kill", "tgkill", "rt_sigqueueinfo", "rt_tgsigqueueinfo"})
# Scheduling calls whose first argument names the target: 0 (the caller) or a pid.
_SCHEDULING = frozenset(
    {"sched_setaffinity", "sched_setscheduler", "sched_setparam", "sched_setattr"}
)
_CONDITIONAL = (
    _SIGNALS
    | _SCHEDULING
    | {"clone", "prlimit64", "prctl", "mmap", "open", "openat", "ioctl", "fcntl"}
    | {"setpriority", "ioprio_set"}
)
# Refused with ENOSYS, so that libc falls back to an older call the filter can inspect.
_ENOSYS = frozenset({"clone3", "openat2"})


class Arch:
    """An architecture: its audit id, its column of _TABLE, its seccomp syscall number."""

    __slots__ = ("audit", "column", "name", "sys_seccomp")

    def __init__(self, name: str, audit: int, column: int, sys_seccomp: int) -> None:
        self.name, self.audit, self.column, self.sys_seccomp = name, audit, column, sys_seccomp


ARCHES = {
    "x86_64": Arch("x86_64", 0xC000003E, 0, 317),
    "aarch64": Arch("aarch64", 0xC00000B7, 1, 277),
}

# BPF opcodes and seccomp return values.
_LD_ABS, _JEQ, _JGT, _JSET, _AND, _RET = 0x20, 0x15, 0x25, 0x45, 0x54, 0x06
RET_ALLOW = 0x7FFF0000
RET_KILL_PROCESS = 0x80000000
_RET_ERRNO = 0x00050000
_OFF_NR, _OFF_ARCH, _OFF_ARGS = 0, 4, 16

CLONE_THREAD = 0x00010000
CLONE_NAMESPACES = 0x00000080 | 0x00020000 | 0x02000000 | 0x04000000 | 0x08000000
CLONE_NAMESPACES |= 0x10000000 | 0x20000000 | 0x40000000
MAP_SHARED, MAP_ANONYMOUS = 0x01, 0x20
OPEN_WRITE_FLAGS = 0o1 | 0o2 | 0o100 | 0o1000 | 0o2000  # O_WRONLY O_RDWR O_CREAT O_TRUNC O_APPEND
TIOCSTI, TIOCLINUX = 0x5412, 0x541C
# fcntl commands that aim signals at a process (F_SETOWN, F_SETSIG, F_SETOWN_EX: I/O on the file
# then signals the owner, any pid or process group, unchecked by kill's rules) or that let the
# worker hold up other processes' opens of a file (F_SETLEASE).
FCNTL_REFUSED = (8, 10, 15, 1024)
PRIO_PROCESS, IOPRIO_WHO_PROCESS = 0, 1
# prctl options model code may use: read-only queries, thread names, naming anonymous maps.
PRCTL_ALLOWED = (3, 15, 16, 21, 23, 27, 39, 0x53564D41)


def errno_ret(code: int) -> int:
    return _RET_ERRNO | (code & 0xFFFF)


def syscall_numbers(arch: Arch) -> dict[str, int]:
    numbers = {}
    for token in _TABLE.split():
        name, pair = token.split("=")
        value = pair.split("/")[arch.column]
        if value != "-":
            numbers[name] = int(value)
    return numbers


class _Program:
    """Classic BPF with forward jumps to labels, all short (< 256 instructions)."""

    def __init__(self) -> None:
        self.code: list[tuple[int, int | str, int | str, int]] = []
        self.labels: dict[str, int] = {}
        self._fresh = 0

    def label(self) -> str:
        self._fresh += 1
        return f"L{self._fresh}"

    def place(self, label: str) -> None:
        self.labels[label] = len(self.code)

    def op(self, code: int, k: int, jt: int | str = 0, jf: int | str = 0) -> None:
        self.code.append((code, jt, jf, k & 0xFFFFFFFF))

    def load_arg(self, index: int, high: bool = False) -> None:
        self.op(_LD_ABS, _OFF_ARGS + 8 * index + (4 if high else 0))

    def ret(self, value: int) -> None:
        self.op(_RET, value)

    def assemble(self) -> bytes:
        out = bytearray()
        for at, (code, jt, jf, k) in enumerate(self.code):
            out += struct.pack("<HBBI", code, self._offset(at, jt), self._offset(at, jf), k)
        return bytes(out)

    def _offset(self, at: int, target: int | str) -> int:
        if isinstance(target, int):
            return target
        offset = self.labels[target] - at - 1
        if not 0 <= offset < 256:
            raise ValueError(f"BPF jump of {offset} instructions")
        return offset


def _self_only(prog: _Program, index: int, pid: int, allow: str, deny: str) -> None:
    """Argument ``index`` names the caller: 0 (meaning itself) or its own pid."""
    prog.load_arg(index)
    prog.op(_JEQ, 0, allow, 0)
    prog.op(_JEQ, pid, allow, deny)


def _process_target(prog: _Program, kind: int, pid: int, allow: str, deny: str) -> None:
    """setpriority/ioprio_set: (which, who); only which = a process, and only itself. A
    process group or a user (``who`` = uid) would reach other processes."""
    prog.load_arg(0)
    prog.op(_JEQ, kind, 0, deny)
    _self_only(prog, 1, pid, allow, deny)


def _memory_and_files(prog: _Program, name: str, allow: str, deny: str, eacces: int) -> None:
    if name == "mmap":  # shared anonymous memory is not counted by RLIMIT_DATA
        prog.load_arg(3)
        prog.op(_AND, MAP_SHARED | MAP_ANONYMOUS)
        prog.op(_JEQ, MAP_SHARED | MAP_ANONYMOUS, deny, allow)
    elif name in ("open", "openat"):
        prog.load_arg(1 if name == "open" else 2)
        prog.op(_JSET, OPEN_WRITE_FLAGS, 0, allow)
        prog.ret(eacces)
    elif name == "ioctl":
        prog.load_arg(1)
        prog.op(_JEQ, TIOCSTI, deny, 0)
        prog.op(_JEQ, TIOCLINUX, deny, allow)
    elif name == "fcntl":
        prog.load_arg(1)
        for command in FCNTL_REFUSED:
            prog.op(_JEQ, command, deny, 0)
        prog.ret(RET_ALLOW)
    else:
        raise ValueError(name)


def _condition(prog: _Program, name: str, pid: int, eperm: int, eacces: int) -> None:
    """The check of one conditional syscall; every path ends in a return."""
    allow, deny = prog.label(), prog.label()
    if name == "clone":  # threads only, and no namespaces
        prog.load_arg(0)
        prog.op(_JSET, CLONE_THREAD, 0, deny)
        prog.op(_JSET, CLONE_NAMESPACES, deny, allow)
    elif name in _SIGNALS:  # itself only (0 would be its whole process group)
        prog.load_arg(0)
        prog.op(_JEQ, pid, allow, deny)
    elif name in _SCHEDULING:
        _self_only(prog, 0, pid, allow, deny)
    elif name in ("setpriority", "ioprio_set"):
        kind = PRIO_PROCESS if name == "setpriority" else IOPRIO_WHO_PROCESS
        _process_target(prog, kind, pid, allow, deny)
    elif name == "prlimit64":  # reading a limit of itself, never setting one
        prog.load_arg(2)
        prog.op(_JEQ, 0, 0, deny)
        prog.load_arg(2, high=True)
        prog.op(_JEQ, 0, 0, deny)
        _self_only(prog, 0, pid, allow, deny)
    elif name == "prctl":
        prog.load_arg(0)
        for option in PRCTL_ALLOWED:
            prog.op(_JEQ, option, allow, 0)
        prog.ret(eperm)
    else:
        _memory_and_files(prog, name, allow, deny, eacces)
    prog.place(allow)
    prog.ret(RET_ALLOW)
    prog.place(deny)
    prog.ret(eperm)


def build_filter(arch: Arch, pid: int) -> bytes:
    """The filter's instructions for a process whose own pid (in its namespace) is ``pid``."""
    prog = _Program()
    eperm, eacces, enosys = errno_ret(errno.EPERM), errno_ret(errno.EACCES), errno_ret(errno.ENOSYS)
    prog.op(_LD_ABS, _OFF_ARCH)
    prog.op(_JEQ, arch.audit, 1, 0)
    prog.ret(RET_KILL_PROCESS)
    prog.op(_LD_ABS, _OFF_NR)
    if arch.name == "x86_64":  # the x32 ABI: syscall numbers with bit 30 set
        prog.op(_JSET, 0x40000000, 0, 1)
        prog.ret(RET_KILL_PROCESS)
    prog.op(_JGT, MAX_KNOWN_NR, 0, 1)
    prog.ret(enosys)
    for name, number in sorted(syscall_numbers(arch).items(), key=lambda item: item[1]):
        if name in _CONDITIONAL:
            skip = prog.label()
            prog.op(_JEQ, number, 0, skip)
            _condition(prog, name, pid, eperm, eacces)
            prog.place(skip)
        else:
            prog.op(_JEQ, number, 0, 1)
            prog.ret(enosys if name in _ENOSYS else eperm)
    prog.ret(RET_ALLOW)
    return prog.assemble()


def current_arch() -> Arch | None:
    machine = os.uname().machine.lower()
    return ARCHES.get({"amd64": "x86_64", "arm64": "aarch64"}.get(machine, machine))


class _SockFprog(ctypes.Structure):
    _fields_ = (("len", ctypes.c_ushort), ("filter", ctypes.c_void_p))


PR_GET_SECCOMP, PR_SET_NO_NEW_PRIVS = 21, 38
SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_TSYNC = 1, 1


def available(libc: ctypes.CDLL) -> str | None:
    """None when seccomp filters can be installed here, else why not."""
    arch = current_arch()
    if arch is None:
        return f"the seccomp filter has no syscall table for {os.uname().machine}"
    if libc.prctl(PR_GET_SECCOMP, 0, 0, 0, 0) < 0:
        err = ctypes.get_errno()
        return f"the kernel has no seccomp support (prctl: {errno.errorcode.get(err, err)})"
    return None


def install(libc: ctypes.CDLL, pid: int) -> None:
    """Install the filter on every thread of this process; raises OSError on failure."""
    reason = available(libc)
    arch = current_arch()
    if reason is not None or arch is None:
        raise OSError(errno.ENOSYS, reason or "no seccomp")
    program = build_filter(arch, pid)
    buffer = ctypes.create_string_buffer(program, len(program))
    fprog = _SockFprog(len(program) // 8, ctypes.cast(buffer, ctypes.c_void_p))
    if libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_NO_NEW_PRIVS) failed")
    libc.syscall.restype = ctypes.c_long
    result = libc.syscall(
        ctypes.c_long(arch.sys_seccomp),
        ctypes.c_ulong(SECCOMP_SET_MODE_FILTER),
        ctypes.c_ulong(SECCOMP_FILTER_FLAG_TSYNC),
        ctypes.byref(fprog),
    )
    if result != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"seccomp(SET_MODE_FILTER) failed: {errno.errorcode.get(err, err)}")
