"""Beyond one machine: what spreading the work costs and gains.

python benchmarks/scale.py --pools [--calls 512] [--latency 0.5] [--slots 8]
    [--sizes 1,2,4,8] [--json-out scale.json]
python benchmarks/scale.py --corpus /tmp/corpus [--files 5000] [--corpus-gb 2.1]
python benchmarks/scale.py --overhead [--tiny-calls 8]

(a) ``--pools``: endpoint pools. Simulated OpenAI-compatible servers, each answering a chat
completion after ``--latency`` seconds and holding at most ``--slots`` calls at once (the
rest queue, like a vLLM server at ``--max-num-seqs`` or llama.cpp at ``-np``), run in a child
process on loopback. For each pool size N in ``--sizes``, ``--calls`` sub-calls are made
through a pool of N such servers (a :class:`~rlmx.providers.pool.PoolClient`, ``--slots`` in
flight per endpoint) in two ways: the pool alone (every call awaited at once), and a whole
``RLM`` run whose scripted root sends them in one ``llm_query_batched`` (``concurrency`` set
to the slots of the largest pool, so the pool's own limits are what bound each case). Printed:
wall time of each against the ideal, ``calls * latency / (slots * N)``, and how the calls were
spread over the endpoints.

(b) ``--corpus DIR``: ``count``, ``search_files`` and ``grep`` over a generated corpus of log
files (``--files`` files, ``--corpus-gb`` GB in all, made in DIR if it is not there), in one
process (the local executor) and on a local Ray of 1 and of 2 worker processes (``num_cpus``),
each against ``grep -c`` over the same files; both called on the executor, and called by model
code (a scripted root's cells in the default sandbox: the worker scans itself with the local
executor, and asks the host, which asks Ray, with the Ray one). The files are read once first,
so every figure is over a warm page cache.

(c) ``--overhead``: the executor's own cost on a tiny job: starting a local Ray, then an
``RLM`` run whose scripted root makes ``--tiny-calls`` sub-calls (one ``llm_query_batched``),
and a ``count`` over a directory of 10 small files (called on the executor, and by model code
in a cell), with the local and the Ray executor.

Nothing leaves loopback and no model runs, so no lock is needed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import time
from collections.abc import Sequence
from typing import Any

from rlmx import RLM, Limits
from rlmx.config import Settings
from rlmx.providers.pool import PoolClient
from rlmx.providers.pool_spec import Endpoint
from rlmx.providers.scripted import ScriptedModel
from rlmx.sandbox.process import sandbox_factory
from rlmx.types import Message, RunResult

REPLY = json.dumps(
    {
        "id": "chatcmpl-sim",
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": "sim",
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}
        ],
        "usage": {"prompt_tokens": 12, "completion_tokens": 1, "total_tokens": 13},
    }
).encode()


async def _endpoint(port_out: Any, latency: float, slots: int) -> None:
    """One simulated server: HTTP/1.1 with keep-alive, ``slots`` answers at once."""
    gate = asyncio.Semaphore(slots)

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":", 1)[1])
                await reader.readexactly(length)
                if head.startswith(b"POST"):
                    async with gate:
                        await asyncio.sleep(latency)
                body = REPLY if head.startswith(b"POST") else b'{"object":"list","data":[]}'
                writer.write(
                    b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
                    + f"content-length: {len(body)}\r\n\r\n".encode()
                    + body
                )
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0, backlog=512)
    port_out.put(server.sockets[0].getsockname()[1])
    await server.serve_forever()


def _serve(count: int, latency: float, slots: int, port_out: Any) -> None:
    async def all_of() -> None:
        await asyncio.gather(*(_endpoint(port_out, latency, slots) for _ in range(count)))

    asyncio.run(all_of())


def start_endpoints(
    count: int, latency: float, slots: int
) -> tuple[multiprocessing.Process, list[str]]:
    ports: Any = multiprocessing.Queue()
    child = multiprocessing.Process(target=_serve, args=(count, latency, slots, ports), daemon=True)
    child.start()
    urls = [f"http://127.0.0.1:{ports.get(timeout=30)}/v1" for _ in range(count)]
    return child, urls


def make_pool(urls: Sequence[str], slots: int) -> PoolClient:
    endpoints = [Endpoint(url, max_in_flight=slots) for url in urls]
    return PoolClient(endpoints, model="sim", preset="vllm")


async def pool_alone(urls: Sequence[str], calls: int, slots: int) -> tuple[float, list[int]]:
    pool = make_pool(urls, slots)
    started = time.perf_counter()
    await asyncio.gather(*(pool.complete([Message("user", f"item {i}")]) for i in range(calls)))
    wall = time.perf_counter() - started
    spread = [s.calls for s in pool.stats()]
    await pool.aclose()
    return wall, spread


def through_rlm(urls: Sequence[str], calls: int, slots: int, concurrency: int) -> tuple[float, int]:
    pool = make_pool(urls, slots)
    code = (
        f"answers = llm_query_batched([f'item {{i}}' for i in range({calls})])\n"
        "FINAL(str(sum(a == 'ok' for a in answers)))"
    )
    root = ScriptedModel([f"```repl\n{code}\n```"])
    rlm = RLM(
        model=root,
        sub_model=pool,
        limits=Limits(concurrency=concurrency, timeout_s=600),
        sandbox=sandbox_factory("none"),
        settings=Settings(env={}),
        cache=False,
    )

    async def run() -> tuple[RunResult, float]:
        started = time.perf_counter()
        try:
            result = await rlm.arun("answer every item", "context")
            return result, time.perf_counter() - started
        finally:
            await pool.aclose()  # in the loop that opened its connections

    result, wall = asyncio.run(run())
    if result.status != "completed" or result.answer != str(calls):
        raise SystemExit(f"the run did not answer every call: {result.status} {result.answer}")
    return wall, result.usage.sub.calls


def pools(args: argparse.Namespace) -> list[dict[str, Any]]:
    sizes = [int(n) for n in args.sizes.split(",")]
    child, urls = start_endpoints(max(sizes), args.latency, args.slots)
    rows = []
    try:
        for n in sizes:
            ideal = args.calls * args.latency / (args.slots * n)
            alone, spread = asyncio.run(pool_alone(urls[:n], args.calls, args.slots))
            run_wall, counted = through_rlm(
                urls[:n], args.calls, args.slots, args.slots * max(sizes)
            )
            row = {
                "endpoints": n,
                "ideal_s": round(ideal, 3),
                "pool_s": round(alone, 3),
                "rlm_s": round(run_wall, 3),
                "pool_over_ideal": round(alone / ideal, 3),
                "rlm_over_ideal": round(run_wall / ideal, 3),
                "calls_per_endpoint": spread,
                "sub_calls_counted": counted,
            }
            rows.append(row)
            print(
                f"{n} endpoint(s): ideal {ideal:6.2f} s  pool {alone:6.2f} s "
                f"({alone / ideal:.2f}x)  RLM run {run_wall:6.2f} s ({run_wall / ideal:.2f}x)  "
                f"spread {spread}  counted {counted}",
                flush=True,
            )
    finally:
        child.terminate()
        child.join(5)
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pools", action="store_true", help="(a) endpoint pools")
    parser.add_argument("--calls", type=int, default=512)
    parser.add_argument("--latency", type=float, default=0.5)
    parser.add_argument("--slots", type=int, default=8)
    parser.add_argument("--sizes", default="1,2,4,8")
    parser.add_argument("--json-out", metavar="FILE")
    parser.add_argument("--corpus", metavar="DIR", help="(b) count, search_files, grep on Ray")
    parser.add_argument("--files", type=int, default=5000)
    parser.add_argument("--corpus-gb", type=float, default=2.1)
    parser.add_argument("--overhead", action="store_true", help="(c) the Ray executor's cost")
    parser.add_argument("--tiny-calls", type=int, default=8)
    args = parser.parse_args(argv)
    if not (args.pools or args.corpus or args.overhead):
        parser.error("choose a benchmark: --pools, --corpus DIR or --overhead")
    report: dict[str, Any] = {}
    if args.pools:
        report["pools"] = {
            "calls": args.calls,
            "latency_s": args.latency,
            "slots": args.slots,
            "rows": pools(args),
        }
    if args.corpus:
        from scale_ray import corpus_scan

        report["corpus"] = corpus_scan(args.corpus, args.files, args.corpus_gb)
    if args.overhead:
        from scale_ray import overhead

        report["overhead"] = overhead(args.tiny_calls)
    if args.json_out:
        with open(args.json_out, "w", encoding="utf-8") as out:
            json.dump(report, out, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
