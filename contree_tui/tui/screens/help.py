"""`?`: the command bar's verbs (first: `:` then `:import …` is the way in a new user missed), then every key,
where it works, and its binding id (the name a keymap remaps it by)."""

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


def verbs_table() -> Table:
    """Every verb with its usage: what a line of the command bar starting with `:` can be."""
    table = Table(box=None, show_header=True, header_style="bold", expand=True, pad_edge=False)
    table.add_column("verbs: press :, then type the line (a line starting with : is a verb; else a shell "
                     "command on the working snapshot)", no_wrap=False)
    for usage in USAGE.values():
        line, _, does = usage.partition("  ")
        table.add_row(Text.assemble((line, "bold"), "  ", does))
    return table


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,q,question_mark", "dismiss(None)", "Close", id="help.close")]

    def __init__(self, sections: list[tuple[str, list[BindingType]]]) -> None:
        super().__init__()
        self.sections = sections

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help"):
            yield Static(verbs_table(), id="help-verbs")
            yield Static(help_table(self.sections))
            yield Static("esc closes", id="help-footer")
