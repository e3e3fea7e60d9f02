"""argparse's error for a mistyped command, in one line: by default a typo (`contree-tui imagse`) printed the
whole usage (3 lines of every command's name) and then the 19 choices again; a newcomer reads one line with
the command they most likely meant."""

from __future__ import annotations

import argparse
import difflib
import re
import sys
from typing import NoReturn

# Only a (sub)command's positional: an option's bad value (`--format tarball`) keeps argparse's own message,
# which names the option and its choices.
_INVALID_CHOICE = re.compile(r"argument (?P<arg>[^-:][^:]*): invalid choice: '(?P<given>[^']*)' "
                             r"\(choose from (?P<choices>.*)\)")


def one_line(message: str, prog: str) -> str | None:
    """The line for an unknown (sub)command, None for any other argparse error (those keep argparse's usage)."""
    match = _INVALID_CHOICE.search(message)
    if match is None:
        return None
    given = match["given"]
    choices = re.findall(r"'([^']*)'", match["choices"])
    close = difflib.get_close_matches(given, choices, n=1, cutoff=0.6)
    hint = f"did you mean {prog} {close[0]}? " if close else ""
    return f"{prog}: unknown command '{given}' ({hint}{prog} --help lists them)"


class GrammarParser(argparse.ArgumentParser):
    """The program's parsers (subparsers inherit the class): an unknown command is one line and exit 2."""

    def error(self, message: str) -> NoReturn:
        line = one_line(message, self.prog)
        if line is None:
            super().error(message)
        print(line, file=sys.stderr)
        sys.exit(2)


__all__ = ["GrammarParser", "one_line"]
