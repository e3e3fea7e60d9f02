"""`?`: every key, where it works, and its binding id (the name a keymap remaps it by); then how the command
bar reads a line (verb or shell) and every verb's usage."""

from __future__ import annotations

from collections.abc import Iterable

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from contree_tui.tui.verbs import USAGE

KEY_NAMES = {"question_mark": "?", "colon": ":", "escape": "esc", "enter": "enter", "space": "space", "slash": "/",
             "ampersand": "&", "at": "@"}


def key_display(keys: str) -> str:
    return " ".join(KEY_NAMES.get(k, k) for k in keys.split(","))


def help_table(sections: Iterable[tuple[str, Iterable[BindingType]]]) -> Table:
    table = Table(box=None, show_header=True, header_style="bold", expand=True, pad_edge=False)
    table.add_column("keys", no_wrap=True)
    table.add_column("does")
    table.add_column("id", style="dim", no_wrap=True)
    for title, bindings in sections:
        table.add_row(Text(title, style="bold underline"), "", "")
        for binding in bindings:
            if isinstance(binding, Binding) and binding.description:
                table.add_row(key_display(binding.key), binding.description, binding.id or "")
    return table


def command_bar_table() -> Table:
    """How the command bar reads a line, and every verb with its usage."""
    table = Table(box=None, show_header=True, header_style="bold", expand=True, pad_edge=False)
    table.add_column("command bar (:)", no_wrap=True)
    table.add_column("does")
    rules = [
        ("tag v1", "a first word that is a verb is the verb (the status bar says `verb: tag` as you type)"),
        ("ls -l /app", "anything else is a shell command, run on the working snapshot (`shell:`)"),
        ("!tag   ␣env", "! or a leading space forces the shell: a program named tag, the shell's env"),
        (":tag v1", "the verb, with its colon (as earlier versions wrote it)"),
        ("tab, tab …", "completes verbs, tags, paths; again: the next candidate, round and round"),
        ("tga v1", "not found (exit 127) and close to a verb: a toast says `did you mean :tag?`"),
    ]
    for line, does in rules:
        table.add_row(Text(line, style="bold"), does)
    table.add_row(Text("verbs", style="bold underline"), "")
    for name, usage in USAGE.items():
        table.add_row(name, usage.split("  ", 1)[-1].strip() + "  · " + usage.split("  ", 1)[0].lstrip(":"))
    return table


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,q,question_mark", "dismiss(None)", "Close", id="help.close")]

    def __init__(self, sections: list[tuple[str, list[BindingType]]]) -> None:
        super().__init__()
        self.sections = sections

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help"):
            yield Static(help_table(self.sections))
            yield Static(command_bar_table(), id="help-command-bar")
            yield Static("esc closes", id="help-footer")
