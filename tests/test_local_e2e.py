"""End to end on the real embedded models: a needle task, and the demo's acceptance (slow)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rlmx import RLM, Limits
from rlmx.bench.book_needle import DEFAULT_QUESTION, load_book, plant_secret
from rlmx.config import Settings

from .conftest import REPO, TEST_HOME, repl, scripted

BOOK = REPO / "data" / "war_and_peace" / "2600-0.txt"
ROOT = "local:qwen2.5-coder-1.5b"
SUB = "local:qwen2.5-coder-0.5b"


@pytest.fixture(scope="module")
def book() -> str:
    return load_book(BOOK)


@pytest.mark.local
def test_needle_task_on_the_embedded_models(book: str, local_settings: Settings) -> None:
    planted = plant_secret(book[400_000:460_000], seed=11)
    rlm = RLM(
        model=ROOT,
        sub_model=SUB,
        settings=local_settings,
        limits=Limits(max_iterations=4, timeout_s=300),
    )
    result = rlm.run(DEFAULT_QUESTION, planted.text)
    assert result.status == "completed", result.error
    assert planted.secret in (result.answer or "")
    assert result.usage.root.calls >= 2
    assert result.usage.root.total_tokens < 3_000


@pytest.mark.local
def test_a_real_sub_model_reads_a_window_chosen_by_code(
    book: str, local_settings: Settings
) -> None:
    planted = plant_secret(book[:200_000], seed=5)
    code = (
        "i = context.find('secret vault')\n"
        "window = context[max(0, i - 3000):i + 3000]\n"
        "FINAL(llm_query('What is the password to the secret vault in this text? '"
        "'Reply with the password only.\\n\\n' + window))"
    )
    rlm = RLM(model=scripted(repl(code)), sub_model=SUB, settings=local_settings)
    result = rlm.run(DEFAULT_QUESTION, planted.text)
    assert result.status == "completed", result.error
    assert planted.secret in (result.answer or "")
    assert result.sub_calls == 1
    assert result.usage.sub.prompt_tokens > 1_000  # the window really went to the sub-model


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5, 6, 7, 8, 9, 10])
def test_demo_acceptance_at_ten_positions(seed: int, tmp_path: Path) -> None:
    """As `make demo` runs it: a fresh process each time, so the wall time includes the load."""
    pytest.importorskip("xllamacpp")
    planted = plant_secret(load_book(BOOK), seed)
    context = tmp_path / "book.txt"
    context.write_text(planted.text, encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
    env["RLMX_HOME"] = str(TEST_HOME)
    started = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "rlmx", "run", DEFAULT_QUESTION, "-c", str(context), "--json", "-q"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
    process_s = time.perf_counter() - started
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert planted.secret in result["answer"]
    assert result["iterations"] <= 3
    assert result["usage"]["root"]["total_tokens"] <= 3_000
    assert process_s < 90  # start-up, reading the book and loading both models included


ANIMALS = [
    "The fox slipped under the fence at dawn.",
    "A heron stood still in the shallow pond.",
    "Our old dog sleeps by the stove all winter.",
    "The cat caught a mouse behind the barn.",
    "A herd of cows crossed the muddy lane.",
    "Two swallows built a nest under the roof.",
    "The horse refused to jump the last hedge.",
    "A hedgehog rolled into a ball on the path.",
    "The goat chewed through the garden rope.",
    "An owl called from the oak after midnight.",
    "The rabbit froze when the hawk flew over.",
    "Bees swarmed around the lavender all day.",
    "A frog jumped from the lily pad into the reeds.",
    "The squirrel buried acorns under the beech.",
]
VEHICLES = [
    "The bus to the station was ten minutes late.",
    "He parked the truck beside the warehouse.",
    "The ferry left the harbour in heavy rain.",
    "A tractor blocked the road for an hour.",
    "Her bicycle had a flat tyre again.",
    "The night train to the coast was full.",
]


@pytest.mark.local
def test_an_aggregate_by_meaning_on_the_embedded_models(local_settings: Settings) -> None:
    """The aggregate path as a user meets it: items no search can sort, a question of
    meaning, the root model left to route, map with sub-calls and count."""
    items = [line for pair in zip(ANIMALS, VEHICLES + [""] * 8, strict=True) for line in pair]
    context = "\n".join(line for line in items if line)
    rlm = RLM(model=ROOT, settings=local_settings, limits=Limits(max_iterations=8, timeout_s=400))
    result = rlm.run(
        "Are more of these sentences about animals or about vehicles? Answer animals or vehicles.",
        context,
    )
    assert result.status == "completed", result.error
    named = re.findall(r"animal|vehicle", (result.answer or "").lower())
    assert named[:1] == ["animal"], result.answer
    assert result.sub_calls >= len(ANIMALS) + len(VEHICLES)  # every sentence went to the map
