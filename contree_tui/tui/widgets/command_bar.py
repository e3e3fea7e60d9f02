"""The command bar: `:` focuses it; enter runs the line (a verb when its first word is one, `tag v1`; else a
shell command on the working snapshot, `!cmd` or a leading space forcing the shell; see verbs.py). While it
is focused the status bar says which the line is (verbs.intent). ↑/↓ walk the history (kept across
sessions, history.py), ctrl+r searches it backwards (the query shows in the status bar; typing narrows,
ctrl+r again goes older, enter runs the match, escape gives the line back, any other key keeps the match
to edit). Completion is Textual's
suggester: the rest of the word shows dimmed, tab (or →) takes it; tab again goes on to the next candidate
(and round); what completes is completion.py's.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from textual import events, on
from textual.binding import Binding
from textual.message import Message
from textual.suggester import Suggester
from textual.widgets import Input

from contree_tui.tui import verbs
from contree_tui.tui.completion import (
    Kind,
    Slot,
    complete_line,
    matching,
    path_candidates,
    pipeline_functions,
    slot_for,
    split_image_path,
    split_local_path,
    static_candidates,
    verb_space,
)
from contree_tui.tui.history import CommandHistory, HistoryWalk, ReverseSearch, history_path

LISTING_TIMEOUT = 2.0  # a completion that needs a slow listing is dropped rather than shown late
LOCAL_LISTING_LIMIT = 2000
PIPELINE_FILE_LIMIT = 1 << 20  # bytes: a pipeline file is read whole to find its functions; past 1 MiB it is not


class CompletionSource(Protocol):
    """Where the bar's completions come from (the main screen)."""

    def completion_tags(self) -> Iterable[str]: ...

    def completion_cwd(self) -> str: ...

    def completion_local_root(self) -> Path: ...

    async def completion_listing(self, directory: str) -> list[tuple[str, bool]]: ...


class CommandSuggester(Suggester):
    """Completes the line's last word. Uncached by Textual (tags and the working snapshot change under it);
    image listings are cached by the source."""

    def __init__(self, source: CompletionSource) -> None:
        super().__init__(use_cache=False, case_sensitive=True)
        self.source = source

    async def get_suggestion(self, value: str) -> str | None:
        found = await self.candidates(value)
        return complete_line(value, *found) if found is not None else None

    async def candidates(self, value: str) -> tuple[Slot, list[str]] | None:
        """The slot at the end of `value` and every whole word it may become (None: nothing completes)."""
        slot = slot_for(value)
        if slot is None:
            return None
        if slot.kind in (Kind.VERB, Kind.CHOICE, Kind.TAG):
            return slot, static_candidates(slot, self.source.completion_tags())
        if slot.kind is Kind.PIPELINE_FUNC:  # `:pipeline pipe.py:pr`: the file's pipeline functions
            file = slot.word.rpartition(":")[0]
            text = await asyncio.to_thread(_read_text, self.source.completion_local_root() / Path(file).expanduser())
            return slot, [f"{file}:{name}" for name in pipeline_functions(text)]
        if slot.kind is Kind.LOCAL_PATH:
            word = split_local_path(slot.word)
            directory = Path(word.directory)
            if not directory.is_absolute():
                directory = self.source.completion_local_root() / directory
            return slot, path_candidates(word, _local_entries(directory))
        word = split_image_path(slot.word, self.source.completion_cwd())
        try:
            entries = await asyncio.wait_for(self.source.completion_listing(word.directory), LISTING_TIMEOUT)
        except Exception:  # noqa: BLE001 - no listing (not connected, no such directory): simply no suggestion
            return None
        return slot, path_candidates(word, entries, dirs_only=slot.kind is Kind.IMAGE_DIR)


@dataclass
class TabCycle:
    """Repeated tabs: the line before the word, the words it goes through, and the line the last tab left
    (typing anything else ends the cycle)."""

    head: str
    slot: Slot
    options: list[str]
    index: int  # -1: the common start was taken, the next tab shows the first option
    shown: str = ""

    def line(self) -> str:
        option = self.options[self.index]
        return self.head + option + verb_space(self.slot, option)

    def step(self) -> str:
        self.index = (self.index + 1) % len(self.options)
        self.shown = self.line()
        return self.shown

    @property
    def position(self) -> str:
        return f"tab {self.index + 1}/{len(self.options)}: " + " ".join(self.options[:8]) + (
            " …" if len(self.options) > 8 else "")


def _read_text(path: Path) -> str:
    try:
        return path.read_text(errors="replace") if path.stat().st_size <= PIPELINE_FILE_LIMIT else ""
    except OSError:
        return ""


def _local_entries(directory: Path) -> list[tuple[str, bool]]:
    entries: list[tuple[str, bool]] = []
    try:
        with os.scandir(directory) as found:
            for entry in found:
                entries.append((entry.name, entry.is_dir()))
                if len(entries) >= LOCAL_LISTING_LIMIT:
                    break
    except OSError:
        return []
    return entries


class CommandBar(Input):
    BINDINGS = [
        Binding("escape", "leave", "Leave (in a search: give the line back)", show=False, id="command-bar.leave"),
        Binding("up", "history_older", "Older command in the history", show=False, id="command-bar.history-older"),
        Binding("down", "history_newer", "Newer command in the history", show=False, id="command-bar.history-newer"),
        Binding("ctrl+r", "history_search", "Search the history backwards (again: older)", show=False,
                id="command-bar.history-search"),
        Binding("tab", "complete", "Complete the word (path, tag, verb)", show=False, id="command-bar.complete"),
    ]

    class Run(Message):
        """A line to carry out: a shell command on the working snapshot, or a `:verb`."""

        def __init__(self, command: str) -> None:
            super().__init__()
            self.command = command

    class Left(Message):
        """The user left the bar (escape or after submitting): focus goes back where it was."""

    class Prompt(Message):
        """For the status bar while the bar is focused: what enter will do with the line (verb or shell), the
        tab cycle, or the reverse search's prompt ("" when the bar is left)."""

        def __init__(self, prompt: str) -> None:
            super().__init__()
            self.prompt = prompt

    def __init__(self, *, id: str | None = None, history: CommandHistory | None = None) -> None:
        # select_on_focus off: a pasted `:line` opens the bar with the line (main.py on_paste), which the first
        # key typed must not replace
        super().__init__(placeholder="a verb (tag v1, cd /src, env K=V …) or a shell command · !cmd forces the shell",
                         id=id, select_on_focus=False)
        self.history = history if history is not None else CommandHistory(history_path())
        self._walk: HistoryWalk | None = None
        self._search: ReverseSearch | None = None
        self._navigated: str | None = None  # the value the walk/search set (Changed arrives later, async)
        self._cycle: TabCycle | None = None

    def use_completion(self, source: CompletionSource) -> None:
        self.suggester = CommandSuggester(source)

    # Submitting and leaving -------------------------------------------------------------------------------

    @on(Input.Submitted)
    def _submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self._end_search(keep=True)
        command = event.value.rstrip()  # a leading space is meaningful: it forces the shell
        self._set("")
        self._walk = None
        self._cycle = None
        if command.strip():
            self.history.add(command)
            self.post_message(self.Run(command))
        self.post_message(self.Left())

    def action_leave(self) -> None:
        if self._search is not None:
            self._end_search(keep=False)
            return
        self._set("")
        self._walk = None
        self.post_message(self.Left())

    def _set(self, value: str) -> None:
        self._navigated = value
        self.value = value
        self.cursor_position = len(value)

    @on(Input.Changed)
    def _changed(self, event: Input.Changed) -> None:
        if event.value != self._navigated:
            self._walk = None  # typing starts a new walk from what is typed
        if self._cycle is not None and event.value != self._cycle.shown:
            self._cycle = None
        self._show_prompt()

    def on_focus(self, event: events.Focus) -> None:
        self._show_prompt()

    def on_blur(self, event: events.Blur) -> None:
        self.post_message(self.Prompt(""))

    def _show_prompt(self) -> None:
        if self._search is not None:
            self._show_search()
        elif self.has_focus:
            cycle = self._cycle
            self.post_message(self.Prompt(cycle.position if cycle is not None else verbs.intent(self.value)))

    # History --------------------------------------------------------------------------------------------

    def action_history_older(self) -> None:
        self._end_search(keep=True)
        if self._walk is None:
            self._walk = HistoryWalk(self.history, self.value)
        line = self._walk.older()
        if line is not None:
            self._set(line)

    def action_history_newer(self) -> None:
        self._end_search(keep=True)
        if self._walk is None:
            return
        line = self._walk.newer()
        if line is not None:
            self._set(line)

    def action_history_search(self) -> None:
        if self._search is None:
            self._search = ReverseSearch(self.history, self.value)
            self._walk = None
        else:
            self._search.older()
        self._show_search()

    def _show_search(self) -> None:
        search = self._search
        assert search is not None
        match = search.match
        if match is not None:
            self._set(match)
        found = "" if match is not None or not search.query else " (no match)"
        self.post_message(self.Prompt(f"history search: {search.query!r}{found} · ctrl+r older · enter runs "
                                         "· esc gives the line back"))

    def _end_search(self, *, keep: bool) -> None:
        search, self._search = self._search, None
        if search is None:
            return
        if not keep:
            self._set(search.original)
        self._show_prompt()

    async def _on_key(self, event: events.Key) -> None:
        """While searching, typing edits the query, not the line."""
        search = self._search
        if search is None:
            return
        if event.is_printable and event.character is not None:
            event.stop()
            event.prevent_default()
            search.type(search.query + event.character)
            self._show_search()
        elif event.key == "backspace":
            event.stop()
            event.prevent_default()
            search.type(search.query[:-1])
            self._show_search()
        elif event.key not in ("enter", "escape", "ctrl+r") and not self._is_search_key(event.key):
            self._end_search(keep=True)  # a cursor key: edit the match

    def _is_search_key(self, key: str) -> bool:
        """The search binding's keys, as remapped by a keymap."""
        return any(binding.action == "history_search" for binding in self._bindings.key_to_bindings.get(key, []))

    # Completion -----------------------------------------------------------------------------------------

    async def action_complete(self) -> None:
        """Complete the word: the one match, or the matches' common start; with several, each further tab
        goes on to the next (and round), the status bar listing them. Tab stays in the bar when nothing
        completes."""
        cycle = self._cycle
        if cycle is not None and self.value == cycle.shown:
            self._complete_to(cycle.step())
            return
        self._cycle = None
        suggester = self.suggester
        if not isinstance(suggester, CommandSuggester):
            if self._suggestion and self._suggestion != self.value:
                self._complete_to(self._suggestion)
            return
        value = self.value
        found = await suggester.candidates(value)
        if found is None or self.value != value:  # typed on meanwhile
            return
        slot, candidates = found
        options = matching(slot.word, candidates)
        if not options:
            return
        head = value[: slot.start]
        common = os.path.commonprefix(options)  # noqa: RUF071 - character-wise is what completion wants
        if len(options) > 1 and len(common) > len(slot.word):
            cycle = TabCycle(head, slot, options, -1, head + common)
            self._cycle = cycle
            self._complete_to(cycle.shown)
            return
        if len(options) > 1:
            cycle = TabCycle(head, slot, options, -1)
            self._cycle = cycle
            self._complete_to(cycle.step())
        elif options[0] != slot.word:
            self._complete_to(head + options[0] + verb_space(slot, options[0]))

    def _complete_to(self, line: str) -> None:
        self.value = line
        self.cursor_position = len(line)
        self._show_prompt()
