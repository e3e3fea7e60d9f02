"""Operations started by other clients while the TUI is open, against the real engine: the headless CLI in a
subprocess and contree-client in-process (an SDK user, an agent). Each is a row of the operations table while
it runs, its log streams when selected, and its snapshot lands in the tree under its parent when it ends, with
no reload. `R` after the CLI has refreshed the shared lineage cache still shows the CLI's snapshots, connected
to their parents (it once showed three unconnected roots and missed a CLI snapshot until a restart)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from contree_tui.client.operations import cancel_operation
from contree_tui.tui.app import ContreeApp
from contree_tui.tui.model import Operation, Stream
from contree_tui.tui.screens.main import MainScreen
from tests.client.wire import result_image, run_shell
from tests.tui.helpers import loaded, run_in_bar, toasts, until
from tests.tui.other_clients import cli, cli_run, project_app, sdk, start_cli

SIZE = (160, 45)


def find(screen: MainScreen, marker: str) -> Operation | None:
    return next((op for op in screen.table.operations.values() if marker in op.command), None)


def in_tree_under(screen: MainScreen, snapshot: str | None, parent: str | None) -> bool:
    """In the lineage under `parent`, and a node of the tree widget (opened to it: a busy parent's children
    past the window are counted in its "… N more")."""
    return (snapshot is not None and screen.lineage.parent_of(snapshot) == parent
            and screen.tree.reveal(snapshot) is not None)


async def test_a_cli_run_is_a_row_as_it_starts_its_log_streams_and_its_snapshot_lands_under_its_parent(
        tui_engine_dir: Path, tmp_path: Path) -> None:
    app, folder = project_app(tui_engine_dir, tmp_path)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        screen = await loaded(pilot)
        start = screen.position.working
        command = "for i in 1 2 3 4 5 6 7 8; do echo tick$i; sleep 0.5; done; echo done > /cli-ops"
        process = await start_cli(tui_engine_dir, folder, "run", "--", command)
        await until(pilot, lambda: (op := find(screen, "tick$i")) is not None and op.running, timeout=15,
                    what="the CLI's run as a running row")
        op = find(screen, "tick$i")
        assert op is not None and op.image == start and screen.status_bar.running >= 1
        assert op.duration is None  # its time counts on in the table, not frozen at the second it was read
        screen.table.select(op.uuid)
        streamed: list[bool] = []

        def ticking() -> bool:  # a line of its log while it still runs: live, not replayed at the end
            lines = [text for stream, text in screen.buffers[op.uuid].lines if stream is Stream.STDOUT]
            if any(text.startswith("tick") for text in lines):
                streamed.append(op.running)
                return True
            return False

        await until(pilot, ticking, timeout=15, what="the CLI's log in the TUI")
        assert streamed == [True], "the log streamed while the run ran"
        assert screen.log_panel.view.buffer is screen.buffers[op.uuid]
        await asyncio.wait_for(process.communicate(), 60)
        assert process.returncode == 0
        await until(pilot, lambda: not op.running and in_tree_under(screen, op.result, start), timeout=15,
                    what="the CLI's snapshot in the tree under its parent")
        assert op.exit_code == 0 and op.result != start


async def test_sdk_runs_show_as_they_start_and_a_chain_lands_connected(tui_engine_dir: Path, tmp_path: Path
                                                                     ) -> None:
    app, _folder = project_app(tui_engine_dir, tmp_path)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        screen = await loaded(pilot)
        start = screen.position.working
        assert start is not None
        async with sdk(tui_engine_dir) as other:
            spawned = await other.client.spawn_instance("sleep 2; echo sdk > /sdk", start, shell=True,
                                                        disposable=False)
            uuid = str(spawned.uuid)
            await until(pilot, lambda: uuid in screen.table.operations and screen.table.operations[uuid].running,
                        timeout=10, what="the SDK's run as a running row")
            op = screen.table.operations[uuid]
            await until(pilot, lambda: in_tree_under(screen, op.result, start), timeout=20,
                        what="the SDK's snapshot under its parent")
            # a chain made faster than the watch polls: each lands under the one before it
            first = result_image(await run_shell(other, start, "echo a > /chain"))
            second = result_image(await run_shell(other, first, "echo b >> /chain"))
        await until(pilot, lambda: in_tree_under(screen, first, start) and in_tree_under(screen, second, first),
                    timeout=15, what="the SDK's chain in the tree")
        assert screen.position.working == start  # SDK runs do not move the folder's position


async def test_reload_after_the_cli_refreshed_the_shared_cache_keeps_its_snapshots_connected(
        tui_engine_dir: Path, tmp_path: Path) -> None:
    """The CLI works in another folder (its moves are not this TUI's to follow, so nothing here refreshes
    the lineage before `R`), and refreshes the lineage cache both share after each run."""
    folder, elsewhere = tmp_path / "project", tmp_path / "elsewhere"
    folder.mkdir()
    elsewhere.mkdir()
    app = ContreeApp(state_dir=tui_engine_dir, folder=folder)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        screen = await loaded(pilot)
        await pilot.pause(1.1)  # whole seconds: the CLI's images fall after the TUI's mark
        ran = await cli_run(tui_engine_dir, elsewhere, "echo r1 > /r1")
        start, first = ran["source"], ran["position"]
        await cli(tui_engine_dir, elsewhere, "images")  # the CLI refreshes the shared cache: its marks move
        await pilot.pause(6)  # past the 5 s a refresh re-lists behind its mark
        second = (await cli_run(tui_engine_dir, elsewhere, "echo r2 > /r2"))["position"]
        await cli(tui_engine_dir, elsewhere, "images")
        await pilot.press("R")
        backend = screen.backend
        assert backend is not None
        await until(pilot, lambda: first in backend.images.tree and second in screen.lineage.snapshots,  # type: ignore[attr-defined]
                    timeout=10, what="R to list what the CLI made")
        tree = backend.images.tree  # type: ignore[attr-defined]
        assert tree.ancestors(second)[:2] == (first, start), tree.ancestors(second)
        assert screen.lineage.parent_of(second) == first and screen.lineage.parent_of(first) == start
        roots = {s.uuid for s in screen.lineage.roots()}
        assert not roots & {first, second}, "no CLI snapshot is an unconnected root"
        assert in_tree_under(screen, second, first)


async def test_the_tuis_own_run_is_one_row_with_one_copy_of_its_log_while_the_watch_runs(
        tui_engine_dir: Path, tmp_path: Path) -> None:
    """The watch lists every operation, the TUI's own too: those are never adopted as another client's (a
    second row, a second follower doubling every line)."""
    app, _folder = project_app(tui_engine_dir, tmp_path)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        screen = await loaded(pilot)
        await run_in_bar(pilot, "echo own-one; sleep 2.5; echo own-two")
        await until(pilot, lambda: (op := find(screen, "own-one")) is not None and not op.running, timeout=20,
                    what="the TUI's own run to end")
        await pilot.pause(1.5)  # another watch tick after it ended
        rows = [op for op in screen.table.operations.values() if "own-one" in op.command]
        assert len(rows) == 1
        lines = [text for stream, text in screen.buffers[rows[0].uuid].lines if stream is Stream.STDOUT]
        assert lines == ["own-one", "own-two"], lines
        assert len(screen.watch_ms) >= 2  # the watch did poll meanwhile


async def test_wait_waits_for_this_sessions_runs_not_another_clients_long_one(tui_engine_dir: Path,
                                                                             tmp_path: Path) -> None:
    """An agent's long run is a row here, but `:wait` after a `:parallel` ends when the branches do (it once
    waited for every row, so a run left going by another client held it); `:wait all` counts it."""
    app, _folder = project_app(tui_engine_dir, tmp_path)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        screen = await loaded(pilot)
        start = screen.position.working
        assert start is not None
        async with sdk(tui_engine_dir) as other:
            long = await other.client.spawn_instance("sleep 60 # agent", start, shell=True, disposable=True)
            uuid = str(long.uuid)
            try:
                await until(pilot, lambda: uuid in screen.table.operations, timeout=10, what="the agent's row")
                await run_in_bar(pilot, ":parallel sleep 4 # mine-a ;; sleep 5 # mine-b")
                await until(pilot, lambda: find(screen, "mine-a") is not None and find(screen, "mine-b")
                            is not None, what="both branches")
                await run_in_bar(pilot, ":wait")
                await until(pilot, lambda: any("operations ended" in t for t in toasts(app)), timeout=30,
                            what="the wait's toast")
                said = next(t for t in toasts(app) if "operations ended" in t)
                assert "did not succeed" not in said and "succeeded" in said, said  # its own branches only
                assert not any("waiting for 3" in t for t in toasts(app)), toasts(app)
                assert screen.table.operations[uuid].running  # the agent's run goes on, and was not waited for
                await run_in_bar(pilot, ":wait all")
                await until(pilot, lambda: any("waiting for 1 operation…" in t for t in toasts(app)),
                            what="`:wait all` taking the agent's run")
            finally:
                await cancel_operation(other, uuid)
