"""System prompts and turn messages.

Two styles. ``full`` is for capable models: the whole REPL API and the strategies that work
at scale. ``small`` is for small local models: short, one code format, one worked example,
and the question restated in every turn (small models lose it otherwise).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from rlmx.context import ContextInfo

PromptStyleName = Literal["full", "small"]

_FULL_SYSTEM = """\
You answer a question about a context that is far too large to read directly. It is loaded \
in a persistent Python REPL as the variable `context`: {summary}. It begins:
<<<
{head}
>>>

Write Python in ```repl blocks; I run each block and reply with what it prints \
(cut at {max_output:,} chars, so print summaries and slices, not whole texts). \
Variables persist between blocks. Available in the REPL:
- `context`: the data.
- `llm_query(prompt, model=None) -> str`: ask a sub-model; it can read about {sub_chars:,} chars \
at once, so pass it chunks, never all of `context`.
- `llm_query_batched(prompts, model=None) -> list[str]`: many sub-model calls at once \
(concurrent, much faster than a loop). A failed item comes back as a string starting "ERROR:".
- `rlm_query(prompt, context=None) -> str`: hand a sub-task to a nested RLM with its own REPL \
over `context` (or over the prompt when no context is given).
- `SHOW_VARS()`: list the variables you have made.
- `FINAL(answer)`: finish with this answer. `FINAL_VAR(name)`: finish with a variable's value.

How to work: first look at the structure (length, a slice, `re` searches for key terms). \
Prefer code (regex, counting, parsing) where it is exact; use sub-models for meaning: \
split the context into chunks, ask `llm_query_batched` about each, then combine the answers \
in code. Check a result before you finish. Never guess: answer from what your code found.

Example:
```repl
import re
hits = [m.start() for m in re.finditer(r"password", context, re.I)]
print(len(hits))
for i in hits[:5]:
    print(context[max(0, i - 200):i + 200])
```
"""

_SMALL_SYSTEM = """\
You answer a question about a long text. The text is in the Python variable `context` \
({summary}). You cannot see it: you read it by writing Python in a ```repl block. \
I run the block and show you what it prints (at most {max_output:,} chars).

Worked example.
Question: What is the code of the lighthouse door?
You write:
```repl
import re
for m in re.finditer(r"lighthouse", context, re.I):
    print(context[max(0, m.start() - 300):m.end() + 300])
    print("---")
```
Output: ...the keeper said the code of the lighthouse door is BLUE-77, and left...
You write: FINAL("BLUE-77")

`llm_query(prompt)` asks a helper model about a piece of text, for example \
llm_query("What is the code in this text? " + context[i - 3000:i + 3000]).
Write one ```repl block per reply. Print only small pieces. Never guess: answer only \
from what the output shows.
"""

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

    def system(self, info: ContextInfo, *, sub_chars: int) -> str:
        template = _FULL_SYSTEM if self.name == "full" else _SMALL_SYSTEM
        head = info.head.replace("\r\n", "\n")
        return template.format(
            summary=info.summary(),
            head=head,
            max_output=self.max_output_chars,
            sub_chars=sub_chars,
        )

    def first_turn(self, query: str) -> str:
        return _FIRST_TURN[self.name].format(query=query)

    def next_turn(self, query: str, outputs: str) -> str:
        return _NEXT_TURN[self.name].format(query=query, outputs=outputs)

    def no_code(self, query: str) -> str:
        return _NO_CODE[self.name].format(query=query)

    def last_chance(self, query: str) -> str:
        return _LAST_CHANCE.format(query=query)


# Small models read slowly (about 70 prompt tokens/s on 2 cores) and lose track in long turns.
SMALL_MODEL_OUTPUT_CHARS = 4_000


def prompt_style_for(*, small: bool, max_output_chars: int) -> PromptStyle:
    if small:
        return PromptStyle("small", min(max_output_chars, SMALL_MODEL_OUTPUT_CHARS))
    return PromptStyle("full", max_output_chars)


def format_cell_output(index: int, total: int, output: str, error: str | None) -> str:
    label = "Output" if total == 1 else f"Output of block {index + 1}"
    body = output if output.strip() else "(nothing printed)"
    if error:
        body = f"{output}\n{error}" if output.strip() else error
    return f"{label}:\n{body}"
