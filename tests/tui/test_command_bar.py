"""The command bar against a real engine: history (↑/↓, ctrl+r, kept across sessions), completion of paths
and tags, each verb's effect, the two-stage interrupt and the command log."""

from __future__ import annotations

import hashlib
import uuid as uuidlib
from pathlib import Path

from contree_client.models import OperationStatus
from rich.style import Style
from textual.pilot import Pilot

from contree_tui.tui.app import ContreeApp
from contree_tui.tui.command_log import Outcome
from contree_tui.tui.model import Operation, Stream
from contree_tui.tui.screens.command_log import CommandLogScreen
from contree_tui.tui.screens.main import MainScreen
from contree_tui.tui.widgets.command_bar import CommandBar
from tests.tui.helpers import loaded, toasts, until

SIZE = (140, 40)


def bar(app: ContreeApp) -> CommandBar:
    return app.main.query_one(CommandBar)


async def submit(pilot: Pilot[None], line: str) -> None:
    """`:`, type `line`, enter."""
    await pilot.press("colon")
    await pilot.press(*line)
    assert bar(pilot.app).value == line  # type: ignore[arg-type]
    await pilot.press("enter")
    await pilot.pause()


def output(screen: MainScreen, op: Operation) -> list[str]:
    return [text for stream, text in screen.buffers[op.uuid] if stream is Stream.STDOUT]


def ops_of(screen: MainScreen, command: str) -> list[Operation]:
    return [op for op in screen.table.operations.values() if op.command == command]


async def run_done(pilot: Pilot[None], screen: MainScreen, command: str) -> Operation:
    """Run `command` from the bar (with a unique marker appended); the operation once it ended."""
    command = f"{command} # {uuidlib.uuid4().hex[:8]}"
    await submit(pilot, command)
    await until(pilot, lambda: any(not op.running and screen.buffers[op.uuid].complete
                                   for op in ops_of(screen, command)), what=f"{command!r} to end")
    return ops_of(screen, command)[0]


async def start_running(pilot: Pilot[None], screen: MainScreen, command: str) -> None:
    """Submit `command` and wait until its run executes (a long command, to be interrupted or cancelled)."""
    await submit(pilot, command)
    await until(pilot, lambda: any(op.status is OperationStatus.EXECUTING for op in ops_of(screen, command)),
                what=f"{command!r} to start")


def label(screen: MainScreen, uuid: str) -> str:
    node = screen.tree.node_for(uuid)
    assert node is not None
    return screen.tree.render_label(node, Style(), Style()).plain


def app_in(folder: Path, engine: Path) -> ContreeApp:
    folder.mkdir(exist_ok=True)
    return ContreeApp(state_dir=engine, folder=folder)


# History --------------------------------------------------------------------------------------------------

async def test_up_and_down_walk_the_history_and_it_is_kept_for_the_next_session(tui_engine_dir: Path,
                                                                               tmp_path: Path) -> None:
    app = app_in(tmp_path / "p", tui_engine_dir)
    async with app.run_test(size=SIZE) as pilot:
        await loaded(pilot)
        await submit(pilot, ":env FIRST=1")
        await submit(pilot, ":env SECOND=2")
        await pilot.press("colon", *"dra")
        await pilot.press("up")
        assert bar(app).value == ":env SECOND=2"
        await pilot.press("up")
        assert bar(app).value == ":env FIRST=1"
        await pilot.press("up")
        assert bar(app).value == ":env FIRST=1", "the oldest stays"
        await pilot.press("down", "down")
        assert bar(app).value == "dra", "past the newest: what was typed"
        await pilot.press("escape")

    again = app_in(tmp_path / "p", tui_engine_dir)
    async with again.run_test(size=SIZE) as pilot:
        await loaded(pilot)
        await pilot.press("colon", "up")
        assert bar(again).value == ":env SECOND=2", "the history outlives the session"
        await pilot.press("escape")


async def test_ctrl_r_searches_the_history_backwards_and_enter_runs_the_match(tui_engine_dir: Path,
                                                                             tmp_path: Path) -> None:
    app = app_in(tmp_path / "p", tui_engine_dir)
    async with app.run_test(size=SIZE) as pilot:
        screen = await loaded(pilot)
        await submit(pilot, ":env ALPHA=1")
        await submit(pilot, ":env BETA=2")
        await submit(pilot, ":env ALPHA=3")
        await pilot.press("colon", "ctrl+r", *"ALP")
        assert bar(app).value == ":env ALPHA=3"
        assert "'ALP'" in screen.status_bar.prompt and "history search" in str(screen.status_bar.render())
        await pilot.press("ctrl+r")
        assert bar(app).value == ":env ALPHA=1", "ctrl+r again: the next older match"
        await pilot.press("escape")
        assert bar(app).value == "", "escape gives the line back"
        assert not screen.status_bar.prompt.startswith("history search"), "and the status bar stops searching"

        await pilot.press("ctrl+r", *"BET", "enter")
        await until(pilot, lambda: screen.run_settings.env.get("BETA") == "2", what="the match to run")
        assert screen.run_settings.env == {"ALPHA": "3", "BETA": "2"}
        assert screen.status_bar.prompt == ""


# Completion -----------------------------------------------------------------------------------------------

async def test_tab_completes_paths_in_the_working_snapshot_tags_and_local_paths(tui_engine_dir: Path,
                                                                               tmp_path: Path) -> None:
    app = app_in(tmp_path / "p", tui_engine_dir)
    (tmp_path / "p" / "outputs").mkdir()
    async with app.run_test(size=SIZE) as pilot:
        screen = await loaded(pilot)
        the_bar = bar(app)
        await pilot.press("colon", *"ls /bi")
        await until(pilot, lambda: the_bar._suggestion == "ls /bin/", what="a path suggestion")
        await pilot.press("tab")
        assert the_bar.value == "ls /bin/"
        await pilot.press("escape")

        await pilot.press("colon", *":cd /e")
        await until(pilot, lambda: the_bar._suggestion == ":cd /etc/", what="a directory suggestion")
        await pilot.press("tab")
        assert the_bar.value == ":cd /etc/"
        await pilot.press("escape")

        tag = f"comp-{uuidlib.uuid4().hex[:6]}"
        await submit(pilot, f":tag {tag}")
        await until(pilot, lambda: tag in screen.lineage.tags(), what="the tag")
        await pilot.press("colon", *f":untag {tag[:7]}")
        await until(pilot, lambda: the_bar._suggestion == f":untag {tag}", what="a tag suggestion")
        await pilot.press("tab")
        assert the_bar.value == f":untag {tag}"
        await pilot.press("escape")

        await pilot.press("colon", *":download /etc/hostname ou")
        await until(pilot, lambda: the_bar._suggestion == ":download /etc/hostname outputs/",
                    what="a local path suggestion")
        await pilot.press("escape")

        await pilot.press("colon", *":wa", "tab")
        assert the_bar.value == ":wait ", "verbs complete too"
        await pilot.press("escape")


# Verbs ----------------------------------------------------------------------------------------------------

async def test_tag_shows_in_the_tree_and_untag_removes_it(tui_engine_dir: Path, tmp_path: Path) -> None:
    app = app_in(tmp_path / "p", tui_engine_dir)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        screen = await loaded(pilot)
        await run_done(pilot, screen, "touch /tagged")
        working = screen.position.working
        assert working is not None
        tag = f"t-{uuidlib.uuid4().hex[:8]}"
        await submit(pilot, f":tag {tag}")
        await until(pilot, lambda: tag in label(screen, working), what="the tag in the tree")
        assert tag in screen.status_bar.working

        await submit(pilot, f":untag {tag}")
        await until(pilot, lambda: tag not in label(screen, working), what="the tag to go")
        await submit(pilot, ":untag never-there")
        await until(pilot, lambda: any("has no tag 'never-there'" in t for t in toasts(app)), what="a toast")


async def test_cd_and_env_reach_the_next_runs(tui_engine_dir: Path, tmp_path: Path) -> None:
    app = app_in(tmp_path / "p", tui_engine_dir)
    async with app.run_test(size=SIZE) as pilot:
        screen = await loaded(pilot)
        await submit(pilot, ":cd /etc")
        await submit(pilot, ":env GREETING='hello there' OTHER=x")
        op = await run_done(pilot, screen, "pwd; env")
        lines = output(screen, op)
        assert lines[0] == "/etc"
        assert "GREETING=hello there" in lines and "OTHER=x" in lines

        await submit(pilot, ":cd ../usr")
        await submit(pilot, ":env -OTHER")
        op = await run_done(pilot, screen, "pwd; env")
        lines = output(screen, op)
        assert lines[0] == "/usr", ":cd is relative to the current one"
        assert "GREETING=hello there" in lines and not any(line.startswith("OTHER=") for line in lines)


async def test_disposable_runs_leave_no_snapshot(tui_engine_dir: Path, tmp_path: Path) -> None:
    app = app_in(tmp_path / "p", tui_engine_dir)
    async with app.run_test(size=SIZE) as pilot:
        screen = await loaded(pilot)
        working = screen.position.working
        images = len(screen.lineage)
        await submit(pilot, ":disposable on")
        op = await run_done(pilot, screen, "touch /throwaway")
        assert op.status is OperationStatus.SUCCESS and op.result is None
        assert screen.position.working == working and len(screen.lineage) == images
        await submit(pilot, ":disposable off")
        op = await run_done(pilot, screen, "touch /kept")
        assert op.result is not None and screen.position.working == op.result


async def test_parallel_runs_branches_from_the_same_snapshot_and_stays_put(tui_engine_dir: Path,
                                                                           tmp_path: Path) -> None:
    app = app_in(tmp_path / "p", tui_engine_dir)
    async with app.run_test(size=SIZE) as pilot:
        screen = await loaded(pilot)
        working = screen.position.working
        marker = uuidlib.uuid4().hex[:8]
        commands = [f"sleep 1; echo {n} > /branch-{marker}" for n in range(3)]
        await submit(pilot, ":parallel " + " ;; ".join(commands))
        await until(pilot, lambda: all(len(ops_of(screen, c)) == 1 for c in commands), what="three operations")
        branches = [ops_of(screen, c)[0] for c in commands]
        await until(pilot, lambda: sum(op.running for op in branches) >= 2 or all(not op.running for op in branches),
                    what="the branches to run")
        await until(pilot, lambda: all(op.result for op in branches), what="the branches to end")
        assert {op.image for op in branches} == {working}
        results = {op.result for op in branches}
        assert len(results) == 3
        for result in results:
            assert screen.lineage.parent_of(result) == working  # type: ignore[arg-type]
            assert screen.tree.reveal(result) is not None, "each branch in the tree"  # type: ignore[arg-type]
        assert screen.position.working == working, "the working snapshot stays put"


async def test_sync_on_attaches_the_folder_and_a_change_resyncs(tui_engine_dir: Path, tmp_path: Path) -> None:
    folder = tmp_path / "project"
    folder.mkdir()
    (folder / "hello.txt").write_text("first version\n")
    app = app_in(folder, tui_engine_dir)
    async with app.run_test(size=SIZE) as pilot:
        screen = await loaded(pilot)
        assert screen.status_bar.sync_text == "", "a folder that never synced is not told about sync"
        await submit(pilot, ":sync on")
        await until(pilot, lambda: screen.status_bar.sync_text.startswith("sync ↑ 1 file, 14 B, "),
                    what="the first sync")
        op = await run_done(pilot, screen, "cat hello.txt; pwd")
        assert output(screen, op) == ["first version", "/app"], "the folder is the runs' cwd, at /app"

        (folder / "hello.txt").write_text("second version\n")
        sync = screen.backend.folder_sync  # type: ignore[union-attr]
        second = hashlib.sha256(b"second version\n").hexdigest()
        await until(pilot, lambda: sync.state is not None and sync.state.entries["hello.txt"].sha256 == second,
                    timeout=30, what="the watcher to re-sync the change")
        op = await run_done(pilot, screen, "cat /app/hello.txt")
        assert output(screen, op) == ["second version"]
        synced = [e for e in screen.command_log.entries if e.kind == "sync" and not e.text.startswith(":")]
        assert [(e.text, e.result.split(" in ")[0]) for e in synced] == [("hello.txt", "↑ 1 file, 14 B"),
                                                                          ("hello.txt", "↑ 1 file, 15 B")], \
            "the first sync and the watcher's re-sync are command-log entries (a run's re-sync sending nothing is not)"

        await submit(pilot, ":sync off")
        await until(pilot, lambda: screen.status_bar.sync_text == "sync off", what="sync off")
        op = await run_done(pilot, screen, "cat /app/hello.txt")
        assert op.exit_code != 0 or output(screen, op) == ["second version"], "no new files attached"


async def test_cancel_cancels_a_running_command_and_wait_toasts_when_all_end(tui_engine_dir: Path,
                                                                            tmp_path: Path) -> None:
    app = app_in(tmp_path / "p", tui_engine_dir)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        screen = await loaded(pilot)
        command = f"echo started; sleep 30 # {uuidlib.uuid4().hex[:8]}"
        await start_running(pilot, screen, command)
        await submit(pilot, ":cancel")
        await until(pilot, lambda: ops_of(screen, command)[0].status is OperationStatus.CANCELLED,
                    what="the cancel")

        marker = uuidlib.uuid4().hex[:6]
        branches = [f"sleep 2 # {marker}", f"sleep 3 # {marker}"]
        await submit(pilot, f":parallel {branches[0]} ;; {branches[1]}")
        await until(pilot, lambda: all(len(ops_of(screen, c)) == 1 for c in branches), what="both branches")
        await submit(pilot, ":wait")
        await until(pilot, lambda: any("operations ended" in t for t in toasts(app)), timeout=30,
                    what="the wait's toast")
        said = next(t for t in toasts(app) if "operations ended" in t)
        assert "2 succeeded" in said, said
        await until(pilot, lambda: screen.table.running_count == 0, what="the table to agree")


async def test_an_import_that_fails_is_a_clear_toast(tui_engine_dir: Path, tmp_path: Path) -> None:
    # A registry on loopback that nobody serves (port 9, discard): the test never leaves this machine.
    app = app_in(tmp_path / "p", tui_engine_dir)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await loaded(pilot)
        await submit(pilot, ":import 127.0.0.1:9/nothing/here:1")
        await until(pilot, lambda: any("cannot import" in t for t in toasts(app)), what="the toast")
        toast = next(t for t in toasts(app) if "cannot import" in t)
        assert "cannot import 127.0.0.1:9/nothing/here:1:" in toast, toast
        assert "ended failed: " in toast and "127.0.0.1:9" in toast.split("ended failed: ", 1)[1], toast


async def test_a_bad_verb_is_a_toast_with_its_usage(tui_engine_dir: Path, tmp_path: Path) -> None:
    app = app_in(tmp_path / "p", tui_engine_dir)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await loaded(pilot)
        await submit(pilot, ":disposable maybe")
        await submit(pilot, ":nope")
        await until(pilot, lambda: len([t for t in toasts(app) if t.startswith("command bar")]) == 2,
                    what="two toasts")
        said = "\n".join(toasts(app))
        assert "usage: :disposable on|off" in said and "unknown verb :nope" in said


async def test_download_copies_a_file_of_the_working_snapshot(tui_engine_dir: Path, tmp_path: Path) -> None:
    folder = tmp_path / "p"
    app = app_in(folder, tui_engine_dir)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        screen = await loaded(pilot)
        marker = uuidlib.uuid4().hex
        await run_done(pilot, screen, f"echo {marker} > /fetched")
        await submit(pilot, ":download /fetched copies/got.txt")
        await until(pilot, lambda: (folder / "copies" / "got.txt").exists(), what="the download")
        assert (folder / "copies" / "got.txt").read_text() == marker + "\n"
        await submit(pilot, ":download /no/such/file")
        await until(pilot, lambda: any("no file /no/such/file" in t for t in toasts(app)), what="the toast")


# Interrupt and the command log ------------------------------------------------------------------------------

async def test_c_interrupts_in_two_stages_and_ctrl_c_does_not_quit(tui_engine_dir: Path, tmp_path: Path) -> None:
    app = app_in(tmp_path / "p", tui_engine_dir)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        screen = await loaded(pilot)
        command = f"trap '' INT; echo started; sleep 30; echo survived # {uuidlib.uuid4().hex[:8]}"
        await start_running(pilot, screen, command)
        op = ops_of(screen, command)[0]
        await pilot.press("ctrl+c")
        await until(pilot, lambda: any("press c again" in t for t in toasts(app)), what="the first stage")
        assert app.is_running and op.running, "SIGINT is ignored by this command: it goes on"
        await pilot.press("c")
        await until(pilot, lambda: op.status is OperationStatus.CANCELLED, what="the second stage: cancel")
        assert app.is_running
        await pilot.press("c")
        await until(pilot, lambda: any("nothing running to interrupt" in t for t in toasts(app)),
                    what="nothing left to interrupt")


async def test_at_opens_the_command_log_with_runs_verbs_rollback_and_forward(tui_engine_dir: Path,
                                                                            tmp_path: Path) -> None:
    app = app_in(tmp_path / "p", tui_engine_dir)
    async with app.run_test(size=SIZE) as pilot:
        screen = await loaded(pilot)
        await run_done(pilot, screen, "touch /logged")
        await submit(pilot, ":env LOGGED=1")
        await submit(pilot, ":bogus")
        await pilot.press("u")
        await until(pilot, lambda: any(e.kind == "rollback" for e in screen.command_log.entries), what="rollback")
        await pilot.press("U")
        await pilot.press("at")
        await until(pilot, lambda: isinstance(app.screen, CommandLogScreen), what="the command log")
        log_screen = app.screen
        assert isinstance(log_screen, CommandLogScreen)
        rows = log_screen.rows()
        kinds = [row[1] for row in rows]
        assert kinds == ["run", "env", "verb", "rollback", "forward"], rows
        assert rows[0][3].startswith("touch /logged") and "→" in rows[0][4] and "(working)" in rows[0][4]
        assert rows[1][3] == ":env LOGGED=1" and rows[1][4] == "LOGGED=1"
        assert "unknown verb" in rows[2][4]
        assert screen.command_log.entries[2].outcome is Outcome.FAILED
        await pilot.press("escape")
        await until(pilot, lambda: isinstance(app.screen, MainScreen), what="the log to close")


def test_command_log_screen(snap_compare, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """The `@` modal on the frozen backend: a rollback, a forward, a verb and a bad one (times in UTC)."""
    import time as time_module

    from tests.tui.frozen import WORKING, FrozenBackend, frozen_clock
    from tests.tui.test_snapshots import SIZE as SNAPSHOT_SIZE
    from tests.tui.test_snapshots import settled

    monkeypatch.setenv("TZ", "UTC")
    time_module.tzset()

    async def log_open(pilot: Pilot[None]) -> None:
        await settled(pilot)
        await pilot.press("u")
        await pilot.pause()
        await pilot.press("U")
        await submit(pilot, ":env GREETING=hello")
        await submit(pilot, ":bogus")
        pilot.app.clear_notifications()  # the toasts would cover the log
        await pilot.press("at")
        await until(pilot, lambda: isinstance(pilot.app.screen, CommandLogScreen), what="the log")
        await pilot.pause(0.2)

    app = ContreeApp(FrozenBackend(), working=WORKING, clock=frozen_clock)
    assert snap_compare(app, terminal_size=SNAPSHOT_SIZE, run_before=log_open)
