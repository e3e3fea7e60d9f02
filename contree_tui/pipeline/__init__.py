"""Pipelines on snapshots: Serial/Parallel trees of Exec steps (shell commands or Python functions) run on Contree,
every step's result a checkpoint. No Textual here: tui/ shows what this package runs."""

from contree_tui.pipeline.functions import FunctionStepError, call_local
from contree_tui.pipeline.nodes import Exec, Node, Parallel, PipelineError, Serial, TreeError, pretty

__all__ = ["Exec", "FunctionStepError", "Node", "Parallel", "PipelineError", "Serial", "TreeError", "call_local",
           "pretty"]
