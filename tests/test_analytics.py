"""The counting and statistics helpers, in the REPL namespace and on their own."""

from __future__ import annotations

import statistics
from pathlib import Path

import pytest

from rlmx.context import as_context
from rlmx.context.analytics import (
    KINDS,
    percentile,
    stats,
    tally,
    template,
    to_number,
    top_words,
)
from rlmx.context.corpus import Corpus
from rlmx.context.helpers import build

LOG = """\
[Sun Dec 04 04:47:44 2005] [error] mod_jk child workerEnv in error state 6
[Sun Dec 04 04:47:45 2005] [notice] jk2_init() Found child 6725 in scoreboard slot 10
[Mon Dec 05 11:02:09 2005] [error] mod_jk child workerEnv in error state 7
[Mon Dec 05 11:02:10 2005] [error] [client 222.166.160.184] Directory index forbidden by rule
[Mon Dec 05 11:02:11 2005] [error] mod_jk child workerEnv in error state 6
request from 10.0.0.7 took 120 ms; retry from 10.0.0.17:8080 took 80 ms
no address in 1.2.3 or in 300.1.1.1 or v2.10.0.1.5 but 8.8.8.8 counts
"""


def namespace(text: str) -> dict[str, object]:
    return build(Corpus.from_value(text))


def test_ipv4_kind_takes_one_digit_octets_and_leaves_versions_and_ports() -> None:
    ns = namespace(LOG)
    ips = ns["extract"](kind="ipv4")  # type: ignore[operator]
    assert ips == ["222.166.160.184", "10.0.0.7", "10.0.0.17", "8.8.8.8"]
    # A kind's name given as the pattern means the kind.
    assert ns["extract"]("ipv4") == ips  # type: ignore[operator]


def test_extract_keeps_the_first_group_and_reads_the_whole_text() -> None:
    ns = namespace(LOG)
    assert ns["extract"](r"took (\d+) ms") == ["120", "80"]  # type: ignore[operator]
    assert ns["extract"](r"state \d") == ["state 6", "state 7", "state 6"]  # type: ignore[operator]
    assert ns["extract"](r"state (\d)", limit=2) == ["6", "7"]  # type: ignore[operator]
    with pytest.raises(ValueError, match="either a pattern or a kind"):
        ns["extract"]()  # type: ignore[operator]
    with pytest.raises(ValueError, match="unknown kind 'ipv5'"):
        ns["extract"](kind="ipv5")  # type: ignore[operator]


def test_extract_over_a_file_read_lazily_matches_the_text(tmp_path: Path) -> None:
    path = tmp_path / "big.log"
    path.write_text(LOG * 3000)
    corpus = as_context(path).open_local()[1]
    lazy = build(corpus)["extract"](r"took (\d+) ms")  # type: ignore[operator]
    assert lazy == ["120", "80"] * 3000


def test_templates_count_messages_alike_when_only_variables_differ() -> None:
    lines = [line for line in LOG.splitlines() if "[error]" in line]
    counted = tally(lines, templates=True)
    assert counted[0] == ("mod_jk child workerEnv in error state <*>", 3)
    assert counted[1] == ("Directory index forbidden by rule", 1)
    assert (counted.total, counted.distinct) == (4, 2)
    assert template("Dec 10 06:55:46 LabSZ sshd[24200]: Failed password for root") == (
        "LabSZ sshd[<*>]: Failed password for root"
    )


def test_templates_mask_the_bracketed_fields_that_say_who_logged_a_message() -> None:
    # Two threads log the same message; a bracket inside a word is part of it.
    lines = [
        "2015-10-18 18:06:53,034 WARN [LeaseRenewer:msrabi@msra-sa-41:9000] "
        "org.apache.hadoop.ipc.Client: Address change detected. Old: msra-sa-41/10.190.173.17",
        "2015-10-18 18:07:01,100 WARN [RMCommunicator Allocator] "
        "org.apache.hadoop.ipc.Client: Address change detected. Old: msra-sa-41/10.190.173.17",
        "2015-10-18 18:07:02,000 ERROR [main] org.apache.hadoop.Job: lost items[3] of [a, b]",
    ]
    counted = tally(lines, templates=True)
    assert counted[0] == (
        "WARN <*> org.apache.hadoop.ipc.Client: Address change detected. Old: msra-sa-<*>/<*>",
        2,
    )
    assert counted[1] == ("ERROR <*> org.apache.hadoop.Job: lost items[<*>] of <*>", 1)


def test_tally_counts_most_common_first_and_prints_a_table() -> None:
    counted = tally(["b", "a", "b", None, "c", "b", "a"], top=2)
    assert counted == [("b", 3), ("a", 2)]
    assert (counted.total, counted.distinct) == (7, 4)
    assert str(counted).splitlines() == [
        "7 values, 4 distinct, the first 2, most common first:",
        "      3  b",
        "      2  a",
    ]
    with pytest.raises(TypeError, match="not one string"):
        tally("abc")
    with pytest.raises(ValueError, match="top must be"):
        tally(["a"], top=0)


def test_numbers_durations_and_percentiles() -> None:
    assert to_number("0.2477829") == pytest.approx(0.2477829)
    assert to_number("01:02") == 62.0
    assert to_number("1:00:05") == 3605.0
    assert to_number("1,024 bytes") == 1024.0
    assert to_number("230 ms") == 230.0
    assert to_number("lifetime 02:05") == 125.0  # a duration inside a text is read whole
    assert to_number("lifetime 1:00:05.5 (closed)") == 3605.5
    assert to_number("<1 sec") == 1.0  # the first number of a text
    assert to_number("n/a") is None
    values = [float(v) for v in range(1, 101)]
    summary = stats([str(v) for v in values] + ["n/a"])
    assert (summary["count"], summary["skipped"]) == (100, 1)
    assert (summary["min"], summary["max"], summary["mean"]) == (1.0, 100.0, 50.5)
    # Linear interpolation between ranks: what statistics.quantiles calls "inclusive".
    inclusive = statistics.quantiles(values, n=100, method="inclusive")
    for p in (50, 90, 95, 99):
        assert summary[f"p{p}"] == pytest.approx(inclusive[p - 1])
    assert percentile([3.0], 99) == 3.0
    with pytest.raises(ValueError, match="none of the 2 values is a number"):
        stats(["a", "b"])


def test_top_words_leave_out_stop_words_short_words_and_ids() -> None:
    text = "The cat and the dog. THE CAT sat on 54fadb412c4e40cdbaed with a dog and a cat."
    assert top_words([text], top=3) == [("cat", 3), ("dog", 2), ("sat", 1)]
    ns = namespace(text)
    assert ns["top_words"](top=2) == [("cat", 3), ("dog", 2)]  # type: ignore[operator]


def test_every_kind_compiles_and_finds_its_own_shape() -> None:
    samples = {
        "ipv4": "8.8.4.4",
        "email": "ops@example.org",
        "url": "https://example.org/a?b=1",
        "number": "-12.5",
        "duration": "01:02:03",
        "date": "2024-03-01",
        "time": "12:30:05",
        "hex": "0x1f3a",
        "uuid": "123e4567-e89b-12d3-a456-426614174000",
        "word": "lighthouse",
    }
    assert set(samples) == set(KINDS)
    for kind, sample in samples.items():
        found = namespace(f"before {sample} after")["extract"](kind=kind)  # type: ignore[operator]
        expected = ["before", sample, "after"] if kind == "word" else [sample]
        assert found == expected, kind
