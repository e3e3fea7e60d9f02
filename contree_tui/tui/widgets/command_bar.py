"""The command bar: `:` focuses it; enter runs the text as a shell command on the working snapshot."""

from __future__ import annotations

from textual import on
from textual.binding import Binding
from textual.message import Message
from textual.widgets import Input


class CommandBar(Input):
    BINDINGS = [
        Binding("escape", "leave", "Leave", show=False, id="command-bar.leave"),
    ]

    class Run(Message):
        """A command to run on the working snapshot."""

        def __init__(self, command: str) -> None:
            super().__init__()
            self.command = command

    class Left(Message):
        """The user left the bar (escape or after submitting): focus goes back where it was."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(placeholder=":  a shell command to run on the working snapshot", id=id)

    @on(Input.Submitted)
    def _submitted(self, event: Input.Submitted) -> None:
        event.stop()
        command = event.value.strip()
        self.value = ""
        if command:
            self.post_message(self.Run(command))
        self.post_message(self.Left())

    def action_leave(self) -> None:
        self.value = ""
        self.post_message(self.Left())
