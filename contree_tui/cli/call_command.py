"""`contree-tui call FILE FUNC [--arg=value ...]` (or FILE:FUNC, as `pipeline` takes it): a pipeline's function
step reproduced on the host, its
arguments decoded as in the sandbox (pipeline/entry.py's call_main); the function's output, then its return
value. Exit 0, 1 if the function raised (its traceback), 2 if the call does not fit the function."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def add_call_command(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    text = "run a pipeline's Python function here, as its step runs it in the sandbox (e.g. pipe.py sieve --n=30)"
    cmd = sub.add_parser("call", help=text, description=text)
    cmd.add_argument("file", metavar="FILE", help="the pipeline's Python file (or FILE:FUNC, as pipeline takes it)")
    cmd.add_argument("function", metavar="FUNC", nargs="?", help="a function defined at the top level of FILE")
    cmd.add_argument("args", nargs=argparse.REMAINDER, metavar="ARG",
                     help="its arguments: positional values, --name=value (decoded per the function's hints)")
    cmd.set_defaults(func=call_from_args)


def call_from_args(args: argparse.Namespace) -> int:
    from contree_tui.pipeline.entry import call_main  # here: the grammar loads for every command, this for `call`

    file, function, rest = split_target(args.file, args.function, list(args.args))
    if function is None:
        print(f"contree-tui call: give the function: {args.file} FUNC or {args.file}:FUNC", file=sys.stderr)
        return 2
    return call_main(file, function, rest)


def split_target(file: str, function: str | None, rest: list[str]) -> tuple[str, str | None, list[str]]:
    """`pipe.py:sieve --n=30` as `pipe.py sieve --n=30`: after `pipeline pipe.py:main`, users wrote the call the
    same way and argparse answered "the following arguments are required: FUNC, ARG". A FILE:FUNC takes the
    word argparse read as FUNC back as the first argument."""
    head, colon, tail = file.rpartition(":")
    if not colon or not head or not tail or Path(file).exists():
        return file, function, rest
    return head, tail, ([function] if function is not None else []) + rest


__all__ = ["add_call_command", "split_target"]
