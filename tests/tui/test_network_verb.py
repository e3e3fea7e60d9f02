"""`:network off|on` in the command bar: the following runs get no network (loopback only) or theirs again.
Where the engine has none to give (no pasta; a normal user's engine with /dev/net/tun 0600, as on this project's
VM) every networked run is refused, and this is how a TUI user without an administrator still runs (seen as a
normal user following the README, #14). The engine here has networking, so the difference shows."""

from __future__ import annotations

from pathlib import Path

from contree_client.models import OperationStatus

from tests.tui.helpers import loaded
from tests.tui.test_command_bar import SIZE, app_in, output, run_done, submit

INTERFACES = "ip -o link | grep -c -v ' lo:'"  # the sandbox's interfaces besides loopback


async def test_network_off_runs_without_a_network_and_on_gives_it_back(tui_engine_dir: Path, tmp_path: Path) -> None:
    app = app_in(tmp_path / "p", tui_engine_dir)
    async with app.run_test(size=SIZE) as pilot:
        screen = await loaded(pilot)
        await submit(pilot, ":network off")
        offline = await run_done(pilot, screen, INTERFACES)
        assert offline.status is OperationStatus.SUCCESS and output(screen, offline)[:1] == ["0"]
        await submit(pilot, ":network on")
        online = await run_done(pilot, screen, INTERFACES)
        assert online.status is OperationStatus.SUCCESS and output(screen, online)[:1] == ["1"]
