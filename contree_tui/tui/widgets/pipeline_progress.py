"""The pipeline view's bar (in its header): steps done of the total as Textual's ProgressBar and `3/5 steps`,
from the run's events (pipeline/step_progress.py counts them as the headless bar line does)."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import Label, ProgressBar

from contree_tui.pipeline.nodes import Exec, Node
from contree_tui.pipeline.step_progress import StepProgress

# cells: bar and `4/7 steps` take 27 of an 80-column header, its state, counts and FILE:FUNC keep 53 (the
# percentage would say again what the steps say, in 5 more cells taken from FILE:FUNC)
BAR_WIDTH = 16


class PipelineProgress(Horizontal):
    DEFAULT_CSS = f"""
    PipelineProgress {{
        width: auto;
        height: 1;
    }}
    PipelineProgress Bar {{
        width: {BAR_WIDTH};
    }}
    PipelineProgress #pipeline-steps {{
        width: auto;
        padding: 0 1;
    }}
    """

    def __init__(self, root: Node, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        # the total is known from the tree before any run: a bar with a total never shows Textual's
        # indeterminate animation (a pulse each frame, and an SVG snapshot that would never be stable)
        self.total = sum(isinstance(node, Exec) for node in root.walk())
        self.done = 0

    def compose(self) -> ComposeResult:
        yield ProgressBar(total=self.total, show_eta=False, show_percentage=False, id="pipeline-bar")
        yield Label(self._words(), id="pipeline-steps")

    def show(self, progress: StepProgress) -> None:
        self.total, self.done = progress.total, progress.done
        self.query_one(ProgressBar).update(total=progress.total, progress=progress.done)
        self.query_one("#pipeline-steps", Label).update(self._words())

    def _words(self) -> str:
        return f"{self.done}/{self.total} steps"


__all__ = ["PipelineProgress"]
