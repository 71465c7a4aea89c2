"""Engine overhead of rlmx: what the loop itself costs, apart from the models.

python benchmarks/overhead.py [--json-out overhead.json]

Everything runs against :class:`~rlmx.providers.scripted.ScriptedModel`, so no network and no
model is involved, and the numbers measure rlmx alone. Two things are measured.

1. Engine time per iteration, on a generated context of ``--context-mb`` MB (a ``str`` of
   log-like lines from a seeded RNG). The root model is scripted with latency 0; each reply
   holds one small ```repl cell that does O(1) work (``x = 1``, ``print(len(context))``, a
   short slice, ``SHOW_VARS()``, ...) and the last reply calls ``FINAL``. Method:

   - Difference of runs. The same scripted run is made with 1 iteration (only the ``FINAL``
     cell) and with ``1 + N`` iterations; ``(T[1+N] - T[1]) / N`` is the cost of one
     iteration, where ``T`` is the run's wall time minus the model latency reported in its
     ``RootReply`` events (zero here). One-time costs (hashing the context, the system prompt,
     starting the REPL) cancel out in the difference. The pair is measured ``--repeats``
     times, interleaved, and the median is reported. The same difference is also taken with
     ``T`` = the span from the ``RunStarted`` to the ``RunFinished`` event (minus model
     latency), which leaves out ``describe_context`` and so the noise of hashing 100 MB.
   - Distribution from events. In the ``1 + N`` runs, the gap between the ``ts`` of two
     consecutive ``RootReply`` events covers exactly one iteration of the loop: parsing the
     reply, running its cell (in a fresh thread), formatting the output, the budget checks,
     the next (zero-latency) root call and the recorder. Median, p90 and max of these gaps are
     reported, and the same gaps minus the cell's own ``CellExecuted.duration_s`` (the
     engine's bookkeeping without the user code and its compilation).
   - Scaling check. The span difference is measured on a 1 MB slice of the context too, in
     turn with the full context: if anything in the loop were O(context), the 100 MB figure
     would be about 100x larger.

   The one-time setup cost, ``describe_context`` (SHA-256 and line count of the whole
   context, done once per run), is timed on its own, as is a whole 1-iteration run.

2. ``llm_query_batched`` of ``--batch`` prompts to a sub-model with ``--sub-latency`` s of
   latency, inside one cell: the cell's wall time is its ``CellExecuted.duration_s``. It is
   measured with the default ``Limits().concurrency`` (the tree-wide cap on concurrent
   sub-calls) and, when the batch is larger than that, with ``concurrency`` equal to the batch
   size. It is compared with a cell that calls ``llm_query`` in a plain loop; with
   ``--sequential-calls`` below the batch size the loop's time is extrapolated linearly to the
   batch size, and the report says so.

The Python version, CPU count and 1-minute load average are printed first: on a small or busy
machine, thread scheduling makes single iterations noisy (see p90 and max), so compare medians.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import platform
import random
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import rlmx
from rlmx import RLM, Limits
from rlmx.context import describe_context
from rlmx.providers.scripted import Rule, ScriptedModel
from rlmx.sandbox import InProcessRepl, SandboxFactory, sandbox_factory
from rlmx.trajectory.events import (
    CellExecuted,
    Event,
    RootReply,
    RunFinished,
    RunStarted,
    SubCall,
)

QUERY = "How many requests failed with a timeout?"

# Cells that do realistic-looking but O(1) work, so the loop's cost is what gets measured.
CELLS = (
    "x = 1",
    "print(len(context))",
    "n = len(context) // 2\nprint(n)",
    "print(context[:80])",
    "SHOW_VARS()",
    "head = context[:200]\nprint(head.count(' '))",
    "notes = {'seen': x}\nnotes",
)
FINAL_REPLY = 'That is enough.\n```repl\nFINAL("done")\n```'

SUB_RULE = "Summarise chunk"
SUB_REPLY = "summary: nothing unusual"
CHUNK_CHARS = 2_000

_LEVELS = ("INFO", "INFO", "INFO", "INFO", "DEBUG", "WARN", "ERROR")
_SERVICES = ("api-gateway", "auth", "billing", "search", "storage", "scheduler", "mailer")
_PATHS = ("/v1/users", "/v1/orders", "/v1/search", "/v1/login", "/healthz", "/v1/invoices")
_MESSAGES = (
    "GET {path} status=200 bytes={n} latency_ms={ms}",
    "POST {path} status=201 bytes={n} latency_ms={ms}",
    "GET {path} status=404 bytes=0 latency_ms={ms}",
    "request {rid} to {path} failed: upstream timeout after {ms} ms",
    "cache miss for key user:{n} (ttl expired)",
    "worker {n} picked job {rid} from queue default",
    "retrying {path} (attempt {a} of 3) after connection reset",
    "session {rid} refreshed for user {n}",
)


@dataclass(frozen=True, slots=True)
class RunMeasure:
    wall_s: float
    model_latency_s: float
    events: list[Event]

    @property
    def engine_s(self) -> float:
        """The run's wall time minus model latency."""
        return self.wall_s - self.model_latency_s

    @property
    def span_s(self) -> float:
        """``RunStarted`` to ``RunFinished`` minus model latency: leaves out describe_context."""
        started = next(e.ts for e in self.events if isinstance(e, RunStarted))
        finished = next(e.ts for e in self.events if isinstance(e, RunFinished))
        return finished - started - self.model_latency_s


class ListRecorder:
    """Keeps every event in memory."""

    def __init__(self) -> None:
        self.events: list[Event] = []

    def on_event(self, event: Event) -> None:
        self.events.append(event)


# Context ------------------------------------------------------------------------------------


def make_context(n_chars: int, seed: int) -> str:
    """``n_chars`` of log lines with increasing timestamps, from a seeded RNG."""
    rng = random.Random(seed)
    bodies = []
    for _ in range(20_000):
        template = rng.choice(_MESSAGES)
        message = template.format(
            path=rng.choice(_PATHS),
            n=rng.randrange(1, 100_000),
            ms=rng.randrange(1, 5_000),
            rid=f"{rng.getrandbits(48):012x}",
            a=rng.randrange(1, 4),
        )
        bodies.append(f"{rng.choice(_LEVELS):<5} [{rng.choice(_SERVICES)}] {message}\n")
    count = int(n_chars / (sum(map(len, bodies)) / len(bodies) + 21) * 1.02) + 1
    picked = rng.choices(bodies, k=count)
    # One timestamp a second, spread over a day; joining in C keeps this to about a second.
    chunks = []
    for second in range(86_400):
        h, rest = divmod(second, 3600)
        m, s = divmod(rest, 60)
        stamp = f"2024-03-01T{h:02d}:{m:02d}:{s:02d}Z "
        lo, hi = second * count // 86_400, (second + 1) * count // 86_400
        chunks.append(stamp + stamp.join(picked[lo:hi]) if hi > lo else "")
    text = "".join(chunks)
    if len(text) < n_chars:  # the estimate was short; top up with more of the same
        text += text[: n_chars - len(text)]
    return text[:n_chars]


# Runs ---------------------------------------------------------------------------------------


def overhead_replies(iterations: int) -> list[str]:
    """``iterations`` root replies: ``iterations - 1`` O(1) cells, then ``FINAL``."""
    replies = [
        f"Step {i}: looking at the data.\n```repl\n{CELLS[i % len(CELLS)]}\n```"
        for i in range(iterations - 1)
    ]
    return [*replies, FINAL_REPLY]


# Which REPL the runs use: set once from --sandbox in main().
SANDBOX: list[SandboxFactory] = [InProcessRepl]


async def timed_run(
    root: ScriptedModel,
    sub: ScriptedModel,
    context: str,
    limits: Limits,
    *,
    expect_iterations: int,
) -> RunMeasure:
    recorder = ListRecorder()
    rlm = RLM(model=root, sub_model=sub, limits=limits, recorder=recorder, sandbox=SANDBOX[0])
    started = time.perf_counter()
    result = await rlm.arun(QUERY, context)
    wall = time.perf_counter() - started
    await rlm.aclose()
    if result.status != "completed" or result.answer != "done":
        raise RuntimeError(f"benchmark run did not complete: {result.status} {result.error}")
    if result.iterations != expect_iterations:
        raise RuntimeError(f"expected {expect_iterations} iterations, got {result.iterations}")
    latency = sum(e.latency_s for e in recorder.events if isinstance(e, RootReply))
    return RunMeasure(wall_s=wall, model_latency_s=latency, events=recorder.events)


async def overhead_run(context: str, iterations: int) -> RunMeasure:
    root = ScriptedModel(overhead_replies(iterations), name="overhead-root")
    limits = Limits(max_iterations=iterations + 1)
    return await timed_run(root, root, context, limits, expect_iterations=iterations)


def iteration_gaps(run: RunMeasure) -> tuple[list[float], list[float]]:
    """Per-iteration gaps between consecutive root replies, and the same minus the cell time."""
    replies = sorted((e for e in run.events if isinstance(e, RootReply)), key=lambda e: e.iteration)
    cell_s: dict[int, float] = {}
    for e in run.events:
        if isinstance(e, CellExecuted):
            cell_s[e.iteration] = cell_s.get(e.iteration, 0.0) + e.duration_s
    gaps, bookkeeping = [], []
    for prev, nxt in itertools.pairwise(replies):
        gap = nxt.ts - prev.ts - nxt.latency_s
        gaps.append(gap)
        bookkeeping.append(gap - cell_s.get(prev.iteration, 0.0))
    return gaps, bookkeeping


@dataclass(frozen=True, slots=True)
class Overhead:
    per_iteration: list[float]  # (T[1+extra] - T[1]) / extra, T = wall time - model latency
    per_iteration_span: list[float]  # the same with T = the RunStarted..RunFinished span
    one_iteration_runs: list[float]  # T[1]: setup, one FINAL cell, teardown
    long_runs: list[RunMeasure]


async def measure_overhead(contexts: Sequence[str], extra: int, repeats: int) -> list[Overhead]:
    """For each context, ``repeats`` pairs of runs with 1 and ``1 + extra`` iterations.

    The contexts take turns within each repeat, so that a burst of noise on the machine
    does not land on one context's figures only.
    """
    results = [Overhead([], [], [], []) for _ in contexts]
    for _ in range(repeats):
        for context, result in zip(contexts, results, strict=True):
            one = await overhead_run(context, 1)
            many = await overhead_run(context, 1 + extra)
            result.per_iteration.append((many.engine_s - one.engine_s) / extra)
            result.per_iteration_span.append((many.span_s - one.span_s) / extra)
            result.one_iteration_runs.append(one.engine_s)
            result.long_runs.append(many)
    return results


def batch_cell(n: int) -> str:
    return (
        f"prompts = [f'{SUB_RULE} {{i}}: ' + context[i * {CHUNK_CHARS}:(i + 1) * {CHUNK_CHARS}]"
        f" for i in range({n})]\n"
        "answers = llm_query_batched(prompts)\n"
        "print(len(answers), sum(a.startswith('ERROR') for a in answers))"
    )


def sequential_cell(n: int) -> str:
    return (
        "answers = []\n"
        f"for i in range({n}):\n"
        f"    chunk = context[i * {CHUNK_CHARS}:(i + 1) * {CHUNK_CHARS}]\n"
        f"    answers.append(llm_query(f'{SUB_RULE} {{i}}: ' + chunk))\n"
        "print(len(answers), sum(a.startswith('ERROR') for a in answers))"
    )


@dataclass(frozen=True, slots=True)
class CellTiming:
    cell_s: float
    sub_calls: int
    sub_latency_total_s: float


async def subcall_cell(
    context: str, code: str, calls: int, latency: float, concurrency: int
) -> CellTiming:
    root = ScriptedModel([f"```repl\n{code}\n```", FINAL_REPLY], name="subcall-root")
    sub = ScriptedModel(rules=[Rule(SUB_RULE, SUB_REPLY)], latency_s=latency, name="sub")
    limits = Limits(max_iterations=3, concurrency=concurrency)
    run = await timed_run(root, sub, context, limits, expect_iterations=2)
    cells = [e for e in run.events if isinstance(e, CellExecuted) and e.iteration == 1]
    subs = [e for e in run.events if isinstance(e, SubCall)]
    if len(cells) != 1 or cells[0].error or cells[0].output.strip() != f"{calls} 0":
        raise RuntimeError(f"sub-call cell misbehaved: {cells}")
    if len(subs) != calls or any(e.error for e in subs):
        raise RuntimeError(f"expected {calls} successful sub-calls, got {len(subs)}")
    return CellTiming(
        cell_s=cells[0].duration_s,
        sub_calls=len(subs),
        sub_latency_total_s=sum(e.latency_s for e in subs),
    )


# Report -------------------------------------------------------------------------------------


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.2f} ms"


def quantile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def distribution(values: Sequence[float]) -> dict[str, float]:
    return {
        "median_s": statistics.median(values),
        "p90_s": quantile(values, 0.9),
        "min_s": min(values),
        "max_s": max(values),
        "n": len(values),
    }


def describe_dist(values: Sequence[float]) -> str:
    d = distribution(values)
    return (
        f"median {ms(d['median_s'])}, p90 {ms(d['p90_s'])}, "
        f"min {ms(d['min_s'])}, max {ms(d['max_s'])} (n={d['n']:.0f})"
    )


def check(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def environment() -> dict[str, Any]:
    affinity = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    return {
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "cpus_usable": affinity,
        "rlmx": rlmx.__version__,
        "load_average_1m": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
    }


async def run_benchmarks(args: argparse.Namespace) -> dict[str, Any]:
    report: dict[str, Any] = {"environment": environment()}
    env = report["environment"]
    print(
        f"Python {env['python']} ({env['implementation']}) on {env['platform']}; "
        f"cpu_count {env['cpu_count']}, usable {env['cpus_usable']}; "
        f"load average (1 min) {env['load_average_1m']}; rlmx {env['rlmx']}"
    )

    n_chars = int(args.context_mb * 1_000_000)
    started = time.perf_counter()
    context = make_context(n_chars, args.seed)
    generated_s = time.perf_counter() - started
    print(f"context: {len(context):,} chars of log lines (seed {args.seed}), {generated_s:.2f} s")

    # 1. Engine overhead ------------------------------------------------------------------
    print(
        f"\n[1] engine time per iteration "
        f"({args.iterations} extra iterations, {args.repeats} repeats)"
    )
    await overhead_run(context[:10_000], 3)  # warm-up: first thread, lazy imports, caches

    describe_s = []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        describe_context(context)
        describe_s.append(time.perf_counter() - t0)

    big, small = await measure_overhead(
        [context, context[:1_000_000]], args.iterations, args.repeats
    )
    gaps: list[float] = []
    bookkeeping: list[float] = []
    for run in big.long_runs:
        g, b = iteration_gaps(run)
        gaps += g
        bookkeeping += b

    median_iter = statistics.median(big.per_iteration)
    median_span = statistics.median(big.per_iteration_span)
    median_small = statistics.median(small.per_iteration_span)
    target_ms = 5.0
    verdict = check(median_iter * 1000 < target_ms)
    k = 1 + args.iterations
    print(
        f"  per iteration, (T[{k}] - T[1]) / {args.iterations}, T = wall - model latency: "
        f"median {ms(median_iter)}  target < {target_ms:g} ms: {verdict}"
        f"\n    all {args.repeats}: {', '.join(ms(v) for v in big.per_iteration)}"
    )
    print(
        f"  same, T = RunStarted..RunFinished span:    median {ms(median_span)}"
        f"\n    all {args.repeats}: {', '.join(ms(v) for v in big.per_iteration_span)}"
    )
    print(f"  per iteration, from RootReply gaps:         {describe_dist(gaps)}")
    print(f"  same, minus the cell's own duration_s:      {describe_dist(bookkeeping)}")
    print(
        f"  scaling check, span method on 1 MB:         median {ms(median_small)} per iteration "
        f"({args.context_mb:g} MB / 1 MB: {median_span / median_small:.2f}x)"
    )
    print(
        f"  one-time setup, describe_context on {args.context_mb:g} MB: "
        f"median {ms(statistics.median(describe_s))}"
    )
    print(
        "  whole 1-iteration run (setup + FINAL cell): "
        f"median {ms(statistics.median(big.one_iteration_runs))}"
    )
    report["overhead"] = {
        "context_chars": len(context),
        "extra_iterations": args.iterations,
        "repeats": args.repeats,
        "per_iteration_median_s": median_iter,
        "per_iteration_runs_s": big.per_iteration,
        "target_s": target_ms / 1000,
        "target_met": median_iter * 1000 < target_ms,
        "per_iteration_span_median_s": median_span,
        "per_iteration_span_runs_s": big.per_iteration_span,
        "gap_distribution": distribution(gaps),
        "gap_minus_cell_distribution": distribution(bookkeeping),
        "per_iteration_span_median_1mb_s": median_small,
        "describe_context_median_s": statistics.median(describe_s),
        "one_iteration_run_median_s": statistics.median(big.one_iteration_runs),
    }

    # 2. Batched sub-calls ----------------------------------------------------------------
    batch, latency = args.batch, args.sub_latency
    print(f"\n[2] llm_query_batched of {batch} prompts, sub-model latency {latency:g} s")
    default_conc = Limits().concurrency
    concurrencies = [default_conc] if batch <= default_conc else [default_conc, batch]
    batched: dict[int, list[CellTiming]] = {}
    for conc in concurrencies:
        batched[conc] = [
            await subcall_cell(context, batch_cell(batch), batch, latency, conc)
            for _ in range(args.batch_repeats)
        ]
    seq_calls = args.sequential_calls
    sequential = await subcall_cell(
        context, sequential_cell(seq_calls), seq_calls, latency, default_conc
    )
    seq_extrapolated = sequential.cell_s * batch / seq_calls
    seq_note = "measured" if seq_calls == batch else f"extrapolated from {seq_calls} calls"
    report["batched"] = {
        "batch": batch,
        "sub_latency_s": latency,
        "repeats": args.batch_repeats,
        "sequential_calls_measured": seq_calls,
        "sequential_cell_s": sequential.cell_s,
        "sequential_for_batch_s": seq_extrapolated,
        "sequential_is_extrapolated": seq_calls != batch,
        "by_concurrency": {},
    }
    for conc, timings in batched.items():
        cell = statistics.median(t.cell_s for t in timings)
        label = "default" if conc == default_conc else "= batch"
        print(
            f"  concurrency {conc:>2} ({label}): cell median {cell:.3f} s "
            f"(all: {', '.join(f'{t.cell_s:.3f}' for t in timings)}); "
            f"{timings[0].sub_latency_total_s:.1f} s of sub-model latency overlapped; "
            f"speed-up vs loop {seq_extrapolated / cell:.1f}x; target < 1 s: {check(cell < 1.0)}"
        )
        report["batched"]["by_concurrency"][str(conc)] = {
            "cell_median_s": cell,
            "cell_runs_s": [t.cell_s for t in timings],
            "speedup_vs_sequential": seq_extrapolated / cell,
            "target_met": cell < 1.0,
        }
    print(
        f"  sequential loop of llm_query: {seq_calls} calls in {sequential.cell_s:.3f} s -> "
        f"{seq_extrapolated:.3f} s for {batch} ({seq_note})"
    )
    return report


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--context-mb", type=float, default=100.0, help="context size, MB (10^6)")
    parser.add_argument("--iterations", type=int, default=50, help="extra iterations per run")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--batch", type=int, default=16, help="prompts in the batched cell")
    parser.add_argument("--sub-latency", type=float, default=0.5, help="sub-model latency, s")
    parser.add_argument("--batch-repeats", type=int, default=3)
    parser.add_argument(
        "--sequential-calls",
        type=int,
        default=16,
        help="llm_query calls in the sequential loop; fewer than --batch is extrapolated",
    )
    parser.add_argument(
        "--sandbox",
        choices=("inprocess", "default", "strict", "none"),
        default="inprocess",
        help="the REPL: in-process measures the engine alone; the others add the worker",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json-out", type=Path, help="also write the figures as JSON here")
    args = parser.parse_args()
    if args.sandbox != "inprocess":
        SANDBOX[0] = sandbox_factory(args.sandbox)
    if args.iterations < 1 or args.repeats < 1 or args.batch < 1 or args.sequential_calls < 1:
        parser.error("--iterations, --repeats, --batch and --sequential-calls must be positive")

    report = asyncio.run(run_benchmarks(args))
    if args.json_out is not None:
        args.json_out.parent.mkdir(parents=True, exist_ok=True)
        args.json_out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
        print(f"\nwrote {args.json_out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
