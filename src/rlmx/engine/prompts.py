"""System prompts and turn messages.

Two styles. ``full`` is for capable models: the whole REPL API and the strategies that work
at scale. ``small`` is for small local models: short, one code format, one worked example,
and the question restated in every turn (small models lose it otherwise).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from rlmx.context import ContextHandle, helpers
from rlmx.engine.examples import Form, Kind, example_for
from rlmx.engine.planning import MapPlan
from rlmx.engine.search_keys import KeyCount, describe_keys, search_keys

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
- `llm_map(instruction, items, labels=None) -> list`: the same question about each item of a \
list (lines, records, chunks), one sub-model call per item, answers in order; with `labels`, \
each answer is one of them (None if unreadable). Use it to judge meaning item by item, then \
count or group the answers in code.
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
{example}
{sub_calls}
{helpers}
Write one ```repl block per reply. Print only small pieces. Never guess: answer only \
from what the output shows.
"""

_SMALL_SUB_CALLS = """
`llm_query(prompt)` asks a helper model about a piece of text, for example \
llm_query("What is the code in this text? " + {piece}).
`llm_map(instruction, items, labels=None)` asks the helper model the same thing about each \
item of a list (lines, records, pieces), one item at a time, and returns the answers in order; \
with labels, every answer is one of them. Count or filter the answers in code.
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
    "functions": "functions(): the functions of the .py files (.path .name .public .doc .text)",
    "imports": "imports(): the imports of the .py files (.path .module .local)",
    "extract": "extract(pattern): every match in the whole text, as a list (the part in "
    "parentheses); extract(kind='ipv4') for IPv4 addresses (also number, email, url, date, "
    "time, duration, hex, uuid)",
    "tally": "tally(values, top=10, templates=False): (value, count) pairs, most common first; "
    "templates=True counts log messages alike when only numbers, times or ids differ",
    "stats": "stats(values): count, min, max, mean, p50, p90, p95, p99 of numbers",
    "top_words": "top_words(top=10): the most frequent words, common English words left out",
}
# The small prompt lists the counting helpers only where the question counts: every line of
# a prompt is one more thing for a 1.5B model to copy where it does not belong.
_COUNTING_KINDS = ("count", "classify")

_WHAT = {
    "text": ("a long text", "The text is in the Python variable `context`"),
    "documents": ("some documents", "They are in the Python variable `context`"),
    "directory": ("a directory of files", "The files are in the Python variable `context`"),
}

_FIRST_TURN_FULL = "Question: {query}\n\nStart by exploring `context` in a ```repl block."
_FIRST_TURN_SMALL: dict[Kind, str] = {
    "lookup": "Write a ```repl block that searches `context` for the answer.",
    "count": "Write a ```repl block that computes the answer from `context` in code.",
    "classify": "Write a ```repl block that splits `context` into its items and prints how "
    "many there are, the first two and two from the middle.",
    "explain": "Write a ```repl block that searches `context` for the part that answers it.",
}

_PLANNED = """\
Question: {query}

A plan drafted from a sample of the data: {plan} Write the ```repl block that runs it."""


def _short(answer: str, limit: int = 80) -> str:
    """An answer quoted back to the model: long ones cut, with a mark."""
    return answer if len(answer) <= limit else answer[: limit - 3] + "..."


def _describe_plan(plan: MapPlan) -> str:
    where = (
        f"the {plan.items:,} lines that contain {plan.marker!r}"
        if plan.marker
        else (f"the {plan.items:,} non-empty lines")
    )
    labels = ", ".join(repr(label) for label in plan.labels)
    return f"the items are {where}; ask each one {plan.instruction!r}; the answers are {labels}."


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
    # The small style's worked example is the one for the question's kind of work.
    kind: Kind = "lookup"

    def system(self, info: ContextHandle, *, sub_chars: int, sub_calls: bool = True) -> str:
        """The system prompt; ``sub_calls=False`` leaves the sub-call functions out."""
        plain: Literal["str", "other"] = "str" if info.form == "str" else "other"
        names = helpers.COMMON + (helpers.DIRECTORY if info.kind == "directory" else ())
        if self.name == "full" or self.kind in _COUNTING_KINDS:
            names += helpers.ANALYTICS
        if self.name == "small":
            what, where = _WHAT[info.kind]
            form: Form = "directory" if info.kind == "directory" else plain
            return _SMALL_SYSTEM.format(
                what=what,
                where=where,
                summary=info.summary(),
                max_output=self.max_output_chars,
                example=example_for(self.kind, form, sub_calls=sub_calls).render(),
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

    def first_turn(
        self,
        query: str,
        *,
        kind: Kind = "lookup",
        keys: Sequence[KeyCount] = (),
        plan: MapPlan | None = None,
    ) -> str:
        if self.name == "full":
            return _FIRST_TURN_FULL.format(query=query)
        if plan is not None:
            return _PLANNED.format(query=query, plan=_describe_plan(plan))
        counts = describe_keys(keys) if kind in ("lookup", "count", "explain") else ""
        return "\n\n".join(
            part for part in (f"Question: {query}", counts, _FIRST_TURN_SMALL[kind]) if part
        )

    def next_turn(self, query: str, outputs: str) -> str:
        return _NEXT_TURN[self.name].format(query=query, outputs=outputs)

    def no_code(self, query: str) -> str:
        return _NO_CODE[self.name].format(query=query)

    def nothing_found(self, hint: str) -> str:
        """The note on a reply whose code printed nothing (small style)."""
        return (
            "Your code printed nothing: no match. Do not answer yet, and do not search the "
            f"same way again: {hint}."
        )

    def answer_restates(self, answer: str, hint: str) -> str:
        """The note on a lookup answer that is only words of the question, after a cut output."""
        shown = _short(answer)
        return (
            f"{shown!r} is a word of the question, not its answer, and the output was too long "
            f"to read whole. Search with fewer matches: {hint}, and print the text around each."
        )

    def only_echo(self) -> str:
        """The note on a reply whose output only repeated words of the question."""
        return (
            "Your code printed only words of the question itself: the text you searched for, "
            "not what the context says about it. Do not answer with it. Print the text around "
            "each match instead, e.g. print(context[max(0, m.start() - 300):m.end() + 300]) "
            "for each m in re.finditer(...)."
        )

    def ran_again(self) -> str:
        """The note on a reply that ran the same code again, with the same output."""
        return (
            "You ran that same code again, and it printed the same output, shown above. If it "
            "shows the answer, reply FINAL with the answer copied from it. Otherwise write "
            "different code."
        )

    def example_output_copied(self) -> str:
        """The note on a reply that repeats the worked example's output instead of code."""
        return (
            "Your reply was the output of the worked example's code, not of this question: no "
            "code of yours has run yet. Write a ```repl block that looks at `context` for this "
            "question."
        )

    def example_copied(self, hint: str) -> str:
        """The note on an answer copied from the worked example."""
        return (
            "That is the answer of the worked example, not of this question. If the output "
            f"above does not show the answer: {hint}, or print less around each match."
        )

    def not_shown(self, answer: str) -> str:
        """The note on an answer, typed after an error or an empty output, that no output showed."""
        shown = _short(answer)
        return (
            f"No output so far shows {shown!r}. Do not guess: first write code that prints the "
            "text or the number that answers the question, then reply FINAL with it."
        )

    def check_answer(self, answer: str) -> str:
        """Before a count is final: compute it again, another way. A zero is most often a
        pattern that matched nothing, so the check starts from the data's own lines."""
        if answer.strip(" '\"").rstrip(".") in ("0", "0.0"):
            return (
                "A count of 0 usually means the pattern matched no line. Before you finish, "
                "print 5 lines of the context that the question is about, look at how they are "
                "written, and count again with a pattern taken from them. Then reply FINAL."
            )
        return (
            f"Before you finish, check {answer!r} another way: write different code that "
            "computes it again (another pattern or way to parse; len(set(...)) counts "
            "different values, len(...) counts them all) and print the result. Then reply FINAL "
            "with the answer the check supports."
        )

    def check_counts(self, answer: str, counts: Sequence[tuple[str, int]]) -> str:
        """Before an answer about labels is final: the counts it rests on, side by side."""
        listed = "\n".join(f"{label}: {count}" for label, count in counts)
        if len(counts) == 2:
            # Said outright: under a Counter of 3 and 78, the 1.5B model kept "3 is more".
            (a, x), (b, y) = counts
            relation = (
                "more common than" if x > y else "less common than" if x < y else "as common as"
            )
            listed += f"\nSo {a} ({x}) is {relation} {b} ({y})."
        return (
            f"Before you finish, compare your answer {answer!r} with the counts printed "
            f"above:\n{listed}\nReply FINAL with the answer these numbers support."
        )

    def checks_differ(self, answer: str) -> str:
        return (
            f"Your check gave {answer!r}, which differs from your first answer. Print a few of "
            "the items the two ways disagree on, decide which way is right, then reply FINAL."
        )

    def shorter_hint(self, query: str) -> str:
        keys = search_keys(query)
        if keys:
            return (
                f'search with fewer words, one distinctive name, number or key, e.g. r"{keys[0]}"'
            )
        return "search with fewer words: one distinctive name, number or key of the question"

    def last_chance(self, query: str) -> str:
        return _LAST_CHANCE.format(query=query)


# Small models read slowly (about 70 prompt tokens/s on 2 cores) and lose track in long turns.
SMALL_MODEL_OUTPUT_CHARS = 4_000


def prompt_style_for(*, small: bool, max_output_chars: int, kind: Kind = "lookup") -> PromptStyle:
    if small:
        return PromptStyle("small", min(max_output_chars, SMALL_MODEL_OUTPUT_CHARS), kind)
    return PromptStyle("full", max_output_chars)


def format_cell_output(
    index: int,
    total: int,
    output: str,
    error: str | None,
    *,
    style: PromptStyleName = "full",
    cut: bool = False,
    hint: str = "",
) -> str:
    """One cell's output as the root model reads it; ``hint`` names a rarer search key."""
    label = "Output" if total == 1 else f"Output of block {index + 1}"
    if error:
        body = f"{output}\n{error}" if output.strip() else error
    elif output.strip():
        body = output
        if cut and style == "small":
            # With too many matches the one that answers is often in the cut middle, and a
            # small model then answers from what it sees, or copies the worked example.
            body += (
                "\n(Most of this output was cut. If it does not show the answer: "
                f"{hint or 'search for a rarer word of the question'}, or print less around "
                "each match.)"
            )
    elif style == "small":
        body = f"(nothing printed: no match. Next, {hint or 'search with fewer words'}.)"
    else:
        body = "(nothing printed)"
    return f"{label}:\n{body}"


# A tail is shown only for a context long enough that head and tail are a small part of it.
TAIL_FROM_CHARS = 20_000


def _preview(info: ContextHandle) -> str:
    if info.kind == "directory":
        return f"Its files include:\n<<<\n{info.head}\n>>>"
    text = f"It begins:\n<<<\n{info.head.replace(chr(13) + chr(10), chr(10))}\n>>>"
    if info.tail and (info.chars or 0) >= TAIL_FROM_CHARS:
        text += f"\nand ends:\n<<<\n{info.tail.replace(chr(13) + chr(10), chr(10))}\n>>>"
    return text
