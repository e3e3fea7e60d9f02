"""A pipeline is an ordinary Python file with a function returning the root node: `FILE:FUNC` plus that
function's arguments, decoded per its hints as a step's are (`pipe.py:primes --n=30`)."""

from __future__ import annotations

from pathlib import Path

from contree_tui.pipeline.function_runner import ArgumentError, call
from contree_tui.pipeline.nodes import Node, PipelineError


def split_spec(spec: str) -> tuple[Path, str]:
    """`FILE:FUNC` -> (file, function name); PipelineError for anything else."""
    file, sep, func = spec.rpartition(":")
    if not sep or not file or not func.isidentifier():
        raise PipelineError(f"{spec!r}: expected FILE:FUNC, e.g. pipeline.py:build")
    path = Path(file)
    if not path.is_file():
        raise PipelineError(f"{file}: no such file")
    return path, func


def load_pipeline(spec: str, argv: list[str] | None = None) -> Node:
    """Import the file, call the function with `argv` and return the root node it builds."""
    path, func = split_spec(spec)
    try:
        root = call(str(path), func, list(argv or []))
    except ArgumentError as exc:
        raise PipelineError(str(exc)) from None
    except PipelineError:
        raise
    except SyntaxError as exc:
        raise PipelineError(f"{path}:{exc.lineno}: {exc.msg}") from None
    except Exception as exc:  # the user's code failed while building the tree: say where, keep it short
        raise PipelineError(f"{spec}: building the pipeline failed: {type(exc).__name__}: {exc}") from exc
    if not isinstance(root, Node):
        raise PipelineError(f"{spec} returned {type(root).__name__}, not a Serial, Parallel or Exec")
    if root.parent is not None:
        raise PipelineError(f"{spec} returned {root.path}, which is inside another node; return the root")
    return root


__all__ = ["load_pipeline", "split_spec"]
