"""The main screen against a real engine: run from the command bar, roll back and forward, choose a working
snapshot, read a run's output; every failure a toast."""

from __future__ import annotations

import uuid as uuidlib
from pathlib import Path

from contree_client.models import OperationStatus

from contree_tui.tui.app import ContreeApp
from contree_tui.tui.model import Stream
from contree_tui.tui.screens.help import HelpScreen
from contree_tui.tui.screens.main import MainScreen
from tests.tui.helpers import loaded, run_and_wait, run_in_bar, until

SIZE = (140, 40)



async def test_a_command_typed_in_the_bar_runs_and_its_snapshot_becomes_working(tui_engine_dir: Path) -> None:
    app = ContreeApp(state_dir=tui_engine_dir)
    async with app.run_test(size=SIZE) as pilot:
        screen = await loaded(pilot)
        source = screen.position.working
        assert source is not None
        marker = uuidlib.uuid4().hex
        made = await run_and_wait(pilot, screen, f"echo {marker} > /marker; cat /marker")

        assert made != source
        assert screen.lineage.parent_of(made) == source, "the new snapshot is a child of the one it ran on"
        row = screen.tree.row_of(made)
        assert row is not None and row.parent == source, "drawn hanging from its parent"
        assert screen.tree.working == made, "marked as the working snapshot in the tree"
        assert screen.status_bar.working == made[:8]
        op = next(op for op in screen.table.operations.values() if op.result == made)
        assert op.status is OperationStatus.SUCCESS and op.exit_code == 0 and op.image == source
        assert screen.table.selected_uuid == op.uuid, "the run's row is selected"
        await until(pilot, lambda: marker in screen.log_panel.view.text_lines(), what="the run's output")
        # the status bar counts what still runs: not this run, only what earlier tests left going on the
        # shared engine (run after test_operations_keys: one of its runs, so not simply 0)
        await until(pilot, lambda: screen.status_bar.running
                    == sum(other.running for other in screen.table.operations.values()), what="the running count")
        assert not screen.table.operations[op.uuid].running

        # The next command runs on the new working snapshot: it sees the file the first one wrote.
        again = await run_and_wait(pilot, screen, "cat /marker > /copy; cat /copy")
        assert screen.lineage.parent_of(again) == made
        await until(pilot, lambda: screen.log_panel.view.text_lines()[:1] == [marker], what="the copy's output")


async def test_u_rolls_back_at_once_with_a_toast_naming_where_and_U_goes_forward(tui_engine_dir: Path) -> None:
    app = ContreeApp(state_dir=tui_engine_dir)
    async with app.run_test(size=SIZE) as pilot:
        screen = await loaded(pilot)
        parent = screen.position.working
        assert parent is not None
        child = await run_and_wait(pilot, screen, "touch /rolled")

        await pilot.press("u")
        await pilot.pause()
        assert screen.position.working == parent, "one key: no question (nothing is destroyed)"
        assert isinstance(app.screen, MainScreen)
        assert screen.tree.working == parent
        assert screen.tree.node_for(child) is not None, "rolling back deletes nothing: the child stays in the tree"
        toast = [n for n in app._notifications if n.title == "rolled back"][-1].message
        assert parent[:8] in toast and "busybox:latest" in toast, f"names where it went: {toast}"
        assert f"U goes forward to {child[:8]}" in toast, toast

        await pilot.press("U")
        await until(pilot, lambda: screen.position.working == child, what="forward again")
        assert screen.tree.working == child
        toast = [n for n in app._notifications if n.title == "forward"][-1].message
        assert child[:8] in toast and "touch /rolled" in toast and "u rolls back" in toast, toast
        await pilot.press("U")  # nothing further ahead: a warning, no move
        await pilot.pause()
        assert screen.position.working == child


async def test_enter_in_the_tree_makes_the_snapshot_under_the_cursor_working(tui_engine_dir: Path) -> None:
    app = ContreeApp(state_dir=tui_engine_dir)
    async with app.run_test(size=SIZE) as pilot:
        screen = await loaded(pilot)
        parent = screen.position.working
        child = await run_and_wait(pilot, screen, "touch /chosen")
        tree = screen.tree
        tree.focus()
        tree.move_cursor(tree.node_for(parent))
        await pilot.pause()
        assert tree.cursor_uuid == parent
        await pilot.press("enter")
        await until(pilot, lambda: screen.position.working == parent, what="enter to choose the parent")
        tree.move_cursor(tree.node_for(child))
        await pilot.pause()
        await pilot.press("enter")
        await until(pilot, lambda: screen.position.working == child, what="enter to choose the child")


async def test_the_log_shows_stdout_and_stderr_apart_and_an_exit_summary(tui_engine_dir: Path) -> None:
    app = ContreeApp(state_dir=tui_engine_dir)
    async with app.run_test(size=SIZE) as pilot:
        screen = await loaded(pilot)
        await run_and_wait(pilot, screen, "echo to-out; echo to-err >&2; touch /logged; exit 3")
        view = screen.log_panel.view
        await until(pilot, lambda: view.buffer is not None and view.buffer.complete, what="the whole log")
        lines = list(view.buffer.lines)  # type: ignore[union-attr]
        assert (Stream.STDOUT, "to-out") in lines and (Stream.STDERR, "to-err") in lines
        assert lines[-1][0] is Stream.META and "exit 3" in lines[-1][1]
        op = screen.table.operations[screen.table.selected_uuid or ""]
        assert op.exit_code == 3


async def test_follow_pauses_on_scroll_up_and_counts_what_arrives(tui_engine_dir: Path) -> None:
    app = ContreeApp(state_dir=tui_engine_dir)
    async with app.run_test(size=SIZE) as pilot:
        screen = await loaded(pilot)
        await run_in_bar(pilot, "seq 1 200; sleep 2; seq 201 260; touch /followed")
        view = screen.log_panel.view
        await until(pilot, lambda: view.virtual_size.height >= 200, what="the first 200 lines on screen")
        assert view.following and view.is_vertical_scroll_end, "it follows the bottom while lines come"
        view.focus()
        await pilot.press("k", "k")
        assert not view.following, "scrolling up pauses follow"
        paused_at = view.scroll_y
        await until(pilot, lambda: view.buffer is not None and view.buffer.complete, what="the run to end")
        await pilot.pause(0.2)
        assert view.scroll_y == paused_at, "new lines do not drag the view down while paused"
        assert view.new_lines == 61, "60 lines and the exit summary arrived while paused"
        assert "+61 new lines · G follows" in view.screen_text()[-1], "the badge, over the view's last row"

        await pilot.press("G")
        assert view.following and view.is_vertical_scroll_end and view.new_lines == 0
        assert "G follows" not in view.screen_text()[-1]


async def test_a_failed_run_is_a_toast_with_its_reason(tui_engine_dir: Path) -> None:
    app = ContreeApp(state_dir=tui_engine_dir)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        screen = await loaded(pilot)
        screen.position.move_to(str(uuidlib.uuid4()))  # an image the engine does not have
        await run_in_bar(pilot, "true")
        await until(pilot, lambda: any("failed" in (n.title or "") for n in app._notifications),
                    what="a toast")
        toast = next(n for n in app._notifications if "failed" in (n.title or ""))
        assert toast.severity == "error" and "HTTP" in toast.message, toast.message


async def test_help_lists_every_key_and_q_quits(tui_engine_dir: Path) -> None:
    app = ContreeApp(state_dir=tui_engine_dir)
    async with app.run_test(size=SIZE) as pilot:
        await loaded(pilot)
        await pilot.press("question_mark")
        await until(pilot, lambda: isinstance(app.screen, HelpScreen), what="the help screen")
        await pilot.press("escape")
        await until(pilot, lambda: isinstance(app.screen, MainScreen), what="help to close")
        await pilot.press("q")
        await pilot.pause()
    assert app.return_code == 0


async def test_the_working_snapshot_is_kept_for_the_folder_across_sessions(tui_engine_dir: Path,
                                                                          tmp_path: Path) -> None:
    folder = tmp_path / "project"
    folder.mkdir()
    first = ContreeApp(state_dir=tui_engine_dir, folder=folder)
    async with first.run_test(size=SIZE) as pilot:
        screen = await loaded(pilot)
        made = await run_and_wait(pilot, screen, "touch /kept-for-the-folder")
        await pilot.press("q")

    again = ContreeApp(state_dir=tui_engine_dir, folder=folder)
    async with again.run_test(size=SIZE) as pilot:
        screen = await loaded(pilot)
        assert screen.position.working == made, "the next session starts where the last one left the folder"
        assert screen.tree.working == made
        await pilot.press("u")
        await until(pilot, lambda: screen.position.working != made, what="the rollback")
        assert screen.position.working == screen.lineage.parent_of(made)

    elsewhere = ContreeApp(state_dir=tui_engine_dir, folder=tmp_path)
    async with elsewhere.run_test(size=SIZE) as pilot:
        screen = await loaded(pilot)
        # other tests of the session's engine may have given the base image more tags
        tags = screen.lineage.get(screen.position.working).tag  # type: ignore[union-attr]
        assert "busybox:latest" in tags.split(", "), "another folder has its own position, starting on the base image"


async def test_a_connection_that_cannot_be_made_is_a_toast_and_the_status_bar_says_so() -> None:
    app = ContreeApp(profile="no-such-profile")
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await until(pilot, lambda: any("connecting failed" in (n.title or "") for n in app._notifications),
                    what="the toast")
        toast = next(n for n in app._notifications if "connecting failed" in (n.title or ""))
        assert "no profile 'no-such-profile'" in toast.message and toast.severity == "error"
        await until(pilot, lambda: "disconnected" in str(app.main.status_bar.render()), what="the status bar")
        await pilot.press("colon", *"true", "enter")  # nothing to run on: said, not crashed
        await until(pilot, lambda: any("cannot run" in (n.title or "") for n in app._notifications),
                    what="the refusal")
