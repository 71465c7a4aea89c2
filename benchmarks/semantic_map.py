"""How `llm_map` should send items to a sub-model: measured on real questions.

Labels TREC questions (OOLONG's source, `data/trec_qc`) with the 6 coarse categories, the
way an RLM run over an OOLONG window does, through the whole engine path (a scripted root
calls the helper; the sub-model is real), and prints accuracy, unreadable answers, the
predicted against the true count of each label, and the wall time:

- `map`: `llm_map`, one item per call, shared system prompt, answers constrained to the
  labels where the backend can (llama.cpp grammar);
- `map --no-choices`: the same without the constraint;
- `uncalibrated`: `map` without the content-free prior (`rlmx.engine.mapping.CALIBRATE`),
  so as before it: the sub-model first writes one example per label, then each item's whole
  label is generated;
- `packed`: 20 items per `llm_query_batched` prompt, "N: label" lines, the habit to beat.

python benchmarks/semantic_map.py --models qwen2.5-coder-0.5b,qwen2.5-coder-1.5b --items 100

Development seed 0 chose the design; report figures on another seed.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import time
from collections import Counter
from pathlib import Path

from rlmx import RLM, Limits
from rlmx.bench.oolong_window import spec, trec_questions
from rlmx.engine import mapping, semantic_map
from rlmx.engine.semantic_map import read_label
from rlmx.providers.base import ModelProfile
from rlmx.providers.scripted import ScriptedModel
from rlmx.sandbox.inprocess import InProcessRepl

DATA = Path(__file__).resolve().parent.parent / "data"
INSTRUCTION = "Which category describes the answer to this question?"
PACK = 20


def sample(n: int, seed: int) -> tuple[list[str], list[str], list[str]]:
    labels = list(spec(DATA)["labels"])
    pool = list(trec_questions(DATA))
    picked = random.Random(seed).sample(pool, n)
    return [q for q, _ in picked], [label for _, label in picked], labels


def map_code(labels: list[str]) -> str:
    return (
        "import json\n"
        f"answers = llm_map({INSTRUCTION!r}, context.splitlines(), labels={labels!r})\n"
        "FINAL(json.dumps(answers))"
    )


def packed_code(labels: list[str]) -> str:
    return f"""import json, re
items = context.splitlines()
prompts = []
for start in range(0, len(items), {PACK}):
    rows = "\\n".join(f"{{start + i}}: {{q}}" for i, q in enumerate(items[start:start + {PACK}]))
    prompts.append({INSTRUCTION!r} + " Categories: " + ", ".join({labels!r})
                   + ". Reply with one line per question, 'N: category'.\\n" + rows)
FINAL(json.dumps(llm_query_batched(prompts)))"""


def read_packed(replies: list[str], n: int, labels: list[str]) -> list[str | None]:
    answers: list[str | None] = [None] * n
    for reply in replies:
        for number, text in re.findall(r"(\d+)\s*[:.)-]\s*(.+)", reply):
            index = int(number)
            if 0 <= index < n and answers[index] is None:
                answers[index] = read_label(text, labels)
    return answers


def measure(model: str, how: str, questions: list[str], labels: list[str]) -> dict[str, object]:
    code = packed_code(labels) if how == "packed" else map_code(labels)
    mapping.CALIBRATE = how != "uncalibrated"
    root = ScriptedModel([f"```repl\n{code}\n```"], profile=ModelProfile(context_window=10**6))
    rlm = RLM(
        model=root,
        sub_model=f"local:{model}",
        limits=Limits(max_iterations=1),
        sandbox=InProcessRepl,
        cache=False,  # each way is measured calling the model
    )
    started = time.perf_counter()
    result = rlm.run("label them", "\n".join(questions))
    wall = time.perf_counter() - started
    raw = json.loads(result.answer or "[]")
    if how == "packed":
        answers = read_packed(raw, len(questions), labels)
    else:
        answers = [a if a is None else read_label(a, labels) for a in raw]
    return {"answers": answers, "wall_s": wall, "sub_calls": result.sub_calls}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--models", default="qwen2.5-coder-0.5b,qwen2.5-coder-1.5b")
    parser.add_argument("--ways", default="map,packed")
    parser.add_argument("--items", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-choices", action="store_true", help="map without constraint")
    args = parser.parse_args()
    questions, gold, labels = sample(args.items, args.seed)
    if args.no_choices:
        original = semantic_map.MapSpec.options

        def unconstrained(self: semantic_map.MapSpec, attempt: int, index: int) -> dict:
            options = original(self, attempt, index)
            options.pop("choices", None)
            return options

        semantic_map.MapSpec.options = unconstrained  # type: ignore[method-assign]
    truth = Counter(gold)
    print(f"{args.items} TREC questions, seed {args.seed}; true counts: {dict(truth)}")
    for model in args.models.split(","):
        for how in args.ways.split(","):
            out = measure(model, how, questions, labels)
            answers = out["answers"]
            assert isinstance(answers, list)
            right = sum(a == g for a, g in zip(answers, gold, strict=True))
            unread = sum(a is None for a in answers)
            predicted = Counter(a for a in answers if a is not None)
            gaps = {label: predicted[label] - truth[label] for label in labels}
            off = sum(abs(gap) for gap in gaps.values())
            print(
                f"{model:20} {how:8} right {right}/{len(gold)} ({right / len(gold):.0%}) "
                f"unread {unread} counts off by {off} "
                f"wall {out['wall_s']:.1f} s ({out['sub_calls']} calls) "
                f"count error per label {gaps}"
            )


if __name__ == "__main__":
    main()
