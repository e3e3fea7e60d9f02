"""What a normal user's machine lacks for the rootless engine is said once, with the commands that fix it, before
anything is created: checked for real (a user useradd gave no subordinate ids; user namespaces disabled in the
namespace the command runs in), through the real CLI."""

from __future__ import annotations

import re

from tests.rootless.conftest import NormalUser

OPEN_ENGINE = "import asyncio, sys; from contree_tui.engine.engine import Engine; asyncio.run(Engine.open(sys.argv[1]))"


def _usermod_fix(name: str) -> re.Pattern[str]:
    return re.compile(rf"sudo usermod --add-subuids (\d+)-(\d+) --add-subgids \1-\2 {name}\n")


def test_a_user_without_subordinate_ids_is_told_the_one_usermod_command(user_without_subids: NormalUser) -> None:
    user = user_without_subids
    state = user.new_state_dir()
    done = user.cli("engine", "run", "--state-dir", str(state), "echo", "hi")
    assert done.returncode == 2, done
    assert done.stdout == ""
    assert "Traceback" not in done.stderr
    assert done.stderr.startswith("contree-tui: the engine runs as this normal user in a user namespace"), done.stderr
    assert f"no /etc/subuid line for {user.name}; no /etc/subgid line for {user.name}" in done.stderr
    fix = _usermod_fix(user.name).search(done.stderr)
    assert fix is not None, done.stderr
    assert int(fix.group(2)) - int(fix.group(1)) + 1 == 65536
    assert "one thing" in done.stderr  # nothing else is missing on this machine: the message says only this
    assert not state.exists(), "the refusal comes before anything is created"


def test_engine_serve_says_the_same_and_creates_nothing(user_without_subids: NormalUser) -> None:
    state = user_without_subids.new_state_dir()
    done = user_without_subids.cli("engine", "serve", "--state-dir", str(state))
    assert done.returncode == 2, done
    assert "Traceback" not in done.stderr
    assert _usermod_fix(user_without_subids.name).search(done.stderr), done.stderr
    assert not state.exists()


def test_a_command_that_starts_the_engine_on_demand_shows_the_engines_message(
        user_without_subids: NormalUser) -> None:
    """`contree-tui images` (like the TUI) starts the engine detached and reports what its log says."""
    state = user_without_subids.new_state_dir()
    done = user_without_subids.cli("images", "--state-dir", str(state), cwd="/tmp")
    assert done.returncode != 0, done
    assert "Traceback" not in done.stderr
    assert "the embedded engine could not start: the engine runs as this normal user" in done.stderr, done.stderr
    assert _usermod_fix(user_without_subids.name).search(done.stderr), done.stderr
    assert "Or run contree-tui as root" in done.stderr  # the whole message, not its first lines only


def test_user_namespaces_disabled_are_named_with_the_sysctl_that_enables_them(normal_user: NormalUser) -> None:
    """user.max_user_namespaces is per user namespace: the command runs as the same uid inside a namespace whose
    limit its root set to 0, so creating one really fails there (ENOSPC). Every missing piece is in the one
    message."""
    state = normal_user.new_state_dir()
    inner = [str(normal_user.python), "-m", "contree_tui", "engine", "run", "--state-dir", str(state), "echo", "hi"]
    script = ('echo 0 > /proc/sys/user/max_user_namespaces && '
              f'exec setpriv --reuid={normal_user.uid} --regid={normal_user.gid} --clear-groups "$@"')
    done = normal_user.run("unshare", "--user", "--map-auto", "--map-root-user", "sh", "-c", script, "sh", *inner)
    assert done.returncode == 2, done
    assert "Traceback" not in done.stderr
    assert "user namespaces are disabled (user.max_user_namespaces = 0)" in done.stderr, done.stderr
    assert "echo user.max_user_namespaces=28633 | sudo tee /etc/sysctl.d/60-contree-tui.conf" in done.stderr
    # and, in the same message, the other piece this nesting takes away: setuid newuidmap is host root's, unmapped
    assert "lacks 2 things" in done.stderr
    assert "newgidmap are setuid to an id this user namespace does not map" in done.stderr
    assert not state.exists()


def test_engine_open_in_a_normal_users_program_says_to_start_it_through_engine_serve(normal_user: NormalUser) -> None:
    """A library caller (not the CLI) cannot enter a namespace from inside its event loop: it is told how."""
    state = normal_user.new_state_dir()
    done = normal_user.run(str(normal_user.python), "-c", OPEN_ENGINE, str(state))
    assert done.returncode != 0
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("contree_tui.engine.models.EngineError: a normal user's engine enters a user namespace")
    assert "contree-tui engine serve" in last
    assert not state.exists()


TUI_TOAST = """
import asyncio, sys
from contree_tui.tui.app import ContreeApp
async def main():
    app = ContreeApp(state_dir=sys.argv[1], folder=sys.argv[2])
    async with app.run_test(size=(160, 50), notifications=True) as pilot:
        for _ in range(1200):
            await pilot.pause(0.05)
            toasts = [n for n in app._notifications if "connecting failed" in (n.title or "")]
            if toasts:
                print(toasts[0].message)
                return
        print("no toast within 60 s")
asyncio.run(main())
"""


def test_the_tui_shows_the_whole_message_in_its_toast(user_without_subids: NormalUser) -> None:
    state = user_without_subids.new_state_dir()
    done = user_without_subids.run(str(user_without_subids.python), "-c", TUI_TOAST, str(state),
                                   str(user_without_subids.home))
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("the embedded engine could not start: the engine runs as this normal user"), done
    assert _usermod_fix(user_without_subids.name).search(done.stdout), done.stdout
    assert done.stdout.rstrip().endswith("point it at a hosted Contree with --profile NAME.")
