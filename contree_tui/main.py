"""The program `contree-tui`: parse the command line (cli/parser.py), then hand over to one of the two faces —
the TUI (tui/) when no command is given, else the headless command (cli/). It sits above both faces, the one
module that may import either; each face is imported only once it is chosen, so a headless command never
loads Textual and `engine serve` loads neither.
"""

from __future__ import annotations

import argparse
import sys

from contree_tui.cli.parser import build_parser
from contree_tui.engine.models import EngineError


def _tui(args: argparse.Namespace) -> int:
    """No subcommand: the TUI, on the embedded engine unless a profile is given."""
    from contree_tui.tui import run_tui

    return run_tui(getattr(args, "profile", None), getattr(args, "state_dir", None), getattr(args, "folder", None),
                   getattr(args, "keymap", None))


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        return _tui(args)
    try:
        return args.func(args)
    except EngineError as exc:
        print(f"contree-tui: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
