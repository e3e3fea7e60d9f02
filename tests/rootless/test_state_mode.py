"""Root and rootless engines never share a state dir: each records its mode when it makes one, and the other
refuses it by name, before changing anything in it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from contree_tui.engine.state_dir import StateDir
from tests.rootless.conftest import REPO, NormalUser

MAKE_STATE = ("import sys; from contree_tui.engine.rootless_entry import enter_rootless_namespace; "
              "enter_rootless_namespace(); from contree_tui.engine.state_dir import StateDir; "
              "StateDir.create(sys.argv[1])")


def _root_cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", "contree_tui", *args], capture_output=True, text=True, env=env,
                          timeout=60)


def _listing(root: Path) -> dict[str, tuple[int, int, int]]:
    return {str(p): (p.stat().st_uid, p.stat().st_mode, p.stat().st_mtime_ns) for p in [root, *root.rglob("*")]}


def test_root_refuses_a_state_dir_a_normal_user_made_and_changes_nothing_there(normal_user: NormalUser) -> None:
    state = normal_user.new_state_dir()
    made = normal_user.run(str(normal_user.python), "-c", MAKE_STATE, str(state))
    assert made.returncode == 0, made.stderr
    assert (state / "engine.mode").read_text() == f"rootless {normal_user.uid}\n"
    before = _listing(state)
    done = _root_cli("engine", "serve", "--state-dir", str(state))
    assert done.returncode == 2, done
    assert "Traceback" not in done.stderr
    assert done.stderr == (f"contree-tui: the state directory {state} was made by a rootless engine (a normal "
                           f"user's, uid {normal_user.uid}), and this is a root engine: root and rootless engines "
                           "never share a state directory. Use another --state-dir (or CONTREE_TUI_ENGINE_DIR)\n")
    assert _listing(state) == before


def test_a_normal_user_refuses_a_state_dir_root_made(normal_user: NormalUser) -> None:
    for pre_modes in (False, True):
        state = StateDir.create(normal_user.new_state_dir()).root  # by root, as root's engine makes it
        if pre_modes:  # a root state dir from before #14: no engine.mode, an engine.db, owned by root
            (state / "engine.mode").unlink()
            (state / "engine.db").write_bytes(b"")
        else:
            assert (state / "engine.mode").read_text() == "root\n"
        state.chmod(0o755)  # readable, so that what refuses is the mode, not the permissions
        before = _listing(state)
        done = normal_user.cli("engine", "serve", "--state-dir", str(state))
        assert done.returncode == 2, done
        assert "Traceback" not in done.stderr
        assert (f"the state directory {state} was made by a root engine, and this is a rootless engine (a "
                f"normal user's, uid {normal_user.uid})") in done.stderr, done.stderr
        assert _listing(state) == before
