"""The cost of running ``rlm_query`` children as Ray tasks, on a tiny scripted job.

python benchmarks/scale_nested.py [--children 4] [--repeats 5] [--json-out nested.json]

A scripted root makes ``--children`` ``rlm_query`` calls, one after another, each child making
one instant sub-call and answering. The same run is timed with the local executor (each child
in this process, its REPL here) and with the Ray executor (each child a task on a local Ray of
2 CPUs: its models rebuilt from their scripts, its own REPL, its events sent back live, its
budget leased and settled), for the in-process REPL and for the confined worker process (the
default sandbox). The first Ray run (cold worker processes that import rlmx) is reported apart;
then the best of ``--repeats`` runs of each. What a remote child costs is
``(ray - local) / children``: the overhead a user pays per child for turning it on.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from rlmx import RLM
from rlmx.config import Limits
from rlmx.executors.base import Executor
from rlmx.executors.local import LocalExecutor
from rlmx.providers.scripted import ScriptedModel
from rlmx.sandbox.base import SandboxFactory
from rlmx.sandbox.inprocess import InProcessRepl
from rlmx.sandbox.process import sandbox_factory


def scripts(folder: Path, children: int) -> tuple[Path, Path]:
    calls = "\n".join(
        f"a{i} = rlm_query('[[child]] item {i}', 'text {i}')" for i in range(children)
    )
    parent = f"{calls}\nFINAL(' '.join([{', '.join(f'a{i}' for i in range(children))}]))"
    rules = [
        {"contains": "[[child]]", "reply": "```repl\nFINAL(llm_query('apple'))\n```"},
        {"contains": "[[parent]]", "reply": f"```repl\n{parent}\n```"},
    ]
    root, sub = folder / "root.json", folder / "sub.json"
    root.write_text(json.dumps({"rules": rules}), encoding="utf-8")
    sub.write_text(json.dumps({"rules": [{"contains": "", "reply": "fruit"}]}), encoding="utf-8")
    return root, sub


def timed(root: Path, sub: Path, executor: Executor, sandbox: SandboxFactory) -> float:
    rlm = RLM(
        model=ScriptedModel.from_file(root),
        sub_model=ScriptedModel.from_file(sub),
        sandbox=sandbox,
        executor=executor,
        cache=False,
        limits=Limits(max_depth=1),
    )
    started = time.perf_counter()
    result = rlm.run("[[parent]] go", "unused")
    elapsed = time.perf_counter() - started
    if result.status != "completed" or "ERROR" in (result.answer or "ERROR"):
        raise SystemExit(f"the run failed: {result.status} {result.error or result.answer}")
    return elapsed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--children", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json-out", type=Path)
    args = parser.parse_args(argv)

    import ray

    from rlmx.executors.ray import RayExecutor

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"python {platform.python_version()}, {os.cpu_count()} CPUs, load {load:.2f}")
    folder = Path(tempfile.mkdtemp(prefix="rlmx-nested-"))
    root, sub = scripts(folder, args.children)
    started = time.perf_counter()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    print(f"starting Ray: {time.perf_counter() - started:.2f} s")
    remote = RayExecutor()
    report: dict[str, Any] = {"children": args.children}
    for name, sandbox in (
        ("in-process REPL", InProcessRepl),
        ("confined worker", sandbox_factory()),
    ):
        cold = timed(root, sub, remote, sandbox)
        local = min(timed(root, sub, LocalExecutor(), sandbox) for _ in range(args.repeats))
        ray_s = min(timed(root, sub, remote, sandbox) for _ in range(args.repeats))
        each = (ray_s - local) / args.children
        report[name] = {
            "first_ray_run_s": cold,
            "local_s": local,
            "ray_s": ray_s,
            "per_child_s": each,
        }
        print(
            f"{name}: {args.children} children, local {local * 1000:.0f} ms, "
            f"Ray {ray_s * 1000:.0f} ms (first run {cold:.2f} s): "
            f"{each * 1000:+.0f} ms a child"
        )
    asyncio.run(remote.aclose())
    ray.shutdown()
    if args.json_out:
        args.json_out.write_text(json.dumps(report, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
