"""The program `contree-tui`: parse the command line (cli/parser.py), then hand over to one of the two faces —
the TUI (tui/) when no command is given, else the headless command (cli/). It sits above both faces, the one
module that may import either; each face is imported only once it is chosen, so a headless command never
loads Textual and `engine serve` loads neither.
"""

from __future__ import annotations

import argparse
import os
import sys

from contree_tui.cli.parser import build_parser
from contree_tui.cli.pipeline_command import wants_tui as _wants_tui
from contree_tui.engine.models import EngineError


def _tui(args: argparse.Namespace) -> int:
    """No subcommand: the TUI, on the embedded engine unless a profile is given."""
    from contree_tui.tui import run_tui

    return run_tui(getattr(args, "profile", None), getattr(args, "state_dir", None), getattr(args, "folder", None),
                   getattr(args, "keymap", None))


def _pipeline_tui(args: argparse.Namespace) -> int:
    """`pipeline FILE:FUNC` without --headless: the tree is built here (a bad one: one line, exit 2), then the
    TUI opens on its view (tui/screens/pipeline_view.py)."""
    from contree_tui.cli.pipeline_command import build_launch
    from contree_tui.tui import run_tui

    launch = build_launch(args)
    if isinstance(launch, int):
        return launch
    return run_tui(getattr(args, "profile", None), getattr(args, "state_dir", None), getattr(args, "folder", None),
                   getattr(args, "keymap", None), pipeline=launch)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        return _tui(args)
    if args.command_name == "pipeline" and _wants_tui(args):
        return _pipeline_tui(args)
    try:
        return args.func(args)
    except EngineError as exc:
        print(f"contree-tui: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return _reader_gone()


def _reader_gone() -> int:
    """stdout's reader went away (`... | head -1`): Python ignores SIGPIPE, so the write raised. End as a
    program killed by SIGPIPE ends (a shell says 141), with stdout on /dev/null so the interpreter's own
    flush at exit does not raise again (Python's documented recipe, library/signal.html#note-on-sigpipe)."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
    return 141
