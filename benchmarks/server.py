"""What the trajectory store and the HTTP service cost.

python benchmarks/server.py [--events 20000] [--repeats 10] [--json-out server.json]

Everything runs on this machine against scripted models and a scratch store; nothing leaves
loopback. Three figures:

1. SQLite write rate: ``--events`` synthetic events (a mix like a real run's: root replies with
   code, cell outputs, sub-calls with 2 KB prompts) recorded one by one through
   :class:`~rlmx.trajectory.sqlite.SqliteRecorder`, each in its own committed transaction, as a
   run records them (WAL, ``synchronous=NORMAL``).
2. SSE rate: the same events sent over ``GET /v1/runs/{id}/events`` to one client, (a) replayed
   from the store after the run, (b) live: a thread records them as fast as it can while the
   client follows the stream; events per second as the client receives them.
3. Service overhead: one scripted run (``--iterations`` iterations, each a cell with two
   sub-calls; model latency ``--latency`` s) made through the Python API (``RLM.arun``), and the
   same run made through the service (``POST /v1/runs``, then the SSE stream to its end, which
   is when a client knows the answer). Both use the default sandbox. Runs alternate, ``--repeats``
   times each; medians are compared. The API run is timed once without a recorder and once with
   the SQLite recorder, so the figure separates recording from HTTP.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from rlmx import RLM, Limits, ScriptedModel
from rlmx.config import Settings
from rlmx.providers.scripted import Rule
from rlmx.server import ServerConfig, ServerHandle, create_app
from rlmx.trajectory import CellExecuted, Event, RootReply, RunFinished, RunStarted, SubCall
from rlmx.trajectory.sqlite import SqliteRecorder
from rlmx.trajectory.store import RunStore

USAGE = {"prompt_tokens": 900, "completion_tokens": 60, "total_tokens": 960, "calls": 1}


def synthetic(run_id: str, n: int) -> list[Event]:
    """A run of about ``n`` events shaped like a real one."""
    events: list[Event] = [
        RunStarted(
            run_id=run_id,
            query="What is the vault code?",
            context={"kind": "str", "chars": 3_000_000, "lines": 60_000},
            root_model="scripted:bench",
            sub_model="scripted:bench",
            limits={"max_iterations": 30},
        )
    ]
    code = "hits = [m.start() for m in re.finditer('vault', context)]\nprint(hits[:20])\n" * 3
    i = 0
    while len(events) < n - 1:
        i += 1
        events.append(
            RootReply(
                run_id=run_id,
                iteration=i,
                text="Let me look.\n```repl\n" + code + "```",
                usage=USAGE,
                latency_s=0.5,
                cost_usd=0.0004,
                model="scripted:bench",
            )
        )
        for k in range(3):
            events.append(
                SubCall(
                    run_id=run_id,
                    depth=1,
                    call_id=f"{run_id}.{i}.{k}",
                    kind="llm",
                    model="scripted:bench",
                    prompt="Find the code in this chunk:\n" + "lorem ipsum " * 170,
                    response="no code here",
                    usage=USAGE,
                    latency_s=0.3,
                    cost_usd=0.0001,
                )
            )
        events.append(
            CellExecuted(
                run_id=run_id,
                iteration=i,
                index=0,
                code=code,
                output="[1024, 88213, 412345]\n" * 10,
                error=None,
                final=None,
                duration_s=0.01,
            )
        )
    events = events[: n - 1]
    events.append(RunFinished(run_id=run_id, result={"status": "completed", "answer": "x"}))
    return events


def bench_writes(folder: Path, n: int) -> dict[str, float]:
    events = synthetic("writes", n)
    with RunStore(folder / "writes.db") as store:
        recorder = SqliteRecorder(store)
        started = time.perf_counter()
        for event in events:
            recorder.on_event(event)
        elapsed = time.perf_counter() - started
    size = (folder / "writes.db").stat().st_size
    return {"events": n, "seconds": elapsed, "events_per_s": n / elapsed, "db_mb": size / 1e6}


def _count_stream(url: str, run_id: str) -> tuple[int, float]:
    count = 0
    with (
        httpx.Client(base_url=url, timeout=120) as client,
        client.stream("GET", f"/v1/runs/{run_id}/events") as response,
    ):
        started = time.perf_counter()
        for line in response.iter_lines():
            if line.startswith('data: {"type"'):
                count += 1
            elif line.startswith("event: end"):
                break
        return count, time.perf_counter() - started


def bench_sse(folder: Path, n: int) -> dict[str, dict[str, float]]:
    config = ServerConfig(db_path=folder / "sse.db", settings=Settings(env={}))
    app = create_app(config)
    services = app.state.services
    with ServerHandle(app) as url:
        recorder = SqliteRecorder(services.store)
        for event in synthetic("replayed", n):
            recorder.on_event(event)
        count, elapsed = _count_stream(url, "replayed")
        replay = {"events": count, "seconds": elapsed, "events_per_s": count / elapsed}

        live_events = synthetic("live", n)
        services.store.create_run("live", query="q", source="bench")
        services.hub.open("live")
        live_recorder = SqliteRecorder(services.store, listener=services.hub.listener)

        def write() -> None:
            time.sleep(0.2)  # the client is connected by then
            for event in live_events:
                live_recorder.on_event(event)
            services.hub.close("live")

        writer = threading.Thread(target=write)
        writer.start()
        count, elapsed = _count_stream(url, "live")
        writer.join()
        live = {"events": count, "seconds": elapsed - 0.2, "events_per_s": count / (elapsed - 0.2)}
    return {"replay": replay, "live": live}


def script(iterations: int, latency: float) -> ScriptedModel:
    cell = "```repl\nparts = llm_query_batched(['SUB a', 'SUB b'])\nprint(len(context), parts)\n```"
    replies = [cell] * iterations + ["```repl\nFINAL('done')\n```"]
    return ScriptedModel(replies, rules=[Rule("SUB", "sub reply")], latency_s=latency)


async def api_run(iterations: int, latency: float, store: RunStore | None) -> float:
    recorder = SqliteRecorder(store) if store is not None else None
    rlm = RLM(model=script(iterations, latency), limits=Limits(), recorder=recorder)
    started = time.perf_counter()
    result = await rlm.arun("What is the code?", "the code is ZETA-42\n" * 1000)
    elapsed = time.perf_counter() - started
    assert result.status == "completed", result.error
    return elapsed


def service_run(client: httpx.Client, spec: str) -> float:
    started = time.perf_counter()
    body = {"query": "What is the code?", "text": "the code is ZETA-42\n" * 1000, "model": spec}
    run_id = client.post("/v1/runs", json=body).json()["id"]
    with client.stream("GET", f"/v1/runs/{run_id}/events") as response:
        for line in response.iter_lines():
            if line.startswith("event: end"):
                break
    elapsed = time.perf_counter() - started
    run = client.get(f"/v1/runs/{run_id}").json()
    assert run["status"] == "completed", run
    return elapsed


@contextmanager
def served_process(folder: Path) -> Iterator[str]:
    """``rlmx serve`` in a process of its own, as a user runs it; yields its URL."""
    env = {**os.environ, "RLMX_HOME": str(folder / "home")}
    command = [sys.executable, "-m", "rlmx", "serve", "--port", "0"]
    command += ["--db", str(folder / "service.db"), "--allow-path", str(folder)]
    process = subprocess.Popen(command, stderr=subprocess.PIPE, text=True, env=env)
    assert process.stderr is not None
    try:
        for line in process.stderr:
            match = re.search(r"(http://127\.0\.0\.1:\d+)", line)
            if match:
                yield match.group(1)
                break
        else:
            raise RuntimeError("rlmx serve printed no URL")
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(15)
        process.stderr.close()


def bench_overhead(folder: Path, iterations: int, latency: float, repeats: int) -> dict[str, Any]:
    spec_file = folder / "script.json"
    model = script(iterations, latency)
    spec_file.write_text(
        json.dumps(
            {
                "responses": model._responses,
                "rules": [{"contains": "SUB", "reply": "sub reply"}],
                "latency_s": latency,
            }
        )
    )
    times: dict[str, list[float]] = {"api": [], "api_recorded": [], "service": []}
    with (
        served_process(folder) as url,
        httpx.Client(base_url=url, timeout=120) as client,
        RunStore(folder / "api.db") as store,
    ):
        service_run(client, "scripted:script.json")  # warm up both paths
        asyncio.run(api_run(iterations, latency, None))
        for _ in range(repeats):
            times["api"].append(asyncio.run(api_run(iterations, latency, None)))
            times["api_recorded"].append(asyncio.run(api_run(iterations, latency, store)))
            times["service"].append(service_run(client, "scripted:script.json"))
    medians = {name: statistics.median(values) for name, values in times.items()}
    return {
        "iterations": iterations,
        "latency_s": latency,
        "repeats": repeats,
        "median_s": medians,
        "overhead_vs_api_pct": 100 * (medians["service"] / medians["api"] - 1),
        "overhead_vs_recorded_api_pct": 100 * (medians["service"] / medians["api_recorded"] - 1),
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--iterations", type=int, default=5)
    parser.add_argument("--latency", type=float, nargs="+", default=[0.0, 0.05])
    parser.add_argument("--json-out", type=Path)
    args = parser.parse_args(argv)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"python {platform.python_version()} · {os.cpu_count()} CPUs · load {load:.2f}")
    report: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="rlmx-bench-") as scratch:
        folder = Path(scratch)
        writes = report["sqlite_writes"] = bench_writes(folder, args.events)
        print(
            f"SQLite: {writes['events_per_s']:,.0f} events/s recorded "
            f"({writes['events']:,} events, one commit each, {writes['db_mb']:.1f} MB)"
        )
        sse = report["sse"] = bench_sse(folder, args.events)
        for mode in ("replay", "live"):
            print(f"SSE {mode}: {sse[mode]['events_per_s']:,.0f} events/s to one client")
        report["overhead"] = []
        for latency in args.latency:
            o = bench_overhead(folder, args.iterations, latency, args.repeats)
            report["overhead"].append(o)
            m = o["median_s"]
            print(
                f"run of {o['iterations']} iterations, model latency {latency * 1000:.0f} ms: "
                f"API {m['api'] * 1000:.0f} ms, API+SQLite {m['api_recorded'] * 1000:.0f} ms, "
                f"service {m['service'] * 1000:.0f} ms -> overhead "
                f"{o['overhead_vs_api_pct']:+.1f} % ({o['overhead_vs_recorded_api_pct']:+.1f} % "
                "vs the recorded API run)"
            )
    if args.json_out:
        args.json_out.write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
