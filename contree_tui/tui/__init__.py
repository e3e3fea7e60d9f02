"""The terminal UI (Textual). Uses client/ only — never the engine — through data.py."""

from __future__ import annotations

from pathlib import Path


def run_tui(profile: str | None = None, state_dir: str | Path | None = None,
            folder: str | Path | None = None) -> int:
    """Run the TUI until the user quits; Textual is imported only here, so headless verbs stay light."""
    from contree_tui.tui.app import ContreeApp

    ContreeApp(profile=profile, state_dir=state_dir, folder=folder).run()
    return 0
