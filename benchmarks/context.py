"""Contexts that will not fit: a 1 GB log file and a 150 MB codebase of 3,500 files.

    python benchmarks/context.py                 # both, in /tmp, deleted afterwards
    python benchmarks/context.py --log-mb 256    # a smaller log
    python benchmarks/context.py --json          # one JSON object on stdout

For each, in a fresh process (so that peak memory is the scenario's own): the time to open the
context (``from_file``/``from_directory``: no full read), the one pass that hashes and counts a
text (``describe``), the start of a confined worker (``--sandbox default``), and REPL helpers run
in that worker, timed inside the cell: a regex ``count`` over all of it, a ``grep``, random
access. Peak resident memory is read from ``/proc`` (``VmHWM``) for the host process and for
the worker. The log's regex count is compared with ``grep -cE`` on the same file (the pattern
matches at most once a line, so both count the same thing), best of three, file in the page
cache for both.

Targets (issue #5): open 1 GB in under 1 s without reading it all; peak memory for the codebase
query under 120 MB, host and worker together; a regex count over 1 GB within 2x of grep -c.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

LOG_PATTERN = r"ERROR .*timeout after [0-9]+ms"
LITERAL = "connection reset"
LEVELS = ["INFO"] * 90 + ["WARN"] * 7 + ["ERROR"] * 3
SERVICES = ["api", "auth", "db", "cache", "worker", "billing", "search", "mail"]
MESSAGES = [
    "request ok",
    "cache miss for key {k}",
    "slow query on table t{k}",
    "timeout after {n}ms",
    "retrying in {n}ms",
    "user {k} logged in",
    "connection reset by peer",
]


def make_log(path: Path, megabytes: int, seed: int = 1) -> None:
    """Log lines from a pool of 200,000 distinct ones, in random order, up to the size."""
    rnd = random.Random(seed)
    pool = []
    for i in range(200_000):
        level = rnd.choice(LEVELS)
        message = rnd.choice(MESSAGES).format(k=rnd.randrange(10_000), n=rnd.randint(100, 9999))
        pool.append(
            f"2024-03-{1 + i % 28:02d}T{i % 24:02d}:{i % 60:02d}:{i * 7 % 60:02d}.{i % 1000:03d}Z "
            f"{level} svc={rnd.choice(SERVICES)} req={i:08x} {message} "
            f"latency={rnd.randint(1, 2000)}ms\n"
        )
    target = megabytes << 20
    with path.open("w", encoding="ascii") as out:
        written = 0
        while written < target:
            block = "".join(rnd.choices(pool, k=40_000))
            out.write(block)
            written += len(block)


def make_codebase(root: Path, files: int, megabytes: int, seed: int = 2) -> None:
    """Python-like modules in 50 packages, to the total size, plus ignored and binary files."""
    rnd = random.Random(seed)
    per_file = (megabytes << 20) // files
    words = ["user", "order", "cache", "token", "session", "queue", "item", "record", "event"]
    for i in range(files):
        package = root / "src" / f"pkg{i % 50:02d}" / f"sub{i % 7}"
        package.mkdir(parents=True, exist_ok=True)
        parts = [f'"""Module {i}."""\n\nimport os\nimport re\n\n']
        size = sum(len(p) for p in parts)
        n = 0
        while size < per_file:
            a, b = rnd.choice(words), rnd.choice(words)
            n += 1
            chunk = (
                f"class {a.title()}{b.title()}{n}Error(Exception):\n    pass\n\n\n"
                if n % 25 == 0
                else f"def handle_{a}_{b}_{n}(value, limit={rnd.randint(1, 99)}):\n"
                f"    # {rnd.choice(words)} {rnd.choice(words)} {rnd.choice(words)}\n"
                f"    result = [v for v in value if v.{a} > limit]\n"
                f"    return {{'{b}': len(result), 'id': {rnd.randint(0, 10**6)}}}\n\n\n"
            )
            parts.append(chunk)
            size += len(chunk)
        (package / f"mod{i:04d}.py").write_text("".join(parts))
    (root / ".gitignore").write_text("build/\n*.pyc\n")
    (root / "build").mkdir()
    for i in range(200):
        (root / "build" / f"gen{i}.py").write_text("x = 1\n" * 1000)
    for i in range(50):
        (root / "src" / f"blob{i}.bin").write_bytes(os.urandom(4096))


class NullHost:
    """Host functions for a session that makes no sub-calls."""

    def llm_query(self, prompt: str, model: str | None = None) -> str:
        raise RuntimeError("no sub-model in this benchmark")

    def llm_query_batched(self, prompts: Any, model: str | None = None) -> list[str]:
        raise RuntimeError("no sub-model in this benchmark")

    def rlm_query(self, prompt: str, context: Any = None) -> str:
        raise RuntimeError("no sub-model in this benchmark")


def worker_pid(sandbox: Any) -> int:
    """The worker's pid on the host (in strict mode, not the pid it sees in its namespace)."""
    pid: int = sandbox._worker.cpu_pid
    return pid


def peak_rss_mb(pid: int | str = "self") -> float:
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


CELL_TIMER = (
    "import time as _t\n_s = _t.perf_counter()\n{body}\nprint('@@', _t.perf_counter() - _s)"
)


async def timed_cell(sandbox: Any, body: str) -> tuple[str, float]:
    cell = await sandbox.execute(CELL_TIMER.format(body=body))
    if cell.error:
        raise RuntimeError(cell.error)
    lines = cell.output.strip().splitlines()
    return "\n".join(lines[:-1]), float(lines[-1].split()[1])


async def log_scenario(path: str, mode: str) -> dict[str, Any]:
    from rlmx.context.sources import from_file
    from rlmx.sandbox.process import ProcessSandbox

    started = time.perf_counter()
    context = from_file(path)
    opened = time.perf_counter() - started
    started = time.perf_counter()
    handle = context.describe()
    described = time.perf_counter() - started
    sandbox = ProcessSandbox(mode=mode)  # type: ignore[arg-type]
    started = time.perf_counter()
    await sandbox.start(context, NullHost())
    boot = time.perf_counter() - started
    try:
        counts = [await timed_cell(sandbox, f"print(count(r'{LOG_PATTERN}'))") for _ in range(3)]
        _, grep_s = await timed_cell(sandbox, "h = grep(r'timeout after 9999ms', limit=20)")
        middle = handle.lines // 2 if handle.lines else 1
        _, lines_s = await timed_cell(sandbox, f"x = lines({middle}, {middle + 50})")
        half = (handle.chars or 2) // 2
        _, slice_s = await timed_cell(sandbox, f"x = context[{half}:{half + 5000}]")
        literal = [await timed_cell(sandbox, f"print(count(r'{LITERAL}'))") for _ in range(3)]
        worker_mb = peak_rss_mb(worker_pid(sandbox))
    finally:
        await sandbox.close()
    return {
        "bytes": handle.bytes,
        "lines": handle.lines,
        "form": handle.form,
        "open_s": opened,
        "describe_s": described,
        "worker_start_s": boot,
        "count": int(counts[0][0]),
        "count_s": min(s for _, s in counts),
        "literal_count": int(literal[0][0]),
        "literal_count_s": min(s for _, s in literal),
        "grep_limit20_s": grep_s,
        "lines_middle_s": lines_s,
        "slice_middle_s": slice_s,
        "host_peak_mb": peak_rss_mb(),
        "worker_peak_mb": worker_mb,
    }


async def codebase_scenario(path: str, mode: str) -> dict[str, Any]:
    from rlmx.context.sources import from_directory
    from rlmx.sandbox.process import ProcessSandbox

    started = time.perf_counter()
    context = from_directory(path)
    opened = time.perf_counter() - started
    handle = context.describe()
    sandbox = ProcessSandbox(mode=mode)  # type: ignore[arg-type]
    started = time.perf_counter()
    await sandbox.start(context, NullHost())
    boot = time.perf_counter() - started
    try:
        files_out, _ = await timed_cell(sandbox, "print(len(list_files()))")
        count_out, count_s = await timed_cell(sandbox, r"print(count(r'def handle_\w+'))")
        search_out, search_s = await timed_cell(
            sandbox, r"h = search_files(r'class Token\w*Error\b', limit=100_000); print(len(h))"
        )
        _, read_s = await timed_cell(sandbox, "f = list_files(); x = read_file(f[len(f) // 3])")
        worker_mb = peak_rss_mb(worker_pid(sandbox))
    finally:
        await sandbox.close()
    return {
        "files": int(files_out),
        "bytes": handle.bytes,
        "notes": context.notes,
        "open_s": opened,
        "worker_start_s": boot,
        "count": int(count_out),
        "count_s": count_s,
        "search_hits": int(search_out),
        "search_s": search_s,
        "read_file_s": read_s,
        "host_peak_mb": peak_rss_mb(),
        "worker_peak_mb": worker_mb,
    }


def grep_c(path: Path, pattern: str) -> tuple[int, float]:
    best, count = float("inf"), 0
    for _ in range(3):
        started = time.perf_counter()
        out = subprocess.run(["grep", "-cE", pattern, str(path)], capture_output=True, text=True)
        best = min(best, time.perf_counter() - started)
        count = int(out.stdout.strip() or 0)
    return count, best


def in_child(scenario: str, path: Path, mode: str) -> dict[str, Any]:
    """Run one scenario in a fresh interpreter, so that its peak memory is its own."""
    code = (
        "import asyncio, json, sys; sys.path.insert(0, sys.argv[1]);"
        "from benchmarks import context as c;"
        f"print(json.dumps(asyncio.run(c.{scenario}_scenario(sys.argv[2], sys.argv[3]))))"
    )
    repo = str(Path(__file__).resolve().parent.parent)
    proc = subprocess.run(
        [sys.executable, "-c", code, repo, str(path), mode],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr[-3000:])
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--log-mb", type=int, default=1024)
    parser.add_argument("--files", type=int, default=3500)
    parser.add_argument("--codebase-mb", type=int, default=150)
    parser.add_argument("--dir", default="/tmp/rlmx-context-bench")
    parser.add_argument("--mode", default="default", choices=("default", "strict", "none"))
    parser.add_argument("--keep", action="store_true", help="keep the generated data")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    root = Path(args.dir)
    root.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {"mode": args.mode}
    try:
        log = root / "app.log"
        started = time.perf_counter()
        make_log(log, args.log_mb)
        results["log_generate_s"] = time.perf_counter() - started
        results["log"] = in_child("log", log, args.mode)
        results["log"]["grep_c"], results["log"]["grep_c_s"] = grep_c(log, LOG_PATTERN)
        results["log"]["grep_c_literal"], results["log"]["grep_c_literal_s"] = grep_c(log, LITERAL)
        log.unlink()
        code = root / "codebase"
        started = time.perf_counter()
        make_codebase(code, args.files, args.codebase_mb)
        results["codebase_generate_s"] = time.perf_counter() - started
        results["codebase"] = in_child("codebase", code, args.mode)
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    if args.json:
        print(json.dumps(results, indent=1))
        return
    report(results)


def report(r: dict[str, Any]) -> None:
    log, code = r["log"], r["codebase"]
    ratio = log["count_s"] / log["grep_c_s"]
    total = code["host_peak_mb"] + code["worker_peak_mb"]
    print(f"sandbox mode: {r['mode']}")
    print(
        f"log: {log['bytes'] / 2**30:.2f} GiB, {log['lines']:,} lines, REPL context: {log['form']}"
    )
    print(f"  open (no full read)            {log['open_s'] * 1000:8.1f} ms   target < 1 s")
    print(f"  describe (sha256, lines, chars) {log['describe_s']:7.2f} s    one pass")
    print(f"  worker start                   {log['worker_start_s'] * 1000:8.1f} ms")
    print(f"  count(r'{LOG_PATTERN}') = {log['count']:,}: {log['count_s']:.2f} s")
    print(
        f"  grep -cE (same pattern)  = {log['grep_c']:,}: {log['grep_c_s']:.2f} s   "
        f"ratio {ratio:.2f}x   target <= 2x"
    )
    literal_ratio = log["literal_count_s"] / log["grep_c_literal_s"]
    print(
        f"  count('{LITERAL}') = {log['literal_count']:,}: {log['literal_count_s']:.2f} s; "
        f"grep -c = {log['grep_c_literal']:,}: {log['grep_c_literal_s']:.2f} s   "
        f"ratio {literal_ratio:.2f}x"
    )
    print(
        f"  grep (20 hits) {log['grep_limit20_s'] * 1000:.1f} ms, lines() in the middle "
        f"{log['lines_middle_s'] * 1000:.1f} ms, slice in the middle "
        f"{log['slice_middle_s'] * 1000:.1f} ms"
    )
    print(f"  peak RSS: host {log['host_peak_mb']:.1f} MB, worker {log['worker_peak_mb']:.1f} MB")
    print(f"codebase: {code['files']:,} files, {code['bytes'] / 2**20:.1f} MiB")
    print(f"  open (walk, .gitignore, sniff) {code['open_s'] * 1000:8.1f} ms   ({code['notes']})")
    print(f"  worker start (one Landlock rule per file) {code['worker_start_s'] * 1000:.1f} ms")
    print(f"  count(r'def handle_\\w+') = {code['count']:,}: {code['count_s']:.2f} s")
    print(f"  search_files(class ...Error) = {code['search_hits']} hits: {code['search_s']:.2f} s")
    print(f"  read_file: {code['read_file_s'] * 1000:.1f} ms")
    print(
        f"  peak RSS: host {code['host_peak_mb']:.1f} MB + worker {code['worker_peak_mb']:.1f} MB"
        f" = {total:.1f} MB   target < 120 MB"
    )


if __name__ == "__main__":
    main()
