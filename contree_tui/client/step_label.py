"""A pipeline function step's readable name, carried by its operation: the sandbox's command is the runner's
(`python3 /.contree-pipeline/function_runner.py /.contree-pipeline/pipe.py sieve --n=30`), which is what the
snapshot tree, the operations table and `contree-tui ops` showed. The API has no name or tag field on an
operation; its spawn request's `env` is kept whole in the operation's metadata and every client (the official
contree-client, contree-mcp, the SDK) sends and reads it as it is, so the step's name travels as one variable
there: the sandbox sees it too (a step may read its own name), and a client that does not know it shows the
command as before. Not in the step's cache key: moving or renaming a node keeps its cached result."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

STEP_LABEL_ENV = "CONTREE_PIPELINE_STEP"
MAX_LABEL = 200  # characters: a label is read in a table cell, not a log


def step_label(path: str, function: str, argv: tuple[str, ...] | list[str]) -> str:
    """`/find primes · sieve(n=30)`: the node's path and the call as the user wrote it in the pipeline file."""
    args = ", ".join(arg.removeprefix("--") for arg in argv)
    label = f"{path} · {function}({args})"
    return label if len(label) <= MAX_LABEL else label[: MAX_LABEL - 1] + "…"


def label_of(env: Any) -> str | None:
    """The label an operation's metadata `env` carries, or None (not a pipeline step's, or no env)."""
    if not isinstance(env, Mapping):
        return None
    label = env.get(STEP_LABEL_ENV)
    return label if isinstance(label, str) and label.strip() else None


__all__ = ["MAX_LABEL", "STEP_LABEL_ENV", "label_of", "step_label"]
