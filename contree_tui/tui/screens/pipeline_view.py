"""The pipeline view (`contree-tui pipeline FILE:FUNC`): the node tree with each node's state and its subtree's
P/Q/R/D/E/K counts, live; the selected node's log in the same log box as the main screen's (search, follow,
save); `r` re-runs a node or subtree (the others are cache hits), `s` skips or unskips, `e` jumps to the next
failed step, `enter` makes a node's checkpoint the working snapshot and goes to the main screen, where `u`/`U`
move from there (`P` comes back here).

The run lives in a worker of this screen, which the app installs: leaving the view (esc) keeps the screen, so
the run goes on. The executor's events arrive on the event loop (the worker's coroutine emits them), so the
listener feeds each node's OutputBuffer and redraws the tree's labels directly, without a message per line.
"""

from __future__ import annotations

import asyncio
import codecs
from dataclasses import replace
from typing import Any

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.css.query import NoMatches
from textual.screen import Screen
from textual.widgets import Label, Tree
from textual.worker import Worker, WorkerState

from contree_tui.pipeline.executor import NodeRun, PipelineEvent, PipelineRun, State
from contree_tui.pipeline.launch import PipelineLaunch
from contree_tui.pipeline.network_notes import run_network_label, step_network_label, step_network_note
from contree_tui.pipeline.nodes import Exec, Node, PipelineError
from contree_tui.pipeline.return_display import returned_line
from contree_tui.pipeline.step_progress import StepProgress
from contree_tui.tui.data import describe_error
from contree_tui.tui.model import OutputBuffer, Stream
from contree_tui.tui.pipeline_rerun import force, plan_rerun, restart
from contree_tui.tui.widgets.key_footer import KeyFooter
from contree_tui.tui.widgets.log_box import LogBox
from contree_tui.tui.widgets.pipeline_progress import PipelineProgress
from contree_tui.tui.widgets.pipeline_tree import ICONS, SKIP_ICON, PipelineTree, counts_label, exec_detail
from contree_tui.tui.widgets.snapshot_tree import SnapshotTree

TICK = 1.0  # s: a running step's time in the tree counts in seconds
BACKEND_POLL = 0.1  # s: the app connects in its own worker (an embedded engine may take seconds to start)


def finish_line(run: NodeRun) -> str:
    """The log's last line for a step: `── ✓ done · 1.2s → 3f2a9c1d`, `── ✗ exit 3`, `── ✓ cached → …`."""
    if run.skipped:
        return "── ↷ skipped"
    words = {State.DONE: "done", State.ERROR: "failed", State.KILLED: "killed"}.get(run.state, run.state.name)
    parts = [f"{ICONS[run.state]} {words}"]
    detail = exec_detail(run)
    if detail and detail != run.error:
        parts.append(detail)
    if run.error:
        parts.append(run.error)
    if run.tag and run.state is State.DONE:
        parts.append(f"tag {run.tag}")
    return "── " + " · ".join(parts)


class NodeLogs:
    """Each node's output as an OutputBuffer, fed from one run's events (a re-run starts new ones)."""

    def __init__(self, run: PipelineRun) -> None:
        self.run = run
        self.buffers: dict[str, OutputBuffer] = {path: OutputBuffer() for path in run.runs}
        self._decoders: dict[tuple[str, str], Any] = {}

    def reset(self, paths: list[str]) -> None:
        """Those nodes run again in this run (`r` mid-run): their logs start over."""
        for path in paths:
            self.buffers[path] = OutputBuffer()
            for stream in Stream:
                self._decoders.pop((path, stream.value), None)

    def feed(self, event: PipelineEvent) -> None:
        node = event.run
        buffer = self.buffers[node.path]
        if event.kind == "output":
            stream = Stream.STDERR if event.stream == "stderr" else Stream.STDOUT
            key = (node.path, stream.value)
            decoder = self._decoders.get(key)
            if decoder is None:  # a chunk may end inside a UTF-8 sequence
                decoder = self._decoders[key] = codecs.getincrementaldecoder("utf-8")(errors="replace")
            buffer.feed(stream, decoder.decode(event.data))
            return
        if node.kind != "exec" or buffer.complete:
            return
        if node.skipped or node.state.finished:
            if node.cached and node.output:  # a cache hit emits no output: its stored log tail, once
                buffer.feed(Stream.STDOUT, bytes(node.output).decode(errors="replace"))
            buffer.close()
            returned = returned_line(node.return_value, bytes(node.output).decode(errors="replace"))
            if returned:  # once, above the outcome, and not when the output ended with it (return_display.py)
                buffer.add_line(Stream.META, returned)
            buffer.add_line(Stream.META, finish_line(node))
            buffer.complete = True
        elif node.state is State.RUNNING and node.operation:
            buffer.add_line(Stream.META, f"── ⟳ running on {(node.source or '-')[:8]} · operation "
                                         f"{node.operation[:8]}")


class PipelineLogBox(LogBox):
    """The selected node's log under a title naming it."""

    def compose(self) -> ComposeResult:
        yield Label("no node selected", id="log-title", markup=False)  # node names are the user's: `[x]` stays
        yield from super().compose()

    def on_mount(self) -> None:
        self.view.offers_merged = False  # `m` is the main screen's merged log of operations

    def show(self, title: str, buffer: OutputBuffer | None) -> None:
        self.query_one("#log-title", Label).update(title)
        if self.view.source is not buffer:
            self.view.show(buffer)


class PipelineScreen(Screen[None]):
    CSS_PATH = "../styles/pipeline_view.tcss"
    BINDINGS = [
        # "Back", not "Snapshots": at 80 columns the footer had no room left for `esc` (`s Skip` still has none)
        Binding("escape", "back", "Back", id="pipeline.back", tooltip="Back to the snapshots (P: here again)"),
        Binding("e", "next_error", "Next error", id="pipeline.next-error"),
        # the command bar lives on the main screen: `:` here went nowhere (`:pipeline` another one, `:tag` …)
        Binding("colon", "command_bar", "Command", show=False, id="pipeline.command-bar"),
        Binding("tab", "focus_next", "Tree/log", show=False, id="pipeline.focus-next"),
    ]

    def __init__(self, launch: PipelineLaunch, *, start: bool = True) -> None:
        """`start`: run the pipeline once connected (False: a run is attached by hand, for a frozen view)."""
        super().__init__()
        self.launch = launch
        self.start = start
        self.problem: str | None = None  # why the run could not start, or stopped (its worker failed)
        self.run: PipelineRun | None = None
        self.logs: NodeLogs | None = None
        self.runs_started = 0
        self._summary_lines: tuple[str, list[str]] | None = None
        self._summary_buffer = OutputBuffer()
        self._waiting = OutputBuffer()
        self._waiting.add_line(Stream.META, "── ○ not started yet: its output shows here as it runs")
        self._waiting.complete = True
        self.queued: list[str] = []  # `r` on steps whose result already went on: re-run when this run ends

    def compose(self) -> ComposeResult:
        with Horizontal(id="pipeline-header"):
            yield Label("", id="pipeline-title", markup=False)
            yield PipelineProgress(self.launch.root, id="pipeline-progress")
        with Horizontal(id="pipeline-body"):
            yield PipelineTree(self.launch.root, id="pipeline-tree")
            with Vertical(id="pipeline-right"):
                yield Label("", id="pipeline-node", markup=False)  # `[exec]`, `[ -e /x ]` read as markup
                yield PipelineLogBox(id="pipeline-log")
        yield KeyFooter()

    def on_mount(self) -> None:
        self.tree.border_title = "pipeline"
        self.log_box.border_title = "log"
        self.tree.focus()
        self._describe()
        self.set_interval(TICK, self._tick)
        if self.start:
            self.start_run(self.launch.force)

    @property
    def tree(self) -> PipelineTree:
        return self.query_one(PipelineTree)

    @property
    def log_box(self) -> PipelineLogBox:
        return self.query_one(PipelineLogBox)

    @property
    def running(self) -> bool:
        return self.run is not None and not self.run.runs[self.run.root.path].state.finished and \
            any(w.name == "pipeline-run" and w.is_running for w in self.workers)

    # Running ----------------------------------------------------------------------------------------------

    async def _connection(self) -> Any:
        """The app's connection, once it has one (the backend is set by the app's connect worker)."""
        while True:
            backend = getattr(self.app, "backend", None)
            if backend is not None:
                connection = getattr(backend, "connection", None)
                if connection is None:
                    raise PipelineError("this backend cannot run pipelines (no Contree connection)")
                return connection
            await asyncio.sleep(BACKEND_POLL)

    async def _working_snapshot(self) -> str | None:
        """The main screen's working snapshot once it has loaded (a folder new to the target gets its default
        then), the one `:pipeline` runs on."""
        main = getattr(self.app, "main", None)
        if main is None:
            return None
        while main.backend is None or any(w.group == "load" and w.state in (WorkerState.PENDING, WorkerState.RUNNING)
                                          for w in main.workers):
            await asyncio.sleep(BACKEND_POLL)
        return main.position.working

    @work(exclusive=True, group="pipeline-run", name="pipeline-run", exit_on_error=False,
          description="running the pipeline")
    async def start_run(self, force: bool | list[str] = False) -> None:
        connection = await self._connection()
        if self.launch.image is None:  # `contree-tui pipeline FILE:FUNC` with no --image: as `:pipeline` does
            self.launch = replace(self.launch, image=await self._working_snapshot())  # re-runs too; the title
        try:
            run = PipelineRun(self.launch.root, connection, image=self.launch.image, force=force)
        except PipelineError as exc:
            self.problem = str(exc)
            self._describe()
            self.notify(str(exc), title="pipeline not started", severity="error", timeout=15)
            return
        self.attach(run)
        self.runs_started += 1
        state = await run.run()
        self._describe()
        counts = counts_label(run.counts())
        if state is State.DONE:
            skipped = sum(r.kind == "exec" and r.skipped for r in run.runs.values())
            # skipped steps count as P (as Conducto's): `P:1` on a done pipeline read as a step left behind
            self.notify(f"{counts} ({skipped} skipped)" if skipped else counts, title="pipeline done")
        else:
            failed = [r for r in run.runs.values() if r.kind == "exec" and r.state is State.ERROR]
            first = f"{failed[0].path}: {failed[0].error}" if failed else state.name.lower()
            more = f" (and {len(failed) - 1} more)" if len(failed) > 1 else ""
            self.notify(f"{first}{more} · e: next error", title="pipeline failed", severity="error", timeout=10)
        if self.queued:
            queued, self.queued = self.queued, []
            self.notify(f"{', '.join(queued)}: forced; the other steps are cache hits if unchanged", title="re-run")
            self.start_run(queued)  # the last thing this worker does: the new one replaces it (exclusive)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """The run's worker failed (an image not found mid-run, a lost connection): this screen's workers' news
        does not reach the app's handler, so the view stood at `starting` with no word of why."""
        worker = event.worker
        if worker.name != "pipeline-run" or event.state is not WorkerState.ERROR or worker.error is None:
            return
        error = worker.error
        self.problem = str(error) if isinstance(error, PipelineError) else describe_error(error)
        self._describe()
        self.notify(self.problem, title="pipeline stopped", severity="error", timeout=15)

    def attach(self, run: PipelineRun) -> None:
        """Show this run: new logs, the tree's labels from it, its events from now on."""
        self.problem = None
        self.run = run
        self.logs = NodeLogs(run)
        run.subscribe(self._event)
        self.tree.show_run(run)
        self._show_selected()
        self._describe()

    def _event(self, event: PipelineEvent) -> None:
        if self.logs is None or self.logs.run is not self.run or event.run is not self.run.runs.get(event.run.path):
            return  # an event of a run no longer shown
        self.logs.feed(event)
        if event.kind == "state" and self.is_attached:  # a removed view: nothing to draw
            try:
                self.tree.refresh_labels()
                self._describe()
            except NoMatches:  # quitting mid-run: the steps end Killed after the widgets have gone
                pass

    # The header and the selected node --------------------------------------------------------------------

    def _describe(self) -> None:
        run = self.run
        if run is None:
            # a run refused at its start (no image, a tag twice) said `connecting…` forever
            state = f"not started: {self.problem}" if self.problem else "connecting…" if self.start else "not run"
            counts = ""
        else:
            root = run.runs[run.root.path]
            state = {State.PENDING: "starting", State.RUNNING: "running", State.DONE: "done",
                     State.ERROR: "failed", State.KILLED: "killed"}.get(root.state, root.state.name.lower())
            if self.problem and not root.state.finished:
                state = f"stopped: {self.problem}"
            # those not zero, as the tree's rows: six counts took 30 of 80 columns, FILE:FUNC was cut instead
            counts = f" {counts_label(run.counts())}" if any(run.counts().values()) else ""
        image = self.launch.image or ""
        if image and ":" not in image:  # a snapshot id (`:pipeline` runs on the working one): 8 characters say it
            image = image[:8]
        image = f" · image {image}" if image else ""
        # state and counts first: at 80 columns a long FILE:FUNC and image are what gets cut
        then = f" · then re-run {', '.join(self.queued)}" if self.queued else ""  # `r` queued (pipeline_rerun.py)
        offline = run_network_label(self.launch.root)  # as the headless run's first line (network_notes.py)
        network = f" · {offline}" if offline else ""
        self.query_one("#pipeline-title", Label).update(
            f"{state}{counts}{then}{network} · pipeline {self.launch.spec}{image}")
        if run is not None:
            self.query_one(PipelineProgress).show(StepProgress.of(run))
        self._show_selected()

    def _show_selected(self) -> None:
        path = self.tree.cursor_path or "/"
        node = self.launch.root if path == "/" else self.launch.root[path]  # type: ignore[index]
        run = self.run.runs.get(path) if self.run is not None else None
        # a failure's reason first: at 80x24 the log's last line and the tree's row cut it after 16 characters
        failed = f"  ✗ {run.error}" if run is not None and run.error and run.state is State.ERROR else ""
        lines = [f"{path}  [{node.kind}]{failed}" + (f"  {node.describe()}" if isinstance(node, Exec) else "")]
        if run is not None and (run.source or run.result):
            made = f" → {run.result[:8]}" if run.result and run.result != run.source else ""
            lines.append(f"on {(run.source or '-')[:8]}{made}" + ("  (cached)" if run.cached else ""))
        network = step_network_note(node) if isinstance(node, Exec) else None
        if network:  # in full here: the tree's row has a few words for it
            lines.append(network)
        self.query_one("#pipeline-node", Label).update("\n".join(lines))
        buffer = self.logs.buffers.get(path) if self.logs is not None else None
        title = f"{path} · {run.state.name.lower()}" if run is not None else path
        if isinstance(node, Exec) and (buffer is None or not buffer.total) and (run is None or run.state is
                                                                               State.PENDING):
            buffer = self._waiting  # an empty pane read as a broken log
        self.log_box.show(title, buffer if isinstance(node, Exec) else self._summary(node))

    def _summary(self, node: Node) -> OutputBuffer:
        """A parent's log: a line per step under it, its state and outcome (an empty pane said nothing of where
        the logs are); a new buffer only when a line changed, so the pane keeps its place otherwise."""
        steps = [sub for sub in node.walk() if isinstance(sub, Exec)]
        # short: the log pane is 42 columns at 80x24
        lines = [f"── {node.kind}, {len(steps)} step{'s' if len(steps) != 1 else ''} (j/k: a step's log)"]
        prefix = node.path.rstrip("/") + "/"
        for sub in steps:
            run = self.run.runs.get(sub.path) if self.run is not None else None
            state = run.state if run is not None else State.PENDING
            skipped = run.skipped if run is not None else sub.effective().skip
            icon = SKIP_ICON if skipped and not state.finished else ICONS[state]
            detail = exec_detail(run, self.tree.now()) if run is not None and state is not State.PENDING else ""
            network = step_network_label(sub)
            lines.append(f"{icon} {sub.path.removeprefix(prefix)}" + (f"  {detail}" if detail else
                                                                         "  skipped" if skipped else "")
                         + (f" · {network}" if network else ""))
        if self._summary_lines != (node.path, lines):
            self._summary_lines = (node.path, lines)
            self._summary_buffer = OutputBuffer()
            for line in lines:
                self._summary_buffer.add_line(Stream.META, line)
            self._summary_buffer.complete = True
        return self._summary_buffer

    def _tick(self) -> None:
        """Once a second while steps run: their time so far, in the tree and a parent's summary."""
        if self.running and self.is_current and self.run is not None and self.run.counts()[State.RUNNING]:
            self.tree.refresh_labels()
            self._show_selected()

    @on(Tree.NodeHighlighted, "#pipeline-tree")
    def _highlighted(self) -> None:
        self._show_selected()

    # Keys ---------------------------------------------------------------------------------------------------

    @on(PipelineTree.Acted)
    def _acted(self, message: PipelineTree.Acted) -> None:
        message.stop()
        if message.what == "rerun":
            self.rerun(message.path)
        elif message.what == "skip":
            self.toggle_skip(message.path)
        else:
            self.make_working(message.path)

    def rerun(self, path: str) -> None:
        """Run the pipeline again with `path`'s steps forced: the rest, unchanged, are cache hits."""
        node = self.launch.root if path == "/" else self.launch.root[path]  # type: ignore[index]
        if node.effective().skip:  # it would be passed over again: nothing would run
            self.notify(f"{path} is skipped: s unskips it", title="re-run", severity="warning")
            return
        if self.running and self.run is not None:
            self._rerun_while_running(self.run, path)
            return
        self.start_run([path])
        self.notify("every step forced" if path == "/" else
                    f"{path}: forced; the other steps are cache hits if unchanged", title="re-run")

    def _rerun_while_running(self, run: PipelineRun, path: str) -> None:
        """`r` while the run goes on (tui/pipeline_rerun.py says which case and why)."""
        plan = plan_rerun(run, path)
        if plan.plan == "running":
            self.notify(f"{path} is still running: r once it has ended", title="re-run", severity="warning")
        elif plan.plan == "force":
            force(run, path)
            self.notify(f"{path} has not run yet: it will run forced (no cache hit)", title="re-run")
        elif plan.plan == "now":
            paths = restart(run, plan.subtree, path)
            if self.logs is not None:
                self.logs.reset(paths)
            self._describe()
            also = "" if plan.subtree == path else f" (in {plan.subtree}, its other steps cache hits)"
            self.notify(f"{path} runs again now{also} while the rest goes on", title="re-run")
        elif path not in self.queued:
            self.queued.append(path)
            self._describe()
            went = f"its result already went on to {plan.after}: " if plan.after else ""
            self.notify(f"{path}: {went}re-run queued for when the pipeline ends", title="re-run")

    def toggle_skip(self, path: str) -> None:
        """Skip (or unskip) the node and its subtree: for this run's steps not started yet, and later runs."""
        node = self.launch.root if path == "/" else self.launch.root[path]  # type: ignore[index]
        skip = not node.effective().skip
        if not skip and not node.params.skip:
            self.notify(f"{path} is skipped by a parent: unskip that one", title="skip", severity="warning")
            return
        node.set(skip=skip or None)
        if self.run is not None:
            for sub in node.walk():
                sub_run = self.run.runs[sub.path]
                if sub_run.state is State.PENDING:  # the executor reads the flag when it reaches the node
                    sub_run.skipped = sub.effective().skip
        self.tree.refresh_labels()
        started = sum(isinstance(sub, Exec) and self.run is not None
                      and self.run.runs[sub.path].state in (State.QUEUED, State.RUNNING) for sub in node.walk())
        later = f" ({started} step{'s' if started != 1 else ''} already started: left to end)" if started else ""
        self.notify(f"{path} {'skipped' if skip else 'unskipped'}{later}", title="skip")

    def action_next_error(self) -> None:
        """The next failed step after the cursor, wrapping around."""
        if self.run is None:
            return
        paths = self.tree.paths()
        failed = [p for p in paths if self.run.runs[p].kind == "exec" and self.run.runs[p].state is State.ERROR]
        if not failed:
            self.notify("no failed step", title="next error")
            return
        here = paths.index(self.tree.cursor_path) if self.tree.cursor_path in paths else -1
        after = [p for p in failed if paths.index(p) > here]
        self.tree.select_path((after or failed)[0])
        self.tree.focus()

    @work(group="pipeline-working", exit_on_error=False, description="making a checkpoint working")
    async def make_working(self, path: str) -> None:
        """The node's checkpoint becomes the working snapshot, through the main screen's own move (as a
        choice in its snapshot tree); the main screen is shown, where u/U move on from there."""
        run = self.run.runs.get(path) if self.run is not None else None
        if run is None or not run.result:
            self.notify(f"{path} has no checkpoint yet", title="make working", severity="warning")
            return
        main = self.app.main  # type: ignore[attr-defined]
        if run.result not in main.lineage.snapshots:  # made by this run: the tree has not listed it yet
            await main.load().wait()
        main.post_message(SnapshotTree.Chosen(run.result))
        self.app.pop_screen()
        self.notify(f"working: {run.result[:8]} ({path}) · u/U move from there · P: the pipeline",
                    title="checkpoint")

    def action_back(self) -> None:
        self.app.pop_screen()

    def action_command_bar(self) -> None:
        """The main screen with its command bar focused (set first: the screen gives it back on resume)."""
        self.app.main.action_command_bar()
        self.app.pop_screen()


__all__ = ["NodeLogs", "PipelineLogBox", "PipelineScreen", "finish_line"]
