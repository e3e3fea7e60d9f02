"""`?`: every key, where it works, and its binding id (the name a keymap remaps it by); then how the command
bar reads a line (verb or shell) and every verb's usage, generated from the verb table (verbs.USAGE), so a new
verb is listed without touching this file. j/k, g/G and the page keys scroll it (at 80x24 it is 4 screens)."""

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
             "ampersand": "&", "at": "@", "apostrophe": "'"}
IDS_MIN_WIDTH = 70  # narrower, the ids column (no_wrap, up to 27 cells) left "does" no room at all (50x14)
SCROLL_HINT = "j/k ↓↑ scroll · g/G top/bottom · pgup/pgdn · esc closes"


def key_display(keys: str) -> str:
    return " ".join(KEY_NAMES.get(k, k) for k in keys.split(","))


def binding_help(binding: Binding) -> str:
    """What a binding does, in full: its tooltip where the footer's description is a short word (`z Zoom`)."""
    return binding.tooltip or binding.description


def help_table(sections: Iterable[tuple[str, Iterable[BindingType]]], *, ids: bool = True) -> Table:
    """`ids`: with the binding ids (a keymap's names), which take a third of the width."""
    table = Table(box=None, show_header=True, header_style="bold", expand=True, pad_edge=False)
    table.add_column("keys", no_wrap=True)
    table.add_column("does")
    if ids:
        table.add_column("id", style="dim", no_wrap=True)
    for title, bindings in sections:
        table.add_row(Text(title, style="bold underline"), "", *([""] if ids else []))
        for binding in bindings:
            if isinstance(binding, Binding) and binding.description:
                row = [key_display(binding.key), binding_help(binding)]
                table.add_row(*row, *([binding.id or ""] if ids else []))
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
        table.add_row(name, verb_help(usage))
    return table


def verb_help(usage: str) -> str:
    """`:tag NAME  tag the working snapshot` → `tag the working snapshot  · tag NAME`."""
    form, _, does = usage.partition("  ")
    return f"{does.strip()}  · {form.lstrip(':')}" if does else form.lstrip(":")


class HelpScreen(ModalScreen[None]):
    BINDINGS = [
        Binding("escape,q,question_mark", "dismiss(None)", "Close", id="help.close"),
        Binding("j,down", "scroll('down')", "Scroll down", show=False, id="help.down"),
        Binding("k,up", "scroll('up')", "Scroll up", show=False, id="help.up"),
        Binding("pagedown,space,ctrl+f", "scroll('page_down')", "Page down", show=False, id="help.page-down"),
        Binding("pageup,ctrl+b", "scroll('page_up')", "Page up", show=False, id="help.page-up"),
        Binding("g,home", "scroll('home')", "Top", show=False, id="help.top"),
        Binding("G,end", "scroll('end')", "Bottom", show=False, id="help.bottom"),
    ]

    def __init__(self, sections: list[tuple[str, list[BindingType]]]) -> None:
        super().__init__()
        self.sections = sections

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help") as scroll:
            scroll.border_subtitle = SCROLL_HINT  # on the frame: seen before any scrolling
            yield Static(help_table(self.sections, ids=self.app.size.width >= IDS_MIN_WIDTH), id="help-keys")
            yield Static(command_bar_table(), id="help-command-bar")
            yield Static("esc closes", id="help-footer")

    @property
    def scroller(self) -> VerticalScroll:
        return self.query_one("#help", VerticalScroll)

    def action_scroll(self, where: str) -> None:
        """The screen's keys, not the scroller's: its own (↑↓ pgup pgdn) work only while it has the focus, and
        vim users press j/k (they did nothing: the help looked cut off at 80x24)."""
        scroller = self.scroller
        {"down": scroller.scroll_down, "up": scroller.scroll_up, "page_down": scroller.scroll_page_down,
         "page_up": scroller.scroll_page_up, "home": scroller.scroll_home,
         "end": scroller.scroll_end}[where](animate=False)
