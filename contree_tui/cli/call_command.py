"""`contree-tui call FILE FUNC [--arg=value ...] [--json]` (or FILE:FUNC, as `pipeline` takes it): a pipeline's
function step reproduced on the host, its arguments decoded as in the sandbox (pipeline/entry.py's call_main);
the function's output as it runs, then `→ returned: VALUE` when the value adds something (return_display.py).
`--json`: stdout is the value as JSON alone (the function's output on stderr); among the function's arguments it
is this command's unless the function has a parameter named `json` (argparse drops a `--`, so no separator could
tell them apart: then give `--json` before FILE).
Exit 0, 1 if the function raised (its traceback), 2 if the call does not fit the function."""

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
                     help="its arguments: positional values, --name=value (decoded per the function's hints); "
                     "--json among them is this command's unless FUNC has a parameter named json")
    cmd.add_argument("--json", action="store_true",
                     help="print the return value as JSON only (null for None); the function's output goes to stderr")
    cmd.set_defaults(func=call_from_args)


def call_from_args(args: argparse.Namespace) -> int:
    from contree_tui.pipeline.entry import call_main  # here: the grammar loads for every command, this for `call`

    words = ([args.function] if args.function is not None else []) + list(args.args)
    as_json = bool(args.json)
    if args.function is None and words[:1] == ["--json"]:  # `call pipe.py --json sieve 30`: before FUNC, ours
        as_json, words = True, words[1:]
    file, function, rest = split_target(args.file, words[0] if words else None, words[1:])
    if function is None:
        print(f"contree-tui call: give the function: {args.file} FUNC or {args.file}:FUNC", file=sys.stderr)
        return 2
    return call_main(file, function, rest, as_json=as_json, json_flag_in_args=True)


def split_target(file: str, function: str | None, rest: list[str]) -> tuple[str, str | None, list[str]]:
    """`pipe.py:sieve --n=30` as `pipe.py sieve --n=30`: after `pipeline pipe.py:main`, users wrote the call the
    same way and argparse answered "the following arguments are required: FUNC, ARG". A FILE:FUNC takes the
    word argparse read as FUNC back as the first argument."""
    head, colon, tail = file.rpartition(":")
    if not colon or not head or not tail or Path(file).exists():
        return file, function, rest
    return head, tail, ([function] if function is not None else []) + rest


__all__ = ["add_call_command", "split_target"]
