"""How often the root model sorts a question into the right kind of work (rlmx.engine.routing).

Two sets of 24 hand-labelled questions about logs, books, code and lists, none of them a
benchmark's wording: `dev` was used to write the routing prompt, `test` was written at the
same time and only run to report. Prints accuracy, the confusions and the median latency.

python benchmarks/routing.py --set test --model local:qwen2.5-coder-1.5b
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections import Counter

from rlmx.config import Settings
from rlmx.engine.routing import ROUTING_OPTIONS, read_kind, routing_messages
from rlmx.providers.registry import resolve_model

DEV = {
    "lookup": [
        "What is the name of the ship that carried the letters to Lisbon?",
        "Which port does the backup service listen on?",
        "When was the contract with the shipping company signed?",
        "What did the doctor prescribe for the fever?",
        "Who is the author of the module that handles retries?",
        "What is the secret phrase hidden in the diary?",
    ],
    "count": [
        "How many distinct IP addresses connected to the server?",
        "How many times does the word 'winter' appear?",
        "Which user has the most failed logins?",
        "What is the 95th percentile of the response times?",
        "How many lines mention a timeout?",
        "What is the average number of bytes per request?",
    ],
    "classify": [
        "Are most of the support tickets about billing or about login problems?",
        "What share of the listed questions ask for a date?",
        "How many of the reviews are negative?",
        "Which topic is most common among the forum posts?",
        "Do more of the sentences express joy or fear?",
        "Count the headlines that are about sports.",
    ],
    "explain": [
        "What does the function normalize_path do?",
        "Summarise what happens in the chapter about the storm.",
        "Why did the deployment fail according to the logs?",
        "How does the cache decide what to evict?",
        "What is the main argument of the third essay?",
        "Explain what the configuration file controls.",
    ],
}

TEST = {
    "lookup": [
        "What colour was the carriage that took the princess away?",
        "Which file defines the class Scheduler?",
        "What is the phone number of the harbour master?",
        "On which day did the outage begin?",
        "What is the password to the admin console mentioned in the notes?",
        "Who signed the letter of resignation?",
    ],
    "count": [
        "How many error lines came from the kernel?",
        "What is the most frequent HTTP status code?",
        "How many unique users logged in on Monday?",
        "What is the median latency of the GET requests?",
        "How many files import the json module?",
        "Which process writes the most warnings?",
    ],
    "classify": [
        "Are the customer emails mostly positive or negative?",
        "What fraction of the questions are about animals?",
        "How many of the listed products are toys?",
        "Which kind of complaint occurs most often among the messages?",
        "Do more of the listed items describe a person or a place?",
        "How many of the job titles are technical roles?",
    ],
    "explain": [
        "What does the retry decorator do when the server returns 429?",
        "Describe the relationship between Pierre and Natasha in the final chapters.",
        "Why does the test suite skip the network tests?",
        "What is the purpose of the middleware in app.py?",
        "Summarise the incident report.",
        "How is the total price computed in the checkout module?",
    ],
}


async def run(model: str, questions: dict[str, list[str]]) -> None:
    client = resolve_model(model, settings=Settings())
    confusions: Counter[tuple[str, str]] = Counter()
    latencies = []
    right = total = 0
    for gold, items in questions.items():
        for question in items:
            started = time.perf_counter()
            completion = await client.complete(routing_messages(question), **ROUTING_OPTIONS)
            latencies.append(time.perf_counter() - started)
            kind = read_kind(completion.text) or "lookup"
            total += 1
            right += kind == gold
            if kind != gold:
                confusions[(gold, kind)] += 1
                print(f"  {gold} -> {kind}: {question}")
    print(
        f"{model}: {right}/{total} right ({right / total:.0%}); median "
        f"{statistics.median(latencies):.2f} s a question; confusions {dict(confusions)}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--set", choices=("dev", "test"), default="dev")
    parser.add_argument("--model", default="local:qwen2.5-coder-1.5b")
    args = parser.parse_args()
    asyncio.run(run(args.model, DEV if args.set == "dev" else TEST))


if __name__ == "__main__":
    main()
