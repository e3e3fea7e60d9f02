"""What the main screen does with a command-bar line (verbs.py parses it): runs with the session's settings
(`:cd`, `:env`, `:disposable`, the folder's sync), the verbs (`:import` is import_verbs.py's; `:cancel`,
`:wait` and the two-stage interrupt `c` are operation_verbs.py's; `:sync`: sync_verbs.py; `:diff`:
diff_verbs.py), the command log (`@`) and the bar's completion source. A mixin of MainScreen, kept apart so
the screen's module stays about layout, loading and following.

`:parallel` starts every branch from the working snapshot as it is when typed; none of them becomes the
working snapshot (which one should is the user's call: `enter` on it in the tree). Each branch is recorded
in the folder's history as a run that did not move the position.
"""

from __future__ import annotations

import posixpath
from collections.abc import Awaitable
from pathlib import Path
from typing import Any

from contree_client.models import OperationStatus
from textual import work

from contree_tui.tui import verbs as v
from contree_tui.tui.command_log import CommandLog, LogEntry
from contree_tui.tui.data import describe_error
from contree_tui.tui.model import Operation, Stream
from contree_tui.tui.outcome import one_line, op_icon, outcome
from contree_tui.tui.run_settings import RunSettings
from contree_tui.tui.screens.command_log import CommandLogScreen
from contree_tui.tui.screens.import_verbs import ImportVerbs
from contree_tui.tui.screens.operation_verbs import OperationVerbs
from contree_tui.tui.widgets.command_bar import CommandBar

LISTING_CACHE = 256  # (image, directory) listings kept for completion; an image's files never change


class CommandVerbs(OperationVerbs, ImportVerbs):
    """Mixed into MainScreen: uses its backend, position, lineage, tree, table, status bar and workers."""

    def _init_command_verbs(self) -> None:
        self.run_settings = RunSettings()
        self.command_log = CommandLog()
        self._init_operation_verbs()
        self._listings: dict[tuple[str, str], list[tuple[str, bool]]] = {}
        self._init_import_verbs()

    def _attach_command_verbs(self, backend: Any) -> None:
        """On connect: completion from this screen (the folder's sync: sync_verbs.py)."""
        self.query_one(CommandBar).use_completion(self)

    def on_command_bar_prompt(self, message: CommandBar.Prompt) -> None:
        self.status_bar.prompt = message.prompt

    # A line from the bar --------------------------------------------------------------------------------

    def submit_line(self, line: str) -> None:
        try:
            verb = v.parse_line(line)
        except v.VerbError as exc:
            self.command_log.record(self.clock(), "verb", line, exc.reason, ok=False, snapshot=self.position.working)
            self.notify(str(exc), title="command bar", severity="error", timeout=10)
            return
        if isinstance(verb, v.Shell):
            self.start_run(verb.command)
            return
        if not isinstance(verb, v.Cd | v.Env | v.Disposable | v.Network) and self.backend is None:
            self.notify("not connected yet", title=f"cannot {v.describe(verb)}", severity="error")
            return
        entry = self.command_log.record(self.clock(), type(verb).__name__.lower(), v.describe(verb),
                                        snapshot=self.position.working)
        getattr(self, f"_verb_{type(verb).__name__.lower()}")(verb, entry)

    def begin_verb(self, name: str) -> None:
        """The command bar, holding `:name ` and focused: the palette's way into a verb that needs arguments."""
        bar = self.query_one(CommandBar)
        bar.value = f":{name} "
        bar.cursor_position = len(bar.value)
        bar.focus()

    def start_run(self, command: str, *, branch: bool = False) -> bool:
        if self.backend is None:
            self.notify("not connected yet", title="cannot run", severity="error")
            return False
        working = self.position.working
        if not working:
            self.notify("no working snapshot: choose one in the tree (enter)", title="cannot run", severity="error")
            return False
        entry = self.command_log.record(self.clock(), "branch" if branch else "run", command, snapshot=working)
        self.run_command(command, working, branch=branch, entry=entry)
        return True

    async def run_options(self) -> dict[str, Any]:
        """The spawn's options from the session's settings; syncs the folder first when sync is on. Only
        what differs from the defaults is passed."""
        settings = self.run_settings
        options: dict[str, Any] = {"disposable": settings.disposable, "env": dict(settings.env),
                                   "cwd": settings.cwd, "offline": not settings.networking}
        sync = getattr(self.backend, "folder_sync", None)
        synced = await sync.for_run() if sync is not None else None
        if synced is not None:
            options["files"] = synced.files
            options["cwd"] = settings.cwd or synced.destination
        return {key: value for key, value in options.items() if value}

    def run_failed(self, entry: LogEntry | None, exc: BaseException) -> None:
        if entry is not None:
            entry.finish(describe_error(exc), ok=False)

    def run_finished(self, entry: LogEntry | None, op: Operation, moved: bool) -> None:
        if entry is None:
            return
        if op.status is OperationStatus.SUCCESS and op.result and not op.disposable:
            entry.snapshot = op.result  # what `enter` on the entry in `@` goes back to
        if op.status is not OperationStatus.SUCCESS:
            entry.finish(" · ".join(filter(None, [outcome(op), op.error])), ok=False)
            return
        parts = [outcome(op)]  # `✗ exit 3`, as the table and the log's last line say it
        if op.disposable:
            parts.append("disposable")
        elif op.result and op.result != op.image:
            parts.append(f"→ {op.result[:8]}" + (" (working)" if moved else ""))
        else:
            parts.append("no change")
        entry.finish(" · ".join(parts), ok=op_icon(op)[1] == "ok")

    def near_miss(self, op: Operation) -> str | None:
        """`tga v1` ran in the shell and its program was not found (exit 127, the shell's "not found" line):
        "did you mean :tag?" when the word is a near miss of a verb. Any other run: None."""
        words = (op.command or "").split(None, 1)
        if op.exit_code != 127 or not words:
            return None
        near = v.near_verb(words[0])
        buffer = self.buffers.get(op.uuid)
        if near is None or buffer is None:
            return None
        # busybox sh: "/bin/sh: tga: not found"; bash: "bash: line 1: tga: command not found"
        said = any(stream is Stream.STDERR and f"{words[0]}: " in text and "not found" in text
                   for stream, text in buffer)
        if not said:
            return None
        again = " ".join([near, *words[1:]])
        return f"{words[0]}: not found · did you mean :{near}? ({again!r} runs the verb)"

    # Verbs ----------------------------------------------------------------------------------------------

    @work(group="verb", exit_on_error=False, description="command")
    async def _carry_out(self, entry: LogEntry, title: str, call: Awaitable[str | None]) -> None:
        """Await a verb's work; its message (or the reason it failed) is a toast and the log's result."""
        try:
            message = await call
        except Exception as exc:  # noqa: BLE001 - every failure a user can cause ends as a toast
            reason = describe_error(exc)
            entry.finish(reason, ok=False)
            self.notify(reason, title=title, severity="error", timeout=10)
            return
        if message is not None:
            entry.finish(message)
            self.notify(message, title=entry.text.split()[0])

    def _working_or_toast(self, title: str) -> str | None:
        working = self.position.working
        if not working:
            self.notify("no working snapshot: choose one in the tree (enter)", title=title, severity="error")
        return working

    def _done(self, entry: LogEntry, message: str, *, ok: bool = True) -> None:
        entry.finish(message, ok=ok)
        self.notify(message, title=entry.text.split()[0], severity="information" if ok else "warning")

    def _verb_tag(self, verb: v.Tag, entry: LogEntry) -> None:
        working = self._working_or_toast(":tag")
        if working:
            self._carry_out(entry, f"cannot tag {working[:8]}", self._tag(working, verb.name, add=True))

    def _verb_untag(self, verb: v.Untag, entry: LogEntry) -> None:
        working = self._working_or_toast(":untag")
        if working:
            self._carry_out(entry, f"cannot untag {working[:8]}", self._tag(working, verb.name, add=False))

    async def _tag(self, image: str, name: str | None, *, add: bool) -> str:
        backend = self._backend()
        snapshot = self.lineage.get(image)
        current = tuple(snapshot.tag.split(", ")) if snapshot and snapshot.tag else ()
        if add:
            assert name is not None
            tags = await backend.tag(image, name, current)
        else:
            tags = await backend.untag(image, name, current)
        self.lineage.set_tags(image, tags)
        self.tree.refresh_labels()
        self._show_working(move_cursor=False)
        if add:
            return f"{image[:8]} tagged {name}"
        return f"{image[:8]} untagged {name}" if name else f"{image[:8]}: every tag removed"

    def _default_cwd(self) -> str:
        sync = getattr(self.backend, "folder_sync", None)
        if sync is not None and sync.enabled:
            return str(sync.settings.destination)
        return "/"

    def _verb_cd(self, verb: v.Cd, entry: LogEntry) -> None:
        cwd = self.run_settings.cd(verb.path, self._default_cwd())
        self._done(entry, f"following runs start in {cwd}" if cwd else
                   "following runs start in the default directory (the sync destination when syncing)")

    def _verb_env(self, verb: v.Env, entry: LogEntry) -> None:
        if verb.lists:
            self._done(entry, self.run_settings.describe_env())
            return
        missing = self.run_settings.update_env(verb.set, verb.unset)
        listed = self.run_settings.describe_env()
        if missing:
            self._done(entry, f"{', '.join(missing)} {'was' if len(missing) == 1 else 'were'} not set\n{listed}",
                       ok=False)
        else:
            self._done(entry, listed)

    def _verb_disposable(self, verb: v.Disposable, entry: LogEntry) -> None:
        self.run_settings.disposable = verb.on
        self._done(entry, "following runs are disposable: they leave no snapshot" if verb.on else
                   "following runs make snapshots again")

    def _verb_network(self, verb: v.Network, entry: LogEntry) -> None:
        self.run_settings.networking = verb.on
        self._done(entry, "following runs get a network again" if verb.on else
                   "following runs get no network (loopback only)")

    def _verb_parallel(self, verb: v.Parallel, entry: LogEntry) -> None:
        working = self._working_or_toast(":parallel")
        if not working:
            return
        started = sum(self.start_run(command, branch=True) for command in verb.commands)
        self._done(entry, f"{started} branches of {working[:8]}; the working snapshot stays (enter on a branch "
                          "in the tree makes it working)")

    def _verb_download(self, verb: v.Download, entry: LogEntry) -> None:
        working = self._working_or_toast(":download")
        if not working:
            return
        path = verb.path if verb.path.startswith("/") else posixpath.join(
            self.run_settings.cwd or self._default_cwd(), verb.path)
        path = posixpath.normpath(path)
        name = posixpath.basename(path) or "download"
        folder = Path(getattr(self.app, "folder", Path.cwd()))
        dest = folder / Path(verb.dest).expanduser() if verb.dest else folder / name
        if dest.is_dir():
            dest = dest / name
        self._carry_out(entry, f"cannot download {path}", self._download(working, path, dest))

    async def _download(self, image: str, path: str, dest: Path) -> str:
        size = await self._backend().download(image, path, dest)
        return f"{path} → {dest} ({size} bytes)"

    # Command log ----------------------------------------------------------------------------------------

    def action_command_log(self) -> None:
        if not isinstance(self.app.screen, CommandLogScreen):
            self.app.push_screen(CommandLogScreen(self.command_log, self.position.working), self._jump_to_entry)

    def _jump_to_entry(self, entry: LogEntry | None) -> None:
        """`enter` on an entry of `@`: its snapshot becomes working, recorded as a new entry (the one before
        it in the log is the way back)."""
        if entry is None:
            return
        target, before = entry.snapshot, self.position.working
        if target is None:
            self.notify("that entry left no snapshot", title="cannot jump", severity="warning")
            return
        if target == before:
            self.notify(f"{self.snapshot_words(target)} is already working", title="jump")
            return
        if self._moved(lambda: self.position.move_to(target)):
            self._show_working()
            self.log_move("jump", f"@ {entry.kind}: {one_line(entry.text)}", f"working {target[:8]}", target)
            self.notify(f"working: {self.snapshot_words(target)} · undo: @, enter on the entry before",
                        title="jumped")

    def snapshot_words(self, uuid: str) -> str:
        """A snapshot as a toast names it: short uuid, its tag, the command that made it."""
        snapshot = self.lineage.get(uuid)
        made_by = self.tree.commands.get(snapshot.operation or "") if snapshot is not None else None
        parts = [uuid[:8]]
        if snapshot is not None and snapshot.tag:
            parts.append(snapshot.tag)
        if made_by:
            parts.append(f"← {one_line(made_by, 40)}")
        return " ".join(parts)

    def log_move(self, kind: str, text: str, result: str, snapshot: str | None = None) -> None:
        """A rollback, forward or jump, for the command log."""
        self.command_log.record(self.clock(), kind, text, result, snapshot=snapshot)

    # Completion source (CommandBar.CompletionSource) ----------------------------------------------------

    def completion_tags(self) -> list[str]:
        return self.lineage.tags()

    def completion_cwd(self) -> str:
        return self.run_settings.cwd or self._default_cwd()

    def completion_local_root(self) -> Path:
        return Path(getattr(self.app, "folder", Path.cwd()))

    async def completion_listing(self, directory: str) -> list[tuple[str, bool]]:
        working = self.position.working
        if self.backend is None or not working:
            return []
        key = (working, directory)
        if key not in self._listings:
            entries = await self.backend.list_dir(working, directory)
            if len(self._listings) >= LISTING_CACHE:
                self._listings.clear()
            self._listings[key] = [(e.name, e.is_dir) for e in entries]
        return self._listings[key]


__all__ = ["CommandLog", "CommandVerbs"]
