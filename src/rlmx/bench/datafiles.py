"""Where the benchmark data lives: the repository's ``data/`` folder, or ``$RLMX_BENCH_DATA``.

Each folder there carries the ``SOURCE.txt`` and licence files of what it holds.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from rlmx.bench.book_needle import gutenberg_body
from rlmx.config import Settings
from rlmx.errors import ConfigError

DATA_ENV = "RLMX_BENCH_DATA"
_REPO_DATA = Path(__file__).resolve().parents[3] / "data"

# The haystack books, in order; the text is cycled if a length needs more than all of them.
HAYSTACK_BOOKS = ("war_and_peace/2600-0.txt", "gutenberg_long/moby_dick_2701-0.txt")


def data_dir(settings: Settings | None = None, explicit: str | Path | None = None) -> Path:
    """The data folder: ``explicit``, else ``$RLMX_BENCH_DATA``, else the repository's."""
    env = (settings or Settings()).get(DATA_ENV)
    path = Path(explicit or env or _REPO_DATA).expanduser()
    if not (path / "war_and_peace").is_dir():
        raise ConfigError(
            f"benchmark data not found in {path}: run from a checkout of rlmx, or point "
            f"--data (or {DATA_ENV}) at its data/ folder"
        )
    return path


def need(path: Path) -> Path:
    if not path.exists():
        raise ConfigError(f"benchmark data file missing: {path}")
    return path


@lru_cache(maxsize=4)
def haystack_text(root: Path) -> str:
    """The public-domain book text that S-NIAH haystacks are cut from (LF line endings)."""
    parts = [
        gutenberg_body(need(root / name).read_text(encoding="utf-8-sig")) for name in HAYSTACK_BOOKS
    ]
    return "\n".join(parts)


def haystack_of(root: Path, chars: int) -> str:
    """The first ``chars`` characters of the haystack, cycling the books if needed."""
    text = haystack_text(root)
    if chars <= len(text):
        return text[:chars]
    repeats = chars // len(text) + 1
    return "\n".join([text] * repeats)[:chars]
