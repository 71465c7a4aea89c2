"""The sub-call cache: the same question twice over the same context, on the embedded models.

python benchmarks/cache.py [--sub-model local:qwen2.5-coder-1.5b] [--items 100] [--seed 1]
    [--json-out cache.json]

The question labels ``--items`` TREC questions (``data/trec_qc``) with their 6 coarse
categories: the root answers it with one ``llm_map`` over the lines of the context, which the
real embedded sub-model answers item by item (first-token logprobs, calibrated). The root is
scripted, so both runs send the sub-model exactly the same calls and the measurement isolates
them: what is timed is the whole run (context put in the store, sandbox worker started, the
map, the answer recorded), not the root model's own decoding, which the cache never touches.

Run 1 starts from an empty cache in a fresh store (a temporary file unless ``--db``); the
model is loaded before it, so neither run pays for loading. Run 2 is a new ``RLM`` with a new
cache object over the same file: every sub-call is a hit. Printed: the wall time of each run,
the speed-up, the sub-model prompt tokens and cache hits each run reports, whether the answers
are identical, and what ``rlmx cache stats`` would show.

Wrap it in ``flock /tmp/llm.lock`` on a shared machine, with ``RLMX_HOME`` set to where the
embedded models are assembled.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import tempfile
import time
from pathlib import Path
from typing import Any

from rlmx import RLM, Limits
from rlmx.bench.oolong_window import spec, trec_questions
from rlmx.config import Settings
from rlmx.providers.defaults import LOCAL_SUB
from rlmx.providers.registry import resolve_model
from rlmx.providers.scripted import ScriptedModel
from rlmx.trajectory.cache import SqliteCache
from rlmx.types import Message, RunResult

DATA = Path(__file__).resolve().parent.parent / "data"
INSTRUCTION = "Which category describes the answer to this question?"


def questions(n: int, seed: int) -> tuple[list[str], list[str]]:
    """``n`` TREC questions and the label names."""
    labels = list(spec(DATA)["labels"])
    picked = random.Random(seed).sample(list(trec_questions(DATA)), n)
    return [q for q, _ in picked], labels


def root_script(labels: list[str]) -> ScriptedModel:
    code = (
        "import json\n"
        f"answers = llm_map({INSTRUCTION!r}, context.splitlines(), labels={labels!r})\n"
        "FINAL(json.dumps(answers))"
    )
    return ScriptedModel([f"```repl\n{code}\n```"])


def one_run(sub: str, labels: list[str], context: str, db: Path) -> tuple[RunResult, float]:
    cache = SqliteCache(db)
    rlm = RLM(model=root_script(labels), sub_model=sub, limits=Limits(timeout_s=3600), cache=cache)
    started = time.perf_counter()
    result = rlm.run("Label every question with its category.", context)
    wall = time.perf_counter() - started
    cache.close()
    if result.status != "completed":
        raise SystemExit(f"run ended with status {result.status}: {result.error}")
    return result, wall


def figures(result: RunResult, wall: float) -> dict[str, Any]:
    sub = result.usage.sub
    return {
        "wall_s": round(wall, 3),
        "sub_calls": result.sub_calls,
        "sub_prompt_tokens": sub.prompt_tokens,
        "sub_completion_tokens": sub.completion_tokens,
        "sub_model_calls": sub.calls,
        "cache_hits": sub.cache_hits,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sub-model", default=LOCAL_SUB, help=f"default {LOCAL_SUB}")
    parser.add_argument("--items", type=int, default=100)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--db", help="the store to use (default: a fresh temporary file)")
    parser.add_argument("--json-out", metavar="FILE")
    args = parser.parse_args()

    items, labels = questions(args.items, args.seed)
    context = "\n".join(items)
    warm = resolve_model(args.sub_model, settings=Settings())
    asyncio.run(warm.complete([Message("user", "Say OK.")], max_tokens=2))  # load the model
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(args.db) if args.db else Path(tmp) / "store.db"
        first, first_wall = one_run(args.sub_model, labels, context, db)
        second, second_wall = one_run(args.sub_model, labels, context, db)
        store = SqliteCache(db)
        stats = store.stats().to_dict()
        store.close()
    report = {
        "sub_model": args.sub_model,
        "items": args.items,
        "seed": args.seed,
        "first": figures(first, first_wall),
        "second": figures(second, second_wall),
        "speedup": round(first_wall / second_wall, 1),
        "same_answer": first.answer == second.answer,
        "cache": stats,
    }
    print(
        f"{args.items} items, sub-model {args.sub_model}: "
        f"run 1 {first_wall:.2f} s ({first.usage.sub.prompt_tokens:,} sub prompt tokens, "
        f"{first.usage.sub.calls} model calls), run 2 {second_wall:.2f} s "
        f"({second.usage.sub.prompt_tokens:,} sub prompt tokens, "
        f"{second.usage.sub.cache_hits} cache hits): {report['speedup']}x faster; "
        f"same answer: {report['same_answer']}"
    )
    print(f"cache: {stats['entries']} answers, {stats['bytes']:,} bytes, {stats['hits']} hits")
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
