"""Questions with exact answers over real Loghub samples (``data/loghub``, see its LICENSE).

The context is a raw 2,000-line log; every gold is computed from the sample's structured
CSV (the parsed fields and the hand-labelled event templates that Loghub ships with it), never
from the raw text the model sees. Task ``i`` asks question kind ``i % 8``; the IP, the
percentile or the status code it names come from the task's seed.
"""

from __future__ import annotations

import csv
import math
import random
import re
from collections import Counter
from functools import lru_cache
from pathlib import Path
from typing import Any

from rlmx.bench.datafiles import need
from rlmx.bench.tasks import ScorerName, Task

_IPV4 = re.compile(r"\b(?:\d{1,3}\.){3}\d{1,3}\b")
_FAILED = re.compile(r"^Failed password for .* from (\S+) port")


@lru_cache(maxsize=8)
def _rows(root: Path, system: str) -> tuple[dict[str, str], ...]:
    path = need(root / "loghub" / system / f"{system}_2k.log_structured.csv")
    with path.open(encoding="utf-8", newline="") as handle:
        return tuple(csv.DictReader(handle))


@lru_cache(maxsize=8)
def _raw(root: Path, system: str) -> str:
    return need(root / "loghub" / system / f"{system}_2k.log").read_text(encoding="utf-8")


Question = tuple[str, str, Any, ScorerName, dict[str, Any]]


def _ssh_distinct_ips(root: Path, rng: random.Random) -> Question:
    ips = {ip for row in _rows(root, "OpenSSH") for ip in _IPV4.findall(row["Content"])}
    query = "How many distinct IPv4 addresses of remote clients appear in this OpenSSH log?"
    return "OpenSSH", query, len(ips), "number", {}


def _failed_by_ip(root: Path) -> Counter[str]:
    counts: Counter[str] = Counter()
    for row in _rows(root, "OpenSSH"):
        match = _FAILED.match(row["Content"])
        if match and row["EventId"] in ("E9", "E10"):
            counts[match.group(1)] += 1
    return counts


def _ssh_failed_from(root: Path, rng: random.Random) -> Question:
    counts = _failed_by_ip(root)
    ip = rng.choice(sorted(ip for ip, c in counts.items() if c >= 2))
    query = (
        "How many lines of this OpenSSH log record a failed password attempt "
        f"('Failed password for ... from {ip} port ...') from the address {ip}?"
    )
    return "OpenSSH", query, counts[ip], "number", {"ip": ip}


def _ssh_top_source(root: Path, rng: random.Random) -> Question:
    (ip, _count), *_ = _failed_by_ip(root).most_common(1)
    query = (
        "Which source IP address has the most failed password attempts "
        "('Failed password for ... from IP port ...' lines) in this OpenSSH log? "
        "Answer with the IP address."
    )
    return "OpenSSH", query, ip, "exact", {}


def _ssh_invalid_users(root: Path, rng: random.Random) -> Question:
    count = sum(1 for row in _rows(root, "OpenSSH") if row["EventId"] == "E13")
    query = "How many lines of this OpenSSH log say 'Invalid user <name> from <address>'?"
    return "OpenSSH", query, count, "number", {}


def _apache_top_error(root: Path, rng: random.Random) -> Question:
    counts = Counter(r["EventTemplate"] for r in _rows(root, "Apache") if r["Level"] == "error")
    ranked = [t for t, _ in counts.most_common(4)]
    options = ranked[:]
    rng.shuffle(options)
    letters = "ABCD"
    shown = "\n".join(f"{letters[i]}) {t}" for i, t in enumerate(options))
    query = (
        "Which message is the most frequent among the [error] lines of this Apache error log? "
        "Variable parts are written <*>. Options:\n"
        f"{shown}\nAnswer with the letter of the option."
    )
    return "Apache", query, letters[options.index(ranked[0])], "choice", {"options": options}


def _apache_errors(root: Path, rng: random.Random) -> Question:
    count = sum(1 for r in _rows(root, "Apache") if r["Level"] == "error")
    return (
        "Apache",
        "How many lines of this Apache log have the level [error]?",
        count,
        "number",
        {},
    )


def _apache_clients(root: Path, rng: random.Random) -> Question:
    pattern = re.compile(r"\[client (\d+\.\d+\.\d+\.\d+)\]")
    ips = {m for r in _rows(root, "Apache") for m in pattern.findall(r["Content"])}
    query = "How many distinct client IP addresses ('[client IP]') appear in this Apache log?"
    return "Apache", query, len(ips), "number", {}


def _openstack_percentile(root: Path, rng: random.Random) -> Question:
    pattern = re.compile(r" time: (\d+\.\d+)")
    times = sorted(
        float(m.group(1))
        for r in _rows(root, "OpenStack")
        if (m := pattern.search(r["Content"])) is not None
    )
    p = rng.choice((50, 90, 99))
    value = times[max(0, math.ceil(p / 100 * len(times)) - 1)]
    query = (
        f"Every HTTP request line of this OpenStack log ends with 'time: <seconds>'. What is "
        f"the {p}th percentile of these request times, by the nearest-rank method (the "
        f"smallest time such that at least {p}% of the times are less than or equal to it)? "
        "Answer with the number of seconds as written in the log."
    )
    return "OpenStack", query, value, "number", {"percentile": p, "requests": len(times)}


KINDS = (
    _ssh_distinct_ips,
    _ssh_failed_from,
    _ssh_top_source,
    _ssh_invalid_users,
    _apache_top_error,
    _apache_errors,
    _apache_clients,
    _openstack_percentile,
)


def generate_logs(length: int, n: int, seed: int, root: Path) -> list[Task]:
    tasks = []
    for index in range(n):
        task_seed = seed * 1_000_003 + index
        kind = KINDS[index % len(KINDS)]
        system, query, gold, scorer, meta = kind(root, random.Random(task_seed))
        tasks.append(
            Task(
                task_set="logs",
                length=length,
                index=index,
                seed=task_seed,
                query=query,
                context=_raw(root, system),
                gold=gold,
                scorer=scorer,
                meta={"system": system, "kind": kind.__name__.lstrip("_"), **meta},
            )
        )
    return tasks
