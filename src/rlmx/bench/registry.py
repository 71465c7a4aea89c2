"""The task sets ``rlmx bench`` knows, by name."""

from __future__ import annotations

from rlmx.bench import codeqa, logs, oolong, oolong_pairs
from rlmx.bench.needles import generate_book_needle, generate_sniah
from rlmx.bench.tasks import TaskSetSpec

K = 1024

TASK_SETS: dict[str, TaskSetSpec] = {
    spec.name: spec
    for spec in (
        TaskSetSpec(
            "sniah",
            "RULER single needle: a 7-digit magic number for an adjective-noun key in book text",
            (8 * K, 16 * K, 32 * K, 128 * K, 1024 * K),
            generate_sniah,
        ),
        TaskSetSpec(
            "oolong",
            "OOLONG trec_coarse-style aggregation over dated, user-tagged questions, labels hidden",
            (8 * K, 32 * K, 128 * K, 256 * K),
            oolong.generate_oolong,
        ),
        TaskSetSpec(
            "oolong-pairs",
            "the paper's 20 OOLONG-Pairs queries over a 32K-token window; F1 over user pairs",
            (oolong_pairs.PAIRS_LENGTH,),
            oolong_pairs.generate_pairs,
        ),
        TaskSetSpec(
            "book-needle",
            "a planted secret at a random paragraph of War and Peace (~780K tokens), 12 phrasings",
            (0,),
            generate_book_needle,
            fixed_length=True,
        ),
        TaskSetSpec(
            "logs",
            "exact questions over real Loghub samples (OpenSSH, Apache, OpenStack)",
            (0,),
            logs.generate_logs,
            fixed_length=True,
        ),
        TaskSetSpec(
            "codeqa",
            "multiple choice questions about the Python standard library, over its source tree",
            (0,),
            codeqa.generate_codeqa,
            fixed_length=True,
        ),
    )
}
