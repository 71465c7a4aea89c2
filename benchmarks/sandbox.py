"""Sandbox costs per mode, on a large context: start-up, per-cell overhead, sub-call round trip.

python benchmarks/sandbox.py [--context-mb 100] [--modes inprocess,none,default,strict]
                             [--cells 500] [--calls 2000] [--starts 7] [--json-out FILE]

No model is involved: sub-calls go to a host that answers at once, so the figures are the
sandbox's own. Three things are measured for each mode (``inprocess`` is the unconfined
in-process REPL, for comparison):

1. Start-up: ``start(context, host)`` until the worker says it is ready, ``--starts`` times,
   on a ``--context-mb`` MB ``str`` context. It includes writing the context file once, the
   worker process start, mapping and decoding the context and confining the worker (and, in
   ``strict``, bubblewrap). The context-file write is also timed on its own.
2. Per-cell overhead: ``execute("x = 1")`` from the host, ``--cells`` times after a warm-up;
   the cell's own work is a few microseconds, so the wall time is the overhead of sending the
   cell, running it in the worker and returning the result. Median and p90.
3. Sub-call round trip: one cell makes ``--calls`` sequential ``llm_query`` calls; the cell's
   wall time divided by the number of calls is one round trip (worker to host and back,
   including the host's call thread). Measured twice: with a host that answers in its call
   thread, and with one that, like the engine's bridge, hands each call to the event loop and
   waits for it. Median of 5 cells.

Targets from the issue: start-up < 300 ms, per-cell overhead < 1 ms median, sub-call round
trip < 1 ms, on a 100 MB context. The script prints a table and PASS/FAIL for each.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import statistics
import sys
import time
from collections.abc import Coroutine, Sequence
from typing import Any

from rlmx.sandbox.base import Sandbox
from rlmx.sandbox.inprocess import InProcessRepl
from rlmx.sandbox.launch import write_context_file
from rlmx.sandbox.process import ProcessSandbox

TARGETS = {"startup_s": 0.300, "cell_s": 0.001, "subcall_s": 0.001}


def make_context(n_chars: int, seed: int = 7) -> str:
    """Log-like ASCII lines, ``n_chars`` long (a 1 MB random block, repeated)."""
    rng = random.Random(seed)
    words = ["GET", "POST", "/v1/users", "/v1/orders", "status=200", "status=500", "timeout"]
    lines = []
    size = 0
    while size < 1 << 20:
        line = f"2024-03-01T{rng.randrange(24):02d}:00:00Z " + " ".join(rng.choices(words, k=6))
        lines.append(line)
        size += len(line) + 1
    block = "\n".join(lines) + "\n"
    return (block * (n_chars // len(block) + 1))[:n_chars]


class DirectHost:
    """Answers in the calling thread."""

    def llm_query(self, prompt: str, model: str | None = None) -> str:
        return "ok"

    def llm_query_batched(self, prompts: Sequence[str], model: str | None = None) -> list[str]:
        return ["ok"] * len(prompts)

    def llm_map(
        self,
        instruction: str,
        items: Sequence[str],
        labels: Sequence[str] | None = None,
        model: str | None = None,
        examples: Sequence[tuple[str, str]] | None = None,
    ) -> list[str | None]:
        return ["ok"] * len(items)

    def rlm_query(self, prompt: str, context: object = None) -> str:
        return "ok"


class LoopHost(DirectHost):
    """Answers on the event loop, waited for from the calling thread, as the engine does."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop

    def _wait(self, coro: Coroutine[Any, Any, str]) -> str:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result()

    def llm_query(self, prompt: str, model: str | None = None) -> str:
        async def answer() -> str:
            return "ok"

        return self._wait(answer())


def new_sandbox(mode: str) -> Sandbox:
    if mode == "inprocess":
        return InProcessRepl()
    return ProcessSandbox(mode=mode)  # type: ignore[arg-type]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.3f} ms"


def quantile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def measure_startup(mode: str, context: str, starts: int) -> dict[str, float]:
    totals, decode, confine = [], [], []
    for _ in range(starts):
        sandbox = new_sandbox(mode)
        began = time.perf_counter()
        await sandbox.start(context, DirectHost())
        totals.append(time.perf_counter() - began)
        if isinstance(sandbox, ProcessSandbox):  # the worker's own account of its start-up
            decode.append(float(sandbox.info.get("decode_s", 0.0)))
            confine.append(float(sandbox.info.get("confine_s", 0.0)))
        result = await sandbox.execute("print(len(context))")
        if result.output.strip() != str(len(context)):
            raise RuntimeError(f"{mode}: the worker sees a different context: {result}")
        await sandbox.close()
    return {
        "median_s": statistics.median(totals),
        "min_s": min(totals),
        "max_s": max(totals),
        "worker_decode_median_s": statistics.median(decode) if decode else 0.0,
        "worker_confine_median_s": statistics.median(confine) if confine else 0.0,
    }


async def measure_cells(sandbox: Sandbox, cells: int) -> dict[str, float]:
    for _ in range(20):
        await sandbox.execute("x = 1")
    times = []
    for _ in range(cells):
        began = time.perf_counter()
        result = await sandbox.execute("x = 1")
        times.append(time.perf_counter() - began)
        if result.error:
            raise RuntimeError(result.error)
    return {"median_s": statistics.median(times), "p90_s": quantile(times, 0.9), "n": cells}


async def measure_subcalls(sandbox: Sandbox, calls: int) -> float:
    code = f"for _ in range({calls}):\n    llm_query('ping')"
    await sandbox.execute(code.replace(str(calls), "50"))
    per_call = []
    for _ in range(5):
        began = time.perf_counter()
        result = await sandbox.execute(code)
        per_call.append((time.perf_counter() - began) / calls)
        if result.error:
            raise RuntimeError(result.error)
    return statistics.median(per_call)


async def bench_mode(mode: str, context: str, args: argparse.Namespace) -> dict[str, Any]:
    report: dict[str, Any] = {"startup": await measure_startup(mode, context, args.starts)}
    sandbox = new_sandbox(mode)
    await sandbox.start(context, DirectHost())
    try:
        report["cell"] = await measure_cells(sandbox, args.cells)
        report["subcall_direct_s"] = await measure_subcalls(sandbox, args.calls)
    finally:
        await sandbox.close()
    sandbox = new_sandbox(mode)
    await sandbox.start(context, LoopHost(asyncio.get_running_loop()))
    try:
        report["subcall_loop_s"] = await measure_subcalls(sandbox, args.calls)
    finally:
        await sandbox.close()
    return report


def check(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    context = make_context(int(args.context_mb * 1_000_000))
    began = time.perf_counter()
    fd, _ = write_context_file(context)
    os.close(fd)
    write_s = time.perf_counter() - began
    print(f"context: {len(context):,} chars; writing the context file: {ms(write_s)}")
    results: dict[str, Any] = {
        "context_chars": len(context),
        "context_write_s": write_s,
        "machine": {
            "python": platform.python_version(),
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
        },
        "modes": {},
    }
    header = f"{'mode':<10} {'start-up':>12} {'cell median':>12} {'cell p90':>12}"
    header += f" {'sub-call':>12} {'sub-call/loop':>14}"
    print(header)
    for mode in args.modes.split(","):
        report = await bench_mode(mode, context, args)
        results["modes"][mode] = report
        print(
            f"{mode:<10} {ms(report['startup']['median_s']):>12} "
            f"{ms(report['cell']['median_s']):>12} {ms(report['cell']['p90_s']):>12} "
            f"{ms(report['subcall_direct_s']):>12} {ms(report['subcall_loop_s']):>14}"
        )
    print()
    for mode, report in results["modes"].items():
        if mode == "inprocess":
            continue
        startup = report["startup"]
        print(
            f"{mode:<10} start-up: worker decoded the context in "
            f"{ms(startup['worker_decode_median_s'])}, confined itself in "
            f"{ms(startup['worker_confine_median_s'])} (medians)"
        )
    print()
    for mode, report in results["modes"].items():
        if mode == "inprocess":
            continue
        verdicts = (
            f"start-up {check(report['startup']['median_s'] < TARGETS['startup_s'])}",
            f"cell {check(report['cell']['median_s'] < TARGETS['cell_s'])}",
            f"sub-call {check(report['subcall_loop_s'] < TARGETS['subcall_s'])}",
        )
        print(f"{mode:<10} " + ", ".join(verdicts))
    return results


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--context-mb", type=float, default=100.0)
    parser.add_argument("--modes", default="inprocess,none,default,strict")
    parser.add_argument("--cells", type=int, default=500)
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--starts", type=int, default=7)
    parser.add_argument("--json-out", help="write the figures as JSON")
    args = parser.parse_args(argv)
    results = asyncio.run(main_async(args))
    if args.json_out:
        with open(args.json_out, "w", encoding="utf-8") as out:
            json.dump(results, out, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
