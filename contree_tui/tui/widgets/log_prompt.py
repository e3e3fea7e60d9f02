"""The one-line prompt under the log: a search (`/`), a filter (`&`, or a search typed with a leading `&`, as
in less) or the path to save the log to (`s`). Hidden until asked; enter answers, esc closes it."""

from __future__ import annotations

from typing import Literal

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.message import Message
from textual.widgets import Input, Label

PromptMode = Literal["search", "save"]

PROMPTS: dict[PromptMode, tuple[str, str]] = {
    "search": ("/", "text to find (smart case) · &text shows only the lines with it · enter"),
    "save": ("save to", "path of the file · enter"),
}


class LogPrompt(Horizontal):
    BINDINGS = [Binding("escape", "cancel", "Close the prompt", id="log-prompt.cancel")]

    class Answered(Message):
        def __init__(self, mode: PromptMode, value: str) -> None:
            super().__init__()
            self.mode = mode
            self.value = value

    class Closed(Message):
        """Closed without an answer."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.mode: PromptMode = "search"

    def compose(self) -> ComposeResult:
        yield Label("/", id="log-prompt-label")
        yield Input(id="log-prompt-input", compact=True, select_on_focus=False)

    @property
    def input(self) -> Input:
        return self.query_one(Input)

    def ask(self, mode: PromptMode, value: str = "") -> None:
        self.mode = mode
        label, placeholder = PROMPTS[mode]
        self.query_one(Label).update(label)
        self.input.placeholder = placeholder
        self.input.value = value
        self.input.cursor_position = len(value)
        self.add_class("-open")
        self.input.focus()

    @property
    def is_open(self) -> bool:
        return self.has_class("-open")

    def close(self) -> None:
        self.remove_class("-open")

    @on(Input.Submitted)
    def _submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.close()
        self.post_message(self.Answered(self.mode, event.value))

    def action_cancel(self) -> None:
        self.close()
        self.post_message(self.Closed())
