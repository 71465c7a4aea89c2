"""The root model's side of a run: its messages, and the taking back of fruitless replies.

A small model copies its own last reply. A search that found nothing, code re-run with the same
output, or the worked example's answer copied out of the system prompt therefore comes back
turn after turn while the reply stays in view. :meth:`Conversation.retract` takes such a reply
out of what the model sees (the trace keeps it) and sends the turn before it again with a
note; once a reply is kept, the turn goes back to what it was, so no note stays in view.
"""

from __future__ import annotations

from rlmx.types import Message


class Conversation:
    def __init__(self, system: str, first_turn: str) -> None:
        self.messages = [Message("system", system), Message("user", first_turn)]
        self._base: str | None = None  # the turn as it was before any note

    def reply(self, text: str) -> None:
        self.messages.append(Message("assistant", text))

    def answer(self, turn: str) -> None:
        """Keep the last reply and answer it with ``turn``."""
        if self._base is not None:
            self.messages[-2] = Message("user", self._base)
        self._base = None
        self.messages.append(Message("user", turn))

    def follow(self, action: str, text: str) -> None:
        """Go on as a :class:`~rlmx.engine.turns.Next` says: ``answer`` or ``retract``."""
        if action == "retract":
            self.retract(text)
        else:
            self.answer(text)

    def retract(self, note: str) -> None:
        """Take the last reply back; the turn before it is sent again, followed by ``note``."""
        self.messages.pop()
        if self._base is None:
            self._base = self.messages[-1].content
        self.messages[-1] = Message("user", f"{self._base}\n\n{note}")
