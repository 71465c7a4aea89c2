"""The logs demo: its expected figures against an independent reading of Loghub's structured
CSV files, its checks on right and wrong answers, and a scripted run of every question."""

from __future__ import annotations

import csv
import ipaddress
import json
import math
import time
from collections import Counter
from pathlib import Path

import pytest

from rlmx.demos.base import DemoQuestion, Prepared
from rlmx.demos.logs import DEMO, STOP_WORDS
from rlmx.demos.runner import DemoModels, run_demo
from rlmx.providers.scripted import Rule, ScriptedModel
from rlmx.sandbox.inprocess import InProcessRepl

from .conftest import repl


@pytest.fixture(scope="module")
def prepared(tmp_path_factory: pytest.TempPathFactory) -> Prepared:
    return DEMO.prepare(tmp_path_factory.mktemp("logs"), seed=0)


def rows(prepared, system: str) -> list[dict[str, str]]:
    path = Path(prepared.context) / system / f"{system}_2k.log_structured.csv"
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def logged(row: dict[str, str]) -> str:
    return " ".join(v for k, v in row.items() if k not in ("LineId", "EventId", "EventTemplate"))


# Independent readings: tokens cut at every non-alphanumeric character, IPs validated by the
# ipaddress module, percentiles by nearest rank over the parsed numbers.


def ips_of(text: str) -> set[str]:
    found = set()
    for token in "".join(c if c.isdigit() or c == "." else " " for c in text).split():
        token = token.strip(".")
        try:
            if token.count(".") == 3:
                found.add(str(ipaddress.IPv4Address(token)))
        except ValueError:
            pass
    return found


def words_of(text: str) -> list[str]:
    tokens = "".join(c if c.isalnum() or c == "_" else " " for c in text.lower()).split()
    return [t for t in tokens if t.isascii() and t.isalpha() and len(t) >= 3]


def question(prepared: Prepared, name: str) -> DemoQuestion:
    return next(q for q in prepared.questions if q.name == name)


SYSTEMS = ("Apache", "OpenSSH", "OpenStack", "Proxifier", "Hadoop")


def test_five_systems_and_the_analyses_that_apply(prepared: Prepared) -> None:
    names = {q.name for q in prepared.questions}
    for system in SYSTEMS:
        key = system.lower()
        assert {f"{key}-errors", f"{key}-ips", f"{key}-words"} <= names
    assert {n for n in names if n.endswith("-latency")} == {
        "openstack-latency",
        "proxifier-latency",
        "hadoop-latency",
    }
    assert {q.level for q in prepared.questions} == {"code", "dsl"}
    for q in prepared.questions:  # each question reads its own system's raw log
        assert q.context.name.endswith("_2k.log")
        assert q.context.is_file()
    assert (Path(prepared.context) / "LICENSE.loghub.txt").is_file()


def test_error_rankings_match_the_templates(prepared: Prepared) -> None:
    apache = Counter(r["EventTemplate"] for r in rows(prepared, "Apache") if r["Level"] == "error")
    assert prepared.expected["apache-errors"][0] == [*apache.most_common(1)[0]]
    stack = Counter(r["EventTemplate"] for r in rows(prepared, "OpenStack") if r["Level"] != "INFO")
    assert prepared.expected["openstack-errors"][0] == [
        "Unknown base file: <*>",
        stack["Unknown base file: <*>"],
    ]
    proxy = Counter(r["EventId"] for r in rows(prepared, "Proxifier") if "error :" in r["Content"])
    assert sum(c for _, c in prepared.expected["proxifier-errors"]) == sum(proxy.values())
    ssh = prepared.expected["openssh-errors"]
    assert ssh[0][1] >= ssh[1][1]
    assert "authentication failure" in ssh[0][0]
    hadoop = Counter(
        r["EventTemplate"] for r in rows(prepared, "Hadoop") if r["Level"] in ("WARN", "ERROR")
    )
    assert prepared.expected["hadoop-errors"][0] == [*hadoop.most_common(1)[0]]
    assert hadoop.most_common(1)[0][0].startswith("Address change detected")


def test_distinct_ips_match(prepared: Prepared) -> None:
    for system in SYSTEMS:
        found = set().union(*(ips_of(logged(r)) for r in rows(prepared, system)))
        assert prepared.expected[f"{system.lower()}-ips"] == len(found), system


def test_percentiles_match(prepared: Prepared) -> None:
    times = sorted(
        float(r["Content"].rsplit("time: ", 1)[1])
        for r in rows(prepared, "OpenStack")
        if "time: " in r["Content"]
    )
    lifetimes = []
    for r in rows(prepared, "Proxifier"):
        if "lifetime " in r["Content"]:
            text = r["Content"].rsplit("lifetime ", 1)[1]
            parts = [0] if text.startswith("<") else [int(p) for p in text.split(":")]
            lifetimes.append(float(sum(p * 60**i for i, p in enumerate(reversed(parts)))))
    lifetimes.sort()
    waits = sorted(
        float(r["Content"].rsplit(" for ", 1)[1].split()[0])
        for r in rows(prepared, "Hadoop")
        if r["Content"].startswith("Failed to renew lease")
    )
    assert len(waits) == 326
    for name, values in (
        ("openstack-latency", times),
        ("proxifier-latency", lifetimes),
        ("hadoop-latency", waits),
    ):
        for p in (50, 95, 99):
            rank = math.ceil(p / 100 * len(values))
            assert prepared.expected[name][f"p{p}"] == values[rank - 1]


def test_top_words_match(prepared: Prepared) -> None:
    for system in SYSTEMS:
        counts = Counter(
            w for r in rows(prepared, system) for w in words_of(logged(r)) if w not in STOP_WORDS
        )
        top = [w for w, _ in counts.most_common(10)]
        got = [w for w, _ in prepared.expected[f"{system.lower()}-words"]]
        # ties at the cut may order differently; the counts settle it
        assert [counts[w] for w in got] == [counts[w] for w in top], system


@pytest.mark.parametrize(
    ("name", "answer", "passed"),
    [
        (
            "apache-errors",
            "1. mod_jk child workerEnv in error state 6: 539\n2. Directory index",
            True,
        ),
        (
            "apache-errors",
            "[('Directory index forbidden by rule', 32), ('mod_jk child', 539)]",
            False,
        ),
        ("openssh-errors", "Failed password: 518, authentication failure: 494", True),
        ("openssh-errors", "authentication failure (494); Failed password (383)", True),
        ("openssh-errors", "Invalid user: 113", False),
        ("openstack-errors", "Unknown base file: /var/lib/nova/instances/_base/a489 (30)", True),
        ("openstack-errors", "While synchronizing instance power states (1)", False),
        ("proxifier-errors", "A connection request was canceled before the completion. 31", True),
        ("proxifier-errors", "Could not connect to proxy - Could not resolve (20)", False),
        # The right kind without its count, or with another count, is not a ranking.
        ("proxifier-errors", "A connection request was canceled before the completion. 11", False),
        ("openstack-errors", "WARNING nova.virt.libvirt.imagecache Unknown base file", False),
        (
            "openssh-errors",
            "Failed password for invalid user webmaster from 173.234.31.186 port 38926 ssh2",
            False,
        ),
        ("openssh-errors", "Failed password for root from <*> port <*> ssh2: 368", True),
        ("apache-ips", "There are 32 distinct client IPs.", True),
        ("apache-ips", "33", False),
        ("openssh-ips", "30", True),
        ("openstack-latency", "p50: 0.26, p95: 0.385, p99: 0.505", True),
        ("openstack-latency", "{'p50': 0.259165, 'p95': 0.385252, 'p99': 0.5049269}", True),
        ("openstack-latency", "p50 0.2477, p95 0.385, p99 0.505", False),
        ("openstack-latency", "0.259", False),
        ("proxifier-latency", "[11.0, 393.0, 1352.0]", True),
        ("proxifier-latency", "p50 = 11 s, p95 = 5 s, p99 = 1352 s", False),
        (
            "apache-words",
            "dec, notice, child, error, workerenv, sun, mon, scoreboard, found, slot",
            True,
        ),
        ("apache-words", "the, and, for, this, with, from", False),
        ("proxifier-words", "proxy exe hk cse cuhk edu bytes chrome com through", True),
        ("openssh-words", None, False),
    ],
)
def test_checks_judge_answers(
    prepared: Prepared, name: str, answer: str | None, passed: bool
) -> None:
    check = DEMO.check(prepared, question(prepared, name), answer)
    assert check.passed is passed, check.detail
    assert check.question == name
    assert check.detail


def right_answer(prepared: Prepared, name: str) -> str:
    expected = prepared.expected[name]
    if name.endswith("-errors"):
        return "; ".join(f"{t.replace('<*>', '1')}: {c}" for t, c in expected[:3])
    if name.endswith("-words"):
        return ", ".join(w for w, _ in expected)
    if name.endswith("-latency"):
        return ", ".join(f"{k}: {v}" for k, v in expected.items())
    return str(expected)


def scripted_root(prepared: Prepared) -> ScriptedModel:
    # Both levels ask the same words: the command level's first turn is told apart by what it
    # asks for, and its rules come first (the first rule that matches answers).
    dsl, code = [], []
    for q in prepared.questions:
        answer = right_answer(prepared, q.name.removesuffix("-dsl"))
        if q.level == "dsl":
            reply = json.dumps({"cmd": "final", "answer": answer})
            dsl.append(Rule(f"{q.query}\n\nSend a JSON command", reply))
        else:
            code.append(Rule(q.query, repl(f"FINAL({answer!r})")))
    return ScriptedModel([], rules=dsl + code)


def test_a_scripted_run_passes_every_question(prepared: Prepared, tmp_path: Path) -> None:
    root = scripted_root(prepared)
    models = DemoModels(root=root, sub=root, sandbox=InProcessRepl)
    report = run_demo(DEMO, models, workdir=tmp_path / "run")
    assert [r.question.name for r in report.results] == [q.name for q in prepared.questions]
    assert report.all_passed, [r.check.detail for r in report.results if not r.check.passed]
    assert all(r.status == "completed" and r.run_id for r in report.results)


# The three Loghub systems whose logs carry durations: the only ones all four analyses fit.
WITH_DURATIONS = ("openstack", "proxifier", "hadoop")


@pytest.mark.slow
def test_embedded_models_meet_the_acceptance_at_the_command_level(
    embedded_demo_models: DemoModels, tmp_path: Path
) -> None:
    """Acceptance: all four analyses right on at least 3 systems, each under 2 minutes."""
    only = tuple(
        f"{system}-{analysis}-dsl"
        for system in WITH_DURATIONS
        for analysis in ("errors", "ips", "latency", "words")
    )
    report = run_demo(DEMO, embedded_demo_models, workdir=tmp_path / "logs", only=only)
    assert len(report.results) == 12
    for r in report.results:
        assert r.wall_s < 120, (r.question.name, r.wall_s)
    assert report.all_passed, [(r.question.name, r.answer, r.check.detail) for r in report.results]


@pytest.mark.slow
@pytest.mark.xfail(
    reason="measured: 18 of 18 right at the command level, 5 of 14 at the code level, whose "
    "word counts take up to 337 s, and 1 of 4 on Hadoop (docs/demos.md)",
    strict=False,
)
def test_embedded_models_answer_every_question(
    embedded_demo_models: DemoModels, tmp_path: Path
) -> None:
    """Acceptance: every analysis right on the embedded default models, each under 2 minutes."""
    started = time.perf_counter()
    report = run_demo(DEMO, embedded_demo_models, workdir=tmp_path / "logs")
    for r in report.results:
        assert r.wall_s < 120, (r.question.name, r.wall_s)
    assert report.all_passed, [(r.question.name, r.answer, r.check.detail) for r in report.results]
    assert time.perf_counter() - started < 120 * len(report.results)
