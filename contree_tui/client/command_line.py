"""An operation's command as one line a person reads: what the operations table, the snapshot tree and
`contree-tui ops` show. A run started in shell form (`shell: true`) is its `command` alone (the API ignores
`args` then). One started in exec form (`shell: false`, the default of the API) runs `command` with the
`args` list as its argv: contree-cli's `contree run -- echo hi from contree-cli` sends command `echo` and args
`["hi", "from", "contree-cli"]`, and showing `command` alone left every such run reading `echo`. The argv is
joined shell-quoted, so the line means what ran if pasted into a shell."""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from typing import Any


def command_line(command: str, args: Sequence[Any] | None, shell: bool | None) -> str:
    """`echo hi 'two words'` for exec form with args; the command as sent otherwise."""
    if shell or not args:
        return command
    return shlex.join([command, *(str(arg) for arg in args)])


__all__ = ["command_line"]
