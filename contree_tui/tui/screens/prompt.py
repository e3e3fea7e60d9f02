"""One line of input as a small modal: enter answers with the text, escape with None. Optional completion from
a list (tab or → accepts the suggestion), e.g. the tags a jump can go to."""

from __future__ import annotations

from collections.abc import Iterable

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.suggester import SuggestFromList
from textual.widgets import Input, Label


class PromptScreen(ModalScreen[str | None]):
    BINDINGS = [
        Binding("escape", "cancel", "Cancel", id="prompt.cancel"),
        Binding("tab", "complete", "Complete", show=False, id="prompt.complete"),
    ]
    AUTO_FOCUS = "#prompt-input"

    def __init__(self, question: str, value: str = "", *, placeholder: str = "",
                 choices: Iterable[str] = (), detail: str = "") -> None:
        super().__init__()
        self.question = question
        self.value = value
        self.placeholder = placeholder
        self.choices = list(choices)
        self.detail = detail

    def compose(self) -> ComposeResult:
        with Vertical(id="prompt"):
            yield Label(self.question, id="prompt-question")
            suggester = SuggestFromList(self.choices, case_sensitive=False) if self.choices else None
            yield Input(self.value, placeholder=self.placeholder, suggester=suggester, id="prompt-input",
                        select_on_focus=False)
            if self.detail:
                yield Label(self.detail, id="prompt-detail")

    @property
    def input(self) -> Input:
        return self.query_one(Input)

    def action_cancel(self) -> None:
        self.dismiss(None)

    def action_complete(self) -> None:
        """tab takes the suggestion shown after the cursor, as → does at the end of the line."""
        field = self.input
        field.cursor_position = len(field.value)
        field.action_cursor_right()  # at the end of the line, → accepts the suggestion

    @on(Input.Submitted)
    def _submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.dismiss(event.value)
