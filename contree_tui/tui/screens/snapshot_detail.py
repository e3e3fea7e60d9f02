"""A snapshot's files: browse its directories, view a file, save one locally, grep, and the diff against the
parent snapshot or any other (added / modified / removed, and a modified file's lines: detail_diff.py). Opened
with `i` on a node of the tree, or on a diff by `:diff A B` and `D` in the tree; esc goes back.

The list on the left shows one of three things — a directory, the diff, grep's matches — and enter opens the
selected entry on the right: the file viewer, or a modified file's line diff. Every read runs in a worker; a
failure is a toast with its reason. The header says what the snapshot added over its parent (its layer, as
dive shows per layer) when the server says it: the bytes of the files added or changed, how many, how many
removed, then the layer on disk (our engine's x_engine; a hosted Contree says only what its run wrote, or
nothing: the header then goes without).
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import DataTable, Log, Static
from textual.worker import Worker, WorkerState

from contree_tui.client.image_details import ImageDetails
from contree_tui.client.image_files import Entry, GrepHit, parent_dir
from contree_tui.client.sizes import human_size
from contree_tui.client.snapshot_diff import SnapshotDiff
from contree_tui.tui.data import describe_error
from contree_tui.tui.model import Snapshot
from contree_tui.tui.screens.detail_diff import DetailDiff
from contree_tui.tui.screens.detail_target import Target
from contree_tui.tui.screens.prompt import PromptScreen
from contree_tui.tui.snapshot_files import SnapshotFiles
from contree_tui.tui.widgets.diff_view import DiffView
from contree_tui.tui.widgets.key_footer import KeyFooter

VIEW_LIMIT = 256 * 1024  # bytes shown of a file; `s` saves the whole of it
UP = ".."


def content_words(details: ImageDetails) -> str:
    """`17 B in 1 file added or changed, 2 removed`: what a user means by a layer's size (not its du blocks: a
    17-byte file's layer is 12 KiB on disk, a block for it and one per directory overlay copied up)."""
    files, removed = details.files or 0, details.removed or 0
    if not files and not removed:
        return "no file added, changed or removed"  # env or workdir only, or a squash of what it had
    words = []
    if files:
        words.append(f"{human_size(details.content_bytes)} in {files:,} file{'s' if files != 1 else ''} "
                     "added or changed")
    if removed:
        words.append(f"{removed:,} removed" if files else f"{removed:,} file{'s' if removed != 1 else ''} removed")
    return ", ".join(words)


class EntryList(DataTable[Text | str]):
    BINDINGS = [
        Binding("j", "cursor_down", "Down", show=False, id="detail.down"),
        Binding("k", "cursor_up", "Up", show=False, id="detail.up-row"),
        Binding("g", "scroll_top", "Top", show=False, id="detail.top"),
        Binding("G", "scroll_bottom", "Bottom", show=False, id="detail.bottom"),
    ]

    COMPONENT_CLASSES = {"entry-list--dir", "entry-list--added", "entry-list--modified", "entry-list--removed",
                         "entry-list--muted"}


class SnapshotDetailScreen(DetailDiff, Screen[None]):
    BINDINGS = [
        Binding("escape,q", "close", "Back", id="detail.close"),
        Binding("enter,l", "open", "Open", id="detail.open"),
        Binding("backspace,h", "up", "Up a dir", id="detail.parent-dir"),
        Binding("f", "files", "Files", id="detail.files"),
        Binding("d", "diff", "Diff", id="detail.diff"),
        Binding("slash", "grep", "Grep", id="detail.grep"),
        Binding("s", "save", "Save file", id="detail.save"),
    ]

    def __init__(self, files: SnapshotFiles, snapshot: Snapshot, parent: Snapshot | None = None, *,
                 command: str | None = None, folder: Path | None = None, directory: str = "/",
                 base: Snapshot | None = None, open_diff: bool = False) -> None:
        """`base`: what `d` compares with (default: the parent); `open_diff`: start on that diff."""
        super().__init__()
        self.files = files
        self.snapshot = snapshot
        self.parent_snapshot = parent
        self.base = base or parent
        self.open_diff = open_diff
        self.command = command
        self.folder = folder or Path.cwd()
        self.directory = directory
        self.mode = "files"  # what the list shows: files | diff | grep
        self.targets: dict[str, Target] = {}  # row key -> what enter opens
        self.diff: SnapshotDiff | None = None
        self.hits: list[GrepHit] = []
        self.viewing: Target | None = None
        self.details: ImageDetails | None = None

    def compose(self) -> ComposeResult:
        yield Static(self._header(), id="detail-header")
        with Horizontal(id="detail-body"):
            yield EntryList(id="detail-list", cursor_type="row", zebra_stripes=True)
            yield Log(id="detail-view", auto_scroll=False)
            yield DiffView(id="detail-diff")
        yield KeyFooter()  # at 80x24 Textual's cut `? Help` off (key_footer.py)

    def _header(self, details: ImageDetails | None = None) -> Text:
        text = Text()
        text.append("snapshot ", style="dim")
        text.append(self.snapshot.name, style="bold")
        if self.parent_snapshot is not None:
            text.append("  parent ", style="dim")
            text.append(self.parent_snapshot.name)
        if self.base is not None and self.base is not self.parent_snapshot:
            text.append("  compared with ", style="dim")
            text.append(self.base.name, style="bold")
        if self.snapshot.imported:  # where it came from: its import's reference (and tag), when known
            origin = (self.command or "").removeprefix("import ")
            text.append("  imported from " if origin else "  imported", style="dim")
            text.append(" ".join(origin.split()), style="italic")
        elif self.command:
            text.append("  made by ", style="dim")
            text.append(" ".join(self.command.split()), style="italic")
        if details is not None and details.content_bytes is not None:
            text.append("  size ", style="dim")
            text.append(content_words(details))
            on_disk = [f"{human_size(details.size)} on disk"] if details.size is not None else []
            if details.total_size is not None:
                on_disk.append(f"{human_size(details.total_size)} in all")
            if on_disk:
                text.append(f" ({', '.join(on_disk)})", style="dim")
        elif details is not None and details.size is not None:
            text.append("  size ", style="dim")
            text.append(f"{human_size(details.size)} " + ("written by its run" if details.size_from_run else "added"))
            if details.total_size is not None:
                text.append(f" ({human_size(details.total_size)} in all)", style="dim")
        return text

    @property
    def entry_list(self) -> EntryList:
        return self.query_one(EntryList)

    @property
    def view(self) -> Log:
        return self.query_one(Log)

    def on_mount(self) -> None:
        self.view.border_title = "file"
        self.diff_view.display = False
        self.entry_list.focus()
        if self.open_diff:
            self.action_diff()
        else:
            self.show_directory(self.directory)
        self.show_size()

    def _show_pane(self, pane: Widget) -> None:
        """The file viewer or the line diff on the right (the diff gets more room: the list narrows)."""
        self.view.display = pane is self.view
        self.diff_view.display = pane is self.diff_view
        self.query_one("#detail-body").set_class(pane is self.diff_view, "-diff")

    @work(exclusive=True, group="detail-size", exit_on_error=False, description="size")
    async def show_size(self) -> None:
        """What the snapshot added, in the header, when the server says it (the embedded engine does)."""
        self.details = await self.files.details(self.snapshot.uuid)
        if self.details is not None and (self.details.size is not None or self.details.content_bytes is not None):
            self.query_one("#detail-header", Static).update(self._header(self.details))

    # The list -------------------------------------------------------------------------------------------

    def _fill(self, mode: str, title: str, columns: tuple[str, ...], rows: list[tuple[str, Target, tuple]]) -> None:
        table = self.entry_list
        table.clear(columns=True)
        for column in columns:
            table.add_column(column, key=column)
        self.mode = mode
        self.targets = {}
        for key, target, cells in rows:
            self.targets[key] = target
            table.add_row(*cells, key=key)
        table.border_title = title
        if rows:
            table.move_cursor(row=0)

    def _style(self, name: str) -> str:
        return str(self.entry_list.get_component_rich_style(f"entry-list--{name}", partial=True))

    @work(exclusive=True, group="detail-list", exit_on_error=False, description="listing")
    async def show_directory(self, directory: str, select: str | None = None) -> None:
        entries = await self.files.list_dir(self.snapshot.uuid, directory)
        self.directory = directory
        rows: list[tuple[str, Target, tuple]] = []
        if directory != "/":
            rows.append((UP, Target(parent_dir(directory), "dir", self.snapshot.uuid), (
                Text("../", style=self._style("dir")), "", "", "")))
        rows += [(entry.path, Target(entry.path, entry.kind, self.snapshot.uuid), self._entry_cells(entry))
                 for entry in entries]
        self._fill("files", f"files {directory}", ("name", "size", "mode", "modified"), rows)
        if select and select in self.targets:
            self.entry_list.move_cursor(row=self.entry_list.get_row_index(select))

    def _entry_cells(self, entry: Entry) -> tuple[Text, str, str, str]:
        if entry.kind == "dir":
            name = Text(entry.name + "/", style=self._style("dir"))
        elif entry.kind == "symlink":
            name = Text(entry.name)
            name.append(f" → {entry.target}", style=self._style("muted"))
        else:
            name = Text(entry.name)
        size = "" if entry.kind == "dir" else human_size(entry.size)
        when = datetime.fromtimestamp(entry.mtime, UTC).strftime("%Y-%m-%d %H:%M")
        return name, size, entry.permissions, when

    def action_files(self) -> None:
        self.show_directory(self.directory)

    def action_up(self) -> None:
        if self.mode != "files":
            self.show_directory(self.directory)
        elif self.directory != "/":
            self.show_directory(parent_dir(self.directory), select=self.directory)

    @property
    def selected(self) -> Target | None:
        table = self.entry_list
        if not table.row_count:
            return None
        key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        return self.targets.get(str(key))

    def action_open(self) -> None:
        target = self.selected
        if target is None:
            return
        if target.kind == "dir":
            going_up = self.mode == "files" and target.path == parent_dir(self.directory) != self.directory
            self.show_directory(target.path, select=self.directory if going_up else None)
        elif target.kind == "file" and target.base is not None:
            self.show_diff(target)
        elif target.kind == "file":
            self.show_file(target)
        elif target.kind == "symlink":
            self.notify(f"{target.path} is a symbolic link; open what it points to", title="cannot view")
        else:
            self.notify(f"{target.path} is not a regular file", title="cannot view", severity="warning")

    @on(DataTable.RowSelected, "#detail-list")
    def _row_selected(self) -> None:
        self.action_open()

    # Viewing --------------------------------------------------------------------------------------------

    @work(exclusive=True, group="detail-view", exit_on_error=False, description="reading the file")
    async def show_file(self, target: Target) -> None:
        head = await self.files.read_head(target.image, target.path, VIEW_LIMIT)
        view = self.view
        self._show_pane(view)
        view.clear()
        self.viewing = target
        which = "the parent " if self.base is self.parent_snapshot else ""
        where = "" if target.image == self.snapshot.uuid else f" (in {which}{target.image[:8]})"
        view.border_title = f"{target.path}{where}"
        if head.binary:
            view.write_line(f"binary file ({human_size(len(head.data))}"
                            f"{' or more' if head.truncated else ''}): s saves it")
            return
        lines = head.text().split("\n")
        if lines and lines[-1] == "":
            lines.pop()
        notes = [target.note] if target.note else []
        if head.truncated:
            notes.append(f"the first {human_size(VIEW_LIMIT)} only; s saves the whole file")
        if notes:
            view.write_line("── " + "; ".join(notes))
        width = len(str(len(lines)))
        view.write_lines([f"{n:>{width}} │ {line}" for n, line in enumerate(lines, start=1)])
        if not lines:
            view.write_line("(empty file)")
        view.scroll_to(y=max(0, (target.line or 1) - 1 + len(notes) - 3) if target.line else 0, animate=False)
        view.border_subtitle = f"{len(lines)} lines" + (f" · line {target.line}" if target.line else "")

    # Saving ---------------------------------------------------------------------------------------------

    @work(exclusive=True, group="detail-save", exit_on_error=False, description="saving the file")
    async def action_save(self) -> None:
        target = self.selected if self.selected is not None and self.selected.kind == "file" else self.viewing
        if target is None or target.kind != "file":
            self.notify("select a file first", title="cannot save", severity="warning")
            return
        name = target.path.rsplit("/", 1)[-1]
        dest = await self.app.push_screen_wait(PromptScreen(f"Save {target.path} to", str(self.folder / name)))
        if not dest:
            return
        saved, size = await self.files.download(target.image, target.path, os.path.expanduser(dest))
        self.notify(f"{target.path} → {saved} ({human_size(size)})", title="saved")

    # Grep -----------------------------------------------------------------------------------------------

    @work(exclusive=True, group="detail-list", exit_on_error=False, description="grep")
    async def action_grep(self) -> None:
        root = self.directory
        pattern = await self.app.push_screen_wait(PromptScreen(
            f"grep in {root} (a regular expression)", placeholder="pattern", detail="case-insensitive unless "
            "it has a capital; binary files are skipped"))
        if not pattern:
            return
        self.entry_list.border_title = f"grep {pattern!r}: searching…"
        found = await self.files.grep(self.snapshot.uuid, pattern, root)
        self.hits = list(found.hits)
        rows = [(str(i), Target(hit.path, "file", self.snapshot.uuid, hit.line),
                 (Text(f"{hit.path}:{hit.line}", style=self._style("dir")), " ".join(hit.text.split())[:200]))
                for i, hit in enumerate(found.hits)]
        more = " (more: the search stopped at its limit)" if found.truncated else ""
        count = f"{len(rows)} match{'es' if len(rows) != 1 else ''}"
        self._fill("grep", f"grep {pattern!r} in {root}: {count}{more}", ("where", "line"), rows)

    # Leaving and failures -------------------------------------------------------------------------------

    def action_close(self) -> None:
        self.dismiss(None)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.state is WorkerState.ERROR and event.worker.error is not None:
            self.notify(describe_error(event.worker.error), title=f"{event.worker.description} failed",
                        severity="error", timeout=8)
            if event.worker.group == "detail-list":
                self.entry_list.border_title = f"{self.mode}: failed"
