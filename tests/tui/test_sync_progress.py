"""A first sync of a large folder shows its progress in the status bar: files and bytes done of the total,
growing, then the synced total."""

from __future__ import annotations

import re
from pathlib import Path

from contree_tui.tui.app import ContreeApp
from tests.tui.helpers import loaded, until

SIZE = (160, 45)
PROGRESS = re.compile(r"^sync ↑ \[[=> ]{10}\] ([\d,]+)/5,000 files \S+ \S+/\S+ \S+$")


async def test_the_first_sync_of_5000_files_shows_files_and_bytes_done(tui_engine_dir: Path, tmp_path: Path) -> None:
    folder = tmp_path / "project"
    for i in range(5000):
        path = folder / f"pkg{i % 50}" / f"mod{i}.py"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"# {tmp_path.name} {i}\n" * (1 + i % 20))
    app = ContreeApp(state_dir=tui_engine_dir, folder=folder)
    async with app.run_test(size=SIZE) as pilot:
        screen = await loaded(pilot)
        seen: list[str] = []

        def synced() -> bool:
            text = screen.status_bar.sync_text
            if not seen or seen[-1] != text:
                seen.append(text)
            return text == "sync synced 5000 files"

        await screen.backend.folder_sync.turn(True)  # type: ignore[union-attr]  # what `:sync on` does
        await until(pilot, synced, timeout=120, what="the first sync")
        progress = [m for m in map(PROGRESS.match, seen) if m]
        assert progress, f"no progress shown while syncing: {seen}"
        done = [int(m.group(1).replace(",", "")) for m in progress]
        assert done == sorted(done), seen
