"""System prompts and turn messages.

Two styles. ``full`` is for capable models: the whole REPL API and the strategies that work
at scale. ``small`` is for small local models: short, one code format, one worked example,
and the question restated in every turn (small models lose it otherwise).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from rlmx.context import ContextHandle, helpers

PromptStyleName = Literal["full", "small"]

_FULL_SYSTEM = """\
You answer a question about a context that is far too large to read directly. It is loaded \
in a persistent Python REPL as the variable `context`: {summary}. {preview}

Write Python in ```repl blocks; I run each block and reply with what it prints \
(cut at {max_output:,} chars, so print summaries and slices, not whole texts). \
Variables persist between blocks. Available in the REPL:
- `context`: the data.
{sub_calls}- `SHOW_VARS()`: list the variables you have made.
- `FINAL(answer)`: finish with this answer. `FINAL_VAR(name)`: finish with a variable's value.
Functions over `context` (they read it on demand, whatever its kind{doc_note}):
{helpers}

How to work: first look at the structure (length, a slice, searches for key terms). \
Prefer code (regex, counting, parsing) where it is exact{strategy} \
Check a result before you finish. Never guess: answer from what your code found.

Example:
```repl
{example}
```
"""

_FULL_SUB_CALLS = """\
- `llm_query(prompt, model=None) -> str`: ask a sub-model; it can read about {sub_chars:,} chars \
at once, so pass it chunks, never all of `context`.
- `llm_query_batched(prompts, model=None) -> list[str]`: many sub-model calls at once \
(concurrent, much faster than a loop). A failed item comes back as a string starting "ERROR:".
- `rlm_query(prompt, context=None) -> str`: hand a sub-task to a nested RLM with its own REPL \
over `context` (or over the prompt when no context is given).
"""

_FULL_STRATEGY = {
    True: "; use sub-models for meaning: split the context into chunks, ask "
    "`llm_query_batched` about each, then combine the answers in code.",
    False: ". There are no sub-models in this run: everything is done in code.",
}

_FULL_EXAMPLE = {
    "str": """import re
hits = [m.start() for m in re.finditer(r"password", context, re.I)]
print(len(hits))
for i in hits[:5]:
    print(context[max(0, i - 200):i + 200])""",
    "other": """print(count(r"password", flags=re.I))
for hit in grep(r"password", around=200, flags=re.I)[:5]:
    print(hit)""",
}

_SMALL_SYSTEM = """\
You answer a question about {what}. {where} ({summary}). You cannot see it: you read it by \
writing Python in a ```repl block. I run the block and show you what it prints (at most \
{max_output:,} chars).

Worked example.
Question: What is the code of the lighthouse door?
You write:
```repl
{example}
```
Output: ...the keeper said the code of the lighthouse door is {answer}, and left...
You write: FINAL("{answer}")
{sub_calls}
{helpers}
Write one ```repl block per reply. Print only small pieces. Never guess: answer only \
from what the output shows.
"""

# The worked example's answer. A small model that finds nothing sometimes answers with it.
EXAMPLE_ANSWER = "BLUE-77"

_SMALL_EXAMPLE = {
    "str": """import re
for m in re.finditer(r"lighthouse", context, re.I):
    print(context[max(0, m.start() - 300):m.end() + 300])
    print("---")""",
    "other": """for hit in grep(r"lighthouse", around=300, flags=re.I):
    print(hit)
    print("---")""",
}

_SMALL_SUB_CALLS = """
`llm_query(prompt)` asks a helper model about a piece of text, for example \
llm_query("What is the code in this text? " + {piece}).
Other functions:"""

_PIECE = {"str": "context[i - 3000:i + 3000]", "other": "slice(i - 3000, i + 3000)"}

_SMALL_HELPERS = {
    "grep": "grep(pattern, around=200): snippets around each regex match",
    "lines": "lines(start, end): lines start to end",
    "slice": "slice(start, end): the text between two positions",
    "find": "find(text): the positions of an exact text",
    "count": "count(pattern): the number of matches",
    "split": "split(separator): a list of pieces",
    "chunk": "chunk(size): a list of pieces of size chars",
    "list_files": "list_files(glob): the file paths",
    "read_file": "read_file(path): a file's text",
    "file_info": "file_info(path): a file's size and lines",
    "search_files": "search_files(pattern): each matching line as path:line: text",
}

_WHAT = {
    "text": ("a long text", "The text is in the Python variable `context`"),
    "documents": ("some documents", "They are in the Python variable `context`"),
    "directory": ("a directory of files", "The files are in the Python variable `context`"),
}

_FIRST_TURN = {
    "full": "Question: {query}\n\nStart by exploring `context` in a ```repl block.",
    "small": "Question: {query}\n\nWrite a ```repl block that searches `context` for the answer.",
}

_NEXT_TURN = {
    "full": "{outputs}\n\nQuestion: {query}\nContinue, or call FINAL(answer) when you are sure.",
    "small": "{outputs}\n\nQuestion: {query}\n"
    "If the output shows the answer, reply FINAL with the answer copied from the output. "
    "Otherwise write another ```repl block.",
}

_NO_CODE = {
    "full": "Your reply had no ```repl block and no FINAL(...). Write Python in a ```repl block "
    "to explore `context`, or finish with FINAL(answer).\n\nQuestion: {query}",
    "small": "Write a ```repl block to search `context`, or reply FINAL with the answer."
    "\n\nQuestion: {query}",
}

_LAST_CHANCE = (
    "You have no steps left. Reply with one line, FINAL followed by the answer in quotes, "
    "taken from what the outputs above showed. If they did not show it, reply "
    'FINAL("not found").\n\nQuestion: {query}'
)


@dataclass(frozen=True, slots=True)
class PromptStyle:
    name: PromptStyleName
    max_output_chars: int
    # Take a reply whose code printed nothing, or re-ran with the same output, out of the
    # conversation and say so in the turn before it (see Engine._iterate); small style only.
    drop_fruitless_replies: bool = False

    def system(self, info: ContextHandle, *, sub_chars: int, sub_calls: bool = True) -> str:
        """The system prompt; ``sub_calls=False`` leaves the sub-call functions out."""
        plain = "str" if info.form == "str" else "other"
        names = helpers.COMMON + (helpers.DIRECTORY if info.kind == "directory" else ())
        if self.name == "small":
            what, where = _WHAT[info.kind]
            return _SMALL_SYSTEM.format(
                what=what,
                where=where,
                summary=info.summary(),
                max_output=self.max_output_chars,
                example=_SMALL_EXAMPLE[plain],
                answer=EXAMPLE_ANSWER,
                sub_calls=_SMALL_SUB_CALLS.format(piece=_PIECE[plain])
                if sub_calls
                else "\nFunctions:",
                helpers="\n".join(_SMALL_HELPERS[n] for n in names),
            )
        several = "; with several documents, doc= (an index or a name) picks one"
        return _FULL_SYSTEM.format(
            summary=info.summary(),
            preview=_preview(info),
            max_output=self.max_output_chars,
            sub_calls=_FULL_SUB_CALLS.format(sub_chars=sub_chars) if sub_calls else "",
            strategy=_FULL_STRATEGY[sub_calls],
            doc_note=several if info.kind != "text" else "",
            helpers="\n".join(f"- {helpers.HELP[n]}" for n in names),
            example=_FULL_EXAMPLE[plain],
        )

    def first_turn(self, query: str) -> str:
        return _FIRST_TURN[self.name].format(query=query)

    def next_turn(self, query: str, outputs: str) -> str:
        return _NEXT_TURN[self.name].format(query=query, outputs=outputs)

    def no_code(self, query: str) -> str:
        return _NO_CODE[self.name].format(query=query)

    def nothing_found(self, query: str, misses: int) -> str:
        """The note on a reply whose code printed nothing (small style)."""
        times = "Your search" if misses == 1 else f"Your {misses} searches"
        return (
            f"{times} for this printed nothing: no match. Do not answer yet, and do not search "
            f"the same way again. {_shorter(query)}"
        )

    def ran_again(self) -> str:
        """The note on a reply that ran the same code again, with the same output."""
        return (
            "You ran that same code again, and it printed the same output, shown above. If it "
            "shows the answer, reply FINAL with the answer copied from it. Otherwise write "
            "different code."
        )

    def copies_example(self, answer: str, *, shown: bool) -> bool:
        """Whether a small model's answer is the worked example's, which no output showed."""
        return self.name == "small" and not shown and answer.strip(" '\"") == EXAMPLE_ANSWER

    def example_copied(self) -> str:
        """The note on an answer copied from the worked example."""
        return (
            f"{EXAMPLE_ANSWER} is the answer of the worked example, not of this question. "
            f"If the output above does not show the answer: {_rarer}."
        )

    def last_chance(self, query: str) -> str:
        return _LAST_CHANCE.format(query=query)


# Small models read slowly (about 70 prompt tokens/s on 2 cores) and lose track in long turns.
SMALL_MODEL_OUTPUT_CHARS = 4_000


def prompt_style_for(*, small: bool, max_output_chars: int) -> PromptStyle:
    if small:
        return PromptStyle(
            "small", min(max_output_chars, SMALL_MODEL_OUTPUT_CHARS), drop_fruitless_replies=True
        )
    return PromptStyle("full", max_output_chars)


# Small models read an empty output as "nothing more to find" and invent an answer, or run the
# same search again; they mostly searched too long a phrase (RULER's needle says "magic numbers
# for" where the question says "magic number for"). So the small style says the search found
# nothing and proposes the question's most distinctive word as the pattern.
_SHORTER = "Search again with fewer words: one distinctive name, number or key{example}."


_rarer = "search for a rarer word of the question, or print less around each match"


def _shorter(query: str) -> str:
    keys = search_keys(query)
    return _SHORTER.format(example=f', for example r"{keys[0]}"' if keys else " from the question")


def format_cell_output(
    index: int,
    total: int,
    output: str,
    error: str | None,
    *,
    style: PromptStyleName = "full",
    query: str = "",
    cut: bool = False,
) -> str:
    label = "Output" if total == 1 else f"Output of block {index + 1}"
    if error:
        body = f"{output}\n{error}" if output.strip() else error
    elif output.strip():
        body = output
        if cut and style == "small":
            # With too many matches the one that answers is often in the cut middle, and a
            # small model then answers from what it sees, or copies the worked example.
            body += f"\n(Most of this output was cut. If it does not show the answer: {_rarer}.)"
    elif style == "small":
        body = f"(nothing printed: the search found no match. {_shorter(query)})"
    else:
        body = "(nothing printed)"
    return f"{label}:\n{body}"


_COMMON_WORDS = frozenset(
    """a about after all an and answer any are as at be before by can context did do does each
    for from given has have how in into is it its mentioned many much of on one or provided
    question says text that the their there this to was were what when where which who whose
    why with within""".split()  # noqa: SIM905 (a word list reads better as text)
)


def search_keys(query: str, limit: int = 2) -> list[str]:
    """The question's most distinctive words, best first: a hyphen, digit or underscore inside
    a word (``fierce-eyelash``, ``ERR-42``) beats a capitalised name, which beats a long word."""
    words = re.findall(r"[A-Za-z0-9][\w.-]*[A-Za-z0-9]|[A-Za-z0-9]", query)
    scored: dict[str, tuple[int, int]] = {}
    for position, word in enumerate(words):
        if word.lower() in _COMMON_WORDS or len(word) < 3:
            continue
        if re.search(r"[\d_-]", word):
            rank = 3
        elif word[0].isupper() and position > 0:
            rank = 2
        elif len(word) >= 7:
            rank = 1
        else:
            continue
        scored.setdefault(word, (rank, len(word)))
    return sorted(scored, key=lambda w: scored[w], reverse=True)[:limit]


# A tail is shown only for a context long enough that head and tail are a small part of it.
TAIL_FROM_CHARS = 20_000


def _preview(info: ContextHandle) -> str:
    if info.kind == "directory":
        return f"Its files include:\n<<<\n{info.head}\n>>>"
    text = f"It begins:\n<<<\n{info.head.replace(chr(13) + chr(10), chr(10))}\n>>>"
    if info.tail and (info.chars or 0) >= TAIL_FROM_CHARS:
        text += f"\nand ends:\n<<<\n{info.tail.replace(chr(13) + chr(10), chr(10))}\n>>>"
    return text
