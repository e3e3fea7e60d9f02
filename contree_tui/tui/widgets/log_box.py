"""A log view in a box with what its keys ask for: the prompt under it (`/` search, `&` filter, `s` the path
to save to), and saving (the view draws its own "+N new lines" badge: log_badge.py). The main screen's LogPanel is one;
each pane of the split view (screens/split_logs.py) is another, so every pane keeps search, follow and save.
"""

from __future__ import annotations

import asyncio

from textual import on, work
from textual.app import ComposeResult
from textual.containers import Vertical

from contree_tui.tui.screens.confirm import ConfirmScreen
from contree_tui.tui.widgets.log_export import LogSaveError, default_log_path, resolve_log_path, write_log
from contree_tui.tui.widgets.log_prompt import LogPrompt
from contree_tui.tui.widgets.log_view import LogView


class LogBox(Vertical):
    """The view, its prompt and its badge; subclasses add a title and answer `m`."""

    def compose(self) -> ComposeResult:
        yield LogView(id="log")
        yield LogPrompt(id="log-prompt")

    @property
    def view(self) -> LogView:
        return self.query_one(LogView)

    @property
    def prompt(self) -> LogPrompt:
        return self.query_one(LogPrompt)

    def save_key(self) -> str | None:
        """The operation uuid a save names its file after (None: a generic name)."""
        return None

    def toggle_merged(self) -> None:
        self.notify("the merged log is the main screen's (v goes back to it)", title="log", severity="warning")

    @on(LogView.Wants)
    def _wants(self, message: LogView.Wants) -> None:
        message.stop()
        if message.what == "merged":
            self.toggle_merged()
        elif message.what == "save":
            if self.view.source is None:
                self.notify("no log to save: select an operation", title="save", severity="warning")
                return
            self.prompt.ask("save", str(default_log_path(self.save_key())))
        else:
            view = self.view
            current = view.search.text if view.search is not None else ""
            prefix = "&" if message.what == "filter" or (view.filtering and message.what == "search") else ""
            self.prompt.ask("search", prefix + current)

    @on(LogPrompt.Answered)
    def _answered(self, message: LogPrompt.Answered) -> None:
        message.stop()
        self.view.focus()
        if message.mode == "save":
            self.save(message.value)
            return
        text = message.value
        filtering = text.startswith("&")
        text = text[1:] if filtering else text
        found = self.view.set_search(text, filtering=filtering)
        if text and not found:
            self.notify(f"{text!r} is not in this log" + (" (new lines still count)" if filtering else ""),
                        title="filter" if filtering else "search", severity="warning")

    @on(LogPrompt.Closed)
    def _closed(self, message: LogPrompt.Closed) -> None:
        message.stop()
        self.view.focus()

    @work(exclusive=True, group="log-save", exit_on_error=False, description="saving the log")
    async def save(self, typed: str) -> None:
        """Write the log shown (every buffered line, the filter notwithstanding) to the path typed; a file that
        exists is replaced only after a yes."""
        try:
            path = resolve_log_path(typed)
        except LogSaveError as exc:
            self.notify(str(exc), title="log not saved", severity="error")
            return
        if path.is_file() and not await self.app.push_screen_wait(ConfirmScreen(f"Replace {path.name}?", str(path))):
            return
        view = self.view
        lines = view.text_lines()  # taken now, on the UI thread: the buffer keeps changing
        dropped = view.source.dropped if view.source is not None else 0
        try:
            count = await asyncio.to_thread(write_log, path, lines)
        except LogSaveError as exc:
            self.notify(str(exc), title="log not saved", severity="error")
            return
        note = f" (the oldest {dropped} were no longer buffered)" if dropped else ""
        self.notify(f"{count} line{'s' if count != 1 else ''} → {path}{note}", title="log saved")
