"""The terminal UI (Textual). Uses client/ only — never the engine — through data.py."""

from __future__ import annotations

from pathlib import Path


def run_tui(profile: str | None = None, state_dir: str | Path | None = None,
            folder: str | Path | None = None, keymap: str | Path | None = None) -> int:
    """Run the TUI until the user quits; Textual is imported only here, so headless verbs stay light.
    `keymap` is a keymap file that must exist; without it, the default one is read if there is one."""
    from contree_tui.tui.app import ContreeApp
    from contree_tui.tui.keymap import default_keymap_path

    if keymap is None and default_keymap_path().is_file():
        keymap = default_keymap_path()
    ContreeApp(profile=profile, state_dir=state_dir, folder=folder, keymap_file=keymap).run()
    return 0
