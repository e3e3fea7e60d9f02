"""The terminal UI (Textual). Uses client/ only — never the engine — through data.py."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from contree_tui.pipeline.launch import PipelineLaunch


def run_tui(profile: str | None = None, state_dir: str | Path | None = None,
            folder: str | Path | None = None, keymap: str | Path | None = None,
            pipeline: PipelineLaunch | None = None) -> int:
    """Run the TUI until the user quits; Textual is imported only here, so headless verbs stay light.
    `keymap` is a keymap file that must exist; without it, the default one is read if there is one.
    `pipeline`: open on that pipeline's view and run it (`contree-tui pipeline FILE:FUNC`)."""
    from contree_tui.tui.app import ContreeApp
    from contree_tui.tui.keymap import default_keymap_path

    if keymap is None and default_keymap_path().is_file():
        keymap = default_keymap_path()
    ContreeApp(profile=profile, state_dir=state_dir, folder=folder, keymap_file=keymap, pipeline=pipeline).run()
    return 0
