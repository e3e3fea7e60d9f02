"""The log pane against a real engine: search with highlight and n/N, the filter, timestamps and wrap, saving
to a file, the merged log of running operations, stream colours and the exit summary."""

from __future__ import annotations

import re
import time
from pathlib import Path

from textual.pilot import Pilot

from contree_tui.tui.app import ContreeApp
from contree_tui.tui.model import OutputBuffer, Stream
from contree_tui.tui.screens.confirm import ConfirmScreen
from contree_tui.tui.screens.main import MainScreen
from contree_tui.tui.widgets.log_merge import MergedLog
from contree_tui.tui.widgets.log_view import LogView
from tests.tui.helpers import loaded, run_in_bar, until

SIZE = (140, 40)
# 300 lines, every 50th a needle: "hay 1" … "needle 50" … "needle 300"
HAYSTACK = ('i=0; while [ $i -lt 300 ]; do i=$((i+1)); '
            'if [ $((i % 50)) -eq 0 ]; then echo "needle $i"; else echo "hay $i"; fi; done')
NEEDLES = [f"needle {n}" for n in range(50, 301, 50)]


async def run_to_end(pilot: Pilot[None], screen: MainScreen, command: str) -> tuple[str, OutputBuffer]:
    """Run `command` from the bar and wait for its whole log; (operation uuid, its buffer)."""
    known = set(screen.table.operations)
    await run_in_bar(pilot, command)
    await until(pilot, lambda: set(screen.table.operations) - known, what="the run to start")
    (uuid,) = set(screen.table.operations) - known
    buffer = screen.buffers[uuid]
    await until(pilot, lambda: buffer.complete, what=f"{command!r} to finish")
    return uuid, buffer


async def focused_log(pilot: Pilot[None], screen: MainScreen) -> LogView:
    view = screen.log_panel.view
    view.focus()
    await pilot.pause()
    return view


def current_text(view: LogView) -> str:
    assert view.current_match is not None and view.source is not None
    return view.source.lines[view.current_match - view.source.dropped][1]


def marked(view: LogView, index: int) -> list[tuple[str, bool]]:
    """The pieces of line `index` as drawn, each with whether it has a highlight background."""
    base = view.line_strip(index)
    plain_bg = view._style("stdout").bgcolor
    return [(seg.text, seg.style is not None and seg.style.bgcolor != plain_bg) for seg in base if seg.text]


async def test_slash_highlights_every_match_and_n_N_move_between_them(tui_engine_dir: Path) -> None:
    app = ContreeApp(state_dir=tui_engine_dir)
    async with app.run_test(size=SIZE) as pilot:
        screen = await loaded(pilot)
        _uuid, buffer = await run_to_end(pilot, screen, HAYSTACK)
        view = await focused_log(pilot, screen)
        await until(pilot, lambda: view.line_count == len(buffer.lines), what="the log to be drawn")

        await pilot.press("slash")
        assert screen.log_panel.prompt.is_open and app.focused is screen.log_panel.prompt.input
        await pilot.press(*"needle", "enter")
        assert app.focused is view, "enter gives the keys back to the log"
        assert [buffer.lines[i - buffer.dropped][1] for i in view.rows.matches] == NEEDLES
        # Following, the screen shows the end: the first match from the top of the screen is the last one.
        assert current_text(view) == "needle 300"
        hit = buffer.total - 2  # the last line is the exit summary
        assert marked(view, hit) == [("needle", True), (" 300", False)], "the match, and only it, is highlighted"
        assert marked(view, hit - 1) == [("hay 299", False)]

        await pilot.press("n")  # past the last match: around to the first, as less does
        assert current_text(view) == "needle 50"
        assert not view.following, "jumping up pauses follow"
        row = view.rows.row_of(view.current_match or 0)
        assert view.scroll_y <= row < view.scroll_y + view.scrollable_content_region.height, "the match is on screen"
        assert any("needle 50" in line for line in view.screen_text())
        await pilot.press("n")
        assert current_text(view) == "needle 100"
        await pilot.press("N", "N")
        assert current_text(view) == "needle 300"

        await pilot.press("escape")
        assert view.search is None and view.rows.matches == []
        assert marked(view, hit) == [("needle 300", False)], "esc clears the highlight"
        await pilot.press("escape")  # nothing left to clear: esc goes on to the screen, back to the tree
        assert app.focused is screen.tree


async def test_ampersand_shows_only_the_matching_lines_and_esc_shows_all_again(tui_engine_dir: Path) -> None:
    app = ContreeApp(state_dir=tui_engine_dir)
    async with app.run_test(size=SIZE) as pilot:
        screen = await loaded(pilot)
        await run_to_end(pilot, screen, HAYSTACK)
        view = await focused_log(pilot, screen)
        everything = view.shown_lines()
        assert len(everything) == 301

        await pilot.press("ampersand", *"NEEDLE", "enter")  # smart case: a capital makes it exact
        await pilot.pause()
        assert view.shown_lines() == [], "NEEDLE (case-sensitive) is nowhere"
        await pilot.press("slash")
        assert screen.log_panel.prompt.input.value == "&NEEDLE", "the prompt reopens on the filter"
        await pilot.press("backspace", "backspace", "backspace", "backspace", "backspace", "backspace", *"needle",
                          "enter")
        assert view.filtering
        assert view.shown_lines() == NEEDLES
        rows = [line.rstrip() for line in view.screen_text() if line.strip()]
        assert rows == NEEDLES, "only the matching lines are drawn, one after another"

        await pilot.press("escape")
        assert not view.filtering and view.shown_lines() == everything


async def test_filter_and_wrap_keep_following_and_the_badge_counts_the_shown_lines(tui_engine_dir: Path) -> None:
    app = ContreeApp(state_dir=tui_engine_dir)
    async with app.run_test(size=SIZE) as pilot:
        screen = await loaded(pilot)
        # 10 s of output, started without typing (slow on a busy machine); one line in three kept, each wrapping
        pad = "x" * 150
        known = set(screen.table.operations)
        screen.run_command(f'i=0; while [ $i -lt 100 ]; do i=$((i+1)); echo "keep $i {pad}"; '
                           f'echo "drop $i"; echo "drop too $i"; sleep 0.1; done', screen.position.working or "")
        await until(pilot, lambda: set(screen.table.operations) - known, what="the run to start")
        (uuid,) = set(screen.table.operations) - known
        buffer = screen.buffers[uuid]
        view = await focused_log(pilot, screen)
        await pilot.press("w", "ampersand", *"keep", "enter")
        await until(pilot, lambda: view.line_count >= 5, what="some kept lines")
        assert all(line.startswith("keep ") for line in view.shown_lines())
        assert view.rows.row_count >= 2 * view.line_count, "each kept line wraps onto two rows"
        await until(pilot, lambda: view.line_count >= 10, what="more kept lines")
        assert view.following and view.scroll_y == view.max_scroll_y, "follow sticks to the bottom"

        await pilot.press("g")  # up: follow pauses, the badge counts what arrives
        await until(pilot, lambda: not view.following, what="follow to pause")
        shown_then = view.line_count - view.new_lines  # what was shown when follow paused
        await until(pilot, lambda: view.line_count >= shown_then + 3, what="lines while paused")
        assert view.scroll_y == 0, "paused: the view stays where it was"
        assert view.new_lines == view.line_count - shown_then, "the badge counts only the lines the filter shows"
        assert f"+{view.new_lines} new line" in view.screen_text()[-1], "the badge, over the view's last row"

        await pilot.press("G")
        await until(pilot, lambda: buffer.complete, what="the run to finish")
        await pilot.pause(0.2)
        assert view.following and view.scroll_y == view.max_scroll_y
        assert view.shown_lines()[-1].startswith("keep 100 ")


async def test_t_shows_each_lines_time_and_w_wraps_long_lines(tui_engine_dir: Path) -> None:
    app = ContreeApp(state_dir=tui_engine_dir)
    async with app.run_test(size=SIZE) as pilot:
        screen = await loaded(pilot)
        long = "0123456789" * 30
        started = time.time()
        _uuid, buffer = await run_to_end(pilot, screen, f"echo short; echo {long}")
        view = await focused_log(pilot, screen)
        await until(pilot, lambda: view.line_count == 3, what="the log to be drawn")
        stamp = re.compile(r"^\d\d:\d\d:\d\d\.\d{3} ")
        rows = [row for row in view.screen_text() if row.strip()]
        assert rows[0].startswith("short") and not stamp.match(rows[0])

        await pilot.press("t")
        rows = [row for row in view.screen_text() if row.strip()]
        assert all(stamp.match(row) for row in rows), rows
        assert rows[0][13:].startswith("short")
        when = buffer.time_of(buffer.dropped)
        assert when is not None and started - 5 < when < time.time() + 5, "the event's own time"
        assert rows[0][:12] == time.strftime("%H:%M:%S", time.localtime(when)) + f".{int(when * 1000) % 1000:03d}"
        await pilot.press("t")
        assert not stamp.match(view.screen_text()[0])

        width = view.scrollable_content_region.width
        assert view.rows.row_count == 3 and view.virtual_size.width >= len(long), "unwrapped: one row a line"
        await pilot.press("w")
        assert view.rows.row_count == 3 + (len(long) - 1) // width
        rows = [row.rstrip() for row in view.screen_text() if row.strip()]
        assert "".join(rows[1:1 + len(long) // width + 1]).startswith(long), "the long line goes on below"
        assert max(len(row) for row in view.screen_text()) <= width
        await pilot.press("t")  # both: the stamp takes room on the first row of each line
        assert view.rows.row_count == 3 + (13 + len(long) - 1) // width
        await pilot.press("w")
        assert view.rows.row_count == 3


async def test_s_saves_the_log_to_the_path_given_and_a_bad_path_is_a_toast(tui_engine_dir: Path,
                                                                          tmp_path: Path) -> None:
    app = ContreeApp(state_dir=tui_engine_dir)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        screen = await loaded(pilot)
        uuid, buffer = await run_to_end(pilot, screen, "echo one; echo two >&2; printf 'three\\tand tab'")
        view = await focused_log(pilot, screen)
        prompt = screen.log_panel.prompt

        await pilot.press("s")
        assert prompt.is_open and prompt.mode == "save"
        assert prompt.input.value == f"{uuid[:8]}.log", "the default: ./<short uuid>.log"
        target = tmp_path / "run.log"
        prompt.input.value = str(target)
        await pilot.press("enter")
        await until(pilot, lambda: target.exists(), what="the file")
        expected = ["one", "two", "three   and tab", buffer.lines[-1][1]]
        assert buffer.lines[-1][0] is Stream.META and buffer.lines[-1][1].startswith("── ✓ exit 0 · ")
        assert target.read_text() == "".join(f"{line}\n" for line in expected)
        await until(pilot, lambda: any(str(target) in n.message for n in app._notifications), what="the toast")

        target.write_text("old\n")  # saving over a file asks first; n keeps it
        await pilot.press("s")
        prompt.input.value = str(target)
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen), what="the replace question")
        await pilot.press("n")
        await pilot.pause(0.2)
        assert target.read_text() == "old\n"
        await pilot.press("s")
        prompt.input.value = str(target)
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen), what="the replace question")
        await pilot.press("y")
        await until(pilot, lambda: target.read_text() != "old\n", what="the file replaced")
        assert target.read_text().splitlines() == expected

        await pilot.press("s")
        prompt.input.value = str(tmp_path / "missing" / "run.log")
        await pilot.press("enter")
        await until(pilot, lambda: any("no directory" in n.message and n.severity == "error"
                                       for n in app._notifications), what="the error toast")
        assert isinstance(app.screen, MainScreen) and app.focused is view


async def test_m_merges_the_running_operations_behind_coloured_prefixes(tui_engine_dir: Path) -> None:
    app = ContreeApp(state_dir=tui_engine_dir)
    async with app.run_test(size=SIZE) as pilot:
        screen = await loaded(pilot)
        uuids = []
        for name in ("alpha", "beta"):  # started as the bar does, without typing: both must overlap
            known = set(screen.table.operations)
            screen.run_command(f'i=0; while [ $i -lt 60 ]; do i=$((i+1)); echo "{name} $i"; sleep 0.1; done',
                               screen.position.working or "")
            await until(pilot, lambda known=known: set(screen.table.operations) - known, what=f"{name} to start")
            uuids.append(next(iter(set(screen.table.operations) - known)))
        view = await focused_log(pilot, screen)
        running = {uuid for uuid, op in screen.table.operations.items() if op.running}

        await pilot.press("m")
        merged = view.source
        assert isinstance(merged, MergedLog)
        assert set(merged.keys) == running and set(uuids) <= running, "both runs, still going"
        title = str(screen.log_panel.query_one("#log-title").render())
        assert title.startswith("merged log")
        await until(pilot, lambda: {"alpha 10", "beta 10"} <= {text for _s, text in merged.lines},
                    what="both runs' lines")
        rows = view.screen_text()
        for name in ("alpha", "beta"):  # the part of the command that differs, not the operation's id
            assert any(re.match(rf"…echo {name}… +│ {name} \d+", row) for row in rows), (name, rows)
        prefix_styles = {merged.origin(i): str(next(iter(view.line_strip(i))).style)
                         for i in range(merged.dropped, merged.total)}
        assert len(set(prefix_styles.values())) == len(prefix_styles) >= 2, "one colour per operation"
        for name in ("alpha", "beta"):  # each run's lines stay in order
            numbers = [int(text.split()[1]) for _s, text in merged.lines if text.startswith(f"{name} ")]
            assert numbers == sorted(numbers)

        await pilot.press("m")
        assert view.source is screen.buffers[screen.table.selected_uuid or ""], "m goes back to the selected run"
        assert not str(screen.log_panel.query_one("#log-title").render()).startswith("merged")
        # the runs end before the app does: a run left going would count as running in the next test's session
        await until(pilot, lambda: all(screen.buffers[uuid].complete for uuid in uuids), what="both runs to end")


async def test_stdout_and_stderr_differ_in_colour_and_an_exit_summary_ends_the_log(tui_engine_dir: Path) -> None:
    app = ContreeApp(state_dir=tui_engine_dir)
    async with app.run_test(size=SIZE) as pilot:
        screen = await loaded(pilot)
        _uuid, buffer = await run_to_end(pilot, screen, "echo out; echo err >&2; exit 3")
        view = await focused_log(pilot, screen)
        streams = {text: stream for stream, text in buffer.lines}
        assert streams["out"] is Stream.STDOUT and streams["err"] is Stream.STDERR
        styles = {text: next(iter(view.line_strip(buffer.dropped + i))).style
                  for i, (_stream, text) in enumerate(buffer.lines)}
        assert styles["out"] != styles["err"]
        stream, summary = buffer.lines[-1]
        assert stream is Stream.META and summary.startswith("── ✗ exit 3 · "), summary
