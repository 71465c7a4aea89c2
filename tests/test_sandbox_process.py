"""ProcessSandbox as a REPL: the in-process semantics, in every mode, plus limits and restarts."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from rlmx.errors import SandboxError
from rlmx.sandbox.base import Sandbox
from rlmx.sandbox.process import ProcessSandbox, sandbox_factory

from .sandbox_support import ALL_MODES, CONFINED_MODES, FakeHost, needs_kernel, session

all_modes = pytest.mark.parametrize("mode", ALL_MODES)


@all_modes
async def test_is_a_sandbox_with_a_persistent_namespace(mode: str) -> None:
    async with session(mode) as sb:
        assert isinstance(sb, Sandbox)
        assert (await sb.execute("x = 40")).error is None
        result = await sb.execute("x += 2\nprint(x)")
        assert result.output == "42\n"
        assert result.error is None
        assert result.final is None
        assert await sb.get_variable("x") == "42"
        assert await sb.get_variable("missing") is None
        assert await sb.get_variable("context") is None  # reserved names are not variables


@all_modes
async def test_context_str_and_trailing_expression_echo(mode: str) -> None:
    text = "héllo wörld ✓ 𝄞\n" * 3 + "\ud800 lone surrogate"
    async with session(mode, context=text) as sb:
        assert (await sb.execute("len(context)")).output == f"{len(text)}\n"
        assert (await sb.execute("context == " + repr(text))).output == "True\n"
        assert (await sb.execute("None")).output == ""


@all_modes
async def test_list_context_arrives_as_a_list(mode: str) -> None:
    parts = ["doc one", "", "döc three ✓"]
    async with session(mode, context=parts) as sb:
        result = await sb.execute("print(type(context).__name__, len(context), context)")
        assert result.output == f"list 3 {parts}\n"


@all_modes
async def test_empty_contexts(mode: str) -> None:
    async with session(mode, context="") as sb:
        assert (await sb.execute("print(repr(context))")).output == "''\n"
    async with session(mode, context=[]) as sb:
        assert (await sb.execute("print(repr(context))")).output == "[]\n"


@all_modes
async def test_errors_show_only_the_cells_own_traceback(mode: str) -> None:
    async with session(mode) as sb:
        result = await sb.execute("y = 1\nprint(undefined_name)")
        assert result.error is not None
        assert "NameError: name 'undefined_name' is not defined" in result.error
        assert "print(undefined_name)" in result.error
        assert "worker.py" not in result.error
        assert result.error_type == "NameError"
        syntax = await sb.execute("def (")
        assert syntax.error_type == "SyntaxError"
        assert syntax.error is not None
        assert syntax.error.startswith("  File")
        assert "SyntaxError" in syntax.error
        exit_ = await sb.execute("import sys\nsys.exit(3)")
        assert exit_.error is not None
        assert "SystemExit: 3" in exit_.error
        assert exit_.error_type == "SystemExit"
        fine = await sb.execute("print(y)")
        assert fine.output == "1\n"
        assert fine.error_type is None


@all_modes
async def test_final_final_var_and_show_vars(mode: str) -> None:
    async with session(mode) as sb:
        assert (await sb.execute("SHOW_VARS()")).output == "No variables yet.\n"
        result = await sb.execute("try:\n    FINAL(42)\nexcept Exception:\n    print('caught')")
        assert result.final == "42"
        assert result.output == ""
        await sb.execute("answer = 'ZETA-42'\nitems = [1, 2]")
        assert (
            await sb.execute("SHOW_VARS()")
        ).output == "answer: str, len 7\nitems: list, len 2\n"
        assert (await sb.execute("FINAL_VAR('answer')")).final == "ZETA-42"
        missing = await sb.execute("FINAL_VAR('nope')")
        assert missing.error is not None
        assert "call SHOW_VARS()" in missing.error


@all_modes
async def test_output_is_truncated_head_and_tail(mode: str) -> None:
    async with session(mode, capture_chars=1_000) as sb:
        result = await sb.execute("print('A' * 50_000 + 'END')")
        assert result.truncated
        assert "chars not shown" in result.output
        assert result.output.rstrip().endswith("END")
        assert len(result.output) < 1_200


@all_modes
async def test_stdout_and_stderr_writes_are_captured(mode: str) -> None:
    async with session(mode) as sb:
        code = "import sys\nsys.stdout.write('out\\n')\nsys.stderr.write('err\\n')\nNone"
        assert (await sb.execute(code)).output == "out\nerr\n"


@all_modes
async def test_sub_calls_reach_the_host(mode: str) -> None:
    host = FakeHost()
    async with session(mode, context="CTX", host=host) as sb:
        result = await sb.execute(
            "a = llm_query('hi')\n"
            "b = llm_query_batched(['p', 'q'], model='m')\n"
            "c = rlm_query('deep', context=context)\n"
            "d = rlm_query('other', context=['x', 'yz'])\n"
            "e = rlm_query('none')\n"
            "print(a, b, c, d, e, sep='|')"
        )
        assert result.error is None, result.error
        assert result.output == (
            "answer to hi|['answer to p', 'answer to q']|rlm deep over 3|rlm other over 2|"
            "rlm none over None\n"
        )
        assert host.calls[0] == ("llm", ("hi", None))
        assert host.calls[1] == ("batch", ["p", "q"])
        assert host.calls[2] == ("rlm", ("deep", "CTX"))
        assert host.calls[3] == ("rlm", ("other", ["x", "yz"]))


@all_modes
async def test_sub_call_errors_and_bad_arguments_raise_in_the_cell(mode: str) -> None:
    async with session(mode) as sb:
        result = await sb.execute("llm_query('FAIL now', model='zzz')")
        assert result.error is not None
        assert "KeyError: \"unknown model 'zzz' for llm_query\"" in result.error
        bad = await sb.execute("llm_query_batched('one string')")
        assert bad.error is not None
        assert "not one string" in bad.error
        assert "TypeError" in ((await sb.execute("llm_query(3)")).error or "")
        assert "TypeError" in ((await sb.execute("rlm_query('q', context=5)")).error or "")


@all_modes
async def test_threads_in_a_cell_can_call_sub_models_concurrently(mode: str) -> None:
    host = FakeHost(latency_s=0.2)
    async with session(mode, host=host) as sb:
        code = (
            "from concurrent.futures import ThreadPoolExecutor\n"
            "with ThreadPoolExecutor(8) as pool:\n"
            "    out = list(pool.map(llm_query, [f'q{i}' for i in range(8)]))\n"
            "print(len(out), out[7])"
        )
        started = time.perf_counter()
        result = await sb.execute(code)
        assert result.output == "8 answer to q7\n", result.error
        assert time.perf_counter() - started < 8 * 0.2 / 2
        assert host.max_active > 1


@all_modes
async def test_the_worker_environment_is_empty(mode: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-rlmx-test-secret")
    async with session(mode) as sb:
        result = await sb.execute("import os\nprint(sorted(os.environ))")
        assert "OPENAI_API_KEY" not in result.output
        assert "PYTHONHASHSEED" in result.output


@all_modes
async def test_wall_timeout_raises_in_the_cell_and_keeps_state(mode: str) -> None:
    async with session(mode, cell_wall_s=0.5, grace_s=2.0) as sb:
        await sb.execute("kept = 'yes'")
        started = time.perf_counter()
        result = await sb.execute("import time\ntime.sleep(30)")
        assert time.perf_counter() - started < 3
        assert result.error is not None
        assert "CellTimeout" in result.error
        assert "wall-clock" in result.error
        assert "REPL worker" not in result.error  # raised inside: no restart
        assert (await sb.execute("print(kept)")).output == "yes\n"


@all_modes
async def test_cpu_timeout_raises_in_the_cell_and_keeps_state(mode: str) -> None:
    async with session(mode, cell_cpu_s=0.5, grace_s=2.0) as sb:
        await sb.execute("kept = 'yes'")
        result = await sb.execute("while True:\n    pass")
        assert result.error is not None
        assert "CellTimeout" in result.error
        assert "CPU" in result.error
        caught = await sb.execute("try:\n    while True: pass\nexcept Exception:\n    print('no')")
        assert caught.error is not None
        assert "CellTimeout" in caught.error
        assert (await sb.execute("print(kept)")).output == "yes\n"


@all_modes
async def test_wall_clock_pauses_while_waiting_on_sub_models(mode: str) -> None:
    host = FakeHost(latency_s=0.4)
    async with session(mode, host=host, cell_wall_s=0.6, grace_s=0.3) as sb:
        result = await sb.execute("r = [llm_query(str(i)) for i in range(4)]\nprint(len(r))")
        assert result.error is None, result.error  # 1.6 s of sub-calls, far past 0.6 s
        assert result.output == "4\n"


@all_modes
async def test_a_worker_that_ignores_the_timer_is_killed_and_replayed(mode: str) -> None:
    host = FakeHost()
    async with session(mode, host=host, cell_cpu_s=0.5, grace_s=0.5) as sb:
        await sb.execute("a = llm_query('one')\nimport random\nr = random.random()")
        await sb.execute("s = {'x', 'y', 'z', 'w'}\nprint(s)")
        calls_before = len(host.calls)
        stubborn = (
            "import signal\n"
            "signal.signal(signal.SIGPROF, signal.SIG_IGN)\n"
            "signal.signal(signal.SIGALRM, signal.SIG_IGN)\n"
            "while True:\n    pass"
        )
        started = time.perf_counter()
        result = await sb.execute(stubborn)
        assert time.perf_counter() - started < 10
        assert result.error is not None
        assert "killed" in result.error
        assert "restored by replaying the 2 earlier successful cell(s)" in result.error
        assert sb.restarts == 1
        after = await sb.execute("print(a, r == r, sorted(s))")
        assert after.output == "answer to one True ['w', 'x', 'y', 'z']\n"
        assert len(host.calls) == calls_before  # the replay asked no model anything


@all_modes
async def test_replay_that_diverges_keeps_the_prefix_and_says_so(mode: str) -> None:
    async with session(mode) as sb:
        await sb.execute("first = 1")
        await sb.execute("import time\nstamp = time.time_ns()\nprint(stamp)")
        await sb.execute("later = 3")
        result = await sb.execute("import os\nos._exit(7)")
        assert result.error is not None
        assert "exited with code 7" in result.error
        assert "stamp = time.time_ns()" not in result.error  # the quote is the first line
        assert "`import time` was impossible (it printed something different" in result.error
        assert "first 1 cell(s) were restored" in result.error
        assert (await sb.execute("print(first)")).output == "1\n"
        assert "NameError" in ((await sb.execute("later")).error or "")


@all_modes
async def test_a_crash_between_cells_is_noticed_at_the_next_cell(mode: str) -> None:
    async with session(mode) as sb:
        await sb.execute("v = 5")
        await sb.execute(
            "import threading, time, os\n"
            "threading.Thread(target=lambda: (time.sleep(0.2), os._exit(9))).start()"
        )
        await asyncio.sleep(1.0)
        result = await sb.execute("print(v)")
        assert result.output.startswith("[rlmx] The REPL worker exited with code 9.")
        assert "restored by replaying" in result.output
        assert result.output.endswith("5\n")


@all_modes
async def test_garbage_from_the_worker_gets_it_stopped_and_replaced(mode: str) -> None:
    async with session(mode) as sb:
        await sb.execute("w = 'kept'")
        result = await sb.execute(
            "import sys, os\nfd = int(sys.argv[3])\n"
            "os.write(fd, b'\\xff\\xff\\xff\\xff' + b'x' * 8)"
        )
        assert result.error is not None
        assert "invalid message" in result.error
        assert (await sb.execute("print(w)")).output == "kept\n"
        forged = await sb.execute(
            "import sys, os, json\nfd = int(sys.argv[3])\n"
            "body = json.dumps({'t': 'result', 'id': 999, 'output': 'forged'}).encode()\n"
            "os.write(fd, len(body).to_bytes(4, 'big') + body)\nimport time; time.sleep(1)"
        )
        assert forged.error is not None
        assert "invalid message" in forged.error
        assert "forged" not in forged.output


@all_modes
async def test_oversized_messages_are_refused(mode: str) -> None:
    async with session(mode, max_message_bytes=100_000) as sb:
        result = await sb.execute("x = llm_query('y' * 200_000)")
        assert result.error is not None
        assert "over the limit" in result.error
        assert (await sb.execute("print('still here')")).output == "still here\n"


@all_modes
async def test_cancelling_a_running_cell_stops_the_worker(mode: str) -> None:
    async with session(mode) as sb:
        task = asyncio.create_task(sb.execute("import time\ntime.sleep(60)"))
        await asyncio.sleep(0.3)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        result = await sb.execute("print('back')")
        assert result.output.endswith("back\n")


@all_modes
async def test_factory_and_lifecycle_errors(mode: str) -> None:
    sb = sandbox_factory(mode)()  # type: ignore[arg-type]
    assert isinstance(sb, ProcessSandbox)
    with pytest.raises(SandboxError, match="before start"):
        await sb.execute("1")
    await sb.start("ctx", FakeHost())
    with pytest.raises(SandboxError, match="twice"):
        await sb.start("ctx", FakeHost())
    await sb.close()
    await sb.close()  # idempotent


@pytest.mark.parametrize("mode", CONFINED_MODES)
async def test_memory_limit_is_a_memory_error_and_keeps_state(mode: str) -> None:
    async with session(mode, memory_mb=256) as sb:
        await sb.execute("kept = list(range(10))")
        for code in (
            "x = bytearray(8 << 30)",
            "y = ' ' * (300 << 20)",
            "z = [bytes(1 << 20) for _ in range(1024)]",
        ):
            result = await sb.execute(code)
            assert result.error is not None, code
            assert "MemoryError" in result.error, code
        assert (await sb.execute("print(sum(kept))")).output == "45\n"


@pytest.mark.parametrize("mode", CONFINED_MODES)
async def test_confinement_is_reported(mode: str) -> None:
    async with session(mode) as sb:
        assert sb.info["seccomp"] == "filter"
        assert sb.info["landlock_abi"] >= 1
        if mode == "strict":
            assert sb.info["uid"] == 65534


@pytest.mark.parametrize("missing", ["landlock", "seccomp"])
@needs_kernel
@pytest.mark.parametrize("mode", ["default"])
async def test_refuses_to_start_without_the_kernel_features(mode: str, missing: str) -> None:
    with pytest.raises(SandboxError, match=f"refuses to start: {missing} is not available"):
        async with session(mode, pretend_missing=missing):
            pass


@pytest.mark.parametrize("mode", ["strict"])
async def test_strict_needs_bwrap(mode: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(SandboxError, match="apt-get install bubblewrap"):
        async with session(mode):
            pass


@pytest.mark.parametrize("mode", ["none"])
async def test_none_mode_has_no_limits_by_default(mode: str) -> None:
    sb = ProcessSandbox(mode="none")
    assert sb.cell_cpu_s is None
    assert sb.cell_wall_s is None
    default = ProcessSandbox(mode="default")
    assert default.cell_cpu_s == 60.0
    assert default.cell_wall_s == 300.0
    with pytest.raises(SandboxError, match="unknown sandbox mode"):
        ProcessSandbox(mode="loose")  # type: ignore[arg-type]


@pytest.mark.parametrize("mode", CONFINED_MODES)
async def test_threads_burning_cpu_between_cells_get_the_worker_restarted(mode: str) -> None:
    async with session(mode, cell_cpu_s=0.5, grace_s=0.3) as sb:
        await sb.execute("kept = 1")
        await sb.execute(
            "import threading\n"
            "threading.Thread(target=lambda: [0 for _ in iter(int, 1)], daemon=True).start()"
        )
        await asyncio.sleep(1.5)
        result = await sb.execute("print(kept)")
        assert "between cells" in result.output
        assert result.output.endswith("1\n")


@pytest.mark.parametrize("mode", CONFINED_MODES)
async def test_site_packages_only_when_asked(mode: str) -> None:
    async with session(mode) as sb:
        result = await sb.execute("import packaging")
        assert result.error is not None
        assert "ModuleNotFoundError" in result.error
    async with session(mode, site_packages=True) as sb:
        result = await sb.execute(
            "import packaging.version\nprint(packaging.version.Version('1.2'))"
        )
        assert result.output == "1.2\n", result.error


@pytest.mark.parametrize("mode", CONFINED_MODES)
async def test_extra_read_paths_are_readable_and_nothing_else(mode: str, tmp_path: Path) -> None:
    shared, private = tmp_path / "shared", tmp_path / "private"
    for folder in (shared, private):
        folder.mkdir()
        (folder / "data.txt").write_text(f"{folder.name} data")
    async with session(mode, read_paths=[str(shared)]) as sb:
        ok = await sb.execute(f"print(open({str(shared / 'data.txt')!r}).read())")
        assert ok.output == "shared data\n", ok.error
        denied = await sb.execute(f"open({str(private / 'data.txt')!r}).read()")
        assert denied.error is not None
        assert "Error" in denied.error
        write = await sb.execute(f"open({str(shared / 'new.txt')!r}, 'w')")
        assert write.error is not None
        assert not (shared / "new.txt").exists()
