"""`contree-tui call FILE FUNC [--arg=value ...]`: a pipeline's function step reproduced on the host, its
arguments decoded as in the sandbox (pipeline/entry.py's call_main); the function's output, then its return
value. Exit 0, 1 if the function raised (its traceback), 2 if the call does not fit the function."""

from __future__ import annotations

import argparse


def add_call_command(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    text = "run a pipeline's Python function here, as its step runs it in the sandbox (e.g. pipe.py sieve --n=30)"
    cmd = sub.add_parser("call", help=text, description=text)
    cmd.add_argument("file", metavar="FILE", help="the pipeline's Python file")
    cmd.add_argument("function", metavar="FUNC", help="a function defined at the top level of FILE")
    cmd.add_argument("args", nargs=argparse.REMAINDER, metavar="ARG",
                     help="its arguments: positional values, --name=value (decoded per the function's hints)")
    cmd.set_defaults(func=call_from_args)


def call_from_args(args: argparse.Namespace) -> int:
    from contree_tui.pipeline.entry import call_main  # here: the grammar loads for every command, this for `call`

    return call_main(args.file, args.function, list(args.args))


__all__ = ["add_call_command"]
