"""The product's CLI as the test user, in a project folder of theirs, on a state dir of their own."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from tests.rootless.conftest import NormalUser


@dataclass(frozen=True)
class Session:
    """The user, a state dir and a project folder of theirs: `cli(...)` runs `contree-tui ARGS` there."""

    user: NormalUser
    state: Path
    folder: Path

    def cli(self, *args: str, check: bool = True, timeout: float = 120) -> str:
        done = self.user.cli(*args, env={"CONTREE_TUI_ENGINE_DIR": str(self.state)}, cwd=self.folder,
                             timeout=timeout)
        if check:
            assert done.returncode == 0, f"contree-tui {' '.join(args)}: {done}"
        assert "Traceback" not in done.stderr, done.stderr
        return done.stdout

    def json(self, command: str, *args: str) -> object:
        return json.loads(self.cli(command, "--json", *args))


def folder_of(user: NormalUser, name: str) -> Path:
    folder = user.home / name
    folder.mkdir(exist_ok=True)
    os.chown(folder, user.uid, user.gid)
    return folder
