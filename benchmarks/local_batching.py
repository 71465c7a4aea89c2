"""Concurrent calls to one in-process llama.cpp model: what its parallel slots buy.

python benchmarks/local_batching.py [--model qwen2.5-coder-0.5b] [--slots 1,2,4,8]
    [--calls 64] [--repeats 3] [--task classify|generate] [--json-out batching.json]

Each configuration loads the model with ``--slots`` N slots (``RLMX_LOCAL_SLOTS``), in this
one process, one after another (``unload_all()`` in between), and makes the same ``--calls``
calls through :class:`~rlmx.providers.local.LocalClient`:

- ``classify`` (default): TREC questions (``data/trec_qc/train_5500.label``) to label with
  the 6 coarse categories. Every call shares a system prompt that lists the labels and a few
  labelled example questions, padded with more examples to about ``--prompt-tokens`` tokens
  per call; the user turn is one question. Replies are constrained with ``choices``. This is
  ``llm_map``'s shape: short, prompt-heavy calls behind a long shared prefix.
- ``generate``: each call asks for a story, cut at ``--max-tokens`` generated tokens: the
  decode-heavy shape.

Each repeat makes the calls four times: sequentially (one awaited after the other) and
concurrently (all at once through ``asyncio.gather``; the client runs N at a time), first
"cold", each behind a first line that no slot has seen (so the shared prefix is evaluated:
once when sequential, once per slot when concurrent), then "warm": the concurrent calls
again, sequentially and concurrently.
Reported per configuration, medians over the repeats: wall time, calls/s, evaluated prompt
tokens/s (prompt minus cached tokens), generated tokens/s, the gain (sequential wall time /
concurrent wall time: the throughput ratio), and the share of both cores this process used.
A repeat in which it used less than ``--min-cpu`` is made again: another process competed,
and a 2-thread llama.cpp then slows down many times over. Also: accuracy against the TREC
labels, how many warm concurrent answers differ from the sequential ones (batches of other
shapes round differently), and a two-turn conversation around a concurrent batch: how much
of its second turn's prompt came from the KV cache.
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
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from rlmx.config import Settings
from rlmx.providers.local import SLOTS_ENV, LocalClient, local_client, unload_all
from rlmx.types import Completion, Message

DATA = Path(__file__).resolve().parent.parent / "data" / "trec_qc" / "train_5500.label"
LABELS = {
    "ABBR": "an abbreviation or what one stands for",
    "DESC": "a description, definition, manner or reason",
    "ENTY": "an entity: a thing, animal, colour, event, food, product, term...",
    "HUM": "a person, a group or an organisation",
    "LOC": "a location: a city, country, mountain, state...",
    "NUM": "a number: a count, date, distance, money, percentage, period...",
}
CHARS_PER_TOKEN = 4.0  # for sizing the prefix; the measured token counts are printed
KINDS = ("sequential_cold", "sequential_warm", "concurrent_cold", "concurrent_warm")


@dataclass
class RunFigures:
    wall_s: float
    calls: int
    prompt_tokens: int
    cached_tokens: int
    completion_tokens: int
    cpu_share: float  # this process's CPU time / (wall time x cores)

    @property
    def calls_per_s(self) -> float:
        return self.calls / self.wall_s

    @property
    def prompt_per_s(self) -> float:
        return (self.prompt_tokens - self.cached_tokens) / self.wall_s

    @property
    def generated_per_s(self) -> float:
        return self.completion_tokens / self.wall_s


def read_questions(path: Path) -> list[tuple[str, str]]:
    """(question, coarse label) pairs; one byte of the file is not UTF-8."""
    pairs = []
    for line in path.read_text(encoding="latin-1").splitlines():
        label, _, question = line.partition(" ")
        pairs.append((question.strip(), label.split(":")[0]))
    return pairs


def build_classify(
    n_calls: int, prompt_tokens: int, seed: int
) -> tuple[list[list[Message]], list[str], dict[str, Any]]:
    pairs = read_questions(DATA)
    rng = random.Random(seed)
    rng.shuffle(pairs)
    tests, pool = pairs[:n_calls], pairs[n_calls:]
    head = (
        "Classify the question by the kind of answer it expects. Answer with one label:\n"
        + "\n".join(f"{label}: {meaning}" for label, meaning in LABELS.items())
        + "\nExamples:\n"
    )
    # Two examples of each label first, then more until the calls reach the size asked for.
    examples: list[tuple[str, str]] = []
    for label in LABELS:
        examples += [p for p in pool if p[1] == label][:2]
    rest = iter(p for p in pool if p not in examples)
    mean_question = statistics.mean(len(q) for q, _ in tests)

    def size(k: list[tuple[str, str]]) -> float:
        text = head + "\n".join(f"{q} -> {a}" for q, a in k)
        return (len(text) + mean_question) / CHARS_PER_TOKEN + 15  # + the chat template

    while size(examples) < prompt_tokens:
        examples.append(next(rest))
    system = head + "\n".join(f"{q} -> {a}" for q, a in examples)
    conversations = [[Message("system", system), Message("user", q)] for q, _ in tests]
    options = {"choices": list(LABELS), "temperature": 0.0}
    return conversations, [a for _, a in tests], options


def build_generate(
    n_calls: int, max_tokens: int
) -> tuple[list[list[Message]], list[str], dict[str, Any]]:
    animals = ["cat", "dog", "fox", "owl", "horse", "whale", "crow", "bear"]
    conversations = [
        [Message("user", f"Write a story of 300 words about a {animals[i % len(animals)]} (#{i}).")]
        for i in range(n_calls)
    ]
    return conversations, [], {"max_tokens": max_tokens, "temperature": 0.0}


async def timed(
    client: LocalClient,
    conversations: Sequence[Sequence[Message]],
    options: dict[str, Any],
    concurrent: bool,
) -> tuple[RunFigures, list[str]]:
    cpu = time.process_time()
    started = time.perf_counter()
    if concurrent:
        replies: list[Completion] = list(
            await asyncio.gather(*(client.complete(c, **options) for c in conversations))
        )
    else:
        replies = [await client.complete(c, **options) for c in conversations]
    wall = time.perf_counter() - started
    figures = RunFigures(
        wall_s=wall,
        calls=len(replies),
        prompt_tokens=sum(r.usage.prompt_tokens for r in replies),
        cached_tokens=sum(r.usage.cached_tokens for r in replies),
        completion_tokens=sum(r.usage.completion_tokens for r in replies),
        cpu_share=(time.process_time() - cpu) / wall / (os.cpu_count() or 1),
    )
    return figures, [r.text for r in replies]


def median_figures(runs: Sequence[RunFigures]) -> RunFigures:
    return RunFigures(
        wall_s=statistics.median(r.wall_s for r in runs),
        calls=runs[0].calls,
        prompt_tokens=round(statistics.median(r.prompt_tokens for r in runs)),
        cached_tokens=round(statistics.median(r.cached_tokens for r in runs)),
        completion_tokens=round(statistics.median(r.completion_tokens for r in runs)),
        cpu_share=statistics.median(r.cpu_share for r in runs),
    )


async def conversation_check(
    client: LocalClient, batch: Sequence[Sequence[Message]], options: dict[str, Any]
) -> dict[str, int]:
    """Turn 1 of a conversation, a concurrent batch on the other slots, then turn 2."""
    turns = [
        Message("system", "You are a helpful assistant. " + "Answer briefly. " * 40),
        Message("user", "Name three rivers in Europe."),
    ]
    first = await client.complete(turns, max_tokens=40)
    await asyncio.gather(*(client.complete(c, **options) for c in batch))
    turns += [Message("assistant", first.text), Message("user", "Which one is the longest?")]
    second = await client.complete(turns, max_tokens=20)
    return {
        "turn1_prompt": first.usage.prompt_tokens,
        "turn2_prompt": second.usage.prompt_tokens,
        "turn2_cached": second.usage.cached_tokens,
    }


def accuracy(answers: Sequence[str], truth: Sequence[str]) -> float | None:
    if not truth:
        return None
    return sum(a.strip() == t for a, t in zip(answers, truth, strict=True)) / len(truth)


def fresh(conversations: list[list[Message]], tag: str) -> list[list[Message]]:
    """The same calls behind a first line no slot has seen, so none of it is cached; calls
    that shared their first message still share it."""
    return [[Message(c[0].role, f"[{tag}] {c[0].content}"), *c[1:]] for c in conversations]


async def configuration(
    args: argparse.Namespace,
    slots: int,
    conversations: list[list[Message]],
    truth: list[str],
    options: dict[str, Any],
) -> dict[str, Any]:
    unload_all()
    env = dict(os.environ)
    env[SLOTS_ENV] = str(slots)
    client = local_client(args.model, settings=Settings(env=env))
    loaded = await asyncio.to_thread(client.load)
    await client.complete(conversations[0], **options)  # loads the model, warms its caches

    runs: dict[str, list[RunFigures]] = {name: [] for name in KINDS}
    differ: list[int] = []
    right: list[float | None] = []
    discarded = 0
    while len(runs["concurrent_warm"]) < args.repeats:
        tag = f"{slots}.{len(runs['concurrent_warm'])}.{discarded}"
        by_seq, by_par = fresh(conversations, f"s{tag}"), fresh(conversations, f"c{tag}")
        made: dict[str, tuple[RunFigures, list[str]]] = {}
        for name, calls, concurrent in (
            ("sequential_cold", by_seq, False),
            ("concurrent_cold", by_par, True),
            ("sequential_warm", by_par, False),  # the same prompts as the next run
            ("concurrent_warm", by_par, True),
        ):
            made[name] = await timed(client, calls, options, concurrent)
        if min(f.cpu_share for f, _ in made.values()) < args.min_cpu:
            # Another process took CPU time: llama.cpp's threads then slow down many times
            # over, and the runs say nothing.
            discarded += 1
            if discarded > args.max_discarded:
                raise SystemExit(f"{discarded} repeats discarded: the machine is busy")
            continue
        for name, (figures, _) in made.items():
            runs[name].append(figures)
        seq_answers, par_answers = made["sequential_warm"][1], made["concurrent_warm"][1]
        differ.append(sum(a != b for a, b in zip(seq_answers, par_answers, strict=True)))
        right += [accuracy(answers, truth) for _, answers in made.values()]
    check = await conversation_check(client, conversations[: 2 * slots], options)
    medians = {name: median_figures(figures) for name, figures in runs.items()}
    known = [r for r in right if r is not None]
    return {
        "slots": slots,
        "load_s": loaded.load_s,
        **{name: asdict(figures) for name, figures in medians.items()},
        "gain_cold": medians["sequential_cold"].wall_s / medians["concurrent_cold"].wall_s,
        "gain_warm": medians["sequential_warm"].wall_s / medians["concurrent_warm"].wall_s,
        "differing_answers": differ,
        "discarded_repeats": discarded,
        "accuracy": statistics.median(known) if known else None,
        "conversation": check,
        "_figures": medians,
    }


def print_row(name: str, f: RunFigures, gain: float | None) -> None:
    ratio = f"{gain:5.2f}x" if gain is not None else "     -"
    print(
        f"  {name:<16} {f.wall_s:7.2f} s {f.calls_per_s:7.2f} {f.prompt_per_s:9.1f} "
        f"{f.generated_per_s:9.1f} {ratio}  {f.cpu_share:4.0%}"
    )


async def run(args: argparse.Namespace) -> dict[str, Any]:
    if args.task == "classify":
        conversations, truth, options = build_classify(args.calls, args.prompt_tokens, args.seed)
    else:
        conversations, truth, options = build_generate(args.calls, args.max_tokens)
    print(
        f"python {platform.python_version()}, {os.cpu_count()} CPUs, load average "
        f"{os.getloadavg()[0]:.2f}; model {args.model}; task {args.task}; "
        f"{args.calls} calls; {args.repeats} repeats"
    )
    results: list[dict[str, Any]] = []
    for slots in args.slots:
        result = await configuration(args, slots, conversations, truth, options)
        medians = result.pop("_figures")
        if not results:
            warm = medians["sequential_warm"]
            print(
                f"  prompt {warm.prompt_tokens / warm.calls:.0f} tokens a call, "
                f"{warm.cached_tokens / warm.calls:.0f} of them from the cache (sequential, warm)"
            )
        conv = result["conversation"]
        acc = result["accuracy"]
        print(
            f"\nslots {slots}: loaded in {result['load_s']:.1f} s; accuracy "
            f"{'-' if acc is None else f'{acc:.0%}'}; concurrent answers that differ from "
            f"the sequential ones: {result['differing_answers']}; repeats discarded for "
            f"contention: {result['discarded_repeats']}; conversation turn 2 read "
            f"{conv['turn2_cached']} of {conv['turn2_prompt']} prompt tokens from the cache"
        )
        print(
            f"  {'run':<16} {'wall':>9} {'calls/s':>7} {'prompt/s':>9} "
            f"{'gen/s':>9} {'gain':>6}  cpu"
        )
        print_row("sequential cold", medians["sequential_cold"], None)
        print_row("concurrent cold", medians["concurrent_cold"], result["gain_cold"])
        print_row("sequential warm", medians["sequential_warm"], None)
        print_row("concurrent warm", medians["concurrent_warm"], result["gain_warm"])
        results.append(result)
    unload_all()
    for kind in ("cold", "warm"):
        best = max(results, key=lambda r: r[f"gain_{kind}"])
        print(
            f"best {kind}: {best['slots']} slots, {best[f'gain_{kind}']:.2f}x the sequential "
            "throughput"
        )
    return {"model": args.model, "task": args.task, "calls": args.calls, "results": results}


def parse_slots(text: str) -> list[int]:
    values = [int(part) for part in text.split(",") if part.strip()]
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError("a comma-separated list of positive slot counts")
    return values


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default="qwen2.5-coder-0.5b", help="an embedded model")
    parser.add_argument("--slots", type=parse_slots, default=[1, 2, 4, 8])
    parser.add_argument("--calls", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3, help="per configuration")
    parser.add_argument("--task", choices=("classify", "generate"), default="classify")
    parser.add_argument("--prompt-tokens", type=int, default=300, help="classify: per call")
    parser.add_argument("--max-tokens", type=int, default=48, help="generate: per call")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--min-cpu",
        type=float,
        default=0.9,
        help="a repeat in which this process used less of the CPUs is made again",
    )
    parser.add_argument("--max-discarded", type=int, default=30)
    parser.add_argument("--json-out", type=Path, help="also write the figures as JSON here")
    args = parser.parse_args()
    if args.calls < 1 or args.repeats < 1:
        parser.error("--calls and --repeats must be positive")

    report = asyncio.run(run(args))
    if args.json_out is not None:
        args.json_out.parent.mkdir(parents=True, exist_ok=True)
        args.json_out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
        print(f"\nwrote {args.json_out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
