"""What `contree-tui pipeline FILE:FUNC` hands the TUI: the tree already built on the command line (a pipeline
that cannot be built is a CLI error, exit 2, before any screen opens), and the run's options."""

from __future__ import annotations

from dataclasses import dataclass

from contree_tui.pipeline.nodes import Node


@dataclass(frozen=True)
class PipelineLaunch:
    root: Node
    spec: str  # FILE:FUNC as typed, for the view's title
    image: str | None = None  # for the nodes that set none (--image)
    force: bool = False  # every step runs, cached or not (--force)


__all__ = ["PipelineLaunch"]
