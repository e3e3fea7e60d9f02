"""What `r` (re-run a node or subtree) does while the pipeline is still running; pure (no Textual).

Once the run has ended, `r` runs the pipeline again with the node forced (the rest are cache hits). While it
runs, waiting for the end is not what a user pressing `r` on a failed branch expects, so:
- the node, or a step under it, still queued or running: refused (a re-run of a step that is running is a
  second run of the same inputs, never what was meant; cancelling it is another key's job);
- the node not started yet, and it will be reached: forced in this run (it will not be a cache hit);
- the node finished (or stopped where it will never run, under a Serial that stopped on an error): the
  smallest finished subtree holding it whose parent is still running is started again now, on the snapshot it
  ran on, the node forced and its other steps cache hits. When that parent is a Parallel, it waits for the
  re-run and takes its result (executor.py's `again`): the counts move from E/D to R to D as the user watches.
  When it is a Serial, the result has already gone on to the following step (running now, on the old one):
  the re-run is queued for the end of the run, when it is the usual `r`, the steps after it included.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Literal

from contree_tui.pipeline.executor import NodeRun, PipelineEvent, PipelineRun, State
from contree_tui.pipeline.nodes import Node, Parallel

Plan = Literal["running", "force", "now", "queue"]
ACTIVE = (State.QUEUED, State.RUNNING)


@dataclass(frozen=True)
class Rerun:
    plan: Plan
    path: str  # the node `r` was pressed on
    subtree: str  # what starts again ("now"), or the node itself
    after: str | None = None  # "queue": the step its result went on to


def _node(run: PipelineRun, path: str) -> Node:
    return run.nodes[path]


def plan_rerun(run: PipelineRun, path: str) -> Rerun:
    """What `r` on `path` does in `run`, which has not ended."""
    node = _node(run, path)
    states = [run.runs[sub.path].state for sub in node.walk()]
    if any(state in ACTIVE for state in states):
        return Rerun("running", path, path)
    parent = node.parent
    if all(state is State.PENDING for state in states) and parent is not None \
            and not run.runs[parent.path].state.finished:
        return Rerun("force", path, path)
    top = node
    while top.parent is not None and run.runs[top.parent.path].state.finished:
        top = top.parent
    if top.parent is None:  # everything above has ended: the run is ending, the usual `r` follows it
        return Rerun("queue", path, path)
    if isinstance(top.parent, Parallel):
        return Rerun("now", path, top.path)
    siblings = list(top.parent.children.values())  # a Serial: its result went on to the next child
    later = siblings[siblings.index(top) + 1:]
    return Rerun("queue", path, top.path, later[0].path if later else None)


def force(run: PipelineRun, path: str) -> None:
    """`path`'s steps, not started yet, will run even if cached."""
    run.forced_paths = (*run.forced_paths, path.rstrip("/") + "/")


def restart(run: PipelineRun, subtree: str, forced: str) -> list[str]:
    """Start `subtree` again now on the snapshot it ran on, `forced`'s steps forced; the parent Parallel waits
    for it (PipelineRun.again). Its steps get new NodeRuns (a view drops the old logs); their paths."""
    node = _node(run, subtree)
    source = run.runs[subtree].source
    paths = [sub.path for sub in node.walk()]
    for sub in node.walk():
        run.runs[sub.path] = NodeRun(sub.path, sub.kind, skipped=sub.effective().skip)
    force(run, forced)
    run.again[subtree] = asyncio.ensure_future(run._node(node, source))
    run._emit(PipelineEvent("state", run.runs[subtree]))  # the counts and labels move now, not at its first step
    return paths


__all__ = ["Rerun", "force", "plan_rerun", "restart"]
