"""The sandbox's parts on their own: frames, the context file, call validation, the seccomp
filter (run through a small BPF interpreter), Landlock helpers, the audit hook, launch lines."""

from __future__ import annotations

import errno
import os
import struct
import tempfile

import pytest

from rlmx.sandbox import guard, landlock, launch, protocol, seccomp
from rlmx.sandbox.calls import parse_call
from rlmx.sandbox.confine import probe
from rlmx.sandbox.inprocess import InProcessRepl
from rlmx.sandbox.supervisor import describe_exit

from .sandbox_support import FakeHost

# Frames -------------------------------------------------------------------------------------


def test_frames_round_trip_in_pieces() -> None:
    messages = [{"t": "x", "text": "héllo \ud800 ✓", "n": [1, 2]}, {"t": "y"}]
    stream = b"".join(protocol.encode(m) for m in messages)
    decoder = protocol.FrameDecoder(1_000)
    got = []
    for i in range(0, len(stream), 3):
        got += decoder.feed(stream[i : i + 3])
    assert got == messages
    assert decoder.pending == 0


@pytest.mark.parametrize(
    ("data", "match"),
    [
        (struct.pack(">I", 10_000) + b"{}", "over the limit"),
        (struct.pack(">I", 3) + b"{x}", "not valid JSON"),
        (struct.pack(">I", 2) + b"[]", "not an object"),
        (struct.pack(">I", 8) + b'{"t": 1}', "not an object"),
        (struct.pack(">I", 4) + b"\xff\xfe{}", "not valid JSON"),
        (struct.pack(">I", 4000) + b"[" * 3000 + b"]" * 1000, "not valid JSON"),
    ],
)
def test_bad_frames_are_refused(data: bytes, match: str) -> None:
    with pytest.raises(protocol.ProtocolError, match=match):
        protocol.FrameDecoder(5_000).feed(data)


def test_blocking_reader_sees_messages_then_end_of_file() -> None:
    r, w = os.pipe()
    try:
        protocol.write_all(w, protocol.encode({"t": "a"}) + protocol.encode({"t": "b"}))
        os.close(w)
        assert protocol.read_message(r) == {"t": "a"}
        assert protocol.read_message(r) == {"t": "b"}
        assert protocol.read_message(r) is None
    finally:
        os.close(r)


# The context file ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "context",
    ["", "plain", "ünïcode ✓ 𝄞 \ud800", [], [""], ["a", "", "ß𝄞", "x" * 70_000], ("t", "u")],
)
def test_context_file_round_trip(context: str | list[str]) -> None:
    with tempfile.TemporaryFile() as file:
        meta = protocol.write_context(file, context)
        assert protocol.read_context(file.fileno(), meta) == (
            context if isinstance(context, str) else list(context)
        )


def test_context_file_that_does_not_match_is_refused() -> None:
    with tempfile.TemporaryFile() as file:
        meta = protocol.write_context(file, ["a", "b"])
        with pytest.raises(ValueError, match="bytes"):
            protocol.read_context(file.fileno(), {**meta, "parts": 5})
        with pytest.raises(TypeError):
            protocol.write_context(file, ["a", 3])  # type: ignore[list-item]


# Sub-call validation ------------------------------------------------------------------------


def test_valid_calls_are_normalised() -> None:
    call = {"t": "call", "id": 1, "fn": "llm_query", "args": {"prompt": "p", "extra": 1}}
    assert parse_call(call) == (1, "llm_query", {"prompt": "p", "model": None})
    batch = {"t": "call", "id": 2, "fn": "llm_query_batched", "args": {"prompts": ["a"]}}
    assert parse_call(batch)[2] == {"prompts": ["a"], "model": None}
    ref = {"ref": "context"}
    rlm = {"t": "call", "id": 3, "fn": "rlm_query", "args": {"prompt": "p", "context": ref}}
    assert parse_call(rlm)[2] == {"prompt": "p", "context": ref}


@pytest.mark.parametrize(
    "call",
    [
        {"id": True, "fn": "llm_query", "args": {"prompt": "p"}},
        {"id": "1", "fn": "llm_query", "args": {"prompt": "p"}},
        {"id": 1, "fn": "eval", "args": {"prompt": "p"}},
        {"id": 1, "fn": "llm_query", "args": ["p"]},
        {"id": 1, "fn": "llm_query", "args": {"prompt": 5}},
        {"id": 1, "fn": "llm_query", "args": {"prompt": "p", "model": 5}},
        {"id": 1, "fn": "llm_query_batched", "args": {"prompts": "p"}},
        {"id": 1, "fn": "llm_query_batched", "args": {"prompts": ["p", 1]}},
        {"id": 1, "fn": "rlm_query", "args": {"prompt": "p", "context": {"ref": "/etc"}}},
        {"id": 1, "fn": "rlm_query", "args": {"prompt": "p", "context": 7}},
    ],
)
def test_malformed_calls_are_refused(call: dict[str, object]) -> None:
    with pytest.raises((TypeError, ValueError)):
        parse_call({"t": "call", **call})


# The seccomp filter, run by a classic-BPF interpreter -----------------------------------------


def run_filter(program: bytes, nr: int, args: tuple[int, ...] = (), arch: int = 0xC000003E) -> int:
    data = struct.pack("<II", nr, arch) + struct.pack("<Q", 0)
    data += b"".join(struct.pack("<Q", a & (2**64 - 1)) for a in (*args, 0, 0, 0, 0, 0, 0)[:6])
    code = [struct.unpack_from("<HBBI", program, i) for i in range(0, len(program), 8)]
    pc = acc = 0
    while True:
        op, jt, jf, k = code[pc]
        pc += 1
        if op == 0x20:
            acc = struct.unpack_from("<I", data, k)[0]
        elif op == 0x54:
            acc &= k
        elif op == 0x06:
            return k
        elif op in (0x15, 0x25, 0x45):
            taken = {0x15: acc == k, 0x25: acc > k, 0x45: bool(acc & k)}[op]
            pc += jt if taken else jf
        else:
            raise AssertionError(f"unknown BPF op {op:#x}")


PID = 4242
X86 = seccomp.ARCHES["x86_64"]
NR = seccomp.syscall_numbers(X86)
ALLOW = seccomp.RET_ALLOW
EPERM = seccomp.errno_ret(errno.EPERM)
THREAD_FLAGS = 0x3D0F00  # what glibc's pthread_create passes to clone


@pytest.mark.parametrize(
    ("name_or_nr", "args", "expected"),
    [
        (0, (), ALLOW),  # read
        (1, (), ALLOW),  # write
        ("socket", (2, 1, 0), EPERM),
        ("socketpair", (1, 1, 0), EPERM),
        ("connect", (), EPERM),
        ("execve", (), EPERM),
        ("fork", (), EPERM),
        ("clone", (THREAD_FLAGS,), ALLOW),
        ("clone", (0x11,), EPERM),  # fork-like: SIGCHLD only
        ("clone", (THREAD_FLAGS | 0x10000000,), EPERM),  # a thread in a new user namespace
        ("clone3", (), seccomp.errno_ret(errno.ENOSYS)),
        ("kill", (PID, 9), ALLOW),
        ("kill", (1, 9), EPERM),
        ("kill", (-1, 9), EPERM),
        ("kill", (0, 9), EPERM),
        ("tgkill", (PID, PID + 1, 9), ALLOW),
        ("tgkill", (PID + 1, PID + 1, 9), EPERM),
        ("prlimit64", (0, 9, 0, 12345), ALLOW),
        ("prlimit64", (0, 9, 12345, 0), EPERM),
        ("prlimit64", (0, 9, 1 << 40, 0), EPERM),
        ("prlimit64", (1, 9, 0, 12345), EPERM),
        ("setrlimit", (), EPERM),
        ("mmap", (0, 4096, 3, 0x22), ALLOW),  # private anonymous
        ("mmap", (0, 4096, 3, 0x21), EPERM),  # shared anonymous
        ("mmap", (0, 4096, 1, 0x01, 3), ALLOW),  # shared file mapping
        ("openat", (-100, 0, 0o2000000), ALLOW),  # O_RDONLY|O_CLOEXEC
        ("openat", (-100, 0, 0o1), seccomp.errno_ret(errno.EACCES)),
        ("openat", (-100, 0, 0o100), seccomp.errno_ret(errno.EACCES)),
        ("open", (0, 0o2), seccomp.errno_ret(errno.EACCES)),
        ("openat2", (), seccomp.errno_ret(errno.ENOSYS)),
        ("ioctl", (0, 0x5401), ALLOW),  # TCGETS
        ("ioctl", (0, 0x5412), EPERM),  # TIOCSTI
        ("prctl", (15,), ALLOW),  # PR_SET_NAME
        ("prctl", (4,), EPERM),  # PR_SET_DUMPABLE
        ("ptrace", (), EPERM),
        ("unshare", (), EPERM),
        ("mount", (), EPERM),
        ("memfd_create", (), EPERM),
        ("io_uring_setup", (), EPERM),
        ("bpf", (), EPERM),
        ("chmod", (), EPERM),
        ("unlinkat", (), EPERM),
        (470, (), seccomp.errno_ret(errno.ENOSYS)),  # unknown, newer than the table
        (0x40000000 + 41, (), seccomp.RET_KILL_PROCESS),  # x32 ABI
    ],
)
def test_seccomp_filter_decisions(
    name_or_nr: str | int, args: tuple[int, ...], expected: int
) -> None:
    nr = NR[name_or_nr] if isinstance(name_or_nr, str) else name_or_nr
    assert run_filter(seccomp.build_filter(X86, PID), nr, args) == expected


def test_seccomp_filter_kills_other_abis_and_builds_for_aarch64() -> None:
    program = seccomp.build_filter(X86, PID)
    assert run_filter(program, 0, arch=0x40000003) == seccomp.RET_KILL_PROCESS  # i386
    arm = seccomp.ARCHES["aarch64"]
    arm_program = seccomp.build_filter(arm, PID)
    arm_nr = seccomp.syscall_numbers(arm)
    assert run_filter(arm_program, arm_nr["socket"], arch=arm.audit) == EPERM
    assert run_filter(arm_program, 63, arch=arm.audit) == ALLOW  # read on aarch64
    assert max(NR.values()) <= seccomp.MAX_KNOWN_NR


# Landlock, guard, launch ---------------------------------------------------------------------


def test_landlock_helpers() -> None:
    assert "5.13" in landlock.unavailable_reason(-errno.ENOSYS)
    assert "lsm=" in landlock.unavailable_reason(-errno.EOPNOTSUPP)
    assert landlock.handled_fs(1) == (1 << 13) - 1
    assert landlock.handled_fs(3) == (1 << 15) - 1
    assert landlock.handled_fs(7) == (1 << 16) - 1


@pytest.mark.parametrize(
    ("event", "args"),
    [
        ("ctypes.dlopen", ("libc.so.6",)),
        ("subprocess.Popen", ("ls", [], None, None)),
        ("os.system", (b"id",)),
        ("socket.__new__", (None, 2, 1, 0)),
        ("code.__new__", ()),
        ("import", ("ctypes", None, [], [], [])),
        ("import", ("_xxsubinterpreters", None, [], [], [])),
        ("os.kill", (1, 9)),
    ],
)
def test_guard_refuses(event: str, args: tuple[object, ...]) -> None:
    with pytest.raises(PermissionError, match="rlmx sandbox"):
        guard._hook(event, args)


def test_guard_lets_ordinary_things_through() -> None:
    guard._hook("import", ("json", None, [], [], []))
    guard._hook("open", ("/x", "r", 0))
    guard._hook("os.kill", (os.getpid(), 0))


def test_launch_lines() -> None:
    env = launch.worker_env("none", 7, {"PATH": "/bin", "OPENAI_API_KEY": "sk", "HOME": "/h"})
    assert env == {"PYTHONHASHSEED": "7", "PYTHONUTF8": "1", "PATH": "/bin", "HOME": "/h"}
    assert launch.worker_env("default", 7, {"PATH": "/bin"}) == {
        "PYTHONHASHSEED": "7",
        "PYTHONUTF8": "1",
    }
    assert "-S" in launch.interpreter_flags("default")
    assert "-S" not in launch.interpreter_flags("none")
    args = launch.bwrap_argv("bwrap", "/usr/bin/python3", [], 5, launch.PACKAGE_DIR)
    for flag in ("--unshare-user", "--unshare-pid", "--unshare-net", "--unshare-ipc"):
        assert flag in args
    assert args[args.index("--uid") + 1] == "65534"
    assert args[args.index("--cap-drop") + 1] == "ALL"
    assert args[-1] == "--"


def test_probe_and_exit_descriptions() -> None:
    report = probe()
    assert {"platform", "landlock_abi", "seccomp"} <= set(report)
    assert "SIGKILL" in describe_exit(-9)
    assert "out of memory" in describe_exit(-9)
    assert "code 3" in describe_exit(3)


async def test_in_process_repl_reports_the_exception_type() -> None:
    repl = InProcessRepl()
    await repl.start("the context\n", FakeHost())
    try:
        assert (await repl.execute("print(undefined_name)")).error_type == "NameError"
        assert (await repl.execute("def (")).error_type == "SyntaxError"
        assert (await repl.execute("1 / 0")).error_type == "ZeroDivisionError"
        finished = await repl.execute("FINAL('done')")
        assert (finished.final, finished.error, finished.error_type) == ("done", None, None)
    finally:
        await repl.close()
