"""A pipeline run without a screen: one progress line per Exec as it starts and ends, a summary with each
checkpoint, the failed steps' log tails, and the exit status (what `contree-tui pipeline FILE:FUNC --headless`
prints)."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import TextIO

from contree_tui.client.connection import Connection
from contree_tui.pipeline.executor import PipelineEvent, PipelineRun, State
from contree_tui.pipeline.nodes import Node
from contree_tui.pipeline.step_cache import StepCache

LOG_TAIL_LINES = 20  # of a failed step, in the summary: its last error, not its whole build log
EXIT_FAILED = 1


def short(uuid: str | None) -> str:
    return uuid[:12] if uuid else "-"


def counts_text(run: PipelineRun, path: str = "/") -> str:
    return "  ".join(f"{state.value}:{n}" for state, n in run.counts(path).items())


class ProgressPrinter:
    """Subscribed to a PipelineRun: writes a line when an Exec starts running, is served from cache, or ends."""

    def __init__(self, out: TextIO, clock: Callable[[], float] = time.monotonic) -> None:
        self.out = out
        self.clock = clock
        self.started = clock()

    def __call__(self, event: PipelineEvent) -> None:
        run = event.run
        if event.kind != "state" or run.kind != "exec":
            return
        stamp = f"[{self.clock() - self.started:6.1f}s]"
        if run.skipped:
            line = f"{stamp} skip  {run.path}"
        elif run.state is State.RUNNING:
            line = f"{stamp} run   {run.path}  on {short(run.source)}"
        elif run.state is State.DONE:
            how = "cached" if run.cached else f"{run.duration or 0:.2f}s"
            value = f"  -> {run.return_value.show()}" if run.return_value is not None else ""
            tag = f" (tag {run.tag})" if run.tag else ""
            line = f"{stamp} done  {run.path}  {how}  checkpoint {short(run.result)}{tag}{value}"
        elif run.state is State.ERROR:
            line = f"{stamp} FAIL  {run.path}  {run.error}"
        elif run.state is State.KILLED:
            line = f"{stamp} kill  {run.path}"
        else:
            return
        print(line, file=self.out, flush=True)


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


async def run_headless(root: Node, connection: Connection, *, image: str | None = None, force: bool = False,
                       out: TextIO | None = None, cache: StepCache | None = None) -> int:
    """Run the pipeline printing progress to `out` (stdout); 0 if it ended Done, 1 otherwise."""
    out = out if out is not None else sys.stdout
    run = PipelineRun(root, connection, image=image, force=force, cache=cache)
    run.subscribe(ProgressPrinter(out))
    state = await run.run()
    for line in summary(run):
        print(line, file=out, flush=True)
    return 0 if state is State.DONE else EXIT_FAILED



__all__ = ["ProgressPrinter", "run_headless", "summary"]
