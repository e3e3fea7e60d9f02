"""The detail view's layer size against a real engine: what a user means by "added" — the bytes of the files
the run added or changed and how many, the paths it removed — not the layer's du blocks (a 17-byte file's
layer is 12 KiB on disk: a block for the file and one per directory overlay copied up)."""

from __future__ import annotations

from pathlib import Path

from contree_tui.tui.app import ContreeApp
from contree_tui.tui.screens.snapshot_detail import SnapshotDetailScreen
from tests.tui.helpers import loaded, run_and_wait, until
from tests.tui.test_snapshot_detail import open_detail_on

SIZE = (160, 34)


def header(detail: SnapshotDetailScreen) -> str:
    return str(detail.query_one("#detail-header").render())


async def test_a_layer_that_adds_one_17_byte_file_says_17_bytes_in_1_file(tui_engine_dir: Path,
                                                                          tmp_path: Path) -> None:
    app = ContreeApp(state_dir=tui_engine_dir, folder=tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        screen = await loaded(pilot)
        one = await run_and_wait(pilot, screen, "mkdir -p /tmp/deep/er && printf 12345678901234567 > "
                                                "/tmp/deep/er/seventeen && echo gone > /tmp/gone")
        two = await run_and_wait(pilot, screen, "printf abc > /tmp/deep/er/seventeen && rm /tmp/gone")

        detail = await open_detail_on(pilot, screen, one)
        await until(pilot, lambda: detail.details is not None and " size " in header(detail), what="the size")
        assert " size 22 B in 2 files added or changed (" in header(detail), header(detail)
        details = detail.details
        assert details is not None and (details.content_bytes, details.files, details.removed) == (17 + 5, 2, 0)
        assert details.size is not None and details.size > 4096, "du counts blocks, directories too"
        assert " on disk, " in header(detail) and " in all)" in header(detail), "the disk figures stay, dimmed"
        await pilot.press("escape")

        detail = await open_detail_on(pilot, screen, two)
        await until(pilot, lambda: detail.details is not None and " size " in header(detail), what="the size")
        assert " size 3 B in 1 file added or changed, 1 removed (" in header(detail), header(detail)
