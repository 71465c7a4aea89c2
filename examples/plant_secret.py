"""Plant a secret sentence at a seeded random place in War and Peace, for the demo.

python examples/plant_secret.py --seed 2600 --out .demo/war_and_peace_secret.txt
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rlmx.bench.book_needle import load_book, plant_secret

BOOK = Path(__file__).resolve().parent.parent / "data" / "war_and_peace" / "2600-0.txt"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seed", type=int, default=2600)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--book", type=Path, default=BOOK)
    args = parser.parse_args()
    planted = plant_secret(load_book(args.book), args.seed)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(planted.text, encoding="utf-8")
    args.out.with_suffix(".expected").write_text(planted.secret + "\n", encoding="utf-8")
    print(
        f"planted a secret in {args.book.name} at char {planted.position:,} "
        f"({planted.depth:.0%} of {len(planted.text):,} chars) -> {args.out}",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
