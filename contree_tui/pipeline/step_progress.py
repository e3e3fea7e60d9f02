"""How far a pipeline run has got, in steps (Exec leaves): what the headless bar line and the TUI view's bar show.

A step counts as done once it has ended (done, failed or killed) or is skipped (a skipped step stays Pending in
`PipelineRun.counts`, as Conducto shows it, but nothing is left to wait for). A run stopped by a failed step
(stop_on_error) leaves its later steps Pending: its bar stays short of the total, "2/3 steps  1 error"."""

from __future__ import annotations

from dataclasses import dataclass

from contree_tui.pipeline.executor import PipelineRun, State


@dataclass(frozen=True)
class StepProgress:
    done: int
    total: int
    running: int
    errors: int

    @classmethod
    def of(cls, run: PipelineRun) -> StepProgress:
        steps = [r for r in run.runs.values() if r.kind == "exec"]
        return cls(done=sum(r.state.finished or r.skipped for r in steps), total=len(steps),
                   running=sum(r.state is State.RUNNING for r in steps),
                   errors=sum(r.state is State.ERROR for r in steps))


__all__ = ["StepProgress"]
