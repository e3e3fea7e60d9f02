"""What the main screen does with a command-bar line (verbs.py parses it): runs with the session's settings
(`:cd`, `:env`, `:disposable`, the folder's sync), the verbs, the two-stage interrupt (`c` / ctrl+c), the
command log (`@`) and the bar's completion source. A mixin of MainScreen, kept apart so the screen's module
stays about layout, loading and following.

`:parallel` starts every branch from the working snapshot as it is when typed; none of them becomes the
working snapshot (which one should is the user's call: `enter` on it in the tree). Each branch is recorded
in the folder's history as a run that did not move the position.
"""

from __future__ import annotations

import posixpath
import time
from collections.abc import Awaitable
from pathlib import Path
from typing import Any

from contree_client.models import OperationStatus
from textual import work

from contree_tui.client.image_import import ImportProgress, ImportResult
from contree_tui.client.operations import EventCursor, Interrupter, InterruptStage
from contree_tui.client.records import IMPORT_KIND, import_command
from contree_tui.tui import verbs as v
from contree_tui.tui.backend_error import BackendError
from contree_tui.tui.command_log import CommandLog, LogEntry
from contree_tui.tui.data import describe_error
from contree_tui.tui.messages import OperationUpdated
from contree_tui.tui.model import Operation, OutputBuffer, Stream
from contree_tui.tui.outcome import op_icon, outcome
from contree_tui.tui.run_settings import RunSettings
from contree_tui.tui.screens.command_log import CommandLogScreen
from contree_tui.tui.widgets.command_bar import CommandBar
from contree_tui.tui.widgets.operations_table import format_duration

INTERRUPT_WINDOW = 5.0  # seconds within which a second `c` cancels what the first one signalled
LISTING_CACHE = 256  # (image, directory) listings kept for completion; an image's files never change


class CommandVerbs:
    """Mixed into MainScreen: uses its backend, position, lineage, tree, table, status bar and workers."""

    def _init_command_verbs(self) -> None:
        self.run_settings = RunSettings()
        self.command_log = CommandLog()
        self._interrupts: dict[str, tuple[Interrupter, float]] = {}
        self._listings: dict[tuple[str, str], list[tuple[str, bool]]] = {}
        self._posting_imports = 0  # `:import` requests sent and not answered yet

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
        if not isinstance(verb, v.Cd | v.Env | v.Disposable) and self.backend is None:
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
                                   "cwd": settings.cwd}
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

    def _verb_import(self, verb: v.Import, entry: LogEntry) -> None:
        self._carry_out(entry, f"cannot import {verb.ref}", self._import(verb.ref, verb.tag))

    async def _import(self, ref: str, tag: str | None) -> str:
        """Start the import and show it as a row of the operations table: its bar moves with the bytes
        fetched, its log holds the engine's lines. A success puts its image into the tree (a root, with its
        tag). Imports run side by side, each in its own worker (the "verb" group is not exclusive)."""
        backend = self._backend()
        self._posting_imports += 1  # operation_watch.py keeps off until this uuid has its row and follower
        try:
            uuid = await backend.import_image(ref, tag)  # the engine resolves bare names to docker://
        finally:
            self._posting_imports -= 1
        op = Operation(uuid=uuid, command=import_command(ref, tag), image=None, kind=IMPORT_KIND,
                       created_at=self.clock())
        self.buffers.setdefault(uuid, OutputBuffer())
        self._followed.add(uuid)  # this worker reads its events: selecting the row must not start another
        self.table.upsert(op)
        self.table.select(uuid)
        self._operation_changed(op)
        result = await self._follow_import(op)
        if not result.succeeded:
            raise BackendError(f"the import of {ref} ended {result.status.value.lower()}"
                               + (f": {result.error}" if result.error else ""))
        self.load()  # the tree shows the image (learned by follow_import) where the lineage puts it: a root
        return f"imported {ref} as {(result.image or '')[:8]}" + (f" (tag {result.tag})" if result.tag else "")

    async def _follow_import(self, op: Operation) -> ImportResult:
        """Read an import's events into its row and log until it ends, from the last event its log holds
        (one started here, by another client, or before the TUI: all alike); then its real final state from
        the server, which a stream broken by an engine restart may never have carried."""
        backend = self._backend()
        buffer = self.buffers.setdefault(op.uuid, OutputBuffer())
        cursor = EventCursor(buffer.last_event_id)
        self._followed.add(op.uuid)

        def on_change(progress: ImportProgress, line: str | None) -> None:
            buffer.last_event_id = cursor.last_event_id
            if line is not None:
                buffer.add_line(Stream.STDOUT, line)
            op.progress, op.step = progress.fraction, progress.step
            if progress.phase is not None and op.status is OperationStatus.PENDING:
                op.status = OperationStatus.EXECUTING
            self._operation_changed(op)

        try:
            result = await backend.follow_import(op.uuid, on_change, cursor)
        finally:
            self._followed.discard(op.uuid)
        op.status, op.error, op.result = result.status, result.error, result.image
        if result.duration is not None:
            op.duration = result.duration
        elif op.created_at is not None:
            op.duration = (self.clock() - op.created_at).total_seconds()
        if not buffer.complete:
            buffer.close()
            buffer.add_line(Stream.META, import_summary(op))
            buffer.complete = True
        self._operation_changed(op)
        return result

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

    def _verb_cancel(self, verb: v.Cancel, entry: LogEntry) -> None:
        op = self._target_operation()
        if op is None:
            self._done(entry, "nothing running to cancel", ok=False)
            return
        self._carry_out(entry, f"cannot cancel {op.uuid[:8]}", self._cancel(op))

    async def _cancel(self, op: Operation) -> str:
        cancelled = await self._backend().cancel(op.uuid)
        name = short(op.command)
        return f"cancelled {name}" if cancelled else f"{name} had already ended"

    def _verb_wait(self, verb: v.Wait, entry: LogEntry) -> None:
        running = [op.uuid for op in self.table.operations.values() if op.running]
        if not running:
            self._done(entry, "nothing running")
            return
        self.notify(f"waiting for {len(running)} operation{'s' if len(running) != 1 else ''}…", title=":wait")
        self._carry_out(entry, ":wait failed", self._wait(running))

    async def _wait(self, running: list[str]) -> str:
        backend = self._backend()
        statuses = await backend.wait(running)
        for uuid in running:  # one not followed here (started elsewhere) learns its end from the server
            op = self.table.operations.get(uuid)
            if op is not None and op.running and uuid not in self._followed:
                self.post_message(OperationUpdated(await backend.operation(uuid)))
        values = [str(getattr(s, "value", s)) for s in statuses.values()]
        ok = values.count(OperationStatus.SUCCESS.value)
        failed = f", {len(values) - ok} did not succeed" if ok != len(values) else ""
        return f"all {len(values)} operations ended: {ok} succeeded{failed}"

    # Interrupt, command log -----------------------------------------------------------------------------

    def _target_operation(self) -> Operation | None:
        """The selected operation if it runs, else the newest running one."""
        selected = self.table.operations.get(self.table.selected_uuid or "")
        if selected is not None and selected.running:
            return selected
        running = [op for op in self.table.operations.values() if op.running]
        return running[-1] if running else None

    def action_interrupt(self) -> None:
        """First press: SIGINT to the command (it may clean up, its snapshot is kept); a second press within
        INTERRUPT_WINDOW seconds cancels the operation."""
        op = self._target_operation()
        if self.backend is None or op is None:
            self.notify("nothing running to interrupt (q quits)", title="interrupt", severity="warning")
            return
        if op.is_import:  # no command to signal: an import is cancelled at once
            entry = self.command_log.record(self.clock(), "interrupt", op.command)
            self._carry_out(entry, f"cannot cancel {op.uuid[:8]}", self._cancel(op))
            return
        now = time.monotonic()
        held = self._interrupts.get(op.uuid)
        if held is None or now - held[1] > INTERRUPT_WINDOW:
            held = (self.backend.interrupter(op.uuid), now)
            self._interrupts[op.uuid] = held
        self._interrupt(op, held[0])

    @work(group="interrupt", exit_on_error=False, description="interrupt")
    async def _interrupt(self, op: Operation, interrupter: Interrupter) -> None:
        stage = await self._backend().interrupt(interrupter)
        name = short(op.command)
        if stage is InterruptStage.SIGNALLED:
            message = f"sent SIGINT to {name}; press c again within {INTERRUPT_WINDOW:g} s to kill it"
            self.notify(message, title="interrupt", severity="warning", timeout=INTERRUPT_WINDOW)
        else:
            self._interrupts.pop(op.uuid, None)
            message = f"cancelled {name}" if stage is InterruptStage.CANCELLED else f"{name} had already ended"
            self.notify(message, title="interrupt")
        self.command_log.record(self.clock(), "interrupt", op.command, message)

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
            self.log_move("jump", f"@ {entry.kind}: {short(entry.text)}", f"working {target[:8]}", target)
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
            parts.append(f"← {short(made_by, 40)}")
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


def import_summary(op: Operation) -> str:
    """The last line of an import's log: `── SUCCESS · 1.20s → 3f2a9c1d` (an import has no exit code: the
    operation's status is the news, in the API's word)."""
    parts = [op.status.value, format_duration(op.duration)]
    if op.result and op.status is OperationStatus.SUCCESS:
        parts.append(f"→ {op.result[:8]}")
    if op.error:
        parts.append(op.error)
    return "── " + " · ".join(p for p in parts if p)


def short(command: str | None, width: int = 40) -> str:
    one_line = " ".join((command or "").split())
    return one_line if len(one_line) <= width else one_line[: width - 1] + "…"


__all__ = ["INTERRUPT_WINDOW", "CommandLog", "CommandVerbs"]
