"""A pipeline run without a screen: one progress line per Exec as it starts and ends (a done step's output and
return value under it), a summary with each checkpoint, the failed steps' log tails, and the exit status (what
`contree-tui pipeline FILE:FUNC --headless` prints)."""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Callable
from typing import TextIO

from contree_tui.client.connection import Connection
from contree_tui.client.progress import StatusLine, steps_progress_text
from contree_tui.pipeline.executor import NodeRun, PipelineEvent, PipelineRun, State
from contree_tui.pipeline.network_notes import node_at, run_network_line, step_network_note
from contree_tui.pipeline.nodes import Node
from contree_tui.pipeline.return_display import returned_line
from contree_tui.pipeline.step_cache import StepCache
from contree_tui.pipeline.step_progress import StepProgress

LOG_TAIL_LINES = 20  # of a failed step, in the summary: its last error, not its whole build log
OUTPUT_LINES = 20  # of a done step, under its line: a sieve's list whole, a long log its end (`logs OP`: all)
EXIT_FAILED = 1
TICK = 0.5  # s between redraws of the bar's elapsed time while no step changes: it moves, ~nothing of the CPU


def short(uuid: str | None) -> str:
    return uuid[:12] if uuid else "-"


def counts_text(run: PipelineRun, path: str = "/") -> str:
    return "  ".join(f"{state.value}:{n}" for state, n in run.counts(path).items())


class ProgressPrinter:
    """Subscribed to a PipelineRun: writes a line when an Exec starts running, is served from cache, or ends;
    with `outputs`, under a done step's line its output's last OUTPUT_LINES lines and its return value
    (return_display.py: once, labelled, unless the output ended with it). On a terminal (and given the run) a
    bar line stays under those lines, redrawn in place: steps done of the total, running, errors, elapsed
    (client/progress.py's StatusLine, as `import` draws its own); `close` erases it before the summary.
    Elsewhere (a pipe, a CI log) the lines alone."""

    def __init__(self, out: TextIO, clock: Callable[[], float] = time.monotonic, *,
                 run: PipelineRun | None = None, live: bool | None = None, outputs: bool = False) -> None:
        self.out = out
        self.clock = clock
        self.started = clock()
        self.run = run
        self.outputs = outputs
        live = out.isatty() if live is None else live
        self.bar = StatusLine(out, live=True, clock=clock) if live and run is not None else None

    def __call__(self, event: PipelineEvent) -> None:
        line = self.line_for(event)
        if line is not None:
            lines = [line]
            if self.outputs and event.run.state is State.DONE and not event.run.skipped:
                lines += output_lines(event.run)
            for text in lines:
                if self.bar is not None:
                    self.bar.say(text)  # erases the bar, writes the line; the bar is redrawn under it just below
                else:
                    print(text, file=self.out, flush=True)
        if event.kind == "state":
            self.draw(force=True)

    def line_for(self, event: PipelineEvent) -> str | None:
        run = event.run
        if event.kind != "state" or run.kind != "exec":
            return None
        stamp = f"[{self.clock() - self.started:6.1f}s]"
        if run.skipped:
            return f"{stamp} skip  {run.path}"
        network = self.network_note(run.path)
        if run.state is State.RUNNING:
            return f"{stamp} run   {run.path}  on {short(run.source)}{network}"
        if run.state is State.DONE:
            how = "cached" + network if run.cached else f"{run.duration or 0:.2f}s"  # a hit has no `run` line
            tag = f" (tag {run.tag})" if run.tag else ""
            value = ""
            if not self.outputs:  # the value, where no output is shown under the line to have printed it
                returned = returned_line(run.return_value)
                value = f"  {returned}" if returned else ""
            return f"{stamp} done  {run.path}  {how}  checkpoint {short(run.result)}{tag}{value}"
        if run.state is State.ERROR:
            return f"{stamp} FAIL  {run.path}  {run.error}"
        if run.state is State.KILLED:
            return f"{stamp} kill  {run.path}"
        return None

    def network_note(self, path: str) -> str:
        """`  · offline (...)` where the step's network is not the run's (network_notes.py, as the TUI's view)."""
        if self.run is None:
            return ""
        note = step_network_note(node_at(self.run.root, path))
        return f"  · {note}" if note else ""

    def header(self) -> None:
        """An offline run says so first (the TUI's view says it in its title)."""
        line = run_network_line(self.run.root) if self.run is not None else None
        if line:
            print(line, file=self.out, flush=True)

    def draw(self, *, force: bool = False) -> None:
        """The bar line (a terminal only); `force` at once, else at most every REDRAW seconds."""
        if self.bar is None or self.run is None:
            return
        p = StepProgress.of(self.run)
        self.bar.show(steps_progress_text(p.done, p.total, p.running, p.errors, self.clock() - self.started),
                      force=force)

    async def tick(self) -> None:
        """The elapsed time moves while a long step prints nothing."""
        while True:
            await asyncio.sleep(TICK)
            self.draw()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.clear()


def output_lines(run: NodeRun) -> list[str]:
    """A done step's output (its last OUTPUT_LINES lines, each as a terminal leaves a `\r`-redrawn line) and its
    return value when that output did not already end with it."""
    text = bytes(run.output).decode(errors="replace")
    lines = [line.rstrip("\r").rsplit("\r", 1)[-1] for line in text.rstrip("\n").splitlines()] if text.strip() else []
    shown = [f"  | {line}" for line in lines[-OUTPUT_LINES:]]
    if len(lines) > OUTPUT_LINES:
        where = f": contree-tui logs {run.operation}" if run.operation else ""
        shown.insert(0, f"  | ... {len(lines) - OUTPUT_LINES} lines before{where}")
    returned = returned_line(run.return_value, text)
    return shown + ([f"  {returned}"] if returned else [])


def summary(run: PipelineRun) -> list[str]:
    root = run.runs[run.root.path]
    lines = [f"pipeline {root.state.name.lower()}: {counts_text(run)}"]
    checkpoints = [r for r in run.runs.values() if r.kind == "exec" and r.state is State.DONE and r.result]
    if checkpoints:
        lines.append("checkpoints:")
        lines += [f"  {r.path}  {r.result}" + (f"  tag {r.tag}" if r.tag else "") + ("  (cached)" if r.cached else "")
                  for r in checkpoints]
    for failed in (r for r in run.runs.values() if r.kind == "exec" and r.state is State.ERROR):
        lines.append(f"failed: {failed.path} ({failed.error}); it ran on {failed.source}")
        tail = bytes(failed.output).decode(errors="replace").rstrip("\n").splitlines()[-LOG_TAIL_LINES:]
        lines += [f"  | {line}" for line in tail]
    return lines


async def run_with_progress(run: PipelineRun, out: TextIO, *, live: bool | None = None,
                            outputs: bool = False) -> State:
    """Run `run` to its end with its progress on `out`: a line per step (`outputs`: and a done step's output
    under it), and on a terminal the bar under them, erased before this returns (what `pipeline --headless` and
    `build` both print); the root's final state."""
    printer = ProgressPrinter(out, run=run, live=live, outputs=outputs)
    printer.header()
    unsubscribe = run.subscribe(printer)
    ticker = asyncio.create_task(printer.tick()) if printer.bar is not None else None
    try:
        return await run.run()
    finally:
        if ticker is not None:
            ticker.cancel()
        printer.close()
        unsubscribe()


async def run_headless(root: Node, connection: Connection, *, image: str | None = None, force: bool = False,
                       out: TextIO | None = None, cache: StepCache | None = None) -> int:
    """Run the pipeline printing progress to `out` (stdout); 0 if it ended Done, 1 otherwise."""
    out = out if out is not None else sys.stdout
    run = PipelineRun(root, connection, image=image, force=force, cache=cache)
    state = await run_with_progress(run, out, outputs=True)
    for line in summary(run):
        print(line, file=out, flush=True)
    return 0 if state is State.DONE else EXIT_FAILED



__all__ = ["ProgressPrinter", "run_headless", "run_with_progress", "summary"]
